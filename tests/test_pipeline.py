"""The figure pipeline, driven through its command line on throwaway producers."""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from explorer import cache, jsonio
from explorer.pipeline.spec import externalize_datasets

PRODUCER = '''
import os
import altair as alt
import pandas as pd
import torch
from explorer.pipeline import figure

@figure("{fid}", title="Title {fid}", caption="Caption.", model="none", seed={seed})
def produce(ctx):
    if os.environ.get("FAIL_{var}"):
        raise ValueError("boom in {fid}")
    values = torch.randn(ctx.pick(4, 8)).tolist()   # seeded by the pipeline
    ctx.claim("first", values[0])
    frame = pd.DataFrame({{"i": range(len(values)), "v": values}})
    return alt.Chart(frame).mark_bar().encode(x="i:O", y="v:Q")
'''


def write_producer(folder: Path, article: str, fid: str, seed: int = 0) -> Path:
    path = folder / f"{article}.py"
    path.write_text(PRODUCER.format(fid=fid, seed=seed, var=fid.replace("-", "_").upper()))
    return path


def run(producers: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "EXPLORER_PRODUCERS": str(producers), **(env or {})}
    return subprocess.run([sys.executable, "-m", "explorer", "figures", "--quiet", *args], env=full_env, capture_output=True, text=True)


@pytest.fixture
def project(tmp_path: Path):
    producers = tmp_path / "producers"
    producers.mkdir()
    write_producer(producers, "alpha", "alpha-fig")
    write_producer(producers, "beta", "beta-fig", seed=1)
    return producers, tmp_path / "out"


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.json")) if p.name != "manifest.json"}


def test_builds_then_skips_what_is_fresh(project):
    producers, out = project
    first = run(producers, "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "built   alpha-fig" in first.stdout and "built   beta-fig" in first.stdout
    second = run(producers, "--out", str(out))
    assert second.returncode == 0
    assert "built" not in second.stdout and "2 fresh" in second.stderr


def test_editing_a_producer_makes_only_it_stale(project):
    producers, out = project
    assert run(producers, "--out", str(out)).returncode == 0
    assert run(producers, "--check", "--out", str(out)).returncode == 0
    path = producers / "alpha.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    check = run(producers, "--check", "--out", str(out))
    assert check.returncode == 1 and check.stdout.strip() == "stale: alpha-fig"
    rebuilt = run(producers, "--out", str(out))
    assert "built   alpha-fig" in rebuilt.stdout and "beta-fig" not in rebuilt.stdout


def test_tampered_output_is_stale(project):
    producers, out = project
    run(producers, "--out", str(out))
    (out / "beta-fig" / "spec.json").write_text("{}")
    assert run(producers, "--check", "--out", str(out)).stdout.strip() == "stale: beta-fig"


def test_failing_producer_keeps_last_good_files_and_others_build(project):
    producers, out = project
    assert run(producers, "--out", str(out)).returncode == 0
    before = snapshot(out)
    for path in producers.glob("*.py"):  # make both stale, then let one of them fail
        path.write_text(path.read_text() + "\n# edit\n")
    result = run(producers, "--out", str(out), env={"FAIL_ALPHA_FIG": "1"})
    assert result.returncode == 1
    failure = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert len(failure) == 1
    assert "alpha-fig" in failure[0] and "alpha.py:" in failure[0] and "ValueError: boom in alpha-fig" in failure[0]
    assert "built   beta-fig" in result.stdout
    after = snapshot(out)
    alpha = {k: v for k, v in before.items() if k.startswith("alpha-fig/")}
    assert alpha and all(after[k] == v for k, v in alpha.items())  # last good alpha files untouched
    assert run(producers, "--check", "--out", str(out)).stdout.strip() == "stale: alpha-fig"


def test_interrupted_publish_is_recovered(project):
    producers, out = project
    run(producers, "--out", str(out))
    good = snapshot(out)
    (out / "alpha-fig").rename(out / "alpha-fig.old")  # as if killed between the two renames
    (out / ".staging" / "alpha-fig.999999999").mkdir(parents=True)  # staging of a process that died
    assert run(producers, "--out", str(out)).returncode == 0
    assert snapshot(out) == good
    assert not (out / "alpha-fig.old").exists() and not (out / ".staging").exists()


def test_two_runs_are_byte_identical(project, tmp_path):
    producers, out = project
    other = tmp_path / "other"
    run(producers, "--out", str(out))
    run(producers, "--out", str(other))
    assert snapshot(out) == snapshot(other) and snapshot(out)
    forced = run(producers, "--out", str(out), "--force")
    assert "built   alpha-fig" in forced.stdout and snapshot(out) == snapshot(other)


def test_output_layout_and_provenance(project):
    producers, out = project
    run(producers, "--out", str(out))
    spec = jsonio.read_json(out / "alpha-fig" / "spec.json")
    assert spec["data"]["url"].startswith("data/") and "datasets" not in spec
    assert (out / "alpha-fig" / spec["data"]["url"]).exists()
    entry = jsonio.read_json(out / "manifest.json")["figures"]["alpha-fig"]
    for key in ("input_hash", "seed", "device", "versions", "git_commit", "wall_time_s", "model", "scale", "source"):
        assert key in entry, key
    assert entry["versions"]["torch"].startswith("2.13.0")
    assert entry["claims"]["first"] == jsonio.read_json(out / "alpha-fig" / "claims.json")["first"]
    assert entry["source"].endswith("alpha.py:8")


def test_smoke_and_full_scales_differ(project, tmp_path):
    producers, out = project
    run(producers, "--out", str(out), "--scale", "smoke")
    run(producers, "--out", str(tmp_path / "full"), "--scale", "full")
    small = jsonio.read_json(next((out / "alpha-fig" / "data").glob("*.json")))
    large = jsonio.read_json(next((tmp_path / "full" / "alpha-fig" / "data").glob("*.json")))
    assert (len(small), len(large)) == (4, 8)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "no-such-fig"], "unknown figure id 'no-such-fig'; known: alpha-fig, beta-fig"),
        (["--scale", "huge"], "invalid choice: 'huge'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--model", "gpt-5"], "unknown model 'gpt-5'; known: attn-only-1l, attn-only-2l"),
    ],
)
def test_bad_ids_and_options_exit_2_with_one_line(project, args, message):
    producers, out = project
    result = run(producers, "--out", str(out), *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bench_options_reach_the_bench(monkeypatch):
    from explorer import bench, cli

    seen = []
    monkeypatch.setattr(bench, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["bench", "--cold", "backprop", "--no-zoo"]) == 0
    assert seen == [["--cold", "backprop", "--no-zoo"]]


def test_a_module_that_cannot_import_fails_alone(project):
    producers, out = project
    assert run(producers, "--out", str(out)).returncode == 0
    (producers / "broken.py").write_text("import no_such_module\n")
    result = run(producers, "--out", str(out), "--force")
    assert result.returncode == 1
    assert "broken.py: cannot import: ModuleNotFoundError: No module named 'no_such_module'" in result.stderr
    assert "built   alpha-fig" in result.stdout and (out / "beta-fig" / "spec.json").exists()


def test_duplicate_ids_name_both_places(project):
    producers, out = project
    write_producer(producers, "gamma", "alpha-fig")
    result = run(producers, "--out", str(out))
    assert result.returncode == 2
    assert "figure id 'alpha-fig' is already defined at" in result.stderr and "gamma.py" in result.stderr


def test_unavailable_model_skips_the_figure(project):
    producers, out = project
    (producers / "hub.py").write_text(textwrap.dedent('''
        from explorer.errors import ModelUnavailable
        from explorer.pipeline import figure

        @figure("hub-fig", title="t", caption="c", model="gpt2", model_option=True)
        def produce(ctx):
            raise ModelUnavailable(f"model {ctx.model!r}: weights are not in the local Hugging Face cache")
    '''))
    result = run(producers, "--out", str(out), "--model", "pythia-70m")
    assert result.returncode == 0
    assert "skipped hub-fig: model 'pythia-70m': weights are not in the local Hugging Face cache" in result.stdout
    assert "alpha-fig" not in result.stdout  # --model only touches figures that accept a model


def test_externalize_leaves_page_fed_data_alone():
    spec = {"datasets": {"data-1": [{"a": 1}]}, "data": {"name": "data-1"}, "layer": [{"data": {"name": "run"}}]}
    rewritten, datasets = externalize_datasets(spec)
    assert rewritten["data"] == {"url": "data/data-1.json"} and rewritten["layer"][0]["data"] == {"name": "run"}
    assert datasets == {"data-1": [{"a": 1}]}


def test_json_is_canonical():
    assert jsonio.dumps({"b": 1 / 3, "a": [float("nan"), 2.0, torch.tensor([0.123456])]}) == '{"a":[null,2.0,[0.1235]],"b":0.3333}'


def test_cache_rebuilds_corrupt_entries(tmp_path, monkeypatch):
    monkeypatch.setattr("explorer.paths.CACHE", tmp_path)
    calls = []

    def train():
        calls.append(1)
        return {"w": torch.arange(3.0)}

    config = {"lr": 0.1}
    first = cache.cached("toy", config, train, code=[test_cache_rebuilds_corrupt_entries])
    again = cache.cached("toy", config, train, code=[test_cache_rebuilds_corrupt_entries])
    assert len(calls) == 1 and torch.equal(first["w"], again["w"])
    entry = next(tmp_path.rglob("*.safetensors"))
    entry.write_bytes(entry.read_bytes()[:10])  # truncated, as by a crash
    rebuilt = cache.cached("toy", config, train, code=[test_cache_rebuilds_corrupt_entries])
    assert len(calls) == 2 and torch.equal(rebuilt["w"], first["w"])
    cache.cached("toy", {"lr": 0.2}, train, code=[test_cache_rebuilds_corrupt_entries])
    assert len(calls) == 3  # a new config trains anew
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == entry.with_suffix(".sha256").read_text()
