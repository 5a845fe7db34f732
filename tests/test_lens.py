"""Logit lens and direct logit attribution on tiny random models."""

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge
import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)

from explorer.techniques import lens

CONFIGS = {
    "gelu-ln": dict(attn_only=False, normalization_type="LN"),
    "attn-only-ln": dict(attn_only=True, normalization_type="LN"),
    "attn-only-no-norm": dict(attn_only=True, normalization_type=None),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def tiny_model(request):
    cfg = dict(n_layers=2, d_model=32, n_ctx=64, d_head=8, n_heads=4, d_vocab=50, act_fn="gelu", seed=0, **CONFIGS[request.param])
    return TransformerBridge.boot_native(cfg).eval()


def test_logit_lens_last_stage_is_the_model_output(tiny_model):
    tokens = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    stages = lens.logit_lens(tiny_model, tokens)
    assert stages.shape == (3, 2, 9, 50)
    torch.testing.assert_close(stages[-1], tiny_model(tokens))
    assert not torch.allclose(stages[0], stages[-1])


def test_top1_lens_reads_in_chunks_what_the_full_lens_reads(tiny_model, monkeypatch):
    """The chunked read-out (for GPT-2-sized vocabularies) picks the full lens's top tokens, chunk by chunk."""
    tokens = torch.randint(0, 50, (5, 9), generator=torch.Generator().manual_seed(2))
    expected = lens.logit_lens(tiny_model, tokens).argmax(-1)  # (stage, batch, pos)
    monkeypatch.setattr(lens, "READOUT_BYTES", 2 * 9 * 50 * 4)  # two rows per chunk: three chunks, the last short
    torch.testing.assert_close(lens.logit_lens_top1(tiny_model, tokens), expected, rtol=0, atol=0)


def test_direct_logit_attribution_adds_up_to_the_logit(tiny_model):
    tokens = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(1))
    contributions, labels, constant, logits = lens.direct_logit_attribution(tiny_model, tokens[:, :-1], tokens[:, 1:])
    assert contributions.shape == (len(labels), 2, 8)
    assert labels[0] == "embed" and "L1H3" in labels
    torch.testing.assert_close(contributions.sum(0) + constant, logits, atol=1e-4, rtol=1e-4)


def test_stage_labels():
    assert lens.resid_labels(2) == ["embed", "after L0", "after L1"]
    assert lens.resid_hook_names(1) == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"]


def test_logit_lens_figure_claims(smoke_claims):
    claims = smoke_claims("residual-logit-lens")
    assert claims["final_stage_max_gap"] < 1e-4
    assert claims["attn_only_2l_top1_final"] >= claims["attn_only_2l_top1_embed"]
    for name in ("attn_only_2l", "gelu_2l"):  # the output does at least as well as always guessing the commonest token
        assert claims[f"{name}_top1_final"] >= claims[f"{name}_top1_commonest"] > 0


def test_dla_figure_adds_up_and_credits_a_second_layer_head_on_repeats(smoke_claims):
    claims = smoke_claims("residual-dla")
    assert claims["max_sum_error"] < 1e-3
    assert claims["induction_2l_repeat_top_component"].startswith("L1H")
    assert claims["induction_2l_repeat_top_push"] > claims["induction_2l_repeat_layer0_max_abs_push"]
    # the head writes the answer where there is one to copy, far less over the first copy
    assert claims["induction_2l_repeat_top_push"] > 3 * claims["induction_2l_repeat_top_push_first_copy"]


def test_logit_lens_sees_induction_only_after_the_last_block(smoke_claims):
    claims = smoke_claims("residual-logit-lens")
    assert claims["induction_2l_repeat_p_final"] > claims["induction_2l_repeat_p_before_last_block"]
    assert claims["induction_2l_repeat_p_final"] > 10 * claims["induction_2l_repeat_chance"]
    assert claims["induction_2l_repeat_p_before_last_block"] < 3 * claims["induction_2l_repeat_chance"]


def test_lens_window_slider_is_bounded_by_each_prompt(smoke):
    """The position slider of each run ends where its last full window of 16 positions starts."""
    import json

    for fid in ("residual-logit-lens", "residual-dla"):
        spec = smoke.spec(fid)
        meta = spec["usermeta"]["explorer"]
        start = meta["params"]["start"]
        assert start["by"] == "run" and set(start["choices"]) == set(meta["controls"][0]["options"])
        for run, choice in start["choices"].items():
            payload = json.loads((smoke.path(fid) / "runs" / f"{run}.json").read_text())
            n = len(payload["tokens"])
            assert choice["options"] == list(range(n - 16 + 1)) and choice["value"] == 0, (fid, run)
