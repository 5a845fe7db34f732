"""A disk cache for trained models and other expensive results.

An entry is keyed by a name, a JSON-able config and the source code of the modules that
produce it, so changing a hyper-parameter or the training code retrains, while re-plotting
never does. Entries live under .cache/ (outside git). Each file carries a SHA-256 beside it;
a truncated or corrupt entry is reported and rebuilt instead of crashing the build.
"""

import hashlib
import inspect
import io
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import torch

from explorer import jsonio, paths

T = TypeVar("T")
log = logging.getLogger(__name__)


def source_of(obj: ModuleType | Callable | type) -> str:
    """The whole source file that defines `obj`: editing anything in it invalidates dependants."""
    module = obj if isinstance(obj, ModuleType) else sys.modules[obj.__module__]
    return inspect.getsource(module)


def cache_key(name: str, config: Mapping[str, Any], code: Iterable[ModuleType | Callable | type] = ()) -> str:
    h = hashlib.sha256()
    h.update(name.encode())
    h.update(jsonio.dumps(dict(config), digits=12).encode())
    for obj in code:
        h.update(source_of(obj).encode())
    return h.hexdigest()[:20]


def entry_path(name: str, key: str) -> Path:
    return paths.CACHE / "models" / name / f"{key}.pt"


def cached(
    name: str,
    config: Mapping[str, Any],
    build: Callable[[], T],
    code: Iterable[ModuleType | Callable | type] = (),
) -> T:
    """Return `build()`'s result for this config and code, computing it only when not cached.

    `build` must return something torch.save can store (tensors, state dicts, dicts, numpy arrays).
    """
    code = list(code)
    key = cache_key(name, config, code)
    path = entry_path(name, key)
    value = _load(path)
    if value is not _MISSING:
        return value
    value = build()
    buf = io.BytesIO()
    torch.save(value, buf)
    blob = buf.getvalue()
    jsonio.write_atomic(path, blob)
    jsonio.write_atomic(path.with_suffix(".sha256"), hashlib.sha256(blob).hexdigest())
    jsonio.write_json(path.with_suffix(".json"), {"name": name, "config": dict(config)}, digits=12)
    return value


_MISSING = object()


def _load(path: Path) -> Any:
    if not path.exists():
        return _MISSING
    blob = path.read_bytes()
    digest_file = path.with_suffix(".sha256")
    expected = digest_file.read_text().strip() if digest_file.exists() else None
    if expected != hashlib.sha256(blob).hexdigest():
        log.warning("cache entry %s is corrupt (checksum mismatch); rebuilding", path)
        return _MISSING
    try:
        return torch.load(io.BytesIO(blob), weights_only=False)
    except Exception as exc:  # a file that hashes right but will not unpickle: rebuild it
        log.warning("cache entry %s could not be read (%s); rebuilding", path, exc)
        return _MISSING
