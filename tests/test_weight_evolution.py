"""Weight evolution: the measures on known matrices, the head slicing against the model's own forward pass,
and the article's claims at smoke scale, by direction against their nulls."""

import numpy as np
import pytest
import torch

from explorer.models.flagship_config import ARCH
from explorer.models.reference import PlainTransformer
from explorer.techniques import weight_change as wc


def seeds_of(claims: dict, key: str) -> dict[str, float]:
    return claims[f"{key}_seeds"]


def test_effective_ranks_on_known_spectra():
    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(64, 64, generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(32, 32, generator=generator, dtype=torch.float64))
    three = u[:, :3] @ torch.diag(torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)) @ v[:, :3].T  # rank 3, equal values
    sv = wc.singular_values(three)
    np.testing.assert_allclose(sv, np.linalg.svd(three.numpy(), compute_uv=False), atol=1e-10)  # against NumPy's SVD
    assert wc.rank_at(sv) == 3 and wc.entropy_rank(sv) == pytest.approx(3.0, rel=1e-6)
    skewed = u[:, :3] @ torch.diag(torch.tensor([10.0, 1.0, 1.0], dtype=torch.float64)) @ v[:, :3].T
    s2 = wc.singular_values(skewed)
    assert wc.rank_at(s2) == 1 and 1 < wc.entropy_rank(s2) < 3  # 100 of 102 in the first direction
    assert wc.top_share(s2, 1) == pytest.approx(100 / 102)
    noise = wc.gaussian_like(three, generator)
    assert noise.shape == three.shape and float(noise.norm()) == pytest.approx(float(three.norm()))
    assert wc.rank_at(wc.singular_values(noise)) > 20  # no structure: most of the 32 directions
    null = wc.null_spectrum((64, 32), draws=3)
    assert wc.rank_at(null) > 20 and float((null**2).sum()) == pytest.approx(1.0, rel=1e-2)  # a mean of unit-norm spectra


def test_relative_change():
    w = torch.randn(8, 4)
    assert wc.relative_change(w, w) == 0 and wc.relative_change(3 * w, w) == pytest.approx(2.0)


def test_named_matrices_and_heads_are_what_the_model_computes():
    torch.manual_seed(0)
    model = PlainTransformer(ARCH)
    state = model.state_dict()
    named = wc.named_matrices(state, ARCH)
    assert list(named) == wc.matrix_names(ARCH) and named["L1_W_Q"].shape == (128, 128)
    heads = wc.head_matrices(state, ARCH)
    x = torch.randn(5, 128)
    block = model.blocks[1]
    q, k, v = block.qkv(x).split(128, dim=-1)  # (5, 128) each, heads side by side
    bias_q = state["blocks.1.qkv.bias"][:128]
    for head in range(4):
        part = slice(32 * head, 32 * (head + 1))
        torch.testing.assert_close(x @ heads[(1, head, "Q")].T + bias_q[part], q[:, part])
        torch.testing.assert_close(x @ heads[(1, head, "V")].T + state["blocks.1.qkv.bias"][256:][part], v[:, part])
    z = torch.randn(5, 128)  # the heads' outputs side by side: W_O's columns split by head
    out = sum(z[:, 32 * h : 32 * (h + 1)] @ heads[(1, h, "O")].T for h in range(4)) + state["blocks.1.out.bias"]
    torch.testing.assert_close(out, block.out(z))
    gelu = dict(ARCH, attn_only=False, d_mlp=512)
    assert "L0_W_in" in wc.matrix_names(gelu) and "L0_LN2" in wc.gain_names(gelu)
    assert wc.label("L1_W_Q") == "L1 W_Q" and wc.label("LN_final") == "final LN gain" and wc.label("L0_LN1") == "L0 LN1 gain"


# --------------------------------------------------------------------------- pretraining: the stored checkpoints (the same at smoke scale)


def test_every_matrix_moves_far_past_a_fresh_initialisation_and_W_U_most(smoke_claims):
    c = smoke_claims("weight-evolution-pretraining")
    null = c["init_distance_max"]  # two independent initialisations: about sqrt(2) apart
    assert 1.3 < c["init_distance"] < 1.5
    for name in wc.matrix_names(ARCH):
        assert c[f"rel_{name}_min"] > 3 * null, name
    assert c["largest_W_U_seeds"] == 3 and c["rel_W_U_min"] > c["rel_runner_up_max"]
    assert c["rel_VO_max_max"] < c["rel_rest_min_min"]  # V and O move least
    for gain in wc.gain_names(ARCH):
        assert c[f"rel_{gain}_max"] < null  # the LayerNorm gains stay near their start


def test_layer_1_moves_fastest_while_the_induction_head_forms(smoke_claims):
    c = smoke_claims("weight-evolution-pretraining")
    assert c["fastest_layer1_seeds_1000"] == 3 and c["fastest_layer1_seeds_1500"] == 3
    assert c["layer1_top4_seeds_1000"] == 3  # all four of layer 1's matrices ahead of every other
    assert all(c["rate_L1_QK_1000_seeds"][s] > c["rate_rest_1000_seeds"][s] for s in c["rate_rest_1000_seeds"])
    assert c["rate_last_max"] < c["rate_first_min"] / 5  # the first steps move everything most


def test_the_induction_head_moves_its_OV_matrices_more_than_the_other_heads(smoke_claims):
    c = smoke_claims("weight-evolution-pretraining")
    for kind in ("V", "O"):
        own, others = seeds_of(c, f"induction_head_{kind}"), seeds_of(c, f"other_heads_{kind}_max")
        assert all(own[s] > others[s] for s in own), kind


def test_pretraining_changes_are_lower_rank_than_the_null(smoke_claims):
    c = smoke_claims("weight-evolution-spectrum")
    assert c["below_null_min"] >= c["matrices"] - 1  # every matrix but one, in every seed
    assert abs(c["r90_L0_W_O"] - c["null_r90_128x128"]) < 0.1 * c["null_r90_128x128"]  # the one: layer 0's W_O, at the null
    assert c["r90_W_pos_max"] < c["null_r90_256x128"] / 4  # positions: a few directions
    assert c["r90_W_U_max"] < c["null_r90_256x128"] / 2
    assert c["erank_W_pos_max"] < c["null_erank_256x128"] / 2
    for name in ("L0_W_Q", "L1_W_K"):
        assert c[f"r90_{name}_max"] < c["null_r90_128x128"]


# --------------------------------------------------------------------------- fine-tuning (short runs at smoke scale)


def test_fine_tuning_on_the_package_helps_on_the_package_more_than_the_control(smoke_claims):
    c = smoke_claims("weight-evolution-finetune")
    assert c["ft_loss_package_change"] < 0 and c["ft_loss_package_change"] < c["ctl_loss_package_change"]
    assert c["ft_loss_other_change"] > c["ft_loss_package_change"]
    assert c["steps"] < 100 and c["package"] == "sympy"


def test_fine_tuning_updates_are_lower_rank_than_the_null_and_small(smoke_claims):
    c = smoke_claims("weight-evolution-finetune")
    for prefix in ("ft", "ctl"):
        assert c[f"{prefix}_r90_median_max"] < c["null_r90_128x128"]
        assert c[f"{prefix}_top8_median_min"] > c["null_top8_128x128"]
        assert c[f"{prefix}_r90_W_U_max"] < c["null_r90_256x128"] / 2
        assert c[f"{prefix}_rel_mean_max"] < 0.5  # a nudge of the pretrained weights, not a new model
    assert c["ft_top8_W_U"] > c["ft_top8_median"]  # the unembedding's update is the lowest-rank one
