"""Vanilla saliency through a ReLU MLP, by hand: the chain rule in NumPy, no autograd.

For logits f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L, the gradient of one class score is
a single backward sweep: start from row c of W_L, and at every hidden layer multiply by the
ReLU's 0/1 mask and then by the layer's weight matrix. The article shows these lines; a test
checks them against torch.autograd.
"""

import numpy as np
from torch import nn


def mlp_weights(model: nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (W, b) of each nn.Linear in order, as float64 NumPy arrays (W: (out, in))."""
    return [
        (m.weight.detach().cpu().double().numpy(), m.bias.detach().cpu().double().numpy())
        for m in model.modules()
        if isinstance(m, nn.Linear)
    ]


def forward(x: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits (10,) for one flat image x (64,), and each hidden pre-activation z (kept for the masks)."""
    h, pre_activations = x, []
    for W, b in weights[:-1]:
        z = W @ h + b  # (hidden,)
        pre_activations.append(z)
        h = np.maximum(z, 0.0)
    W_out, b_out = weights[-1]
    return W_out @ h + b_out, pre_activations


def input_gradient(x: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]], target: int) -> np.ndarray:
    """d logit[target] / dx for one flat image x (64,): the vanilla saliency map, flat (64,)."""
    _, pre_activations = forward(x, weights)
    grad = weights[-1][0][target]  # (hidden_L,): the score's weights on the last hidden layer
    for (W, _), z in zip(reversed(weights[:-1]), reversed(pre_activations)):
        grad = (grad * (z > 0)) @ W  # mask dead units, then step back one layer: (hidden_{l-1},)
    return grad
