"""Head detectors: score every attention head by how much of its attention lands where a head
of a known kind would look (the previous token, an earlier copy of the current token, the token
after an earlier copy, or the first token).

The detection patterns for the first three kinds are TransformerLens's own
(`transformer_lens.head_detector`); the score differs from its "mul" score in one way: it averages
only over query rows that have somewhere to look. A random sequence has no duplicates in its first
half, and TransformerLens would count those rows as misses, capping a perfect induction head at
about one half; here a perfect head scores 1.
"""

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from jaxtyping import Float, Int
from transformer_lens.head_detector import (
    get_duplicate_token_head_detection_pattern,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)

from explorer.errors import check_choice


def first_token_detection_pattern(tokens: Int[torch.Tensor, "pos"]) -> Float[torch.Tensor, "q k"]:
    """Every query after the first looks at position 0 (the BOS token, when the model has one)."""
    pattern = torch.zeros(tokens.shape[-1], tokens.shape[-1])
    pattern[1:, 0] = 1.0
    return pattern


DETECTION_PATTERNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "previous_token": get_previous_token_head_detection_pattern,
    "duplicate_token": get_duplicate_token_head_detection_pattern,
    "induction": get_induction_head_detection_pattern,
    "first_token": first_token_detection_pattern,
}
HEAD_KINDS = tuple(DETECTION_PATTERNS)


def detection_pattern(kind: str, tokens: Int[torch.Tensor, "pos"]) -> Float[torch.Tensor, "q k"]:
    """The 0/1 (query, key) mask a head of this kind would put its attention on."""
    check_choice("head kind", kind, HEAD_KINDS)
    return DETECTION_PATTERNS[kind](tokens.detach().cpu().reshape(1, -1)).float()


def attention_scores(
    patterns: Float[torch.Tensor, "head q k"], detection: Float[torch.Tensor, "q k"]
) -> Float[torch.Tensor, "head"]:
    """Mean attention mass on the detection mask, over query rows where the mask is not empty.

    Returns NaN for every head when no row has a target (e.g. no token repeats).
    """
    detection = detection.to(patterns.device, patterns.dtype)
    rows = detection.sum(-1) > 0  # (q,)
    if not rows.any():
        return torch.full(patterns.shape[:1], float("nan"))
    mass = (patterns * detection).sum(-1)  # (head, q)
    return mass[:, rows].mean(-1).cpu()


LOGIT_BYTES = 2**28  # logits one forward pass may hold (256 MB): the zoo's whole probe batch, five GPT-2 rows of 256 tokens


def row_chunks(model, tokens: Int[torch.Tensor, "batch pos"]) -> list[slice]:
    """Slices of rows small enough that one forward pass's logits stay under LOGIT_BYTES (64 rows of
    256 tokens of GPT-2 logits would be 3.3 GB, only to be thrown away)."""
    per_row = tokens.shape[1] * model.cfg.d_vocab * 4
    step = max(1, LOGIT_BYTES // per_row)
    return [slice(i, i + step) for i in range(0, tokens.shape[0], step)]


@torch.no_grad()
def head_scores(model, tokens: Int[torch.Tensor, "batch pos"], kinds: Sequence[str] = HEAD_KINDS) -> pd.DataFrame:
    """One row per head (layer, head) and one column per kind: the head's score, averaged over the batch.

    Sequences on which a kind has no target at all (no repeated token for 'induction') are left out
    of that kind's average.
    """
    for kind in kinds:
        check_choice("head kind", kind, HEAD_KINDS)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    detections = {kind: [detection_pattern(kind, row) for row in tokens] for kind in kinds}
    per_seq = {kind: torch.zeros(tokens.shape[0], n_layers, n_heads) for kind in kinds}  # (batch, layer, head)

    def scorer(layer: int, rows: slice):
        def score(pattern, hook=None):  # (rows, head, q, k): scored as each layer runs, never all layers at once
            for kind in kinds:
                for i, b in enumerate(range(tokens.shape[0])[rows]):
                    per_seq[kind][b, layer] = attention_scores(pattern[i], detections[kind][b])

        return score

    for rows in row_chunks(model, tokens):
        model.run_with_hooks(tokens[rows], fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", scorer(layer, rows)) for layer in range(n_layers)])
    columns = {kind: per_seq[kind].flatten(1).nanmean(0).numpy() for kind in kinds}  # (layer*head,)
    index = pd.MultiIndex.from_product([range(n_layers), range(n_heads)], names=["layer", "head"])
    return pd.DataFrame(columns, index=index).reset_index()

