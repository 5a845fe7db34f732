"""The curriculum's positional-encoding chapter: the panel's steps against the model's own hooks, each
encoding doing what the page says it does, and the chapter's claims at smoke scale (the same recipe)."""

import pytest
import torch

from explorer.models import position_transformer as pt
from explorer.techniques import attention as formulas
from explorer.techniques import position_steps

pytestmark = pytest.mark.usefixtures("one_thread")
ARCH = dict(d_vocab=12, d_model=16, n_heads=2, n_layers=1, n_ctx=24)


def tiny(encoding: str, seed: int = 0) -> pt.PositionTransformer:
    torch.manual_seed(seed)
    model = pt.PositionTransformer(encoding, **ARCH).eval()
    with torch.no_grad():  # larger weights than the initialisation, so a step left out would show
        for p in model.parameters():
            p.mul_(3)
    return model


@pytest.mark.parametrize("encoding", pt.ENCODINGS)
def test_the_panels_steps_are_the_models_own_numbers(encoding):
    model = tiny(encoding)
    tokens = torch.randint(0, ARCH["d_vocab"], (20,), generator=torch.Generator().manual_seed(1))
    logits, cache = model.run_with_cache(tokens[None])
    for query in (0, 7, 19):
        s = position_steps.query_steps(model, tokens, query)
        close = dict(atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(s.scores, cache["blocks.0.attn.hook_attn_scores"][0, :, query, : query + 1], **close)
        torch.testing.assert_close(s.pattern, cache["blocks.0.attn.hook_pattern"][0, :, query, : query + 1], **close)
        torch.testing.assert_close(s.logits, logits[0, query], **close)
        torch.testing.assert_close(s.z, cache["blocks.0.attn.hook_z"][0, query], **close)
        q = cache["blocks.0.attn.hook_rot_q" if encoding == "rope" else "blocks.0.attn.hook_q"][0, query]
        torch.testing.assert_close(s.q, q, **close)
    if encoding in ("learned", "sinusoidal"):
        torch.testing.assert_close(s.added, cache["hook_pos_embed"][19])
    else:
        assert "hook_pos_embed" not in cache


def test_rope_rotates_the_hooked_query_by_position():
    model = tiny("rope")
    _, cache = model.run_with_cache(torch.arange(10)[None])
    q, rotated = cache["blocks.0.attn.hook_q"][0], cache["blocks.0.attn.hook_rot_q"][0]  # (pos, head, d_head)
    torch.testing.assert_close(rotated, formulas.apply_rope(q.transpose(0, 1)).transpose(0, 1))
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths
    assert not torch.allclose(rotated[5], q[5])


def test_without_an_encoding_the_query_cannot_tell_where_the_keys_stand():
    """Shuffling the keys before the last query leaves its output unchanged; with any encoding it does not."""
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    shuffled = torch.tensor([[5, 3, 7, 1, 6, 2, 4, 8]])  # the same seven keys, in another order, before the same query
    for encoding in pt.ENCODINGS:
        model = tiny(encoding)
        same = torch.allclose(model(tokens)[0, -1], model(shuffled)[0, -1], atol=1e-5)
        assert same == (encoding == "none"), encoding


@pytest.mark.parametrize("encoding", ["rope", "alibi"])
def test_relative_encodings_score_by_distance_not_place(encoding):
    """The same two tokens, moved together along the row, get the same score from RoPE and ALiBi."""
    model = tiny(encoding)
    scores = []
    for shift in (0, 5, 11):
        tokens = torch.full((1, 20), 3)
        tokens[0, shift], tokens[0, shift + 4] = 7, 9
        _, cache = model.run_with_cache(tokens)
        scores.append(cache["blocks.0.attn.hook_attn_scores"][0, :, shift + 4, shift])
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(scores[0], scores[2], atol=1e-4, rtol=1e-4)


def test_learned_positions_past_the_training_length_are_never_trained():
    run = pt.train("learned", 0, k=3, d_vocab=8, d_model=16, n_heads=2, n_layers=1, train_length=6, test_length=12,
                   steps=5, batch=8, lr=1e-2, eval_rows=4, checkpoint_every=5)
    (_, first), (_, last) = run["checkpoints"][0], run["checkpoints"][-1]
    moved = (last["pos_embed.weight"] - first["pos_embed.weight"]).abs().sum(-1)  # (position,)
    assert (moved[:6] > 0).all() and (moved[6:] == 0).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown positional encoding 'xpos'; known: none, learned, sinusoidal, rope, alibi"):
        pt.PositionTransformer("xpos", **ARCH)
    with pytest.raises(ValueError, match="30 tokens is longer than the model's context of 24"):
        tiny("none")(torch.zeros(1, 30, dtype=torch.long))


def test_the_panel_agrees_with_the_hooks_of_the_trained_models(smoke_claims):
    assert smoke_claims("positional-panel")["max_gap_to_hooks"] < 1e-5


def test_what_extrapolates(smoke_claims):
    """Direction, three seeds: learned, sinusoidal and RoPE learn the task; learned falls to chance past the
    training length, sinusoids degrade, RoPE holds to twice the length and fails at four times; ALiBi and no
    encoding never learn it."""
    c = smoke_claims("positional-extrapolation")
    chance = c["chance"]
    for encoding in ("learned", "sinusoidal", "rope"):
        assert c[f"{encoding}_accuracy_in_min"] > 0.9
    assert c["learned_accuracy_2L_max"] < 2 * chance
    assert c["sinusoidal_accuracy_far_max"] < 0.6
    assert c["rope_accuracy_2L_min"] > 0.8 and c["rope_accuracy_far_max"] < 0.3
    for encoding in ("none", "alibi"):
        assert c[f"{encoding}_accuracy_in_max"] < 0.5
    assert c["alibi_accuracy_far_min"] > chance  # recency is worth something, exactness nothing


def test_ropes_failure_is_attention_on_distances_it_never_trained_on(smoke_claims):
    c = smoke_claims("positional-encodings")
    assert c["rope_target_attention_in_min"] > 0.5 > c["rope_target_attention_far_max"]
    assert c["rope_unseen_distance_attention_far_min"] > 0.5
    assert c["learned_target_attention_in_min"] > 0.5 > c["learned_target_attention_far_max"]
