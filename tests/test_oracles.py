"""Independent oracles for the core measurements: each is checked against a slow explicit loop, a
hand-built tensor with a known answer, or the library's own implementation, on inputs that
exercise every term (layer norms with weights away from 1 and biases away from 0, a sequence with
nothing to find, a parameter away from its default).

Kept apart from the article tests (test_heads.py, test_lens.py, ...), which also check the
articles' claims at smoke scale.
"""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn
from transformer_lens.head_detector import get_duplicate_token_head_detection_pattern, get_induction_head_detection_pattern

from explorer.data.toy2d import make_dataset
from explorer.models import mlp
from explorer.techniques import heads, lens, patching, saliency
from oracles import causal_patterns, explicit_score, explicit_targets, scrambled_bridge


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --- head detectors ------------------------------------------------------------------------------------


def test_our_explicit_targets_are_transformer_lens_detection_patterns():
    """The written-out targets used as the oracle below agree with the library's patterns."""
    tokens = [3, 5, 3, 7, 5, 3, 9]
    for kind, library in (("duplicate_token", get_duplicate_token_head_detection_pattern), ("induction", get_induction_head_detection_pattern)):
        mask = library(torch.tensor([tokens]))
        assert [torch.nonzero(row).flatten().tolist() for row in mask] == explicit_targets(kind, tokens), kind


def test_attention_scores_equal_an_explicit_loop_over_rows_with_targets():
    tokens = [3, 5, 3, 7, 5, 3, 9, 7]
    patterns = causal_patterns(3, len(tokens), seed=0)
    for kind in heads.HEAD_KINDS:
        detection = heads.detection_pattern(kind, torch.tensor(tokens))
        expected = [explicit_score(patterns[h], explicit_targets(kind, tokens)) for h in range(3)]
        assert heads.attention_scores(patterns, detection).tolist() == pytest.approx(expected, abs=1e-6), kind


def test_first_token_pattern_leaves_out_query_zero():
    pattern = heads.detection_pattern("first_token", torch.arange(5))
    expected = torch.zeros(5, 5)
    expected[1:, 0] = 1
    assert torch.equal(pattern, expected)


def test_head_scores_table_is_each_heads_explicit_score_averaged_over_sequences_with_targets():
    """One sequence repeats, one has no repeated token at all (no induction target: left out of the mean)."""
    model = scrambled_bridge(n_layers=2, attn_only=True)
    repeats = [1, 4, 6, 8, 4, 6, 8, 2]
    distinct = [1, 9, 11, 13, 15, 17, 19, 21]
    tokens = torch.tensor([repeats, distinct])
    table = heads.head_scores(model, tokens)
    _, cache = model.run_with_cache(tokens)
    for layer in range(2):
        patterns = cache[f"blocks.{layer}.attn.hook_pattern"]  # (batch, head, q, k)
        for head in range(4):
            row = table[(table["layer"] == layer) & (table["head"] == head)]
            for kind in heads.HEAD_KINDS:
                per_seq = [explicit_score(patterns[b, head], explicit_targets(kind, seq)) for b, seq in enumerate(tokens.tolist())]
                expected = float(np.nanmean(per_seq))
                assert row[kind].item() == pytest.approx(expected, abs=1e-5), (layer, head, kind)
    assert not table[list(heads.HEAD_KINDS)].isna().any().any()


# --- logit lens and direct logit attribution, with every layer-norm term live ------------------------------


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    centred = x - x.mean(-1, keepdim=True)
    return centred / (centred.pow(2).mean(-1, keepdim=True) + eps).sqrt() * weight + bias


@pytest.fixture(scope="module", params=["gelu", "attn-only"])
def scrambled(request):
    return scrambled_bridge(seed=3, attn_only=request.param == "attn-only")


def test_logit_lens_is_the_final_layer_norm_and_unembedding_written_out(scrambled):
    model = scrambled
    tokens = torch.randint(0, 30, (2, 7), generator=torch.Generator().manual_seed(0))
    stages = lens.logit_lens(model, tokens)
    _, cache = model.run_with_cache(tokens)
    w, b = model.ln_final.w, model.ln_final.b
    assert not torch.allclose(w, torch.ones_like(w)) and b.abs().min() > 0  # the terms under test are live
    for stage, name in enumerate(lens.resid_hook_names(model.cfg.n_layers)):
        expected = layer_norm(cache[name], w, b, model.cfg.eps) @ model.W_U + model.b_U
        torch.testing.assert_close(stages[stage], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(stages[-1], model(tokens), atol=1e-4, rtol=1e-4)


def test_direct_logit_attribution_terms_add_up_with_layer_norm_weight_and_bias(scrambled):
    model = scrambled
    tokens = torch.randint(0, 30, (2, 8), generator=torch.Generator().manual_seed(1))
    contributions, labels, constant, logits = lens.direct_logit_attribution(model, tokens[:, :-1], tokens[:, 1:])
    torch.testing.assert_close(contributions.sum(0) + constant, logits, atol=1e-4, rtol=1e-4)
    # each term by hand: centred, divided by the final stream's own scale, times the weight, dotted with the target's column
    _, cache = model.run_with_cache(tokens[:, :-1])
    final = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    scale = ((final - final.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()  # (batch, pos, 1)
    columns = model.W_U[:, tokens[:, 1:]].permute(1, 2, 0)  # (batch, pos, d_model)

    def share(term: torch.Tensor) -> torch.Tensor:
        return ((term - term.mean(-1, keepdim=True)) / scale * model.ln_final.w * columns).sum(-1)

    torch.testing.assert_close(contributions[labels.index("embed")], share(cache["hook_embed"]), atol=1e-4, rtol=1e-4)
    for layer in range(model.cfg.n_layers):
        b_O = model.b_O[layer].expand_as(final)
        torch.testing.assert_close(contributions[labels.index(f"L{layer} attn bias")], share(b_O), atol=1e-4, rtol=1e-4)
    expected_constant = (model.ln_final.b * columns).sum(-1) + model.b_U[tokens[:, 1:]]
    torch.testing.assert_close(constant, expected_constant, atol=1e-4, rtol=1e-4)


# --- patching and ablation -------------------------------------------------------------------------------


def test_logit_difference_and_recovered_fraction_on_hand_built_logits():
    logits = torch.zeros(2, 3, 5)
    logits[0, -1, 1], logits[0, -1, 4] = 3.0, 1.0  # clean answer 1, corrupt answer 4
    logits[1, -1, 2], logits[1, -1, 0] = -1.0, 2.0
    logits[:, -2] = 100.0  # the position before the last must not count
    metric = patching.logit_difference(torch.tensor([1, 2]), torch.tensor([4, 0]))
    assert metric(logits).item() == pytest.approx(((3 - 1) + (-1 - 2)) / 2)
    recovered = patching.normalized(metric, clean_value=1.5, corrupt_value=-2.5)
    assert recovered(logits).item() == pytest.approx((-0.5 + 2.5) / 4)  # -0.5 lies a half of the way from corrupt to clean
    assert patching.normalized(lambda _: torch.tensor(1.5), 1.5, -2.5)(logits).item() == pytest.approx(1.0)
    assert patching.normalized(lambda _: torch.tensor(-2.5), 1.5, -2.5)(logits).item() == pytest.approx(0.0)


# --- saliency ----------------------------------------------------------------------------------------------


class Linear(nn.Module):
    """score_c(x) = w_c . x: integrated gradients from any baseline b is exactly (x - b) * w_c."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.w.T


@pytest.fixture
def images():
    return torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


TARGETS = torch.tensor([0, 2, 1, 2])


@pytest.mark.parametrize("baseline", list(saliency.BASELINES))
def test_integrated_gradients_of_a_linear_score_is_input_minus_baseline_times_weight(baseline, images):
    model = Linear()
    maps, used = saliency.integrated_gradients_refined(model, images, TARGETS, baseline, 4, 1e-9, 64)
    expected = (images - saliency.make_baseline(baseline, images)) * model.w[TARGETS].view(4, 1, 8, 8).detach()
    torch.testing.assert_close(maps, expected)
    assert used.tolist() == [4] * 4  # exact at once: nothing to refine


def test_integrated_gradients_uses_the_steps_it_is_asked_for(images):
    """Against Captum itself at a step count far from its default of 50 (a curved model shows the difference)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()
    for steps in (3, 7):
        ours, _ = saliency.integrated_gradients_refined(model, images, TARGETS, "blurred", steps, None, steps)
        theirs = IntegratedGradients(model).attribute(images, baselines=saliency.gaussian_blur(images), target=TARGETS, n_steps=steps)
        torch.testing.assert_close(ours, theirs)


def test_refinement_stops_at_its_step_cap():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    _, used = saliency.integrated_gradients_refined(model, images, TARGETS, "black", 2, 1e-14, 8)
    assert used.max().item() == 8 and set(used.tolist()) <= {2, 4, 8}


def test_completeness_gap_is_relative_to_the_score_change(images):
    model = Linear()
    change = (model(images) - model(torch.zeros_like(images))).gather(1, TARGETS[:, None])[:, 0].detach()
    exact = images * model.w[TARGETS].view(4, 1, 8, 8).detach()
    off = exact * 1.1  # sums to 1.1 times the change
    torch.testing.assert_close(saliency.completeness_gap(model, images, TARGETS, off, "black"), torch.full_like(change, 0.1))
    torch.testing.assert_close(saliency.completeness_gap(model, images, TARGETS, exact, "black"), torch.zeros_like(change), atol=1e-10, rtol=0)


def test_deletion_curve_equals_removing_the_top_pixels_by_hand(images):
    model = Linear().float()
    x = images.float()
    maps = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    curve = saliency.deletion_curve(model, x, TARGETS, maps, steps=4)
    for i in range(len(x)):
        order = maps[i].flatten().argsort(descending=True, stable=True)
        for k in range(5):
            kept = x[i].flatten().clone()
            kept[order[: round(k * 64 / 4)]] = 0.0
            expected = model(kept.view(1, 1, 8, 8)).softmax(-1)[0, TARGETS[i]]
            assert curve[i, k].item() == pytest.approx(expected.item(), abs=1e-6), (i, k)


# --- the playground's batched training against a plain PyTorch loop ----------------------------------------


RUNS = [
    mlp.RunConfig(dataset="xor", layers=1, width=4, activation="tanh", output="sigmoid-mse", regularization="l1"),
    mlp.RunConfig(dataset="circle", layers=1, width=4, activation="relu", output="softmax-ce", regularization="l2"),
    mlp.RunConfig(dataset="blobs", layers=1, width=4, activation="sigmoid", output="softmax-ce", regularization="none"),
]


def plain_training(cfg: mlp.RunConfig, start: list[torch.Tensor], settings: mlp.TrainSettings) -> tuple[list, list, list]:
    """What a reader would write: an nn.Sequential from `start`, Adam on the mean loss plus the
    penalty on weights (not biases), one full batch per step. Returns the weights, test accuracies
    and training losses at the checkpoints and curve steps."""
    model = mlp.build_mlp(cfg)
    with torch.no_grad():
        for linear, w in zip([m for m in model if isinstance(m, nn.Linear)], start):
            linear.weight.copy_(w[:, :-1])
            linear.bias.copy_(w[:, -1])
    data = make_dataset(cfg.dataset, settings.n_train, settings.n_test, settings.data_seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    strength = mlp.REGULARIZATION_STRENGTH[cfg.regularization]

    def loss_of(x, y):
        out = model(x)
        if cfg.output == "sigmoid-mse":
            return ((torch.sigmoid(out[:, 0]) - y.float()) ** 2).mean()
        return nn.functional.cross_entropy(out, y)

    def accuracy(x, y):
        out = model(x)
        predicted = (out[:, 0] > 0).long() if cfg.output == "sigmoid-mse" else out.argmax(-1)
        return (predicted == y).float().mean().item()

    weights, accuracies, losses = [], [], []
    for step in range(settings.steps + 1):
        with torch.no_grad():
            if step in settings.checkpoint_steps:
                weights.append(mlp.mlp_weights(model))
                accuracies.append(accuracy(data.x_test, data.y_test))
            if step in settings.curve_steps:
                losses.append(loss_of(data.x_train, data.y_train).item())
        if step == settings.steps:
            break
        penalty = sum((m.weight.abs() if cfg.regularization == "l1" else m.weight**2).sum() for m in model if isinstance(m, nn.Linear))
        optimizer.zero_grad()
        (loss_of(data.x_train, data.y_train) + strength * penalty).backward()
        optimizer.step()
    return weights, accuracies, losses


def test_batched_group_training_matches_one_plain_loop_per_run():
    settings = mlp.TrainSettings(steps=12, n_train=40, n_test=40, checkpoints=(0, 0.5, 1.0), curve_points=4)
    group = mlp.train_group(RUNS, settings, torch.device("cpu"))
    for m, cfg in enumerate(RUNS):
        start = [mlp.trim_output(w[0, m], cfg) if i == len(group.weights) - 1 else w[0, m] for i, w in enumerate(group.weights)]
        weights, accuracies, losses = plain_training(cfg, start, settings)
        for c, step_weights in enumerate(weights):
            for i, w in enumerate(step_weights):
                ours = group.weights[i][c, m]
                ours = mlp.trim_output(ours, cfg) if i == len(step_weights) - 1 else ours
                torch.testing.assert_close(ours, w, atol=2e-5, rtol=1e-4, msg=f"{cfg.key} checkpoint {c} layer {i}")
        assert group.test_accuracy[:, m].tolist() == pytest.approx(accuracies, abs=1e-6), cfg.key
        assert group.train_curve[:, m].tolist() == pytest.approx(losses, rel=1e-4, abs=1e-6), cfg.key
    sigmoid_out = group.weights[-1][-1, 0]
    assert (sigmoid_out[1] == 0).all() and (sigmoid_out[0] != 0).all()  # the unused second row, and only it, stays zero
