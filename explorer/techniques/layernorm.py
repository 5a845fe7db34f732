"""LayerNorm, one step at a time (the teaching version), and what it does to real activations.

    mu    = mean(x)                          one number per vector
    x - mu                                   centred: the component along (1, 1, ..., 1) removed
    sigma = sqrt(mean((x - mu)^2) + eps)     one number per vector
    (x - mu) / sigma                         on the sphere of radius sqrt(d) in the centred hyperplane
    gamma * (...) + beta                     a learned scale and shift per component

`layernorm_steps` computes each line from a torch LayerNorm's weights; tests check it against
TransformerLens's hooks on the same layer (ln.hook_in, hook_scale, hook_normalized, hook_out).
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn


@dataclass(frozen=True)
class LayerNormSteps:
    x: Float[Tensor, "*batch d"]
    mean: Float[Tensor, "*batch"]
    centred: Float[Tensor, "*batch d"]
    scale: Float[Tensor, "*batch"]  # sigma, with eps inside the root as torch computes it
    normalized: Float[Tensor, "*batch d"]
    out: Float[Tensor, "*batch d"]


@torch.no_grad()
def layernorm_steps(x: Float[Tensor, "*batch d"], ln: nn.LayerNorm) -> LayerNormSteps:
    mean = x.mean(-1)
    centred = x - mean[..., None]
    scale = (centred.pow(2).mean(-1) + ln.eps).sqrt()
    normalized = centred / scale[..., None]
    out = normalized * ln.weight + ln.bias
    return LayerNormSteps(x, mean, centred, scale, normalized, out)


def torch_layernorm(bridge_ln) -> nn.LayerNorm:
    """The torch LayerNorm inside a TransformerBridge normalisation component."""
    inner = getattr(bridge_ln, "original_component", bridge_ln)
    if not isinstance(inner, nn.LayerNorm):
        raise TypeError(f"expected a LayerNorm, found {type(inner).__name__}")
    return inner
