"""Build figures: decide what is stale, run producers in isolation, publish atomically."""

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from explorer import jsonio, paths
from explorer.device import pick_device, seed_everything
from explorer.errors import ModelUnavailable, UnknownName
from explorer.pipeline.context import FigureContext, Scale
from explorer.pipeline.hashing import input_hash
from explorer.pipeline.registry import IMPORT_ERRORS, Figure, discover
from explorer.pipeline.spec import externalize_datasets

MANIFEST = "manifest.json"
TRACKED_VERSIONS = ("torch", "transformer-lens", "altair", "numpy", "scikit-learn", "captum", "transformers")

Status = Literal["built", "fresh", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    id: str
    status: Status
    message: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Planned:
    figure: Figure
    model: str
    input_hash: str
    stale: bool


def default_out(scale: Scale) -> Path:
    """Full scale publishes into docs/; smoke scale never overwrites what is published."""
    return paths.FIGURES if scale == "full" else paths.CACHE / "smoke-figures"


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    return jsonio.read_json(path)["figures"] if path.exists() else {}


def select(figures: dict[str, Figure], ids: Sequence[str] | None, model: str | None) -> list[Figure]:
    for fid in ids or ():
        if fid not in figures:
            raise UnknownName("figure id", fid, figures)
    chosen = [figures[i] for i in ids] if ids else list(figures.values())
    if model is not None:
        chosen = [f for f in chosen if f.model_option]
    return chosen


def plan(chosen: list[Figure], out: Path, scale: Scale, model: str | None, force: bool = False) -> list[Planned]:
    manifest = read_manifest(out)
    planned = []
    for fig in chosen:
        effective = model if (model is not None and fig.model_option) else fig.model
        digest = input_hash(fig.id, paths.BUILD_FIGURES / f"{fig.article}.py", scale, fig.seed, effective, fig.inputs)
        entry = manifest.get(fig.id, {})
        spec = out / fig.id / "spec.json"
        fresh = (
            entry.get("input_hash") == digest
            and spec.exists()
            and entry.get("spec_sha256") == hashlib.sha256(spec.read_bytes()).hexdigest()
        )
        planned.append(Planned(fig, effective, digest, force or not fresh))
    return planned


def build(
    ids: Sequence[str] | None = None,
    *,
    scale: Scale = "full",
    out: Path | None = None,
    force: bool = False,
    model: str | None = None,
    progress: bool = True,
) -> list[Outcome]:
    """Bring the chosen figures up to date; return one Outcome per figure (never raises for a producer)."""
    out = Path(out) if out else default_out(scale)
    figures = discover()
    chosen = select(figures, ids, model)
    out.mkdir(parents=True, exist_ok=True)
    _recover(out)
    todo = plan(chosen, out, scale, model, force)
    outcomes = [Outcome(p.figure.id, "fresh") for p in todo if not p.stale]
    stale = [p for p in todo if p.stale]
    device = pick_device()
    bar = tqdm(stale, desc="figures", unit="fig", disable=not progress or not stale)
    for item in bar:
        bar.set_postfix_str(item.figure.id)
        outcomes.append(_build_one(item, out, scale, device, progress))
    outcomes += [Outcome(path, "failed", message) for path, message in IMPORT_ERRORS.items()]
    if ids is None and model is None and not IMPORT_ERRORS:  # a broken module's figures are not orphans
        _drop_orphans(out, set(figures))
    with contextlib.suppress(OSError):
        (out / ".staging").rmdir()  # only when empty: another build may be staging right now
    return sorted(outcomes, key=lambda o: o.id)


def _build_one(item: Planned, out: Path, scale: Scale, device, progress: bool) -> Outcome:
    fig = item.figure
    staging = out / ".staging" / f"{fig.id}.{os.getpid()}"  # per process: builds may run side by side
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ctx = FigureContext(fig.id, scale, device, fig.seed, item.model, staging, show_progress=progress)
    start = time.perf_counter()
    try:
        seed_everything(fig.seed)
        chart = fig.producer(ctx)
        spec = chart if isinstance(chart, dict) else chart.to_dict()
        spec, datasets = externalize_datasets(spec)
        for name, values in datasets.items():
            jsonio.write_json(staging / "data" / f"{name}.json", values)
        if ctx.claims:
            jsonio.write_json(staging / "claims.json", ctx.claims)
        spec_text = jsonio.dumps(spec) + "\n"
        jsonio.write_atomic(staging / "spec.json", spec_text)
    except ModelUnavailable as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return Outcome(fig.id, "skipped", str(exc))
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return Outcome(fig.id, "failed", _one_line(exc, fig), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    _publish(staging, out / fig.id)
    entry = {
        "article": fig.article,
        "title": fig.title,
        "caption": fig.caption,
        "model": item.model,
        "source": fig.source,
        "input_hash": item.input_hash,
        "seed": fig.seed,
        "scale": scale,
        "device": str(device),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "wall_time_s": round(seconds, 2),
        "spec_sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
        "claims": ctx.claims,
    }
    with _locked(out):
        manifest = read_manifest(out)
        manifest[fig.id] = entry
        jsonio.write_json(out / MANIFEST, {"figures": manifest}, digits=6)
    return Outcome(fig.id, "built", "", seconds)


def _one_line(exc: BaseException, fig: Figure) -> str:
    """The error, located at the innermost frame in this repo (file:line), on one line."""
    where = fig.source
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if "site-packages" not in frame.filename and "explorer/pipeline" not in frame.filename:
            where = f"{paths.display(frame.filename)}:{frame.lineno}"
            break
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{where}: {type(exc).__name__}: {message}"


def _publish(staging: Path, final: Path) -> None:
    """Swap the new folder in; an interruption leaves either the old or the new one (see _recover)."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _recover(out: Path) -> None:
    for old in out.glob("*.old"):
        final = old.with_name(old.name[: -len(".old")])
        if final.exists():
            shutil.rmtree(old)
        else:
            old.rename(final)
    for staging in (out / ".staging").glob("*"):  # left by a run that was killed
        if not _alive(int(staging.suffix.lstrip(".") or 0)):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_orphans(out: Path, known: set[str]) -> None:
    with _locked(out):
        manifest = read_manifest(out)
        orphans = [fid for fid in manifest if fid not in known]
        for fid in orphans:
            del manifest[fid]
            shutil.rmtree(out / fid, ignore_errors=True)
        if orphans:
            jsonio.write_json(out / MANIFEST, {"figures": manifest}, digits=6)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    with open(out / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in TRACKED_VERSIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=paths.REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.REPO, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check(ids: Sequence[str] | None = None, out: Path | None = None) -> list[str]:
    """Ids of published (full-scale) figures that are missing or older than their producers."""
    out = Path(out) if out else default_out("full")
    figures = discover()
    stale = [p.figure.id for p in plan(select(figures, ids, None), out, "full", None) if p.stale]
    if ids is None:
        stale += [f"{fid} (no producer)" for fid in read_manifest(out) if fid not in figures]
    stale += [f"{path} ({message})" for path, message in IMPORT_ERRORS.items()]
    return stale
