"""The shared digits classifier: data split, models, and regimes that really do what they are named for."""

import numpy as np
import pytest
import torch

from explorer.errors import UnknownName
from explorer.models import digits
from explorer.models.digits import (
    REGIMES,
    dead_fraction,
    hidden_activations,
    load_digits_split,
    make_cnn,
    make_mlp,
    saturated_fraction,
    train_digits,
)

SMOKE_STEPS = 150


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


@pytest.fixture(scope="module")
def x_val(split):
    return torch.from_numpy(split.x_val)


def test_split_is_scaled_stratified_and_deterministic(split):
    assert split.x_train.shape == (1437, 64) and split.x_val.shape == (360, 64)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    assert np.bincount(split.y_val).min() >= 35  # every class ~10% of the validation set
    again = load_digits_split()
    assert np.array_equal(split.x_val, again.x_val)
    assert not np.array_equal(split.y_val, load_digits_split(seed=1).y_val)


@pytest.mark.parametrize("model", [make_mlp(), make_mlp((16,), "tanh"), make_cnn()])
def test_models_take_flat_or_image_input(model, x_val):
    flat = model(x_val[:5])
    image = model(x_val[:5].reshape(5, 1, 8, 8))
    assert flat.shape == (5, 10)
    torch.testing.assert_close(flat, image)


def test_cnn_names_its_last_conv_layer():
    assert isinstance(make_cnn().conv2, torch.nn.Conv2d)


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda: train_digits(regime="exploding", steps=1), "regime"),
        (lambda: train_digits(arch="resnet", steps=1), "arch"),
        (lambda: make_mlp(activation="gelu"), "activation"),
        (lambda: saturated_fraction(torch.zeros(1, 1), "relu"), "squashing activation"),
    ],
)
def test_unknown_names_are_one_line_listing_the_valid_ones(call, kind):
    with pytest.raises(UnknownName) as err:
        call()
    message = str(err.value)
    assert message.startswith(f"unknown {kind}") and "\n" not in message
    if kind == "regime":
        assert all(name in message for name in REGIMES)


def test_checkpoint_steps():
    assert digits.checkpoint_steps(100, 4) == [0, 25, 50, 75, 100]
    assert digits.checkpoint_steps(100, [100, 0, 7, 500]) == [0, 7, 100]


def test_training_is_cached_and_keeps_checkpoints(x_val):
    first = train_digits("mlp", "healthy", steps=SMOKE_STEPS, checkpoints=3)
    again = train_digits("mlp", "healthy", steps=SMOKE_STEPS, checkpoints=3)
    assert first.steps == [0, 50, 100, 150]
    assert [row["step"] for row in first.history][-1] == SMOKE_STEPS
    torch.testing.assert_close(first.model(x_val), again.model(x_val))
    torch.testing.assert_close(first.model_at(SMOKE_STEPS)(x_val), first.model(x_val))
    assert not first.model.training
    with pytest.raises(UnknownName):
        first.model_at(7)


def test_healthy_mlp_and_cnn_learn(x_val, split):
    for arch in ("mlp", "cnn"):
        run = train_digits(arch, "healthy", steps=SMOKE_STEPS)
        accuracy = (run.model(x_val).argmax(-1).numpy() == split.y_val).mean()
        assert accuracy > 0.85, arch
        assert run.history[-1]["val_accuracy"] == pytest.approx(accuracy)


def test_dying_relu_regime_kills_most_units(x_val):
    healthy = train_digits("mlp", "healthy", steps=SMOKE_STEPS)
    dying = train_digits("mlp", "dying-relu", steps=SMOKE_STEPS)

    def dead(model):
        return dead_fraction(torch.cat([post for _, post in hidden_activations(model, x_val).values()], dim=1))

    assert dead(dying.model) > 0.5
    assert dead(healthy.model) < 0.3
    assert dead(dying.model_at(0)) < 0.2  # they die during training, not at initialization


@pytest.mark.parametrize("regime", ["saturated-tanh", "saturated-sigmoid"])
def test_saturated_regimes_saturate(regime, x_val):
    run = train_digits("mlp", regime, steps=SMOKE_STEPS)
    pre = torch.cat([pre for pre, _ in hidden_activations(run.model, x_val).values()], dim=1)
    assert saturated_fraction(pre, REGIMES[regime].activation) > 0.5
    healthy_scale = torch.randn(10_000)  # unit-variance pre-activations rarely pass the threshold
    assert saturated_fraction(healthy_scale[None], REGIMES[regime].activation) < 0.02


def test_hidden_activations_match_a_manual_forward(x_val):
    model = make_mlp((8, 4))
    acts = hidden_activations(model, x_val[:3])
    pre1 = x_val[:3] @ model.fc1.weight.T + model.fc1.bias
    torch.testing.assert_close(acts["act1"][0], pre1)
    torch.testing.assert_close(acts["act1"][1], pre1.relu())
    assert list(acts) == ["act1", "act2"] and acts["act2"][1].shape == (3, 4)


def test_late_accuracy_averages_the_last_evaluations():
    run = digits.TrainedDigits("mlp", "healthy", (4,), make_mlp((4,)), [], [{"val_accuracy": a} for a in (0.1, 0.5, 0.7, 0.9)])
    assert digits.late_accuracy(run, last=2) == pytest.approx(0.8)
    assert digits.late_accuracy(run, last=10) == pytest.approx(0.55)


def test_regime_seeds_draw_seed_0_first():
    for scale, seeds in digits.REGIME_SEEDS.items():
        assert seeds[0] == 0 and len(set(seeds)) >= 3, scale
