"""Activation patching and head ablation on tiny random models."""

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge
import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)

from explorer.errors import UnknownName
from explorer.techniques import patching


def tiny(normalization_type="LN"):
    cfg = dict(n_layers=2, d_model=32, n_ctx=64, d_head=8, n_heads=4, d_vocab=50, attn_only=True, normalization_type=normalization_type, seed=0)
    return TransformerBridge.boot_native(cfg).eval()


@pytest.fixture(scope="module")
def pair():
    clean = torch.randint(0, 50, (3, 8), generator=torch.Generator().manual_seed(0))
    corrupted = clean.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 1) % 50
    return clean, corrupted


def test_patching_the_final_stream_at_the_last_position_recovers_everything(pair):
    model, (clean, corrupted) = tiny(), pair
    metric = patching.logit_difference(clean[:, 3], (clean[:, 3] + 1) % 50)
    scaled = patching.normalized(metric, metric(model(clean)).item(), metric(model(corrupted)).item())
    grid = patching.patch_residual_stream(model, clean, corrupted, scaled)
    assert grid.shape == (3, 8)
    assert grid[-1, -1].item() == pytest.approx(1.0, abs=1e-4)
    assert grid[0, 2].item() == pytest.approx(1.0, abs=1e-4)  # the embedding of the only changed token
    assert grid[0, [0, 1, 3, 4, 5, 6, 7]].abs().max().item() < 1e-4  # unchanged positions change nothing
    heads = patching.patch_head_outputs(model, clean, corrupted, scaled)
    assert heads.shape == (2, 4)


def test_zero_ablation_of_a_last_layer_head_removes_its_direct_path(pair):
    model, (tokens, _) = tiny(normalization_type=None), pair
    _, cache = model.run_with_cache(tokens)
    head_out = cache.stack_head_results(layer=-1)[4 + 2]  # L1H2, (batch, pos, d_model)
    expected = model(tokens) - head_out @ model.W_U
    replaced = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_z", lambda z, hook: z.index_fill(2, torch.tensor([2]), 0.0))])
    torch.testing.assert_close(replaced, expected, atol=1e-4, rtol=1e-4)
    clean_loss, losses = patching.ablate_heads(model, tokens, "zero", tokens)
    assert losses[1, 2].item() == pytest.approx(patching.next_token_loss(expected, tokens).item(), abs=1e-4)
    assert clean_loss == pytest.approx(patching.next_token_loss(model(tokens), tokens).item())


def test_resampling_from_the_same_text_changes_nothing(pair):
    model, (tokens, other) = tiny(), pair
    clean_loss, same = patching.ablate_heads(model, tokens, "resample", tokens)
    assert torch.allclose(same, torch.full_like(same, clean_loss), atol=1e-5)
    _, different = patching.ablate_heads(model, tokens, "resample", other)
    assert not torch.allclose(different, same)


def test_unknown_ablation_is_named(pair):
    with pytest.raises(UnknownName, match="unknown ablation 'noise'.*mean, resample, zero"):
        patching.ablate_heads(tiny(), pair[0], "noise", pair[0])


MODELS = ("attn_only_1l", "attn_only_2l", "attn_only_3l", "gelu_1l", "gelu_2l", "induction_2l")
SWEPT_AT_SMOKE = ("attn_only_2l", "induction_2l")


def test_patching_figure_endpoints_recover_everything(smoke_claims):
    claims = smoke_claims("patching-resid")
    for key in SWEPT_AT_SMOKE:
        assert claims[f"{key}_last_stage_last_pos"] == pytest.approx(1.0, abs=1e-3), key
        assert claims[f"{key}_embed_altered_pos"] == pytest.approx(1.0, abs=1e-3), key
    assert claims["induction_2l_clean_logit_diff"] > 0 > claims["induction_2l_corrupt_logit_diff"]
    assert claims["induction_2l_altered_pos_before_last_block"] > 0.5  # layer 0 leaves the answer where it was


def test_head_patching_singles_out_a_second_layer_head_of_the_induction_model(smoke_claims):
    claims = smoke_claims("patching-heads")
    assert claims["induction_2l_top_head"].startswith("L1")
    assert claims["induction_2l_top_head_recovered"] > 0.1
    assert claims["induction_2l_top_layer_sum"] >= claims["induction_2l_top_head_recovered"] - 0.2


def test_ablation_claims(smoke_claims):
    claims = smoke_claims("patching-ablation")
    for key in MODELS:
        assert claims[f"{key}_clean_loss"] > 0
        for method in patching.ABLATIONS:
            assert claims[f"{key}_{method}_top_head"].startswith("L")
    assert claims["induction_2l_zero_top_increase"] > 0.05
    assert claims["induction_2l_mean_top_induction_head"].startswith("L1")
    assert claims["induction_2l_mean_top_induction_head_increase"] <= claims["induction_2l_mean_top_increase"]
