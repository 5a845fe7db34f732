"""Build a TransformerLens-native model from a config and train it on next-token prediction.

Training goes through the TransformerBridge's own forward pass (the same hooked module the
articles later inspect), so the weights a figure reads are exactly the weights that were trained.
"""

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.sources import native  # noqa: F401  (attaches TransformerBridge.boot_native)

from explorer.models.fused_attention import use_fused_attention

BatchFn = Callable[[torch.Generator], Int[Tensor, "batch pos"]]
EvalFn = Callable[[TransformerBridge], dict[str, float]]


@dataclass
class TrainingRun:
    """Everything a model card or a training film needs about one trained model."""

    config: dict[str, Any]  # architecture + training hyper-parameters, as cached
    state_dict: dict[str, Tensor]  # final weights (bridge state-dict keys, e.g. blocks.0.attn.q.weight)
    history: list[dict[str, float]]  # one row per logged step: step, tokens, train_loss, eval metrics
    checkpoints: list[tuple[int, dict[str, Tensor]]] = field(default_factory=list)  # (step, weights)
    tokens_seen: int = 0
    heldout_loss: float = math.nan
    train_seconds: float = 0.0  # wall time of the training loop (report only: never drawn)


@contextlib.contextmanager
def cpu_threads(n: int, device: torch.device | str):
    """Run small models on `n` CPU threads: past one thread, sync overhead costs more than it saves
    at these sizes, and it collapses when other processes share the cores."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_bridge(arch: dict[str, Any], tokenizer=None, device: torch.device | str | None = None) -> TransformerBridge:
    """A randomly initialised TL-native transformer; `arch` holds TransformerBridgeConfig fields.

    Attention is fused while no hook reads the pattern (training), explicit when one does (analysis).
    """
    return use_fused_attention(TransformerBridge.boot_native(dict(arch), tokenizer=tokenizer, device=device))


def next_token_loss(logits: Float[Tensor, "batch pos vocab"], tokens: Int[Tensor, "batch pos"], per_token: bool = False) -> Tensor:
    """Cross-entropy of predicting tokens[:, 1:] from logits[:, :-1]; (batch, pos-1) when per_token."""
    logprobs = logits[:, :-1].log_softmax(-1)  # (batch, pos-1, vocab)
    loss = -logprobs.gather(-1, tokens[:, 1:, None])[..., 0]  # (batch, pos-1)
    return loss if per_token else loss.mean()


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    arch: dict[str, Any],
    batches: BatchFn,
    *,
    steps: int,
    lr: float,
    warmup: int,
    seed: int,
    log_every: int,
    checkpoint_every: int,
    evaluate: EvalFn,
    weight_decay: float = 0.01,
    device: torch.device | str = "cpu",
) -> TrainingRun:
    """Train with AdamW; log `evaluate(model)` every `log_every` steps and keep a checkpoint every `checkpoint_every`."""
    with cpu_threads(1, device):
        return _train(arch, batches, steps, lr, warmup, seed, log_every, checkpoint_every, evaluate, weight_decay, device)


def _train(arch, batches, steps, lr, warmup, seed, log_every, checkpoint_every, evaluate, weight_decay, device) -> TrainingRun:
    model = build_bridge({**arch, "seed": seed}, device=device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(seed)
    history, checkpoints, running, tokens_seen = [], [], [], 0
    start = time.perf_counter()
    for step in range(steps + 1):
        if step % checkpoint_every == 0 or step == steps:
            checkpoints.append((step, _snapshot(model)))
        if step % log_every == 0 or step == steps:
            train_loss = sum(running) / len(running) if running else math.nan
            history.append({"step": step, "tokens": tokens_seen, "train_loss": train_loss, **_evaluated(model, evaluate)})
            running = []
        if step == steps:
            break
        tokens = batches(generator).to(device)  # (batch, pos)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        loss = next_token_loss(model(tokens), tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(loss.item())
        tokens_seen += tokens.numel()
    seconds = time.perf_counter() - start
    return TrainingRun(
        config=dict(arch),
        state_dict=_snapshot(model),
        history=history,
        checkpoints=checkpoints,
        tokens_seen=tokens_seen,
        heldout_loss=history[-1].get("heldout_loss", math.nan),
        train_seconds=seconds,
    )


def _evaluated(model: TransformerBridge, evaluate: EvalFn) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        metrics = evaluate(model)
    model.train()
    return metrics


def _snapshot(model: TransformerBridge) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in copy.copy(model.state_dict()).items()}
