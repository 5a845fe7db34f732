"""How far each weight matrix moves in training, and how low-rank the move is.

For a weight matrix W at training step t and its value W_0 at the start (initialisation for
pretraining, the pretrained weights for a fine-tune):

- relative change  ||W_t - W_0|| / ||W_0||  (Frobenius norms), and from one checkpoint to the next
  ||W_t - W_prev|| / ||W_prev||, divided by the steps between them (per 1,000 steps);
- the singular values of the change W_t - W_0 and two effective ranks of it: `rank_at` (how many
  singular values hold 90% of the squared norm) and `entropy_rank` (Roy & Vetterli 2007: exp of the
  entropy of the singular values normalised to sum to one);
- a null for both: a Gaussian matrix of the same shape and norm (`gaussian_like`), whose spectrum is
  the Marchenko-Pastur bulk: the effective rank of a change with no structure at all.

The matrices of a PlainTransformer (explorer/models/reference.py) are named as the interpretability
articles name them: W_E, W_pos, per layer W_Q, W_K, W_V (split out of the fused qkv), W_O, the MLP's
W_in and W_out when there is one, and W_U; per head, W_Q/W_K/W_V are the head's d_head rows and W_O
its d_head columns. LayerNorm gains are vectors: they get a relative change, not a spectrum. Biases
start at zero, so they have no relative change and are left out.

`fine_tune` continues training a flagship on the files of one package of the corpus
(explorer.data.code_corpus), the same way the long run trained it (AdamW, warm-up, gradient
clipping), and keeps checkpoints and the held-out losses along the way.
"""

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from explorer.data import code_corpus
from explorer.models.reference import PlainTransformer

SHARE = 0.9  # rank_at: the singular values that hold this share of the squared norm
KINDS = ("Q", "K", "V", "O")


def matrix_names(arch: dict[str, Any]) -> list[str]:
    """The named matrices of this architecture, in reading order (W_E first, W_U last)."""
    names = ["W_E", "W_pos"]
    for layer in range(arch["n_layers"]):
        names += [f"L{layer}_W_{kind}" for kind in KINDS]
        if not arch["attn_only"]:
            names += [f"L{layer}_W_in", f"L{layer}_W_out"]
    return names + ["W_U"]


def gain_names(arch: dict[str, Any]) -> list[str]:
    names = []
    for layer in range(arch["n_layers"]):
        names += [f"L{layer}_LN1"] + ([] if arch["attn_only"] else [f"L{layer}_LN2"])
    return names + ["LN_final"]


def label(name: str) -> str:
    """What a reader sees: 'L1 W_Q', 'W_E', 'L0 LN1 gain'."""
    text = name.replace("_W_", " W_").replace("_LN", " LN")
    return "final LN gain" if name == "LN_final" else text + (" gain" if "LN" in name else "")


def named_matrices(state: dict[str, Tensor], arch: dict[str, Any]) -> dict[str, Float[Tensor, "rows cols"]]:
    """{name: matrix} in float32 from a PlainTransformer state dict; W_Q/K/V/O map d_model to d_model."""
    d = arch["d_model"]
    out = {"W_E": state["embed.weight"], "W_pos": state["pos.weight"]}  # (256, d), (n_ctx, d)
    for layer in range(arch["n_layers"]):
        p = f"blocks.{layer}."
        q, k, v = state[p + "qkv.weight"].split(d, 0)  # each (d, d): rows are the heads' outputs
        out.update({f"L{layer}_W_Q": q, f"L{layer}_W_K": k, f"L{layer}_W_V": v, f"L{layer}_W_O": state[p + "out.weight"]})
        if not arch["attn_only"]:
            out[f"L{layer}_W_in"], out[f"L{layer}_W_out"] = state[p + "mlp.0.weight"], state[p + "mlp.2.weight"]  # (d_mlp, d), (d, d_mlp)
    out["W_U"] = state["unembed.weight"]  # (256, d)
    return {name: out[name].float() for name in matrix_names(arch)}


def named_gains(state: dict[str, Tensor], arch: dict[str, Any]) -> dict[str, Float[Tensor, " d_model"]]:
    keys = {}
    for layer in range(arch["n_layers"]):
        keys[f"L{layer}_LN1"] = f"blocks.{layer}.ln1.weight"
        if not arch["attn_only"]:
            keys[f"L{layer}_LN2"] = f"blocks.{layer}.ln2.weight"
    keys["LN_final"] = "ln_final.weight"
    return {name: state[key].float() for name, key in keys.items()}


def head_matrices(state: dict[str, Tensor], arch: dict[str, Any]) -> dict[tuple[int, int, str], Float[Tensor, "a b"]]:
    """{(layer, head, kind): matrix}: a head's W_Q, W_K, W_V rows (d_head, d_model) and W_O columns (d_model, d_head)."""
    named, d_head = named_matrices(state, arch), arch["d_head"]
    out = {}
    for layer in range(arch["n_layers"]):
        for kind in KINDS:
            w = named[f"L{layer}_W_{kind}"]
            parts = w.split(d_head, 1) if kind == "O" else w.split(d_head, 0)
            out.update({(layer, head, kind): part for head, part in enumerate(parts)})
    return out


def relative_change(new: Tensor, old: Tensor) -> float:
    """||new - old|| / ||old|| (Frobenius)."""
    return float((new.float() - old.float()).norm() / old.float().norm())


def singular_values(delta: Float[Tensor, "rows cols"]) -> np.ndarray:
    """Descending singular values, (min(rows, cols),)."""
    return torch.linalg.svdvals(delta.double()).numpy()


def cumulative_share(sv: np.ndarray) -> np.ndarray:
    """Share of the squared norm held by the first k singular values, k = 1..len(sv)."""
    energy = sv.astype(np.float64) ** 2
    return np.cumsum(energy) / energy.sum()


def rank_at(sv: np.ndarray, share: float = SHARE) -> int:
    """The fewest singular values that hold `share` of the squared norm."""
    return int(np.searchsorted(cumulative_share(sv), share - 1e-12) + 1)


def entropy_rank(sv: np.ndarray) -> float:
    """Roy & Vetterli's effective rank: exp(-sum p log p), p the singular values over their sum."""
    p = sv[sv > 0] / sv.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def top_share(sv: np.ndarray, k: int) -> float:
    """Share of the squared norm in the top k singular values: the most a rank-k update could capture (Eckart-Young)."""
    return float(cumulative_share(sv)[min(k, len(sv)) - 1])


def gaussian_like(delta: Tensor, generator: torch.Generator) -> Tensor:
    """A Gaussian matrix of the same shape and Frobenius norm: the change with no structure."""
    noise = torch.randn(delta.shape, generator=generator, dtype=torch.float64)
    return noise * (delta.double().norm() / noise.norm())


def null_spectrum(shape: tuple[int, int], draws: int, seed: int = 0) -> np.ndarray:
    """Mean sorted singular values of `draws` Gaussian matrices of `shape`, scaled to unit Frobenius norm."""
    generator = torch.Generator().manual_seed(seed)
    unit = torch.ones(shape, dtype=torch.float64) / math.sqrt(shape[0] * shape[1])
    return np.mean([singular_values(gaussian_like(unit, generator)) for _ in range(draws)], axis=0)


# --------------------------------------------------------------------------- fine-tuning on one package


def package_files(package: str, split: str) -> tuple[code_corpus.SourceFile, ...]:
    """The corpus files of one top-level package (or 'stdlib') in a split."""
    prefix = "stdlib/" if package == "stdlib" else f"site-packages/{package}/"
    return tuple(f for f in code_corpus.split_files(split) if f.name.startswith(prefix))


def join_files(files, limit: int | None = None) -> np.ndarray:
    """Files joined as the corpus joins them (a blank line between), as uint8, at most `limit` bytes."""
    chunks, total = [], 0
    for f in files:
        chunks.append(f.path.read_bytes() + code_corpus.FILE_SEPARATOR)
        total += len(chunks[-1])
        if limit is not None and total >= limit:
            break
    joined = b"".join(chunks)
    return np.frombuffer(joined[:limit] if limit is not None else joined, dtype=np.uint8)


def windows(data: np.ndarray, starts: np.ndarray, n_ctx: int) -> torch.Tensor:
    return torch.from_numpy(data[starts[:, None] + np.arange(n_ctx)[None, :]].astype(np.int64))


def eval_rows(data: np.ndarray, rows: int, n_ctx: int) -> torch.Tensor:
    """`rows` windows spread evenly over `data`: (rows, n_ctx)."""
    return windows(data, np.linspace(0, len(data) - n_ctx - 1, rows).astype(np.int64), n_ctx)


def evaluation_sets(package: str, rows: int, n_ctx: int, other_limit: int) -> dict[str, torch.Tensor]:
    """Held-out rows of the package, and of every other held-out file (code neither run trained on)."""
    own = set(package_files(package, "heldout"))
    other = [f for f in code_corpus.split_files("heldout") if f not in own]
    step = max(1, len(other) // 200)  # files spread over the whole split, not the first ones by name
    return {"package": eval_rows(join_files(package_files(package, "heldout")), rows, n_ctx),
            "other": eval_rows(join_files(other[::step], other_limit), rows, n_ctx)}  # fmt: skip


@torch.no_grad()
def loss_on(model: PlainTransformer, rows: torch.Tensor) -> float:
    logits = model(rows)  # (rows, pos, 256)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1)).item()


def fine_tune(weights: dict[str, Tensor], arch: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Train from `weights` on `config["data"]` ('package': the package's training files; 'all': the
    whole training corpus, the control). Returns {"checkpoints": {step: state dict}, "losses":
    {step: {"package": .., "other": ..}}, "seconds": wall time}."""
    torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(int(config["seed"]))
    model = PlainTransformer(arch)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    data = join_files(package_files(config["package"], "train")) if config["data"] == "package" else code_corpus.corpus_bytes("train")
    evals = evaluation_sets(config["package"], config["eval_rows"], arch["n_ctx"], config["other_limit"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], betas=tuple(config["betas"]), weight_decay=config["weight_decay"])
    sampler = np.random.default_rng(int(config["seed"]))
    checkpoints, losses, started = {}, {}, time.perf_counter()
    for step in range(config["steps"] + 1):
        if step % config["checkpoint_every"] == 0 or step == config["steps"]:
            model.eval()
            checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            losses[step] = {name: loss_on(model, rows) for name, rows in evals.items()}
            model.train()
        if step == config["steps"]:
            break
        for group in optimizer.param_groups:
            group["lr"] = config["lr"] * min(1.0, (step + 1) / config["warmup"])
        batch = windows(data, sampler.integers(0, len(data) - arch["n_ctx"] - 1, config["batch"]), arch["n_ctx"])  # (batch, n_ctx)
        logits = model(batch)  # (batch, n_ctx, 256)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, arch["d_vocab"]), batch[:, 1:].reshape(-1))
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"fine-tune {config}: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return {"checkpoints": checkpoints, "losses": losses, "seconds": time.perf_counter() - started}
