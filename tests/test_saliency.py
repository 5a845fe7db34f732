"""Saliency: the hand-written gradient against autograd, the Captum wrappers against Captum and
exact identities, the checks (deletion curve, randomization), and the article's claims."""

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient
from scipy.stats import spearmanr
from torch import nn

from explorer.errors import ExplorerError, UnknownName
from explorer.models.digits import make_cnn, make_mlp
from explorer.techniques import saliency_numpy
from explorer.techniques.saliency import (
    BASELINES,
    CORRELATIONS,
    METHODS,
    attribute,
    brightness_map,
    cached_gauss_legendre,
    cascading_randomization,
    completeness_gap,
    curve_area,
    deletion_curve,
    gaussian_blur,
    get_method,
    integrated_gradients_refined,
    make_baseline,
    map_correlation,
    methods_for,
    rank_correlation,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture
def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return make_mlp(hidden=(12, 7)).double().eval()


@pytest.fixture
def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return make_cnn().double().eval()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


TARGETS = torch.tensor([0, 3, 9, 3, 7])


def test_numpy_gradient_matches_autograd(tiny_mlp, images):
    weights = saliency_numpy.mlp_weights(tiny_mlp)
    for image, target in zip(images, TARGETS.tolist()):
        x = image[None].clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(tiny_mlp(x)[0, target], x)
        by_hand = saliency_numpy.input_gradient(image.flatten().numpy(), weights, target)
        np.testing.assert_allclose(by_hand, expected.flatten().numpy(), rtol=1e-10, atol=1e-12)
        logits, _ = saliency_numpy.forward(image.flatten().numpy(), weights)
        np.testing.assert_allclose(logits, tiny_mlp(image[None])[0].detach().numpy(), rtol=1e-10)


def test_unknown_method_lists_the_valid_ones(tiny_mlp, images):
    with pytest.raises(UnknownName) as err:
        get_method("guided-backprop")
    message = str(err.value)
    assert "guided-backprop" in message and all(name in message for name in METHODS)
    with pytest.raises(UnknownName, match="black"):
        make_baseline("grey", images)
    with pytest.raises(ExplorerError, match="convolutional"):
        attribute("grad-cam", tiny_mlp, images, TARGETS)


def test_methods_for_knows_grad_cam_needs_a_conv(tiny_mlp, tiny_cnn):
    assert "grad-cam" not in methods_for(tiny_mlp)
    assert methods_for(tiny_cnn) == list(METHODS)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_every_method_gives_an_input_shaped_map(arch, tiny_mlp, tiny_cnn, images):
    model = tiny_mlp if arch == "mlp" else tiny_cnn
    quick = {"integrated-gradients": {"n_steps": 16, "tolerance": None}, "smoothgrad": {"n_samples": 4}}
    for method in methods_for(model):
        maps = attribute(method, model, images, TARGETS, **quick.get(method, {}))
        assert maps.shape == images.shape and torch.isfinite(maps).all(), method


def test_gradient_and_smoothgrad_match_autograd(tiny_cnn, images):
    x = images.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(tiny_cnn(x).gather(1, TARGETS[:, None]).sum(), x)
    torch.testing.assert_close(attribute("gradient", tiny_cnn, images, TARGETS), expected)
    # With vanishing noise SmoothGrad is the signed gradient (Captum would take |gradient| by default).
    nearly_clean = attribute("smoothgrad", tiny_cnn, images, TARGETS, n_samples=3, noise=1e-9)
    torch.testing.assert_close(nearly_clean, expected)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_lrp_epsilon_equals_captum_input_x_gradient_on_relu_nets(arch, tiny_mlp, tiny_cnn, images):
    """On ReLU networks the epsilon rule (epsilon -> 0) reduces to gradient x input (Ancona et al. 2018):
    this checks the rule our wrapper gives nn.Flatten, and that LRP leaves the model untouched."""
    model = tiny_mlp if arch == "mlp" else tiny_cnn
    before = {k: v.clone() for k, v in model.state_dict().items()}
    relevance = attribute("lrp", model, images, TARGETS)
    expected = InputXGradient(model).attribute(images, target=TARGETS)
    torch.testing.assert_close(relevance, expected, rtol=1e-4, atol=1e-7)  # up to the rule's 1e-9 stabilizer
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(hasattr(m, "rule") for m in model.modules())


@pytest.mark.parametrize("baseline", list(BASELINES))
def test_integrated_gradients_is_complete(baseline, tiny_cnn, images):
    """The sum rule holds up to the integration error, which shrinks with the number of steps.

    (An untrained network barely changes its score along the path, so relative gaps are larger here
    than on the trained models, where the claim below asks for under 1%.)"""
    fine, _ = integrated_gradients_refined(tiny_cnn, images, TARGETS, baseline, 256, None, 256)
    coarse, _ = integrated_gradients_refined(tiny_cnn, images, TARGETS, baseline, 2, None, 2)
    fine_gap = completeness_gap(tiny_cnn, images, TARGETS, fine, baseline)
    coarse_gap = completeness_gap(tiny_cnn, images, TARGETS, coarse, baseline)
    assert fine_gap.median() < 0.01 and fine_gap.max() < 0.05
    assert fine_gap.max() < coarse_gap.max() / 5


def test_integrated_gradients_refines_where_the_sum_check_fails(tiny_cnn, images):
    coarse, used = integrated_gradients_refined(tiny_cnn, images, TARGETS, "black", 2, None, 64)
    assert used.tolist() == [2] * 5
    maps, used = integrated_gradients_refined(tiny_cnn, images, TARGETS, "black", 2, 0.002, 512)
    gap = completeness_gap(tiny_cnn, images, TARGETS, maps, "black")
    assert used.max() > 2 and ((gap < 0.002) | (used == 512)).all()
    assert gap.max() < completeness_gap(tiny_cnn, images, TARGETS, coarse, "black").max()


def test_baselines_are_fixed_and_input_shaped(images):
    noise = make_baseline("uniform-noise", images)
    assert noise.shape == images.shape and torch.equal(noise, make_baseline("uniform-noise", images))
    assert torch.equal(noise[0], noise[1])  # one reference image for every input
    flat = torch.full_like(images, 0.4)
    torch.testing.assert_close(gaussian_blur(flat), flat)  # blurring a constant changes nothing
    assert gaussian_blur(images).std() < images.std()


def test_occlusion_is_the_score_drop_of_a_patch():
    """A linear score sum(w * x): occluding one 2x2 patch drops it by that patch's sum of w * x."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2, bias=False)).double().eval()
    image = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    contribution = (model[1].weight[1].view(8, 8) * image[0, 0]).detach()  # (8, 8)
    maps = attribute("occlusion", model, image, 1)[0, 0]
    # The corner pixel is covered by one window only: its occlusion value is that window's drop.
    torch.testing.assert_close(maps[0, 0].double(), contribution[:2, :2].sum(), rtol=1e-5, atol=1e-6)


def test_deletion_curve_follows_the_map():
    """On a linear model, ranking pixels by their exact contribution beats a random order."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).double().eval()
    images = torch.rand(20, 1, 8, 8, dtype=torch.float64)
    targets = torch.zeros(20, dtype=torch.long)
    contributions = model[1].weight[0].view(1, 1, 8, 8) * images  # what each pixel adds to the score
    best = deletion_curve(model, images, targets, contributions, steps=8)
    random = deletion_curve(model, images, targets, None, steps=8, generator=torch.Generator().manual_seed(0))
    assert best.shape == (20, 9)
    torch.testing.assert_close(best[:, 0], model(images).softmax(-1)[:, 0])  # nothing removed yet
    torch.testing.assert_close(best[:, -1], random[:, -1])  # everything removed: the same black image
    assert curve_area(best).mean() < curve_area(random).mean()
    assert curve_area(torch.ones(9)).item() == pytest.approx(1.0)


def test_cascading_randomization_goes_top_down_and_leaves_the_model(tiny_mlp):
    before = {k: v.clone() for k, v in tiny_mlp.state_dict().items()}
    stages = list(cascading_randomization(tiny_mlp, ["out", "fc2", "fc1"]))
    assert [name for name, _ in stages] == ["out", "fc2", "fc1"]
    for i, (_, model) in enumerate(stages):
        changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
        assert changed == set(["out", "fc2", "fc1"][: i + 1])
    assert all(torch.equal(before[k], v) for k, v in tiny_mlp.state_dict().items())
    again = list(cascading_randomization(tiny_mlp, ["out"]))[0][1]
    assert torch.equal(again.out.weight, stages[0][1].out.weight)  # seeded
    with pytest.raises(UnknownName, match="fc1"):
        list(cascading_randomization(tiny_mlp, ["fc9"]))


def test_rank_correlation_is_spearman_of_magnitudes():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 1, 8, 8, generator=generator), torch.randn(4, 1, 8, 8, generator=generator)
    rho = rank_correlation(a, b)
    expected = [spearmanr(x.abs().flatten(), y.abs().flatten()).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(rho, expected)
    np.testing.assert_allclose(rank_correlation(a, -a), 1.0)  # signs do not matter
    assert rank_correlation(a, torch.zeros_like(a)).tolist() == [0.0] * 4


def test_rank_correlation_variants_match_scipy():
    """Signed: Spearman of the values themselves; `where`: only the chosen pixels take part."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 1, 8, 8, generator=generator), torch.randn(3, 1, 8, 8, generator=generator)
    np.testing.assert_allclose(rank_correlation(a, -a, signed=True), -1.0)
    expected = [spearmanr(x.flatten(), y.flatten()).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(rank_correlation(a, b, signed=True), expected)
    keep = torch.rand(3, 1, 8, 8, generator=generator) > 0.5
    expected = [spearmanr(x.abs()[k], y.abs()[k]).statistic for x, y, k in zip(a, b, keep)]
    np.testing.assert_allclose(rank_correlation(a, b, where=keep), expected)


def test_tied_zeros_make_unrelated_input_times_gradient_maps_correlate():
    """The randomization test's blind spot: two maps x * g with independent g share x's zeros. Over
    all pixels their magnitudes correlate strongly; on the ink alone, and with signs, far less."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(20, 1, 8, 8, generator=generator) * (torch.rand(20, 1, 8, 8, generator=generator) > 0.6)
    a = images * torch.randn(images.shape, generator=generator)
    b = images * torch.randn(images.shape, generator=generator)
    every = {kind: map_correlation(kind, a, b, images).mean() for kind in CORRELATIONS}
    assert every["abs"] > 0.6
    assert every["ink"] < every["abs"] - 0.3
    assert abs(every["signed"]) < 0.1


def test_brightness_map_ranks_bright_pixels_first_and_breaks_ties_at_random():
    images = torch.tensor([[0.0, 0.5, 0.5, 1.0] * 16]).view(1, 1, 8, 8)
    first = brightness_map(images, torch.Generator().manual_seed(0))
    order = first.flatten().argsort(descending=True)
    assert (images.flatten()[order[:16]] == 1.0).all() and (images.flatten()[order[-16:]] == 0.0).all()
    second = brightness_map(images, torch.Generator().manual_seed(1))
    assert not torch.equal(order, second.flatten().argsort(descending=True))  # equal pixels: another order


def test_cached_gauss_legendre_gives_numpys_nodes_and_restores_numpy():
    numpy_leggauss = np.polynomial.legendre.leggauss
    for n in (3, 64, 300):
        nodes, weights = numpy_leggauss(n)
        with cached_gauss_legendre():
            cached_nodes, cached_weights = np.polynomial.legendre.leggauss(n)
        np.testing.assert_allclose(cached_nodes, nodes, atol=1e-13)
        np.testing.assert_allclose(cached_weights, weights, atol=1e-13)
    assert np.polynomial.legendre.leggauss is numpy_leggauss


# --------------------------------------------------------------------------- claims (smoke scale)


def test_claim_classifiers_are_accurate(smoke_claims):
    claims = smoke_claims("saliency-panel")
    assert claims["seeds"] == 3 and claims["chance"] == pytest.approx(0.1)
    for arch in ("mlp", "cnn"):
        assert claims[f"{arch}_val_accuracy_min"] > 0.9  # every seed; guessing gets 10%
        assert claims[f"{arch}_val_accuracy_max"] - claims[f"{arch}_val_accuracy_min"] < 0.05


def test_claim_numpy_gradient_equals_autograd(smoke_claims):
    assert smoke_claims("saliency-numpy")["max_abs_difference"] < 1e-5


def test_claim_integrated_gradients_refined_until_the_tolerance_holds(smoke_claims):
    claims = smoke_claims("saliency-completeness")
    # A fixed number of steps leaves some maps above the tolerance; refining fixes every one of them.
    assert claims["fixed_max_gap_pct"] > claims["tolerance_pct"] > claims["max_gap_pct"]
    assert claims["refined_maps"] > 0 and claims["over_tolerance_maps"] == 0
    assert claims["steps"] < claims["most_steps"] <= claims["max_steps"]
    assert all(claims[f"{arch}_{b}_gap_median_pct_max"] < 0.1 for arch in ("mlp", "cnn") for b in BASELINES)


def test_claim_deletion_beats_random_and_brightness_order(smoke_claims):
    claims = smoke_claims("saliency-deletion")
    for arch in ("mlp", "cnn"):
        random, brightness = claims[f"{arch}_area_random_min"], claims[f"{arch}_area_brightness"]
        # Removing the brightest pixels breaks the prediction without a model; the maps do far better.
        assert claims[f"{arch}_area_brightness_max"] < 0.6 * random
        for method in ("gradient", "smoothgrad", "integrated-gradients", "lrp", "occlusion"):
            assert claims[f"{arch}_area_{method}_max"] < 0.6 * brightness, (arch, method)
    # The page's ranking on the MLP: input-weighted maps first, then occlusion, then the plain gradients.
    mlp = {m: claims[f"mlp_area_{m}"] for m in ("integrated-gradients", "lrp", "occlusion", "smoothgrad", "gradient")}
    assert max(mlp["integrated-gradients"], mlp["lrp"]) < mlp["occlusion"] < min(mlp["smoothgrad"], mlp["gradient"])
    # Grad-CAM's coarse map is no pixel ranking: no better than a random order, worse than brightness.
    assert claims["cnn_area_grad-cam"] > max(0.8 * claims["cnn_area_random"], 1.5 * claims["cnn_area_brightness"])


def test_claim_randomization_separates_the_methods_and_the_zeros_explain_most_of_it(smoke_claims):
    claims = smoke_claims("saliency-sanity")
    rho = lambda arch, method, kind, stage: claims[f"{arch}_{method}_{kind}_rho_{stage}"]  # noqa: E731
    for arch in ("mlp", "cnn"):
        for method in ("gradient", "smoothgrad"):
            for kind in CORRELATIONS:
                # Destroy the model and the gradient's map is gone: far below what a second trained model shares.
                assert abs(rho(arch, method, kind, "randomized")) < 0.5 * rho(arch, method, kind, "other_seed"), (method, kind)
        for method in ("integrated-gradients", "lrp"):
            # Over all pixels, maps that multiply by the input keep the digit's shape even on a random network ...
            assert rho(arch, method, "abs", "randomized") > max(0.8, 0.85 * rho(arch, method, "abs", "other_seed"))
            # ... mostly through the background's tied zeros: on the ink, and with signs, much less is left.
            assert rho(arch, method, "ink", "randomized") < rho(arch, method, "abs", "randomized") - 0.3
            assert rho(arch, method, "ink", "randomized") < 0.75 * rho(arch, method, "ink", "other_seed")
            assert abs(rho(arch, method, "signed", "randomized")) < 0.2 < rho(arch, method, "signed", "other_seed")
        # Occlusion keeps part of the silhouette: between the two groups, and the zeros explain it too.
        occ = rho(arch, "occlusion", "abs", "randomized")
        assert rho(arch, "gradient", "abs", "randomized") < occ < rho(arch, "integrated-gradients", "abs", "randomized")
        assert rho(arch, "occlusion", "ink", "randomized") < occ - 0.2
        assert abs(rho(arch, "occlusion", "signed", "randomized")) < 0.2
    assert abs(rho("cnn", "grad-cam", "abs", "randomized")) < 0.8 * rho("cnn", "grad-cam", "abs", "other_seed")


# --------------------------------------------------------------------------- the figures (smoke scale)


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_panel_draws_the_same_grid_of_maps_for_both_networks(smoke):
    """The MLP has no Grad-CAM: its square is a placeholder, so the maps do not move when the network changes."""
    from explorer import jsonio

    folder = smoke.path("saliency-panel") / "maps"
    methods = {arch: {r["k"].split(":")[0] for r in jsonio.read_json(folder / f"{arch}-0.json")["maps"]} for arch in ("mlp", "cnn")}
    assert methods["mlp"] == methods["cnn"] == {"input", *METHODS}
    placeholders = [r for r in jsonio.read_json(folder / "mlp-0.json")["maps"] if r.get("na")]
    assert placeholders and {r["k"] for r in placeholders} == {"grad-cam"}


def test_saliency_maps_have_a_colour_legend(smoke):
    for fid in ("saliency-panel", "saliency-numpy", "saliency-sanity"):
        legends = [node["legend"] for node in _walk(smoke.spec(fid)) if node.get("field") == "norm" and node.get("legend")]
        assert legends and all("attribution" in " ".join(legend["title"]) for legend in legends), fid


def test_deletion_legend_lists_only_the_rankings_drawn(smoke):
    """No fixed colour domain (the MLP's legend must not list Grad-CAM); the sort keeps each ranking's colour."""
    colors = [node for node in _walk(smoke.spec("saliency-deletion")) if node.get("field") == "method" and "scale" in node]
    assert colors and all("domain" not in c["scale"] and c["sort"][-1] == "Grad-CAM" for c in colors)


def colours_not_from_the_palette(spec: dict) -> list:
    """Every colour a spec sets (marks, values, scale ranges) that is not a var(--fig-...) token, and any scheme."""
    bad = []
    for node in _walk(spec):
        for key in ("color", "fill", "stroke"):
            if isinstance(node.get(key), str) and not node[key].startswith("var(--fig-") and node[key] not in ("independent", "shared"):
                bad.append(node[key])
        if isinstance(node.get("value"), str) and node["value"].startswith("#"):
            bad.append(node["value"])
        if "scheme" in node:
            bad.append(f"scheme {node['scheme']}")
        if isinstance(node.get("range"), list):
            bad += [c for c in node["range"] if isinstance(c, str) and not c.startswith("var(--fig-")]
    return bad


def test_figures_use_palette_tokens_not_colour_names(smoke):
    for fid in ("saliency-panel", "saliency-numpy", "saliency-completeness", "saliency-deletion", "saliency-sanity"):
        assert not colours_not_from_the_palette(smoke.spec(fid)), fid
