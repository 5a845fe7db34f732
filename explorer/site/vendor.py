"""Write vega + vega-lite + vega-embed as one local script, taken from the pinned vl-convert wheel.

The site loads it from docs/assets/vendor/ (git-ignored), so pages never reach a CDN.
"""

from pathlib import Path

import altair as alt
import vl_convert as vlc

from explorer import jsonio, paths

BUNDLE = paths.VENDOR / "vega-bundle.js"


def vegalite_version() -> str:
    """The Vega-Lite minor version Altair writes specs for, e.g. 'v6.4'."""
    return ".".join(alt.SCHEMA_VERSION.split(".")[:2])


def write_bundle(path: Path = BUNDLE) -> Path:
    js = vlc.javascript_bundle(vl_version=vegalite_version())
    jsonio.write_atomic(path, js)
    return path
