"""Input hashes, staleness, canonical JSON and cache keys, in-process on a toy checkout (fast).

Every input a figure or a cache entry depends on is changed one at a time, and the hash must
change with it (and only with it). The slower end-to-end builds are in test_pipeline.py.
"""

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer import cache, jsonio, paths
from explorer.pipeline import build, hashing
from explorer.pipeline.index import FigureInfo

PRODUCER = '''from explorer.pipeline import figure
from explorer.lib import helper


@figure("toy-a", title="A", caption="c", model="m", inputs=("data/table.csv",))
def a(ctx):
    return helper.VALUE
'''


def write(path: Path, text: str) -> Path:
    """Write a file so that a stat sees the change (size and mtime both move)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if before:
        os.utime(path, ns=(before + 10**9, before + 10**9))
    return path


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A checkout of a few local modules: build_figures/toy.py imports explorer.lib.helper, which
    imports explorer.lib.deep relatively; explorer/lib/__init__.py runs on import."""
    root = tmp_path.resolve() / "repo"
    write(root / "explorer" / "__init__.py", "")
    write(root / "explorer" / "lib" / "__init__.py", "PACKAGE = 1\n")
    write(root / "explorer" / "lib" / "helper.py", "from . import deep\n\nVALUE = deep.X\n")
    write(root / "explorer" / "lib" / "deep.py", "X = 1\n")
    write(root / "explorer" / "lib" / "unused.py", "Y = 2\n")
    write(root / "build_figures" / "toy.py", PRODUCER)
    write(root / "data" / "table.csv", "a,b\n1,2\n")
    monkeypatch.setattr(paths, "REPO", root)
    monkeypatch.setattr(paths, "BUILD_FIGURES", root / "build_figures")
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(paths, "MODELS", root / "models")
    return root


def names(files) -> set[str]:
    return {paths.display(f) for f in files}


def toy_hash(repo: Path, **changes) -> str:
    args = {"figure_id": "toy-a", "scale": "full", "seed": 0, "model": "m", "inputs": ("data/table.csv",), **changes}
    return hashing.input_hash(args["figure_id"], repo / "build_figures" / "toy.py", args["scale"], args["seed"], args["model"], args["inputs"])


# --- the closure ------------------------------------------------------------------------------------


def test_the_closure_follows_from_imports_relative_imports_and_parent_packages(repo):
    closure = names(hashing.source_closure(repo / "build_figures" / "toy.py"))
    assert closure == {"build_figures/toy.py", "explorer/__init__.py", "explorer/lib/__init__.py", "explorer/lib/helper.py", "explorer/lib/deep.py"}


def test_a_remembered_closure_sees_a_new_import(repo):
    entry = repo / "build_figures" / "toy.py"
    assert "explorer/lib/unused.py" not in names(hashing.source_closure(entry))
    write(repo / "explorer" / "lib" / "deep.py", "from explorer.lib import unused\n\nX = unused.Y\n")
    assert "explorer/lib/unused.py" in names(hashing.source_closure(entry))


def test_every_input_changes_the_hash_and_nothing_else_does(repo):
    before = toy_hash(repo)
    assert toy_hash(repo) == before
    for changed in ({"scale": "smoke"}, {"model": "other"}, {"seed": 1}, {"figure_id": "toy-b"}, {"inputs": ()}):
        assert toy_hash(repo, **changed) != before, changed
    write(repo / "explorer" / "lib" / "unused.py", "Y = 3  # not imported\n")
    assert toy_hash(repo) == before
    for edited, text in (("data/table.csv", "a,b\n1,3\n"), ("explorer/lib/deep.py", "X = 22\n"), ("explorer/lib/__init__.py", "PACKAGE = 22\n")):
        previous = toy_hash(repo)
        write(repo / edited, text)
        assert toy_hash(repo) != previous, edited


def test_retraining_a_loaded_artifact_changes_the_hash(repo):
    write(repo / "build_figures" / "toy.py", PRODUCER + '\nfrom explorer import artifacts\nWEIGHTS = artifacts.load("toy-run")\n')
    provenance = write(repo / "models" / "toy-run" / "provenance.json", '{"code_hash": "a"}\n')
    before = toy_hash(repo)
    write(provenance, '{"code_hash": "bb"}\n')
    assert toy_hash(repo) != before


def test_a_code_digest_hashes_names_as_well_as_contents(repo):
    a = write(repo / "explorer" / "lib" / "a.py", "same = 1\n")
    b = write(repo / "explorer" / "lib" / "b.py", "same = 1\n")
    assert hashing.files_digest([a]) != hashing.files_digest([b])
    assert hashing.files_digest([a]) == hashlib.sha256(b"" + b"explorer/lib/a.py" + hashlib.sha256(b"same = 1\n").digest()).hexdigest()


# --- planning, publishing, checking ------------------------------------------------------------------


def toy_info(**changes) -> FigureInfo:
    return FigureInfo(**{"id": "toy-a", "article": "toy", "model": "m", "inputs": ("data/table.csv",), **changes})


def publish_fresh(repo: Path, out: Path, info: FigureInfo) -> dict:
    """Publish a spec for `info` with the hash planning expects, as a build would."""
    spec = write(out / info.id / "spec.json", '{"mark": "point"}\n')
    entry = {"input_hash": build.plan([info], out, "full", None, manifest={})[0].input_hash,
             "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest()}
    return {info.id: entry}


def test_a_figure_is_fresh_until_its_spec_is_edited_and_force_rebuilds_it(repo, tmp_path):
    out, info = tmp_path / "out", toy_info()
    manifest = publish_fresh(repo, out, info)
    assert not build.plan([info], out, "full", None, manifest=manifest)[0].stale
    assert build.plan([info], out, "full", None, force=True, manifest=manifest)[0].stale
    assert build.plan([info], out, "smoke", None, manifest=manifest)[0].stale
    write(out / info.id / "spec.json", '{"mark": "bar"}\n')  # edited by hand
    assert build.plan([info], out, "full", None, manifest=manifest)[0].stale


def test_model_applies_only_to_figures_that_take_one(repo, tmp_path):
    out = tmp_path / "out"
    fixed, open_ = toy_info(), toy_info(id="toy-b", model_option=True)
    plain = {p.figure.id: p for p in build.plan([fixed, open_], out, "full", None, manifest={})}
    other = {p.figure.id: p for p in build.plan([fixed, open_], out, "full", "other", manifest={})}
    assert other["toy-a"].model == "m" and other["toy-a"].input_hash == plain["toy-a"].input_hash
    assert other["toy-b"].model == "other" and other["toy-b"].input_hash != plain["toy-b"].input_hash


def test_publishing_a_new_caption_with_the_same_files_updates_the_entry(repo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def staged(name: str) -> Path:
        staging = out / ".staging" / name
        write(staging / "spec.json", '{"mark": "point"}\n')
        return staging

    entry = {"article": "toy", "title": "A", "caption": "old", "claims": {}, "wall_time_s": 1.0}
    assert build._publish(out, "toy-a", staged("one"), entry)
    assert not build._publish(out, "toy-a", staged("two"), {**entry, "wall_time_s": 2.0})  # only volatile fields moved
    assert build.read_manifest(out)["toy-a"]["wall_time_s"] == 1.0
    assert build._publish(out, "toy-a", staged("three"), {**entry, "caption": "new"})
    assert build.read_manifest(out)["toy-a"]["caption"] == "new"


def test_check_reports_stale_figures_and_figures_without_a_producer(repo, tmp_path):
    out, info = tmp_path / "out", toy_info()
    manifest = publish_fresh(repo, out, info)
    manifest["gone"] = {"input_hash": "x", "spec_sha256": "y"}
    jsonio.write_json(out / "manifest.json", {"figures": manifest})
    assert build.check(out=out) == ["gone (no producer)"]
    write(repo / "data" / "table.csv", "a,b\n9,9\n")
    assert build.check(out=out) == ["toy-a", "gone (no producer)"]


# --- canonical JSON and temporary files --------------------------------------------------------------


def test_floats_keep_four_significant_digits_at_every_magnitude():
    assert jsonio.round_floats([1.23456e-5, 123456.7, -0.000987654, 2 / 3, 0.0, -0.0]) == [1.235e-05, 123500.0, -0.0009877, 0.6667, 0.0, 0.0]
    assert jsonio.round_floats({"x": [float("nan"), float("inf")]}) == {"x": [None, None]}
    assert jsonio.dumps({"b": 1e-7, "a": True}) == '{"a":true,"b":1e-07}'
    assert jsonio.significant([[1 / 3, 2 / 3], [12345.678, 1e-9]]) == [0.333, 0.667, 12300.0, 1e-09]


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    live = write(tmp_path / f".spec.json.{os.getpid()}.abc123.tmp", "live")
    dead = write(tmp_path / f".spec.json.{dead_pid}.abc123.tmp", "dead")
    unnamed = write(tmp_path / ".spec.json.tmp", "old")  # no pid: removed only when old
    assert jsonio.clean_temp(tmp_path) == [dead]
    assert live.exists() and unnamed.exists() and not dead.exists()
    os.utime(unnamed, (0, 0))
    assert jsonio.clean_temp(tmp_path) == [unnamed]


def test_pid_alive_only_for_running_processes():
    assert jsonio.pid_alive(os.getpid())
    assert not jsonio.pid_alive(0) and not jsonio.pid_alive(-1)
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert not jsonio.pid_alive(done.pid)


# --- model-cache keys ------------------------------------------------------------------------------


def test_cache_keys_see_every_digit_of_the_config():
    assert cache.cache_key("x", {"lr": 1e-3}) != cache.cache_key("x", {"lr": 1.00004e-3})
    assert cache.cache_key("x", {"lr": 1e-3}) != cache.cache_key("y", {"lr": 1e-3})
    assert cache.cache_key("x", {"lr": 1e-3, "steps": 10}) == cache.cache_key("x", {"steps": 10, "lr": 1e-3})


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_code_the_key_is_the_file_that_defines_build(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    trainer = write(tmp_path / "toy_trainer.py", "def build():\n    return {'v': 1}\n")
    assert cache.cached("toy", {}, load_module(trainer, "toy_trainer_1").build) == {"v": 1}
    write(trainer, "def build():\n    return {'v': 2}  # retrained\n")
    assert cache.cached("toy", {}, load_module(trainer, "toy_trainer_2").build) == {"v": 2}


def test_an_entry_whose_bytes_do_not_match_its_checksum_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    calls = []

    def train():
        calls.append(1)
        return {"w": torch.arange(4.0), "pair": (1, "a")}

    code = [tmp_path / "code.py"]
    write(code[0], "# the training code\n")
    first = cache.cached("toy", {}, train, code=code)
    assert first["pair"] == (1, "a") and isinstance(first["pair"], tuple)
    entry = next((tmp_path / "cache").rglob("*.safetensors"))
    blob = bytearray(entry.read_bytes())
    blob[-1] ^= 0x01  # one bit of a weight flipped: still a valid file, no longer the one written
    entry.write_bytes(bytes(blob))
    again = cache.cached("toy", {}, train, code=code)
    assert len(calls) == 2 and torch.equal(again["w"], torch.arange(4.0))
