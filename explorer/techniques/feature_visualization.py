"""Feature visualization by activation maximization: gradient ascent on the input.

Start from a grey image and climb the gradient of one unit's value, subject to a penalty that keeps
the image looking like an input (L2 pulls pixels toward zero, total variation penalizes
pixel-to-pixel jumps) and, optionally, a box constraint that clamps pixels to [0, 1] after every
step, the range real digits live in. Many targets are optimized at once, one image per target.
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from explorer.errors import check_choice


@dataclass(frozen=True)
class Regularizer:
    name: str
    l2: float  # weight of sum(x^2)
    tv: float  # weight of total variation
    clamp: bool  # project pixels onto [0, 1] after each step
    label: str


REGULARIZERS: dict[str, Regularizer] = {
    r.name: r
    for r in (
        Regularizer("box", 0.0, 0.0, True, "clamp to [0, 1] only"),
        Regularizer("box-l2", 0.1, 0.0, True, "clamp + L2 (0.1)"),
        Regularizer("box-l2-tv", 0.1, 0.1, True, "clamp + L2 (0.1) + total variation (0.1)"),
    )
}


def total_variation(images: Float[Tensor, "batch 8 8"]) -> Float[Tensor, " batch"]:
    """Anisotropic total variation: sum of absolute differences between neighbouring pixels."""
    dx = (images[:, :, 1:] - images[:, :, :-1]).abs().sum(dim=(1, 2))
    dy = (images[:, 1:, :] - images[:, :-1, :]).abs().sum(dim=(1, 2))
    return dx + dy


def layer_output(model: nn.Module, layer: str, x: Float[Tensor, "n 64"]) -> Float[Tensor, "n units"]:
    """The output of the Linear module `layer` (fc1, fc2: pre-activations; out: logits), from a forward hook."""
    modules = dict(model.named_children())
    check_choice("layer", layer, [name for name, m in modules.items() if isinstance(m, nn.Linear)])
    captured = {}
    handle = modules[layer].register_forward_hook(lambda module, inputs, output: captured.__setitem__("out", output))
    try:
        model(x)
    finally:
        handle.remove()
    return captured["out"]


def unit_objective(model: nn.Module, layer: str, units: Sequence[int]) -> Callable[[Tensor], Tensor]:
    """x (n, 64) -> (n,): the value of unit units[i] of `layer` on image i."""
    layer_output(model, layer, torch.zeros(1, 64, device=next(model.parameters()).device))  # fail early on a bad name
    index = torch.as_tensor(list(units))

    def objective(x: Float[Tensor, "n 64"]) -> Float[Tensor, " n"]:
        return layer_output(model, layer, x).gather(1, index.to(x.device)[:, None])[:, 0]

    return objective


def maximize(
    objective: Callable[[Tensor], Tensor],
    n: int,
    *,
    l2: float = 0.0,
    tv: float = 0.0,
    clamp: bool = True,
    steps: int = 300,
    lr: float = 0.05,
    start: float = 0.5,
    device: torch.device | str = "cpu",
) -> Float[Tensor, "n 64"]:
    """n images that (locally) maximize objective(x)[i] - l2 * |x_i|^2 - tv * TV(x_i), by Adam ascent."""
    x = torch.full((n, 64), start, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([x], lr=lr)
    with one_cpu_thread():
        _ascend(objective, x, optimizer, n, l2, tv, clamp, steps)
    return x.detach()


@contextlib.contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Tiny batches of 8x8 images: extra CPU threads only add synchronisation, so use one meanwhile."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _ascend(objective, x, optimizer, n, l2, tv, clamp, steps) -> None:
    for _ in range(steps):
        score = objective(x) - l2 * (x**2).sum(dim=1) - tv * total_variation(x.view(n, 8, 8))  # (n,)
        optimizer.zero_grad()
        (-score.sum()).backward()
        optimizer.step()
        if clamp:
            with torch.no_grad():
                x.clamp_(0.0, 1.0)


def visualize_units(
    model: nn.Module, layer: str, units: Sequence[int], regularizer: str, *, steps: int = 300, device: torch.device | str = "cpu"
) -> Float[Tensor, "n 64"]:
    """One optimized image per unit of `layer`, under the named regularizer."""
    check_choice("regularizer", regularizer, REGULARIZERS)
    reg = REGULARIZERS[regularizer]
    objective = unit_objective(model, layer, units)
    return maximize(objective, len(units), l2=reg.l2, tv=reg.tv, clamp=reg.clamp, steps=steps, device=device)
