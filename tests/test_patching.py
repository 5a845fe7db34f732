"""Activation patching and head ablation on tiny random models, against exact oracles; the claims at smoke scale."""

import pytest
import torch

from explorer.errors import UnknownName
from explorer.models.training import next_token_loss
from explorer.techniques import patching

import tiny_models


@pytest.fixture(scope="module")
def pair():
    clean = torch.randint(0, 50, (3, 8), generator=torch.Generator().manual_seed(0))
    corrupted = clean.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 1) % 50
    return clean, corrupted


def test_patching_the_final_stream_at_the_last_position_recovers_everything(pair):
    model, (clean, corrupted) = tiny_models.tiny(), pair
    metric = patching.logit_difference(clean[:, 3], (clean[:, 3] + 1) % 50)
    scaled = patching.normalized(metric, metric(model(clean)).item(), metric(model(corrupted)).item())
    grid = patching.patch_residual_stream(model, clean, corrupted, scaled)
    assert grid.shape == (3, 8)
    assert grid[-1, -1].item() == pytest.approx(1.0, abs=1e-4)
    assert grid[0, 2].item() == pytest.approx(1.0, abs=1e-4)  # the embedding of the only changed token
    assert grid[0, [0, 1, 3, 4, 5, 6, 7]].abs().max().item() < 1e-4  # unchanged positions change nothing
    assert grid[1:, :2].abs().max().item() < 1e-4  # positions before the change cannot carry it (causal)
    heads = patching.patch_head_outputs(model, clean, corrupted, scaled)
    assert heads.shape == (2, 4)


def test_logit_difference_on_hand_built_logits():
    logits = torch.zeros(2, 3, 5)
    logits[0, -1, 1], logits[0, -1, 4] = 3.0, 1.0
    logits[1, -1, 2], logits[1, -1, 0] = -1.0, 2.0
    metric = patching.logit_difference(torch.tensor([1, 2]), torch.tensor([4, 0]))
    assert metric(logits).item() == pytest.approx(((3 - 1) + (-1 - 2)) / 2)
    assert patching.normalized(metric, 4.0, -2.0)(logits).item() == pytest.approx((-0.5 + 2) / 6)


def test_zero_ablation_of_a_last_layer_head_removes_its_direct_path(pair):
    model, (tokens, _) = tiny_models.tiny(normalization_type=None), pair
    _, cache = model.run_with_cache(tokens)
    head_out = cache.stack_head_results(layer=-1)[4 + 2]  # L1H2, (batch, pos, d_model)
    expected = model(tokens) - head_out @ model.W_U
    replacements = patching.replacement_z(model, tokens, "zero", tokens)
    replaced = model.run_with_hooks(tokens, fwd_hooks=patching.ablation_hooks([(1, 2)], replacements))
    torch.testing.assert_close(replaced, expected, atol=1e-4, rtol=1e-4)
    clean_loss, losses, _ = patching.ablate_heads(model, tokens, "zero", tokens)
    assert losses[1, 2].item() == pytest.approx(next_token_loss(expected, tokens).item(), abs=1e-4)
    assert clean_loss == pytest.approx(next_token_loss(model(tokens), tokens).item())


def test_replacements_are_zero_the_reference_mean_or_the_reference_itself(pair):
    model, (tokens, other) = tiny_models.tiny(), pair
    _, ref = model.run_with_cache(other)
    zero, mean, resample = (patching.replacement_z(model, tokens, m, other) for m in ("zero", "mean", "resample"))
    for layer in range(2):
        z = ref[f"blocks.{layer}.attn.hook_z"]  # (batch, pos, head, d_head)
        assert zero[layer].abs().max() == 0
        assert torch.allclose(mean[layer][1, 5], z.mean((0, 1)), atol=1e-6)  # the same at every (row, position)
        assert torch.allclose(resample[layer], z)
    with pytest.raises(ValueError, match="same shape"):
        patching.replacement_z(model, tokens, "resample", other[:2])


def test_output_change_is_what_the_ablation_adds_to_the_attention_output(pair):
    model, (tokens, other) = tiny_models.tiny(), pair
    replacements = patching.replacement_z(model, tokens, "mean", other)
    ablated = [(0, 1), (0, 3)]
    change = patching.output_change(model, tokens, ablated, replacements)
    _, clean = model.run_with_cache(tokens)
    seen = {}
    hooks = patching.ablation_hooks(ablated, replacements) + [("blocks.0.hook_attn_out", lambda out, hook: seen.setdefault("out", out.clone()))]
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    assert torch.allclose(change[0], seen["out"] - clean["blocks.0.hook_attn_out"], atol=1e-5)


def test_random_pushes_have_the_ablations_size_in_other_directions(pair):
    model, (tokens, other) = tiny_models.tiny(), pair
    replacements = patching.replacement_z(model, tokens, "mean", other)
    change = patching.output_change(model, tokens, [(1, 0)], replacements)
    hooks = patching.random_direction_hooks(change, torch.Generator().manual_seed(0), draws=5)
    _, clean = model.run_with_cache(tokens)
    seen = {}
    model.run_with_hooks(tokens.repeat(5, 1), fwd_hooks=hooks + [("blocks.1.hook_attn_out", lambda out, hook: seen.setdefault("out", out.clone()))])
    push = (seen["out"] - clean["blocks.1.hook_attn_out"].repeat(5, 1, 1)).view(5, *change[1].shape)  # (draws, batch, pos, d_model)
    assert torch.allclose(push.norm(dim=-1), change[1].norm(dim=-1).expand(5, -1, -1), atol=1e-4)
    cosine = torch.nn.functional.cosine_similarity(push, change[1].expand_as(push), dim=-1)
    assert cosine.abs().mean() < 0.4  # random directions in 32 dimensions are nearly orthogonal to the ablation's
    losses = patching.null_token_losses(model, tokens, change, 5, torch.Generator().manual_seed(0))
    assert losses.shape == (5, 3, 7) and not torch.allclose(losses[0], losses[1])


def test_resampling_from_the_same_text_changes_nothing(pair):
    model, (tokens, other) = tiny_models.tiny(), pair
    clean_loss, same, _ = patching.ablate_heads(model, tokens, "resample", tokens)
    assert torch.allclose(same, torch.full_like(same, clean_loss), atol=1e-5)
    _, different, null = patching.ablate_heads(model, tokens, "resample", other, null_draws=3)
    assert not torch.allclose(different, same)
    assert null.shape == (2, 4, 3)


def test_unknown_ablation_is_named(pair):
    with pytest.raises(UnknownName, match="unknown ablation 'noise'.*mean, resample, zero"):
        patching.ablate_heads(tiny_models.tiny(), pair[0], "noise", pair[0])


MODELS = ("flagship_bytes_2l", "attn_only_2l", "induction_2l")  # build_figures/patching.py PATCHED_MODELS, at every scale
SWEPT_AT_SMOKE = MODELS


def test_patching_figure_endpoints_recover_everything(smoke_claims):
    claims = smoke_claims("patching-resid")
    for key in SWEPT_AT_SMOKE:
        assert claims[f"{key}_last_stage_last_pos"] == pytest.approx(1.0, abs=1e-3), key
        assert claims[f"{key}_embed_altered_pos"] == pytest.approx(1.0, abs=1e-3), key
    assert claims["induction_2l_clean_logit_diff"] > 0 > claims["induction_2l_corrupt_logit_diff"]
    assert claims["induction_2l_altered_pos_before_last_block"] > 0.5  # layer 0 leaves the answer where it was
    assert claims["induction_2l_last_pos_before_last_block"] < 0.5  # ... and only layer 1 moves it to the last position
    assert abs(claims["attn_only_2l_clean_logit_diff"] - claims["attn_only_2l_corrupt_logit_diff"]) < claims["induction_2l_clean_logit_diff"]


def test_head_patching_singles_out_a_second_layer_head_of_the_induction_model(smoke_claims):
    claims = smoke_claims("patching-heads")
    assert claims["induction_2l_top_head"].startswith("L1")
    assert claims["induction_2l_top_head_recovered"] > 0.1
    assert claims["induction_2l_top_head_recovered"] < 0.9  # one head alone does not carry it all
    assert claims["induction_2l_top_layer_sum"] > claims["induction_2l_top_head_recovered"]
    assert claims["induction_2l_top_head_induction"] > 4 * claims["induction_2l_chance_induction"]


def test_ablation_claims(smoke_claims):
    claims = smoke_claims("patching-ablation")
    for key in MODELS:
        assert claims[f"{key}_clean_loss"] > 0
    assert claims["models"] == len(MODELS)
    induction = "induction_2l"
    assert claims[f"{induction}_mean_top_increase"] > claims[f"{induction}_mean_top_null_p95"]  # the top head beats its null
    assert claims[f"{induction}_mean_top_head"].startswith("L0")  # the head the loss needs most is in layer 0 ...
    assert claims[f"{induction}_mean_top_head_previous"] > claims[f"{induction}_mean_top_head_induction"]  # ... a previous-token head
    assert claims[f"{induction}_mean_top_induction_head"].startswith("L1")
    assert claims[f"{induction}_mean_top_induction_head_increase"] < claims[f"{induction}_mean_top_increase"]
    assert claims[f"{induction}_resample_top_increase"] > claims[f"{induction}_mean_top_increase"]


def test_our_models_patch_every_probe_row_and_gpt2_sized_ones_the_fewest(smoke_claims):
    """The sweep budget (probes.rows_within) leaves our models every row of the probe; a model of
    GPT-2 small's size patching 144 heads gets the minimum, and patches only the key positions."""
    from types import SimpleNamespace

    import build_figures.patching as producer
    from explorer.techniques import probes

    for fid in ("patching-resid", "patching-heads"):
        claims = smoke_claims(fid)
        rows = {k: v for k, v in claims.items() if k.endswith("_rows") and not k.startswith("model_")}
        assert len(rows) == 3 and set(rows.values()) == {probes.ROWS["smoke"]}, (fid, rows)
        assert claims["model_rows"] == claims[f"{claims['model'].replace('-', '_')}_rows"]  # the page's model, repeated
    gpt2 = SimpleNamespace(parameters=lambda: [torch.empty(124_439_808, device="meta")],
                           cfg=SimpleNamespace(n_layers=12, n_heads=12))
    assert probes.rows_within(gpt2, 64, 73, 12 * 12 + 2) == probes.MIN_ROWS
    assert probes.rows_within(tiny_models.tiny(), 64, 73, 12 * 12 + 2) == 64
    probe = probes.ProbeSet("gpt2", torch.zeros(64, 73, dtype=torch.long), 1, 48, torch.zeros(64, 256, dtype=torch.long))
    pair = {"clean": probe.repeated, "probe": probe, "altered_at": 1 + 24}
    keys = producer.patched_positions(gpt2, pair)
    assert keys is not None and 5 <= len(keys) <= 8 and keys[-1] == 72 and 25 in keys and 24 in keys
    assert producer.patched_positions(tiny_models.tiny(), pair) is None
