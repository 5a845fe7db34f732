"""Numbers for `make bench`: how long the zoo takes to train, and what TransformerLens costs.

Wall-clock numbers live here and are printed, never stored in figure data.
"""

import statistics
import time
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from explorer.models import recipes, training, zoo
from explorer.models.reference import PlainTransformer


def _time_training_steps(model: torch.nn.Module, tokens: torch.Tensor, steps: int) -> float:
    """CPU seconds for `steps` AdamW steps (process time: robust to other processes on the machine)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps + 1):
        if i == 1:  # the first step allocates optimizer state: leave it out
            start = time.process_time()
        loss = training.next_token_loss(model(tokens), tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.process_time() - start


def throughput(name: str = "gelu-2l", scale: zoo.Scale = "full", steps: int = 10, rounds: int = 5) -> dict[str, Any]:
    """Training tokens per CPU-second through TransformerBridge vs a plain PyTorch model of the same shape.

    `transformer_lens` is the bridge as the zoo trains it (fused attention while no hook reads the
    pattern, see explorer.models.fused_attention); `transformer_lens_explicit_attention` is stock
    TransformerLens, which always materialises the pattern. The plain model is timed both with fused
    scaled_dot_product_attention and with explicit attention, to tell hook overhead from attention cost.
    """
    cfg = zoo.config(name, scale)
    arch, batch = cfg["arch"], cfg["train"]["batch"]
    tokens = torch.randint(0, arch["d_vocab"], (batch, arch["n_ctx"]), generator=torch.Generator().manual_seed(0))
    with training.cpu_threads(1, "cpu"):
        contenders = {
            "transformer_lens": training.build_bridge({**arch, "seed": 0}),
            "transformer_lens_explicit_attention": TransformerBridge.boot_native({**arch, "seed": 0}),
            "plain_pytorch": PlainTransformer(arch),
            "plain_pytorch_explicit_attention": PlainTransformer(arch, fused_attention=False),
        }
        timings: dict[str, list[float]] = {label: [] for label in contenders}
        for _ in range(rounds):  # interleaved, so drifting machine load hits all alike
            for label, model in contenders.items():
                timings[label].append(_time_training_steps(model, tokens, steps))
    per_s = {k: steps * tokens.numel() / statistics.median(v) for k, v in timings.items()}
    return {
        "model": name,
        "tokens_per_cpu_s": {k: round(v) for k, v in per_s.items()},
        "transformer_lens_vs_plain": round(per_s["transformer_lens"] / per_s["plain_pytorch"], 3),
        "explicit_attention_vs_plain": round(per_s["transformer_lens_explicit_attention"] / per_s["plain_pytorch"], 3),
    }


def zoo_training_time(scale: zoo.Scale = "full") -> dict[str, Any]:
    """Train every zoo model from scratch (bypassing the cache) and time it."""
    per_model = {}
    for name in zoo.names():
        cpu, wall = time.process_time(), time.perf_counter()
        run = recipes.train_uncached(zoo.config(name, scale), "cpu")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per_model[name] = {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "tokens": run.tokens_seen,
            "tokens_per_s": round(run.tokens_seen / wall),
        }
    return {
        "scale": scale,
        "models": per_model,
        "total_wall_s": round(sum(m["wall_s"] for m in per_model.values()), 1),
        "total_cpu_s": round(sum(m["cpu_s"] for m in per_model.values()), 1),
    }

