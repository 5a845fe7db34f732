"""Induction heads: each measure against an independent oracle, and the article's claims at smoke scale.

The smoke tests assert the direction of every claim the page makes at full scale (which side of its
null a number falls, which of two numbers is larger).
"""

import importlib.util
import math
import sys

import pytest
import torch

from explorer import models, paths
from explorer.errors import UnknownName
from explorer.models import training
from explorer.techniques import induction

import tiny_models


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
    return tiny_models.tiny()


# --- losses --------------------------------------------------------------------------------------


def test_next_token_loss_is_the_cross_entropy_of_the_next_token():
    """The one next-token loss, against an explicit loop over positions."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g) * 3
    tokens = torch.randint(0, 7, (2, 5), generator=g)
    expected = torch.tensor([[-torch.log_softmax(logits[b, i], -1)[tokens[b, i + 1]].item() for i in range(4)] for b in range(2)])
    assert torch.allclose(training.next_token_loss(logits, tokens, per_token=True), expected, atol=1e-5)
    assert training.next_token_loss(logits, tokens).item() == pytest.approx(expected.mean().item(), abs=1e-5)


def test_per_position_loss_averages_the_batch_at_each_position(tiny):
    tokens = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    logits = tiny(tokens)
    expected = torch.stack([torch.stack([-logits[b, i].log_softmax(-1)[tokens[b, i + 1]] for i in range(11)]) for b in range(3)]).mean(0)
    assert torch.allclose(induction.per_position_loss(tiny, tokens), expected.detach(), atol=1e-5)


def test_loss_windows_pick_the_right_entries():
    loss = torch.arange(20.0)  # entry i predicts token i + 1
    # prefix 1, copies of 8: the second copy starts at token 9; its tokens 10..16 are predictable (entries 9..18)
    assert induction.repeated_half_loss(loss, 9) == pytest.approx(sum(range(9, 20)) / 11)
    assert induction.first_copy_loss(loss, prefix=1, half=8) == pytest.approx(sum(range(1, 8)) / 7)  # entries 1..7: tokens 2..8
    assert induction.icl_score(loss, window=3) == pytest.approx((17 + 18 + 19) / 3 - (1 + 2 + 3) / 3)


# --- K-composition -------------------------------------------------------------------------------


def test_k_composition_matches_transformer_lens(tiny):
    ours = induction.k_composition(tiny)  # (head_l0, head_l1)
    theirs = tiny.all_composition_scores("K").scores[0, :, 1, :]
    assert torch.allclose(ours, theirs.detach(), atol=1e-5)


def test_composition_score_on_hand_built_matrices():
    u, v = torch.zeros(4, 4), torch.zeros(4, 4)
    u[0, 1] = 2.0  # writes along e1
    v[3, 1] = 5.0  # reads e1: ||u vᵀ|| = ||u|| ||v|| for rank-one matrices sharing their direction
    assert induction.composition_score(u, v).item() == pytest.approx(1.0)
    w = torch.zeros(4, 4)
    w[3, 2] = 1.0  # reads e2, which u never writes
    assert induction.composition_score(u, w).item() == pytest.approx(0.0)


def test_rotation_null_keeps_norms_and_has_mean_square_one_over_d(tiny):
    g = torch.Generator().manual_seed(0)
    rotations = induction.random_rotations(32, 50, g)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), torch.eye(32, dtype=rotations.dtype).expand(50, 32, 32), atol=1e-10)
    null = induction.k_composition_null(tiny, samples=400)  # (head_l0, head_l1, samples)
    assert null.shape == (4, 4, 400)
    # E||A R Bᵀ||² = ||A||² ||B||² / d for a Haar-random rotation R (an analytic oracle)
    assert (null ** 2).mean().item() == pytest.approx(1 / 32, rel=0.08)
    assert null.std(-1).min() > 0.005  # each sample a different rotation
    many = induction.random_rotations(8, 4000, g)  # Haar: every entry has mean 0 (QR alone leans to -0.2 on the diagonal)
    assert torch.diagonal(many, dim1=-2, dim2=-1).mean().abs() < 0.03


def test_phase_window_finds_the_steep_part():
    steps = list(range(0, 100, 5))
    values = [0.0 if s < 40 else 1.0 if s > 55 else (s - 40) / 15 for s in steps]
    assert _article().phase_window(steps, values) == (45, 55)


def test_wilson_interval_against_closed_forms():
    z2 = _article().Z95 ** 2
    assert _article().wilson(0, 27) == pytest.approx((0.0, z2 / (27 + z2)))  # k = 0: upper bound z²/(n + z²)
    assert _article().wilson(27, 27) == pytest.approx((27 / (27 + z2), 1.0))
    from scipy.stats import binomtest

    for k, n in ((7, 9), (2, 18), (13, 18)):
        theirs = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert _article().wilson(k, n) == pytest.approx((theirs.low, theirs.high), abs=1e-6)


def test_unknown_checkpoint_step_is_rejected():
    with pytest.raises(UnknownName, match=r"known: 0, 100, .*, 400"):
        models.load("induction-2l", scale="smoke", step=3)


# --- the article at smoke scale: the direction of every full-scale claim -----------------------------


def test_film_shows_a_layer1_induction_head_forming_in_a_window(smoke_claims):
    c = smoke_claims("induction-film")
    assert c["seeds"] == 3
    assert c["induction_head"].startswith("L1H") and c["previous_token_head"].startswith("L0H")
    assert c["top_induction_lo"] > 4 * c["chance_induction"]  # every run well above uniform attention
    assert c["best_layer0_induction_hi"] < 0.3 and c["best_layer0_induction_hi"] < c["top_induction_lo"]
    assert c["top_previous_token_lo"] > c["chance_previous_token"]
    assert c["layer0_mean_previous_token"] < c["top_previous_token"]
    assert c["window_start"] < c["window_end"]
    assert c["window_fraction_hi"] < 0.5  # the rise happens in a window shorter than half of training
    assert c["repeated_loss_final_hi"] < c["repeated_loss_start_lo"]
    assert c["first_half_loss_final_lo"] > c["repeated_loss_final_hi"]
    assert c["icl_final"] < c["icl_start"] and c["icl_final_lo"] < c["icl_start_lo"]  # the context helps more after training
    assert c["library_induction_score"] == pytest.approx(c["induction_score"] * c["library_fraction_of_rows"], abs=1e-4)


def test_score_peaks_inside_the_training_periods(smoke_claims):
    c = smoke_claims("induction-repeat-length")
    assert c["min_period"] <= c["canonical_half"] <= c["max_period"]
    assert c["top_head_min"] <= c["top_head_canonical"] <= c["top_head_max"]
    assert c["top_head_longest"] < c["top_head_max"]  # beyond the training periods the score falls
    assert c["longest_half"] > c["max_period"]
    assert c["top_head_library"] < c["top_head_canonical"]


def test_composition_beats_its_null_but_not_only_for_the_pair(smoke_claims):
    c = smoke_claims("induction-composition")
    assert c["pair_lo"] > c["null_p95_hi"]  # every run: the circuit pair above its null's 95th percentile
    assert c["percentile_lo"] >= 0.95
    assert c["pair"] > c["pair_start"]
    assert c["row_others"] > c["null_median"]  # the previous-token head composes with the other layer-1 heads too
    assert c["pairs_above_p95"] > 1
    assert c["rise_mid"] <= smoke_claims("induction-film")["window_start_hi"]  # half the rise is done as the window opens
    assert c["row_others"] > 0.8 * c["pair"]  # ... and it is nearly as strong into the other layer-1 heads


def test_ablations_beat_their_nulls_where_the_page_says(smoke_claims):
    c = smoke_claims("induction-ablation")
    assert c["ablated_head"] == smoke_claims("induction-film")["induction_head"]
    assert c["induction"] > c["induction_null"]
    assert c["previous"] > c["previous_null"]
    assert c["team"] > c["team_null"] and c["team"] > c["induction"]
    assert c["team_loss"] > 0.8 * c["uniform_loss"]  # all induction heads out: close to a uniform guess
    assert c["previous_is_costliest_seeds"] >= 2  # the previous-token head costs most (full scale: every run)
    assert c["previous"] - c["previous_null"] > c["other_layer0_max"] - c["other_layer0_null_max"]
    assert c["other_layer0_mean"] < c["previous"]
    assert c["other_layer0_mean"] < 1.5 * c["other_layer0_null_max"]  # the other layer-0 heads: about their null
    assert c["layer1_above_null"] >= c["layer1"] / 2  # the induction heads beat their nulls (full scale: all of them)


def test_sweep_needs_two_layers(smoke_claims):
    c = smoke_claims("induction-sweep")
    assert c["runs"] == c["configs"] * c["seeds"] and c["seeds"] == 3
    assert c["shows_1l"] == 0 and c["max_induction_1l"] < c["threshold"]
    assert c["shows_2l"] > c["shows_1l"]
    assert c["minimal_layers"] == 2
    assert c["mean_repeated_loss_2l"] < c["mean_repeated_loss_1l"]
    assert c["fraction_showing_1l_lo"] == 0 and c["fraction_showing_1l_hi"] > 0  # 0 of n still leaves room above zero
    # a third layer makes no measurable difference: the two Wilson intervals overlap
    assert c["fraction_showing_3l_lo"] < c["fraction_showing_2l_hi"] and c["fraction_showing_2l_lo"] < c["fraction_showing_3l_hi"]
    assert c["max_induction_1l"] > c["chance_induction"]
