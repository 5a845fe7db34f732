"""Faults and mistakes injected into the figure pipeline: each fails one figure with one line, never the build.

Most tests run the pipeline in this process on throwaway producers (fast: torch, Altair and
vl-convert are loaded once); the race needs two real processes.
"""

import errno
import io
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from explorer import cli, jsonio, paths
from explorer.pipeline import build as pipeline
from explorer.pipeline import registry

HEADER = """
import altair as alt
import pandas as pd
from explorer.pipeline import figure
"""

CHART = 'alt.Chart(pd.DataFrame({"i": [0, 1, 2], "v": [1.0, 2.0, VALUE]})).mark_bar().encode(x="i:O", y="v:Q")'


class Producers:
    def __init__(self, root: Path, out: Path):
        self.root, self.out = root, out

    def write(self, article: str, fid: str, body: str | None = None, *, top: str = "", value: float = 3.0) -> Path:
        body = body or f"return {CHART.replace('VALUE', repr(value))}"
        text = HEADER + textwrap.dedent(top) + textwrap.dedent(f'''

            @figure("{fid}", title="Title {fid}", caption="Caption.", model="none")
            def produce(ctx):
                {body}
            ''')
        path = self.root / f"{article}.py"
        path.write_text(text)
        return path

    def build(self, *ids: str, force: bool = False) -> dict[str, pipeline.Outcome]:
        return {o.id: o for o in pipeline.build(list(ids) or None, out=self.out, force=force, progress=False)}

    def cli(self, *args: str, capsys=None) -> tuple[int, str, str]:
        code = cli.main(["figures", "--quiet", "--out", str(self.out), *args])
        captured = capsys.readouterr() if capsys else None
        return code, captured.out if captured else "", captured.err if captured else ""


@pytest.fixture
def producers(tmp_path, monkeypatch) -> Producers:
    """Producers, output, cache and models in tmp_path, and a registry of their own."""
    root = tmp_path / "producers"
    root.mkdir()
    monkeypatch.setattr(paths, "BUILD_FIGURES", root)
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models", raising=False)
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "IMPORT_ERRORS", {})
    monkeypatch.setattr(registry, "IMPORT_TRACEBACKS", {}, raising=False)
    monkeypatch.setattr(pipeline, "_warned", set(), raising=False)
    before = set(sys.modules)
    yield Producers(root, tmp_path / "out")
    for name in set(sys.modules) - before:
        if name.startswith("build_figures."):
            del sys.modules[name]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".manifest.lock"}


def test_a_producer_calling_sys_exit_fails_its_figure_only(producers):
    producers.write("fa_exit", "fa-exit", "import sys; sys.exit(0)")
    producers.write("fa_good", "fa-good")
    outcomes = producers.build()
    assert outcomes["fa-good"].status == "built"
    assert outcomes["fa-exit"].status == "failed" and "SystemExit" in outcomes["fa-exit"].message


def test_only_an_id_whose_module_cannot_import_shows_the_import_error(producers, capsys):
    producers.write("fa_broken", "fa-broken", top="import no_such_module\n")
    code, _, err = producers.cli("--only", "fa-broken", capsys=capsys)
    assert code == 1 and "unknown figure id" not in err
    assert "fa-broken" in err and "cannot import: ModuleNotFoundError: No module named 'no_such_module'" in err
    # figures registered in a loop cannot be read from the source: the id is unknown, and the reason is shown
    (producers.root / "fa_loop.py").write_text(HEADER + "import no_such_module\nfor n in (1, 2):\n    figure(f'fa-loop-{n}', title='t', caption='c', model='m')(lambda ctx: None)\n")
    code, _, err = producers.cli("--only", "fa-loop-1", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown figure id 'fa-loop-1'" in err and "fa_loop.py: cannot import: ModuleNotFoundError" in err


def test_a_result_that_is_not_a_chart_fails_its_figure(producers):
    producers.write("fa_frame", "fa-frame", "return pd.DataFrame({'a': [1, 2]})")
    producers.write("fa_none", "fa-none", "return None")
    producers.write("fa_markless", "fa-markless", "return {'data': {'values': [{'a': 1}]}}")
    producers.write("fa_good", "fa-good")
    outcomes = producers.build()
    assert outcomes["fa-good"].status == "built"
    assert outcomes["fa-frame"].status == "failed" and "returned DataFrame, not an Altair chart" in outcomes["fa-frame"].message
    assert outcomes["fa-none"].status == "failed" and "returned NoneType, not an Altair chart" in outcomes["fa-none"].message
    assert outcomes["fa-markless"].status == "failed" and "does not compile to Vega" in outcomes["fa-markless"].message
    assert "Invalid specification" in outcomes["fa-markless"].message
    for fid in ("fa-frame", "fa-none", "fa-markless"):
        assert not (producers.out / fid).exists() and fid not in pipeline.read_manifest(producers.out)


def test_a_failing_producer_names_a_log_with_its_traceback(producers):
    producers.write("fa_boom", "fa-boom", "return helper()", top="def helper():\n    raise ValueError('boom deep inside')\n")
    outcome = producers.build()["fa-boom"]
    assert outcome.status == "failed" and "\n" not in outcome.message
    assert "fa_boom.py:" in outcome.message and "ValueError: boom deep inside" in outcome.message
    log = paths.CACHE / "logs" / "fa-boom.log"
    assert f"(traceback: {paths.display(log)})" in outcome.message
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in helper" in text and "ValueError: boom deep inside" in text


def test_manifest_is_byte_identical_when_no_figure_changed(producers):
    slow = "import time; time.sleep(0.02 + time.time_ns() % 97 / 1000); return " + CHART.replace("VALUE", "3.0")
    producers.write("fa_a", "fa-a", slow)
    producers.write("fa_b", "fa-b", slow)
    producers.build()
    manifest = producers.out / "manifest.json"
    before = manifest.read_bytes()
    outcomes = producers.build(force=True)  # same bytes again: wall times differ, the manifest must not
    assert all(o.status == "built" for o in outcomes.values())
    assert manifest.read_bytes() == before
    entries = jsonio.read_json(manifest)["figures"]
    producers.write("fa_a", "fa-a", value=4.0)  # a real change rewrites that entry only
    assert producers.build()["fa-a"].status == "built"
    after = pipeline.read_manifest(producers.out)
    assert after["fa-b"] == entries["fa-b"] and after["fa-a"]["input_hash"] != entries["fa-a"]["input_hash"]


def _fail_fsync_of(name_part: str, error: int):
    real = os.fsync

    def fsync(fd):
        if name_part in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(error, os.strerror(error))
        return real(fd)

    return fsync


def test_full_disk_while_writing_the_manifest_keeps_the_old_figure_and_entry(producers, monkeypatch):
    producers.write("fa_a", "fa-a")
    producers.build()
    before, manifest_before = files(producers.out / "fa-a"), (producers.out / "manifest.json").read_bytes()
    producers.write("fa_a", "fa-a", value=5.0)  # stale, with different output
    monkeypatch.setattr(os, "fsync", _fail_fsync_of(".manifest.json.", errno.ENOSPC))
    outcome = producers.build()["fa-a"]
    assert outcome.status == "failed" and "No space left on device" in outcome.message and "\n" not in outcome.message
    assert files(producers.out / "fa-a") == before and (producers.out / "manifest.json").read_bytes() == manifest_before
    assert not list(producers.out.glob(".*.tmp")) and not list(producers.out.glob("*.old"))


class ReadOnly:
    """Refuse every write under `root` as a read-only file system would (root ignores chmod)."""

    def __init__(self, root: Path):
        self.root = str(root.resolve())

    def _inside(self, path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(self.root)
        except TypeError:
            return False

    def _refuse(self, path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def install(self, monkeypatch) -> None:
        import builtins

        def guard(real, writes=lambda *a, **k: True, n_paths=1):
            def wrapper(*args, **kwargs):
                for path in args[:n_paths]:
                    if self._inside(path) and writes(*args, **kwargs):
                        self._refuse(path)
                return real(*args, **kwargs)

            return wrapper

        def open_writes(file, mode="r", *a, **k):
            return any(c in mode for c in "wax+")

        def os_open_writes(path, flags, *a, **k):
            return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

        real_mkdir = os.mkdir

        def mkdir(path, *args, **kwargs):  # an existing folder is reported as existing, as Linux does
            if self._inside(path) and not os.path.exists(path):
                self._refuse(path)
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        for name in ("rmdir", "unlink", "remove"):
            monkeypatch.setattr(os, name, guard(getattr(os, name)))
        for name in ("rename", "replace"):
            monkeypatch.setattr(os, name, guard(getattr(os, name), n_paths=2))
        monkeypatch.setattr(os, "open", guard(os.open, os_open_writes))
        monkeypatch.setattr(builtins, "open", guard(builtins.open, open_writes))
        monkeypatch.setattr(io, "open", guard(io.open, open_writes))


def test_read_only_output_is_one_line_and_a_no_op_still_works(producers, monkeypatch, capsys):
    producers.write("fa_a", "fa-a")
    assert producers.cli(capsys=capsys)[0] == 0
    ReadOnly(producers.out).install(monkeypatch)
    code, out, err = producers.cli(capsys=capsys)  # nothing stale: nothing to write
    assert code == 0, err
    assert producers.cli("--check", capsys=capsys)[0] == 0
    producers.write("fa_a", "fa-a", value=6.0)
    code, out, err = producers.cli(capsys=capsys)
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "Read-only file system" in err and "out" in err


def test_temp_files_of_a_killed_run_are_removed_and_ignored_by_git(producers):
    producers.write("fa_a", "fa-a")
    producers.build()
    producers.out.joinpath(".manifest.json.4242424242.k3j4h5g6.tmp").write_text("{")  # its process is gone
    old_style = producers.out / ".manifest.json.a1b2c3d4.tmp"  # no pid in the name: removed once old
    old_style.write_text("{")
    os.utime(old_style, (time.time() - 7200, time.time() - 7200))
    fresh = producers.out / ".manifest.json.e5f6g7h8.tmp"  # no pid and recent: may be someone's, kept
    fresh.write_text("{")
    producers.write("fa_a", "fa-a", value=7.0)
    producers.build()
    assert [p.name for p in producers.out.glob(".*.tmp")] == [fresh.name]

    for path in ("docs/figures/.manifest.json.123.abcdefgh.tmp", "docs/figures/.staging/x.1/spec.json", "docs/figures/heads-wiki.old/spec.json",
                 "models/.grokking.123.tmp/weights.safetensors", "models/grokking.old/weights.safetensors", ".cache/models/x/.y.1.z.tmp"):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=paths.REPO)
        assert ignored.returncode == 0, f"{path} is not ignored by git"


def test_a_manifest_entry_whose_folder_is_missing_is_stale_and_rebuilt(producers):
    producers.write("fa_a", "fa-a")
    producers.write("fa_b", "fa-b")
    producers.build()
    shutil.rmtree(producers.out / "fa-a")
    assert pipeline.check(out=producers.out) == ["fa-a"]
    assert producers.build()["fa-a"].status == "built" and (producers.out / "fa-a" / "spec.json").exists()


def test_a_damaged_manifest_is_one_line_and_every_figure_is_rebuilt(producers, capsys, caplog):
    producers.write("fa_a", "fa-a")
    producers.write("fa_b", "fa-b")
    producers.build()
    manifest = producers.out / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])  # truncated, as by a full disk or a crash
    code, out, err = producers.cli("--check", capsys=capsys)
    assert code == 1 and out.split() == ["stale:", "fa-a", "stale:", "fa-b"] and "Traceback" not in err
    warnings = [r.getMessage() for r in caplog.records if "manifest.json" in r.getMessage()]
    assert len(warnings) == 1 and "is unreadable" in warnings[0] and paths.display(manifest) in warnings[0]
    outcomes = producers.build()
    assert {o.status for o in outcomes.values()} == {"built"}
    assert set(pipeline.read_manifest(producers.out)) == {"fa-a", "fa-b"}


RACE = '''
import os, pathlib, time
import altair as alt
import pandas as pd
from explorer.pipeline import figure

BARRIER = pathlib.Path(os.environ["BARRIER"])
_rename = os.rename
def slow_rename(a, b, *args, **kwargs):  # widen the window between two builds' renames
    time.sleep(0.2)
    return _rename(a, b, *args, **kwargs)
os.rename = slow_rename
_path_rename = pathlib.Path.rename
pathlib.Path.rename = lambda self, target: (time.sleep(0.2), _path_rename(self, target))[1]

@figure("{fid}", title="t", caption="c", model="none")
def produce(ctx):
    (BARRIER / str(os.getpid())).touch()
    deadline = time.time() + 60
    while len(list(BARRIER.iterdir())) < 2 and time.time() < deadline:  # both builds publish at once
        time.sleep(0.01)
    return alt.Chart(pd.DataFrame({{"i": [0, 1]}})).mark_point().encode(x="i:Q")
'''


def test_two_builds_at_once_both_finish(tmp_path):
    folder = tmp_path / "producers"
    folder.mkdir()
    for fid in ("race-a", "race-b"):
        (folder / f"{fid.replace('-', '_')}.py").write_text(RACE.format(fid=fid))
    out, barrier = tmp_path / "out", tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "EXPLORER_PRODUCERS": str(folder), "EXPLORER_CACHE": str(tmp_path / "cache"), "BARRIER": str(barrier)}
    command = [sys.executable, "-m", "explorer", "figures", "--quiet", "--out", str(out)]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(r.wait(timeout=300), *r.communicate()) for r in runs]
    for code, stdout, stderr in results:
        assert code == 0 and "Traceback" not in stderr, stderr
    check = subprocess.run([*command, "--check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert not (out / ".staging").exists() and not list(out.glob("*.old"))
