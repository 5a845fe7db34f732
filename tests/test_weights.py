"""Weights article: claims at smoke scale and light page data."""

import pytest

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
