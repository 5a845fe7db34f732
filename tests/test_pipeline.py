"""The figure pipeline, driven through its command line on throwaway producers."""

import hashlib
import io
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


class _Planted:
    """Unpickling this creates a file: proof that loading a cache entry ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_planted_cache_file_with_a_matching_checksum_runs_no_code(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("explorer.paths.CACHE", tmp_path)
    marker = tmp_path / "code-ran"
    config, code = {"lr": 0.1}, [test_a_planted_cache_file_with_a_matching_checksum_runs_no_code]
    path = cache.entry_path("toy", cache.cache_key("toy", config, code))
    path.parent.mkdir(parents=True)
    buf = io.BytesIO()
    torch.save({"w": _Planted(str(marker))}, buf)
    path.write_bytes(buf.getvalue())
    path.with_suffix(".sha256").write_text(hashlib.sha256(buf.getvalue()).hexdigest())
    value = cache.cached("toy", config, lambda: {"w": torch.ones(2)}, code=code)
    assert not marker.exists(), "loading the cache ran code from the file"
    assert torch.equal(value["w"], torch.ones(2))
    warnings = [r.getMessage() for r in caplog.records if str(path.name) in r.getMessage()]
    assert len(warnings) == 1 and "rebuilding" in warnings[0]
    assert cache.decode(path.read_bytes())["w"].tolist() == [1.0, 1.0]  # rebuilt as data


def test_an_unreadable_checksum_file_is_named_and_the_entry_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("explorer.paths.CACHE", tmp_path)
    calls = []
    train = lambda: calls.append(1) or {"w": torch.arange(3.0)}  # noqa: E731
    code = [test_an_unreadable_checksum_file_is_named_and_the_entry_rebuilt]
    cache.cached("toy", {}, train, code=code)
    checksum = next(tmp_path.rglob("*.sha256"))
    checksum.write_bytes(b"\xff\xfe not text")
    value = cache.cached("toy", {}, train, code=code)
    assert len(calls) == 2 and torch.equal(value["w"], torch.arange(3.0))
    assert any(checksum.name in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)
    cache.cached("toy", {}, train, code=code)
    assert len(calls) == 2  # the rebuild wrote a good checksum


def test_cache_temp_files_of_a_killed_run_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr("explorer.paths.CACHE", tmp_path)
    folder = tmp_path / "models" / "toy"
    folder.mkdir(parents=True)
    dead = folder / ".abc.safetensors.4242424242.x1y2z3w4.tmp"
    dead.write_bytes(b"half")
    cache.cached("toy", {}, lambda: {"w": torch.zeros(1)}, code=[test_cache_temp_files_of_a_killed_run_are_removed])
    assert not dead.exists() and not list(folder.glob(".*.tmp"))


def test_every_cached_result_type_round_trips():
    import numpy as np

    from explorer.models.mlp import GroupResult
    from explorer.models.training import TrainingRun

    run = TrainingRun(
        {"arch": {"d_model": 8, "d_mlp": None}, "train": {"lr": 3e-3}},
        {"embed.W_E": torch.randn(5, 4), "blocks.0.ln1.w": torch.ones(4)},
        [{"step": 0, "train_loss": float("nan"), "heldout_loss": 4.2}, {"step": 10, "train_loss": 3.0, "heldout_loss": float("inf")}],
        [(0, {"w": torch.zeros(2)}), (10, {"w": torch.ones(2)})],
        1280,
        3.5,
        1.25,
    )
    group = GroupResult([torch.randn(3, 2, 4, 3)], torch.randn(5, 2), torch.randn(5, 2), torch.rand(3, 2), torch.rand(3, 2))
    tokens = {"tokenizer_json": '{"model": {}}', "train": torch.arange(7, dtype=torch.int16), "heldout": torch.arange(3, dtype=torch.int32)}
    digits = {"checkpoints": [(0, {"fc1.weight": torch.randn(2, 2)}), (5, {"fc1.weight": torch.randn(2, 2)})], "history": [{"step": 0, "val_accuracy": 0.1}]}
    sweep = {"induction": 0.83, "repeated_loss": 1.5, "icl": -0.25, "train_seconds": 12.0}
    misc = {"array": np.arange(6.0, dtype=np.float32).reshape(2, 3), "scalar": np.float64(2.5), "int": np.int64(3), "keys": {1: "a", (2, 3): "b"},
            "nested": (1, [2.0, (None, True)]), "bf16": torch.ones(2, dtype=torch.bfloat16), "view": torch.arange(8.0).reshape(2, 4)[:, 1]}
    for value in (run, group, tokens, digits, sweep, misc):
        back = cache.decode(cache.encode(value))
        assert type(back) is type(value)
        _assert_same(back, value)


def _assert_same(a, b):
    import dataclasses

    import numpy as np

    assert type(a) is type(b), (type(a), type(b))
    if isinstance(b, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(b, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b) and np.array_equal(a, b)
    elif dataclasses.is_dataclass(b):
        for f in dataclasses.fields(b):
            _assert_same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(b, dict):
        assert list(a) == list(b)
        for k in b:
            _assert_same(a[k], b[k])
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(b, float) and b != b:
        assert a != a
    else:
        assert a == b


def test_the_cache_refuses_what_is_not_data():
    with pytest.raises(TypeError, match="cannot cache a function"):
        cache.encode({"f": lambda: 1})
    with pytest.raises(TypeError, match="cannot cache a PosixPath"):
        cache.encode([Path("x")])


def test_cache_keys_hash_the_import_closure_of_the_code(tmp_path, monkeypatch):
    from explorer import paths
    from explorer.models import recipes

    files = {paths.display(f) for f in cache.code_files([recipes])}
    assert {"explorer/models/fused_attention.py", "explorer/models/training.py", "explorer/data/corpus.py"} <= files
    assert "explorer/cache.py" not in files  # the cache's own code is versioned by cache.FORMAT
    # an edit to a module the entry point imports, and only to it, changes the key
    repo = tmp_path / "repo"
    (repo / "explorer").mkdir(parents=True)
    (repo / "explorer" / "__init__.py").write_text("")
    (repo / "explorer" / "trainer.py").write_text("from explorer import helper\n")
    (repo / "explorer" / "helper.py").write_text("LR = 0.1\n")
    (repo / "explorer" / "plots.py").write_text("from explorer import trainer\n")
    monkeypatch.setattr(paths, "REPO", repo)
    entry = repo / "explorer" / "trainer.py"
    before = cache.cache_key("toy", {}, [entry])
    (repo / "explorer" / "plots.py").write_text("from explorer import trainer\n# a plot changed\n")
    assert cache.cache_key("toy", {}, [entry]) == before
    (repo / "explorer" / "helper.py").write_text("LR = 0.2\n")
    assert cache.cache_key("toy", {}, [entry]) != before


def test_check_imports_neither_producers_nor_torch(tmp_path):
    producers = tmp_path / "producers"
    producers.mkdir()
    write_producer(producers, "alpha", "alpha-fig")
    (producers / "looped.py").write_text(textwrap.dedent('''
        from explorer.pipeline import figure
        for n in (1, 2):
            figure(f"looped-{n}", title="t", caption="c", model="m")(lambda ctx: None)
    '''))
    probe = (
        "import sys; from explorer.pipeline import build; stale = build.check(out=sys.argv[1]); "
        "print(sorted(stale), 'torch' in sys.modules, sorted(m for m in sys.modules if m.startswith('build_figures.')))"
    )
    env = {**os.environ, "EXPLORER_PRODUCERS": str(producers), "EXPLORER_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "out")], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "['alpha-fig', 'looped-1', 'looped-2'] False ['build_figures.looped']"  # read once by importing it
    again = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "out")], env=env, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "['alpha-fig', 'looped-1', 'looped-2'] False []"  # then from .cache/figure-index.json
    # a build imports only what it builds: once alpha-fig is published, a no-op build imports nothing
    (producers / "looped.py").unlink()
    assert run(producers, "--out", str(tmp_path / "out"), env={"EXPLORER_CACHE": str(tmp_path / "cache")}).returncode == 0
    noop = probe.replace("build.check(out=sys.argv[1])", "[o.id for o in build.build(out=sys.argv[1], progress=False) if o.status != 'fresh']")
    built = subprocess.run([sys.executable, "-c", noop, str(tmp_path / "out")], env=env, capture_output=True, text=True, check=True)
    assert built.stdout.strip() == "[] False []"


def test_figure_metadata_read_from_the_source_matches_what_registers():
    from explorer.pipeline.index import FigureInfo, scan
    from explorer.pipeline.registry import discover

    static, registered = scan(), discover()
    assert not static.errors
    assert static.figures.keys() == registered.keys()
    for fid, fig in registered.items():
        read = static.figures[fid]
        assert read == FigureInfo.of(fig) or read == FigureInfo(**{**FigureInfo.of(fig).__dict__, "title": ""}), fid


def test_the_reference_page_is_generated_from_the_current_docstrings():
    from explorer import reference

    assert reference.PAGE.read_text() == reference.render(), "run `python -m explorer reference` and commit docs/contributing/reference.md"


def test_claim_subject_repeats_one_models_claims_under_model_independent_keys(tmp_path):
    from explorer.pipeline.context import FigureContext

    ctx = FigureContext("f", "smoke", torch.device("cpu"), 0, "label", tmp_path)
    ctx.claim("gpt2_top_head", "L5H1")
    ctx.claim("gpt2_top", 0.5)
    ctx.claim("pythia_top", 0.1)
    ctx.claim_subject("gpt2", "gpt2")
    assert ctx.claims["model"] == "gpt2" and ctx.claims["model_top_head"] == "L5H1" and ctx.claims["model_top"] == 0.5
    assert "model_pythia_top" not in ctx.claims and "model_top_pythia" not in ctx.claims
    with pytest.raises(ValueError, match="no claims start with 'llama_'"):
        ctx.claim_subject("llama", "llama")


def test_progress_estimates_each_figure_from_the_wall_time_the_manifest_records():
    from explorer.pipeline.build import UNRECORDED_S, expected_seconds

    manifest = {"slow": {"wall_time_s": 300.0}, "quick": {"wall_time_s": 0.2}, "mid": {"wall_time_s": 12.0}}
    assert expected_seconds(["slow", "quick", "new"], manifest) == [300.0, 1.0, 12.0]  # new: the median
    assert expected_seconds(["new"], {}) == [UNRECORDED_S]
