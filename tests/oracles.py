"""Oracles shared by the oracle tests: targets and scores written out by hand, and tiny models
whose every parameter is live."""

import math

import torch
from transformer_lens.model_bridge import TransformerBridge
import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)


def scrambled_bridge(seed: int = 0, **arch) -> TransformerBridge:
    """A tiny TL-native model whose every parameter is random: layer-norm weights away from 1,
    biases (attention output, MLP, layer norms) away from 0, so no term of a decomposition vanishes."""
    cfg = dict(n_layers=2, d_model=16, n_ctx=32, d_head=4, n_heads=4, d_vocab=30, act_fn="gelu", attn_only=False,
               normalization_type="LN", seed=seed) | arch
    model = TransformerBridge.boot_native(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # layer-norm weights and every bias
                norm = ".ln" in name or name.startswith("ln_")
                centre = 1.0 if norm and name.endswith("weight") else 0.0
                p.copy_(centre + 0.5 * torch.randn(p.shape, generator=g))
    return model


def explicit_targets(kind: str, tokens: list[int]) -> list[list[int]]:
    """For each query position, the key positions a head of `kind` attends to (written out)."""
    n = len(tokens)
    if kind == "previous_token":
        return [[q - 1] if q else [] for q in range(n)]
    if kind == "first_token":
        return [[0] if q else [] for q in range(n)]
    if kind == "duplicate_token":
        return [[k for k in range(q) if tokens[k] == tokens[q]] for q in range(n)]
    return [[k + 1 for k in range(q) if tokens[k] == tokens[q] and k + 1 <= q] for q in range(n)]  # induction


def explicit_score(pattern: torch.Tensor, targets: list[list[int]]) -> float:
    """Mean over query rows that have a target of the attention mass on the targets (NaN: none has)."""
    rows = [sum(pattern[q, k].item() for k in ks) for q, ks in enumerate(targets) if ks]
    return sum(rows) / len(rows) if rows else math.nan


def causal_patterns(n_heads: int, n: int, seed: int) -> torch.Tensor:
    scores = torch.randn(n_heads, n, n, generator=torch.Generator().manual_seed(seed))
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -torch.inf).softmax(-1)  # (head, q, k)
