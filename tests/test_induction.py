"""Induction heads: the from-scratch measures against TransformerLens, and the article's claims at smoke scale."""

import importlib.util
import sys

import pytest
import torch
from transformer_lens import head_detector

from explorer import models, paths
from explorer.errors import UnknownName
from explorer.models import training
from explorer.techniques import induction


def _article():
    name = "build_figures.induction"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, paths.BUILD_FIGURES / "induction.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def tiny():
    arch = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, n_ctx=16, d_vocab=20, attn_only=True, normalization_type="LN", seed=3)
    return training.build_bridge(arch).eval()


def test_detection_score_is_the_head_detector_mul_score(tiny):
    tokens = torch.randperm(20)[:12][None]
    _, cache = tiny.run_with_cache(tokens)
    detection = induction.previous_token_detection(12)
    ours = induction.detection_score(cache["blocks.1.attn.hook_pattern"], detection)
    for head in range(2):
        theirs = head_detector.compute_head_attention_similarity_score(
            cache["blocks.1.attn.hook_pattern"][0, head], detection, exclude_bos=False, exclude_current_token=False, error_measure="mul"
        )
        assert ours[head].item() == pytest.approx(theirs, abs=1e-6)


def test_induction_detection_matches_transformer_lens_on_repeated_tokens():
    first = torch.randperm(50)[:7]  # distinct tokens: the only duplicates are across the two copies
    tokens = torch.cat([first, first])[None]
    assert torch.equal(induction.induction_detection(7), head_detector.get_induction_head_detection_pattern(tokens))
    assert torch.equal(induction.previous_token_detection(14), head_detector.get_previous_token_head_detection_pattern(tokens))


def test_k_composition_matches_transformer_lens(tiny):
    ours = induction.k_composition(tiny)  # (head_l0, head_l1)
    theirs = tiny.all_composition_scores("K").scores[0, :, 1, :]
    assert torch.allclose(ours, theirs.detach(), atol=1e-5)
    assert 0 < induction.random_composition_baseline(16, 8) < 1


def test_phase_window_finds_the_steep_part():
    steps = list(range(0, 100, 5))
    values = [0.0 if s < 40 else 1.0 if s > 55 else (s - 40) / 15 for s in steps]
    assert _article().phase_window(steps, values) == (45, 55)


def test_ablation_hook_replaces_one_head_only(tiny):
    tokens = torch.randint(0, 20, (2, 10))
    name, hook = induction.ablate_head_hook(1, 0)
    seen = {}
    tiny.run_with_hooks(tokens, fwd_hooks=[(name, hook), (name, lambda z, hook: seen.setdefault("z", z.clone()))])
    assert torch.all(seen["z"][:, :, 0] == 0) and torch.any(seen["z"][:, :, 1] != 0)


def test_unknown_checkpoint_step_is_rejected():
    with pytest.raises(UnknownName, match=r"known: 0, 100, .*, 400"):
        models.load("induction-2l", scale="smoke", step=3)


def test_film_shows_a_layer1_induction_head_and_a_narrow_phase_change(smoke_claims):
    c = smoke_claims("induction-film")
    assert c["induction_head"].startswith("L1H")
    assert c["induction_score"] > 0.5
    assert c["best_layer0_induction_score"] < 0.3  # layer 0 alone cannot do induction
    assert c["previous_token_score"] > 0.25
    assert c["window_start"] < c["window_end"]
    assert c["window_fraction"] < 0.5  # the rise happens in a window shorter than half of training
    assert c["repeated_loss_final"] < 0.5 * c["repeated_loss_start"]
    assert c["icl_final"] < c["icl_start"] - 0.5


def test_ablating_the_induction_head_raises_the_repeated_loss(smoke_claims):
    c = smoke_claims("induction-ablation")
    assert c["ablated_head"] == smoke_claims("induction-film")["induction_head"]
    assert c["loss_increase"] > 0.3
    assert c["loss_ratio"] > 1.3
    assert c["all_induction_increase"] > 1.0
    assert c["all_induction_increase"] > 3 * max(c["control_increase"], c["mean_outside_increase"], 0.01)
    assert c["previous_token_increase"] > c["control_increase"]


def test_previous_token_head_composes_with_the_induction_head(smoke_claims):
    c = smoke_claims("induction-composition")
    assert c["pair_score"] > c["random_baseline"]
    assert c["pair_score"] > c["pair_score_start"]


def test_sweep_finds_two_layers_minimal(smoke_claims):
    c = smoke_claims("induction-sweep")
    assert c["runs"] >= 6
    assert c["one_layer_max_induction"] < c["threshold"]
    assert c["minimal_layers"] == 2
    assert c["fraction_showing_1l"] == 0 and c["fraction_showing_2l"] > 0.5
    assert c["two_layer_mean_repeated_loss"] < c["one_layer_mean_repeated_loss"] - 0.5
