"""Feature visualization: the ascent against a closed form, and the article's claims at smoke scale."""

import pytest
import torch

from explorer.errors import UnknownName
from explorer.models.digits import make_mlp
from explorer.techniques.feature_visualization import maximize, total_variation, unit_objective, visualize_units


def test_ascent_finds_the_closed_form_optimum_of_a_linear_unit():
    # maximize w.x - l2 |x|^2 without the box: the optimum is x* = w / (2 l2)
    torch.manual_seed(0)
    w = torch.randn(3, 64)
    x = maximize(lambda x: (x * w).sum(dim=1), 3, l2=0.5, clamp=False, steps=2000, lr=0.02)
    torch.testing.assert_close(x, w / (2 * 0.5), atol=1e-2, rtol=1e-2)


def test_clamp_keeps_pixels_in_the_box():
    x = maximize(lambda x: (x * 100).sum(dim=1), 2, steps=50)
    assert x.min() >= 0 and x.max() == 1


def test_total_variation_matches_a_loop():
    image = torch.rand(1, 8, 8)
    expected = sum(abs(image[0, r, c] - image[0, r, c + 1]) for r in range(8) for c in range(7))
    expected += sum(abs(image[0, r, c] - image[0, r + 1, c]) for r in range(7) for c in range(8))
    torch.testing.assert_close(total_variation(image)[0], expected)


def test_objective_reads_the_named_unit():
    model = make_mlp((8, 4))
    x = torch.rand(2, 64)
    values = unit_objective(model, "fc2", [1, 3])(x)
    h = model.act1(model.fc1(x))
    torch.testing.assert_close(values, (h @ model.fc2.weight.T + model.fc2.bias)[[0, 1], [1, 3]])


@pytest.mark.parametrize(("layer", "regularizer", "kind"), [("fc9", "box", "layer"), ("fc1", "blur", "regularizer")])
def test_unknown_names(layer, regularizer, kind):
    with pytest.raises(UnknownName, match=f"^unknown {kind} "):
        visualize_units(make_mlp(), layer, [0], regularizer, steps=1)


def test_optimized_inputs_beat_the_best_real_digit(smoke_claims):
    claims = smoke_claims("features-explorer")
    assert claims["targets"] == 106 and claims["seeds"] == 3
    assert claims["beats_best_real_box_min"] > 0.95  # on every seed's network
    assert claims["median_ratio_box_min"] > 1.2
    assert claims["beats_best_real_box_l2_tv_min"] > 0.75
    # the penalties trade activation for readability, on every seed
    assert claims["median_ratio_box_l2_tv_max"] < claims["median_ratio_box_l2_min"] < claims["median_ratio_box_max"]
    assert claims["beats_best_real_box_l2_tv"] <= claims["beats_best_real_box"]


def test_class_means_are_classified_correctly(smoke_claims):
    claims = smoke_claims("features-classes")
    assert claims["class_means_accuracy_min"] >= 0.9 and claims["chance"] == pytest.approx(0.1)


def test_feature_figures_use_the_palette_and_one_panel(smoke):
    for fid in ("features-explorer", "features-classes"):
        spec = smoke.spec(fid)
        text = str(spec)
        assert "scheme" not in text and "#666" not in text, fid
        assert "reg" in spec["usermeta"]["explorer"]["params"], fid  # the regularizer is a panel control
