"""Measuring induction: head scores from attention patterns, losses on repeated tokens,
K-composition between heads, and head ablation.

The probe is the standard one: a block of `half` random tokens followed by the same block again.
On the second copy, a previous-token head attends one position back, and an induction head attends
to the token *after* the earlier occurrence of the current token (offset `half - 1` back).
"""

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from explorer.models.training import next_token_loss

PATTERN = "blocks.{layer}.attn.hook_pattern"
Z = "blocks.{layer}.attn.hook_z"


def detection_score(pattern: Float[Tensor, "batch head q k"], detection: Float[Tensor, "q k"], rows: slice = slice(None)) -> Float[Tensor, " head"]:
    """Share of attention that lands where `detection` is 1, over the chosen query rows.

    With all rows this is TransformerLens's head-detector "mul" score (averaged over the batch).
    """
    pattern = pattern[:, :, rows]  # (batch, head, q, k)
    detection = detection[rows].to(pattern)  # (q, k)
    return ((pattern * detection).sum((-2, -1)) / pattern.sum((-2, -1))).mean(0)


def previous_token_detection(n: int) -> Float[Tensor, "n n"]:
    return torch.diag(torch.ones(n - 1), -1)


def induction_detection(half: int) -> Float[Tensor, "n n"]:
    """1 where query q in the second copy looks at q - half + 1 (the token after its earlier copy)."""
    return torch.diag(torch.ones(half + 1), -(half - 1))[: 2 * half, : 2 * half] * (torch.arange(2 * half) >= half)[:, None]


def head_scores(model: TransformerBridge, tokens: Int[Tensor, "batch two_half"]) -> dict[str, Float[Tensor, "layer head"]]:
    """Previous-token and induction scores of every head on repeated random tokens."""
    half = tokens.shape[1] // 2
    names = [PATTERN.format(layer=layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    prev = previous_token_detection(2 * half)
    induction = induction_detection(half)
    return {
        "previous_token": torch.stack([detection_score(cache[n], prev, slice(1, None)) for n in names]).cpu(),
        "induction": torch.stack([detection_score(cache[n], induction, slice(half, None)) for n in names]).cpu(),
    }


def per_position_loss(model: TransformerBridge, tokens: Int[Tensor, "batch pos"], hooks=()) -> Float[Tensor, " pos_minus_1"]:
    """Mean next-token loss at each position (entry i predicts token i+1), optionally under hooks."""
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks)) if hooks else model(tokens)
    return next_token_loss(logits, tokens, per_token=True).mean(0).cpu()


def repeated_half_loss(loss_by_pos: Float[Tensor, " pos_minus_1"], half: int) -> float:
    """Loss on the tokens of the second copy that are predictable from the first (positions half+1…)."""
    return loss_by_pos[half:].mean().item()


def icl_score(loss_by_pos: Float[Tensor, " pos_minus_1"], window: int = 4) -> float:
    """In-context learning score: loss late in the context minus loss early (negative = the context helps)."""
    return (loss_by_pos[-window:].mean() - loss_by_pos[1 : 1 + window].mean()).item()


def k_composition(model: TransformerBridge) -> Float[Tensor, "head_l0 head_l1"]:
    """K-composition of each layer-0 head into each layer-1 head (Elhage et al., 2021).

    ||W_OV^0 (W_QK^1)^T||_F / (||W_OV^0||_F ||W_QK^1||_F): how much of what head 0 writes is read by
    head 1's keys. Row-vector convention: W_OV = W_V W_O and W_QK = W_Q W_K^T, both (d_model, d_model).
    """
    with torch.no_grad():
        ov = model.W_V[0] @ model.W_O[0]  # (head, d_model, d_model)
        qk = model.W_Q[1] @ model.W_K[1].transpose(-1, -2)  # (head, d_model, d_model)
        composed = ov[:, None] @ qk[None].transpose(-1, -2)  # (head_l0, head_l1, d_model, d_model)
        norms = ov.norm(dim=(-2, -1))[:, None] * qk.norm(dim=(-2, -1))[None, :]
        return (composed.norm(dim=(-2, -1)) / norms).cpu()


def random_composition_baseline(d_model: int, d_head: int, samples: int = 200, seed: int = 0) -> float:
    """The K-composition of random low-rank matrices of the same shapes: the score of 'no relation'."""
    g = torch.Generator().manual_seed(seed)

    def low_rank() -> Tensor:
        return torch.randn(samples, d_model, d_head, generator=g) @ torch.randn(samples, d_head, d_model, generator=g)

    a, b = low_rank(), low_rank()
    return ((a @ b.transpose(-1, -2)).norm(dim=(-2, -1)) / (a.norm(dim=(-2, -1)) * b.norm(dim=(-2, -1)))).mean().item()


def ablate_head_hook(layer: int, head: int, mean_over: Tensor | None = None):
    """A hook on blocks.{layer}.attn.hook_z that replaces one head's output with its mean (or zero)."""

    def hook(z: Float[Tensor, "batch pos head d_head"], hook=None) -> Tensor:
        z = z.clone()
        z[:, :, head] = 0.0 if mean_over is None else mean_over.to(z)
        return z

    return Z.format(layer=layer), hook
