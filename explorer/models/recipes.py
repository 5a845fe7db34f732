"""How a zoo model is trained from its config: its batches, its evaluation rows, the loop call.

Kept apart from zoo.py so that the cache key of a trained model covers exactly this training code
(plus explorer.models.training and the data modules), not the zoo's catalogue or helpers.
"""

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from explorer.data import induction_task
from explorer.models import tokenizer as tokenizers
from explorer.models import training
from explorer.models.training import TrainingRun

HELDOUT_SEED_OFFSET = 10_000  # induction-task evaluation rows come from a generator apart from training


def heldout_rows(cfg: dict[str, Any], n: int) -> Int[Tensor, "n n_ctx"]:
    arch, data = cfg["arch"], cfg["data"]
    if data["dataset"] == "induction":
        g = torch.Generator().manual_seed(HELDOUT_SEED_OFFSET + data["seed"])
        return induction_task.periodic_batch(n, arch["n_ctx"], arch["d_vocab"], data["min_period"], data["max_period"], g)
    ids = tokenizers.corpus_tokens(arch["d_vocab"], data["max_files"])["heldout"].long()
    starts = torch.linspace(0, len(ids) - arch["n_ctx"] - 1, n).long()  # (n,)
    return torch.stack([ids[s : s + arch["n_ctx"]] for s in starts.tolist()])


def train_uncached(cfg: dict[str, Any], device: torch.device | str = "cpu") -> TrainingRun:
    """Train a zoo model from its config (no cache): what zoo.training_run caches, and what the benchmark times."""
    arch, train, data = cfg["arch"], cfg["train"], cfg["data"]
    eval_rows = heldout_rows(cfg, train["eval_windows"]).to(device)

    def evaluate(model: TransformerBridge) -> dict[str, float]:
        return {"heldout_loss": training.next_token_loss(model(eval_rows), eval_rows).item()}

    if data["dataset"] == "induction":
        def batches(g: torch.Generator) -> Tensor:
            return induction_task.periodic_batch(train["batch"], arch["n_ctx"], arch["d_vocab"], data["min_period"], data["max_period"], g)
    else:
        ids = tokenizers.corpus_tokens(arch["d_vocab"], data["max_files"])["train"].long()

        def batches(g: torch.Generator) -> Tensor:
            starts = torch.randint(0, len(ids) - arch["n_ctx"], (train["batch"],), generator=g)
            return torch.stack([ids[s : s + arch["n_ctx"]] for s in starts.tolist()])  # (batch, n_ctx)

    return training.train(
        arch, batches, steps=train["steps"], lr=train["lr"], warmup=train["warmup"], seed=data["seed"],
        log_every=train["log_every"], checkpoint_every=train["checkpoint_every"], evaluate=evaluate, device=device,
    )
