"""Activations article: the regimes behave as the page says (claims at smoke scale) and the data stays small."""

import pytest

from explorer.errors import UnknownName
from explorer.models.digits import get_regime

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
