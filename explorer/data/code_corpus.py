"""A bigger offline corpus: the Python source of the standard library and of every installed package.

The pinned environment (constraints.txt) carries hundreds of megabytes of real Python with English
in its docstrings and comments, the same files on every machine that installs the same pins. The
flagship byte-level model trains on it. Files are read as bytes (the model's vocabulary is the 256
byte values), sorted by a machine-independent name ("stdlib/json/decoder.py",
"site-packages/torch/nn/modules/linear.py"), and split by file: a file is held out when the first
byte of the SHA-256 of its name is below HELDOUT_SHARE * 256, so held-out text is code the model
never saw, and adding one package does not reshuffle the others.
"""

import hashlib
import importlib.metadata
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from explorer.errors import check_choice

SPLITS = ("train", "heldout")
HELDOUT_SHARE = 0.05
FILE_SEPARATOR = b"\n\n"
SKIP_PARTS = {"__pycache__", "site-packages", "dist-packages"}  # nested environments inside a root
# The packaging tools float (the Makefile upgrades pip) and the project is ours: neither is corpus.
SKIP_PACKAGES = {"pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel", "explorer"}


@dataclass(frozen=True)
class SourceFile:
    name: str  # "stdlib/..." or "site-packages/...": the same on every machine
    path: Path

    @property
    def heldout(self) -> bool:
        return hashlib.sha256(self.name.encode()).digest()[0] < HELDOUT_SHARE * 256


def roots() -> dict[str, Path]:
    """Where the text comes from: the standard library and this environment's site-packages."""
    paths = sysconfig.get_paths()
    return {"stdlib": Path(paths["stdlib"]), "site-packages": Path(paths["purelib"])}


@cache
def source_files() -> tuple[SourceFile, ...]:
    """Every .py file under the roots, sorted by name (the project's own code is not installed there)."""
    found = []
    for label, root in roots().items():
        for path in root.rglob("*.py"):
            relative = path.relative_to(root)
            if SKIP_PARTS & set(relative.parts[:-1]) or not path.is_file():
                continue
            if label == "site-packages" and relative.parts[0].removesuffix(".py") in SKIP_PACKAGES:
                continue
            found.append(SourceFile(f"{label}/{relative.as_posix()}", path))
    return tuple(sorted(found, key=lambda f: f.name))


def split_files(split: str) -> tuple[SourceFile, ...]:
    check_choice("corpus split", split, SPLITS)
    return tuple(f for f in source_files() if f.heldout == (split == "heldout"))


@cache
def corpus_bytes(split: str, limit: int | None = None) -> np.ndarray:
    """The files of a split, in name order, joined by a blank line, as one uint8 array (at most `limit` bytes)."""
    chunks, total = [], 0
    for f in split_files(split):
        data = f.path.read_bytes() + FILE_SEPARATOR
        chunks.append(data)
        total += len(data)
        if limit is not None and total >= limit:
            break
    joined = b"".join(chunks)
    return np.frombuffer(joined[:limit] if limit is not None else joined, dtype=np.uint8)


@cache
def fingerprint() -> str:
    """A digest of what the corpus is made of: the Python version, every installed distribution and
    version (the pins), and the name and size of every file. Another environment retrains."""
    h = hashlib.sha256(f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode())
    dists = {(d.metadata["Name"] or "").lower(): d.version for d in importlib.metadata.distributions()}
    for name in sorted(set(dists) - SKIP_PACKAGES):
        h.update(f"{name}=={dists[name]}\n".encode())
    for f in source_files():
        h.update(f"{f.name} {f.path.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def composition() -> dict[str, dict[str, int]]:
    """Files and bytes per split and per source (the standard library, each top-level package)."""
    table: dict[str, dict[str, int]] = {}
    for f in source_files():
        label, _, rest = f.name.partition("/")
        group = "stdlib" if label == "stdlib" else rest.split("/")[0].removesuffix(".py")
        row = table.setdefault(group, {"files": 0, "train_bytes": 0, "heldout_bytes": 0})
        row["files"] += 1
        row["heldout_bytes" if f.heldout else "train_bytes"] += f.path.stat().st_size
    return table
