"""The fused attention path computes what TransformerLens's explicit attention computes, and steps
aside whenever a hook reads the pattern."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
from transformer_lens.model_bridge import TransformerBridge

from explorer.models import training
from explorer.models.fused_attention import use_fused_attention

ARCH = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64, "n_ctx": 24, "d_vocab": 50,
        "attn_only": False, "act_fn": "gelu", "normalization_type": "LN", "seed": 5}
TOKENS = torch.randint(0, 50, (3, 24), generator=torch.Generator().manual_seed(0))  # (batch, pos)


@pytest.fixture
def pair():
    """The same weights twice: stock TransformerLens attention, and the fused-when-unobserved path."""
    return TransformerBridge.boot_native(dict(ARCH)).eval(), training.build_bridge(ARCH).eval()


@pytest.fixture
def sdpa_calls(monkeypatch):
    calls, sdpa = [], F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    return calls


def test_logits_and_gradients_match_stock_attention(pair, sdpa_calls):
    stock, fused = pair
    assert torch.allclose(stock(TOKENS), fused(TOKENS), atol=1e-5)
    assert len(sdpa_calls) == 2  # one per layer: the fused path really ran
    grads = [torch.autograd.grad(training.next_token_loss(m(TOKENS), TOKENS), list(m.parameters())) for m in pair]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_any_pattern_hook_gets_the_explicit_pattern(pair, sdpa_calls):
    stock, fused = pair
    _, theirs = stock.run_with_cache(TOKENS)
    _, ours = fused.run_with_cache(TOKENS)
    assert sdpa_calls == []  # caching every hook reads the patterns: no layer fused
    assert set(ours.keys()) == set(theirs.keys())
    for name in ("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_attn_scores", "blocks.1.hook_resid_post"):
        assert torch.allclose(ours[name], theirs[name], atol=1e-5)


def test_a_hook_that_edits_one_pattern_still_reweights_that_layer(pair, sdpa_calls):
    stock, fused = pair

    def uniform(pattern, hook):
        causal = torch.ones_like(pattern).tril()
        return causal / causal.sum(-1, keepdim=True)

    hooks = [("blocks.0.attn.hook_pattern", uniform)]
    edited = fused.run_with_hooks(TOKENS, fwd_hooks=hooks)
    assert torch.allclose(edited, stock.run_with_hooks(TOKENS, fwd_hooks=hooks), atol=1e-5)
    assert not torch.allclose(edited, fused(TOKENS), atol=1e-3)
    assert len(sdpa_calls) == 3  # the hooked run fuses layer 1 only, the plain run both layers


def test_other_hooks_fire_on_the_fused_path(pair, sdpa_calls):
    stock, fused = pair

    def wanted(name: str) -> bool:
        return name.endswith(("hook_z", "hook_q", "hook_resid_post"))

    _, ours = fused.run_with_cache(TOKENS, names_filter=wanted)
    _, theirs = stock.run_with_cache(TOKENS, names_filter=wanted)
    assert len(sdpa_calls) == 2 and set(ours.keys()) == set(theirs.keys())
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in theirs)


def test_backward_hooks_on_the_pattern_also_count_as_reading_it(pair, sdpa_calls):
    _, fused = pair
    seen = []
    fused.blocks[1].attn.hook_pattern.add_hook(lambda grad, hook: seen.append(grad.shape), dir="bwd")
    training.next_token_loss(fused(TOKENS), TOKENS).backward()
    fused.reset_hooks(including_permanent=True)
    assert seen == [torch.Size([3, 4, 24, 24])] and len(sdpa_calls) == 1


def test_refuses_models_that_are_not_tl_native():
    hf_like = SimpleNamespace(blocks=[SimpleNamespace(attn=SimpleNamespace(name="blocks.0.attn", original_component=torch.nn.Identity()))])
    with pytest.raises(TypeError, match="blocks.0.attn wraps Identity"):
        use_fused_attention(hf_like)
