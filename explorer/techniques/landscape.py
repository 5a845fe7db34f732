"""Loss landscapes: optimizers on two-parameter surfaces, and 2-D slices of a real network's loss.

Two halves, one idea. A loss with two parameters can be drawn whole, so the four textbook
shapes (bowl, ravine, saddle, several minima) are small analytic functions here, and
`run_optimizer` drives the real `torch.optim` classes over them. A network has thousands of
parameters, so `loss_slice` evaluates the loss on a plane through the trained weights spanned by
two directions: random ones rescaled neuron by neuron to the weights' norms ("filter
normalization", Li et al. 2018), or the top two principal directions of the training trajectory.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from sklearn.decomposition import PCA
from torch import Tensor, nn
from torch.func import functional_call

from explorer.errors import check_choice

Params = dict[str, Tensor]  # parameter name -> tensor, as in model.named_parameters()


# --------------------------------------------------------------------------- two-parameter surfaces


@dataclass(frozen=True)
class Surface:
    """A didactic loss of two parameters, drawn on the square [-extent, extent]^2."""

    name: str
    label: str
    loss: Callable[[Tensor], Tensor]  # (..., 2) -> (...)
    starts: dict[str, tuple[float, float]]  # named starting points offered to the reader
    extent: float = 2.5


def _bowl(p: Float[Tensor, "... 2"]) -> Float[Tensor, "..."]:
    x, y = p.unbind(-1)
    return 0.5 * (x**2 + y**2)


RAVINE_CURVATURES = (0.2, 8.0)  # along and across the valley: condition number 40
RAVINE_ANGLE = math.radians(30)  # the valley is tilted, so no single coordinate is "the slow one"


def _ravine(p: Float[Tensor, "... 2"]) -> Float[Tensor, "..."]:
    x, y = p.unbind(-1)
    c, s = math.cos(RAVINE_ANGLE), math.sin(RAVINE_ANGLE)
    along, across = c * x + s * y, -s * x + c * y
    return 0.5 * (RAVINE_CURVATURES[0] * along**2 + RAVINE_CURVATURES[1] * across**2)


def _saddle(p: Float[Tensor, "... 2"]) -> Float[Tensor, "..."]:
    """A saddle at the origin (curving up in x, down in y) between two minima at (0, +-1)."""
    x, y = p.unbind(-1)
    return 0.5 * x**2 + 0.25 * (y**2 - 1) ** 2


WELLS = ((1.2, 1.0, 1.0), (-1.3, 0.5, 0.7), (0.3, -1.4, 0.45))  # (x, y, depth): three basins


def _wells(p: Float[Tensor, "... 2"]) -> Float[Tensor, "..."]:
    """A wide bowl with three Gaussian wells of different depths: three minima of different quality."""
    x, y = p.unbind(-1)
    loss = 0.08 * (x**2 + y**2)
    for cx, cy, depth in WELLS:
        loss = loss - depth * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.6)
    return loss


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface("bowl", "Convex bowl", _bowl, {"A": (-2.0, 1.5), "B": (1.8, 1.8), "C": (0.5, -2.2)}),
        Surface("ravine", "Ill-conditioned ravine", _ravine, {"A": (-2.0, 1.0), "B": (2.2, -0.2), "C": (-0.5, -2.0)}),
        Surface("saddle", "Saddle point", _saddle, {"A": (2.0, 0.001), "B": (2.0, 0.1), "C": (-1.5, -0.01)}),
        Surface("wells", "Non-convex, three minima", _wells, {"A": (2.2, 2.2), "B": (-2.2, -1.0), "C": (1.0, -2.2)}),
    )
}
OPTIMIZERS = ("sgd", "adam")


def get_surface(name: str) -> Surface:
    check_choice("surface", name, SURFACES)
    return SURFACES[name]


def surface_grid(surface: Surface, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss on a points x points grid: (xs, ys, loss) with loss[i, j] at (xs[j], ys[i])."""
    xs = torch.linspace(-surface.extent, surface.extent, points, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), dim=-1)  # (points, points, 2)
    return xs.numpy(), xs.numpy(), surface.loss(grid).numpy()


def surface_minimum(surface: Surface) -> tuple[float, tuple[float, float]]:
    """Global minimum (value, point): the best cell of a fine grid, polished with L-BFGS."""
    xs, ys, loss = surface_grid(surface, 201)
    i, j = np.unravel_index(np.argmin(loss), loss.shape)
    point = torch.tensor([xs[j], ys[i]], dtype=torch.float64, requires_grad=True)
    lbfgs = torch.optim.LBFGS([point], max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure() -> Tensor:
        lbfgs.zero_grad()
        value = surface.loss(point)
        value.backward()
        return value

    lbfgs.step(closure)
    return float(surface.loss(point.detach())), tuple(point.detach().tolist())


def make_optimizer(name: str, params: Sequence[Tensor], lr: float, momentum: float, beta2: float = 0.999) -> torch.optim.Optimizer:
    """SGD with `momentum` (0 is plain SGD), or Adam with beta1 = `momentum` and `beta2`."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr, betas=(momentum, beta2))


def run_optimizer(
    surface: Surface,
    optimizer: str,
    lr: float,
    momentum: float,
    start: Sequence[float],
    steps: int,
    blow_up: float = 100.0,
    beta2: float = 0.999,
) -> Float[np.ndarray, "points 3"]:
    """The real trajectory of `optimizer` from `start`: rows (x, y, loss) before each step.

    Stops early (fewer than steps + 1 rows) once a coordinate leaves [-blow_up, blow_up]: the run diverged.
    """
    theta = nn.Parameter(torch.tensor(start, dtype=torch.float64))
    opt = make_optimizer(optimizer, [theta], lr, momentum, beta2)
    rows = []
    for step in range(steps + 1):
        loss = surface.loss(theta)
        rows.append((*theta.detach().tolist(), loss.item()))
        if step == steps or not torch.isfinite(theta).all() or theta.abs().max() > blow_up:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.array(rows)


# --------------------------------------------------------------------------- slices of a network's loss


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> Params:
    """A random direction in weight space, rescaled neuron by neuron (Li et al. 2018).

    Each output unit's slice of a weight (a row of a Linear weight, one filter of a conv) gets
    the norm of the same slice of the model's weights, so a step of 1 along the direction moves
    every unit by as much as its own size, whatever the layer's scale. Biases get zero, as in
    the paper: their scale carries little and would dominate small layers.
    """
    direction = {}
    for name, weight in model.named_parameters():
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype).to(weight.device)
        if weight.dim() <= 1:
            direction[name] = torch.zeros_like(weight)
            continue
        dims = tuple(range(1, weight.dim()))  # everything but the output unit
        scale = weight.detach().norm(dim=dims, keepdim=True) / noise.norm(dim=dims, keepdim=True).clamp_min(1e-12)
        direction[name] = noise * scale
    return direction


def flatten(params: Params) -> Float[Tensor, " n_params"]:
    return torch.cat([p.detach().reshape(-1) for p in params.values()])


def unflatten(vector: Float[Tensor, " n_params"], like: Params) -> Params:
    out, offset = {}, 0
    for name, p in like.items():
        out[name] = vector[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    return out


def trajectory_pca_directions(trajectory: Sequence[Params], center: Params) -> tuple[Params, Params, np.ndarray]:
    """The top two principal directions of (weights at each checkpoint - center), and their variance ratios.

    Random directions in a space of thousands of dimensions are almost orthogonal to the path
    training took, so the path projects onto a dot; its principal directions show it (Li et al. 2018, sec. 7).
    """
    offsets = torch.stack([flatten(p) - flatten(center) for p in trajectory]).cpu().double().numpy()  # (checkpoints, n_params)
    pca = PCA(n_components=2, svd_solver="full").fit(offsets)
    first, second = (torch.from_numpy(c).to(flatten(center)) for c in pca.components_)
    return unflatten(first, center), unflatten(second, center), pca.explained_variance_ratio_


def project_onto_plane(params: Params, center: Params, directions: tuple[Params, Params]) -> tuple[float, float]:
    """Plane coordinates (a, b) minimizing |params - center - a d1 - b d2| (the directions need not be orthogonal)."""
    basis = torch.stack([flatten(d) for d in directions], dim=1).double()  # (n_params, 2)
    offset = (flatten(params) - flatten(center)).double()  # (n_params,)
    coords = torch.linalg.lstsq(basis, offset.unsqueeze(1)).solution.squeeze(1)
    return float(coords[0]), float(coords[1])


@torch.no_grad()
def loss_slice(
    model: nn.Module,
    directions: tuple[Params, Params],
    alphas: Float[Tensor, " n_alpha"],
    betas: Float[Tensor, " n_beta"],
    x: Float[Tensor, "batch features"],
    y: Int[Tensor, " batch"],
) -> Float[Tensor, "n_beta n_alpha"]:
    """Mean cross-entropy of `model` with weights center + a d1 + b d2, for every (b, a) on the grid."""
    center = {name: p.detach() for name, p in model.named_parameters()}
    d1, d2 = directions
    was_training = model.training
    model.eval()
    out = torch.empty(len(betas), len(alphas))
    for i, b in enumerate(betas.tolist()):
        for j, a in enumerate(alphas.tolist()):
            weights = {name: w + a * d1[name] + b * d2[name] for name, w in center.items()}
            out[i, j] = F.cross_entropy(functional_call(model, weights, (x,)), y).item()
    model.train(was_training)
    return out


def center_margin(grid: Float[Tensor, "n n"]) -> float:
    """Lowest loss among the 8 cells around the grid's center minus the center's loss (>= 0: a local minimum)."""
    c = grid.shape[0] // 2
    block = grid[c - 1 : c + 2, c - 1 : c + 2].flatten()
    neighbours = torch.cat([block[:4], block[5:]])
    return float(neighbours.min() - grid[c, c])
