"""Measuring induction: losses on repeated tokens and K-composition between heads, each with its null.

Head scores come from explorer.techniques.probes (the canonical probe set, shared by every page),
ablations from explorer.techniques.patching. On a row `prefix + r + r`, a previous-token head
attends one position back, and an induction head, in the second copy, attends to the token *after*
the earlier occurrence of the current token.
"""

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from explorer.models.training import next_token_loss


@torch.no_grad()
def per_position_loss(model: TransformerBridge, tokens: Int[Tensor, "batch pos"], hooks=()) -> Float[Tensor, " pos_minus_1"]:
    """Mean next-token loss at each position (entry i predicts token i+1), optionally under hooks."""
    logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks)) if hooks else model(tokens)
    return next_token_loss(logits, tokens, per_token=True).mean(0).cpu()


def repeated_half_loss(loss_by_pos: Float[Tensor, " pos_minus_1"], second_copy_start: int) -> float:
    """Loss on the second-copy tokens that the first copy predicts.

    Entry i predicts token i+1; the first token of the second copy (at `second_copy_start`) is not
    predictable, the ones after it are: entries second_copy_start ... end.
    """
    return loss_by_pos[second_copy_start:].mean().item()


def first_copy_loss(loss_by_pos: Float[Tensor, " pos_minus_1"], prefix: int, half: int) -> float:
    """Loss on the first copy's tokens after its first: random, so no algorithm can predict them."""
    return loss_by_pos[prefix : prefix + half - 1].mean().item()


def icl_score(loss_by_pos: Float[Tensor, " pos_minus_1"], window: int = 4) -> float:
    """In-context learning score: loss late in the context minus loss early (negative = the context helps)."""
    return (loss_by_pos[-window:].mean() - loss_by_pos[1 : 1 + window].mean()).item()


def ov_qk(model: TransformerBridge, writer: int = 0, reader: int = 1) -> tuple[Tensor, Tensor]:
    """W_OV of every head of layer `writer` and W_QK of every head of layer `reader`, each (head, d_model, d_model).

    Row-vector convention: W_OV = W_V W_O and W_QK = W_Q W_Kᵀ.
    """
    with torch.no_grad():
        ov = model.W_V[writer] @ model.W_O[writer]  # (head, d_model, d_model)
        qk = model.W_Q[reader] @ model.W_K[reader].transpose(-1, -2)  # (head, d_model, d_model)
    return ov.cpu(), qk.cpu()


def composition_score(ov: Float[Tensor, "... d d"], qk: Float[Tensor, "... d d"]) -> Float[Tensor, "..."]:
    """K-composition ||W_OV W_QKᵀ||_F / (||W_OV||_F ||W_QK||_F) (Elhage et al., 2021), broadcasting."""
    return (ov @ qk.transpose(-1, -2)).norm(dim=(-2, -1)) / (ov.norm(dim=(-2, -1)) * qk.norm(dim=(-2, -1)))


def k_composition(model: TransformerBridge) -> Float[Tensor, "head_l0 head_l1"]:
    """K-composition of each layer-0 head into each layer-1 head: how much of what the layer-0 head
    writes lands in the subspace the layer-1 head's keys read."""
    ov, qk = ov_qk(model)
    return composition_score(ov[:, None], qk[None])


def random_rotations(d: int, samples: int, generator: torch.Generator) -> Float[Tensor, "samples d d"]:
    """Haar-random orthogonal matrices (QR of a Gaussian, signs fixed so the law is uniform)."""
    q, r = torch.linalg.qr(torch.randn(samples, d, d, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]


def k_composition_null(model: TransformerBridge, samples: int = 200, seed: int = 0) -> Float[Tensor, "head_l0 head_l1 samples"]:
    """The K-composition each pair would have if the reader's basis were unrelated to the writer's.

    Each sample rotates the residual stream between the two heads by a random rotation R:
    ||W_OV R W_QKᵀ|| / (||W_OV|| ||W_QK||). Both matrices keep their norms, ranks and spectra;
    only their alignment is random. The mean of the squared null score is 1/d_model.
    """
    ov, qk = (m.double() for m in ov_qk(model))
    rotations = random_rotations(ov.shape[-1], samples, torch.Generator().manual_seed(seed))  # (samples, d, d)
    rotated = ov[:, None] @ rotations[None]  # (head_l0, samples, d, d)
    return composition_score(rotated[:, None], qk[None, :, None]).float()  # (head_l0, head_l1, samples)
