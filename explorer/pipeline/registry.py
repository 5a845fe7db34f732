"""Figure registration and discovery of the producer modules in build_figures/."""

import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from explorer import paths
from explorer.errors import ExplorerError

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Figure:
    id: str
    title: str
    caption: str
    model: str  # the model that made the figure, stated on the page
    producer: Callable
    article: str  # build_figures/<article>.py
    seed: int = 0
    model_option: bool = False  # True: `--model NAME` recomputes this figure on another model
    inputs: tuple[str, ...] = ()  # extra files (repo-relative) whose content feeds the figure
    source: str = ""  # "file:line" of the producer, for error messages


_REGISTRY: dict[str, Figure] = {}
IMPORT_ERRORS: dict[str, str] = {}  # producer file -> one-line error; its figures are missing, others build
IMPORT_TRACEBACKS: dict[str, str] = {}  # producer file -> the full traceback of that error


def figure(
    id: str,
    *,
    title: str,
    caption: str,
    model: str,
    seed: int = 0,
    model_option: bool = False,
    inputs: Sequence[str] = (),
) -> Callable[[Callable], Callable]:
    """Register the decorated function as the producer of figure `id`.

    The producer takes a FigureContext and returns an Altair chart; the pipeline seeds, times,
    validates (the spec must compile to Vega) and publishes it under docs/figures/<id>/.

    - `id`: stable, unique across the site, lowercase with dashes, prefixed by the article.
    - `title`, `caption`: shown with the figure; the caption says what is drawn and how.
    - `model`: the model that made the figure, shown under it.
    - `seed`: what Python, NumPy and torch are seeded with before the producer runs.
    - `model_option`: True if `--model NAME` may recompute the figure on another model
      (the producer reads `ctx.model`).
    - `inputs`: extra files (repo-relative) whose content feeds the figure; local imports and
      `artifacts.load("name")` calls are found by themselves.

    Pass literals (or module-level constants, f-strings of them, names imported from explorer
    modules): `figures --check` reads them from the source without importing the producer. A
    figure registered any other way (in a loop, with a computed id) still works, at the price of
    one import of its module whenever its source closure changes.
    """

    def register(fn: Callable) -> Callable:
        where = f"{paths.display(inspect.getsourcefile(fn))}:{inspect.getsourcelines(fn)[1]}"
        if not ID_PATTERN.match(id):
            raise ExplorerError(f"{where}: figure id {id!r} must be lowercase letters, digits and dashes")
        if id in _REGISTRY and _REGISTRY[id].source != where:
            raise ExplorerError(f"{where}: figure id {id!r} is already defined at {_REGISTRY[id].source}")
        article = Path(inspect.getsourcefile(fn)).stem
        _REGISTRY[id] = Figure(id, title, caption, model, fn, article, seed, model_option, tuple(inputs), where)
        return fn

    return register


def discover(root: Path | None = None) -> dict[str, Figure]:
    """Import every build_figures/*.py module and return the registered figures, by id.

    A module that fails to import is recorded in IMPORT_ERRORS (its figures are missing, the others
    are returned). Planning and `--check` do not need this: see explorer.pipeline.index.scan.
    """
    root = root or paths.BUILD_FIGURES
    for path in sorted(root.glob("*.py")):
        if not path.name.startswith("_"):
            import_module(path)
    return dict(sorted(_REGISTRY.items()))


def import_module(path: Path) -> str | None:
    """Import one producer module (once per process); return its one-line import error, if any."""
    name, where = f"build_figures.{path.stem}", paths.display(path)
    if where in IMPORT_ERRORS:
        return IMPORT_ERRORS[where]
    if name in sys.modules:
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ExplorerError:  # e.g. a duplicate id: the contributor must fix it before anything builds
        del sys.modules[name]
        raise
    except BaseException as exc:  # a module calling sys.exit() at import must not end the build
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        IMPORT_ERRORS[where] = f"cannot import: {type(exc).__name__}: {' '.join(str(exc).split()) or repr(exc)}"
        IMPORT_TRACEBACKS[where] = "".join(traceback.format_exception(exc))
        return IMPORT_ERRORS[where]
    return None


def figures_of(path: Path) -> list[Figure]:
    """The registered figures whose producers are defined in `path`."""
    prefix = paths.display(path) + ":"
    return [f for f in _REGISTRY.values() if f.source.startswith(prefix)]
