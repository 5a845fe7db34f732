"""Input hashes: a figure is stale when any source file it imports from this repo changes.

The closure follows `import explorer...` and `import build_figures...` statements by reading the
AST, so no code runs. The pipeline's own modules are left out on purpose: a change in how files
are written is announced by bumping FORMAT_VERSION, not by recomputing every figure.

The same closure keys the model cache (explorer.cache) and the long-run artifacts
(explorer.artifacts): `code_files(entry_points)` is every local file the entry points import.
A call `artifacts.load("name")` with a literal name in any file of a figure's closure makes that
artifact's provenance.json an input of the figure, so retraining it makes the figure stale.
"""

import ast
import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from explorer import paths

FORMAT_VERSION = 1
LOCAL_PACKAGES = ("explorer", "build_figures")
NOT_INPUTS = ("explorer.pipeline", "explorer.cli", "explorer.__main__", "explorer.bench")
ARTIFACT_LOADERS = ("load_artifact",)  # plain names that load an artifact; `artifacts.load(...)` too
FIGURE_MODULES = ("explorer.pipeline", "explorer.pipeline.registry")  # where `figure` is imported from


_FROZEN: dict[str, tuple[str, int, int]] | None = None  # stat results while files are taken as unchanging


def _stat_key(path: Path) -> tuple[str, int, int]:
    key = str(path)
    if _FROZEN is not None and key in _FROZEN:
        return _FROZEN[key]
    st = os.stat(path)
    found = key, st.st_mtime_ns, st.st_size
    if _FROZEN is not None:
        _FROZEN[key] = found
    return found


@contextlib.contextmanager
def frozen_files():
    """Within this block, stat each file once: planning reads the same few files for every figure."""
    global _FROZEN
    outer, _FROZEN = _FROZEN, ({} if _FROZEN is None else _FROZEN)
    try:
        yield
    finally:
        _FROZEN = outer


def module_file(name: str) -> Path | None:
    base = paths.REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def module_name(path: Path) -> str:
    return _module_name(str(path), paths.REPO)


@lru_cache(maxsize=4096)
def _module_name(path_str: str, repo: Path) -> str:
    path = Path(path_str).resolve()
    if not path.is_relative_to(repo):
        return f"build_figures.{path.stem}"  # a producer folder outside the checkout (tests)
    rel = path.relative_to(repo).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def parse(path: Path) -> ast.Module:
    """The AST of a source file, cached while the file is unchanged."""
    return _parse(*_stat_key(path))


@lru_cache(maxsize=256)
def _parse(path: str, _mtime: int, _size: int) -> ast.Module:
    return ast.parse(Path(path).read_bytes(), filename=path)


@dataclass(frozen=True)
class SourceInfo:
    """What the hashing needs from one file's text, kept in .cache/source-index.json by content hash."""

    direct: frozenset[str]  # local modules it imports
    parents: frozenset[str]  # their parent packages (whose __init__ runs, but is not followed)
    artifacts: frozenset[str]  # long-run artifacts it loads by a literal name
    registers: bool  # it imports `figure` from the pipeline: it may register figures


_SOURCE_INDEX = {"loaded": False, "dirty": False, "files": {}, "used": set()}
# The cache of parsed imports is only valid for the code that parsed them: a change to how imports
# are read must not be answered from an index this file's previous version wrote.
SOURCE_INDEX_VERSION = "1-" + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _source_index_file() -> Path:
    return paths.CACHE / "source-index.json"


def source_info(path: Path) -> SourceInfo:
    """Imports, artifact loads and figure registration of one file (parsed once per content)."""
    index = _SOURCE_INDEX
    if not index["loaded"]:
        index["loaded"] = True
        try:
            data = json.loads(_source_index_file().read_text())
            if data.get("version") == SOURCE_INDEX_VERSION:
                index["files"] = dict(data["files"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # missing or damaged: only a cache
    key = f"{display(path)}|{file_digest(path).hex()}"
    index["used"].add(key)
    found = index["files"].get(key)
    if isinstance(found, list) and len(found) == 4:
        return SourceInfo(frozenset(found[0]), frozenset(found[1]), frozenset(found[2]), bool(found[3]))
    info = _read_source(Path(path))
    index["files"][key] = [sorted(info.direct), sorted(info.parents), sorted(info.artifacts), info.registers]
    index["dirty"] = True
    return info


def save_source_index() -> None:
    """Write the per-file cache if it changed (a read-only cache only costs speed)."""
    index = _SOURCE_INDEX
    if not index["dirty"]:
        return
    used_paths = {k.rpartition("|")[0] for k in index["used"]}
    keep = {k: v for k, v in index["files"].items() if k in index["used"] or (k.rpartition("|")[0] not in used_paths and (paths.REPO / k.rpartition("|")[0]).exists())}
    with contextlib.suppress(OSError):
        from explorer import jsonio

        jsonio.write_atomic(_source_index_file(), json.dumps({"version": SOURCE_INDEX_VERSION, "files": keep}, sort_keys=True))
        index["dirty"] = False


def _imports(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    info = source_info(path)
    return info.direct, info.parents


def _read_source(path: Path) -> SourceInfo:
    """Local modules imported by `path` (incl. `from x import submodule`), and their parent packages.

    A parent package's __init__ runs on import, so its own text is an input; what *it* imports is
    not followed unless the module is imported by name, so `import explorer.models.mlp` does not
    make a figure depend on every model in explorer/models.
    """
    tree = parse(path)
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    artifacts: set[str] = set()
    registers = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:  # `from pkg import mod` imports a module; `from pkg import name` uses pkg itself
                sub = f"{mod}.{alias.name}"
                found.add(sub if module_file(sub) is not None else mod)
                registers |= mod in FIGURE_MODULES and alias.name == "figure"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "load" and isinstance(func.value, ast.Name) and func.value.id == "artifacts") or (
                isinstance(func, ast.Name) and func.id in ARTIFACT_LOADERS
            ):
                artifacts.add(node.args[0].value)
    direct = {name for name in found if name.split(".")[0] in LOCAL_PACKAGES}
    parents = {".".join(name.split(".")[:i]) for name in direct for i in range(1, name.count(".") + 1)}
    return SourceInfo(frozenset(direct), frozenset(parents - direct), frozenset(artifacts), registers)


_CLOSURES: dict[tuple, tuple[tuple, tuple[Path, ...]]] = {}


def source_closure(path: Path, not_inputs: tuple[str, ...] = NOT_INPUTS) -> tuple[Path, ...]:
    """All local source files `path` depends on (itself included), sorted.

    Modules named in `not_inputs` (and their submodules) are neither included nor followed.
    """
    key = (str(path), not_inputs, paths.REPO)
    known = _CLOSURES.get(key)
    if known is not None:
        stats, closure = known
        try:
            if all(_stat_key(f) == s for f, s in zip(closure, stats)):
                return closure  # no file of the closure changed, so neither did its imports
        except OSError:
            pass
    closure = _source_closure(Path(path), not_inputs)
    _CLOSURES[key] = (tuple(_stat_key(f) for f in closure), closure)
    return closure


def _source_closure(path: Path, not_inputs: tuple[str, ...]) -> tuple[Path, ...]:
    followed: set[Path] = set()
    parents: set[Path] = set()
    todo = [Path(path)]
    while todo:
        current = todo.pop()
        if current in followed:
            continue
        followed.add(current)
        direct, parent_packages = _imports(current)
        for name in direct:
            file = module_file(name)
            if file is not None and not name.startswith(not_inputs):
                todo.append(file)
        parents.update(f for f in map(module_file, parent_packages) if f is not None and not _excluded(f, not_inputs))
    return tuple(sorted(followed | parents))


def _excluded(file: Path, not_inputs: tuple[str, ...]) -> bool:
    name = module_name(file)
    return any(name == n or name.startswith(n + ".") for n in not_inputs)


def code_files(entry_points: Iterable[Path], not_inputs: tuple[str, ...] = NOT_INPUTS) -> tuple[Path, ...]:
    """The union of the closures of several entry-point files, sorted."""
    files: set[Path] = set()
    for entry in entry_points:
        files.update(source_closure(Path(entry), not_inputs))
    return tuple(sorted(files))


def file_digest(path: Path) -> bytes:
    """SHA-256 of a file's bytes, cached while the file is unchanged."""
    return _file_digest(*_stat_key(path))


@lru_cache(maxsize=4096)
def _file_digest(path: str, _mtime: int, _size: int) -> bytes:
    return hashlib.sha256(Path(path).read_bytes()).digest()


@lru_cache(maxsize=4096)
def _display(path_str: str, _repo: Path) -> str:
    return paths.display(Path(path_str))


def display(path: Path) -> str:
    """paths.display, remembered (it resolves symlinks, which costs system calls)."""
    return _display(str(path), paths.REPO)


def files_digest(files: Iterable[Path], salt: str = "") -> str:
    """One hex digest over files' repo-relative names and contents (the same on every clone)."""
    h = hashlib.sha256(salt.encode())
    for file in files:
        h.update(display(file).encode())
        h.update(file_digest(file))
    return h.hexdigest()


def per_file_digests(files: Iterable[Path]) -> dict[str, str]:
    """{repo-relative path: sha256 hex}: what a provenance record stores to say which file changed."""
    return {display(f): file_digest(f).hex() for f in files}


def artifact_refs(files: Iterable[Path]) -> tuple[str, ...]:
    """Names of long-run artifacts loaded with a literal name (`artifacts.load("x")`) in these files."""
    return tuple(sorted({name for file in files for name in source_info(file).artifacts}))


def input_hash(figure_id: str, article_file: Path, scale: str, seed: int, model: str, inputs: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT_VERSION}|{figure_id}|{scale}|{seed}|{model}".encode())
    closure = source_closure(article_file)
    files = list(closure) + [paths.REPO / p for p in inputs]
    for file in files:
        h.update(display(file).encode())
        h.update(file_digest(file))
    for name in artifact_refs(closure):  # only figures that load an artifact hash anything here
        provenance = paths.MODELS / name / "provenance.json"
        h.update(f"artifact:{name}".encode())
        h.update(file_digest(provenance) if provenance.exists() else b"missing")
    return h.hexdigest()[:20]
