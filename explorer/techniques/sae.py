"""Sparse autoencoders on a real model's activations, in plain torch, and the metrics SAELens reports.

The SAE of Bricken et al. (2023, "Towards monosemanticity"), as in explorer/models/toy_sae.py but
trained on a fixed set of activations instead of fresh toy samples:

    x̃  = x / scale                              (d,)       activations normalised: E ||x̃||² = d
    f  = ReLU(W_enc (x̃ - b_dec) + b_enc)         (latent,)  the latents
    x̃' = W_dec f + b_dec                         (d,)       the reconstruction (x' = scale · x̃')

minimising ||x̃ - x̃'||² + l1 · Σ_k f_k, every decoder column kept at unit length (so the penalty
cannot be dodged by shrinking f and growing W_dec). The encoder starts as the decoder's transpose,
b_dec at the mean activation; the L1 coefficient warms up linearly over the first `l1_warmup` of
the steps (fewer latents die early) and Adam's rate decays linearly to zero over the last
`decay` of them. Dead latents are not resampled: their share is reported instead.

Why not SAELens: `pip install sae-lens` (6.51, with this project's constraints) keeps the torch pin
but installs about twenty more distributions (statsmodels, nltk, plotly, babe, py2store, ...), and
site-packages is the flagship's corpus (explorer/data/code_corpus.py): their files would change the
held-out text that the other articles read. The metrics below follow SAELens's names and
definitions (L0, explained variance, dead and dense latents, CE loss recovered).
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from explorer.models import training

DENSE = 0.1  # a latent firing on more than this share of tokens counts as dense


@dataclass
class SAE:
    W_enc: Tensor  # (latent, d)
    b_enc: Tensor  # (latent,)
    W_dec: Tensor  # (d, latent), unit columns
    b_dec: Tensor  # (d,), in normalised units
    scale: Tensor  # () the activation normalisation: x̃ = x / scale
    losses: list[float]  # training loss every `log_every` steps
    log_every: int

    @property
    def n_latents(self) -> int:
        return self.W_enc.shape[0]


def unit_columns(W: Tensor) -> Tensor:
    return W / W.norm(dim=0, keepdim=True).clamp_min(1e-9)


def encode(sae: SAE, x: Float[Tensor, "batch d"]) -> Float[Tensor, "batch latent"]:
    """The latents of raw activations x."""
    return torch.relu((x / sae.scale - sae.b_dec) @ sae.W_enc.T + sae.b_enc)


def decode(sae: SAE, f: Float[Tensor, "batch latent"]) -> Float[Tensor, "batch d"]:
    """The reconstruction, in the activations' own units."""
    return (f @ sae.W_dec.T + sae.b_dec) * sae.scale


def reconstruct(sae: SAE, x: Float[Tensor, "batch d"]) -> Float[Tensor, "batch d"]:
    return decode(sae, encode(sae, x))


def init(x: Float[Tensor, "n d"], n_latents: int, seed: int) -> SAE:
    """The SAE before any training step: random unit decoder columns, the encoder their transpose."""
    scale = (x.pow(2).sum(-1).mean() / x.shape[1]).sqrt()
    generator = torch.Generator().manual_seed(seed)
    W_dec = unit_columns(torch.randn(x.shape[1], n_latents, generator=generator))
    return SAE(W_enc=W_dec.T.clone(), b_enc=torch.zeros(n_latents), W_dec=W_dec, b_dec=(x / scale).mean(0),
               scale=scale, losses=[], log_every=1)


@torch.enable_grad()
def train(x: Float[Tensor, "n d"], seed: int, *, n_latents: int, l1: float, steps: int, batch: int, lr: float,
          l1_warmup: float = 0.1, decay: float = 0.3, log_every: int = 50) -> SAE:
    """Adam on minibatches drawn (seeded) from the rows of x, on one CPU thread."""
    with training.cpu_threads(1, "cpu"):
        start = init(x, n_latents, seed)
        xn = x / start.scale
        W_enc, b_enc, W_dec, b_dec = (t.clone().requires_grad_() for t in (start.W_enc, start.b_enc, start.W_dec, start.b_dec))
        optimizer = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)
        generator = torch.Generator().manual_seed(seed + 1)
        losses, running = [], 0.0
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (steps - step) / max(1.0, steps * decay))
            coefficient = l1 * min(1.0, (step + 1) / max(1.0, steps * l1_warmup))
            h = xn[torch.randint(0, xn.shape[0], (batch,), generator=generator)]  # (batch, d)
            f = torch.relu((h - b_dec) @ W_enc.T + b_enc)
            mse = ((f @ W_dec.T + b_dec - h) ** 2).sum(-1).mean()
            loss = mse + coefficient * f.sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                W_dec.copy_(unit_columns(W_dec))
            running += float(mse.detach())
            if (step + 1) % log_every == 0:
                losses.append(running / log_every)
                running = 0.0
        return SAE(W_enc=W_enc.detach(), b_enc=b_enc.detach(), W_dec=W_dec.detach(), b_dec=b_dec.detach(),
                   scale=start.scale, losses=losses, log_every=log_every)


@torch.no_grad()
def latents(sae: SAE, x: Float[Tensor, "n d"], chunk: int = 8192) -> Float[Tensor, "n latent"]:
    return torch.cat([encode(sae, x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])


@torch.no_grad()
def explained_variance(x: Float[Tensor, "n d"], x_hat: Float[Tensor, "n d"]) -> float:
    """1 - Σ||x - x'||² / Σ||x - mean(x)||²: the share of the activations' variance the reconstruction keeps."""
    return float(1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


@torch.no_grad()
def metrics(sae: SAE, x: Float[Tensor, "n d"]) -> dict[str, float]:
    """SAELens's headline numbers on held-out activations: L0 (latents active per token), the fraction of
    variance explained, the share of latents that fire on none of the tokens (dead) and on more than
    DENSE of them (dense)."""
    f = latents(sae, x)
    density = (f > 0).float().mean(0)  # (latent,)
    return {"l0": float((f > 0).sum(-1).float().mean()), "variance_explained": explained_variance(x, decode(sae, f)),
            "dead_fraction": float((density == 0).float().mean()), "dense_fraction": float((density > DENSE).float().mean())}


@torch.no_grad()
def pca_reconstruction(train_x: Float[Tensor, "n d"], x: Float[Tensor, "m d"], k: int) -> Float[Tensor, "m d"]:
    """x projected onto the top-k principal directions of train_x (and its mean): a dense code of k numbers
    per token, the baseline an SAE with L0 = k should beat on what it explains per active number."""
    mean = train_x.mean(0)
    _, _, V = torch.linalg.svd(train_x - mean, full_matrices=False)  # V: (d, d), rows the directions
    basis = V[:k]  # (k, d)
    return (x - mean) @ basis.T @ basis + mean


def loss_recovered(clean: float, replaced: float, zero: float) -> float:
    """SAELens's CE loss score: (CE with the activation zeroed - CE with it replaced) / (zeroed - clean);
    1 when the replacement costs nothing, 0 when it is as bad as zeros."""
    return (zero - replaced) / (zero - clean)


def distinct_top_tokens(acts: Float[Tensor, "n latent"], token_ids: Tensor, top: int) -> Tensor:
    """For each latent (column), the number of distinct token ids among its `top` highest-activating tokens
    (only tokens where it is positive): 1 when a latent's strongest activations are all one token."""
    values, index = acts.topk(min(top, acts.shape[0]), dim=0)  # (top, latent)
    ids = token_ids[index]  # (top, latent)
    out = torch.zeros(acts.shape[1], dtype=torch.long)
    for k in range(acts.shape[1]):
        live = values[:, k] > 0
        out[k] = int(torch.unique(ids[live, k]).numel())
    return out
