"""The curriculum's small models: TL-native transformers trained on one answer per row.

Each chapter's task (explorer/data) ends its rows with one answer token; the model reads the rest
and is trained to predict that token alone, with AdamW and a fixed batch of fresh rows per step.
Checkpoints along the way feed the chapters' training sliders. `make figures` trains these
(seconds each) and caches them; nothing here is a long run.
"""

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from explorer.models import training
from explorer.models.training import TrainingRun

RowsFn = Callable[[int, torch.Generator], Int[Tensor, "rows pos"]]
EvalFn = Callable[[Any, Int[Tensor, "rows pos"]], dict[str, float]]
EVAL_SEED = 4321  # the fixed held-out rows every checkpoint is measured on, apart from training seeds


def answer_logits(logits: Float[Tensor, "rows vocab"], answers: tuple[int, int]) -> Float[Tensor, "rows answers"]:
    """The logits of the possible answers (token ids answers[0] .. answers[1]-1) only."""
    return logits[:, answers[0] : answers[1]]


def answer_loss(model, rows: Int[Tensor, "rows pos"], answers: tuple[int, int]) -> Tensor:
    """Cross-entropy of the last token among the possible answers, predicted from all the others.

    Only the answers compete: over the whole vocabulary the model first spends hundreds of steps
    learning which tokens can be answers at all (measured on the recall task: 14% accuracy after
    1,000 steps against 98% when only the answers compete)."""
    logits = answer_logits(model(rows[:, :-1])[:, -1], answers)  # (rows, answers)
    return F.cross_entropy(logits, rows[:, -1] - answers[0])


@torch.no_grad()
def answer_accuracy(logits: Float[Tensor, "rows vocab"], rows: Int[Tensor, "rows pos"], answers: tuple[int, int]) -> float:
    """Share of rows whose top answer at the answer position (`logits`: that position's) is right."""
    return (answer_logits(logits, answers).argmax(-1) == rows[:, -1] - answers[0]).float().mean().item()


def train_answer(
    arch: dict[str, Any],
    rows: RowsFn,
    *,
    answers: tuple[int, int],
    steps: int,
    lr: float,
    batch: int,
    seed: int,
    checkpoint_every: int,
    evaluate: EvalFn,
    eval_rows: int,
    weight_decay: float = 0.01,
) -> TrainingRun:
    """Train on the answer position (token ids `answers[0]` .. `answers[1]-1` compete) with AdamW
    (constant lr, gradients clipped at 1); checkpoint and evaluate on the same held-out rows every
    `checkpoint_every` steps."""
    with training.cpu_threads(1, "cpu"):
        model = training.build_bridge({**arch, "seed": seed}, device="cpu")
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        generator = torch.Generator().manual_seed(seed)
        heldout = rows(eval_rows, torch.Generator().manual_seed(EVAL_SEED))
        history, checkpoints, running = [], [], []
        start = time.perf_counter()
        for step in range(steps + 1):
            if step % checkpoint_every == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    metrics = evaluate(model, heldout)
                model.train()
                train_loss = sum(running) / len(running) if running else math.nan
                history.append({"step": step, "train_loss": train_loss, **metrics})
                checkpoints.append((step, {k: v.detach().clone() for k, v in model.state_dict().items()}))
                running = []
            if step == steps:
                break
            loss = answer_loss(model, rows(batch, generator), answers)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            running.append(loss.item())
    return TrainingRun(config=dict(arch), state_dict=checkpoints[-1][1], history=history, checkpoints=checkpoints,
                       tokens_seen=steps * batch, heldout_loss=history[-1].get("loss", math.nan),
                       train_seconds=time.perf_counter() - start)


def load(arch: dict[str, Any], weights: dict[str, Tensor]):
    """A model of `arch` holding `weights` (one of a run's checkpoints), in eval mode."""
    model = training.build_bridge(arch, device="cpu")
    model.load_state_dict(weights)
    return model.eval()
