"""Build figures: decide what is stale, run producers in isolation, publish atomically.

Planning reads figure metadata from the producers' source (explorer.pipeline.index) and hashes
files, so `figures --check` and a no-op build import neither torch nor any producer. Only the
modules of stale figures are imported, when they are built.

Faults are contained per figure: a producer that raises (even SystemExit), returns something
other than a chart, or returns a spec that does not compile to Vega fails that figure with one
line, and its traceback goes to .cache/logs/<id>.log. Publishing a figure (its folder and its
manifest entry) happens under the manifest lock, so builds may run side by side; an I/O error
while publishing leaves the previous folder and entry in place.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from explorer import jsonio, paths
from explorer.errors import ExplorerError, ModelUnavailable, UnknownName
from explorer.pipeline import registry
from explorer.pipeline.context import FigureContext, Scale
from explorer.pipeline.hashing import frozen_files, input_hash, save_source_index
from explorer.pipeline.index import FigureInfo, scan
from explorer.pipeline.registry import Figure
from explorer.pipeline import preview
from explorer.pipeline.spec import SpecError, check_compiles, externalize_datasets, spec_of

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
TRACKED_VERSIONS = ("torch", "transformer-lens", "altair", "numpy", "scikit-learn", "captum", "transformers")
# Provenance that may differ between two builds of the same bytes. A rebuild whose files and other
# fields are unchanged keeps the old entry, so manifest.json changes only when a figure does.
VOLATILE = ("device", "cpu", "versions", "git_commit", "wall_time_s")

Status = Literal["built", "fresh", "skipped", "failed"]
log = logging.getLogger("explorer.pipeline")


class ManifestUnreadable(ExplorerError):
    """manifest.json cannot be read; builds treat every figure as stale and write a new one."""


class OutputError(ExplorerError):
    """The output folder cannot be written."""

    exit_code = 1


@dataclass(frozen=True)
class Outcome:
    id: str
    status: Status
    message: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Planned:
    figure: FigureInfo | Figure
    model: str
    input_hash: str
    stale: bool
    error: str = ""  # why its inputs could not be hashed (the figure fails)


MODELS_DIR = "models"  # figures recomputed on another model live in <out>/models/<name>/, beside the defaults


def model_out(root: Path, model: str | None) -> Path:
    """Where a build writes: `root` itself, or for a run on another model (`--model NAME`) a place of its own
    under it, never over the default figures; the site offers it as a model switch on the figures it has,
    and `--check` leaves it alone."""
    return root / MODELS_DIR / model if model is not None else root


# Smoke-scale figures are committed too, beside the tests that read them: a clean checkout's `make test`
# then rebuilds only the articles whose inputs changed (SMOKE_REBUILD=1 rebuilds all of them).
SMOKE_FIGURES = paths.REPO / "tests" / "smoke-figures"


def default_out(scale: Scale, model: str | None = None) -> Path:
    """Full scale publishes into docs/figures/, smoke scale into tests/smoke-figures/, never over what is published."""
    return model_out(paths.FIGURES if scale == "full" else SMOKE_FIGURES, model)


def read_manifest(out: Path) -> dict[str, Any]:
    """The `figures` object of out/manifest.json ({} when absent); ManifestUnreadable when damaged."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return {}
    try:
        data = jsonio.read_json(path)
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ManifestUnreadable(f"{paths.display(path)} is unreadable ({_reason(exc)})") from exc
    figures = data.get("figures") if isinstance(data, dict) else None
    if not isinstance(figures, dict) or not all(isinstance(v, dict) for v in figures.values()):
        raise ManifestUnreadable(f'{paths.display(path)} is not a figure manifest (no "figures" object of entries)')
    return figures


_warned: set[str] = set()


def _manifest(out: Path) -> dict[str, Any]:
    """read_manifest, but a damaged file is reported once and read as empty (every figure stale)."""
    try:
        return read_manifest(out)
    except ManifestUnreadable as exc:
        message = f"{exc}; treating every figure as stale"
        if message not in _warned:
            _warned.add(message)
            log.warning("explorer: %s", message)
        return {}


def select(figures: dict[str, Any], ids: Sequence[str] | None, model: str | None, errors: dict[str, str] | None = None) -> list:
    for fid in ids or ():
        if fid not in figures:
            if errors:  # the id may live in a module that could not be read: say why, not only "unknown"
                broken = "; ".join(f"{path}: {message}" for path, message in errors.items())
                raise ExplorerError(f"unknown figure id {fid!r} ({broken}); known: {', '.join(sorted(figures))}")
            raise UnknownName("figure id", fid, figures)
    chosen = [figures[i] for i in ids] if ids else list(figures.values())
    if model is not None:
        chosen = [f for f in chosen if f.model_option]
    return chosen


def _effective_model(fig: FigureInfo | Figure, model: str | None) -> str:
    return model if (model is not None and fig.model_option) else fig.model


def _hash(fig: FigureInfo | Figure, scale: Scale, model: str) -> str:
    return input_hash(fig.id, paths.BUILD_FIGURES / f"{fig.article}.py", scale, fig.seed, model, tuple(fig.inputs))


def plan(chosen: list, out: Path, scale: Scale, model: str | None, force: bool = False, manifest: dict | None = None) -> list[Planned]:
    manifest = _manifest(out) if manifest is None else manifest
    planned = []
    for fig in chosen:
        effective = _effective_model(fig, model)
        try:
            digest = _hash(fig, scale, effective)
        except (OSError, SyntaxError, ValueError) as exc:
            planned.append(Planned(fig, effective, "", True, f"cannot hash its inputs: {type(exc).__name__}: {_reason(exc)}"))
            continue
        entry = manifest.get(fig.id, {})
        fresh = entry.get("input_hash") == digest and _file_sha256(out / fig.id / "spec.json") == entry.get("spec_sha256")
        planned.append(Planned(fig, effective, digest, force or not fresh))
    return planned


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # missing folder or spec: the figure is stale
        return None


def build(
    ids: Sequence[str] | None = None,
    *,
    scale: Scale = "full",
    out: Path | None = None,
    force: bool = False,
    model: str | None = None,
    progress: bool = True,
) -> list[Outcome]:
    """Bring the chosen figures up to date; return one Outcome per figure (never raises for a producer).

    Raises ExplorerError for bad ids and OSError/OutputError when the output folder itself cannot be
    written; everything that goes wrong inside one figure is that figure's Outcome.
    """
    out = model_out(Path(out) if out else default_out(scale), model)
    with frozen_files():
        found = scan()
        chosen = select(found.figures, ids, model, found.errors)
        if not out.is_dir():
            out.mkdir(parents=True)
        _recover(out)
        recorded = _manifest(out)
        todo = plan(chosen, out, scale, model, force, recorded)
    outcomes = [Outcome(p.figure.id, "fresh") for p in todo if not p.stale]
    stale = [p for p in todo if p.stale]
    if stale:
        _check_writable(out)
        from tqdm.auto import tqdm

        from explorer.device import pick_device

        device = pick_device()
        expected = expected_seconds([p.figure.id for p in stale], recorded)
        # one figure can take minutes and most take seconds: the bar counts recorded seconds of work,
        # so its rate (and ETA) is how fast this machine gets through what the last build measured
        bar = tqdm(total=sum(expected), desc="figures", unit="s", disable=not progress,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of recorded work [{elapsed}<{remaining}{postfix}]")
        for item, seconds in zip(stale, expected):
            bar.set_postfix_str(item.figure.id)
            outcomes.append(_build_one(item, out, scale, device, model, progress))
            bar.update(seconds)
        bar.close()
    outcomes += [Outcome(path, "failed", message) for path, message in found.errors.items()]
    if ids is None and model is None and not found.errors:  # a broken module's figures are not orphans
        _drop_orphans(out, set(found.figures))
    with contextlib.suppress(OSError):
        (out / ".staging").rmdir()  # only when empty: another build may be staging right now
    save_source_index()
    return sorted(outcomes, key=lambda o: o.id)


UNRECORDED_S = 30.0  # a figure no build has timed yet, when no figure has been timed either


def expected_seconds(ids: Sequence[str], manifest: dict[str, Any]) -> list[float]:
    """How long each figure should take: its wall time in the manifest of the last build, or for a
    new figure the median of the recorded ones (at least 1 s each, so every figure moves the bar)."""
    times = sorted(float(e["wall_time_s"]) for e in manifest.values() if isinstance(e, dict) and isinstance(e.get("wall_time_s"), (int, float)))
    fallback = times[len(times) // 2] if times else UNRECORDED_S
    out = []
    for fid in ids:
        entry = manifest.get(fid)
        value = entry.get("wall_time_s") if isinstance(entry, dict) else None
        out.append(max(1.0, float(value)) if isinstance(value, (int, float)) else max(1.0, fallback))
    return out


def _load_figure(info: FigureInfo | Figure) -> tuple[Figure | None, str]:
    """Import the producer's module (once) and return its registered Figure, or a one-line error."""
    if isinstance(info, Figure):
        return info, ""
    path = paths.BUILD_FIGURES / f"{info.article}.py"
    error = registry.import_module(path)
    if error:
        return None, f"{paths.display(path)}: {error}"
    fig = registry._REGISTRY.get(info.id)
    if fig is None:
        return None, f"{info.source}: figure {info.id!r} is in the source but was not registered when the module was imported"
    return fig, ""


def _cpu(device) -> dict[str, str]:
    """Which CPU kernels torch ran (explorer.device pins them): a claim that moved between machines
    is easier to explain with this in the provenance."""
    from explorer.device import cpu_dispatch

    return cpu_dispatch() if device.type == "cpu" else {}


def _build_one(item: Planned, out: Path, scale: Scale, device, model: str | None, progress: bool) -> Outcome:
    info = item.figure
    if item.error:
        return Outcome(info.id, "failed", f"{info.source}: {item.error}")
    fig, error = _load_figure(info)
    if fig is None:
        trace = registry.IMPORT_TRACEBACKS.get(paths.display(paths.BUILD_FIGURES / f"{info.article}.py"))
        return Outcome(info.id, "failed", error + _log_failure(info.id, trace) if trace else error)
    digest, effective = item.input_hash, item.model
    if _differs(info, fig):
        effective = _effective_model(fig, model)  # the source was read wrongly: trust what registered
        digest = _hash(fig, scale, effective)
        log.warning("explorer: %s: @figure(...) of %s read from the source differs from what it registers; --check may misreport it", fig.source, fig.id)
    staging = out / ".staging" / f"{fig.id}.{os.getpid()}"  # per process: builds may run side by side
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        return Outcome(fig.id, "failed", f"cannot write {_os_error(exc)}")
    ctx = FigureContext(fig.id, scale, device, fig.seed, effective, staging, show_progress=progress)
    start = time.perf_counter()
    try:
        from explorer.device import seed_everything

        seed_everything(fig.seed)
        chart = fig.producer(ctx)
        inline = spec_of(chart)
        spec, datasets = externalize_datasets(inline)
        check_compiles(spec)
        for name, values in datasets.items():
            jsonio.write_json(staging / "data" / f"{name}.json", values)
        if preview.wants_preview(spec):
            preview.write_previews(inline, staging)
        if ctx.claims:
            jsonio.write_json(staging / "claims.json", ctx.claims)
        spec_text = jsonio.dumps(spec) + "\n"
        jsonio.write_atomic(staging / "spec.json", spec_text)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except ModelUnavailable as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return Outcome(fig.id, "skipped", str(exc))
    except BaseException as exc:  # SystemExit too: one producer never ends the build
        shutil.rmtree(staging, ignore_errors=True)
        trace = "".join(traceback.format_exception(exc))
        return Outcome(fig.id, "failed", _one_line(exc, fig) + _log_failure(fig.id, trace), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    entry = {
        "article": fig.article,
        "title": fig.title,
        "caption": fig.caption,
        "model": effective,
        "source": fig.source,
        "input_hash": digest,
        "seed": fig.seed,
        "scale": scale,
        "device": str(device),
        "cpu": _cpu(device),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "wall_time_s": round(seconds, 2),
        "spec_sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
        "claims": ctx.claims,
    }
    try:
        changed = _publish(out, fig.id, staging, entry)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return Outcome(fig.id, "failed", f"cannot publish (the previous version stays): {_os_error(exc)}", seconds)
    with contextlib.suppress(OSError):
        _log_path(fig.id).unlink(missing_ok=True)  # the last failure's log is history now
    return Outcome(fig.id, "built", "" if changed else "output unchanged", seconds)


def _differs(info: FigureInfo | Figure, fig: Figure) -> bool:
    keys = ("id", "article", "model", "seed", "model_option")
    return any(getattr(info, k) != getattr(fig, k) for k in keys) or tuple(info.inputs) != tuple(fig.inputs)


def _log_path(fid: str) -> Path:
    return paths.CACHE / "logs" / f"{fid}.log"


def _log_failure(fid: str, trace: str) -> str:
    """Write the traceback to .cache/logs/<id>.log; return the suffix that names it in the one line."""
    path = _log_path(fid)
    try:
        jsonio.write_atomic(path, f"figure {fid}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n\n{trace}")
    except OSError as exc:
        return f" (traceback not saved: {_os_error(exc)})"
    return f" (traceback: {paths.display(path)})"


def _one_line(exc: BaseException, fig: Figure) -> str:
    """The error, located at the innermost frame in this repo (file:line), on one line."""
    where = fig.source
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if "site-packages" not in frame.filename and "explorer/pipeline" not in frame.filename:
            where = f"{paths.display(frame.filename)}:{frame.lineno}"
            break
    if isinstance(exc, SpecError):
        return f"{where}: {exc}"
    if isinstance(exc, SystemExit):
        return f"{where}: SystemExit: the producer called sys.exit({exc.code!r})"
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{where}: {type(exc).__name__}: {message}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def _os_error(exc: OSError) -> str:
    where = f"{paths.display(exc.filename)}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _check_writable(out: Path) -> None:
    """Fail once, with one line, when the output folder cannot take new figures."""
    try:
        (out / ".staging").mkdir(exist_ok=True)
        jsonio.write_temp(out / ".staging" / "probe", b"").unlink()
    except OSError as exc:
        raise OutputError(f"cannot write figures to {paths.display(out)}: {exc.strerror or exc}") from exc


def _same_tree(a: Path, b: Path) -> bool:
    """Whether two folders hold the same files with the same bytes."""
    if not b.is_dir():
        return False

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    names = files(a)
    return names == files(b) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _stable(entry: dict[str, Any]) -> str:
    return jsonio.dumps({k: v for k, v in entry.items() if k not in VOLATILE}, digits=6)


def _publish(out: Path, fid: str, staging: Path, entry: dict[str, Any]) -> bool:
    """Swap the new folder in and record its entry, together, under the lock; False if nothing changed.

    The new manifest is written to a temporary file first: when that fails (a full disk), nothing
    has moved. Only then are the folders swapped and the manifest renamed over the old one, and a
    failed rename puts the old folder back. A kill between the two renames leaves a folder whose
    spec does not match its entry, which the next build sees as stale.
    """
    final = out / fid
    manifest_path = out / MANIFEST
    with _locked(out):
        manifest = _manifest(out)
        old = manifest.get(fid)
        same_files = _same_tree(staging, final)
        if same_files and old is not None and _stable(old) == _stable(entry):
            shutil.rmtree(staging, ignore_errors=True)
            return False
        manifest[fid] = entry
        tmp = jsonio.write_temp(manifest_path, jsonio.dumps({"figures": manifest}, digits=6) + "\n")
        try:
            if same_files:
                os.replace(tmp, manifest_path)
                shutil.rmtree(staging, ignore_errors=True)
            else:
                _swap_in(staging, final, commit=lambda: os.replace(tmp, manifest_path))
        finally:
            tmp.unlink(missing_ok=True)
    return True


def _swap_in(staging: Path, final: Path, commit: Callable[[], None]) -> None:
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    had_old = final.exists()
    if had_old:
        os.rename(final, old)
    try:
        os.rename(staging, final)
    except BaseException:
        if had_old:
            os.rename(old, final)
        raise
    try:
        commit()
    except BaseException:
        os.rename(final, staging)
        if had_old:
            os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _recover(out: Path) -> None:
    """Undo what a killed build left: a half-swapped folder, its staging folders, temporary files."""
    staging_root = out / ".staging"
    dead = [s for s in staging_root.glob("*") if s.is_dir() and not jsonio.pid_alive(_pid_of(s))]
    temps = [p for p in out.glob(".*" + jsonio.TEMP_SUFFIX)]
    if not (dead or temps or any(out.glob("*.old"))):
        return  # nothing to do: take no lock, so a read-only published folder still checks and no-op builds
    with _locked(out):
        for old in out.glob("*.old"):
            final = old.with_name(old.name[: -len(".old")])
            if final.exists():
                shutil.rmtree(old)
            else:
                old.rename(final)
        for staging in staging_root.glob("*"):
            if staging.is_dir() and not jsonio.pid_alive(_pid_of(staging)):
                shutil.rmtree(staging, ignore_errors=True)
        jsonio.clean_temp(out)


def _pid_of(staging: Path) -> int:
    suffix = staging.suffix.lstrip(".")
    return int(suffix) if suffix.isdigit() else 0


def _drop_orphans(out: Path, known: set[str]) -> None:
    manifest = _manifest(out)
    if not any(fid not in known for fid in manifest):
        return
    try:
        with _locked(out):
            manifest = _manifest(out)
            orphans = [fid for fid in manifest if fid not in known]
            for fid in orphans:
                del manifest[fid]
            if orphans:
                jsonio.write_json(out / MANIFEST, {"figures": manifest}, digits=6)
                for fid in orphans:  # after the manifest no longer names them
                    shutil.rmtree(out / fid, ignore_errors=True)
    except OSError as exc:
        log.warning("explorer: could not drop figures that no producer makes any more: %s", _os_error(exc))


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    with open(out / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for dist in TRACKED_VERSIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


@lru_cache(maxsize=1)
def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=paths.REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.REPO, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check(ids: Sequence[str] | None = None, out: Path | None = None, scale: Scale = "full") -> list[str]:
    """Ids of published figures (full scale; or the tests' smoke-scale ones) that are missing or older than their producers.

    Reads sources and hashes files; imports a producer module only when its figures cannot be
    read from its source and its last reading (in .cache/figure-index.json) is out of date.
    """
    out = Path(out) if out else default_out(scale)
    stale = []
    with frozen_files():
        found = scan()
        chosen = select(found.figures, ids, None, found.errors)
        manifest = _manifest(out)
        planned = plan(chosen, out, scale, None, manifest=manifest)
    for p in planned:
        if p.error:
            stale.append(f"{p.figure.id} ({p.error})")
        elif p.stale:
            stale.append(p.figure.id)
    if ids is None:
        stale += [f"{fid} (no producer)" for fid in manifest if fid not in found.figures]
    stale += [f"{path} ({message})" for path, message in found.errors.items()]
    save_source_index()
    return stale
