"""What the flagship's training film records at a step, read through TransformerLens hooks.

Every head's previous-token score (on held-out text) and induction score (the canonical repeat
probe of explorer.techniques.probes, on random printable characters), the held-out loss, the loss
on the second copy of the probe, and the in-context-learning score of Olsson et al. (loss late in
the context minus loss early in it; negative when the model uses its context).
"""

import torch
from jaxtyping import Int
from torch import Tensor

from explorer.models import flagship
from explorer.models.training import next_token_loss
from explorer.techniques import heads, probes

EARLY, LATE = slice(32, 64), slice(224, 256)  # positions (of the byte predicted) compared by the ICL score


def probe_rows(n_rows: int, n_ctx: int = flagship.ARCH["n_ctx"]) -> tuple[Int[Tensor, "rows pos"], int]:
    """The repeat probe for a byte model: `half` distinct printable characters, then the same again."""
    half = probes.repeat_length(n_ctx)
    generator = torch.Generator().manual_seed(probes.PROBE_SEED)
    return probes.repeated_random_tokens(n_rows, half, flagship.PRINTABLE, generator), half


@torch.no_grad()
def film_frame(plain_weights: dict[str, Tensor], heldout: Int[Tensor, "rows n_ctx"], n_probe_rows: int) -> dict:
    """The film's numbers for the model with these (PlainTransformer) weights."""
    model = flagship.lens_model(plain_weights, device=heldout.device)
    repeated, half = probe_rows(n_probe_rows)
    repeated = repeated.to(heldout.device)
    scores = heads.head_scores(model, heldout[:n_probe_rows], ("previous_token",)).merge(
        heads.head_scores(model, repeated, ("induction",)), on=["layer", "head"])
    per_token = torch.cat([next_token_loss(model(rows), rows, per_token=True) for rows in heldout.split(16)])  # (rows, pos-1)
    by_position = per_token.mean(0)  # (pos-1,): entry p is the loss of predicting byte p+1
    early = by_position[EARLY.start - 1 : EARLY.stop - 1].mean()
    late = by_position[LATE.start - 1 : LATE.stop - 1].mean()
    repeated_loss = next_token_loss(model(repeated), repeated, per_token=True)[:, half:].mean()  # second copy
    frame = {"heldout_loss": by_position.mean().item(), "icl_score": (late - early).item(), "repeated_half_loss": repeated_loss.item()}
    for kind in ("previous_token", "induction"):
        best = scores.loc[scores[kind].idxmax()]
        frame[f"{kind}_max"] = float(best[kind])
        frame[f"{kind}_head"] = f"L{int(best['layer'])}H{int(best['head'])}"
        frame[kind] = [[round(v, 4) for v in row] for row in probes.score_grid(scores, kind).tolist()]  # (layer, head)
    return frame
