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


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Local modules imported by `path` (incl. `from x import submodule`), and their parent packages.

    A parent package's __init__ runs on import, so its own text is an input; what *it* imports is
    not followed unless the module is imported by name, so `import explorer.models.mlp` does not
    make a figure depend on every model in explorer/models.
    """
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
            for alias in node.names:  # `from pkg import mod` imports a module; `from pkg import name` uses pkg itself
                sub = f"{mod}.{alias.name}"
                found.add(sub if module_file(sub) is not None else mod)
    direct = {name for name in found if name.split(".")[0] in LOCAL_PACKAGES}
    parents = {".".join(name.split(".")[:i]) for name in direct for i in range(1, name.count(".") + 1)}
    return direct, parents - direct


@lru_cache(maxsize=None)
def source_closure(path: Path) -> tuple[Path, ...]:
    """All local source files `path` depends on (itself included), sorted."""
    followed: set[Path] = set()
    parents: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in followed:
            continue
        followed.add(current)
        direct, parent_packages = _imports(current)
        for name in direct - set(NOT_INPUTS):
            file = module_file(name)
            if file is not None and not name.startswith(NOT_INPUTS):
                todo.append(file)
        parents.update(f for f in map(module_file, parent_packages) if f is not None)
    return tuple(sorted(followed | parents))


def input_hash(figure_id: str, article_file: Path, scale: str, seed: int, model: str, inputs: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT_VERSION}|{figure_id}|{scale}|{seed}|{model}".encode())
    files = list(source_closure(article_file)) + [paths.REPO / p for p in inputs]
    for file in files:
        h.update(paths.display(file).encode())
        h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()[:20]
