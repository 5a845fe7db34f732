"""Probing classifiers with control tasks (Hewitt & Liang 2019, "Designing and interpreting probes with control tasks").

A probe is a small classifier trained to read a label (a token's type, its bracket depth) from a
model's activations. High accuracy alone says little: a probe with enough capacity can learn a
mapping from the activations of each word to any label, if the activations identify the word. The
control task measures that capacity. Each word type (the token's text) gets one fixed random label,
drawn from the real task's label distribution, with the same number of classes; a probe that scores
well on the control task memorises word identities, and `selectivity` = task accuracy − control
accuracy is what is left for the task itself.

Everything is scikit-learn: `LogisticRegression` for the linear probe, `MLPClassifier` (one hidden
layer) for the MLP probe, and `PCA` fit on the training activations for the rank sweep (a probe that
may only use k directions). Train and test are split by file, never by position, so a test token
comes from text the probe never saw; chance is the majority class of the training labels, scored
on the test labels.
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from explorer.errors import check_choice

PROBES = ("linear", "mlp")
TEST_SHARE = 0.25
LINEAR = dict(C=1.0, max_iter=100, tol=1e-3)
MLP = dict(hidden_layer_sizes=(64,), alpha=1e-4, learning_rate_init=1e-3, batch_size=256, max_iter=30, tol=1e-4,
           n_iter_no_change=5)


def split_by_file(files: Int[np.ndarray, " n"], seed: int, test_share: float = TEST_SHARE) -> np.ndarray:
    """A boolean training mask: a seeded random `test_share` of the files goes to test, every token of a file together."""
    unique = np.unique(files)
    order = np.random.default_rng(seed).permutation(unique)
    n_test = max(1, round(test_share * len(unique)))
    if n_test >= len(unique):
        raise ValueError(f"split_by_file: {len(unique)} files cannot be split into train and test")
    return ~np.isin(files, order[:n_test])


def control_labels(types: Sequence[str], labels: Int[np.ndarray, " n"], train: np.ndarray, n_classes: int,
                   seed: int) -> Int[np.ndarray, " n"]:
    """Hewitt & Liang's control task: every word type gets one label, drawn at random from the task's
    label distribution (its training tokens' labels), and every occurrence of the type carries it."""
    counts = np.bincount(labels[train], minlength=n_classes).astype(float)
    distribution = counts / counts.sum()
    vocabulary = sorted(set(types))  # sorted: the same draw whatever order the tokens come in
    drawn = np.random.default_rng(seed).choice(n_classes, size=len(vocabulary), p=distribution)
    label_of = dict(zip(vocabulary, drawn.tolist()))
    return np.array([label_of[t] for t in types], dtype=np.int64)


def majority_accuracy(y_train: Int[np.ndarray, " a"], y_test: Int[np.ndarray, " b"]) -> float:
    """Chance: always answer the most frequent training label."""
    return float((y_test == np.bincount(y_train).argmax()).mean())


def make_probe(kind: str, seed: int, rank: int | None = None):
    """A scikit-learn pipeline: (optionally) project onto the top `rank` principal directions of the
    training activations (PCA, which centres them), standardise, then a linear or one-hidden-layer
    MLP classifier."""
    check_choice("probe", kind, PROBES)
    steps = [] if rank is None else [PCA(n_components=rank, random_state=seed)]
    steps.append(StandardScaler())
    if kind == "linear":
        steps.append(LogisticRegression(random_state=seed, **LINEAR))
    else:
        steps.append(MLPClassifier(random_state=seed, early_stopping=False, **MLP))
    return make_pipeline(*steps)


@dataclass(frozen=True)
class Fit:
    train_accuracy: float
    test_accuracy: float
    predictions: Int[np.ndarray, " test"]


def fit(kind: str, X: Float[np.ndarray, "n d"], y: Int[np.ndarray, " n"], train: np.ndarray, seed: int,
        rank: int | None = None) -> Fit:
    """Train a probe on the rows of `train`, score it on the others."""
    probe = make_probe(kind, seed, rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # capped iterations are part of the recipe
        probe.fit(X[train], y[train])
    predictions = probe.predict(X[~train])
    return Fit(float((probe.predict(X[train]) == y[train]).mean()), float((predictions == y[~train]).mean()),
               predictions.astype(np.int64))


def selectivity(task_accuracy: float, control_accuracy: float) -> float:
    """Hewitt & Liang's selectivity: how much better the probe reads the task than it memorises word types."""
    return task_accuracy - control_accuracy
