"""Hostile text through every HTML sink the site writes itself (Vega's own marks: test_browser.py).

The shortcode extension (explorer/site/shortcodes.py) writes the figure title, caption, model, data
file names, claims, try links (text and state) and the provenance table; the page script
(docs/assets/javascripts/explorer/) writes control labels and options, group titles, slider
readouts, the code box, error messages and text views. Each gets `<script>`, `<img onerror>`,
`<svg onload>`, bold tags and both kinds of quote: nothing may execute, no element may be
injected, and the text must show as written.

The shortcodes are checked in-process (fast); the page script in Chromium on a small fixture site
whose manifest, specs and data are written by hand, so they can be more hostile than a producer would be.
"""

import functools
import html
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

from explorer import jsonio, paths
from explorer.site import audit, shortcodes

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
SVG = "<svg/onload=alert(3)>"  # no whitespace: text views show spaces as dots, this still parses as an element
BOLD = "<b>bold</b>"
QUOTES = """it's "quoted" & <i>x</i>"""
BREAKOUT = """x" onmouseover="alert(4)" y='z' onfocus='alert(5)'"""
HOSTILE = (SCRIPT, IMG, SVG, BOLD, QUOTES, BREAKOUT)
DATA_NAME = "<img src=x onerror=alert(6)>.json"
BROKEN_ID = "<img src=x onerror=alert(7)>"
PICK = """<img src=x onerror=alert(8)> it's "q\""""  # a select option's value (signal), asked for by a try link

ENTRY = {
    "title": f"{SCRIPT} {QUOTES}", "caption": f"{IMG} {BREAKOUT}", "model": f"{BREAKOUT} {SVG}", "source": SCRIPT, "scale": IMG,
    "seed": 0, "device": BOLD, "wall_time_s": 1.0, "input_hash": QUOTES, "git_commit": BREAKOUT, "versions": {BOLD: IMG},
    "claims": {"name": f"{SCRIPT}{QUOTES}", "score": 0.25},
}
SPEC = {
    "data": {"name": "points"},
    "mark": "text",
    "encoding": {"x": {"field": "x", "type": "quantitative"}, "text": {"field": "label", "type": "nominal"}},
    "params": [
        {"name": "step", "value": 0},
        {"name": "mode", "value": "x", "bind": {"input": "radio", "options": ["x", "y"], "labels": [IMG, QUOTES], "name": SVG}},
        {"name": "flag", "value": False, "bind": {"input": "checkbox", "name": BOLD}},
        {"name": "pick", "value": "p", "bind": {"input": "select", "options": ["p", PICK], "labels": [BOLD, IMG]}},
        {"name": "t", "value": 1, "bind": {"input": "range", "min": 0, "max": 4, "step": 1}},
    ],
    "usermeta": {"explorer": {
        "controls": [{"name": "run", "label": SCRIPT, "options": ["a", "b"], "labels": [BOLD, QUOTES], "default": "a", "group": IMG}],
        "source": {"url": "runs/{run}.json", "datasets": ["points"], "code": "code"},
        "params": {"step": {"label": BREAKOUT, "options": [0, 1, 2], "labels": [SCRIPT, IMG, QUOTES], "play": True, "group": SVG}},
        "text": {"tokens": "tokens", "label": SCRIPT,
                 "details": {"data": "rows", "match": {"p": "@hover"}, "title": "{@text}", "columns": [{"field": "c", "label": IMG}]}},
    }},
}
TOKENS = [SVG, BOLD, "<i>x</i>", "'\""]


def payload(run: str) -> dict:
    return {"points": [{"x": i, "label": text} for i, text in enumerate(HOSTILE)],
            "tokens": [{"p": i, "t": t} for i, t in enumerate(TOKENS)],
            "rows": [{"p": i, "c": f"{IMG}{run}"} for i in range(len(TOKENS))],
            "code": f"{SCRIPT}\nprint({QUOTES!r})  # {SVG}\n"}


TRY_TEXT = f"{SCRIPT} 'q' \"q\" {IMG}"
PAGE = ("# Hostile\n\n{{ figure: xss-controls }}\n\nThe name is {{ claim: xss-controls:name }}, the score "
        "{{ claim: xss-controls:score:.0% }}.\n\n{{ try: xss-controls | run=b, pick=" + PICK + " | " + TRY_TEXT + " }}\n")


def write_site_sources(root: Path) -> Path:
    """docs/ with the hostile manifest, spec, payloads and pages (no producer runs)."""
    docs = root / "docs"
    figures = docs / "figures"
    manifest = {"xss-controls": ENTRY, BROKEN_ID: {**ENTRY, "claims": {}}}
    jsonio.write_json(figures / "manifest.json", {"figures": manifest})
    jsonio.write_json(figures / "xss-controls" / "spec.json", SPEC)
    for run in ("a", "b"):
        jsonio.write_json(figures / "xss-controls" / "runs" / f"{run}.json", payload(run))
    jsonio.write_json(figures / "xss-controls" / "data" / DATA_NAME, [])
    (docs / "index.md").write_text(PAGE)
    (docs / "broken.md").write_text("# Broken\n\n{{ figure: " + BROKEN_ID + " }}\n")  # no spec.json: the figure fails
    (docs / "provenance.md").write_text("# Provenance\n\n{{ provenance }}\n")
    return docs


# --- the shortcodes, in-process -----------------------------------------------------------------------


class Elements(HTMLParser):
    """Every element, attribute and text node of a piece of HTML."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def attrs(self, tag: str, **match) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in match.items())]


SHORTCODE_TAGS = {"figure", "div", "figcaption", "strong", "span", "a", "table", "thead", "tbody", "tr", "th", "td", "code", "br", "p",
                  "link"}  # link: preload hints for what a figure loads, nothing else (assert_inert)


@pytest.fixture
def expanded(tmp_path):
    """The shortcodes configured on the hostile manifest; `render(markdown)` expands a page's shortcodes."""
    docs = write_site_sources(tmp_path)
    shortcodes.configure(docs)
    return lambda markdown: shortcodes.expand(markdown, "section/page.md", "section/page/")


def assert_inert(parsed: Elements) -> None:
    tags = {t for t, _ in parsed.tags}
    assert tags <= SHORTCODE_TAGS, f"injected elements: {tags - SHORTCODE_TAGS}"
    for link in parsed.attrs("link"):
        assert link.get("rel") in ("preload", "modulepreload") and set(link) <= {"rel", "href", "as", "crossorigin"}, link
    handlers = [(t, name) for t, a in parsed.tags for name in a if name.startswith("on")]
    assert not handlers, f"injected event handlers: {handlers}"


def test_the_figure_html_shows_title_caption_model_and_file_names_as_text(expanded):
    parsed = Elements(expanded("{{ figure: xss-controls }}\n"))
    assert_inert(parsed)
    text = "".join(parsed.text)
    for value in (ENTRY["title"], ENTRY["caption"], ENTRY["model"], DATA_NAME):
        assert value in text, value
    (chart,) = parsed.attrs("div", **{"class": "explorer-figure__chart"})
    assert chart["aria-label"] == ENTRY["title"]  # the quotes did not end the attribute
    links = [a["href"] for a in parsed.attrs("a", download=None)]
    assert "../../figures/xss-controls/data/" + DATA_NAME in links


def test_claims_and_try_links_are_text_and_the_state_is_exact(expanded):
    parsed = Elements(expanded(PAGE))
    assert_inert(parsed)
    claims = [a for t, a in parsed.tags if t == "span" and "data-claim" in a]
    assert [c["data-claim"] for c in claims] == ["xss-controls:name", "xss-controls:score"]
    text = "".join(parsed.text)
    assert ENTRY["claims"]["name"] in text and "25%" in text
    assert TRY_TEXT in text
    (link,) = parsed.attrs("a", **{"class": "explorer-try"})
    assert json.loads(link["data-state"]) == {"run": "b", "pick": PICK}
    assert link["data-figure"] == "xss-controls"


def test_the_provenance_table_shows_every_field_as_text(expanded):
    parsed = Elements(expanded("{{ provenance }}\n"))
    assert_inert(parsed)
    text = "".join(parsed.text)
    for value in (ENTRY["title"], ENTRY["model"], ENTRY["source"], ENTRY["scale"], ENTRY["device"], ENTRY["input_hash"], ENTRY["git_commit"],
                  BROKEN_ID, f"{BOLD} {IMG}"):
        assert value in text, value
    assert [a["id"] for a in parsed.attrs("tr") if "id" in a] == sorted(["xss-controls", BROKEN_ID])


def test_try_links_reach_both_ends_of_a_range_and_integral_float_options(expanded, tmp_path):
    spec = {"params": [{"name": "t", "value": 1, "bind": {"input": "range", "min": 0, "max": 4}}],
            "usermeta": {"explorer": {"params": {"w": {"options": [0.0, 0.5, 1.0, 2.0]}}}}, "mark": "point"}
    spec["params"].append({"name": "w", "value": 0.5})
    jsonio.write_json(tmp_path / "docs" / "figures" / "xss-controls" / "spec.json", spec)
    for link, state in (("t=0", {"t": "0"}), ("t=4", {"t": "4"}), ("w=1", {"w": "1"}), ("w=0.5, t=2.5", {"w": "0.5", "t": "2.5"})):
        parsed = Elements(expanded("{{ try: xss-controls | " + link + " | go }}\n"))
        (a,) = parsed.attrs("a", **{"class": "explorer-try"})
        assert json.loads(a["data-state"]) == state, link
    for bad in ("t=-0.5", "t=4.5", "w=1.0", "w=0.25"):
        with pytest.raises(Exception, match="xss-controls"):
            expanded("{{ try: xss-controls | " + bad + " | go }}\n")


def test_escaping_round_trips_through_html_unescape(expanded):
    """An independent oracle for the whole figure block: unescaping it gives back every raw value."""
    out = expanded("{{ figure: xss-controls }}\n")
    raw = html.unescape(out)
    for value in (ENTRY["title"], ENTRY["caption"], ENTRY["model"]):
        assert value in raw and value not in out


# --- the page script, in Chromium -----------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
PANEL_TAGS = {"DIV", "SPAN", "LABEL", "SELECT", "OPTION", "INPUT", "OUTPUT", "BUTTON", "FIELDSET", "LEGEND", "P", "PRE", "CODE", "TABLE",
              "THEAD", "TBODY", "TR", "TH", "TD"}
INSPECT = """() => {
    const inside = '.explorer-figure__controls *, .explorer-textview *, .explorer-figure__code *, figcaption *, .explorer-figure__error, .explorer-figure__error *, .md-typeset table *, a.explorer-try *';
    return {
        tags: [...new Set([...document.querySelectorAll(inside)].map(e => e.tagName))],
        handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
        scripts: document.querySelectorAll('article script, figure script').length,
    };
}"""


def serve(root: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    docs = write_site_sources(root)
    shutil.copytree(paths.DOCS / "assets", docs / "assets")
    config = root / "mkdocs.yml"
    config.write_text(
        "site_name: hostile\ndocs_dir: docs\ntheme: {name: material, font: false}\n"
        "markdown_extensions: [explorer.site.shortcodes]\n"
        "extra_css: [assets/stylesheets/figures.css]\n"
        "extra_javascript: [{path: assets/javascripts/explorer/figures.js, type: module}]\n"
    )
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(root / "site")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    server, url = serve(root / "site")
    yield url
    server.shutdown()


class Chromium:
    """Chromium on a thread of its own: Playwright's sync API cannot nest, and test_browser.py holds
    one on the main thread for the whole session. `chromium(fn, *args)` runs fn(page, *args) there."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(1)
        self.pool.submit(self._start).result()

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.dialogs, self.page.errors = [], []
        self.page.on("dialog", lambda d: (self.page.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.page.errors.append(str(e)))

    def __call__(self, fn, *args):
        return self.pool.submit(fn, self.page, *args).result()

    def close(self) -> None:
        self.pool.submit(lambda: (self.browser.close(), self.playwright.stop())).result()
        self.pool.shutdown()


@pytest.fixture(scope="module")
def chromium(hostile_site):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    browser = Chromium()
    yield browser
    browser.close()


def open_page(page, url: str) -> None:
    page.goto(url)
    page.evaluate(audit.RENDER_ALL)
    page.wait_for_function(audit.ALL_DRAWN, timeout=60_000)


def assert_inert_page(page) -> None:
    found = page.evaluate(INSPECT)
    assert not page.dialogs, f"script ran: {page.dialogs}"
    assert set(found["tags"]) <= PANEL_TAGS | {"A", "STRONG", "BR"}, f"injected elements: {set(found['tags']) - PANEL_TAGS}"
    assert not found["handlers"], f"injected event handlers: {found['handlers']}"
    assert found["scripts"] == 0


@pytest.mark.browser
def test_controls_code_and_text_view_show_hostile_text_as_text(chromium, hostile_site):
    chromium(check_controls, hostile_site)


def check_controls(page, hostile_site):
    open_page(page, hostile_site)
    assert page.evaluate(audit.FAILED) == []
    assert_inert_page(page)
    fig = page.locator("figure[data-figure=xss-controls]")
    panel = fig.locator(".explorer-figure__controls")
    labels = panel.locator(".explorer-control__label").all_text_contents()
    assert labels[0] == SCRIPT and labels[1].startswith(BREAKOUT) and labels[2] == SVG  # data select, step slider, radio legend
    assert panel.locator(".explorer-controls__title").all_text_contents() == [IMG, SVG]  # group titles
    selects = panel.locator("select")
    assert selects.nth(0).locator("option").all_text_contents() == [BOLD, QUOTES]
    assert selects.nth(1).locator("option").all_text_contents() == [BOLD, IMG]
    assert panel.locator("output").first.text_content() == SCRIPT  # the step slider's readout
    radios = panel.locator("fieldset label").all_text_contents()
    assert [r.strip() for r in radios] == [IMG, QUOTES]
    assert BOLD in panel.locator(".explorer-control--checkbox label").text_content()
    assert fig.locator(".explorer-figure__code code").text_content() == payload("a")["code"]
    view = fig.locator(".explorer-textview")
    assert view.locator(".explorer-textview__label").text_content() == SCRIPT
    assert view.locator(".explorer-textview__token").all_text_contents() == [SVG, "<b>bold</b>", "<i>x</i>", "'\""]
    assert view.locator("th").all_text_contents() == [IMG] and view.locator("td").all_text_contents() == [IMG + "a"]
    assert view.locator(".explorer-textview__title").text_content() == SVG
    assert fig.locator("figcaption strong").text_content() == ENTRY["title"] + "."
    step = panel.locator("input[type=range]").first
    step.focus()
    page.keyboard.press("ArrowRight")  # the readout shows the next label
    assert panel.locator("output").first.text_content() == IMG
    assert_inert_page(page)
    assert not page.errors, page.errors


@pytest.mark.browser
def test_a_try_link_with_a_hostile_state_sets_the_controls(chromium, hostile_site):
    chromium(check_try_link, hostile_site)


def check_try_link(page, hostile_site):
    open_page(page, hostile_site)
    page.locator("a.explorer-try").click()
    page.wait_for_function("() => document.querySelector('figure[data-figure=xss-controls]').dataset.rendered === 'true'")
    page.wait_for_function("() => document.querySelectorAll('.explorer-figure__controls select')[0].value === 'b'")
    panel = page.locator(".explorer-figure__controls")
    assert panel.locator("select").nth(1).evaluate("s => s.value") == PICK
    page.wait_for_function("() => document.querySelector('.explorer-textview td').textContent.endsWith('b')")  # run b's file was loaded
    assert_inert_page(page)
    assert not page.errors, page.errors


@pytest.mark.browser
def test_an_error_message_shows_the_hostile_figure_id_as_text(chromium, hostile_site):
    chromium(check_error_message, hostile_site)


def check_error_message(page, hostile_site):
    open_page(page, hostile_site + "broken/")
    message = page.locator(".explorer-figure__error")
    assert message.count() == 1 and BROKEN_ID in message.text_content()
    assert message.locator("*").count() == 0
    assert_inert_page(page)


@pytest.mark.browser
def test_the_provenance_page_shows_hostile_fields_as_text(chromium, hostile_site):
    chromium(check_provenance, hostile_site)


def check_provenance(page, hostile_site):
    page.goto(hostile_site + "provenance/")
    cells = page.locator("table.explorer-provenance td").all_text_contents()
    assert any(ENTRY["title"] in c for c in cells) and any(ENTRY["model"] in c for c in cells)
    assert_inert_page(page)
