"""Saliency maps for image classifiers, and two checks of whether a map means anything.

Every method answers "which pixels matter for class c?" with a map shaped like the input.
They come from Captum; this module gives them one calling convention and a registry, adds the
integrated-gradients baselines the article compares, and implements the two checks:

- the deletion curve: remove the pixels a map ranks highest and watch the class score fall
  (a useful map makes it fall faster than a random order does);
- the model-randomization test (Adebayo et al. 2018): re-initialize the layers from the top
  down; a map that explains the *model* must change when the model is destroyed. The maps are
  compared by rank correlation in Adebayo et al.'s variants: of absolute values, of signed values,
  and (ours) of absolute values on the ink pixels only, where background pixels cannot tie at zero.

Images are (batch, 1, 8, 8) here; the digits models accept that shape directly.
"""

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import (
    LRP,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from captum.attr._utils.lrp_rules import EpsilonRule
from jaxtyping import Float, Int
from scipy.special import roots_legendre
from scipy.stats import spearmanr
from torch import Tensor, nn

from explorer.errors import ExplorerError, check_choice

Images = Float[Tensor, "batch 1 height width"]
Maps = Float[Tensor, "batch 1 height width"]
Targets = Int[Tensor, " batch"]


# --------------------------------------------------------------------------- baselines


def gaussian_blur(images: Images, sigma: float = 1.0) -> Images:
    """Separable Gaussian blur with replicated borders (no torchvision needed)."""
    radius = max(1, int(round(3 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()  # (2r+1,)
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")  # (batch, 1, h+2r, w+2r)
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1))  # (batch, 1, h+2r, w)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1))  # (batch, 1, h, w)


def _uniform_noise(images: Images) -> Images:
    """One fixed U(0, 1) noise image, the same for every input, run and device."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand((1, *images.shape[1:]), generator=generator, dtype=images.dtype)  # (1, 1, h, w)
    return noise.to(images.device).expand_as(images).contiguous()


# The reference input integrated gradients walks from: "what counts as no information".
BASELINES: dict[str, Callable[[Images], Images]] = {
    "black": torch.zeros_like,
    "blurred": gaussian_blur,
    "uniform-noise": _uniform_noise,
}


def make_baseline(name: str, images: Images) -> Images:
    check_choice("integrated-gradients baseline", name, BASELINES)
    return BASELINES[name](images)


# --------------------------------------------------------------------------- methods


def last_conv(model: nn.Module) -> nn.Conv2d:
    """The last nn.Conv2d of `model`: the feature map Grad-CAM weighs."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ExplorerError(f"grad-cam needs a convolutional layer; {type(model).__name__} has none")
    return convs[-1]


def gradient(model: nn.Module, images: Images, targets: Targets) -> Maps:
    """d score[target] / d pixel (Simonyan et al. 2014), signed."""
    return Saliency(model).attribute(images, target=targets, abs=False)


def smoothgrad(model: nn.Module, images: Images, targets: Targets, n_samples: int = 25, noise: float = 0.15) -> Maps:
    """The gradient averaged over `n_samples` copies with Gaussian noise of std `noise` (Smilkov et al. 2017).

    Pixels are in [0, 1], so `noise` is also the fraction of the input range.
    """
    tunnel = NoiseTunnel(Saliency(model))
    return tunnel.attribute(images, nt_type="smoothgrad", nt_samples=n_samples, stdevs=noise, target=targets, abs=False)


def integrated_gradients(
    model: nn.Module,
    images: Images,
    targets: Targets,
    baseline: str = "black",
    n_steps: int = 128,
    tolerance: float | None = 0.005,
    max_steps: int = 2048,
) -> Maps:
    """Gradients averaged along the straight path from a baseline to the image, times (image - baseline).

    A ReLU network's gradient jumps along the path, so a fixed number of steps leaves a few images
    with a visible error. Where the completeness gap exceeds `tolerance`, the integral is redone with
    twice the steps, up to `max_steps` (the check Sundararajan et al. 2017 recommend). None: no check.
    """
    return integrated_gradients_refined(model, images, targets, baseline, n_steps, tolerance, max_steps)[0]


def integrated_gradients_refined(
    model: nn.Module,
    images: Images,
    targets: Targets,
    baseline: str,
    n_steps: int,
    tolerance: float | None,
    max_steps: int,
) -> tuple[Maps, Int[Tensor, " batch"]]:
    """Integrated gradients and the number of steps each image needed to meet `tolerance`.

    Images still above `tolerance` at `max_steps` keep their `max_steps` map: check the gap.
    """
    ig = IntegratedGradients(model)

    def integrate(idx: Tensor, steps: int) -> Maps:
        x = images[idx]
        with cached_gauss_legendre():
            return ig.attribute(x, baselines=make_baseline(baseline, x), target=targets[idx], n_steps=steps,
                                internal_batch_size=4096)

    everything = torch.arange(len(images), device=images.device)
    maps = integrate(everything, n_steps)
    used = torch.full((len(images),), n_steps, device=images.device)
    todo = everything
    while tolerance is not None and len(todo) and n_steps < max_steps:
        gap = completeness_gap(model, images[todo], targets[todo], maps[todo], baseline)
        todo = todo[gap > tolerance]
        if not len(todo):
            break
        n_steps *= 2
        maps[todo] = integrate(todo, n_steps)
        used[todo] = n_steps
    return maps, used


@functools.cache
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = roots_legendre(n)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


_NUMPY_LEGGAUSS = np.polynomial.legendre.leggauss


@contextlib.contextmanager
def cached_gauss_legendre() -> Iterator[None]:
    """Captum computes its Gauss-Legendre nodes with numpy's `leggauss` (an O(n^3) eigenproblem:
    20 s at n = 2048) twice per call. While inside, `leggauss` answers from SciPy's
    `roots_legendre` (asymptotic formulas, the same nodes to 1e-14), remembered per n."""
    np.polynomial.legendre.leggauss = _leggauss
    try:
        yield
    finally:
        np.polynomial.legendre.leggauss = _NUMPY_LEGGAUSS


def grad_cam(model: nn.Module, images: Images, targets: Targets) -> Maps:
    """Last conv feature maps weighted by their mean gradient, ReLU'd, resized to the input (Selvaraju et al. 2017)."""
    cam = LayerGradCam(model, last_conv(model)).attribute(images, target=targets, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(images.shape[-2:]), interpolate_mode="bilinear")


def lrp(model: nn.Module, images: Images, targets: Targets) -> Maps:
    """Layer-wise relevance propagation with Captum's epsilon rule (Bach et al. 2015).

    Captum attaches hooks and rules to the modules, so it works on a copy. nn.Flatten has no
    default rule; the epsilon rule passes relevance through a reshape unchanged.
    """
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.Flatten):
            module.rule = EpsilonRule()
    return LRP(model).attribute(images, target=targets)


def occlusion(model: nn.Module, images: Images, targets: Targets, window: int = 2) -> Maps:
    """Score drop when a window x window patch is set to black, averaged over the patches covering a pixel."""
    return Occlusion(model).attribute(
        images, target=targets, sliding_window_shapes=(1, window, window), strides=(1, 1, 1), baselines=0.0,
        perturbations_per_eval=16,
    )


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    fn: Callable[..., Maps]
    needs_conv: bool = False


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gradient", "Gradient", gradient),
        Method("smoothgrad", "SmoothGrad", smoothgrad),
        Method("integrated-gradients", "Integrated Gradients", integrated_gradients),
        Method("grad-cam", "Grad-CAM", grad_cam, needs_conv=True),
        Method("lrp", "LRP (epsilon)", lrp),
        Method("occlusion", "Occlusion", occlusion),
    )
}


def get_method(name: str) -> Method:
    check_choice("saliency method", name, METHODS)
    return METHODS[name]


def methods_for(model: nn.Module) -> list[str]:
    """The method names that apply to `model` (Grad-CAM only where there is a conv layer)."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return [name for name, m in METHODS.items() if has_conv or not m.needs_conv]


def attribute(method: str, model: nn.Module, images: Images, targets: Targets | int, **options) -> Maps:
    """The `method` map of each image for its target class, shaped like `images`."""
    fn = get_method(method).fn
    model.eval()
    if isinstance(targets, int):
        targets = torch.full((len(images),), targets, dtype=torch.long, device=images.device)
    return fn(model, images, targets, **options).detach()


# --------------------------------------------------------------------------- completeness


@torch.no_grad()
def class_scores(model: nn.Module, images: Images, targets: Targets) -> Float[Tensor, " batch"]:
    return model(images).gather(1, targets[:, None])[:, 0]


def completeness_gap(
    model: nn.Module, images: Images, targets: Targets, maps: Maps, baseline: str
) -> Float[Tensor, " batch"]:
    """|sum(map) - (f(x) - f(baseline))| / |f(x) - f(baseline)|: 0 for exact integrated gradients."""
    change = class_scores(model, images, targets) - class_scores(model, make_baseline(baseline, images), targets)
    return (maps.flatten(1).sum(1) - change).abs() / change.abs()


# --------------------------------------------------------------------------- deletion curve


@torch.no_grad()
def deletion_curve(
    model: nn.Module,
    images: Images,
    targets: Targets,
    maps: Maps | None,
    steps: int = 16,
    generator: torch.Generator | None = None,
) -> Float[Tensor, "batch steps_plus_1"]:
    """Probability of the target class as the highest-ranked pixels are set to black, step by step.

    `maps=None` removes pixels in a random order instead (drawn from `generator`). Column k
    has k/steps of the pixels removed. Ties in a map are broken by pixel index.
    """
    flat = images.flatten(1)  # (batch, pixels)
    batch, pixels = flat.shape
    if maps is None:
        noise = torch.rand(batch, pixels, generator=generator).to(flat.device)
        order = noise.argsort(dim=1)
    else:
        order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)  # (batch, pixels)
    rank = order.argsort(dim=1)  # rank[i, p]: when pixel p is removed for image i
    curves = []
    for k in range(steps + 1):
        kept = rank >= round(k * pixels / steps)  # (batch, pixels)
        probs = model((flat * kept).view_as(images)).softmax(-1)  # (batch, classes)
        curves.append(probs.gather(1, targets[:, None])[:, 0])
    return torch.stack(curves, dim=1)


def brightness_map(images: Images, generator: torch.Generator) -> Maps:
    """A model-free ranking for the deletion curve: brightest pixels first, ties in random order.

    Pixel values are multiples of 1/16, so a jitter under 1/64 only reorders equal pixels.
    """
    jitter = torch.rand(images.shape, generator=generator, dtype=images.dtype).to(images.device) / 64
    return images + jitter


def curve_area(curve: Float[Tensor, "... steps_plus_1"]) -> Float[Tensor, "..."]:
    """Area under a deletion curve on a [0, 1] fraction axis (trapezoids): lower is a sharper map."""
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[-1] - 1), dim=-1)


# --------------------------------------------------------------------------- randomization test


def cascading_randomization(model: nn.Module, layers: Sequence[str], seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Copies of `model` with layers re-initialized cumulatively in the given (top-down) order.

    Yields (name of the layer just randomized, model). Each layer gets PyTorch's default init
    under its own seed, so the sequence is the same on every run.
    """
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    for i, name in enumerate(layers):
        check_choice("layer", name, [n for n, m in modules.items() if hasattr(m, "reset_parameters")])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            modules[name].reset_parameters()
        yield name, copy.deepcopy(randomized).eval()


def rank_correlation(a: Maps, b: Maps, *, signed: bool = False, where: Tensor | None = None) -> np.ndarray:
    """Spearman correlation of |a| and |b| per image (batch,); a constant map carries no ranking: 0.

    `signed=True` ranks the signed values (Adebayo et al.'s "no abs" variant). `where` (a boolean
    tensor shaped like the maps) keeps only those pixels, e.g. the ink (`images > 0`): background
    pixels are exactly 0 in every map that multiplies by the input, and their tied ranks alone make
    two such maps correlate.
    """
    a_flat, b_flat = (m.flatten(1).cpu().numpy() for m in (a, b))  # (batch, pixels)
    if not signed:
        a_flat, b_flat = np.abs(a_flat), np.abs(b_flat)
    keep = np.ones_like(a_flat, dtype=bool) if where is None else where.flatten(1).cpu().numpy()
    rho = np.zeros(len(a_flat))
    for i, (x, y, k) in enumerate(zip(a_flat, b_flat, keep)):
        x, y = x[k], y[k]
        if len(x) > 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
            rho[i] = spearmanr(x, y).statistic
    return rho


# The comparisons the randomization figure draws: name -> (label, signed, ink pixels only)
CORRELATIONS = {
    "abs": ("|map|, all pixels", False, False),
    "ink": ("|map|, ink pixels only", False, True),
    "signed": ("signed map, all pixels", True, False),
}


def map_correlation(kind: str, a: Maps, b: Maps, images: Images) -> np.ndarray:
    """The `kind` variant (a key of CORRELATIONS) of the rank correlation of a and b, per image."""
    check_choice("correlation", kind, CORRELATIONS)
    _, signed, ink = CORRELATIONS[kind]
    return rank_correlation(a, b, signed=signed, where=images > 0 if ink else None)
