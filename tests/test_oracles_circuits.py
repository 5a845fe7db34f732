"""Independent oracles for the induction-circuit measurements: the canonical probe set's second
copy and chance levels, the repeated-half loss, K-composition, and the ablations' replacements and
random-direction null (see test_oracles.py for the rest)."""

import pytest
import torch

from explorer.techniques import induction, patching, probes
from oracles import explicit_score, explicit_targets, scrambled_bridge


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --- probes -------------------------------------------------------------------------------------------


def toy_probe(prefix: int = 1, half: int = 5, rows: int = 3) -> probes.ProbeSet:
    repeated = probes.repeated_random_tokens(rows, half, range(2, 40), torch.Generator().manual_seed(0), prefix=[0] * prefix)
    return probes.ProbeSet("toy", repeated, prefix, half, torch.zeros(rows, 8, dtype=torch.long))


def test_the_second_copy_is_where_the_first_repeats():
    probe = toy_probe(prefix=1, half=5)
    assert probe.second_copy == slice(6, 11)
    row = probe.repeated[0]
    assert torch.equal(row[probe.second_copy], row[1:6])
    bare = toy_probe(prefix=0, half=4)
    assert bare.second_copy == slice(4, 8) and torch.equal(bare.repeated[0][bare.second_copy], bare.repeated[0][:4])


def test_chance_levels_are_the_scores_of_uniform_causal_attention():
    """Score a head that spreads its attention evenly over the keys it may see: that is chance."""
    probe = toy_probe(prefix=1, half=6)
    n = probe.repeated.shape[1]
    uniform = torch.ones(n, n, dtype=torch.float64).tril() / torch.arange(1, n + 1, dtype=torch.float64)[:, None]  # (q, k)
    for row in probe.repeated.tolist():
        assert explicit_score(uniform, explicit_targets("induction", row)) == pytest.approx(probes.uniform_induction_score(probe), abs=1e-9)
    assert explicit_score(uniform, explicit_targets("previous_token", list(range(n)))) == pytest.approx(probes.uniform_previous_token_score(n))


# --- induction losses and K-composition ------------------------------------------------------------------


def test_repeated_half_loss_is_the_mean_over_the_predictable_second_copy():
    probe = toy_probe(prefix=1, half=5)
    loss = torch.rand(probe.repeated.shape[1] - 1, generator=torch.Generator().manual_seed(2))  # entry i predicts token i + 1
    predictable = [i for i in range(len(loss)) if probe.second_copy.start < i + 1 < probe.second_copy.stop]  # tokens after the copy's first
    assert induction.repeated_half_loss(loss, probe.second_copy.start) == pytest.approx(loss[predictable].mean().item())


def test_composition_score_is_the_frobenius_formula_on_random_matrices():
    g = torch.Generator().manual_seed(0)
    ov, qk = torch.randn(3, 6, 6, generator=g), torch.randn(2, 6, 6, generator=g)
    ours = induction.composition_score(ov[:, None], qk[None])  # (3, 2)
    for i in range(3):
        for j in range(2):
            expected = torch.linalg.matrix_norm(ov[i] @ qk[j].T) / (torch.linalg.matrix_norm(ov[i]) * torch.linalg.matrix_norm(qk[j]))
            assert ours[i, j].item() == pytest.approx(expected.item(), rel=1e-5)



# --- ablation: what replaces a head, and the null of the same size ------------------------------------


def test_mean_ablation_pools_the_batch_and_every_position():
    model = scrambled_bridge(attn_only=True)
    tokens = torch.randint(0, 30, (3, 6), generator=torch.Generator().manual_seed(0))
    reference = torch.randint(0, 30, (4, 6), generator=torch.Generator().manual_seed(1))
    replaced = patching.replacement_z(model, tokens, "mean", reference)
    _, cache = model.run_with_cache(reference)
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"]  # (batch, pos, head, d_head)
        for head in range(model.cfg.n_heads):
            pooled = torch.stack([z[b, p, head] for b in range(4) for p in range(6)]).mean(0)
            for b in range(3):
                for p in range(6):
                    torch.testing.assert_close(replaced[layer][b, p, head], pooled, atol=1e-5, rtol=1e-5)


def test_ablation_hooks_replace_the_named_heads_only():
    z = torch.randn(2, 3, 4, 5)
    replacements = [torch.full((2, 3, 4, 5), 7.0)]
    ((name, hook),) = patching.ablation_hooks([(0, 1), (0, 3)], replacements)
    out = hook(z)
    assert name == "blocks.0.attn.hook_z"
    assert (out[:, :, [1, 3]] == 7.0).all() and torch.equal(out[:, :, [0, 2]], z[:, :, [0, 2]])


def test_the_random_direction_null_pushes_exactly_as_far_as_the_ablation():
    delta = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0)) * torch.arange(1, 6.0)[:, None]  # (batch, pos, d_model)
    ((name, hook),) = patching.random_direction_hooks({1: delta}, torch.Generator().manual_seed(1), draws=3)
    push = hook(torch.zeros(6, 5, 8))  # draw-major: rows d*batch ... (d+1)*batch-1
    assert name == "blocks.1.hook_attn_out"
    torch.testing.assert_close(push.norm(dim=-1), delta.norm(dim=-1).repeat(3, 1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(push[:2], push[2:4])  # each draw its own direction


