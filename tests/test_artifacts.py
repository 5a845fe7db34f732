"""The long-run tier: artifacts stored in models/ with provenance, checked against their registration."""

import json
import textwrap
from pathlib import Path

import pytest
import torch

from explorer import artifacts, cli, paths
from explorer.errors import ExplorerError
from explorer.pipeline import hashing

TRAINER = '''
import torch
from explorer.artifacts import Trained

def train(config, device):
    """A tiny linear fit, standing in for a run that takes hours."""
    torch.manual_seed(config["seed"])
    w = torch.zeros(config["width"], requires_grad=True)
    x, y = torch.randn(32, config["width"]), torch.randn(32)
    checkpoints = {}
    for step in range(1, config["steps"] + 1):
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
        if step % 5 == 0:
            checkpoints[step] = {"w": w.detach().clone()}
    return Trained(weights={"w": w.detach()}, checkpoints=checkpoints, epochs=config["steps"], metrics={"loss": float(loss.detach())})
'''


@pytest.fixture
def toy_run(tmp_path, monkeypatch):
    """A test-only long run whose training code lives in tmp_path, stored under tmp_path/models."""
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    monkeypatch.setattr(artifacts, "_RUNS", {})
    monkeypatch.setattr(artifacts, "_discovered", True)  # only what the test registers
    trainer = tmp_path / "toy_trainer.py"
    trainer.write_text(TRAINER)
    namespace: dict = {}
    exec(compile(TRAINER, str(trainer), "exec"), namespace)
    config = {"width": 4, "steps": 10, "seed": 3}
    run = artifacts.register(artifacts.LongRun("toy-run", config, namespace["train"], code=(trainer,), description="toy"))
    return run, trainer


def test_a_long_run_is_stored_with_provenance_and_loads(toy_run):
    run, trainer = toy_run
    record = artifacts.train("toy-run", device="cpu")
    folder = paths.MODELS / "toy-run"
    assert sorted(p.name for p in folder.iterdir()) == ["provenance.json", "weights.safetensors"]
    stored = json.loads((folder / "provenance.json").read_text())
    assert stored == json.loads(json.dumps(record))
    for key in ("config", "code_hash", "code_files", "epochs", "device", "wall_time_s", "checkpoints", "weights_sha256", "versions"):
        assert key in stored, key
    assert stored["config"] == run.config and stored["checkpoints"] == [5, 10] and stored["epochs"] == 10
    assert paths.display(trainer) in stored["code_files"]
    loaded = artifacts.load("toy-run")
    assert set(loaded.weights) == {"w"} and list(loaded.checkpoints) == [5, 10]
    assert torch.equal(loaded.weights["w"], loaded.checkpoints[10]["w"])
    assert artifacts.verify("toy-run") == [] and artifacts.status() == {"toy-run": "ok"}


def test_loading_a_missing_or_outdated_artifact_fails_with_one_line(toy_run, monkeypatch):
    run, trainer = toy_run
    with pytest.raises(artifacts.ArtifactError, match=r"artifact 'toy-run' is missing: .*weights.safetensors not found; train it with `make models NAME=toy-run`"):
        artifacts.load("toy-run")
    artifacts.train("toy-run", device="cpu")

    artifacts.register(artifacts.LongRun("toy-run", {**run.config, "steps": 20}, run.train, run.code))
    with pytest.raises(artifacts.ArtifactError, match=r"trained with another config \(differs in: steps\)") as err:
        artifacts.load("toy-run")
    assert "\n" not in str(err.value)
    artifacts.register(run)

    trainer.write_text(trainer.read_text() + "\n# the training code changed\n")
    with pytest.raises(artifacts.ArtifactError, match=rf"trained by other code \(changed since: {trainer}\)"):
        artifacts.load("toy-run")
    trainer.write_text(TRAINER)
    assert artifacts.verify("toy-run") == []

    weights = paths.MODELS / "toy-run" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(artifacts.ArtifactError, match="does not match the sha256 in its provenance"):
        artifacts.load("toy-run")

    with pytest.raises(ExplorerError, match="unknown long run 'nope'; known: toy-run"):
        artifacts.load("nope")


def test_explorer_models_trains_and_lists(toy_run, capsys):
    assert cli.main(["models"]) == 0
    assert "toy-run" in capsys.readouterr().out
    assert cli.main(["models", "--check"]) == 1  # not trained yet
    assert cli.main(["models", "toy-run", "--device", "cpu"]) == 0
    assert "trained toy-run" in capsys.readouterr().out
    assert cli.main(["models", "--check"]) == 0
    assert cli.main(["models", "nope"]) == 2 and "unknown long run 'nope'" in capsys.readouterr().err


def test_a_figure_that_loads_an_artifact_is_stale_when_it_is_retrained(toy_run, tmp_path):
    producer = tmp_path / "uses_toy.py"
    producer.write_text(textwrap.dedent('''
        from explorer import artifacts
        from explorer.pipeline import figure

        @figure("uses-toy", title="t", caption="c", model="toy-run")
        def produce(ctx):
            return artifacts.load("toy-run").weights
    '''))
    assert hashing.artifact_refs([producer]) == ("toy-run",)
    missing = hashing.input_hash("uses-toy", producer, "full", 0, "toy-run", ())
    artifacts.train("toy-run", device="cpu")
    trained = hashing.input_hash("uses-toy", producer, "full", 0, "toy-run", ())
    record = json.loads(artifacts.provenance_file("toy-run").read_text())
    record["wall_time_s"] += 1  # retrained: a new provenance
    artifacts.provenance_file("toy-run").write_text(json.dumps(record))
    assert len({missing, trained, hashing.input_hash("uses-toy", producer, "full", 0, "toy-run", ())}) == 3


def test_the_budget_refuses_an_artifact_that_does_not_fit(toy_run, monkeypatch):
    monkeypatch.setattr(artifacts, "BUDGET_BYTES", 100)
    with pytest.raises(artifacts.ArtifactError, match="over its 0 MB budget"):
        artifacts.train("toy-run", device="cpu")
    assert not (paths.MODELS / "toy-run").exists()


# Long runs declared and tested but not trained yet: a grokking seed takes about 45 minutes on a
# loaded core here, more than a session had spare (explorer/longruns/grokking.py). Kept here, not in
# the run's module, because that module is part of the runs' code hash. Remove a name once stored.
PENDING: set[str] = set()


def test_every_stored_artifact_matches_its_registered_config_and_code():
    """The repository's own models/: whatever is stored must be current, and every long run stored."""
    registered, stored = artifacts.runs(), artifacts.stored()
    expected = sorted(name for name in registered if name not in PENDING or name in stored)
    assert expected == stored, "every long run needs its artifact in models/ (make models NAME=...), and every artifact a long run"
    for name in stored:
        assert artifacts.verify(name) == [], name


def test_models_stay_within_their_budget():
    total = sum(p.stat().st_size for p in Path(paths.MODELS).rglob("*") if p.is_file()) if paths.MODELS.exists() else 0
    assert total <= artifacts.BUDGET_BYTES, f"models/ holds {total / 1e6:.1f} MB; the budget is {artifacts.BUDGET_BYTES / 1e6:.0f} MB"
