"""Shortcodes that embed figures and quote their numbers: a Python-Markdown extension.

In an article:
    {{ figure: backprop-playground }}      the figure, its caption, model and download links
    {{ claim: induction-film:peak_score }}  a number the figure's producer recorded (optionally
    {{ claim: induction-film:peak_score:.2f }}  with a Python format spec)
    {{ provenance }}                        the table of every figure's provenance
    {{ try: backprop-playground | layers=3, width=8 | three layers of eight }}
                                            a link that sets the figure's controls to these
                                            values (and puts them in the address)
    {{ predict: attention-scaling:acc_scale_4:.0% | What happens to accuracy? | it falls = ..0.5 | it holds = 0.5.. }}
                                            predict, then check: the reader picks a choice and
                                            sees the claim; exactly one choice's range (lo..hi,
                                            either end open) must hold the claim, or the build fails

An unknown figure id, claim, control or value fails the build with the page, line and id, and so
does a shortcode left unexpanded (a misspelt name, unbalanced braces). A backslash before the
braces shows a shortcode as text; code spans and blocks are left alone.

It is listed under `markdown_extensions` in mkdocs.yml, which MkDocs and Zensical both load (an
MkDocs `hooks:` file runs under MkDocs only). Its preprocessor runs before every other one, on the
page's Markdown as the author wrote it (front matter removed), so it sees what the hook it replaces
saw and the rest of the conversion is unchanged. A Markdown extension is not told the page it
converts; see `_page` for how it finds out (the figures' links are relative to the page).
"""

import html
import json
import logging
import os
import posixpath
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

from explorer import jsonio

try:  # MkDocs reports a PluginError as one line (page, line, id) and aborts the build, no traceback
    from mkdocs.exceptions import PluginError
except ImportError:  # pragma: no cover (Zensical alone: any exception fails the page)
    class PluginError(Exception):
        pass

DRAFT = os.environ.get("EXPLORER_DRAFT") == "1"  # while figures are being rebuilt: a missing claim shows, not fails
log = logging.getLogger("mkdocs.plugins.explorer")
SHORTCODE = re.compile(r"(\\?)\{\{\s*(figure|claim|provenance|try|predict)\s*(?::\s*([^}]*?))?\s*\}\}")
LEFTOVER = re.compile(r"(?<!\\)(\{\{|\}\})")
CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$|`(?:[^`\n]|\n(?![ \t]*\n))+`", re.M | re.S)  # fences; code spans (may wrap a line)
NUMERIC_FORMAT = re.compile(r"[bcdeEfFgGnoxX%]$")
_manifest: dict[str, Any] = {}
_figures_dir = Path()
_other_models: dict[str, dict[str, dict[str, Any]]] = {}  # figure id -> {model name: its manifest entry}
MODELS_DIR = "models"  # explorer/pipeline/build.py: `--model NAME` builds into figures/models/NAME/
_json_cache: dict[Path, tuple[tuple[int, int], Any]] = {}  # path -> ((mtime_ns, size), its JSON)
_lock = threading.Lock()  # a generator may convert pages on several threads


class ShortcodeExtension(Extension):
    """`markdown_extensions: [explorer.site.shortcodes]`. Both options are for a Markdown converter
    that is neither MkDocs nor Zensical (those two say where their docs are and which page it is)."""

    def __init__(self, **kwargs: Any):
        self.config = {
            "docs_dir": ["docs", "the docs folder (figures/manifest.json is inside it), relative to the working directory"],
            "page": ["", "the page converted, relative to docs_dir; by default the one file under docs_dir holding the text"],
        }
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:
        # Priority 40: before every preprocessor of Python-Markdown (whitespace at 30, raw HTML at 20)
        # and of the extensions we use, as the hook ran before the whole conversion.
        md.preprocessors.register(ShortcodePreprocessor(md, self.getConfigs()), "explorer_shortcodes", 40)


def makeExtension(**kwargs: Any) -> ShortcodeExtension:
    return ShortcodeExtension(**kwargs)


class ShortcodePreprocessor(Preprocessor):
    def __init__(self, md: Markdown, options: dict[str, Any]):
        super().__init__(md)
        self.options = options

    def run(self, lines: list[str]) -> list[str]:
        markdown = "\n".join(lines)
        docs_dir, src_path, url, links_from_source = _page(self.md, markdown, self.options)
        with _lock:
            configure(docs_dir)
            return expand(markdown, src_path, url, links_from_source).split("\n")


def _page(md: Markdown, markdown: str, options: dict[str, Any]) -> tuple[Path, str | None, str | None, bool]:
    """(docs folder, page's source path relative to it, page's URL, whether the generator rewrites the
    page's relative links as written from the source file: see `expand`) of the page being converted.

    Neither generator hands its page to an extension, but each registers a processor of its own that
    holds it before the conversion starts: MkDocs its link rewriter (`relpath`, with the page's File
    and the config), Zensical its rendering context (`rendering_context`, with the Page and the
    config). Both are internal; should either change, the fallback below still finds the page, only
    slower (tests/test_zensical.py checks Zensical's links still come out as MkDocs' do). With
    neither (plain Markdown), the page is the `page` option or the one file under
    `docs_dir` that holds this text, or failing that (front matter removed, say) this text's first
    shortcode line: there is no other way to learn it; its URL assumes directory URLs (both
    generators' default, and this site's)."""
    relpath = md.treeprocessors["relpath"] if "relpath" in md.treeprocessors else None
    file, config = getattr(relpath, "file", None), getattr(relpath, "config", None)
    if file is not None and config is not None and getattr(file, "url", None) is not None:
        return Path(config["docs_dir"]), file.src_path, file.url, False
    context = md.preprocessors["rendering_context"] if "rendering_context" in md.preprocessors else None
    page, config = getattr(context, "page", None), getattr(context, "config", None)
    if page is not None and config is not None and getattr(page, "url", None) is not None:
        return Path(config.get("root_dir") or ".") / config["docs_dir"], page.path, page.url, True
    docs_dir = Path(options.get("docs_dir") or "docs")
    src = options.get("page") or _find_page(docs_dir, markdown)
    return docs_dir, src, (_directory_url(src) if src else None), False


def _find_page(docs_dir: Path, markdown: str) -> str | None:
    """The one Markdown file under docs_dir that holds this text (or its first shortcode's line), or None."""
    if not SHORTCODE.search(markdown) and not LEFTOVER.search(markdown):
        return None  # nothing here names the page
    texts = {p.relative_to(docs_dir).as_posix(): p.read_text(encoding="utf-8") for p in sorted(docs_dir.rglob("*.md"))}
    found = [src for src, text in texts.items() if markdown.strip() in text]
    if len(found) != 1:
        first = next((line for line in markdown.splitlines() if SHORTCODE.search(line) or LEFTOVER.search(line)), None)
        found = [src for src, text in texts.items() if first and first in text.splitlines()]
    return found[0] if len(found) == 1 else None


def _directory_url(src: str) -> str:
    """A page's URL with directory URLs: a/b.md -> a/b/, a/index.md and a/README.md -> a/, index.md -> ''."""
    stem, _, _ = src.rpartition(".")
    parent, _, name = stem.rpartition("/")
    if name in ("index", "README"):
        return f"{parent}/" if parent else ""
    return f"{stem}/"


def _read_json(path: Path) -> Any:
    """A JSON file, parsed again only once it changed (each page asks; `mkdocs serve` outlives a figure build)."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _json_cache.get(path)
    if cached is None or cached[0] != key:
        cached = _json_cache[path] = (key, jsonio.read_json(path))
    return cached[1]


def configure(docs_dir: str | Path) -> None:
    """Read the manifest of docs_dir/figures and find the figures' other models (the model switch)."""
    global _manifest, _figures_dir, _other_models
    _figures_dir = Path(docs_dir) / "figures"
    manifest = _figures_dir / "manifest.json"
    _manifest = _read_json(manifest)["figures"] if manifest.exists() else {}
    _other_models = {}
    for path in sorted((_figures_dir / MODELS_DIR).glob("*/manifest.json")):
        for fid, entry in _read_json(path)["figures"].items():
            if (path.parent / fid / "spec.json").exists():
                _other_models.setdefault(fid, {})[path.parent.name] = entry


def _model_switch(fid: str, entry: dict[str, Any], base: str, root: str) -> str:
    """data-models: the choices of the figure's model switch (the published figure first), or ''."""
    others = _other_models.get(fid)
    if not others:
        return ""
    choices = [{"label": "the published models", "base": base, "model": entry["model"]}]
    choices += [{"label": name, "base": f"{root}/figures/{MODELS_DIR}/{name}/{fid}/", "model": other["model"]}
                for name, other in sorted(others.items())]
    return f" data-models='{html.escape(json.dumps(choices), quote=True)}'"


def expand(markdown: str, src_path: str | None, url: str | None, links_from_source: bool = False) -> str:
    """The page's Markdown with its shortcodes expanded (call `configure` first). src_path names the
    page in errors; url (MkDocs' form: '' for the home page, 'a/b/' or 'a/b.html') places it, for the
    figures' links. Either may be None when the page is unknown: then a figure or the provenance
    table fails, as its links cannot be written.

    links_from_source: the generator rewrites relative href and src in the page's HTML as if they
    were written from the source file (Zensical does, raw HTML included: `a/b.md` becomes
    `a/b/index.html`, so it prefixes `../`); MkDocs leaves raw HTML alone. The figures' links are
    then written relative to the source file, so both sites end up with the same links."""
    page_name = src_path or "<page not found under the docs folder>"
    root = posixpath.relpath("/", posixpath.dirname("/" + url)) if url is not None else None
    link_root = root
    if links_from_source and src_path is not None:
        link_root = posixpath.relpath("/", posixpath.dirname("/" + src_path.replace(os.sep, "/")))
    figures_so_far = [0]
    hints: set[str] = set()  # preloads this page has emitted (_load_hints)

    def replace(match: re.Match) -> str:
        escaped, kind, arg = match.group(1), match.group(2), (match.group(3) or "").strip()
        if escaped:  # \{{ figure: x }} shows the shortcode itself, for pages that document it
            return match.group(0)[1:]
        line = markdown.count("\n", 0, match.start()) + 1
        where = f"{page_name}:{line}"
        if kind in ("figure", "provenance") and root is None:
            raise PluginError(f"{where}: cannot tell which page this is, so not where the site's root is "
                              "(pass the extension's page option)")
        if kind == "figure":
            entry = _entry(arg, where)
            if entry.get("missing"):
                return f'<p class="explorer-figure__error">[draft: figure {html.escape(arg)} is not built yet]</p>\n'
            figures_so_far[0] += 1
            return _figure_html(entry, arg, root, first=figures_so_far[0] == 1, link_root=link_root, hints=hints)
        try:
            if kind == "claim":
                return _claim(arg, where)
            if kind == "try":
                return _try_link(arg, where)
            if kind == "predict":
                return _predict(arg, where)
        except PluginError as exc:  # in a draft, figures may not be rebuilt yet: show the gap, build on
            if not DRAFT:
                raise
            log.info("draft: %s", exc)
            return html.escape(arg.rpartition("|")[2].strip()) if kind == "try" else f"[draft: {kind}]"
        return _provenance_table(link_root)

    text = _outside_code(markdown, SHORTCODE)
    _reject_leftovers(text, page_name)
    ranged = _means_without_their_range(text)
    return SHORTCODE.sub(lambda m: replace(m) + (_seed_range(m.group(3), ranged[m.start()]) if m.start() in ranged else ""), text)


UNIT = re.compile(r"(?:^\|[^\n]*\n?)|(?:(?:^(?!\|)[^\n]*\S[^\n]*\n?)+)", re.M)  # a table row, or a paragraph


def _means_without_their_range(text: str) -> dict[int, dict[str, Any]]:
    """{position: claims} of each quoted mean over seeds (explorer.ensemble: key, key_min, key_max,
    key_seeds) whose paragraph or table row does not also quote key_min and key_max: the page must
    show its interval, so the extension adds it after the number."""
    found = {}
    for unit in UNIT.finditer(text):
        quotes = [(m, *_claim_key(m)) for m in SHORTCODE.finditer(unit.group(0)) if m.group(2) == "claim" and not m.group(1)]
        keys = {(fid, key) for _, fid, key in quotes}
        for m, fid, key in quotes:
            claims = (_manifest.get(fid) or {}).get("claims", {})
            if f"{key}_seeds" in claims and f"{key}_min" in claims and not {(fid, f"{key}_min"), (fid, f"{key}_max")} <= keys:
                found[unit.start() + m.start()] = claims
    return found


def _claim_key(match: re.Match) -> tuple[str, str]:
    return _split_claim(match.group(3) or "")[:2]


def _split_claim(arg: str) -> tuple[str, str, str]:
    """'figure-id:key:format' as (figure id, key, format), each stripped; the format may be ''."""
    fid, _, rest = arg.partition(":")
    key, _, fmt = rest.partition(":")
    return fid.strip(), key.strip(), fmt.strip()


def _formatted(value: Any, fmt: str) -> str:
    return format(value, fmt) if fmt else str(value)


def _seed_range(arg: str, claims: dict[str, Any]) -> str:
    """' [0.61–0.74 over 3 seeds]' in the mean's own format, after a mean quoted without its interval."""
    _, key, fmt = _split_claim(arg)
    lo, hi = (_formatted(claims[f"{key}_{end}"], fmt) for end in ("min", "max"))
    seeds = len(claims[f"{key}_seeds"])
    if lo == hi:
        text = f"[{lo} on all {seeds} seeds]"
    else:
        dash = " to " if lo.startswith("-") or hi.startswith("-") else "–"  # "-0.04–-0.01" misreads
        text = f"[{lo}{dash}{hi} over {seeds} seeds]"
    return (f' <span class="explorer-claim-range" title="the mean over {seeds} seeds; in brackets the lowest and the highest seed">'
            f"{html.escape(text)}</span>")


def _outside_code(markdown: str, pattern: re.Pattern) -> str:
    """Shortcodes inside code spans and fenced blocks are shown as written: escape them first."""
    return CODE.sub(lambda m: pattern.sub(lambda s: "\\" + s.group(0) if not s.group(1) else s.group(0), m.group(0)), markdown)


def _reject_leftovers(markdown: str, src: str) -> None:
    """A `{{` or `}}` left once the shortcodes are taken out (outside code) is one that did not parse."""
    def blank(m: re.Match) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    blanked = SHORTCODE.sub(blank, CODE.sub(blank, markdown))
    match = LEFTOVER.search(blanked)
    if match:
        line = blanked.count("\n", 0, match.start()) + 1
        text = markdown.splitlines()[line - 1].strip()
        raise PluginError(f"{src}:{line}: malformed shortcode near {text[:80]!r} (known: figure, claim, try, predict, provenance; "
                          "write \\{{ to show braces)")


def _entry(fid: str, where: str) -> dict[str, Any]:
    if fid not in _manifest and DRAFT:
        log.info("draft: %s: figure %r is not built yet", where, fid)
        return {"missing": True, "claims": {}}
    if fid not in _manifest:
        raise PluginError(f"{where}: unknown figure id {fid!r} (not in docs/figures/manifest.json; run `make figures`)")
    return _manifest[fid]


FIGURE_MODULES = ("controls", "layout", "state", "theme", "textview")  # what figures.js imports (found only once it has loaded)


def _load_hints(link_root: str, hints: set[str]) -> str:
    """Preload hints for figures.js's imports (once a page, small), so they download while the page is
    still parsing. Not the Vega library (0.3 MB gzipped) nor the specs: preloaded, they took the
    bandwidth of the text's own files on a slow phone link (Lighthouse on the backprop page: 76 with
    them, 92 without, Material's bundle deferred in both)."""
    out = []
    if "modules" not in hints:
        hints.add("modules")
        out += [f'<link rel="modulepreload" href="{link_root}/assets/javascripts/explorer/{m}.js">' for m in FIGURE_MODULES]
    return "\n".join(out) + ("\n" if out else "")


def _figure_html(entry: dict[str, Any], fid: str, root: str, first: bool = False, link_root: str | None = None,
                 hints: set[str] | None = None) -> str:
    """link_root: the root as the generator wants it in href and src (see `expand`); root by default.
    The data attributes are read by the page script, relative to the page's address: always root.
    hints: what this page has preloaded so far (see _load_hints); None: no hints."""
    esc = html.escape
    base = f"{root}/figures/{fid}/"
    link_root = root if link_root is None else link_root
    href = f"{link_root}/figures/{fid}/"
    data_files = sorted(p.name for p in (_figures_dir / fid / "data").glob("*.json"))
    data_links = " ".join(f'<a href="{href}data/{esc(n)}" download>{esc(n)}</a>' for n in data_files)
    pictures = _preview_html(fid, href, entry["title"], eager=first)
    focusable = ' tabindex="0"' if pictures else ""  # a picture comes alive on focus too
    compiled = " data-compiled" if (_figures_dir / fid / "spec.vg.json").exists() else ""  # explorer/site/compiled.py
    switch = _model_switch(fid, entry, base, root)
    preload = "" if hints is None else _load_hints(link_root, hints)
    return (
        f'<figure class="explorer-figure" id="fig-{esc(fid)}" data-figure="{esc(fid)}" data-base="{esc(base)}"'
        f'{switch}{" data-preview" if pictures else ""}{compiled}>\n'
        f'{preload}'
        f'<div class="explorer-figure__chart" role="img" aria-label="{esc(entry["title"])}"{focusable}>'
        f'{pictures}</div>\n'
        f'<figcaption><strong>{esc(entry["title"])}.</strong> {esc(entry["caption"])}\n'
        f'<span class="explorer-figure__meta">Model: <span class="explorer-figure__model">{esc(entry["model"])}</span> · '
        f'<a href="{link_root}/provenance/#{esc(fid)}">provenance</a> · '
        f'<a href="{href}spec.json" download>spec</a>'
        f'{" · data: " + data_links if data_links else ""}</span></figcaption>\n'
        f"</figure>\n"
    )


LOAD_NOW = 'loading="eager" fetchpriority="high" decoding="async"'
LOAD_LATER = 'loading="lazy" decoding="async"'


def _preview_html(fid: str, base: str, title: str, eager: bool = False) -> str:
    """The build-time pictures of a figure (explorer/pipeline/preview.py), one per palette, or ''.

    A page's first picture is likely the largest thing on its first screen: it loads at once, with
    high priority (a lazy one waits for layout, and the page's largest paint with it)."""
    from explorer.pipeline.preview import SCHEMES, preview_size

    tags = []
    for scheme in SCHEMES:
        file = _figures_dir / fid / f"preview-{scheme}.png"
        if not file.exists():
            return ""
        size = preview_size(file)
        dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
        tags.append(f'<img class="explorer-preview explorer-preview--{scheme}" src="{base}preview-{scheme}.png"{dims} '
                    f'{LOAD_NOW if eager else LOAD_LATER} '
                    f'alt="{html.escape(title)} (a picture; it comes alive when you point at it)">')
    return "".join(tags)


def _claim(arg: str, where: str) -> str:
    fid, key, fmt = _split_claim(arg)
    claims = _entry(fid, where).get("claims", {})
    if key not in claims and DRAFT:
        log.info("draft: %s: figure %r has no claim %r yet", where, fid, key)
        return '<span class="explorer-claim explorer-claim--missing">[missing claim]</span>'
    if key not in claims:
        raise PluginError(f"{where}: figure {fid!r} has no claim {key!r}; it has: {', '.join(sorted(claims)) or 'none'}")
    value = claims[key]
    _check_format(value, fmt, f"{where}: claim {fid}:{key}")
    try:
        text = _formatted(value, fmt)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"{where}: cannot format claim {arg!r}: {exc}") from exc
    return (f'<span class="explorer-claim" data-claim="{html.escape(fid)}:{html.escape(key)}"{_other_values(fid, key, fmt)}>'
            f'{html.escape(text)}</span>')


def _other_values(fid: str, key: str, fmt: str) -> str:
    """data-alt: {model name: the claim formatted as on the page} for each `--model` run of the figure
    that recorded it. Only model-independent keys (`model`, `model_*`, written by
    `ctx.claim_subject`) carry over: any other key names one of the published models in its sentence."""
    if not (key == "model" or key.startswith("model_")):
        return ""
    alt = {}
    for name, entry in sorted(_other_models.get(fid, {}).items()):
        value = entry.get("claims", {}).get(key)
        if value is None:
            continue
        try:
            alt[name] = _formatted(value, fmt)
        except (ValueError, TypeError):
            alt[name] = _text(value)
    return f" data-alt='{html.escape(json.dumps(alt, sort_keys=True), quote=True)}'" if alt else ""


def _check_format(value: Any, fmt: str, where: str) -> None:
    """A number format only on a number: format(True, ".2f") would print 1.00 without a word."""
    if value is None:
        raise PluginError(f"{where} has no value (null): the producer recorded nothing to quote")
    if isinstance(value, (list, dict)):
        raise PluginError(f"{where} is a {type(value).__name__}; record the item the page quotes as its own claim")
    numeric = bool(fmt) and (NUMERIC_FORMAT.search(fmt) is not None or fmt.rstrip("0123456789.").endswith((",", "_")))
    if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise PluginError(f"{where} is {type(value).__name__} {value!r}: the number format {fmt!r} does not apply")


def _controls(fid: str) -> dict[str, dict]:
    """The controls the page script draws for a figure, by name (see explorer/charts.py)."""
    spec_file = _figures_dir / fid / "spec.json"
    spec = jsonio.read_json(spec_file) if spec_file.exists() else {}
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    found = {c["name"]: {"options": c["options"]} for c in meta.get("controls", [])}
    extra = meta.get("params") or {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for param in node.get("params") or []:
                bind = param.get("bind") if isinstance(param.get("bind"), dict) else None
                if "select" in param or not (bind and "input" in bind or param.get("name") in extra):
                    continue
                more = extra.get(param["name"], {})
                options = more.get("options") or (bind or {}).get("options")
                if (bind or {}).get("input") == "checkbox":
                    options = [False, True]
                text = more.get("kind") == "text" or (bind or {}).get("input") in ("search", "text")
                found.setdefault(param["name"], {"options": options, "min": (bind or {}).get("min"), "max": (bind or {}).get("max"),
                                                 "text": text})
            for key, value in node.items():
                if key not in ("params", "usermeta"):
                    visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(spec)
    return found


def _try_link(arg: str, where: str) -> str:
    parts = [p.strip() for p in arg.split("|")]
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise PluginError(f"{where}: a try link is {{{{ try: figure-id | name=value, ... | link text }}}} (got {arg!r})")
    fid, assignments, text = parts
    if _entry(fid, where).get("missing"):
        return html.escape(text)
    controls = _controls(fid)
    state: dict[str, str] = {}
    for assignment in filter(None, (a.strip() for a in assignments.split(","))):
        name, eq, value = (x.strip() for x in assignment.partition("="))
        if not eq or name not in controls:
            raise PluginError(f"{where}: figure {fid!r} has no control {name!r}; it has: {', '.join(sorted(controls)) or 'none'}")
        control = controls[name]
        options = control.get("options")
        if options is not None and value not in [_text(o) for o in options]:
            raise PluginError(f"{where}: control {fid}:{name} has no value {value!r}; it has: {', '.join(_text(o) for o in options)}")
        if options is None and control.get("text"):
            pass  # a search box takes any words
        elif options is None:
            try:
                number = float(value)
            except ValueError:
                raise PluginError(f"{where}: control {fid}:{name} takes a number, not {value!r}") from None
            if not (control["min"] <= number <= control["max"]):
                raise PluginError(f"{where}: control {fid}:{name} runs from {control['min']} to {control['max']}, not {value}")
        state[name] = value
    query = urlencode({f"{fid}.{k}": v for k, v in state.items()})
    return (f'<a class="explorer-try" href="?{html.escape(query)}#fig-{html.escape(fid)}" data-figure="{html.escape(fid)}" '
            f"data-state='{html.escape(json.dumps(state), quote=True)}'>{html.escape(text)}</a>")


PREDICT_CHOICE = re.compile(r"^(?P<label>.+?)\s*=\s*(?P<lo>-?[\d.]*(?:e-?\d+)?)\s*\.\.\s*(?P<hi>-?[\d.]*(?:e-?\d+)?)$")


def _predict(arg: str, where: str) -> str:
    """Predict, then check: a question, choices as ranges of one claim, and the measured answer.

    The right choice is not written by the author but found from the data: the one whose range
    [lo, hi) holds the claim. A claim that moves into another choice's range changes the answer;
    one that falls in none (or in two) fails the build, so the page can never reveal a wrong answer.
    """
    parts = [p.strip() for p in arg.split("|")]
    if len(parts) < 4:
        raise PluginError(f"{where}: a prediction is {{{{ predict: figure-id:claim[:format] | question | label = lo..hi | "
                          f"label = lo..hi ... }}}} with at least two choices (got {arg!r})")
    claim_arg, question, *raw = parts
    fid, key, fmt = _split_claim(claim_arg)
    claims = _entry(fid, where).get("claims", {})
    if key not in claims:
        raise PluginError(f"{where}: figure {fid!r} has no claim {key!r}; it has: {', '.join(sorted(claims)) or 'none'}")
    value = claims[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PluginError(f"{where}: prediction on claim {fid}:{key} needs a number, not {value!r}")
    choices, right = [], []
    for i, text in enumerate(raw):
        m = PREDICT_CHOICE.match(text)
        if not m:
            raise PluginError(f"{where}: prediction choice {text!r} is not 'label = lo..hi' (either end may be empty)")
        lo = float(m["lo"]) if m["lo"] else float("-inf")
        hi = float(m["hi"]) if m["hi"] else float("inf")
        choices.append(m["label"])
        if lo <= value < hi:
            right.append(i)
    if len(right) != 1:
        found = "no choice" if not right else "the choices " + ", ".join(repr(choices[i]) for i in right)
        raise PluginError(f"{where}: claim {fid}:{key} = {value!r} falls in {found}; the ranges must hold it exactly once")
    esc = html.escape
    shown = _formatted(value, fmt)
    buttons = "".join(
        f'<button type="button" class="explorer-predict__choice" aria-pressed="false"{" data-right" if i == right[0] else ""}>'
        f"{esc(label)}</button>" for i, label in enumerate(choices))
    return (
        f'<div class="explorer-predict" data-figure="{esc(fid)}">'
        f'<p class="explorer-predict__question"><strong>Predict, then check.</strong> {esc(question)}</p>'
        f'<div class="explorer-predict__choices" role="group" aria-label="{esc(question)}">{buttons}</div>'
        f'<p class="explorer-predict__answer" aria-live="polite" hidden>Measured: '
        f'<span class="explorer-claim" data-claim="{esc(fid)}:{esc(key)}">{esc(shown)}</span>, so the answer is '
        f'<strong>{esc(choices[right[0]])}</strong> (<a href="#fig-{esc(fid)}">the figure</a>).</p>'
        "</div>\n"
    )


def _text(value: Any) -> str:
    """A control value as the page script writes it (JavaScript's String())."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cpu_note(entry: dict[str, Any]) -> str:
    capability = (entry.get("cpu") or {}).get("cpu_capability")
    return f" ({capability})" if capability else ""


def _provenance_table(root: str) -> str:
    esc = html.escape
    rows = []
    for fid, e in sorted(_manifest.items()):
        versions = ", ".join(f"{k} {v}" for k, v in sorted(e.get("versions", {}).items()))
        rows.append(
            f'<tr id="{esc(fid)}"><td><code>{esc(fid)}</code><br>{esc(e["title"])}</td><td>{esc(e["model"])}</td>'
            f'<td><code>{esc(e["source"])}</code></td><td>{esc(e["scale"])}, seed {e["seed"]}, {esc(e["device"])}{esc(_cpu_note(e))}, '
            f'{e["wall_time_s"]} s</td><td><code>{esc(e["input_hash"])}</code><br>commit <code>{esc(e["git_commit"])}</code></td>'
            f"<td>{esc(versions)}</td></tr>"
        )
    return (
        '<table class="explorer-provenance"><thead><tr><th>Figure</th><th>Model</th><th>Producer</th>'
        "<th>Run</th><th>Input hash</th><th>Libraries</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
    )
