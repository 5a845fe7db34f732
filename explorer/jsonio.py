"""Deterministic JSON and atomic writes.

Floats are rounded to four significant digits: more than the eye can see in a plot, few enough
that the same computation gives byte-identical files from run to run.
"""

import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

SIGNIFICANT_DIGITS = 4
TEMP_SUFFIX = ".tmp"
_TEMP_PID = re.compile(r"\.(\d+)\.[A-Za-z0-9_]+\.tmp$")  # .<name>.<pid>.<random>.tmp, as write_atomic names them


def round_floats(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """Recursively round floats (and numpy / torch scalars and arrays) to `digits` significant digits."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None  # JSON has no NaN/inf; Vega treats null as missing
        return float(f"{obj:.{digits}g}") if obj != 0 else 0.0
    if isinstance(obj, dict):
        return {str(k): round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return round_floats(obj.tolist(), digits)
    if hasattr(obj, "item"):
        return round_floats(obj.item(), digits)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def significant(values: Any, digits: int = 3) -> list:
    """A flat list of floats rounded to `digits` significant digits: plenty for a plot, a third of the bytes."""
    import numpy as np  # here, not at the top: `figures --check` reads JSON without loading NumPy

    return round_floats(np.asarray(values, dtype=float).ravel().tolist(), digits)


def dumps(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> str:
    """Canonical compact JSON: sorted keys, rounded floats, no whitespace."""
    return json.dumps(round_floats(obj, digits), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write via a temporary file in the same folder and rename it in place."""
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_temp(path: Path, data: bytes | str) -> Path:
    """Write `data` to a new temporary file beside `path` (synced to disk) and return its path.

    The caller renames it over `path` with os.replace. Its name, `.<name>.<pid>.<random>.tmp`,
    lets clean_temp() remove it if this process is killed before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; published files must be readable by a web server
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def clean_temp(folder: Path, max_age_s: float = 3600) -> list[Path]:
    """Remove temporary files that killed writers left in `folder`; return what was removed.

    A temp file named by write_atomic is removed when the process in its name is gone; one without
    a process id (older runs) when it is older than `max_age_s`.
    """
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed
    for tmp in candidates:
        match = _TEMP_PID.search(tmp.name)
        try:
            stale = not pid_alive(int(match.group(1))) if match else time.time() - tmp.stat().st_mtime > max_age_s
            if stale and tmp.is_file():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31
    return True


def write_json(path: Path, obj: Any, digits: int = SIGNIFICANT_DIGITS) -> None:
    write_atomic(path, dumps(obj, digits) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
