"""Two-class toy data sets on the plane: XOR, circle, two spirals, gaussian blobs.

Each generator is a small NumPy function of (n, rng) so that its source can be pasted, as is,
into a standalone script ("copy as PyTorch") and give the very same points. Points lie roughly in
[-1, 1]^2; labels are 0 or 1.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int

from explorer.errors import check_choice

EXTENT = 1.25  # the input plane the articles draw: [-EXTENT, EXTENT]^2


def xor(n, rng):
    """Uniform points in the square, labelled 1 where x and y have opposite signs."""
    xy = rng.uniform(-1, 1, size=(n, 2))
    xy += 0.1 * np.sign(xy)  # a small gap along the axes, where the label flips
    return xy / 1.1, (xy[:, 0] * xy[:, 1] < 0).astype(np.int64)


def circle(n, rng):
    """A disc (label 1) inside a ring (label 0), with a gap between them."""
    label = rng.integers(0, 2, size=n)
    radius = np.where(label == 1, rng.uniform(0, 0.5, size=n), rng.uniform(0.7, 1.0, size=n))
    angle = rng.uniform(0, 2 * np.pi, size=n)
    xy = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return xy + rng.normal(0, 0.03, size=(n, 2)), label


def spirals(n, rng):
    """Two interleaved arms turning 1.75 times around the origin; label = arm."""
    label = rng.integers(0, 2, size=n)
    t = np.sqrt(rng.uniform(0, 1, size=n))  # uniform density along the arm's area
    angle = 3.5 * np.pi * t + np.pi * label
    xy = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    return xy + rng.normal(0, 0.03, size=(n, 2)), label


def blobs(n, rng):
    """Two overlapping gaussian blobs: even the best boundary misclassifies some points."""
    label = rng.integers(0, 2, size=n)
    centre = np.where(label[:, None] == 1, 0.35, -0.35)
    return centre + rng.normal(0, 0.3, size=(n, 2)), label


GENERATORS: dict[str, Callable] = {"xor": xor, "circle": circle, "spirals": spirals, "blobs": blobs}
DATASETS = tuple(GENERATORS)


@dataclass(frozen=True)
class Split:
    x_train: Float[torch.Tensor, "n_train 2"]
    y_train: Int[torch.Tensor, " n_train"]
    x_test: Float[torch.Tensor, "n_test 2"]
    y_test: Int[torch.Tensor, " n_test"]


def make_dataset(name: str, n_train: int = 200, n_test: int = 200, seed: int = 0) -> Split:
    """The named data set, its train and test points drawn from one seeded generator."""
    check_choice("dataset", name, DATASETS)
    rng = np.random.default_rng(seed)
    xy, label = GENERATORS[name](n_train + n_test, rng)
    xy = torch.tensor(xy, dtype=torch.float32)
    label = torch.tensor(label, dtype=torch.int64)
    return Split(xy[:n_train], label[:n_train], xy[n_train:], label[n_train:])
