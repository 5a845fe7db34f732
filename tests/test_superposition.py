"""Toy models of superposition: the batched toy model and its measures on known geometries, the SAE's
constraints and resampling, and the article's claims at smoke scale (by direction, against their nulls)."""

import math

import pytest
import torch

from explorer.models import toy_sae
from explorer.models import toy_superposition as toy

pytestmark = pytest.mark.usefixtures("one_thread")


def polygon(n: int, length: float = 1.0) -> torch.Tensor:
    """(2, n): n unit directions evenly around the circle."""
    angles = torch.arange(n) * 2 * math.pi / n
    return length * torch.stack([angles.cos(), angles.sin()])


def test_feature_dimensionality_of_known_geometries():
    torch.testing.assert_close(toy.dimensionality(torch.eye(3)), torch.ones(3))  # a dimension each
    torch.testing.assert_close(toy.dimensionality(polygon(4, 1.3)), torch.full((4,), 0.5))  # two antipodal pairs
    torch.testing.assert_close(toy.dimensionality(polygon(5, 0.8)), torch.full((5,), 0.4))  # the pentagon: 2/5
    torch.testing.assert_close(toy.superposition(torch.eye(3)), torch.zeros(3))
    torch.testing.assert_close(toy.superposition(polygon(4)), torch.ones(4), atol=1e-6, rtol=0)  # the partner, -1, squared
    torch.testing.assert_close(toy.dimensions_per_feature(polygon(5)), torch.tensor(0.4))
    W = torch.tensor([[1.0, 0.0, 0.0]]).T.repeat(1, 1)  # (3, 1): one feature, no one else
    assert float(toy.dimensionality(W)[0]) == 1.0


def test_features_are_sparse_and_uniform_at_the_asked_density():
    density = torch.tensor([[1.0, 0.3], [0.05, 0.0]])
    x = toy.sample_features(200_000, density, torch.Generator().manual_seed(0))  # (batch, inst, feat)
    present = (x > 0).float().mean(0)
    torch.testing.assert_close(present, density, atol=0.005, rtol=0)
    values = x[:, 0, 1][x[:, 0, 1] > 0]
    assert abs(float(values.mean()) - 0.5) < 0.01 and float(values.max()) < 1.0
    assert abs(float((values < 0.25).float().mean()) - 0.25) < 0.01  # uniform, not just centred


def test_instances_of_the_batch_do_not_touch_each_other():
    """The gradient on one instance's weights depends on its own data only: a batched sweep is many runs."""
    W = toy.init_weights([0, 1], 2, 5).requires_grad_()
    b = torch.zeros(2, 5, requires_grad=True)
    importance = torch.ones(2, 5)
    x = toy.sample_features(64, torch.full((2, 5), 0.3), torch.Generator().manual_seed(1))
    toy.weighted_loss(x, toy.forward(W, b, x), importance).sum().backward()
    first = W.grad[0].clone()
    W.grad = None
    x2 = x.clone()
    x2[:, 1] = torch.rand(64, 5)  # other data for instance 1 only
    toy.weighted_loss(x2, toy.forward(W, b, x2), importance).sum().backward()
    torch.testing.assert_close(W.grad[0], first)
    assert not torch.allclose(W.grad[1], torch.zeros(2, 5))
    one = toy.forward(W[:1], b[:1], x[:, :1])  # instance 0 alone
    torch.testing.assert_close(one, toy.forward(W, b, x)[:, :1])


def test_a_seed_is_the_same_network_whatever_else_is_in_the_batch():
    torch.testing.assert_close(toy.init_weights([7, 3], 2, 5)[1], toy.init_weights([3], 2, 5)[0])
    with pytest.raises(ValueError, match="must describe the same instances"):
        toy.train(torch.ones(2, 5), torch.ones(3, 5), [0, 1], n_hidden=2, steps=1, batch=4, lr=1e-3, checkpoints=[0])


def test_training_fits_and_is_deterministic():
    args = dict(n_hidden=2, steps=300, batch=256, lr=1e-2, checkpoints=[0, 300])
    importance, density = torch.ones(2, 3), torch.tensor([[1.0] * 3, [0.1] * 3])
    a = toy.train(importance, density, [0, 1], **args)
    b = toy.train(importance, density, [0, 1], **args)
    torch.testing.assert_close(a.W, b.W, atol=0, rtol=0)
    assert (a.loss[-1] < 0.7 * a.loss[0]).all()
    assert a.steps == [0, 300]


def test_the_phase_classifier():
    from build_figures.superposition import PHASES, phase_of

    assert phase_of(torch.tensor([[1.0, 0.1]])) == PHASES[0]
    assert phase_of(torch.tensor([[0.1, -1.0]])) == PHASES[1]
    assert phase_of(torch.tensor([[1.0, -0.9]])) == PHASES[2]
    assert phase_of(torch.tensor([[1.0, 0.9]])) == PHASES[3]


def test_pentagon_error_and_antipodal_pairs():
    from build_figures.superposition import antipodal_pairs, pentagon_error

    assert pentagon_error(polygon(5)) < 1e-4
    assert pentagon_error(polygon(4)[:, [0, 1, 2, 3, 0]]) > 60
    assert antipodal_pairs(polygon(4)) == 2
    assert antipodal_pairs(polygon(5)) == 0


def test_sae_decoder_columns_stay_unit_and_resampling_revives_a_dead_latent():
    W_toy = polygon(5) * 1.1
    run = toy_sae.train(W_toy, 0.05, 0, n_latents=6, l1=0.3, steps=60, batch=512, lr=1e-2, resample_every=1000,
                        resample_until=0, checkpoints=[0, 60])
    for params in run.checkpoints:
        torch.testing.assert_close(params["W_dec"].norm(dim=0), torch.ones(6))
    params = [p.clone() for p in (run.W_enc, run.b_enc, run.W_dec, run.b_dec)]
    params[1][2] = -100.0  # latent 2 can never fire
    h = toy_sae.toy_hidden(W_toy, 0.05, 4096, torch.Generator().manual_seed(3))
    optimizer = torch.optim.Adam(params)
    revived = toy_sae.resample(torch.tensor([False, False, True, False, False, False]), params, optimizer, h,
                               torch.Generator().manual_seed(4))
    assert revived == 1 and float(params[1][2]) == 0.0
    cos = (toy_sae.unit_columns(h.T - params[3][:, None]).T @ params[2][:, 2])  # cosine with every input
    assert float(cos.max()) > 0.9999  # pointed at one of the inputs
    fires = toy_sae.firing({"W_enc": params[0], "b_enc": params[1], "W_dec": params[2], "b_dec": params[3]}, h)
    assert fires[2] > 0


# --------------------------------------------------------------------------- the article's claims, at smoke scale


def test_five_features_two_orthogonal_then_antipodal_pairs_then_a_pentagon(smoke_claims):
    c = smoke_claims("superposition-five")
    assert c["represented_s0_max"] == 2 and c["dimensionality_s0_min"] > 0.9  # dense: two dedicated dimensions
    assert c["represented_s7_min"] == 4 and c["antipodal_pairs_s7_min"] == 2  # two antipodal pairs
    assert abs(c["dimensionality_s7"] - 0.5) < 0.03
    for s in ("s9", "s97", "s99"):  # all five, as a regular pentagon
        assert c[f"represented_{s}_min"] == 5
        assert c[f"pentagon_error_{s}_max"] < 5 < c["untrained_pentagon_error"] / 5
        assert abs(c[f"dimensionality_{s}"] - 0.4) < 0.02
    assert c["represented_s0"] < c["untrained_represented"] < c["represented_s99"]  # the threshold is not the story
    assert c["antipodal_pairs_s7"] > 5 * c["untrained_antipodal_pairs"]


def test_twenty_features_more_fit_as_sparsity_grows(smoke_claims):
    c = smoke_claims("superposition-twenty")
    assert c["represented_s0_max"] == 5 and c["superposition_s0_max"] < 0.05  # dense: 5 features, no sharing
    assert c["dims_per_feature_s0_min"] > 0.95
    last = "s" + f"{c['sparsest']:.3f}".split(".")[1].rstrip("0")
    assert c[f"represented_{last}_min"] > 2 * c["represented_s0_max"]
    assert c[f"dims_per_feature_{last}_max"] < 0.5 < c["untrained_dims_per_feature"]
    assert c[f"superposition_{last}_min"] > 0.5
    assert c["represented_s7"] < c["represented_s9"] < c[f"represented_{last}"]


def test_dimensionality_sticks_to_fractions(smoke_claims):
    c = smoke_claims("superposition-dimensionality")
    assert c["share_near_half_min"] > 0.7 > 5 * c["untrained_share_near_half"]
    assert c["share_near_quarter_min"] > 0.7 > 2 * c["untrained_share_near_quarter"]
    assert c["share_near_five_sixteenths_min"] > 0.7 > 2 * c["untrained_share_near_five_sixteenths"]
    assert c["represented_x16_min"] >= 19 and c["represented_x1_max"] <= 10
    assert c["represented_x1"] < c["represented_x2"] < c["represented_x8"] < c["represented_x16"]


def test_phase_diagram(smoke_claims):
    c = smoke_claims("superposition-phase")
    assert c["superposed_dense_max"] == 0  # dense: never superposed
    assert c["dedicated_dense_important_min"] == 1 and c["absent_dense_unimportant_min"] == 1
    assert c["superposed_sparse"] > 0.6 > 2 * c["untrained_superposed"]
    assert c["superposed_sparse_min"] > c["superposed_dense_max"]


def test_the_sae_recovers_every_feature_where_random_directions_do_not(smoke_claims):
    c = smoke_claims("superposition-sae")
    assert c["recovered_min"] == 5 > c["random_recovered"] + 2
    assert c["worst_max_cosine_min"] > c["threshold"] > c["random_worst_max_cosine"]
    assert c["variance_explained_min"] > 0.8 > c["variance_explained_init_max"]
    assert c["l0_max"] < 2 * c["true_l0"] and c["l0_min"] > 0.5 * c["true_l0"]  # about one latent per present feature
    assert c["dead_fraction_max"] < 0.5
