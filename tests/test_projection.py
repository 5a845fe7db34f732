"""Projections: methods, scores, alignment, and the article's claims."""

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness
from torch import nn

from explorer.errors import UnknownName
from explorer.techniques.projection import align, knn_accuracy, normalize, penultimate_activations, project, trust


def _blobs(n_per: int = 20, classes: int = 3, dim: int = 8):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, (classes, dim))
    features = np.concatenate([c + rng.normal(0, 1, (n_per, dim)) for c in centres]).astype(np.float32)
    return features, np.repeat(np.arange(classes), n_per)


def test_unknown_method_raises():
    with pytest.raises(UnknownName, match="known: pca, tsne, umap"):
        project(np.zeros((10, 3)), "isomap")


def test_pca_projection_matches_the_top_principal_axes():
    features, _ = _blobs()
    points = project(features, "pca")
    centred = features - features.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    assert np.allclose(np.abs(points), np.abs(expected), atol=1e-3)


def test_tsne_is_seeded_and_keeps_separated_blobs_apart():
    features, labels = _blobs()
    first, again = project(features, "tsne", seed=3, iterations=300), project(features, "tsne", seed=3, iterations=300)
    assert np.array_equal(first, again)
    assert knn_accuracy(first, labels) == pytest.approx(1.0)


def test_trust_is_sklearns_and_a_random_plane_scores_lower():
    features, _ = _blobs()
    plane = project(features, "pca")
    assert trust(features, plane, k=5) == pytest.approx(trustworthiness(features, plane, n_neighbors=5))
    shuffled = np.random.default_rng(1).permutation(plane)
    assert trust(features, shuffled, k=5) < trust(features, plane, k=5) - 0.2


def test_normalize_and_align_undo_a_rotation():
    rng = np.random.default_rng(0)
    reference = normalize(rng.normal(size=(30, 2)))
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = normalize(3.0 * reference @ rotation + 5.0)
    assert np.sqrt((moved**2).sum(1).mean()) == pytest.approx(1.0)
    assert np.allclose(align(moved, reference), reference, atol=1e-9)


def test_penultimate_activations_are_what_the_last_layer_reads():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(6, 5)
    features = penultimate_activations(model, x)
    assert features.shape == (6, 4)
    assert torch.allclose(model[4](features), model(x), atol=1e-6)


def test_random_projection_is_a_null_that_pca_beats():
    from explorer.techniques.projection import random_projection

    features, _ = _blobs()
    plane = random_projection(features, seed=0)
    assert plane.shape == (len(features), 2)
    assert np.array_equal(plane, random_projection(features, seed=0))
    assert trust(features, project(features, "pca"), k=5) > trust(features, plane, k=5)


@pytest.mark.slow
def test_projection_claims(smoke_claims):
    claims = smoke_claims("projections-digits")
    assert claims["seeds"] == 3
    for method in ("pca", "tsne", "umap"):
        # training makes every projection more faithful and its classes more readable
        assert claims[f"{method}_trust_trained"] > claims[f"{method}_trust_init"]
        assert claims[f"{method}_knn_trained"] > claims[f"{method}_knn_init"]
        # every picture beats the null, a random linear projection, on both scores
        assert claims[f"{method}_trust_trained_min"] > claims["random_trust_trained_max"]
        assert claims[f"{method}_knn_trained_min"] > claims["random_knn_trained_max"]
    # the neighbour-keeping methods beat the linear one on both scores, on every seed
    for method in ("tsne", "umap"):
        assert claims[f"{method}_trust_trained_min"] > claims["pca_trust_trained_max"]
        assert claims[f"{method}_knn_trained_min"] > claims["pca_knn_trained_max"]
    assert claims["full_knn_trained"] > claims["full_knn_init"]
    # an untrained layer already keeps similar digits together: far above chance
    assert min(claims["tsne_knn_init_min"], claims["umap_knn_init_min"], claims["full_knn_init_min"]) > 3 * claims["chance"]
    # PCA's faithfulness peaks before the end of training and slips back
    assert claims["pca_trust_peak"] > claims["pca_trust_trained"] and claims["pca_trust_peak_step"] < claims["trained_step"]
    assert claims["pca_trust_peak"] < min(claims["tsne_trust_trained"], claims["umap_trust_trained"])
    assert claims["units"] == 32 and claims["points"] > 100


@pytest.mark.slow
def test_projection_slider_shows_training_steps_and_plays(smoke):
    params = smoke.spec("projections-digits")["usermeta"]["explorer"]["params"]
    assert params["step"]["options"] == [0, 50, 100] and params["step"]["play"]
