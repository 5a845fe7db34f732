"""Input hashes: a figure is stale when any source file it imports from this repo changes.

The closure follows `import explorer...` and `import build_figures...` statements by reading the
AST, so no code runs. The pipeline's own modules are left out on purpose: a change in how files
are written is announced by bumping FORMAT_VERSION, not by recomputing every figure.
"""

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

from explorer import paths

FORMAT_VERSION = 1
LOCAL_PACKAGES = ("explorer", "build_figures")
NOT_INPUTS = ("explorer.pipeline", "explorer.cli", "explorer.__main__", "explorer.bench")


def module_file(name: str) -> Path | None:
    base = paths.REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def module_name(path: Path) -> str:
    if not path.resolve().is_relative_to(paths.REPO):
        return f"build_figures.{path.stem}"  # a producer folder outside the checkout (tests)
    rel = path.resolve().relative_to(paths.REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Names of local modules imported by `path`, including parents and `from x import submodule`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    local: set[str] = set()
    for name in found:
        if name.split(".")[0] not in LOCAL_PACKAGES:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            local.add(".".join(parts[:i]))
    return local


@lru_cache(maxsize=None)
def source_closure(path: Path) -> tuple[Path, ...]:
    """All local source files `path` depends on (itself included), sorted."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            if name.startswith(NOT_INPUTS):
                continue
            file = module_file(name)
            if file is not None and file not in seen:
                todo.append(file)
    return tuple(sorted(seen))


def input_hash(figure_id: str, article_file: Path, scale: str, seed: int, model: str, inputs: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT_VERSION}|{figure_id}|{scale}|{seed}|{model}".encode())
    files = list(source_closure(article_file)) + [paths.REPO / p for p in inputs]
    for file in files:
        h.update(paths.display(file).encode())
        h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()[:20]
