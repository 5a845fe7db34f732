"""The notebook pages in a real browser: each loads with no console error and no request leaving the
site, also when reached by instant navigation; its downloads are there; and a chart as a notebook
draws it (explorer.notebook) becomes interactive with the site's own Vega bundle, both inside a page
of the site and under Jupyter's files/ route, and falls back to its static picture without one."""

import json
from pathlib import Path
from urllib.parse import urljoin

import pytest

from explorer import notebook, paths
from test_browser import Tab

pytestmark = pytest.mark.browser
SUFFIX = ".notebook.py"
PAGES = [p.relative_to(paths.DOCS).as_posix().removesuffix(".py") + "/" for p in sorted(paths.DOCS.glob(f"*/*{SUFFIX}"))]
DRAWN = "() => [...document.querySelectorAll('.explorer-notebook-chart')].every(c => ['true', 'picture', 'failed'].includes(c.dataset.drawn))"


@pytest.mark.parametrize("path", PAGES)
def test_notebook_page_loads_offline_without_errors(browser, site_url, built_site, path):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + path)
        tab.page.wait_for_load_state("networkidle")
        assert tab.page.locator(".jupyter-wrapper .jp-Cell").count() > 2, f"{path}: no notebook cells"
        assert tab.page.locator(".explorer-notebook-downloads a").count() == 3
        for link in tab.page.locator(".explorer-notebook-downloads a[download]").all():
            url = urljoin(site_url + path, link.get_attribute("href"))
            target = built_site / url.removeprefix(site_url)
            assert url.startswith(site_url) and target.is_file() and target.stat().st_size > 0, f"{path}: {url} is missing"
        assert not tab.problems, f"{path}: {tab.problems}"
    finally:
        tab.close()


def test_notebook_pages_survive_instant_navigation(browser, site_url):
    """Material re-runs a page's scripts when it swaps the page in; the notebook pages' must not fail then."""
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url)
        tab.page.evaluate("() => { window.__sameDocument = true; }")
        for path in PAGES[:3] + PAGES[:1]:  # and back to the first: its scripts run a second time
            tab.page.evaluate("url => { history.pushState({}, '', url); location$.next(new URL(url)); }", site_url + path)
            tab.page.wait_for_function("() => document.querySelector('.jupyter-wrapper .explorer-notebook-downloads, .explorer-notebook-downloads')")
            tab.page.wait_for_load_state("networkidle")
        assert tab.page.evaluate("() => window.__sameDocument === true")
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def _chart_html(cwd: Path) -> str:
    figure = "zoo-loss"
    return notebook.show(json.loads((paths.FIGURES / figure / "spec.json").read_text()), paths.FIGURES / figure, figure).html(cwd=cwd)


def _marks(tab) -> int:
    tab.page.wait_for_function(DRAWN, timeout=30_000)
    return tab.page.evaluate("() => document.querySelectorAll('.explorer-notebook-chart__view .role-mark > *').length")


def test_a_notebook_chart_draws_with_the_sites_bundle_in_a_site_page(browser, site_url, built_site):
    page = PAGES[0]
    original = (built_site / page / "index.html").read_text()
    output = _chart_html(paths.DOCS / Path(page).parent)
    marker = '<div class="jupyter-wrapper">'
    assert marker in original
    tab = Tab(browser, site_url)
    try:
        url = site_url + page.rstrip("/") + "-with-output/"  # the page as if executed, at the same depth
        tab.page.route(url, lambda r: r.fulfill(body=original.replace(marker, marker + output), content_type="text/html"))
        tab.page.goto(url)
        assert _marks(tab) > 0
        assert tab.page.evaluate("() => document.querySelector('.explorer-notebook-chart').dataset.drawn") == "true"
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_a_notebook_chart_draws_under_jupyter_and_keeps_its_picture_without_a_bundle(browser, site_url):
    """Jupyter serves the checkout's files under files/; the notebook's folder is in the address."""
    notebook_dir = paths.DOCS / "models"
    output = _chart_html(notebook_dir)
    bundle = paths.VENDOR / "vega-bundle.js"
    tab = Tab(browser, site_url)
    try:
        tab.page.route(site_url + "files/**", lambda r: r.fulfill(path=str(paths.REPO / r.request.url.split("/files/", 1)[1]))
                       if r.request.url.endswith("vega-bundle.js") else r.fulfill(status=404))
        tab.page.route(site_url + "lab/tree/**", lambda r: r.fulfill(body=f"<!doctype html><html><body>{output}</body></html>", content_type="text/html"))
        tab.page.goto(site_url + "lab/tree/docs/models/zoo.notebook.py")
        assert bundle.exists() and _marks(tab) > 0
        assert not tab.problems, tab.problems
    finally:
        tab.close()
    tab = Tab(browser, site_url)  # an editor's notebook view: no route to the bundle
    try:
        tab.page.route(site_url + "elsewhere/**", lambda r: r.fulfill(body=f"<!doctype html><html><body>{output}</body></html>", content_type="text/html"))
        tab.page.goto(site_url + "elsewhere/zoo.html")
        tab.page.wait_for_function(DRAWN, timeout=30_000)
        assert tab.page.evaluate("() => document.querySelector('.explorer-notebook-chart').dataset.drawn") == "picture"
        assert tab.page.evaluate("() => document.querySelector('.explorer-notebook-chart__picture').naturalWidth") > 0
        assert not tab.problems, tab.problems
    finally:
        tab.close()
