"""MkDocs hook: shortcodes that embed figures and quote their numbers.

In an article:
    {{ figure: backprop-playground }}      the figure, its caption, model and download links
    {{ claim: induction-film:peak_score }}  a number the figure's producer recorded (optionally
    {{ claim: induction-film:peak_score:.2f }}  with a Python format spec)
    {{ provenance }}                        the table of every figure's provenance

An unknown figure id or claim fails the build with the page, line and id. A backslash before the
braces shows a shortcode as text.
"""

import html
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from explorer import jsonio

SHORTCODE = re.compile(r"(\\?)\{\{\s*(figure|claim|provenance)\s*(?::\s*([^}]*?))?\s*\}\}")
_manifest: dict[str, Any] = {}
_figures_dir = Path()


def on_config(config, **_):
    global _manifest, _figures_dir
    _figures_dir = Path(config["docs_dir"]) / "figures"
    manifest = _figures_dir / "manifest.json"
    _manifest = jsonio.read_json(manifest)["figures"] if manifest.exists() else {}
    return config


def on_page_markdown(markdown: str, page, **_) -> str:
    root = posixpath.relpath("/", "/" + page.url) if page.url else "."

    def replace(match: re.Match) -> str:
        escaped, kind, arg = match.group(1), match.group(2), (match.group(3) or "").strip()
        if escaped:  # \{{ figure: x }} shows the shortcode itself, for pages that document it
            return match.group(0)[1:]
        line = markdown.count("\n", 0, match.start()) + 1
        where = f"{page.file.src_path}:{line}"
        if kind == "figure":
            return _figure_html(_entry(arg, where), arg, root)
        if kind == "claim":
            return _claim(arg, where)
        return _provenance_table(root)

    return SHORTCODE.sub(replace, markdown)


def _entry(fid: str, where: str) -> dict[str, Any]:
    if fid not in _manifest:
        raise PluginError(f"{where}: unknown figure id {fid!r} (not in docs/figures/manifest.json; run `make figures`)")
    return _manifest[fid]


def _figure_html(entry: dict[str, Any], fid: str, root: str) -> str:
    esc = html.escape
    base = f"{root}/figures/{fid}/"
    data_files = sorted(p.name for p in (_figures_dir / fid / "data").glob("*.json"))
    data_links = " ".join(f'<a href="{base}data/{esc(n)}" download>{esc(n)}</a>' for n in data_files)
    return (
        f'<figure class="explorer-figure" id="fig-{esc(fid)}" data-figure="{esc(fid)}" data-base="{esc(base)}">\n'
        f'<div class="explorer-figure__chart" role="img" aria-label="{esc(entry["title"])}"></div>\n'
        f'<figcaption><strong>{esc(entry["title"])}.</strong> {esc(entry["caption"])}\n'
        f'<span class="explorer-figure__meta">Model: {esc(entry["model"])} · '
        f'<a href="{root}/provenance/#{esc(fid)}">provenance</a> · '
        f'<a href="{base}spec.json" download>spec</a>'
        f'{" · data: " + data_links if data_links else ""}</span></figcaption>\n'
        f"</figure>\n"
    )


def _claim(arg: str, where: str) -> str:
    fid, _, rest = arg.partition(":")
    key, _, fmt = rest.partition(":")
    claims = _entry(fid.strip(), where).get("claims", {})
    if key.strip() not in claims:
        raise PluginError(f"{where}: figure {fid!r} has no claim {key!r}; it has: {', '.join(sorted(claims)) or 'none'}")
    value = claims[key.strip()]
    try:
        text = format(value, fmt.strip()) if fmt.strip() else str(value)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"{where}: cannot format claim {arg!r}: {exc}") from exc
    return f'<span class="explorer-claim" data-claim="{html.escape(fid.strip())}:{html.escape(key.strip())}">{html.escape(text)}</span>'


def _provenance_table(root: str) -> str:
    esc = html.escape
    rows = []
    for fid, e in sorted(_manifest.items()):
        versions = ", ".join(f"{k} {v}" for k, v in sorted(e.get("versions", {}).items()))
        rows.append(
            f'<tr id="{esc(fid)}"><td><code>{esc(fid)}</code><br>{esc(e["title"])}</td><td>{esc(e["model"])}</td>'
            f'<td><code>{esc(e["source"])}</code></td><td>{esc(e["scale"])}, seed {e["seed"]}, {esc(e["device"])}, '
            f'{e["wall_time_s"]} s</td><td><code>{esc(e["input_hash"])}</code><br>commit <code>{esc(e["git_commit"])}</code></td>'
            f"<td>{esc(versions)}</td></tr>"
        )
    return (
        '<table class="explorer-provenance"><thead><tr><th>Figure</th><th>Model</th><th>Producer</th>'
        "<th>Run</th><th>Input hash</th><th>Libraries</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
    )
