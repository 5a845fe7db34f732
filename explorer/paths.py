"""Where things live. Everything is relative to the checkout, so a clone is self-contained."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
FIGURES = DOCS / "figures"  # published, committed full-scale figures
BUILD_FIGURES = Path(os.environ.get("EXPLORER_PRODUCERS", REPO / "build_figures"))  # tests point this elsewhere
CACHE = Path(os.environ.get("EXPLORER_CACHE", REPO / ".cache"))  # trained models, smoke figures, build logs
MODELS = Path(os.environ.get("EXPLORER_MODELS", REPO / "models"))  # long-run artifacts (weights + provenance), committed
VENDOR = DOCS / "assets" / "vendor"  # third-party JavaScript made at setup, never committed


def display(path: Path) -> str:
    """A path as a person wants it in a message: relative to the checkout when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
