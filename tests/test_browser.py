"""The built site in a real browser: Debian's Chromium driven by Playwright.

Every page renders all of its figures with no console error and no request leaving the site,
including after an in-site (instant) navigation and a palette switch; every figure's first widget
changes what is drawn; text from data is shown as text.
"""

import functools
import http.server
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from explorer import paths
from explorer.site import audit

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
RENDER_TIMEOUT_MS = 60_000

ALL_RENDERED = audit.ALL_DRAWN
FAILED_FIGURES = audit.FAILED


def figure_page_paths() -> list[str]:
    """Site paths of the pages that embed a figure, from the markdown (known before the site is built)."""
    found = []
    for md in sorted(paths.DOCS.rglob("*.md")):
        if "{{ figure:" in md.read_text() and "contributing" not in md.parts:
            rel = md.relative_to(paths.DOCS).with_suffix("")
            found.append("" if rel.name == "index" and len(rel.parts) == 1 else "/".join(rel.parts) + "/")
    return found


FIGURE_PAGES = figure_page_paths()


# The `browser` and `site_url` fixtures live in conftest.py: one Chromium and one server for every
# test module (Playwright's sync API cannot start a second instance while one runs).


def serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass



class Tab:
    """A page plus everything that went wrong in it."""

    def __init__(self, browser, base_url: str, viewport: tuple[int, int] = audit.LAPTOP, dark: bool = False):
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        if dark:  # Material keeps the reader's palette choice in local storage
            self.page.add_init_script("localStorage.setItem('/.__palette', JSON.stringify({index: 1, color: {scheme: 'slate'}}))")
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        host = urlparse(base_url).netloc
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def route(r):
            if urlparse(r.request.url).netloc not in (host, "") and not r.request.url.startswith(("data:", "blob:")):
                self.problems.append(f"outside request: {r.request.url}")
                return r.abort()
            return r.continue_()

        self.page.route("**/*", route)

    def wait_for_figures(self) -> int:
        """Draw every figure of the page (they otherwise draw as they scroll into view) and wait."""
        self.page.evaluate(audit.RENDER_ALL)
        self.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
        failed = self.page.evaluate(FAILED_FIGURES)
        assert not failed, failed
        return self.page.locator("figure.explorer-figure").count()

    def close(self):
        self.page.close()


DRAWING = """(i) => { const f = document.querySelectorAll('figure.explorer-figure')[i];
    const canvas = f.querySelector('.explorer-figure__chart canvas');
    const text = f.querySelector('.explorer-textview');
    return (canvas ? canvas.toDataURL() : f.querySelector('.explorer-figure__chart').innerHTML) + (text ? text.innerHTML : ''); }"""


@pytest.mark.parametrize("path", FIGURE_PAGES)
def test_every_control_of_every_figure_changes_the_drawing(browser, site_url, path):
    """Each control (not only the first) changes what is drawn; a figure without controls draws marks."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + path)
        tab.wait_for_figures()
        figures = tab.page.locator("figure.explorer-figure")
        unchanged = []
        for i in range(figures.count()):
            fig = figures.nth(i)
            fid = fig.get_attribute("data-figure")
            controls = fig.locator(".explorer-figure__controls .explorer-control")
            if controls.count() == 0:
                marks = tab.page.evaluate("(i) => document.querySelectorAll('figure.explorer-figure')[i].querySelectorAll('.role-mark > *').length", i)
                assert marks > 0, f"{fid}: no controls and no marks drawn"
            for c in range(controls.count()):
                control = controls.nth(c)
                before = tab.page.evaluate(DRAWING, i)
                label = operate(control)
                tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
                try:
                    tab.page.wait_for_function("([i, before, D]) => eval(D)(i) !== before", arg=[i, before, DRAWING], timeout=10_000)
                except Exception:
                    unchanged.append(f"{fid}: control {label!r}")
        assert not unchanged, f"{path}: these controls do not change the drawing: {unchanged}"
        assert not tab.problems, f"{path}: {tab.problems}"
    finally:
        tab.close()


def operate(control) -> str:
    """Move one panel control to another value, as a reader would; return its label."""
    kind = control.get_attribute("class")
    label = control.locator(".explorer-control__label, label").first.inner_text().strip()
    if "explorer-control--select" in kind:
        select = control.locator("select")
        values = select.evaluate("s => [...s.options].map(o => o.value)")
        current = select.input_value()
        select.select_option(next(v for v in values if v != current))
    elif "explorer-control--radio" in kind:
        control.locator("input[type=radio]:not(:checked)").first.check()
    elif "explorer-control--checkbox" in kind:
        control.locator("input[type=checkbox]").click()
    elif "explorer-control--slider" in kind:
        control.locator("input[type=range]").evaluate("""w => { const lo = +w.min, hi = +w.max, v = +w.value;
            w.value = String(v === hi ? lo : hi); w.dispatchEvent(new Event('input', {bubbles: true})); }""")
    elif "explorer-control--text" in kind:  # a search box: words that match some of the list
        box = control.locator("input[type=search]")
        box.fill("" if box.input_value() else "L1 N1")
        box.press("Enter")
    else:
        raise AssertionError(f"unknown control kind {kind}")
    return label


@pytest.mark.parametrize("width", [audit.LAPTOP, audit.PHONE], ids=["laptop", "phone"])
@pytest.mark.parametrize("path", FIGURE_PAGES)
def test_figures_are_legible_and_fit_in_both_palettes(browser, site_url, path, width):
    """No figure text under 10 px on a laptop or 9 px on a phone, nothing wider than the screen, the
    export buttons on screen; in the dark palette every figure text stands out from what is under it."""
    tab = Tab(browser, site_url, viewport=width)
    try:
        tab.page.goto(site_url + path)
        tab.wait_for_figures()
        problems = audit.fit_problems(tab.page, width[0])
        # every figure opens from the build's compiled Vega (explorer/site/compiled.py), wide or narrow
        missed = tab.page.evaluate("() => [...window.explorerFigures.values()].filter((r) => !r.compiledHit).map((r) => r.id)")
        problems += [f"{fid}: drawn without its compiled first view (spec.vg.json missing, stale or its key differs)" for fid in missed]
        tab.page.locator("form[data-md-component=palette] label:visible").first.click()
        tab.page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
        tab.page.wait_for_timeout(50)
        tab.wait_for_figures()
        problems += [f"dark: {p}" for p in audit.fit_problems(tab.page, width[0])]
        problems += [f"dark contrast: {p}" for p in audit.contrast_problems(tab.page)]
        assert not problems, "\n".join(problems)
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_figures_render_after_instant_navigation_and_palette_switch(browser, site_url, built_site):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url)  # the home page, then into articles the way Material's instant navigation goes
        # (a click on a nav link would reload the page here: Material takes only links under site_url,
        # whose port is not the test server's), in the same document all along
        tab.page.evaluate("() => { window.__sameDocument = true; }")
        for path in [p for p in FIGURE_PAGES if p][:3]:  # articles ("" is the home page we start on)
            first = (built_site / path / "index.html").read_text().split('<figure class="explorer-figure" id="', 1)[1].split('"', 1)[0]
            tab.page.evaluate("url => { history.pushState({}, '', url); location$.next(new URL(url)); }", site_url + path)
            tab.page.wait_for_function("id => document.getElementById(id)", arg=first)
            assert tab.wait_for_figures() > 0
            assert tab.page.evaluate("() => window.__sameDocument === true"), f"{path}: the page was reloaded, not swapped in"
        tab.page.locator("form[data-md-component=palette] label:visible").first.click()
        tab.page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
        tab.wait_for_figures()
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_a_fresh_control_puts_clicked_selections_back_to_their_defaults(browser, site_url):
    """heads-viewer: a head picked in one model must not stay picked in a model that lacks it."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "interpretability/attention_heads/")
        tab.wait_for_figures()
        default = tab.page.evaluate(PICK)
        assert default == [[0, 0]]
        figure = tab.page.locator("figure[data-figure=heads-viewer]")
        heads = figure.locator(THUMBNAILS)  # the overview: one facet cell per head
        assert heads.count() == 8  # induction-2l, the default: 2 layers of 4 heads
        click_in(tab.page, heads.nth(7), 0.5, 0.9)  # on the pattern of L1H3
        assert tab.page.evaluate(PICK) == [[1, 3]]
        control = figure.locator(".explorer-figure__controls select")
        control.select_option(next(v for v in control.evaluate("s => [...s.options].map(o => o.value)") if v.startswith("attn-only-1l")))
        tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
        assert tab.page.evaluate(PICK) == default
        assert not tab.problems, tab.problems
    finally:
        tab.close()


PICK = "() => window.explorerFigures.get('heads-viewer').view.data('pick_store').map(t => t.values)"
THUMBNAILS = "g.mark-group.role-scope[class*='_cell'] > g > path.background"  # each facet cell's plot area: one per head


def click_in(page, locator, fx: float, fy: float, **options) -> None:
    """Click at a fraction (fx, fy) of an element's box (SVG boxes measured by the browser itself)."""
    locator.evaluate("e => e.scrollIntoView({block: 'center'})")  # the mouse only reaches the viewport
    box = locator.evaluate("e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
    page.mouse.click(box[0] + fx * box[2], box[1] + fy * box[3], **options)


def test_the_heads_viewer_always_shows_exactly_one_named_head(browser, site_url):
    """A click on a blank part of a thumbnail picks that head; a click between thumbnails or a
    shift-click keeps the pick; the enlarged panel shows that one head and names it."""
    tab = Tab(browser, site_url)
    detail = "() => { const v = window.explorerFigures.get('heads-viewer').view; return v.data('pick_store').length; }"
    try:
        tab.page.goto(site_url + "interpretability/attention_heads/")
        tab.wait_for_figures()
        figure = tab.page.locator("figure[data-figure=heads-viewer]")
        heads = figure.locator(THUMBNAILS)
        click_in(tab.page, heads.nth(7), 0.92, 0.08)  # the blank, masked corner of L1H3 (keys after the query)
        assert tab.page.evaluate(PICK) == [[1, 3]]
        titles = figure.locator("g.role-title text").all_text_contents()
        assert any("L1H3" in t for t in titles), titles
        box = heads.nth(7).evaluate("e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.height]; }")
        tab.page.mouse.click(box[0] - 3, box[1] + box[2] / 2)  # the gap between L1H2 and L1H3
        tab.page.keyboard.down("Shift")
        click_in(tab.page, heads.nth(7), 0.3, 0.8)
        tab.page.keyboard.up("Shift")
        assert tab.page.evaluate(PICK) == [[1, 3]] and tab.page.evaluate(detail) == 1
        shown = tab.page.evaluate("""() => { const v = window.explorerFigures.get('heads-viewer').view;
            const tokens = v.data('tokens').length; return [tokens, document.querySelectorAll(
            "figure[data-figure=heads-viewer] g.concat_1_layer_0_marks > path").length]; }""")
        assert shown[1] == shown[0] * (shown[0] + 1) // 2, shown  # one head's pattern, not all heads overlaid
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_the_heads_viewer_text_shows_the_picked_heads_attention_row(browser, site_url):
    """Hovering (or arrowing to) a token colours the tokens it can see by the picked head's weights."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "interpretability/attention_heads/")
        tab.wait_for_figures()
        figure = tab.page.locator("figure[data-figure=heads-viewer]")
        click_in(tab.page, figure.locator(THUMBNAILS).nth(5), 0.5, 0.9)  # L1H1
        tokens = figure.locator(".explorer-textview__token")
        tokens.nth(20).hover()
        tokens.nth(20).focus()
        tab.page.keyboard.press("ArrowRight")
        state = tab.page.evaluate("""() => { const r = window.explorerFigures.get('heads-viewer');
            const row = r.view.data('attn').find(d => d.l === 1 && d.h === 1 && d.q === 21);
            const spans = [...r.el.querySelectorAll('.explorer-textview__token')];
            return {hq: r.view.signal('hq'), selected: spans.findIndex(s => s.getAttribute('aria-selected') === 'true'),
                    focused: spans.indexOf(document.activeElement), masked: spans.filter(s => s.classList.contains('is-masked')).length,
                    n: spans.length, labels: spans.slice(0, 22).map(s => s.getAttribute('aria-label')), weights: row.w}; }""")
        assert state["hq"] == state["selected"] == state["focused"] == 21
        assert state["masked"] == state["n"] - 22  # the keys after the query
        for label, weight in zip(state["labels"], state["weights"]):
            assert label.endswith(f"attention {weight / 100:.2f}"), (label, weight)
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_logit_lens_position_slider_is_bounded_by_the_prompt_and_resets(browser, site_url):
    """The window slider ends where the prompt ends (the last window is full), and a new model or
    prompt puts it back at the first position, bounded by the new prompt."""
    tab = Tab(browser, site_url)
    state = """() => { const r = window.explorerFigures.get('residual-logit-lens');
        const rows = r.view.data('lens'); const input = r.el.querySelector('input[type=range]');
        return {n: Math.max(...rows.map(d => d.p)) + 1, stages: new Set(rows.map(d => d.s)).size, start: r.view.signal('start'),
                max: Number(input.max), value: Number(input.value),
                cells: r.el.querySelectorAll('g.layer_1_marks > text').length}; }"""  # one top prediction per cell
    try:
        tab.page.goto(site_url + "interpretability/residual_stream/")
        tab.wait_for_figures()
        figure = tab.page.locator("figure[data-figure=residual-logit-lens]")
        first = tab.page.evaluate(state)
        assert first["max"] == first["n"] - 16 and first["start"] == 0, first
        figure.locator("input[type=range]").evaluate("w => { w.value = w.max; w.dispatchEvent(new Event('input', {bubbles: true})); }")
        tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
        last = tab.page.evaluate(state)
        assert last["start"] == last["n"] - 16 and last["cells"] == 16 * last["stages"], last  # a full window, not an empty chart
        select = figure.locator(".explorer-figure__controls select")
        select.select_option("induction-2l--repeat")
        tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
        other = tab.page.evaluate(state)
        assert other["n"] != first["n"], (first, other)
        assert other["start"] == other["value"] == 0 and other["max"] == other["n"] - 16, other
        assert other["cells"] == 16 * other["stages"], other
        assert "residual-logit-lens.start" not in tab.page.url
        assert not tab.problems, tab.problems
    finally:
        tab.close()


XSS = "<script>alert(1)</script>"
XSS_PRODUCER = f'''
import altair as alt
import pandas as pd
from explorer.pipeline import figure

@figure("xss-label", title="Labels", caption="Labels from data.", model="none")
def produce(ctx):
    frame = pd.DataFrame({{"label": ["{XSS}", "<img src=x onerror=alert(2)>"], "v": [1, 2]}})
    return alt.Chart(frame).mark_text(align="left", fontSize=16).encode(y="label:N", text="label:N", tooltip="label:N").properties(width=400)


HOSTILE = ["{XSS}", "<img src=x onerror=alert(2)>", " and\\n", "&lt;b&gt;"]


@figure("xss-text", title="Tokens", caption="Tokens from data, in a text view.", model="none")
def produce_text(ctx):
    from explorer import charts

    tokens = [{{"p": i, "t": t, "v": (i + 1) / len(HOSTILE)}} for i, t in enumerate(HOSTILE)]
    rows = [{{"p": i, "c": t, "v": 0.5}} for i, t in enumerate(HOSTILE)]
    chart = alt.Chart(alt.InlineData(values=tokens, name="tokens")).mark_bar().encode(x="p:O", y="v:Q").properties(width=200)
    details = alt.Chart(alt.InlineData(values=rows, name="rows")).mark_point().encode(x="p:O").properties(width=200)
    text = charts.text_view("tokens", label="{XSS}", default=1,
                            color={{"data": "tokens", "key": "p", "value": "v", "label": "{XSS}", "legend": "{{@t}} {{@text}}"}},
                            details={{"data": "rows", "match": {{"p": "@hover"}}, "title": "{{@t}} {{c}}",
                                     "columns": [{{"field": "c", "label": "<img src=y onerror=alert(3)>", "token": True}}]}})
    return alt.hconcat(chart, details).properties(usermeta={{"explorer": {{"text": text}}}})
'''


@pytest.fixture(scope="session")
def xss_site(tmp_path_factory, mkdocs_build) -> str:
    root = tmp_path_factory.mktemp("xss")
    producers, docs = root / "producers", root / "docs"
    producers.mkdir()
    (producers / "labels.py").write_text(XSS_PRODUCER)
    env = {**os.environ, "EXPLORER_PRODUCERS": str(producers)}
    subprocess.run([sys.executable, "-m", "explorer", "figures", "--quiet", "--out", str(docs / "figures")], env=env, check=True, capture_output=True)
    shutil.copytree(paths.DOCS / "assets", docs / "assets")
    (docs / "index.md").write_text("# Labels\n\n{{ figure: xss-label }}\n\n{{ figure: xss-text }}\n")
    config = root / "mkdocs.yml"
    config.write_text(
        "site_name: xss\ndocs_dir: docs\ntheme: {name: material, font: false}\n"
        "markdown_extensions: [explorer.site.shortcodes]\n"
        "extra_javascript: [{path: assets/javascripts/explorer/figures.js, type: module}]\n"
    )
    mkdocs_build(root / "site", config)
    server, url = serve(root / "site")
    yield url
    server.shutdown()


def test_labels_from_data_are_shown_as_text(browser, xss_site):
    tab = Tab(browser, xss_site)
    try:
        tab.page.goto(xss_site)
        tab.wait_for_figures()
        texts = tab.page.locator("figure.explorer-figure svg text").all_text_contents()
        assert XSS in texts
        box = tab.page.locator("figure.explorer-figure svg g.mark-text.role-mark text", has_text="alert(1)").first.bounding_box()
        for dx in (0, 1, 2):  # vega shows its tooltip on pointer movement over the mark
            tab.page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
        tooltip = tab.page.locator("#vg-tooltip-element")
        tooltip.wait_for(state="attached")
        assert XSS in tooltip.text_content()
        assert not tab.dialogs, tab.dialogs
        assert tab.page.locator("figure.explorer-figure img, figure.explorer-figure script, #vg-tooltip-element img").count() == 0
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_text_views_show_tokens_from_data_as_text(browser, xss_site):
    """Hostile tokens go through the text view (tokens, colour legend, details) as text, never HTML."""
    tab = Tab(browser, xss_site)
    try:
        tab.page.goto(xss_site)
        tab.wait_for_figures()
        view = tab.page.locator("figure[data-figure=xss-text] .explorer-textview")
        tokens = view.locator(".explorer-textview__token")
        assert tokens.all_text_contents() == [XSS, "<img·src=x·onerror=alert(2)>", "·and⏎", "&lt;b&gt;"]
        tokens.nth(0).hover()
        tokens.nth(1).focus()
        tab.page.keyboard.press("ArrowRight")
        assert view.locator(".explorer-textview__title").text_content().startswith("·and⏎ ")
        tokens.nth(1).hover()
        assert "<img·src=x·onerror=alert(2)>" in view.locator(".explorer-textview__key").text_content()
        assert view.locator("th").text_content() == "<img src=y onerror=alert(3)>"
        assert XSS in view.locator(".explorer-textview__label").text_content()
        assert not tab.dialogs, tab.dialogs
        assert tab.page.locator("figure.explorer-figure img, figure.explorer-figure script, figure .explorer-textview b").count() == 0
        assert not tab.problems, tab.problems
    finally:
        tab.close()


PLANE = """id => {
    const view = window.explorerFigures.get(id).view;
    for (const name of Object.keys(view._runtime.data)) {
        let rows;
        try { rows = view.data(name); } catch (e) { continue; }
        if (rows.length > 100 && rows[0] && 'cell' in rows[0] && 'p' in rows[0] && '0' in rows[0]) {
            const step = view.signal('ckpt');
            return rows.map(d => [d.x, d.y, d[String(step)], step]);
        }
    }
    return null;
}"""


def test_playground_planes_are_the_stored_network(browser, site_url):
    """The browser draws the decision boundary from the stored weights: it must equal torch's forward pass."""
    import json
    import urllib.request

    import torch

    from explorer.models.mlp import RunConfig, build_mlp

    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "curriculum/backprop/")
        tab.wait_for_figures()
        figure = tab.page.locator("figure#fig-backprop-playground")
        for choice in ({}, {"layers": "3", "activation": "relu", "output": "softmax-ce", "ckpt": 4}):
            for name, value in choice.items():
                if name == "ckpt":
                    figure.locator("input[type=range][name=ckpt]").evaluate(
                        f"w => {{ w.value = '{value}'; w.dispatchEvent(new Event('input', {{bubbles: true}})); }}")
                else:
                    figure.locator(f".explorer-figure__controls select[name={name}]").select_option(value)
                tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
            tab.page.wait_for_timeout(200)
            plane = tab.page.evaluate(PLANE, "backprop-playground")
            assert plane, "no plane dataset in the playground view"
            source = figure.get_attribute("data-source")
            payload = json.load(urllib.request.urlopen(source))
            cfg = payload["cfg"][0]
            run = RunConfig(dataset=cfg["dataset"], layers=cfg["L"], width=cfg["W"], activation=cfg["act"],
                            output="sigmoid-mse" if cfg["out"] == 1 else "softmax-ce", batch="full", regularization="none")
            model = build_mlp(run).double()
            step = plane[0][3]
            weights = next(row["w"] for row in payload["net"] if row["c"] == step)
            linears = [m for m in model if isinstance(m, torch.nn.Linear)]
            with torch.no_grad():
                for layer, flat in zip(linears, weights):
                    matrix = torch.tensor(flat, dtype=torch.float64).reshape(layer.out_features, layer.in_features + 1) / 1000
                    layer.weight.copy_(matrix[:, :-1])
                    layer.bias.copy_(matrix[:, -1])
                xy = torch.tensor([[x, y] for x, y, _, _ in plane], dtype=torch.float64)
                logits = model(xy)
                expected = torch.sigmoid(logits[:, 0]) if cfg["out"] == 1 else torch.softmax(logits, -1)[:, 1]
            drawn = torch.tensor([p for _, _, p, _ in plane], dtype=torch.float64)
            assert torch.allclose(drawn, expected, atol=1e-6), (choice, (drawn - expected).abs().max())
        assert not tab.problems, tab.problems
    finally:
        tab.close()


# Items of the playground's marks, read from Vega's scenegraph (the playground draws on a canvas).
MARK_ITEMS = """([id, type]) => {
    const out = [];
    const visit = (node) => {
        if (!node) return;
        if (node.marktype === type) for (const it of node.items || []) out.push({
            datum: it.datum, strokeWidth: it.strokeWidth, size: it.size, text: it.text,
            width: it.bounds ? it.bounds.x2 - it.bounds.x1 : null, height: it.bounds ? it.bounds.y2 - it.bounds.y1 : null});
        for (const it of node.items || []) for (const child of it.items || []) visit(child);
    };
    visit(window.explorerFigures.get(id).view.scenegraph().root);
    return out;
}"""
PLAYGROUND = "curriculum/backprop/"


def playground_height(tab) -> float:
    return tab.page.evaluate("() => window.explorerFigures.get('backprop-playground').view.scenegraph().root.items[0].bounds.height()")


def set_playground(tab, **values):
    figure = tab.page.locator("figure#fig-backprop-playground")
    for name, value in values.items():
        if name == "ckpt":
            figure.locator("input[type=range][name=ckpt]").evaluate(
                f"w => {{ w.value = '{value}'; w.dispatchEvent(new Event('input', {{bubbles: true}})); }}")
        else:
            figure.locator(f".explorer-figure__controls select[name={name}]").select_option(str(value))
        tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)


def test_playground_shrinks_back_when_layers_or_width_drop(browser, site_url):
    """3 layers -> 1 and width 8 -> 2 used to leave empty rows of frames (the figure grew to 1,572 px)."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + PLAYGROUND)
        tab.wait_for_figures()
        small = playground_height(tab)
        set_playground(tab, layers=3, width=8)
        big = playground_height(tab)
        set_playground(tab, width=2)
        narrow = playground_height(tab)
        set_playground(tab, layers=1, width=4)
        assert big > small + 60  # two more rows of neuron planes
        assert narrow <= big
        assert abs(playground_height(tab) - small) < 2, "back at 1 layer of 4, the figure must be its first size again"
        rows = {item["datum"]["layer"] for item in tab.page.evaluate(MARK_ITEMS, ["backprop-playground", "rect"])
                if item["datum"] and "layer" in item["datum"]}
        assert rows == {"layer 1"}
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_playground_gradient_edges_share_one_log_scale_and_zero_draws_nothing(browser, site_url):
    """Backward edges used to be rescaled at every checkpoint: a 1e-8 gradient looked as thick as a large
    one, and a tooltip reading dL/dw = 0 sat under a thick edge."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + PLAYGROUND)
        tab.wait_for_figures()
        widths = {}
        for step in (0, 10):
            set_playground(tab, ckpt=step)
            rules = [r for r in tab.page.evaluate(MARK_ITEMS, ["backprop-playground", "rule"]) if r["datum"] and "grad" in r["datum"]]
            backward = [r for r in rules if r["datum"]["value"] == r["datum"]["grad"] and r["datum"]["weight"] != r["datum"]["grad"]]
            assert backward, "no backward edges drawn"
            assert all(r["datum"]["grad"] != 0 for r in backward), "a zero gradient must draw no edge"
            for r in backward:  # width follows log10 |g| over four decades below the run's largest gradient
                g, gmax = abs(r["datum"]["grad"]), r["datum"]["vmax"]
                expected = 0.4 + 5.6 * min(1, max(0, 1 + math.log10(g / gmax) / 4))
                assert r["strokeWidth"] == pytest.approx(expected, abs=1e-6)
            widths[step] = max(r["strokeWidth"] for r in backward)
        assert widths[10] < widths[0], "late, tiny gradients must look thinner than the early, large ones"
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_playground_node_values_fit_in_their_circles(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + PLAYGROUND)
        tab.wait_for_figures()
        set_playground(tab, layers=3, width=8, ckpt=3)
        circles = tab.page.evaluate(MARK_ITEMS, ["backprop-playground", "symbol"]) + tab.page.evaluate(MARK_ITEMS, ["backprop-playground", "arc"])
        sizes = {r["size"] for r in circles if r["size"]}
        diameter = 2 * math.sqrt(max(sizes) / math.pi)
        labels = [t for t in tab.page.evaluate(MARK_ITEMS, ["backprop-playground", "text"]) if t["datum"] and "delta" in t["datum"]]
        assert labels
        wide = [(t["text"], round(t["width"], 1)) for t in labels if t["text"] and t["width"] > diameter - 2]
        assert not wide, f"labels wider than their {diameter:.0f} px circles: {wide[:5]}"
    finally:
        tab.close()


def test_an_address_with_a_state_opens_the_figure_in_it_and_controls_update_the_address(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + PLAYGROUND + "?backprop-playground.dataset=circle&backprop-playground.ckpt=3")
        tab.wait_for_figures()
        figure = tab.page.locator("figure#fig-backprop-playground")
        assert figure.locator("select[name=dataset]").input_value() == "circle"
        assert figure.locator("input[type=range][name=ckpt]").input_value() == "3"
        assert "step 50" in figure.locator(".explorer-control--slider").inner_text().replace(",", "")
        assert tab.page.evaluate("() => window.explorerFigures.get('backprop-playground').view.signal('ckpt')") == 3
        assert tab.page.evaluate("() => window.explorerFigures.get('backprop-playground').view.data('cfg')[0].dataset") == "circle"
        set_playground(tab, layers=2)
        tab.page.wait_for_function("() => location.search.includes('backprop-playground.layers=2')")
        assert "backprop-playground.dataset=circle" in tab.page.evaluate("() => location.search")
        set_playground(tab, dataset="xor")  # back to the default: it leaves the address
        tab.page.wait_for_function("() => !location.search.includes('dataset')")
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_try_links_in_the_prose_set_the_figure(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + PLAYGROUND)
        tab.wait_for_figures()
        links = tab.page.locator("a.explorer-try[data-figure=backprop-playground]")
        assert links.count() >= 3
        step0 = tab.page.locator("a.explorer-try", has_text="Step 0")
        step0.click()
        tab.page.wait_for_function("() => window.explorerFigures.get('backprop-playground').view.signal('ckpt') === 0")
        tab.page.wait_for_function("() => location.search.includes('backprop-playground.ckpt=0')")
        tab.page.locator("a.explorer-try", has_text="XOR with two hidden neurons").click()
        tab.page.wait_for_function("() => (document.querySelector('#fig-backprop-playground').dataset.source || '').includes('xor-1-2-')")
        tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
        assert tab.page.locator("figure#fig-backprop-playground select[name=width]").input_value() == "2"
        assert tab.page.evaluate("() => location.pathname").endswith("/" + PLAYGROUND)  # no navigation happened
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_home_figures_are_pictures_until_the_reader_points_at_one(browser, site_url):
    """The home page runs no figure at load (it stays light); pointing at a picture makes it live."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url)
        tab.page.wait_for_load_state("load")
        tab.page.wait_for_timeout(300)
        figure = tab.page.locator("figure#fig-home-xor")
        assert figure.get_attribute("data-rendered") == "lazy"
        assert figure.locator("img.explorer-preview--light").is_visible()
        assert tab.page.evaluate("() => typeof window.vegaEmbed") == "undefined"  # the Vega library has not even loaded
        figure.locator(".explorer-figure__chart").hover()
        tab.page.wait_for_function("() => document.querySelector('#fig-home-xor').dataset.rendered === 'true'", timeout=RENDER_TIMEOUT_MS)
        assert figure.locator("img.explorer-preview").count() == 0 and figure.locator("svg, canvas").count() > 0
        assert figure.locator("input[type=range][name=step]").count() == 1
        assert not tab.problems, tab.problems
    finally:
        tab.close()


LIVE_READY = "() => { const r = document.querySelector('.explorer-live'); return r && r.explorerLive && r.explorerLive.result ? true : false; }"


def _live_weights(built_site: Path) -> dict:
    """The page's int8 weights, decoded exactly as live.js decodes them (int8 x scale, stored in float32)."""
    import base64
    import json

    import numpy as np
    import torch

    payload = json.loads((built_site / "figures" / "flagship-film" / "live" / "weights.json").read_text())
    weights = {}
    for name, tensor in payload["tensors"].items():
        q = np.frombuffer(base64.b64decode(tensor["q"]), dtype=np.int8).astype(np.float64)
        weights[name] = torch.from_numpy((q * tensor["scale"]).astype(np.float32).reshape(tensor["shape"]))
    return weights


def test_the_live_flagship_computes_what_torch_computes_and_shows_typed_html_as_text(browser, site_url, built_site):
    import torch

    from explorer.models import flagship
    from explorer.models.reference import PlainTransformer

    text = "for i in range(3):\n    print(i) <script>alert(1)</script> for i in range(3):"
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "models/flagship/")
        live = tab.page.locator(".explorer-live")
        live.scroll_into_view_if_needed()
        tab.page.wait_for_function(LIVE_READY, timeout=RENDER_TIMEOUT_MS)
        live.locator("textarea").fill(text)
        tab.page.wait_for_function(f"() => document.querySelector('.explorer-live').explorerLive.bytes.length === {len(text.encode())}",
                                   timeout=RENDER_TIMEOUT_MS)
        got = tab.page.evaluate("""() => { const s = document.querySelector('.explorer-live').explorerLive;
            return {bytes: s.bytes, logits: Array.from(s.result.logits),
                    patterns: s.result.patterns.map(l => l.map(h => Array.from(h)))}; }""")
        assert got["bytes"] == list(text.encode())
        weights = _live_weights(built_site)
        model = PlainTransformer(flagship.ARCH)
        model.load_state_dict(weights)
        tokens = torch.tensor([got["bytes"]])
        with torch.no_grad():
            logits = model(tokens)[0]  # (pos, 256)
        n = len(got["bytes"])
        assert torch.allclose(torch.tensor(got["logits"]).reshape(n, 256), logits, atol=2e-3)
        _, cache = flagship.lens_model(weights).run_with_cache(tokens)
        for layer in range(2):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]  # (head, q, k)
            assert torch.allclose(torch.tensor(got["patterns"][layer]).reshape(4, n, n), pattern, atol=1e-4)
        # typed markup is text: no element was made from it, and the bytes show as characters
        assert live.locator("script").count() == 0 and tab.dialogs == []
        assert "<script>alert(1)</script>" in live.locator(".explorer-live__tokens").inner_text().replace("·", " ")
        # pointing at a byte shows the chosen head's attention from it and five next-byte guesses
        live.locator(".explorer-live__token").nth(5).hover()
        shown = tab.page.evaluate("() => document.querySelector('.explorer-live').explorerLive.shown")
        assert shown["position"] == 5 and len(shown["top"]) == 5
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_at_load_only_figures_on_screen_draw_and_scrolling_draws_the_next_ones(browser, site_url):
    """A figure just below the fold waits for the reader (it would block a phone's first seconds)."""
    tab = Tab(browser, site_url, viewport=audit.PHONE)
    try:
        tab.page.goto(site_url + "techniques/attention/")
        tab.page.wait_for_load_state("load")
        tab.page.wait_for_timeout(1500)
        first = tab.page.locator("figure#fig-attention-heads")
        assert first.evaluate("f => f.getBoundingClientRect().top") > audit.PHONE[1]  # below the fold at load ...
        assert first.get_attribute("data-rendered") == "lazy"  # ... so not drawn
        tab.page.mouse.wheel(0, 300)  # the reader scrolls: the figure is now within 200 px of the screen
        tab.page.wait_for_function("() => document.querySelector('#fig-attention-heads').dataset.rendered === 'true'",
                                   timeout=RENDER_TIMEOUT_MS)
        assert tab.page.locator("figure#fig-attention-kv-cache").get_attribute("data-rendered") == "lazy"  # far below: still waiting
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_a_prediction_shows_the_measured_answer_after_a_pick_and_stores_nothing(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "curriculum/self_attention/")
        box = tab.page.locator(".explorer-predict").first
        answer = box.locator(".explorer-predict__answer")
        assert not answer.is_visible()
        storage = "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
        before = tab.page.evaluate(storage)
        wrong = box.locator(".explorer-predict__choice:not([data-right])").first
        wrong.click()
        assert answer.is_visible() and "Not what we measured" in answer.inner_text()
        assert wrong.get_attribute("aria-pressed") == "true"
        box.locator(".explorer-predict__choice[data-right]").click()
        assert "matches the measurement" in answer.inner_text() and wrong.get_attribute("aria-pressed") == "false"
        assert tab.page.evaluate(storage) == before  # the pick is not kept anywhere
        assert not tab.problems, tab.problems
    finally:
        tab.close()
