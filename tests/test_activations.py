"""Activations article: the regimes behave as the page says (claims at smoke scale) and the data stays small."""

import numpy as np
import pytest
from spec_checks import literal_colours, step_slider

from explorer import jsonio
from explorer.errors import UnknownName
from explorer.models.digits import REGIME_CHECKPOINTS, REGIME_STEPS, TrainedDigits, get_regime, make_mlp

ID = "activations-dead-units"


def test_healthy_classifier_learns(smoke_claims):
    assert smoke_claims(ID)["healthy_val_accuracy"] > 0.85


def test_dying_relu_kills_most_units_during_training(smoke_claims):
    claims = smoke_claims(ID)
    assert claims["dying_dead_fraction"] > 0.5
    assert claims["dying_dead_fraction_init"] < 0.2
    assert claims["healthy_dead_fraction"] < 0.3
    assert 0 < claims["dying_dead_by_step"] <= 40


def test_dead_units_come_back_in_layer_2_not_layer_1(smoke_claims):
    """The page says dead layer-2 units revive (their inputs keep changing) while layer 1's stay dead."""
    claims = smoke_claims(ID)
    assert claims["dying_dead_fraction_act2_peak"] > claims["dying_dead_fraction_act2"]
    assert claims["dying_revived_act2_min"] > 0
    assert claims["dying_revived_act1"] < claims["dying_revived_act2"]
    assert claims["dying_dead_fraction_floor_min"] > 0.5  # once past half, it stays past half


def test_accuracies_are_averaged_over_seeds_and_beat_chance(smoke_claims):
    claims = smoke_claims(ID)
    assert claims["chance_accuracy"] == 0.1 and claims["seeds"] >= 3
    for regime in ("healthy", "dying_relu", "saturated_tanh", "saturated_sigmoid"):
        assert claims[f"{regime}_val_accuracy_min"] > 5 * claims["chance_accuracy"], regime
    assert claims["healthy_val_accuracy_min"] > claims["dying_relu_val_accuracy"]  # dead units cost accuracy


def test_saturated_runs_keep_most_pre_activations_saturated(smoke_claims):
    claims = smoke_claims(ID)
    assert claims["tanh_saturated_fraction"] > 0.5
    assert claims["sigmoid_saturated_fraction"] > 0.5


def test_unknown_regime_is_one_line():
    with pytest.raises(UnknownName, match=r"^unknown regime 'sleepy'; known: dying-relu, healthy, saturated-sigmoid, saturated-tanh$"):
        get_regime("sleepy")


@pytest.mark.parametrize("figure_id", ["activations-histograms", "activations-dead-units", "activations-heatmap"])
def test_page_data_is_light(smoke, figure_id):
    folder = smoke.path(figure_id)
    assert sum(f.stat().st_size for f in folder.rglob("*.json")) < 1_500_000


def test_heatmap_has_one_file_per_regime_and_layer(smoke):
    spec = smoke.spec("activations-heatmap")
    controls = spec["usermeta"]["explorer"]["controls"]
    files = sorted(p.name for p in (smoke.path("activations-heatmap") / "heat").iterdir())
    assert len(files) == len(controls[0]["options"]) * len(controls[1]["options"])


def test_layer_2_dead_share_falls_from_its_peak_in_every_seed(smoke_claims):
    claims = smoke_claims(ID)
    peaks, finals = claims["dying_dead_fraction_act2_peak_seeds"], claims["dying_dead_fraction_act2_seeds"]
    assert all(peaks[seed] > finals[seed] for seed in peaks)


def test_the_healthy_spike_at_zero_is_a_minority(smoke_claims):
    claims = smoke_claims("activations-histograms")
    assert 0 < claims["healthy_zero_share_act1_min"] <= claims["healthy_zero_share_act1_max"] < 0.5


def test_every_healthy_seed_beats_every_dying_relu_seed(smoke_claims):
    """The page says the two accuracy ranges do not overlap."""
    claims = smoke_claims(ID)
    assert claims["healthy_val_accuracy_min"] > claims["dying_relu_val_accuracy_max"]


def test_saturation_slows_early_learning_but_beats_chance(smoke_claims):
    claims = smoke_claims(ID)
    assert claims["early_step"] >= 80
    for regime in ("saturated_tanh", "saturated_sigmoid"):
        assert claims["healthy_early_accuracy_min"] > claims[f"{regime}_early_accuracy_max"], regime
        assert claims[f"{regime}_early_accuracy_min"] > 3 * claims["chance_accuracy"], regime


def test_the_healthy_first_layer_code_is_distributed(smoke_claims):
    """A median unit responds to several classes; single-class units are a small minority."""
    claims = smoke_claims("activations-heatmap")
    assert claims["healthy_act1_classes_median_min"] >= 2
    assert 0 < claims["healthy_act1_live_units_min"] <= 64
    assert claims["healthy_act1_single_class_units_max"] < claims["healthy_act1_live_units_min"] / 4


def test_classes_responded_counts_a_hand_built_layer():
    from build_figures.activations import RESPONDS, classes_responded

    labels = np.repeat(np.arange(10), 2)  # two digits of each class
    means = np.zeros((10, 4))  # (classes, units)
    means[3, 0] = 2.0  # unit 0: one class only
    means[:, 1] = 1.0  # unit 1: every class alike
    means[1, 3], means[2, 3], means[4, 3] = 1.0, RESPONDS, RESPONDS - 0.01  # unit 3: the threshold counts, below it not
    post = means[labels]  # (20 digits, 4 units); unit 2 never fires and is left out
    assert classes_responded(post, labels).tolist() == [1, 10, 2]


def test_early_accuracy_is_the_first_evaluation_at_or_after_the_step():
    from build_figures.activations import early_accuracy

    run = TrainedDigits("mlp", "healthy", (4,), make_mlp((4,)), [], [{"step": s, "val_accuracy": s / 100} for s in (0, 39, 78, 81, 84)])
    assert early_accuracy(run, 80) == pytest.approx(0.81)
    assert early_accuracy(run, 78) == pytest.approx(0.78)


@pytest.mark.parametrize("figure_id", ["activations-histograms", "activations-dead-units", "activations-heatmap"])
def test_figures_follow_the_palette(smoke, figure_id):
    assert literal_colours(smoke.spec(figure_id)) == []


def test_the_histogram_slider_shows_training_steps_and_plays(smoke):
    slider = step_slider(smoke.spec("activations-histograms"), "step")
    assert slider["options"] == list(REGIME_CHECKPOINTS[:6]) + [REGIME_STEPS["smoke"]]  # 0 ... 80, 150
    assert slider["labels"][-1] == f"{REGIME_STEPS['smoke']:,}" and slider["play"] is True


def test_the_histogram_label_agrees_with_the_dead_unit_claims(smoke, smoke_claims):
    """The label over the bars (seed 0) counts the same dead units as the stuck-units figure's seed 0."""
    notes = [row for path in (smoke.path("activations-histograms") / "data").glob("*.json") for row in jsonio.read_json(path)
             if isinstance(row, dict) and "note" in row]  # fmt: skip
    last = REGIME_STEPS["smoke"]
    for layer, units in (("act1", 64), ("act2", 32)):
        (note,) = [r["note"] for r in notes if (r["regime"], r["layer"], r["step"], r["line"]) == ("dying-relu", layer, last, 2)]
        dead = int(note.removeprefix("dead units: ").split(" of ")[0])
        assert dead / units == pytest.approx(smoke_claims(ID)[f"dying_dead_fraction_{layer}_seeds"]["0"]), layer
