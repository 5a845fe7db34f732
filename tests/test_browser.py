"""The built site in a real browser: Debian's Chromium driven by Playwright.

Every page renders all of its figures with no console error and no request leaving the site,
including after an in-site (instant) navigation and a palette switch; every figure's first widget
changes what is drawn; text from data is shown as text.
"""

import functools
import http.server
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


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_url(built_site):
    server, url = serve(built_site)
    yield url
    server.shutdown()


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


def test_figures_render_after_instant_navigation_and_palette_switch(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url)  # the home page, then into an article through the site's own links
        for path in FIGURE_PAGES[:3]:
            link = tab.page.locator(f'a.md-nav__link[href$="{path}"]').first
            assert link.count(), f"no navigation link to {path}"
            link.click()
            tab.page.wait_for_url(f"**/{path}")
            assert tab.wait_for_figures() > 0
        tab.page.locator("form[data-md-component=palette] label:visible").first.click()
        tab.page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
        tab.wait_for_figures()
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_a_fresh_control_puts_clicked_selections_back_to_their_defaults(browser, site_url):
    """heads-viewer: a head picked in one model must not stay picked in a model that lacks it."""
    tab = Tab(browser, site_url)
    pick = "() => window.explorerFigures.get('heads-viewer').view.data('pick_store').map(t => t.values)"
    try:
        tab.page.goto(site_url + "interpretability/attention_heads/")
        tab.wait_for_figures()
        default = tab.page.evaluate(pick)
        assert default == [[0, 0]]
        figure = tab.page.locator("figure[data-figure=heads-viewer]")
        heads = figure.locator("g.concat_0_concat_0_cell g.role-mark")  # the overview grid: one cell per head
        assert heads.count() == 8  # induction-2l, the default: 2 layers of 4 heads
        heads.nth(7).locator("path").nth(40).click()
        assert tab.page.evaluate(pick) == [[1, 3]]
        control = figure.locator(".explorer-figure__controls select")
        control.select_option(next(v for v in control.evaluate("s => [...s.options].map(o => o.value)") if v.startswith("attn-only-1l")))
        tab.page.wait_for_function(ALL_RENDERED, timeout=RENDER_TIMEOUT_MS)
        assert tab.page.evaluate(pick) == default
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
    (docs / "index.md").write_text("# Labels\n\n{{ figure: xss-label }}\n")
    config = root / "mkdocs.yml"
    config.write_text(
        "site_name: xss\ndocs_dir: docs\ntheme: {name: material, font: false}\n"
        f"hooks: [{paths.REPO / 'explorer/site/hooks.py'}]\n"
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


PLANE = """id => {
    const view = window.explorerFigures.get(id).view;
    for (const name of Object.keys(view._runtime.data)) {
        let rows;
        try { rows = view.data(name); } catch (e) { continue; }
        if (rows.length > 100 && rows[0] && 'cell' in rows[0] && 'p' in rows[0]) return rows.map(d => [d.x, d.y, d.p, d.c]);
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
        for choice in ({}, {"layers": "3", "activation": "relu", "output": "softmax-ce"}):
            for name, value in choice.items():
                figure.locator(f".explorer-figure__controls select[name={name}]").select_option(value)
                tab.wait_for_figures()
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
