"""Page weight: the bytes of figure spec + data a reader's browser loads for one page.

For a figure that loads data lazily (usermeta.explorer.source), only the file of the default
choices counts, since that is what the first view fetches.
"""

import re
from pathlib import Path

from explorer import jsonio

FIGURE_TAG = re.compile(r'data-figure="([^"]+)"')


def figure_bytes(figure_dir: Path) -> int:
    spec_path = figure_dir / "spec.json"
    spec = jsonio.read_json(spec_path)
    total = spec_path.stat().st_size
    urls = set(re.findall(r'"url":\s*"([^"]+)"', spec_path.read_text()))
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    source = meta.get("source")
    if source:
        defaults = {c["name"]: c.get("default", c["options"][0]) for c in meta.get("controls", [])}
        urls.add(source["url"].format(**defaults))
    for url in urls:
        if not re.match(r"^[a-z]+://", url) and (figure_dir / url).exists():
            total += (figure_dir / url).stat().st_size
    return total


def page_weights(site: Path) -> dict[str, int]:
    """Bytes of figure spec + data per built page (keyed by the page's path in the site)."""
    weights = {}
    for page in sorted(site.rglob("*.html")):
        ids = FIGURE_TAG.findall(page.read_text())
        if ids:
            weights[str(page.relative_to(site))] = sum(figure_bytes(site / "figures" / fid) for fid in dict.fromkeys(ids))
    return weights
