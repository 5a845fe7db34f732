"""Figure metadata without running producers: `@figure(...)` decorators read from the AST.

`figures --check` and the planning step of a build need, for every figure, its id, article,
seed, model, model_option and inputs. Importing the producer modules to learn them costs seconds
(torch, TransformerLens); reading them from the source costs milliseconds. A module is read
statically when every `figure(...)` in it decorates a top-level function and its arguments are
literals, or names bound once at module level to literals (also through `from explorer.x import
NAME`), f-strings and `+` of those. Any other module (figures registered in a loop, a computed
id, a module that does not import `figure` at all) is imported once; what it registered is kept
in .cache/figure-index.json, keyed by the hash of the module's source closure, so the next check
reads it from there.
"""

import ast
import contextlib
import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer import jsonio, paths
from explorer.errors import ExplorerError
from explorer.pipeline import hashing
from explorer.pipeline.registry import ID_PATTERN, Figure

# Valid only for the code that wrote it (this file and the hashing it relies on).
INDEX_VERSION = "1-" + hashlib.sha256(Path(__file__).read_bytes() + Path(hashing.__file__).read_bytes()).hexdigest()[:16]
FIGURE_MODULES = hashing.FIGURE_MODULES
REQUIRED = ("title", "caption", "model")
OPTIONAL = {"seed": 0, "model_option": False, "inputs": ()}


@dataclass(frozen=True)
class FigureInfo:
    """What planning needs to know about a figure: everything its input hash depends on."""

    id: str
    article: str
    model: str
    seed: int = 0
    model_option: bool = False
    inputs: tuple[str, ...] = ()
    source: str = ""
    title: str = ""

    @classmethod
    def of(cls, fig: Figure) -> "FigureInfo":
        return cls(fig.id, fig.article, fig.model, fig.seed, fig.model_option, tuple(fig.inputs), fig.source, fig.title)


@dataclass
class Scan:
    figures: dict[str, FigureInfo] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # producer file -> one-line error
    imported: list[str] = field(default_factory=list)  # modules that had to be imported to be read


class NotStatic(Exception):
    """The module's figures cannot be read from its source alone."""


def module_files(root: Path | None = None) -> list[Path]:
    root = root or paths.BUILD_FIGURES
    return [p for p in sorted(root.glob("*.py")) if not p.name.startswith("_")]


def scan(root: Path | None = None, index_file: Path | None = None) -> Scan:
    """Every figure of every producer module, importing only modules that cannot be read statically."""
    from explorer.pipeline import registry

    index_file = index_file or paths.CACHE / "figure-index.json"
    index = _read_index(index_file)
    changed = False
    result = Scan()
    for path in module_files(root):
        where = paths.display(path)
        try:
            digest = hashing.files_digest(hashing.source_closure(path), salt=f"index{INDEX_VERSION}")
        except (SyntaxError, OSError, ValueError) as exc:
            result.errors[where] = _unreadable(path, exc)
            continue
        infos = _remembered(index.get(where), digest)
        if infos is None:
            try:
                infos = static_figures(path)
            except NotStatic:
                error = registry.import_module(path)
                result.imported.append(where)
                if error:
                    result.errors[where] = error
                    continue
                infos = [FigureInfo.of(f) for f in registry.figures_of(path)]
            index[where] = {"closure": digest, "figures": [asdict(i) for i in infos]}
            changed = True
        for info in infos:
            other = result.figures.get(info.id)
            if other is not None and other.source != info.source:
                raise ExplorerError(f"{info.source}: figure id {info.id!r} is already defined at {other.source}")
            result.figures[info.id] = info
    if changed:
        _write_index(index_file, index)
    hashing.save_source_index()
    result.figures = dict(sorted(result.figures.items()))
    return result


def _remembered(known: Any, digest: str) -> list[FigureInfo] | None:
    """The figures recorded for a module whose closure still hashes to `digest`; None if unusable."""
    if not isinstance(known, dict) or known.get("closure") != digest:
        return None
    try:
        return [FigureInfo(**{**f, "inputs": tuple(f["inputs"])}) for f in known["figures"]]
    except (TypeError, KeyError):  # written by another version: read the module again
        return None


def _unreadable(path: Path, exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        file = Path(exc.filename) if exc.filename else path
        if file.resolve() == path.resolve():
            return f"cannot import: SyntaxError: {exc.msg} (line {exc.lineno})"
        return f"cannot read its imports: SyntaxError in {paths.display(file)} line {exc.lineno}: {exc.msg}"
    return f"cannot read its imports: {type(exc).__name__}: {exc}"


def _read_index(path: Path) -> dict[str, Any]:
    try:
        data = jsonio.read_json(path)
        if data.get("version") == INDEX_VERSION and isinstance(data.get("modules"), dict):
            return data["modules"]
    except (OSError, ValueError, AttributeError):
        pass  # missing or damaged: it is only a cache, rebuilt by importing
    return {}


def _write_index(path: Path, modules: dict[str, Any]) -> None:
    live = {k: v for k, v in modules.items() if (paths.REPO / k).exists()}  # drop modules that are gone (tests' temp folders)
    with contextlib.suppress(OSError):  # a read-only cache only costs speed
        jsonio.write_json(path, {"version": INDEX_VERSION, "modules": live})


# --- reading decorators -------------------------------------------------------------------------


def static_figures(path: Path) -> list[FigureInfo]:
    """The figures a module registers, read from its source; NotStatic when that is not possible."""
    module = _Module.get(path)
    if not module.figure_names:
        raise NotStatic("the module does not import `figure` from explorer.pipeline")
    for other in hashing.source_closure(path):
        if other != path and hashing.source_info(other).registers:
            raise NotStatic(f"{paths.display(other)} (imported) registers figures too")
    decorators: list[tuple[ast.FunctionDef, ast.Call]] = []
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id in module.figure_names:
                    decorators.append((node, dec))
    allowed = {id(dec.func) for _, dec in decorators}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Name) and node.id in module.figure_names and id(node) not in allowed:
            raise NotStatic(f"line {node.lineno}: `{node.id}` used other than as a top-level decorator")
        if isinstance(node, ast.Attribute) and node.attr == "figure":
            raise NotStatic(f"line {node.lineno}: `.figure` attribute")
    infos = []
    where_file = paths.display(path)
    for fn, call in decorators:
        if len(call.args) != 1 or any(k.arg is None for k in call.keywords):
            raise NotStatic(f"line {call.lineno}: figure(...) takes the id and keywords")
        kwargs = {k.arg: k.value for k in call.keywords}
        if set(kwargs) - set(REQUIRED) - set(OPTIONAL) or set(REQUIRED) - set(kwargs):
            raise NotStatic(f"line {call.lineno}: unexpected or missing figure(...) arguments")
        fid = module.evaluate(call.args[0])
        values = {k: module.evaluate(kwargs[k]) if k in kwargs else default for k, default in OPTIONAL.items()}
        model = module.evaluate(kwargs["model"])
        try:
            title = module.evaluate(kwargs["title"])
        except NotStatic:
            title = ""
        source = f"{where_file}:{min(d.lineno for d in fn.decorator_list)}"
        if not (isinstance(fid, str) and isinstance(model, str) and isinstance(values["seed"], int) and isinstance(values["model_option"], bool)):
            raise NotStatic(f"line {call.lineno}: argument of an unexpected type")
        if not ID_PATTERN.match(fid):
            raise ExplorerError(f"{source}: figure id {fid!r} must be lowercase letters, digits and dashes")
        inputs = tuple(values["inputs"])
        if not all(isinstance(i, str) for i in inputs):
            raise NotStatic(f"line {call.lineno}: inputs must be strings")
        infos.append(FigureInfo(fid, path.stem, model, values["seed"], values["model_option"], inputs, source, title if isinstance(title, str) else ""))
    return infos


_UNBOUND = object()  # a name bound by something other than `NAME = <expression>`


class _Module:
    """One source file's module-level bindings, for evaluating decorator arguments."""

    _cache: dict[tuple, "_Module"] = {}

    @classmethod
    def get(cls, path: Path) -> "_Module":
        key = hashing._stat_key(path)
        if key not in cls._cache:
            cls._cache[key] = cls(path)
        return cls._cache[key]

    def __init__(self, path: Path):
        self.path = path
        self.tree = hashing.parse(path)
        self.bindings: dict[str, list[Any]] = defaultdict(list)
        self.imports: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attribute or None)
        self.figure_names: set[str] = set()
        self._evaluating: set[str] = set()
        for node in self.tree.body:
            self._bind(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Global):
                for name in node.names:
                    self.bindings[name].append(_UNBOUND)

    def _bind(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            for t in node.targets:
                self.bindings[t.id].append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            self.bindings[node.target.id].append(node.value)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                name = alias.asname or alias.name
                self.bindings[name].append(("import", node.module, alias.name))
                if node.module in FIGURE_MODULES and alias.name == "figure":
                    self.figure_names.add(name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                self.bindings[name].append(("import", alias.name if alias.asname else name, None))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.bindings[node.name].append(_UNBOUND)
        else:  # for/if/with/try/augmented assignment...: whatever they bind is not a constant
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    self.bindings[sub.id].append(_UNBOUND)
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for alias in sub.names:
                        self.bindings[(alias.asname or alias.name).split(".")[0]].append(_UNBOUND)
                        if isinstance(sub, ast.ImportFrom) and alias.name == "figure":
                            self.figure_names.add(alias.asname or alias.name)  # a conditional import: not static
                            self.bindings[alias.asname or alias.name].append(_UNBOUND)

    def evaluate(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            values = [self.evaluate(e) for e in node.elts]
            return tuple(values) if isinstance(node, ast.Tuple) else values
        if isinstance(node, ast.JoinedStr):
            return "".join(self._format(v) for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if type(left) is type(right) and isinstance(left, (str, int, tuple, list)) and not isinstance(left, bool):
                return left + right
            raise NotStatic(f"line {node.lineno}: `+` of {type(left).__name__} and {type(right).__name__}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.evaluate(node.operand)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node.lineno)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = self._module_of(node.value.id)
            if target is not None:
                return target.lookup(node.attr, node.lineno)
        raise NotStatic(f"line {getattr(node, 'lineno', '?')}: {type(node).__name__} is not a literal")

    def _format(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.FormattedValue):
            value = self.evaluate(node.value)
            value = {-1: value, 115: str(value), 114: repr(value), 97: ascii(value)}[node.conversion]
            spec = self.evaluate(node.format_spec) if node.format_spec is not None else ""
            return format(value, spec)
        raise NotStatic("f-string part")

    def lookup(self, name: str, lineno: int) -> Any:
        bound = self.bindings.get(name, [])
        if len(bound) != 1 or bound[0] is _UNBOUND or name in self._evaluating:
            raise NotStatic(f"line {lineno}: `{name}` is not bound once to a literal")
        value = bound[0]
        if isinstance(value, tuple):  # ("import", module, attribute)
            _, module, attribute = value
            target = _local_module(module)
            if attribute is None or target is None or hashing.module_file(f"{module}.{attribute}") is not None:
                raise NotStatic(f"line {lineno}: `{name}` is a module or comes from outside this repository")
            return target.lookup(attribute, lineno)
        self._evaluating.add(name)
        try:
            return self.evaluate(value)
        finally:
            self._evaluating.discard(name)

    def _module_of(self, name: str) -> "_Module | None":
        bound = self.bindings.get(name, [])
        if len(bound) != 1 or not isinstance(bound[0], tuple):
            return None
        _, module, attribute = bound[0]
        return _local_module(f"{module}.{attribute}" if attribute else module)


def _local_module(name: str) -> _Module | None:
    if name.split(".")[0] not in hashing.LOCAL_PACKAGES:
        return None
    file = hashing.module_file(name)
    return _Module.get(file) if file is not None else None
