"""Toy models of superposition (Elhage et al. 2022): the ReLU output model, many instances at once.

Each instance maps n_features sparse features into n_hidden dimensions and back,

    h  = W x                      (n_hidden,)       W: (n_hidden, n_features)
    x' = ReLU(W^T h + b)          (n_features,)

and is trained to reconstruct x under the importance-weighted squared error
sum_i I_i (x_i - x'_i)^2. Each feature is present with probability `density` = 1 - S (S is the
sparsity) and then uniform in [0, 1], independently of the others. The data is synthetic, as in the
paper: the features are defined by the generator, not found in anything.

Many instances (sparsities, importances, seeds) train as one batched model with a leading instance
dimension: W is (instance, n_hidden, n_features). Adam's update is per parameter and the loss is a
sum over instances, so each instance trains exactly as it would alone. Instance k starts from its
own seed's initialisation (Xavier normal, as the paper's notebook), and every instance draws its own
data from one shared generator. Plain torch on one CPU thread; same inputs, same bytes.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from explorer.models import training


def init_weights(seeds: list[int], n_hidden: int, n_features: int) -> Float[Tensor, "inst hidden feat"]:
    """Xavier-normal W for each instance, from that instance's own seed (so a seed is the same network
    whatever else is in the batch)."""
    std = (2.0 / (n_hidden + n_features)) ** 0.5
    return torch.stack([torch.randn(n_hidden, n_features, generator=torch.Generator().manual_seed(int(s))) * std
                        for s in seeds])


def sample_features(batch: int, density: Float[Tensor, "inst feat"], generator: torch.Generator) -> Float[Tensor, "batch inst feat"]:
    """Each feature present with probability `density` (per instance and feature), then uniform in [0, 1]."""
    shape = (batch, *density.shape)
    u = torch.rand(shape, generator=generator)  # present when u < density; then u / density is uniform in [0, 1)
    return torch.where(u < density, u / density, 0.0)


def forward(W: Float[Tensor, "inst hidden feat"], b: Float[Tensor, "inst feat"],
            x: Float[Tensor, "batch inst feat"]) -> Float[Tensor, "batch inst feat"]:
    h = torch.einsum("ihf,bif->bih", W, x)  # (batch, inst, hidden)
    return torch.relu(torch.einsum("ihf,bih->bif", W, h) + b)


def hidden(W: Float[Tensor, "inst hidden feat"], x: Float[Tensor, "batch inst feat"]) -> Float[Tensor, "batch inst hidden"]:
    return torch.einsum("ihf,bif->bih", W, x)


def weighted_loss(x: Tensor, out: Tensor, importance: Float[Tensor, "inst feat"]) -> Float[Tensor, "inst"]:
    """Importance-weighted squared error per instance, summed over features, mean over the batch."""
    return (importance * (x - out) ** 2).sum(-1).mean(0)


@dataclass
class ToyRun:
    W: Tensor  # (inst, hidden, feat), final weights
    b: Tensor  # (inst, feat)
    steps: list[int]  # checkpointed steps
    W_checkpoints: Tensor  # (checkpoint, inst, hidden, feat)
    b_checkpoints: Tensor  # (checkpoint, inst, feat)
    loss: Tensor  # (checkpoint, inst): the training loss on a fixed evaluation batch


@torch.enable_grad()
def train(importance: Float[Tensor, "inst feat"], density: Float[Tensor, "inst feat"], seeds: list[int], *,
          n_hidden: int, steps: int, batch: int, lr: float, checkpoints: list[int], data_seed: int = 0,
          eval_batch: int = 4096) -> ToyRun:
    """Train every instance at once with Adam at a constant rate (the paper's notebook: lr 1e-3, batch 1024).

    `importance` and `density` are given per instance and feature; `seeds` (one per instance) fix the
    initial weights. W and b are stored at each step in `checkpoints` (0 is the initialisation).
    """
    n_inst, n_features = importance.shape
    if density.shape != importance.shape or len(seeds) != n_inst:
        raise ValueError(f"importance {tuple(importance.shape)}, density {tuple(density.shape)} and "
                         f"{len(seeds)} seeds must describe the same instances")
    with training.cpu_threads(1, "cpu"):
        W = init_weights(seeds, n_hidden, n_features).requires_grad_()
        b = torch.zeros(n_inst, n_features, requires_grad=True)
        optimizer = torch.optim.Adam([W, b], lr=lr)
        generator = torch.Generator().manual_seed(data_seed)
        heldout = sample_features(eval_batch, density, torch.Generator().manual_seed(data_seed + 10_000))
        marks = set(checkpoints)
        Ws, bs, losses, kept = [], [], [], []
        for step in range(steps + 1):
            if step in marks or step == steps:
                with torch.no_grad():
                    Ws.append(W.detach().clone())
                    bs.append(b.detach().clone())
                    losses.append(weighted_loss(heldout, forward(W, b, heldout), importance))
                    kept.append(step)
            if step == steps:
                break
            x = sample_features(batch, density, generator)
            loss = weighted_loss(x, forward(W, b, x), importance).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return ToyRun(W=W.detach(), b=b.detach(), steps=kept, W_checkpoints=torch.stack(Ws), b_checkpoints=torch.stack(bs),
                  loss=torch.stack(losses))


# --------------------------------------------------------------------------- measures of the learned W


def norms(W: Float[Tensor, "... hidden feat"]) -> Float[Tensor, "... feat"]:
    """||W_i||, the length of each feature's column: about 1 when the feature is represented, 0 when not."""
    return W.norm(dim=-2)


def superposition(W: Float[Tensor, "... hidden feat"]) -> Float[Tensor, "... feat"]:
    """sum_{j != i} (Ŵ_i · W_j)^2: how much of the other features lands on feature i's direction."""
    unit = W / W.norm(dim=-2, keepdim=True).clamp_min(1e-9)
    overlap = torch.einsum("...hi,...hj->...ij", unit, W) ** 2  # (..., feat, feat)
    return overlap.sum(-1) - overlap.diagonal(dim1=-2, dim2=-1)


def dimensionality(W: Float[Tensor, "... hidden feat"]) -> Float[Tensor, "... feat"]:
    """D_i = ||W_i||^2 / sum_j (Ŵ_i · W_j)^2 (j over all features, i included): the share of a hidden
    dimension feature i has to itself (1: a dedicated dimension, 1/2: an antipodal pair, 2/5: a pentagon)."""
    unit = W / W.norm(dim=-2, keepdim=True).clamp_min(1e-9)
    overlap = torch.einsum("...hi,...hj->...ij", unit, W) ** 2
    return W.norm(dim=-2) ** 2 / overlap.sum(-1).clamp_min(1e-12)


def dimensions_per_feature(W: Float[Tensor, "... hidden feat"]) -> Float[Tensor, "..."]:
    """n_hidden / ||W||_F^2: hidden dimensions per represented feature (the paper's summary of a model)."""
    return W.shape[-2] / (W ** 2).sum((-2, -1))
