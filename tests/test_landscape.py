"""Loss landscapes: surfaces, torch.optim trajectories, filter-normalized slices, and the article's claims."""

import math

import pytest
import torch
from torch import nn

from explorer.errors import UnknownName
from explorer.techniques.landscape import (
    SURFACES,
    center_margin,
    filter_normalized_direction,
    get_surface,
    loss_slice,
    make_optimizer,
    project_onto_plane,
    run_optimizer,
    surface_minimum,
    trajectory_pca_directions,
)


def test_first_sgd_step_matches_the_hand_computed_gradient_step():
    # ravine: f = 0.5 (a u^2 + b v^2) with u, v the coordinates rotated by the valley's angle
    surface, lr, start = get_surface("ravine"), 0.1, (-2.0, 1.0)
    run = run_optimizer(surface, "sgd", lr, 0.0, start, steps=1)
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(surface.loss(theta), theta)
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    u, v = c * start[0] + s * start[1], -s * start[0] + c * start[1]
    by_hand = (0.2 * u * c - 8.0 * v * s, 0.2 * u * s + 8.0 * v * c)  # chain rule through the rotation
    assert grad.tolist() == pytest.approx(by_hand)
    assert run[1, :2].tolist() == pytest.approx([start[0] - lr * by_hand[0], start[1] - lr * by_hand[1]])


def test_momentum_and_adam_first_steps_follow_their_update_rules():
    surface, start = get_surface("bowl"), (-2.0, 1.5)  # gradient of the bowl is theta itself
    heavy = run_optimizer(surface, "sgd", 0.1, 0.9, start, steps=2)
    g0 = torch.tensor(start)
    after_one = g0 - 0.1 * g0
    after_two = after_one - 0.1 * (0.9 * g0 + after_one)  # velocity = momentum * velocity + gradient
    assert heavy[2, :2].tolist() == pytest.approx(after_two.tolist())
    adam = run_optimizer(surface, "adam", 0.1, 0.9, start, steps=1)
    # Adam's first step is lr * sign(gradient) (bias-corrected m / sqrt(v) = g / |g|)
    assert adam[1, :2].tolist() == pytest.approx([start[0] + 0.1, start[1] - 0.1], abs=1e-6)


def test_surface_minima_are_where_the_formulas_put_them():
    assert surface_minimum(SURFACES["bowl"])[0] == pytest.approx(0.0, abs=1e-12)
    assert surface_minimum(SURFACES["ravine"])[0] == pytest.approx(0.0, abs=1e-12)
    value, point = surface_minimum(SURFACES["saddle"])
    assert value == pytest.approx(0.0, abs=1e-12) and abs(point[1]) == pytest.approx(1.0, abs=1e-5)
    assert SURFACES["saddle"].loss(torch.zeros(2)).item() == pytest.approx(0.25)  # the saddle itself


def test_divergence_stops_the_run_early():
    run = run_optimizer(get_surface("ravine"), "sgd", 0.3, 0.0, (-2.0, 1.0), steps=100)
    assert len(run) < 101 and abs(run[-1, :2]).max() > 100


def test_unknown_names_raise():
    with pytest.raises(UnknownName, match="known: bowl, ravine, saddle, wells"):
        get_surface("volcano")
    with pytest.raises(UnknownName, match="known: adam, sgd"):
        make_optimizer("lbfgs", [nn.Parameter(torch.zeros(2))], 0.1, 0.0)


def _tiny_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def test_filter_normalized_direction_matches_each_neurons_norm_and_leaves_biases():
    model = _tiny_mlp()
    direction = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    for name, weight in model.named_parameters():
        if weight.dim() == 1:
            assert torch.all(direction[name] == 0)
        else:
            assert torch.allclose(direction[name].norm(dim=1), weight.detach().norm(dim=1))


def test_slice_center_is_the_model_and_plane_projection_inverts():
    model = _tiny_mlp()
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    d1 = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    d2 = filter_normalized_direction(model, torch.Generator().manual_seed(2))
    grid = loss_slice(model, (d1, d2), torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 5), x, y)
    assert grid[2, 2].item() == pytest.approx(nn.functional.cross_entropy(model(x), y).item(), rel=1e-5)
    center = {k: v.detach() for k, v in model.named_parameters()}
    moved = {k: center[k] + 0.3 * d1[k] - 0.7 * d2[k] for k in center}
    assert project_onto_plane(moved, center, (d1, d2)) == pytest.approx((0.3, -0.7), abs=1e-5)


def test_trajectory_pca_finds_a_straight_path():
    center = {"w": torch.zeros(3, 4)}
    direction = torch.randn(3, 4)
    path = [{"w": t * direction} for t in (3.0, 2.0, 1.0, 0.0)]
    first, _, variance = trajectory_pca_directions(path, center)
    cosine = (first["w"] * direction).sum() / direction.norm()
    assert abs(cosine.item()) == pytest.approx(1.0, abs=1e-6)
    assert variance[0] == pytest.approx(1.0, abs=1e-9)


def test_center_margin():
    bowl = torch.tensor([[2.0, 1.0, 2.0], [1.0, 0.5, 1.5], [2.0, 1.0, 2.0]])
    assert center_margin(bowl) == pytest.approx(0.5)
    assert center_margin(-bowl) < 0


@pytest.mark.slow
def test_optimizer_claims(smoke_claims):
    claims = smoke_claims("landscapes-optimizers")
    # momentum beats plain SGD on the ravine at the default learning rate; Adam (beta1 = 0.9) does not
    assert claims["ravine_momentum_gap"] < claims["ravine_sgd_gap"] / 10
    assert claims["ravine_adam_gap"] > claims["ravine_sgd_gap"]
    assert claims["ravine_adam_beta2_09_gap"] < claims["ravine_adam_gap"] / 10  # Adam's long memory is what holds it back
    assert 0 < claims["ravine_sgd_big_lr_diverged_at"] < claims["steps"]
    assert max(claims["ravine_big_lr_momentum_gap"], claims["ravine_big_lr_adam_gap"]) < 1e-2
    # near the saddle, Adam escapes first, then momentum, then SGD
    assert 0 < claims["saddle_escape_adam"] < claims["saddle_escape_momentum"] < claims["saddle_escape_sgd"]
    # on the three wells, where you start decides the minimum you end in
    assert claims["wells_A_sgd_gap"] < 1e-3
    assert claims["wells_B_sgd_gap"] > 0.1
    assert claims["wells_C_sgd_gap"] > claims["wells_C_momentum_gap"] > 0.1


@pytest.mark.slow
def test_digits_slice_claims(smoke_claims):
    claims = smoke_claims("landscapes-digits-slice")
    assert claims["seeds"] == 3
    assert claims["random_center_margin_min"] > 0  # on every seed the trained weights are the lowest point of the random slice
    assert claims["random_max_loss_min"] > 5 * claims["center_loss_max"]
    assert claims["random_init_captured_max"] < 0.2 < 0.9 < claims["pca_init_captured_min"]
    assert claims["pca_variance_min"] > 0.8
    for seed, lowest in claims["pca_min_loss_seeds"].items():  # further along the path, training loss keeps falling
        assert lowest < claims["center_loss_seeds"][seed], seed
    assert claims["val_accuracy_min"] > 0.9


@pytest.mark.slow
def test_landscape_sliders_show_steps_and_play(smoke):
    optimizers = smoke.spec("landscapes-optimizers")["usermeta"]["explorer"]["params"]
    assert optimizers["step"]["play"] and optimizers["step"]["label"] == "Optimizer step"
    slice_params = smoke.spec("landscapes-digits-slice")["usermeta"]["explorer"]["params"]
    steps = slice_params["upto"]["options"]
    assert slice_params["upto"]["play"] and steps[0] == 0 and steps[1] > 1 and steps == sorted(steps)  # real steps, not indices
