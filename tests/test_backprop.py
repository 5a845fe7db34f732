"""The backprop article: data sets, the hand-written backward pass, the playground's files and claims."""

import contextlib
import io
import itertools
import json
import sys

import pytest
import torch
import vl_convert

from explorer.data import toy2d
from explorer.errors import UnknownName
from explorer.models import mlp
from explorer.pipeline.registry import discover

FIGURE = "backprop-playground"


def producer_module():
    discover()
    return sys.modules["build_figures.backprop"]


def test_datasets_are_seeded_balanced_and_split():
    for name in toy2d.DATASETS:
        a, b = toy2d.make_dataset(name, 50, 30, seed=3), toy2d.make_dataset(name, 50, 30, seed=3)
        assert a.x_train.shape == (50, 2) and a.x_test.shape == (30, 2)
        assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
        assert 0.3 < a.y_train.float().mean() < 0.7
        inside = (torch.cat([a.x_train, a.x_test]).abs() < toy2d.EXTENT).all(1).float().mean()
        assert inside >= 0.97  # the plane the article draws shows (nearly) every point


def test_unknown_names_are_refused():
    with pytest.raises(UnknownName, match="known: blobs, circle, spirals, xor"):
        toy2d.make_dataset("moons")
    with pytest.raises(UnknownName, match="activation 'gelu'"):
        mlp.RunConfig(activation="gelu")
    with pytest.raises(UnknownName):
        mlp.activate(torch.zeros(2), "swish")
    with pytest.raises(UnknownName):
        mlp.RunConfig(output="hinge")


@pytest.mark.parametrize("activation,output", list(itertools.product(mlp.ACTIVATIONS, mlp.OUTPUTS)))
def test_hand_written_backward_matches_autograd(activation, output):
    torch.manual_seed(0)
    cfg = mlp.RunConfig(layers=2, width=3, activation=activation, output=output)
    model = mlp.build_mlp(cfg).double()
    x, y = torch.randn(5, 2, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1])
    mlp.point_loss(model(x), y, output).sum().backward()
    autograd = [torch.cat([m.weight.grad, m.bias.grad[:, None]], 1) for m in model if isinstance(m, torch.nn.Linear)]
    weights = mlp.mlp_weights(model)
    # per input, by hand; their sum is the gradient of the summed loss
    trip = mlp.forward_backward([w.expand(5, *w.shape) for w in weights], x, y, activation, output)
    for auto, hand in zip(autograd, trip.grads):
        torch.testing.assert_close(hand.sum(0), auto)
    assert trip.values[-1].shape == (5, cfg.n_outputs)


def test_smoke_claims(smoke_claims):
    """The direction of every claim the page makes, at smoke scale."""
    claims = smoke_claims(FIGURE)
    assert claims["configurations"] == 64
    assert claims["seeds"] >= 3
    assert claims["xor_corners_correct_min"] == 4  # the classic 2-4-1 network solves XOR in every seed
    assert claims["autograd_max_gap"] < 1e-5  # the computation panel's gradients are autograd's
    for name, floor in (("xor", 0.9), ("circle", 0.9), ("blobs", 0.8)):
        lo, mean, hi = (claims[f"default_test_accuracy_{name}{s}"] for s in ("_min", "", "_max"))
        assert floor <= lo <= mean <= hi <= 1
        assert lo > claims[f"chance_accuracy_{name}"] + 0.2  # far above guessing the larger class
    assert 0.5 <= claims["chance_accuracy_xor"] < 0.6
    assert claims["spirals_best_test_accuracy_3_layers"] > claims["spirals_best_test_accuracy_1_layers"]
    assert claims["near_zero_weight_fraction_l1"] > 5 * claims["near_zero_weight_fraction_none"]
    assert claims["loss_roughness_batch_1"] > 10 * claims["loss_roughness_batch_full"]
    assert claims["xor_width2_reach90"] < claims["xor_width4_reach90"] <= claims["xor_width4_runs"]
    assert claims["mean_run_file_kb"] < 12


def test_reaching_90_percent_counts_points_not_float32_fractions():
    """0.9 in float32 is 0.89999998: a `>= 0.9` on the stored accuracy missed runs that reached it."""
    module = producer_module()
    accuracy = torch.tensor([[0.5], [0.9]], dtype=torch.float32)  # (checkpoints, models)
    result = mlp.GroupResult(weights=[], train_curve=torch.zeros(1, 1), test_curve=torch.zeros(1, 1),
                             train_accuracy=accuracy, test_accuracy=accuracy)
    assert not accuracy[-1, 0].item() >= 0.9  # the old comparison
    assert module.test_correct(result, 0, mlp.TrainSettings(n_test=100)) == 90


def test_every_choice_has_a_file_with_the_spec_datasets(smoke):
    spec = smoke.spec(FIGURE)
    meta = spec["usermeta"]["explorer"]
    runs = list((smoke.path(FIGURE) / "runs").glob("*.json"))
    combos = list(itertools.product(*[c["options"] for c in meta["controls"]]))
    assert len(runs) == len(combos)
    names = [c["name"] for c in meta["controls"]]
    default = {c["name"]: c["default"] for c in meta["controls"]}
    path = smoke.path(FIGURE) / meta["source"]["url"].format(**default)
    payload = json.loads(path.read_text())
    assert set(meta["source"]["datasets"]) | {meta["source"]["code"]} == set(payload)
    assert payload["cfg"][0]["dataset"] == default["dataset"] and names[0] == "dataset"
    assert len(payload["net"]) == 11 and len(payload["net"][0]["w"]) == default["layers"] + 1
    assert path.stat().st_size < 12_000
    # the page's data fed into the spec compiles to Vega
    vl_convert.vegalite_to_vega({**spec, "datasets": {k: payload[k] for k in meta["source"]["datasets"]}})


def test_copied_pytorch_script_trains(smoke):
    path = smoke.path(FIGURE) / "runs" / "xor-1-4-tanh-sigmoid-mse-full-none.json"
    code = json.loads(path.read_text())["code"]
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "copied.py", "exec"), namespace)
    assert namespace["losses"][-1] < 0.5 * namespace["losses"][0]
    assert "test accuracy" in out.getvalue()


def test_script_for_softmax_l2_minibatch_runs():
    module = producer_module()
    run = mlp.RunConfig(dataset="circle", layers=2, width=3, activation="relu", output="softmax-ce", batch=16, regularization="l2")
    code = module.pytorch_script(run, mlp.TrainSettings(steps=40, n_train=60, n_test=20))
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "copied.py", "exec"), namespace)
    assert len(namespace["losses"]) == 40
    assert sum(isinstance(m, torch.nn.ReLU) for m in namespace["model"]) == 2
