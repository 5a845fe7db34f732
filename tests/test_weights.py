"""Weights article: claims at smoke scale and light page data."""

import numpy as np
import pytest
from spec_checks import literal_colours, step_slider

from explorer import jsonio
from explorer.models.digits import REGIME_STEPS, TrainedDigits, make_mlp

ID = "weights-templates"


def test_training_moves_first_layer_weights(smoke_claims):
    claims = smoke_claims(ID)
    assert claims["healthy_fc1_relative_change_min"] > 0.05
    assert claims["dying_fc1_relative_change_min"] > 2 * claims["healthy_fc1_relative_change_max"]  # "several times more"


def test_pixels_that_are_always_blank_keep_their_initial_weights(smoke_claims):
    claims = smoke_claims(ID)
    assert claims["blank_pixels"] >= 1
    assert claims["blank_pixel_max_change"] == 0.0  # no gradient ever reaches them


@pytest.mark.parametrize("figure_id", ["weights-templates", "weights-histograms"])
def test_page_data_is_light(smoke, figure_id):
    folder = smoke.path(figure_id)
    largest_choice = max(f.stat().st_size for f in (folder / "templates").iterdir()) if figure_id == ID else 0
    inline = sum(f.stat().st_size for f in folder.glob("data/*.json")) + (folder / "spec.json").stat().st_size
    assert inline + largest_choice < 1_500_000


def test_trained_templates_look_like_their_digits_more_than_the_nulls(smoke_claims):
    """The page compares the match with two nulls: the same units at initialization and the trained templates shuffled."""
    claims = smoke_claims(ID)
    assert claims["healthy_template_match_min"] > claims["healthy_template_match_init_max"]
    assert claims["healthy_template_match_init_min"] > claims["healthy_template_match_shuffled_max"]
    assert abs(claims["healthy_template_match_shuffled"]) < 0.05
    assert claims["healthy_template_match_positive_min"] > 0.8


def test_histograms_widen_as_the_page_says(smoke_claims):
    claims = smoke_claims("weights-histograms")
    assert claims["healthy_fc1_width_ratio_min"] > 1 and claims["healthy_out_width_ratio_min"] > claims["healthy_fc1_width_ratio_max"]
    assert claims["dying_fc1_width_ratio_early_min"] > 1.3 and claims["early_checkpoint"] == 10
    assert claims["dying_fc1_width_ratio_min"] > claims["dying_fc1_width_ratio_early_max"] > claims["healthy_fc1_width_ratio_max"]
    for regime in ("tanh", "sigmoid"):  # hidden layers barely change; the output layer widens
        assert abs(claims[f"{regime}_fc1_width_ratio_min"] - 1) < 0.05 and abs(claims[f"{regime}_fc1_width_ratio_max"] - 1) < 0.05
        assert claims[f"{regime}_out_width_ratio_min"] > 1.5


def test_correlation_matches_numpy():
    from build_figures.weights import correlation

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 64)), rng.normal(size=(5, 64))
    b[0] = 3 * a[0] + 1  # a perfect match, scaled and shifted
    expected = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
    np.testing.assert_allclose(correlation(a, b), expected)
    assert correlation(a, b)[0] == pytest.approx(1.0)


def test_width_ratio_is_the_ratio_of_standard_deviations():
    from build_figures.weights import width_ratio

    model = make_mlp((4, 3))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = {k: (3 * v if k == "fc1.weight" else v) for k, v in start.items()}
    run = TrainedDigits("mlp", "healthy", (4, 3), model, [(0, start), (7, end)], [])
    assert width_ratio(run, "fc1") == pytest.approx(3.0)
    assert width_ratio(run, "out") == pytest.approx(1.0) and width_ratio(run, "fc1", 0) == pytest.approx(1.0)


@pytest.mark.parametrize("figure_id", ["weights-templates", "weights-histograms"])
def test_figures_follow_the_palette_and_sliders_show_steps(smoke, figure_id):
    spec = smoke.spec(figure_id)
    assert literal_colours(spec) == []
    slider = step_slider(spec, "step")
    assert slider["options"][0] == 0 and slider["options"][-1] == REGIME_STEPS["smoke"] and slider["play"] is True
    assert slider["labels"] == [f"{s:,}" for s in slider["options"]]


def test_template_files_hold_every_step_and_the_initial_weights(smoke):
    spec = smoke.spec(ID)
    steps = step_slider(spec, "step")["options"]
    for path in (smoke.path(ID) / "templates").iterdir():
        data = jsonio.read_json(path)
        assert sorted({row["s"] for row in data["units"]}) == steps and len(data["units"]) == 64 * len(steps), path.name
        assert sorted(row["unit"] for row in data["init"]) == list(range(64)) and all(len(row["w0"]) == 64 for row in data["init"])
        assert all(v == 0 for row in data["units"] if row["s"] == 0 for v in row["d"])  # no change at step 0


def test_a_template_equal_to_its_digits_contrast_image_matches_perfectly():
    from types import SimpleNamespace

    from build_figures.weights import template_match

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 3)
    split = SimpleNamespace(x_train=rng.random((30, 64)), y_train=labels, y_val=labels)
    means = np.stack([split.x_train[labels == c].mean(axis=0) for c in range(10)])
    contrast = means - means.mean(axis=0)
    post = np.eye(10)[labels][:, [2, 5, 7]]  # (30 digits, 3 units) preferring digits 2, 5 and 7
    post = np.concatenate([post, np.zeros((30, 1))], axis=1)  # a fourth unit that never fires is left out
    weight = np.stack([contrast[2], -contrast[5], 2 * contrast[7] + 1, contrast[0]])
    np.testing.assert_allclose(template_match(weight, post, split), [1.0, -1.0, 1.0])


def test_dead_units_weights_fell_on_the_ink(smoke_claims):
    """The page says a dead unit's weights fell on most ink pixels, a surviving unit's on about half."""
    claims = smoke_claims(ID)
    assert claims["dying_dead_units_fell_min"] > claims["dying_live_units_fell_max"] + 0.15
    assert 0.3 < claims["dying_live_units_fell"] < 0.7 and 20 < claims["ink_pixels"] < 64
