"""The curriculum's residual chapter: the panel's hand-walked numbers against the module and autograd,
and the chapter's claims at smoke scale (the same recipe; two depths instead of five)."""

import pytest
import torch
import torch.nn.functional as F

from explorer.models import deep_mlp
from explorer.techniques import residual

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("skip", [False, True])
def test_stream_steps_match_the_module_and_autograd(skip):
    torch.manual_seed(0)
    model = deep_mlp.DeepMLP(depth=4, width=8, skip=skip)
    x, y = torch.rand(64), 3
    s = residual.stream_steps(model, x, y)
    outs = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append(torch.relu(o).detach())) for b in model.blocks]
    logits = model(x[None])
    for h in hooks:
        h.remove()
    torch.testing.assert_close(s.write, torch.cat(outs))  # each block's write, as the module computed it
    torch.testing.assert_close(s.probabilities, logits.softmax(-1)[0].detach())
    expected_out = s.stream_in + s.write if skip else s.write
    torch.testing.assert_close(s.stream_out, expected_out)
    torch.testing.assert_close(s.stream_in[1:], s.stream_out[:-1])
    # the gradient at the first stream, by autograd on the module itself
    h0 = torch.relu(model.inp(x[None])).detach().requires_grad_(True)
    h = h0
    for block in model.blocks:
        write = torch.relu(block(h))
        h = h + write if skip else write
    F.cross_entropy(model.out(h), torch.tensor([y])).backward()
    torch.testing.assert_close(s.grad_stream[0], h0.grad[0])
    assert s.loss == pytest.approx(F.cross_entropy(logits, torch.tensor([y])).item(), rel=1e-6)


def test_a_plain_block_replaces_the_stream_and_a_residual_one_adds_to_it():
    torch.manual_seed(1)
    x = torch.rand(5, 64)
    plain, skip = deep_mlp.DeepMLP(1, 8, False), deep_mlp.DeepMLP(1, 8, True)
    skip.load_state_dict(plain.state_dict())
    h = torch.relu(plain.inp(x))
    write = torch.relu(plain.blocks[0](h))
    torch.testing.assert_close(plain(x), plain.out(write))
    torch.testing.assert_close(skip(x), plain.out(h + write))


def test_without_skips_the_gradient_vanishes_and_the_deep_network_does_not_learn(smoke_claims):
    grads = smoke_claims("residual-gradients")
    assert grads["plain_init_first_over_last_log10_max"] < -3  # every seed: a thousand times smaller, or more
    assert grads["residual_init_first_over_last_log10_min"] > -2
    training = smoke_claims("residual-training")
    assert training["plain_depth_20_accuracy_max"] < 2 * training["chance"]
    assert training["residual_depth_20_accuracy_min"] > 0.9
    assert training["plain_depth_2_accuracy_min"] > 0.9  # shallow, the plain network trains: depth is the problem


def test_the_panel_shows_both_streams_and_the_trained_residual_net_is_right(smoke, smoke_claims):
    import json

    claims = smoke_claims("residual-panel")
    assert claims["digit_0_residual_p_true"] > 0.9 > 3 * claims["digit_0_plain_p_true"]
    assert claims["digit_0_plain_init_grad_first"] < 1e-3 * claims["digit_0_plain_init_grad_last"]
    assert claims["digit_0_residual_init_stream_last"] > 10 * claims["digit_0_residual_init_stream_first"]
    payload = json.loads((smoke.path("residual-panel") / "panel" / "digit-0.json").read_text())
    stages = {r["stage"] for r in payload["numbers"]}
    assert stages == {"in", "write", "out", "norm_in", "norm_write", "norm_grad", "p"}
    vectors = [r for r in payload["numbers"] if r["stage"] == "in"]
    assert len(vectors) == 2 * 6 * 20 and all(len(r["w"]) == 32 for r in vectors)  # nets x steps x blocks


def test_the_flagships_attention_writes_grow_against_the_stream(smoke_claims):
    claims = smoke_claims("residual-transformer")
    for layer in (0, 1):
        assert claims[f"layer_{layer}_final_ratio_min"] > claims[f"layer_{layer}_initial_ratio_max"]


def test_a_block_without_its_skip_replaces_the_stream():
    from explorer.models import skip_transformer

    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    plain, skipped = skip_transformer.SkipBlock(8, 2, skip=False), skip_transformer.SkipBlock(8, 2, skip=True)
    skipped.load_state_dict(plain.state_dict())
    torch.testing.assert_close(plain(x), plain.mlp(plain.ln2(plain.attn(plain.ln1(x)))))
    h = x + plain.attn(plain.ln1(x))
    torch.testing.assert_close(skipped(x), h + plain.mlp(plain.ln2(h)))


def test_without_skips_the_transformer_learns_only_byte_frequencies(smoke_claims):
    """Direction at smoke scale (150 steps): with skips the loss falls well below the unigram model's; without
    them it stays at the unigram loss, and the first block's gradient, not small at initialisation, dies."""
    c = smoke_claims("residual-transformer-skips")
    assert c["skip_final_loss_max"] < c["unigram_loss"] - 0.2
    assert abs(c["noskip_final_loss"] - c["unigram_loss"]) < 0.15 and c["noskip_final_loss_min"] > c["skip_final_loss_max"] + 0.2
    assert c["noskip_init_first_block_grad_min"] > 0.1
    assert c["noskip_final_first_block_grad_max"] < 1e-3 < c["skip_final_first_block_grad_min"]
