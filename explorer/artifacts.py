"""Long runs: experiments too slow for `make figures`, trained once and committed with provenance.

A long run is declared in explorer/longruns/<module>.py with the `long_run` decorator on its
training function:

    @long_run("grokking-mod97", config={"p": 97, "steps": 40_000, "seed": 0})
    def train(config: dict, device) -> Trained:
        ...
        return Trained(weights=model.state_dict(), checkpoints={1000: ..., 2000: ...}, epochs=...)

`python -m explorer models NAME` (`make models NAME=...`) trains it and writes
models/NAME/weights.safetensors (final weights and checkpoints) and models/NAME/provenance.json
(config, code hash and per-file hashes of the training code's import closure, tokens or epochs,
device, wall time, checkpoint list, versions). Both files are committed, so a fresh clone and CI
never retrain. Producers read the result with `artifacts.load(NAME)`, which fails with one line
when the artifact is missing or was trained from another config or other code. Call it with a
literal name: the pipeline then makes the artifact's provenance an input of the figure.
"""

import hashlib
import importlib.util
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer import jsonio, paths
from explorer.errors import ExplorerError, UnknownName

if TYPE_CHECKING:
    from torch import Tensor

FORMAT = 1
BUDGET_BYTES = 50_000_000  # everything under models/, together
WEIGHTS = "weights.safetensors"
PROVENANCE = "provenance.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
RUNS_DIR = Path(os.environ.get("EXPLORER_LONGRUNS", paths.REPO / "explorer" / "longruns"))


class ArtifactError(ExplorerError):
    """A long-run artifact is missing, or no longer matches its registered config or code."""


@dataclass
class Trained:
    """What a long run's training function returns."""

    weights: dict[str, "Tensor"]  # the final weights (a state dict)
    checkpoints: dict[int, dict[str, "Tensor"]] = field(default_factory=dict)  # step or epoch -> weights
    tokens: int | None = None  # tokens trained on (language models)
    epochs: int | None = None  # passes over the data (small data sets)
    metrics: dict[str, float] = field(default_factory=dict)  # final numbers worth recording (losses, accuracies)


@dataclass(frozen=True)
class LongRun:
    """A registered long run: its name, config, training function and the code it depends on."""

    name: str
    config: Mapping[str, Any]
    train: Callable[[dict[str, Any], Any], Trained]  # (config, device) -> Trained
    code: tuple[Any, ...] = ()  # entry points whose local-import closures are hashed (default: train's file)
    description: str = ""

    def code_files(self) -> tuple[Path, ...]:
        from explorer import cache

        return cache.code_files(self.code or (self.train,))


@dataclass(frozen=True)
class Artifact:
    """A stored long run, checked against its registration: weights, checkpoints and provenance."""

    name: str
    weights: dict[str, "Tensor"]
    checkpoints: dict[int, dict[str, "Tensor"]]
    provenance: dict[str, Any]


_RUNS: dict[str, LongRun] = {}
_discovered = False


def long_run(name: str, *, config: Mapping[str, Any], code: Iterable[Any] = (), description: str = "") -> Callable:
    """Register the decorated function `train(config, device) -> Trained` as long run `name`.

    `code`: the entry points of the training code (modules, functions or paths) whose import
    closures key the artifact; by default the file that defines the function.
    """

    def decorate(fn: Callable) -> Callable:
        register(LongRun(name, dict(config), fn, tuple(code), description or (fn.__doc__ or "").strip().split("\n")[0]))
        return fn

    return decorate


def register(run: LongRun) -> LongRun:
    if not NAME_PATTERN.match(run.name):
        raise ExplorerError(f"long run name {run.name!r} must be lowercase letters, digits and dashes")
    other = _RUNS.get(run.name)
    if other is not None and other.train is not run.train and _where(other.train) != _where(run.train):
        raise ExplorerError(f"long run {run.name!r} is already defined at {_where(other.train)}")
    _RUNS[run.name] = run
    return run


def _where(fn: Callable) -> str:
    code = getattr(fn, "__code__", None)
    return f"{paths.display(code.co_filename)}:{code.co_firstlineno}" if code else repr(fn)


def runs() -> dict[str, LongRun]:
    """Every registered long run (imports the modules in explorer/longruns/ once)."""
    global _discovered
    if not _discovered:
        _discovered = True
        for path in sorted(RUNS_DIR.glob("*.py")):
            if path.name.startswith("_"):
                continue
            name = f"explorer.longruns.{path.stem}" if path.parent == paths.REPO / "explorer" / "longruns" else f"longruns_{path.stem}"
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
    return dict(sorted(_RUNS.items()))


def get(name: str) -> LongRun:
    known = runs()
    if name not in known:
        if not known:
            raise ArtifactError(f"unknown long run {name!r}: none is registered (declare one in explorer/longruns/)")
        raise UnknownName("long run", name, known)
    return known[name]


def folder(name: str) -> Path:
    return paths.MODELS / name


def provenance_file(name: str) -> Path:
    return folder(name) / PROVENANCE


def display(path: Path) -> str:
    return paths.display(path)


def code_record(run: LongRun) -> tuple[str, dict[str, str]]:
    """(code hash, {file: sha256}) of the run's training code closure, read from the files."""
    from explorer.pipeline import hashing

    files = run.code_files()
    return hashing.files_digest(files, salt=f"artifact{FORMAT}")[:20], hashing.per_file_digests(files)


def _canonical(config: Mapping[str, Any]) -> str:
    return jsonio.dumps(dict(config), digits=12)


def train(name: str, device: str | None = None) -> dict[str, Any]:
    """Train long run `name` and store it in models/<name>/; return its provenance record."""
    run = get(name)
    import torch
    from safetensors.torch import save

    from explorer.device import pick_device, seed_everything
    from explorer.pipeline.build import _git_commit, _versions

    device = torch.device(device) if device else pick_device()
    code_hash, code_files = code_record(run)
    seed_everything(int(run.config.get("seed", 0)))
    start = time.perf_counter()
    result = run.train(dict(run.config), device)
    wall = time.perf_counter() - start
    if not isinstance(result, Trained):
        raise ArtifactError(f"long run {name!r}: its training function returned {type(result).__name__}, not artifacts.Trained")
    tensors = {f"weights/{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in result.weights.items()}
    for step, weights in sorted(result.checkpoints.items()):
        tensors.update({f"checkpoints/{int(step)}/{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in weights.items()})
    blob = save(tensors, metadata={"explorer": f"long run {name}"})
    record = {
        "format": FORMAT,
        "name": name,
        "description": run.description,
        "config": dict(run.config),
        "code_hash": code_hash,
        "code_files": code_files,
        "tokens": result.tokens,
        "epochs": result.epochs,
        "metrics": result.metrics,
        "checkpoints": sorted(int(s) for s in result.checkpoints),
        "device": str(device),
        "wall_time_s": round(wall, 1),
        "trained_at": time.strftime("%Y-%m-%d"),
        "versions": _versions() | {"platform": platform.platform()},
        "git_commit": _git_commit(),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "weights_bytes": len(blob),
    }
    others = stored_bytes() - _folder_bytes(folder(name))
    if others + len(blob) > BUDGET_BYTES:
        raise ArtifactError(
            f"long run {name!r}: {len(blob) / 1e6:.1f} MB of weights would take models/ to {(others + len(blob)) / 1e6:.1f} MB, "
            f"over its {BUDGET_BYTES / 1e6:.0f} MB budget; keep fewer checkpoints or store them in half precision"
        )
    _write_folder(folder(name), blob, record)
    return jsonio.read_json(provenance_file(name))


def _write_folder(final: Path, blob: bytes, record: dict[str, Any]) -> None:
    """Write both files into a new folder and swap it in, so a reader never sees half an artifact."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        jsonio.write_atomic(staging / WEIGHTS, blob)
        jsonio.write_atomic(staging / PROVENANCE, jsonio.dumps(record, digits=8) + "\n")
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.rename(final, old)
        os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def verify(name: str) -> list[str]:
    """What is wrong with the stored artifact of `name` (one line each); [] when it is current."""
    run = get(name)
    weights, prov_path = folder(name) / WEIGHTS, provenance_file(name)
    retrain = f"retrain with `make models NAME={name}`"
    if not weights.exists() or not prov_path.exists():
        missing = weights if not weights.exists() else prov_path
        return [f"artifact {name!r} is missing: {paths.display(missing)} not found; train it with `make models NAME={name}`"]
    try:
        record = jsonio.read_json(prov_path)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return [f"artifact {name!r}: {paths.display(prov_path)} is unreadable ({' '.join(str(exc).split())}); {retrain}"]
    problems = []
    if _canonical(record.get("config", {})) != _canonical(run.config):
        stored, now = record.get("config", {}), dict(run.config)
        keys = sorted(k for k in set(stored) | set(now) if jsonio.dumps(stored.get(k), 12) != jsonio.dumps(now.get(k), 12))
        problems.append(f"artifact {name!r} was trained with another config (differs in: {', '.join(keys)}); {retrain}")
    code_hash, files = code_record(run)
    if record.get("code_hash") != code_hash:
        stored_files = record.get("code_files", {}) if isinstance(record.get("code_files"), dict) else {}
        changed = sorted(f for f in set(files) | set(stored_files) if files.get(f) != stored_files.get(f))
        problems.append(f"artifact {name!r} was trained by other code (changed since: {', '.join(changed) or 'unknown'}); {retrain}")
    try:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    except OSError as exc:
        return problems + [f"artifact {name!r}: {paths.display(weights)} is unreadable ({exc.strerror}); {retrain}"]
    if digest != record.get("weights_sha256"):
        problems.append(f"artifact {name!r}: {paths.display(weights)} does not match the sha256 in its provenance (corrupt or replaced); {retrain}")
    return problems


def load(name: str) -> Artifact:
    """The stored artifact of long run `name`; ArtifactError (one line) if it is missing or out of date."""
    problems = verify(name)
    if problems:
        raise ArtifactError(problems[0] + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""))
    from safetensors.torch import load_file

    tensors = load_file(folder(name) / WEIGHTS)
    weights = {k[len("weights/") :]: v for k, v in tensors.items() if k.startswith("weights/")}
    checkpoints: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("checkpoints/"):
            _, step, param = key.split("/", 2)
            checkpoints.setdefault(int(step), {})[param] = value
    return Artifact(name, weights, dict(sorted(checkpoints.items())), jsonio.read_json(provenance_file(name)))


def stored() -> list[str]:
    """Names of the artifacts stored under models/ (folders holding a provenance file)."""
    if not paths.MODELS.is_dir():
        return []
    return sorted(p.parent.name for p in paths.MODELS.glob(f"*/{PROVENANCE}") if not p.parent.name.startswith("."))


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def stored_bytes() -> int:
    """Bytes of everything under models/ (the budget is BUDGET_BYTES)."""
    return _folder_bytes(paths.MODELS)


def status() -> dict[str, str]:
    """{name: "ok" or what is wrong}, for every registered run and every stored artifact."""
    known = runs()
    result = {}
    for name in sorted(set(known) | set(stored())):
        if name not in known:
            result[name] = f"stored in {paths.display(folder(name))} but no long run of that name is registered"
            continue
        problems = verify(name)
        result[name] = "ok" if not problems else "; ".join(problems)
    return result
