"""The model zoo: small transformers trained here, on demand, and cached.

Every zoo model is a TransformerLens-native model (`TransformerBridge.boot_native`) so the
articles read the classic hook names (`blocks.0.attn.hook_pattern`, ...). Five are language models
trained on the Python standard library's source (see explorer.data.corpus); `induction-2l` is
trained on the synthetic repeated-tokens task (see explorer.data.induction_task).
Two scales: "full" is what the site publishes, "smoke" trains in seconds for the tests.
"""

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from explorer.cache import cached
from explorer.data import corpus
from explorer.errors import check_choice
from explorer.models import tokenizer as tokenizers
from explorer.models import recipes, training
from explorer.models.training import TrainingRun

Scale = Literal["full", "smoke"]
SCALES = ("full", "smoke")
Dataset = Literal["stdlib", "induction"]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    dataset: Dataset
    n_layers: int
    attn_only: bool


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("attn-only-1l", "1-layer attention-only transformer on Python standard-library source", "stdlib", 1, True),
        ZooEntry("attn-only-2l", "2-layer attention-only transformer on Python standard-library source", "stdlib", 2, True),
        ZooEntry("attn-only-3l", "3-layer attention-only transformer on Python standard-library source", "stdlib", 3, True),
        ZooEntry("gelu-1l", "1-layer transformer with a GELU MLP on Python standard-library source", "stdlib", 1, False),
        ZooEntry("gelu-2l", "2-layer transformer with GELU MLPs on Python standard-library source", "stdlib", 2, False),
        ZooEntry("induction-2l", "2-layer attention-only transformer on the synthetic repeated-tokens task", "induction", 2, True),
    )
}

# Sizes per dataset and scale. Full scale: the whole zoo trains in about ten minutes on two CPU cores.
_SIZES: dict[tuple[Dataset, Scale], dict[str, Any]] = {
    ("stdlib", "full"): dict(d_model=128, n_heads=4, n_ctx=128, d_vocab=2048, batch=16, steps=500, lr=3e-3, warmup=30,
                             log_every=20, checkpoint_every=50, eval_windows=64, max_files=None),
    ("stdlib", "smoke"): dict(d_model=32, n_heads=2, n_ctx=32, d_vocab=300, batch=8, steps=30, lr=3e-3, warmup=5,
                              log_every=10, checkpoint_every=10, eval_windows=8, max_files=12),
    ("induction", "full"): dict(d_model=64, n_heads=4, n_ctx=64, d_vocab=128, batch=32, steps=600, lr=3e-3, warmup=30,
                                log_every=15, checkpoint_every=15, eval_windows=128, min_period=6, max_period=30),
    ("induction", "smoke"): dict(d_model=32, n_heads=4, n_ctx=32, d_vocab=64, batch=32, steps=400, lr=5e-3, warmup=20,
                                 log_every=20, checkpoint_every=20, eval_windows=64, min_period=4, max_period=12),
}
SEED = 0


def names() -> list[str]:
    return list(ZOO)


def entry(name: str) -> ZooEntry:
    check_choice("zoo model", name, ZOO)
    return ZOO[name]


def config(name: str, scale: Scale = "full") -> dict[str, Any]:
    """The full, JSON-able recipe of a zoo model: architecture, data and training hyper-parameters."""
    check_choice("scale", scale, SCALES)
    e = entry(name)
    size = _SIZES[(e.dataset, scale)]
    arch = dict(
        n_layers=e.n_layers,
        d_model=size["d_model"],
        n_heads=size["n_heads"],
        d_head=size["d_model"] // size["n_heads"],
        d_mlp=None if e.attn_only else 4 * size["d_model"],
        n_ctx=size["n_ctx"],
        d_vocab=size["d_vocab"],
        attn_only=e.attn_only,
        act_fn="gelu",
        normalization_type="LN",
        positional_embedding_type="standard",
        init_mode="gpt2",
    )
    train = {k: size[k] for k in ("batch", "steps", "lr", "warmup", "log_every", "checkpoint_every", "eval_windows")}
    data = {"dataset": e.dataset, "seed": SEED}
    if e.dataset == "stdlib":
        data.update(corpus=corpus.fingerprint(), max_files=size["max_files"])
    else:
        data.update(min_period=size["min_period"], max_period=size["max_period"])
    return {"name": name, "scale": scale, "arch": arch, "train": train, "data": data}


def tokenizer(name: str, scale: Scale = "full"):
    """The Hugging Face tokenizer of a zoo model (decode ids with `tokenizer.decode` / token_strings).

    A fresh copy each time: TransformerBridge adjusts the tokenizer it is given.
    """
    cfg = config(name, scale)
    if cfg["data"]["dataset"] == "induction":
        return copy.deepcopy(tokenizers.symbol_tokenizer(cfg["arch"]["d_vocab"]))
    return copy.deepcopy(tokenizers.bpe_tokenizer(cfg["arch"]["d_vocab"], cfg["data"]["max_files"]))


def token_strings(name: str, ids, scale: Scale = "full") -> list[str]:
    """Tokens as text for drawing, whitespace made visible (· space, ⏎ newline, → tab)."""
    return tokenizers.token_strings(tokenizer(name, scale), ids)


def heldout_tokens(name: str, n: int, scale: Scale = "full") -> Int[Tensor, "n n_ctx"]:
    """`n` fixed evaluation rows of the model's context length, never trained on.

    stdlib models: evenly spaced windows of the held-out files. induction-2l: periodic rows drawn
    from a generator seeded apart from training.
    """
    return recipes.heldout_rows(config(name, scale), n)


def training_run(name: str, scale: Scale = "full", device: torch.device | str = "cpu") -> TrainingRun:
    """Train (or read from the cache) a zoo model; returns weights, loss history and checkpoints."""
    cfg = config(name, scale)
    # The key hashes everything recipes imports (training, fused attention, tokenizer, data).
    return cached(f"zoo-{name}", cfg, lambda: recipes.train_uncached(cfg, device), code=[recipes])


def load(name: str, scale: Scale = "full", device: torch.device | str | None = None, step: int | None = None) -> TransformerBridge:
    """A trained zoo model as a TransformerBridge in eval mode; `step` picks a training checkpoint."""
    run = training_run(name, scale)
    weights = run.state_dict
    if step is not None:
        steps = dict(run.checkpoints)
        check_choice(f"checkpoint step of {name}", step, steps)
        weights = steps[step]
    return from_weights(name, weights, scale, device)


def from_weights(name: str, weights: dict[str, Tensor], scale: Scale = "full", device: torch.device | str | None = None) -> TransformerBridge:
    """Boot the zoo architecture and load the given state dict (e.g. one of run.checkpoints)."""
    cfg = config(name, scale)
    model = training.build_bridge(cfg["arch"], tokenizer=tokenizer(name, scale), device=device)
    model.load_state_dict(weights)
    return model.eval()


def parameter_count(name: str, scale: Scale = "full") -> int:
    return sum(v.numel() for v in training_run(name, scale).state_dict.values())
