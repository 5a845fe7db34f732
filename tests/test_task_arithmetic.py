"""Task arithmetic: the vector operations on known weights, the loss sweep against a model built by hand,
and the article's claims at smoke scale, each against its reference (the base model, the same task on
other batches, random directions)."""

import pytest
import torch

from explorer.techniques import task_arithmetic as ta


def states(seed: int = 0) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    base = {"a": torch.randn(3, 4, generator=g), "b": torch.randn(5, generator=g)}
    tuned = {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    return base, tuned


def test_a_task_vector_added_back_at_one_is_the_fine_tuned_model_and_at_zero_the_base():
    base, tuned = states()
    tau = ta.task_vector(tuned, base)
    for k in base:
        torch.testing.assert_close(ta.combine(base, [tau], 1.0)[k], tuned[k])
        torch.testing.assert_close(ta.combine(base, [tau], 0.0)[k], base[k])
        torch.testing.assert_close(ta.combine(base, [tau, tau], 0.5)[k], tuned[k])  # the mean of two equal vectors
    assert ta.norm(tau) == pytest.approx(float(torch.cat([(tuned[k] - base[k]).reshape(-1) for k in sorted(base)]).norm()))


def test_cosine_is_one_for_a_vector_and_its_multiple_minus_one_for_its_negation_and_near_zero_for_noise():
    base, tuned = states()
    tau = ta.task_vector(tuned, base)
    assert ta.cosine(tau, {k: 3 * v for k, v in tau.items()}) == pytest.approx(1.0)
    assert ta.cosine(tau, {k: -v for k, v in tau.items()}) == pytest.approx(-1.0)
    big = {"w": torch.randn(200_000, generator=torch.Generator().manual_seed(1))}
    assert ta.random_cosine(big, 5, seed=0).abs().max() < 0.02  # about 1/sqrt(200,000) per draw
    assert ta.best_coefficient([{"coefficient": -1.0, "A": 2.0}, {"coefficient": 0.5, "A": 1.0}, {"coefficient": 1.0, "A": 1.0}], ["A"]) == 0.5


def test_the_sweep_scores_the_model_at_each_point_of_the_line():
    """sweep's loss at λ equals the loss of a PlainTransformer loaded with base + λ τ by hand."""
    from explorer.models.reference import PlainTransformer
    from explorer.techniques import weight_change as wc

    arch = dict(d_model=16, n_heads=2, d_head=8, n_layers=1, d_vocab=256, n_ctx=8, attn_only=True, d_mlp=None, act_fn="gelu",
                normalization_type="LN", positional_embedding_type="standard", init_mode="gpt2")
    torch.manual_seed(0)
    base = {k: v.detach().clone() for k, v in PlainTransformer(arch).state_dict().items()}
    tau = {k: 0.05 * torch.randn_like(v) for k, v in base.items()}
    rows = {"A": torch.randint(0, 256, (4, 8)), "control": torch.randint(0, 256, (4, 8))}
    out = ta.sweep(base, [tau], (-1.0, 0.0, 2.0), arch, rows)
    model = PlainTransformer(arch)
    model.load_state_dict({k: base[k] + 2.0 * tau[k] for k in base})
    model.eval()
    assert out[2]["coefficient"] == 2.0 and out[2]["A"] == pytest.approx(wc.loss_on(model, rows["A"]), rel=1e-6)
    assert out[0]["A"] != out[1]["A"]


# --------------------------------------------------------------------------- smoke scale


def test_each_fine_tune_learns_its_task_most_and_the_mean_of_the_vectors_serves_both(smoke_claims):
    c = smoke_claims("task-arithmetic-summary")
    assert c["ftA_A_max"] < 0 and c["ftB_B_max"] < 0
    assert c["ftA_A"] < c["ftA_B"] and c["ftB_B"] < c["ftB_A"]  # each learns its own task most
    assert c["mean_A"] < 0.6 * c["ftA_A"] and c["mean_B"] < 0.6 * c["ftB_B"]  # the mean keeps most of each gain
    assert c["mean_control_max"] < 0


def test_the_sum_at_full_strength_overshoots_and_negation_is_not_selective(smoke_claims):
    c = smoke_claims("task-arithmetic-summary")
    assert c["sum_control_min"] > 0 and c["sum_A"] > c["mean_A"] and c["sum_B"] > c["mean_B"]
    assert c["negA_A_min"] > 0 and c["negA_control_min"] > 0 and c["negA_B_min"] > 0  # it unlearns code in general
    assert c["negA_A"] > c["negA_control"]  # sympy a little more
    line = smoke_claims("task-arithmetic-line")
    assert line["A_A_best_coefficient"] == 1.0 and line["A_A_at_2_min"] > 0  # past the fine-tuned model: worse than the base
    assert line["A_control_best_coefficient"] < line["A_A_best_coefficient"]
    assert line["AB_A_best_coefficient"] == line["AB_B_best_coefficient"] == 0.5


def test_two_tasks_vectors_are_far_closer_than_chance_and_less_alike_than_one_task_twice(smoke_claims):
    c = smoke_claims("task-arithmetic-summary")
    assert 10 * c["cos_random_max_max"] < c["cos_AB_min"] and c["cos_AB_max"] < c["cos_AA_min"] < 1
