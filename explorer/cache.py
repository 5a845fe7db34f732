"""A disk cache for trained models and other expensive results.

An entry is keyed by a name, a JSON-able config and the source of the code that produces it:
the local-import closure of the `code` entry points (explorer.pipeline.hashing.code_files), so
changing a hyper-parameter or any module the training code imports retrains, while re-plotting
never does. Entries live under .cache/models/<name>/ (outside git).

Entries hold data, never code: tensors (and NumPy arrays) go into a safetensors file, and the
structure around them (dicts, lists, tuples, numbers, strings, dataclasses of this repository)
into JSON inside its header. Nothing is unpickled, so a planted file cannot run code: a file that
is not such an entry, or whose SHA-256 does not match the checksum beside it, is reported on one
line and rebuilt.
"""

import dataclasses
import hashlib
import importlib
import inspect
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from explorer import jsonio, paths
from explorer.pipeline import hashing

T = TypeVar("T")
log = logging.getLogger(__name__)

FORMAT = 2  # 1: torch.save pickles (.pt), no longer read; 2: safetensors + JSON structure
SUFFIX = ".safetensors"
CodeRef = ModuleType | Callable | type | str | Path


class CacheFormatError(ValueError):
    """A cache file that is not an entry this module wrote."""


def entry_files(code: Iterable[CodeRef]) -> list[Path]:
    """The source files of the entry points: modules, functions, classes, or paths (repo-relative or absolute)."""
    files = []
    for obj in code:
        if isinstance(obj, (str, Path)):
            path = Path(obj)
            files.append(path if path.is_absolute() else paths.REPO / path)
        elif isinstance(obj, ModuleType):
            files.append(Path(obj.__file__))
        else:
            source = inspect.getsourcefile(obj) or inspect.getsourcefile(sys.modules[obj.__module__])
            files.append(Path(source))
    return files


# The cache's own code is not an input of what it stores: a change to how entries are written
# bumps FORMAT instead of retraining everything.
NOT_INPUTS = (*hashing.NOT_INPUTS, "explorer.cache", "explorer.artifacts")


def code_files(code: Iterable[CodeRef]) -> tuple[Path, ...]:
    """Every local source file the entry points import, themselves included (what a key hashes)."""
    return hashing.code_files((f.resolve() for f in entry_files(code)), NOT_INPUTS)


def cache_key(name: str, config: Mapping[str, Any], code: Iterable[CodeRef] = ()) -> str:
    """The entry's key: its name, its config and the closure of its code entry points."""
    h = hashlib.sha256()
    h.update(f"cache{FORMAT}|{name}|".encode())
    h.update(jsonio.dumps(dict(config), digits=12).encode())
    h.update(hashing.files_digest(code_files(code)).encode())
    return h.hexdigest()[:20]


def entry_path(name: str, key: str) -> Path:
    return paths.CACHE / "models" / name / f"{key}{SUFFIX}"


def cached(
    name: str,
    config: Mapping[str, Any],
    build: Callable[[], T],
    code: Iterable[CodeRef] = (),
) -> T:
    """Return `build()`'s result for this config and code, computing it only when not cached.

    `code` lists the entry points of the code that computes the result (modules, functions,
    classes or file paths); the key hashes every local file they import, recursively, so list
    the training module, not each helper it uses. With no `code`, the file that defines `build`
    is the entry point. Keep plotting code out of the closure: editing it should not retrain.

    `build` must return data: tensors, NumPy arrays and scalars, numbers (NaN and infinities too),
    strings, None, and lists, tuples, dicts and dataclasses (defined in this repository) of those.
    The result is returned as read back from the entry, so a cold and a warm run see the same values.
    """
    code = list(code) or [build]
    key = cache_key(name, config, code)
    path = entry_path(name, key)
    value = _load(path)
    if value is not _MISSING:
        return value
    blob = encode(build())
    value = decode(blob)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        jsonio.clean_temp(path.parent)  # temp files of a run that was killed while writing
        jsonio.write_atomic(path, blob)
        jsonio.write_atomic(path.with_suffix(".sha256"), hashlib.sha256(blob).hexdigest())
        meta = {"name": name, "config": dict(config), "code": [paths.display(f) for f in code_files(code)]}
        jsonio.write_json(path.with_suffix(".json"), meta, digits=12)
    except OSError as exc:
        log.warning("explorer: cannot write cache entry %s (%s); continuing without caching it", paths.display(path), exc.strerror or exc)
    return value


_MISSING = object()


def _load(path: Path) -> Any:
    if not path.exists():
        return _MISSING
    where = paths.display(path)
    digest_file = path.with_suffix(".sha256")
    try:
        blob = path.read_bytes()
        expected = digest_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        log.warning("explorer: cache entry %s has no checksum file %s; rebuilding", where, paths.display(digest_file))
        return _MISSING
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        log.warning("explorer: cache checksum %s is unreadable (%s); rebuilding %s", paths.display(digest_file), reason, where)
        return _MISSING
    if expected != hashlib.sha256(blob).hexdigest():
        log.warning("explorer: cache entry %s is corrupt (checksum mismatch); rebuilding", where)
        return _MISSING
    try:
        return decode(blob)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, the answer is to rebuild
        log.warning("explorer: cache entry %s is not a tensors-and-data entry (%s); rebuilding", where, " ".join(str(exc).split()))
        return _MISSING


# --- encoding: tensors into safetensors, everything else into JSON in its header ---------------------

_META_KEY = "explorer"
_LOCAL_MODULES = ("explorer.", "build_figures.")


def encode(value: Any) -> bytes:
    """The bytes of a cache entry holding `value` (TypeError for what it cannot hold)."""
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(value, tensors)
    meta = json.dumps({"format": FORMAT, "value": skeleton}, separators=(",", ":"), allow_nan=False)  # key order kept
    return save(tensors, metadata={_META_KEY: meta})


def decode(blob: bytes) -> Any:
    """The value a cache entry holds; CacheFormatError if the bytes are not one."""
    if len(blob) < 8:
        raise CacheFormatError("too short to be a safetensors file")
    n = int.from_bytes(blob[:8], "little")
    if n <= 0 or 8 + n > len(blob):
        raise CacheFormatError("not a safetensors file (bad header length)")
    try:
        header = json.loads(blob[8 : 8 + n])
        meta = json.loads(header["__metadata__"][_META_KEY])
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheFormatError("not a safetensors file written by explorer.cache") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CacheFormatError(f"cache format {meta.get('format') if isinstance(meta, dict) else '?'}, expected {FORMAT}")
    from safetensors.torch import load

    return _decode(meta["value"], load(blob))


def _encode(value: Any, tensors: dict) -> Any:
    import numpy as np
    import torch

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, np.integer):
        return value
    if isinstance(value, float) and not isinstance(value, np.floating):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()  # a copy: safetensors refuses shared storage
        return {"__tensor__": key, "device": str(value.device), "grad": bool(value.requires_grad)}
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.kind not in "biufc" or array.dtype.kind == "c":
            raise TypeError(f"cannot cache a NumPy array of dtype {array.dtype} (numbers and booleans only)")
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.array(array, order="C", copy=True))  # keeps 0-d arrays 0-d
        return {"__ndarray__": key, "dtype": array.dtype.str, "scalar": isinstance(value, np.generic)}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith(_LOCAL_MODULES):
            raise TypeError(f"cannot cache a {cls.__module__}.{cls.__qualname__}: only dataclasses defined in this repository")
        fields = {f.name: _encode(getattr(value, f.name), tensors) for f in dataclasses.fields(value)}
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    raise TypeError(
        f"cannot cache a {type(value).__name__}: store tensors, arrays, numbers, strings, None, and lists, tuples, "
        "dicts or dataclasses of this repository made of those"
    )


def _decode(node: Any, tensors: dict) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        import torch

        tensor = tensors[node["__tensor__"]]
        device = node.get("device", "cpu")
        if device.startswith("cuda") and torch.cuda.is_available():
            tensor = tensor.to(device)
        if node.get("grad") and tensor.is_floating_point():
            tensor.requires_grad_(True)
        return tensor
    if "__ndarray__" in node:
        import numpy as np

        array = tensors[node["__ndarray__"]].numpy().astype(np.dtype(node["dtype"]), copy=False)
        return array[()] if node.get("scalar") else array
    if "__float__" in node:
        return float(node["__float__"])
    if "__tuple__" in node:
        return tuple(_decode(v, tensors) for v in node["__tuple__"])
    if "__dict__" in node:
        return {_freeze(_decode(k, tensors)): _decode(v, tensors) for k, v in node["__dict__"]}
    if "__dataclass__" in node:
        return _dataclass(node["__dataclass__"], {k: _decode(v, tensors) for k, v in node["fields"].items()})
    return {k: _decode(v, tensors) for k, v in node.items()}


def _freeze(key: Any) -> Any:
    return tuple(_freeze(k) for k in key) if isinstance(key, (list, tuple)) else key


def _dataclass(ref: str, fields: dict[str, Any]) -> Any:
    """Rebuild a dataclass of this repository by name (no other type can be named)."""
    module_name, _, qualname = ref.partition(":")
    if not module_name.startswith(_LOCAL_MODULES):
        raise CacheFormatError(f"{ref} is not a dataclass of this repository")
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    cls: Any = module
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise CacheFormatError(f"{ref} is not a dataclass")
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    obj = cls(**{k: v for k, v in fields.items() if k in init})
    for k, v in fields.items():
        if k not in init:
            object.__setattr__(obj, k, v)
    return obj
