"""Pictures of a figure, drawn at build time, for pages that must load fast (the home page).

A producer asks for them with `panel.finish(chart, preview=True)` (usermeta.explorer.preview). The
pipeline then writes `preview-light.png` and `preview-dark.png` (twice the CSS size, for sharp
screens) beside the spec: the figure drawn
by vl-convert with the palette's colours (the `--fig-*` tokens of docs/assets/stylesheets/figures.css).
The page shows the picture at once and swaps in the live figure when the reader reaches for it
(pointer, keyboard focus or touch), so a page of small figures costs no script time at load.
"""

import io
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from explorer import jsonio, paths

SCHEMES = ("light", "dark")
TOKEN = re.compile(r"var\(--(fig-[a-z0-9-]+)\)")
# Material's page background in its slate scheme, hsla(232, 15%, 14%): the dark palette's paper.
SLATE_BACKGROUND = "#1e2029"
FONT = "Helvetica, Arial, sans-serif"
SCALE = 2  # pixels per CSS px: a picture a fifth the size of the SVG, still sharp on a phone


def wants_preview(spec: dict[str, Any]) -> bool:
    return bool(((spec.get("usermeta") or {}).get("explorer") or {}).get("preview"))


@lru_cache(maxsize=None)
def palette(scheme: str, stylesheet: Path | None = None) -> dict[str, str]:
    """{token: colour} for "light" or "dark", read from the stylesheet the page uses."""
    css = (stylesheet or paths.DOCS / "assets" / "stylesheets" / "figures.css").read_text()
    selector = r'\[data-md-color-scheme="slate"\]' if scheme == "dark" else r':root, \[data-md-color-scheme="default"\]'
    block = re.search(selector + r"\s*\{(.*?)\}", css, re.S)
    if block is None:
        raise ValueError(f"figures.css has no {scheme} palette block")
    values = dict(re.findall(r"--(fig-[a-z0-9-]+):\s*([^;]+);", block.group(1)))
    background = SLATE_BACKGROUND if scheme == "dark" else "#ffffff"
    return {k: (background if v.strip().startswith("var(") else v.strip()) for k, v in values.items()}


def resolve(node: Any, colours: dict[str, str]) -> Any:
    """`node` with every var(--fig-...) token replaced by its colour (as the page script does)."""
    if isinstance(node, str):
        return TOKEN.sub(lambda m: colours.get(m.group(1), "#888888"), node)
    if isinstance(node, list):
        return [resolve(v, colours) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v, colours) for k, v in node.items()}
    return node


def config(colours: dict[str, str]) -> dict[str, Any]:
    """The page's Vega config (docs/assets/javascripts/explorer/theme.js), for a picture."""
    ink, muted, rule = colours["fig-ink"], colours["fig-muted"], colours["fig-rule"]
    text = {"labelColor": muted, "titleColor": ink, "labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal",
            "labelFont": FONT, "titleFont": FONT}
    return {
        "background": None, "font": FONT, "view": {"stroke": rule},
        "axis": {**text, "domainColor": muted, "tickColor": muted, "gridColor": rule},
        "legend": {**text, "labelColor": ink, "orient": "bottom", "direction": "horizontal"},
        "header": {"labelColor": ink, "titleColor": ink, "labelFontSize": 12, "titleFontSize": 13},
        "title": {"color": ink, "fontSize": 13, "fontWeight": "normal", "anchor": "start", "font": FONT},
        "text": {"color": ink, "fontSize": 11, "font": FONT},
        "range": {"category": [colours[f"fig-s{i}"] for i in range(1, 11)]},
    }


def write_previews(inline: dict[str, Any], folder: Path) -> list[str]:
    """Draw the figure once per palette into `folder`; return the file names. `inline` is the spec
    with its data still inside (before the pipeline moves it to files)."""
    import vl_convert as vlc

    from explorer.pipeline.spec import vega_lite_version

    written = []
    for scheme in SCHEMES:
        colours = palette(scheme)
        drawn = resolve({k: v for k, v in inline.items() if k != "usermeta"}, colours)
        drawn["config"] = {**config(colours), **(drawn.get("config") or {})}
        png = vlc.vegalite_to_png(drawn, vl_version=vega_lite_version(inline), scale=SCALE)
        name = f"preview-{scheme}.png"
        jsonio.write_atomic(folder / name, _small_png(png))
        written.append(name)
    return written


def _small_png(png: bytes) -> bytes:
    """256 colours are plenty for a chart and make the file a fraction of vl-convert's (and deterministic)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def preview_size(png_file: Path) -> tuple[int, int] | None:
    """(width, height) in CSS px of a preview, for the <img> that shows it (no layout shift)."""
    head = png_file.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return round(width / SCALE), round(height / SCALE)
