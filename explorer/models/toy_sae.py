"""A sparse autoencoder on the hidden layer of a toy model of superposition (explorer/models/toy_superposition.py).

The SAE of Bricken et al. (2023, "Towards monosemanticity"), at toy size:

    f  = ReLU(W_enc (h - b_dec) + b_enc)      (n_latents,)   the latents
    h' = W_dec f + b_dec                      (d,)           the reconstruction

trained on the toy model's hidden activations h = W x (fresh samples of the toy's own sparse
features every step) to minimise ||h - h'||^2 + l1 * sum_k f_k, with every decoder column kept at
unit length (so the L1 penalty cannot be dodged by shrinking f and growing W_dec). Latents that
fired on no input since the last check are resampled, as in that paper: each is pointed at an input
the SAE reconstructs badly (drawn with probability proportional to its squared error), its encoder
row set to that direction at a fifth of the mean live encoder norm, its bias to zero, and its Adam
state reset. Plain torch on one CPU thread, seeded.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from explorer.models import toy_superposition as toy
from explorer.models import training


@dataclass
class SAERun:
    W_enc: Tensor  # (latent, d)
    b_enc: Tensor  # (latent,)
    W_dec: Tensor  # (d, latent), unit columns
    b_dec: Tensor  # (d,)
    steps: list[int]  # checkpointed steps
    checkpoints: list[dict[str, Tensor]]  # the four parameters at each checkpointed step
    resampled: list[int]  # how many latents each resampling revived, in order


def encode(W_enc: Tensor, b_enc: Tensor, b_dec: Tensor, h: Float[Tensor, "batch d"]) -> Float[Tensor, "batch latent"]:
    return torch.relu((h - b_dec) @ W_enc.T + b_enc)


def decode(W_dec: Tensor, b_dec: Tensor, f: Float[Tensor, "batch latent"]) -> Float[Tensor, "batch d"]:
    return f @ W_dec.T + b_dec


def unit_columns(W: Tensor) -> Tensor:
    return W / W.norm(dim=0, keepdim=True).clamp_min(1e-9)


def toy_hidden(W_toy: Float[Tensor, "d feat"], density: float, batch: int, generator: torch.Generator) -> Float[Tensor, "batch d"]:
    """Hidden activations h = W x of the toy model, on fresh samples of its features."""
    x = toy.sample_features(batch, torch.full((1, W_toy.shape[1]), density), generator)[:, 0]  # (batch, feat)
    return x @ W_toy.T


@torch.enable_grad()
def train(W_toy: Float[Tensor, "d feat"], density: float, seed: int, *, n_latents: int, l1: float, steps: int, batch: int,
          lr: float, resample_every: int, resample_until: int, checkpoints: list[int], decay_after: float = 0.7) -> SAERun:
    """Adam at `lr`, decayed linearly to zero over the steps after `decay_after` of the run; dead latents
    resampled every `resample_every` steps up to step `resample_until`."""
    d = W_toy.shape[0]
    with training.cpu_threads(1, "cpu"):
        init = torch.Generator().manual_seed(seed)
        W_dec = unit_columns(torch.randn(d, n_latents, generator=init))
        W_enc = W_dec.T.clone().requires_grad_()  # tied at the start, as in the paper
        W_dec = W_dec.clone().requires_grad_()
        b_enc = torch.zeros(n_latents, requires_grad=True)
        b_dec = torch.zeros(d, requires_grad=True)
        params = [W_enc, b_enc, W_dec, b_dec]
        optimizer = torch.optim.Adam(params, lr=lr)
        data = torch.Generator().manual_seed(seed + 1)
        fired = torch.zeros(n_latents, dtype=torch.bool)
        marks, kept, states, resampled = set(checkpoints), [], [], []
        for step in range(steps + 1):
            if step in marks or step == steps:
                kept.append(step)
                states.append({"W_enc": W_enc.detach().clone(), "b_enc": b_enc.detach().clone(),
                               "W_dec": W_dec.detach().clone(), "b_dec": b_dec.detach().clone()})
            if step == steps:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (steps - step) / max(1.0, steps * (1 - decay_after)))
            h = toy_hidden(W_toy, density, batch, data)
            f = encode(W_enc, b_enc, b_dec, h)
            loss = ((decode(W_dec, b_dec, f) - h) ** 2).sum(-1).mean() + l1 * f.sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                W_dec.copy_(unit_columns(W_dec))
                fired |= (f > 0).any(0)
                if (step + 1) % resample_every == 0:
                    if step + 1 <= resample_until:
                        resampled.append(resample(~fired, params, optimizer, toy_hidden(W_toy, density, 16 * batch, data), data))
                    fired.zero_()
        return SAERun(W_enc=W_enc.detach(), b_enc=b_enc.detach(), W_dec=W_dec.detach(), b_dec=b_dec.detach(), steps=kept,
                      checkpoints=states, resampled=resampled)


@torch.no_grad()
def resample(dead: Tensor, params: list[Tensor], optimizer: torch.optim.Adam, h: Float[Tensor, "n d"],
             generator: torch.Generator) -> int:
    """Point each dead latent at an input drawn with probability proportional to its squared error."""
    W_enc, b_enc, W_dec, b_dec = params
    n_dead = int(dead.sum())
    error = ((decode(W_dec, b_dec, encode(W_enc, b_enc, b_dec, h)) - h) ** 2).sum(-1)  # (n,)
    if n_dead == 0 or float(error.sum()) == 0.0:
        return 0
    picked = torch.multinomial(error, n_dead, replacement=False, generator=generator)
    directions = unit_columns((h[picked] - b_dec).T)  # (d, dead)
    alive = ~dead
    scale = 0.2 * (W_enc[alive].norm(dim=-1).mean() if alive.any() else torch.tensor(1.0))
    W_dec[:, dead] = directions
    W_enc[dead] = directions.T * scale
    b_enc[dead] = 0.0
    for p in (W_enc, b_enc, W_dec):
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                if p is W_dec:
                    state[key][:, dead] = 0.0
                else:
                    state[key][dead] = 0.0
    return n_dead


@torch.no_grad()
def metrics(params: dict[str, Tensor], h: Float[Tensor, "n d"]) -> dict[str, float]:
    """SAELens's headline numbers on held-out activations: L0 (latents active per input), the fraction of
    variance explained, and the share of latents that fire on none of the inputs (dead). `params` holds
    W_enc, b_enc, W_dec and b_dec (a checkpoint, or `final(run)`)."""
    f = encode(params["W_enc"], params["b_enc"], params["b_dec"], h)
    error = ((decode(params["W_dec"], params["b_dec"], f) - h) ** 2).sum()
    variance = ((h - h.mean(0)) ** 2).sum()
    return {"l0": float((f > 0).sum(-1).float().mean()), "variance_explained": float(1 - error / variance),
            "dead_fraction": float(((f > 0).sum(0) == 0).float().mean())}


def final(run: SAERun) -> dict[str, Tensor]:
    return {"W_enc": run.W_enc, "b_enc": run.b_enc, "W_dec": run.W_dec, "b_dec": run.b_dec}


def firing(params: dict[str, Tensor], h: Float[Tensor, "n d"]) -> Float[Tensor, "latent"]:
    """Share of the inputs on which each latent is active."""
    return (encode(params["W_enc"], params["b_enc"], params["b_dec"], h) > 0).float().mean(0)


def max_cosine(true_directions: Float[Tensor, "d feat"], latents: Float[Tensor, "d latent"]) -> Float[Tensor, "feat"]:
    """For each true feature, the largest cosine between its direction and any latent's direction."""
    return (unit_columns(true_directions).T @ unit_columns(latents)).max(-1).values
