"""Catastrophic forgetting: the tasks are what they say, EWC's pieces on a tiny network, and the
article's claims at smoke scale, each method against plain fine-tuning and against chance."""

import pytest
import torch

from explorer.models.digits import make_mlp
from explorer.techniques import forgetting as fg


@pytest.mark.parametrize("setting", fg.SETTINGS)
def test_the_tasks_are_what_the_article_says(setting):
    data = fg.task_data(setting, seed=0)
    a, b = data["A"], data["B"]
    if setting == "split":
        assert set(a["y_train"].tolist()) == {0, 1, 2, 3, 4} and set(b["y_test"].tolist()) == {5, 6, 7, 8, 9}
    else:  # the same images and labels, the pixels shuffled by one permutation
        assert torch.equal(a["y_test"], b["y_test"])
        assert torch.allclose(a["x_test"].sum(1), b["x_test"].sum(1))  # each image's pixels, reordered
        assert not torch.equal(a["x_test"], b["x_test"])
        assert not torch.equal(fg.task_data(setting, seed=1)["B"]["x_test"], b["x_test"])  # another seed, another permutation
    for task in (a, b):  # tuning and test sets never overlap the training images
        train = {tuple(row.tolist()) for row in task["x_train"]}
        assert not train & {tuple(row.tolist()) for row in task["x_tune"]}


def test_ewc_penalty_is_zero_at_the_anchor_and_weighted_by_the_fisher():
    torch.manual_seed(0)
    model = make_mlp((8,))
    x = torch.randn(40, 64)
    fisher = fg.fisher_diagonal(model, x, samples=20, generator=torch.Generator().manual_seed(0))
    assert all((f >= 0).all() for f in fisher.values()) and sum(float(f.sum()) for f in fisher.values()) > 0
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert fg.ewc_penalty(model, anchor, fisher).item() == 0
    with torch.no_grad():
        next(model.parameters()).add_(0.1)
    name = next(iter(model.state_dict()))
    expected = 0.5 * float((fisher[name] * 0.01).sum())
    assert fg.ewc_penalty(model, anchor, fisher).item() == pytest.approx(expected, rel=1e-4)


def test_lora_and_freeze_train_only_what_they_say():
    torch.manual_seed(0)
    model = make_mlp((16, 16))
    adapted = fg.add_lora(model, rank=2, alpha=2)
    x = torch.randn(5, 64)
    torch.testing.assert_close(adapted(x), model(x))  # the update starts at zero
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert fg.trainable(adapted) == sum(2 * (m.in_features + m.out_features) for m in linears)
    assert all(p.requires_grad for p in model.parameters())  # the original is a copy, untouched


# --------------------------------------------------------------------------- the article's claims (smoke scale)


def test_plain_fine_tuning_forgets_and_the_split_setting_forgets_everything(smoke_claims):
    c = smoke_claims("forgetting-curves")
    for setting in fg.SETTINGS:
        assert c[f"{setting}_A_before_min"] > 0.9 and c[f"{setting}_plain_B_min"] > 0.9
        assert c[f"{setting}_plain_A_max"] < c[f"{setting}_A_before_min"] - 0.3
    assert c["split_B_before_max"] < c["chance"] and c["split_plain_A_max"] < c["chance"]  # below chance: it answers 5-9
    assert c["split_plain_half_reached"] == c["seeds"] == 3
    assert c["permuted_plain_A_min"] > c["split_plain_A_max"] + 0.2  # the permuted network forgets only partly


def test_only_methods_that_see_A_again_keep_A_on_split_digits(smoke_claims):
    c = smoke_claims("forgetting-curves")
    for method in ("replay", "joint"):
        assert c[f"split_{method}_A_min"] > 0.6 and c[f"split_{method}_B_min"] > 0.8, method
    for method in ("ewc", "lora", "freeze"):  # weight constraints: A stays near or below chance
        assert c[f"split_{method}_A_max"] < 2 * c["chance"] < c["split_replay_A_min"], method
    assert c["split_sweep_best_A_max"] < 2 * c["chance"]  # no lambda in the sweep keeps A
    assert c["split_lora_B_max"] < c["split_plain_B_min"] and c["split_freeze_B_max"] < c["split_plain_B_min"]


def test_ewc_and_replay_keep_A_on_permuted_digits_and_the_head_alone_does_not(smoke_claims):
    c = smoke_claims("forgetting-curves")
    for method in ("ewc", "replay"):
        assert c[f"permuted_{method}_A_min"] > c["permuted_plain_A_max"], method
        assert c[f"permuted_{method}_B_min"] > 0.8, method
    assert c["permuted_lora_A_max"] < c["permuted_ewc_A_min"] and c["permuted_lora_B_max"] < c["permuted_plain_B_min"]
    assert c["permuted_freeze_A_max"] < c["permuted_plain_A"] and c["permuted_freeze_B_max"] < c["permuted_plain_B_min"]
    assert c["permuted_joint_A_min"] > 0.9 and c["permuted_joint_B_min"] > 0.85
    assert c["permuted_B_before_max"] < 2 * c["chance"]  # B starts at chance
    assert 1 <= c["permuted_plain_half_reached"] <= c["seeds"]
    assert c["permuted_sweep_best_A"] > c["permuted_plain_A_max"]  # a strong pull keeps A: a real trade-off


def test_the_tradeoff_figure_records_the_same_claims(smoke_claims):
    assert smoke_claims("forgetting-tradeoff")["split_replay_A"] == smoke_claims("forgetting-curves")["split_replay_A"]
