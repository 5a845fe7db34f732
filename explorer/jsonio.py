"""Deterministic JSON and atomic writes.

Floats are rounded to four significant digits: more than the eye can see in a plot, few enough
that the same computation gives byte-identical files from run to run.
"""

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SIGNIFICANT_DIGITS = 4


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
    return round_floats(np.asarray(values, dtype=float).ravel().tolist(), digits)


def dumps(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> str:
    """Canonical compact JSON: sorted keys, rounded floats, no whitespace."""
    return json.dumps(round_floats(obj, digits), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write via a temporary file in the same folder and rename it in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; published files must be readable by a web server
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any, digits: int = SIGNIFICANT_DIGITS) -> None:
    write_atomic(path, dumps(obj, digits) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
