"""The curriculum's multi-head chapter: the task, the per-head steps against the hooks, the ablation hook,
and the chapter's claims at smoke scale (1,200 steps instead of 2,000)."""

import pytest
import torch

from explorer.data.two_part_recall import TwoPartRecall
from explorer.models import multihead
from explorer.techniques import position_steps

pytestmark = pytest.mark.usefixtures("one_thread")
TASK = TwoPartRecall()


def test_the_answer_names_the_queried_value_and_the_first_pairs_value():
    rows = TASK.batch(256, torch.Generator().manual_seed(0))
    keys, values = rows[:, : TASK.pairs] // TASK.n_values, rows[:, : TASK.pairs] % TASK.n_values
    assert all(len(set(k.tolist())) == TASK.pairs for k in keys)  # distinct keys, so the lookup has one answer
    lookup, first = TASK.parts(rows)
    target = TASK.target_position(rows)
    assert (keys[torch.arange(256), target] == rows[:, TASK.pairs] - TASK.query_base).all()
    assert (lookup == values[torch.arange(256), target]).all() and (first == values[:, 0]).all()
    assert len(set(target.tolist())) == TASK.pairs  # the queried pair is anywhere, the first one included
    assert TASK.token_text(int(rows[0, -1])) == f"={int(lookup[0])},{int(first[0])}"


def test_each_heads_steps_and_writes_add_up_to_the_models_logits():
    torch.manual_seed(0)
    model = multihead.build(TASK, 4, 32).eval()
    row = TASK.batch(1, torch.Generator().manual_seed(3))[0]
    logits, cache = model.run_with_cache(row[None, :-1])
    s = position_steps.query_steps(model, row[:-1], TASK.pairs)
    torch.testing.assert_close(s.pattern, cache["blocks.0.attn.hook_pattern"][0, :, TASK.pairs])
    torch.testing.assert_close(s.z, cache["blocks.0.attn.hook_z"][0, TASK.pairs])
    attn_out = cache["blocks.0.hook_resid_post"][0, TASK.pairs] - cache["hook_embed"][0, TASK.pairs] - cache["hook_pos_embed"][TASK.pairs]
    torch.testing.assert_close(s.head_out.sum(0) + model.blocks[0].attn.W_O.bias, attn_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s.logits, logits[0, TASK.pairs], atol=1e-5, rtol=1e-4)


def test_mean_ablation_replaces_one_head_and_nothing_else():
    torch.manual_seed(0)
    model = multihead.build(TASK, 2, 32).eval()
    rows = TASK.batch(16, torch.Generator().manual_seed(1))
    _, cache = model.run_with_cache(rows[:, :-1])
    mean_z = cache["blocks.0.attn.hook_z"].mean(0, keepdim=True)
    seen = {}

    def keep(z, hook):
        seen["z"] = z.clone()

    model.run_with_hooks(rows[:, :-1], fwd_hooks=[multihead.mean_ablation(1, mean_z), ("blocks.0.attn.hook_z", keep)])
    torch.testing.assert_close(seen["z"][:, :, 0], cache["blocks.0.attn.hook_z"][:, :, 0])
    torch.testing.assert_close(seen["z"][:, :, 1], mean_z[:, :, 1].expand_as(seen["z"][:, :, 1]))


def test_the_panel_agrees_with_the_hooks(smoke_claims):
    assert smoke_claims("multihead-panel")["max_gap_to_hooks"] < 1e-5


def test_one_head_gets_one_part_and_two_heads_get_both(smoke_claims):
    c = smoke_claims("multihead-training")
    assert c["heads_1_first_min"] > 0.9 and c["heads_1_lookup_max"] < 3 * c["chance_lookup"]
    assert c["heads_1_both_max"] < 0.4
    for heads in (2, 4):
        assert c[f"heads_{heads}_both_min"] > 0.7 > c["heads_1_both_max"] + 0.3


def test_ablating_each_of_two_heads_removes_its_own_part(smoke_claims):
    c = smoke_claims("multihead-heads")
    chance = c["chance_part"]
    assert c["heads_2_position_head_attn_first_min"] > 0.8 and c["heads_2_lookup_head_attn_target_min"] > 0.5
    assert c["heads_2_without_position_head_first_max"] < 2 * chance < 0.7 < c["heads_2_without_position_head_lookup_min"]
    assert c["heads_2_without_lookup_head_lookup_max"] < 2 * chance < 0.9 < c["heads_2_without_lookup_head_first_min"]
    assert c["heads_1_attn_first_min"] > 0.8  # the single head sits on the first pair
