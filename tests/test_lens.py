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


def test_direct_logit_attribution_adds_up_to_the_logit(tiny_model):
    tokens = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(1))
    contributions, labels, constant, logits = lens.direct_logit_attribution(tiny_model, tokens[:, :-1], tokens[:, 1:])
    assert contributions.shape == (len(labels), 2, 8)
    assert labels[0] == "embed" and "L1H3" in labels
    torch.testing.assert_close(contributions.sum(0) + constant, logits, atol=1e-4, rtol=1e-4)


def test_stage_labels():
    assert lens.resid_labels(2) == ["embed", "after L0", "after L1"]
    assert lens.resid_hook_names(1) == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"]
