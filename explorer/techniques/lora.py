"""LoRA (Hu et al. 2021) in a few lines of torch, and the fine-tunes the LoRA article compares.

A LoRA adapter freezes a linear layer's weight W (out, in) and learns a low-rank update instead:
y = W x + b + (alpha / r) B A x, with A (r, in) drawn at random and B (out, r) starting at zero, so
the adapted model computes exactly what the pretrained one did until B moves. The update
(alpha / r) B A has rank at most r; `merge` folds it into W, after which the model is an ordinary
one again (what the rank measures of explorer/techniques/weight_change.py read).

The flagship's attention keeps W_Q, W_K and W_V in one fused `qkv` layer (3 d_model, d_model):
`blocks=3` gives each of the three its own rank-r adapter (a block of B's rows each), so W_Q, W_K,
W_V and W_O each get a rank-r update, as an adapter on separate projection matrices would.

`fine_tune` trains a flagship on one package's files (as weight_change.fine_tune does, with the
same data, evaluation sets and optimiser) with one of three methods: "full" (every parameter),
"last" (only the last block, the final LayerNorm and the unembedding) or "lora" (adapters on the
attention matrices of every block, everything else frozen). The digits functions do the same for a
small classifier.

We write LoRA here instead of using the `peft` library: peft is not in the project's environment,
and the environment's site-packages are the flagship's training corpus, so it cannot be added.
"""

import functools
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from explorer.models.reference import PlainTransformer
from explorer.techniques import weight_change as wc

METHODS = ("full", "last", "lora")


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus `blocks` rank-r updates, each on its own block of output rows."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, blocks: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        out, inp = base.weight.shape
        if out % blocks or rank < 1:
            raise ValueError(f"LoRA: {out} output rows do not split into {blocks} blocks, or rank {rank} < 1")
        self.base, self.rank, self.blocks, self.scale = base, rank, blocks, alpha / rank
        for p in base.parameters():
            p.requires_grad_(False)
        # A as in the LoRA paper: random (here Gaussian with variance 1/in); B zero, so the update starts at zero
        self.A = nn.Parameter(torch.randn(blocks, rank, inp, generator=generator) / math.sqrt(inp))  # (blocks, r, in)
        self.B = nn.Parameter(torch.zeros(blocks, out // blocks, rank))  # (blocks, rows, r)

    def delta(self) -> Float[Tensor, "out inp"]:
        """The update this adapter adds to the weight: (alpha / r) B A, block by block."""
        return (self.scale * self.B @ self.A).reshape(self.base.weight.shape)  # (blocks, rows, in) -> (out, in)

    def forward(self, x: Float[Tensor, "... inp"]) -> Float[Tensor, "... out"]:
        # W + (alpha / r) B A, formed each call: at these sizes (a 384 x 128 weight, thousands of rows
        # of x) one matmul with the merged weight is faster than x A^T then B (tests check they agree)
        return F.linear(x, self.base.weight + self.delta(), self.base.bias)

    def forward_factored(self, x: Float[Tensor, "... inp"]) -> Float[Tensor, "... out"]:
        """The same output computed the adapter way, base(x) + (alpha / r) B (A x), never forming the update."""
        down = torch.einsum("...i,kri->...kr", x, self.A)  # (..., blocks, r)
        up = torch.einsum("...kr,kor->...ko", down, self.B).flatten(-2)  # (..., out)
        return self.base(x) + self.scale * up


def add_lora(model: nn.Module, targets: dict[str, int], rank: int, alpha: float, seed: int) -> list[LoRALinear]:
    """Freeze every parameter of `model` and replace each linear layer named in `targets` ({dotted
    name: blocks}) by a LoRALinear around it. Returns the adapters, in the order of `targets`."""
    for p in model.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    adapters = []
    for name, blocks in targets.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        adapter = LoRALinear(getattr(parent, child), rank, alpha, blocks, generator)
        setattr(parent, child, adapter)
        adapters.append(adapter)
    return adapters


@torch.no_grad()
def merged_state(model: nn.Module) -> dict[str, Tensor]:
    """The state dict of the same model without adapters: each adapter's update folded into its weight."""
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[-1] in ("A", "B"):
            continue
        if "base" in parts:  # blocks.0.qkv.base.weight -> blocks.0.qkv.weight (+ the update)
            owner = ".".join(parts[: parts.index("base")])
            key = owner + "." + parts[-1]
            if parts[-1] == "weight":
                value = value + model.get_submodule(owner).delta()
        state[key] = value.detach().clone()
    return state


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- the flagship


def flagship_targets(arch: dict[str, Any]) -> dict[str, int]:
    """Every block's attention: the fused qkv (three adapters: W_Q, W_K, W_V) and the output W_O."""
    out = {}
    for layer in range(arch["n_layers"]):
        out[f"blocks.{layer}.qkv"], out[f"blocks.{layer}.out"] = 3, 1
    return out


def prepare_flagship(weights: dict[str, Tensor], arch: dict[str, Any], method: str, rank: int, alpha: float, seed: int) -> PlainTransformer:
    """The pretrained flagship with only what `method` tunes left trainable (and adapters for "lora")."""
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}: one of {', '.join(METHODS)}")
    model = PlainTransformer(arch)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    if method == "lora":
        add_lora(model, flagship_targets(arch), rank, alpha, seed)
    elif method == "last":
        last = f"blocks.{arch['n_layers'] - 1}."
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith((last, "ln_final.", "unembed.")))
    return model


def fine_tune(weights: dict[str, Tensor], arch: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Train the flagship from `weights` on one package's training files with `config["method"]`.
    The recipe is weight_change.fine_tune's (AdamW, linear warm-up, gradient clipping at 1, the same
    batches for a seed); only the trainable parameters differ. Returns the merged final weights, the
    held-out losses at the end ({"package": .., "other": ..}), the trainable parameter count and the
    wall time."""
    torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(int(config["seed"]))
    model = prepare_flagship(weights, arch, config["method"], int(config.get("rank", 0)), float(config.get("alpha", 0)), int(config["seed"]))
    params = [p for p in model.parameters() if p.requires_grad]
    data = wc.join_files(wc.package_files(config["package"], "train"))
    optimizer = torch.optim.AdamW(params, lr=config["lr"], betas=tuple(config["betas"]), weight_decay=config["weight_decay"])
    sampler = np.random.default_rng(int(config["seed"]))
    started = time.perf_counter()
    model.train()
    for step in range(config["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = config["lr"] * min(1.0, (step + 1) / config["warmup"])
        batch = wc.windows(data, sampler.integers(0, len(data) - arch["n_ctx"] - 1, config["batch"]), arch["n_ctx"])  # (batch, n_ctx)
        logits = model(batch)  # (batch, n_ctx, 256)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, arch["d_vocab"]), batch[:, 1:].reshape(-1))
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"fine-tune {config}: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    model.eval()
    state = merged_state(model)
    return {"weights": state, "losses": losses_of(state, arch, config), "trainable": trainable(model), "seconds": time.perf_counter() - started}


def losses_of(state: dict[str, Tensor], arch: dict[str, Any], config: dict[str, Any]) -> dict[str, float]:
    """Loss (nats per byte) of a plain flagship with these weights on each evaluation set."""
    plain = PlainTransformer(arch)
    plain.load_state_dict({k: v.float() for k, v in state.items()})
    plain.eval()
    return {name: wc.loss_on(plain, rows) for name, rows in evaluation_sets(config, arch["n_ctx"]).items()}


@functools.cache
def _evaluation_sets(package: str, rows: int, n_ctx: int, other_limit: int, tune_rows: int) -> dict[str, Tensor]:
    evals = wc.evaluation_sets(package, rows, n_ctx, other_limit)
    return {**evals, "tuning": tuning_rows(package, rows, tune_rows, n_ctx)}


def evaluation_sets(config: dict[str, Any], n_ctx: int) -> dict[str, Tensor]:
    """weight_change's held-out rows ("package": the package's held-out files, "other": the rest of the
    held-out corpus) and "tuning": other windows of the package's held-out files, to choose learning rates on."""
    return _evaluation_sets(config["package"], int(config["eval_rows"]), n_ctx, int(config["other_limit"]), int(config["tune_rows"]))


def tuning_rows(package: str, eval_rows: int, rows: int, n_ctx: int) -> Tensor:
    """`rows` windows of the package's held-out files, each halfway between two of the `eval_rows`
    evaluation windows (wc.eval_rows spreads those evenly), so that no byte is in both: (rows, n_ctx)."""
    data = wc.join_files(wc.package_files(package, "heldout"))
    starts = np.linspace(0, len(data) - n_ctx - 1, eval_rows)
    gap = starts[1] - starts[0]
    if gap < 2 * n_ctx:
        raise ValueError(f"{package}'s held-out files are too short for {eval_rows} evaluation and tuning windows of {n_ctx} bytes")
    between = (starts[:-1] + gap / 2).astype(np.int64)  # (eval_rows - 1,) midpoints
    return wc.windows(data, between[np.linspace(0, len(between) - 1, rows).astype(np.int64)], n_ctx)


# --------------------------------------------------------------------------- the digits classifier


def rotate(x: Float[Tensor, "n 64"]) -> Float[Tensor, "n 64"]:
    """Each 8x8 digit turned a quarter turn anticlockwise: the shifted task."""
    return torch.rot90(x.reshape(-1, 8, 8), 1, dims=(1, 2)).reshape(-1, 64)


def digits_targets(model: nn.Sequential) -> dict[str, int]:
    """Every linear layer of the MLP."""
    return {name: 1 for name, m in model.named_children() if isinstance(m, nn.Linear)}


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float((model(x).argmax(-1) == y).float().mean())


def digits_scores(model: nn.Module, x_val: Tensor, y_val: Tensor) -> dict[str, float]:
    """Accuracies on the validation digits, split in two halves by position (even: evaluation, odd:
    tuning): "target" (rotated, evaluation half), "original" (upright, evaluation half), "tuning"
    (rotated, tuning half, to choose learning rates on)."""
    model.eval()
    ev, tu = slice(0, None, 2), slice(1, None, 2)
    return {"target": accuracy(model, rotate(x_val[ev]), y_val[ev]), "original": accuracy(model, x_val[ev], y_val[ev]),
            "tuning": accuracy(model, rotate(x_val[tu]), y_val[tu])}  # fmt: skip


def fine_tune_digits(model: nn.Sequential, data: tuple[Tensor, Tensor, Tensor, Tensor], config: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune a trained digits MLP (modified in place) on rotated training digits with
    `config["method"]`: "full", "last" (the output layer only) or "lora" (adapters on every linear
    layer, the rank capped at the layer's smaller side). Returns digits_scores after, the merged
    weights and the trainable parameter count."""
    x_train, y_train, x_val, y_val = data
    torch.manual_seed(int(config["seed"]))
    method = config["method"]
    if method == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        generator = torch.Generator().manual_seed(int(config["seed"]))
        for name in digits_targets(model):
            base = getattr(model, name)
            setattr(model, name, LoRALinear(base, min(int(config["rank"]), *base.weight.shape), float(config["alpha"]), 1, generator))
    elif method == "last":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("out."))
    elif method != "full":
        raise ValueError(f"unknown fine-tuning method {method!r}: one of {', '.join(METHODS)}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config["lr"])
    batches = torch.randint(len(x_train), (config["steps"], config["batch"]))  # (steps, batch)
    rotated = rotate(x_train)
    model.train()
    for step in range(config["steps"]):
        idx = batches[step]
        loss = F.cross_entropy(model(rotated[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"scores": digits_scores(model, x_val, y_val), "weights": merged_state(model), "trainable": trainable(model)}
