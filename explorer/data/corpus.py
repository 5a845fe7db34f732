"""Offline text corpus: the Python standard library's own source files.

Every Python install carries them, so the zoo's language models can be trained with no download.
The split is by file (every tenth file in sorted order is held out), so held-out text is code the
model never saw, not just unseen windows of seen files.
"""

import hashlib
import sysconfig
from functools import cache
from pathlib import Path
from typing import Literal

from explorer.errors import check_choice

Split = Literal["train", "heldout"]
SPLITS = ("train", "heldout")
HELDOUT_EVERY = 10  # file i is held out when i % HELDOUT_EVERY == 0
FILE_SEPARATOR = "\n\n"


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@cache
def stdlib_files() -> tuple[Path, ...]:
    """The top-level modules of the standard library (no packages, no tests), sorted by name."""
    return tuple(sorted(stdlib_dir().glob("*.py"), key=lambda p: p.name))


def split_files(split: Split) -> tuple[Path, ...]:
    check_choice("corpus split", split, SPLITS)
    files = stdlib_files()
    heldout = split == "heldout"
    return tuple(f for i, f in enumerate(files) if (i % HELDOUT_EVERY == 0) == heldout)


@cache
def corpus_text(split: Split) -> str:
    """All files of a split, in sorted order, separated by a blank line."""
    return FILE_SEPARATOR.join(p.read_text(encoding="utf-8", errors="replace") for p in split_files(split))


@cache
def fingerprint() -> str:
    """A digest of the corpus content: part of every cache key, so another Python retrains."""
    h = hashlib.sha256()
    for path in stdlib_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
