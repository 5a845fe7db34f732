"""2-D projections of a layer's activations (PCA, t-SNE, UMAP) and scores of what each keeps.

PCA keeps the directions of largest variance and is linear, so distances along its axes mean
something; t-SNE and UMAP bend the space to keep each point's nearest neighbours together, at the
price of distances between clusters. `trustworthiness` (scikit-learn) scores how many of a point's
neighbours in the plane are also its neighbours in the original space, and `knn_accuracy` how well
the classes can be read off the plane, so the pictures can be compared by numbers, not by taste.
"""

import numpy as np
import torch
from jaxtyping import Float, Int
from scipy.linalg import orthogonal_procrustes
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from torch import Tensor, nn

from explorer.errors import check_choice

METHODS = ("pca", "tsne", "umap")
METHOD_LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


@torch.no_grad()
def penultimate_activations(model: nn.Module, x: Float[Tensor, "batch features"]) -> Float[Tensor, "batch units"]:
    """What the output layer reads: the input of the model's last Linear layer, caught with a forward hook."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    caught = []
    handle = last.register_forward_hook(lambda module, inputs, output: caught.append(inputs[0].detach()))
    try:
        model.eval()
        model(x)
    finally:
        handle.remove()
    return caught[0].flatten(1)  # (batch, units)


def project(
    features: Float[np.ndarray, "n d"], method: str, seed: int = 0, iterations: int | None = None
) -> Float[np.ndarray, "n 2"]:
    """2-D coordinates of `features` by `method` ("pca", "tsne" or "umap").

    `iterations` caps t-SNE's optimization steps or UMAP's epochs (None: the library's default);
    small values keep tests fast. Seeded, so the same features give the same picture.
    """
    check_choice("projection method", method, METHODS)
    features = np.asarray(features, dtype=np.float32)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        perplexity = min(30.0, (len(features) - 1) / 3)
        options = {"max_iter": max(250, iterations)} if iterations else {}
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, **options).fit_transform(features)
    import umap  # imported here: the import alone takes seconds, and the first call compiles with numba

    options = {"n_epochs": iterations} if iterations else {}
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(features) - 1), min_dist=0.1, random_state=seed, **options)
    return reducer.fit_transform(features)


def normalize(points: Float[np.ndarray, "n 2"]) -> Float[np.ndarray, "n 2"]:
    """Centre and scale to unit root-mean-square radius: projections differ in scale, the eye should not care."""
    centred = points - points.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=1).mean())


def align(points: Float[np.ndarray, "n 2"], reference: Float[np.ndarray, "n 2"]) -> Float[np.ndarray, "n 2"]:
    """Rotate/reflect normalized `points` to best match `reference` (orthogonal Procrustes).

    t-SNE and UMAP pictures are defined only up to rotation and reflection; aligning every
    checkpoint to the last keeps the same digits in the same corner as the reader scrubs. Distances
    within `points`, hence every score, are unchanged.
    """
    rotation, _ = orthogonal_procrustes(points, reference)
    return points @ rotation


def trust(features: Float[np.ndarray, "n d"], embedding: Float[np.ndarray, "n 2"], k: int = 10) -> float:
    """scikit-learn's trustworthiness: 1 when every point's k nearest neighbours in 2-D are also near in the original space."""
    return float(trustworthiness(features, embedding, n_neighbors=k))


def knn_accuracy(points: Float[np.ndarray, "n d"], labels: Int[np.ndarray, " n"], k: int = 5, folds: int = 5) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier: how readable the classes are from `points`."""
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=k), points, labels, cv=folds)
    return float(scores.mean())


def random_projection(features: Float[np.ndarray, "n d"], seed: int = 0) -> Float[np.ndarray, "n 2"]:
    """A null for the scores: `features` times a random Gaussian matrix (scikit-learn's
    GaussianRandomProjection), a linear picture that knows nothing about the data."""
    from sklearn.random_projection import GaussianRandomProjection

    return GaussianRandomProjection(n_components=2, random_state=seed).fit_transform(np.asarray(features, dtype=np.float32))
