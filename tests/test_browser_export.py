"""Every figure's data downloads as CSV: the tables it draws now, as a spreadsheet reads them."""

import csv
import io
import json

import pytest

from explorer import paths
from test_browser import Tab

pytestmark = pytest.mark.browser


def _download_csv(tab, figure_id: str) -> list[list[str]]:
    button = tab.page.locator(f"#fig-{figure_id} .explorer-export button", has_text="CSV")
    with tab.page.expect_download() as info:
        button.click()
    assert not tab.problems, tab.problems
    download = info.value
    assert download.suggested_filename == f"{figure_id}.csv"
    return list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))


def test_a_figure_downloads_the_data_it_draws_as_csv(browser, site_url):
    spec = json.loads((paths.FIGURES / "patching-ablation" / "spec.json").read_text())
    rows = json.loads((paths.FIGURES / "patching-ablation" / spec["data"]["url"]).read_text())
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "interpretability/patching/")
        tab.wait_for_figures()
        table = _download_csv(tab, "patching-ablation")
        assert table[0] == list(rows[0])  # one table: its fields, no table column
        assert len(table) == 1 + len(rows)
        assert table[1][table[0].index("label")] == rows[0]["label"]
        viewer = None
        tab.page.goto(site_url + "interpretability/attention_heads/")
        tab.wait_for_figures()
        viewer = _download_csv(tab, "heads-viewer")  # a lazily loaded file: its tables, named
        assert viewer[0][0] == "table" and {"attn", "tokens"} <= {row[0] for row in viewer[1:]}
        assert not tab.problems, tab.problems
    finally:
        tab.close()


def test_csv_cells_are_quoted_and_never_formulas(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url)
        text = tab.page.evaluate("""async () => {
            const m = await import(new URL('assets/javascripts/explorer/figures.js', document.baseURI).href);
            return m.tablesToCsv([['t', [{a: '=HYPERLINK(1)', b: 'x,"y"', c: null, d: [1, 2]}, {a: 3, e: 'line\\nbreak'}]]]);
        }""")
        assert list(csv.reader(io.StringIO(text))) == [
            ["a", "b", "c", "d", "e"], ["'=HYPERLINK(1)", 'x,"y"', "", "[1,2]", ""], ["3", "", "", "", "line\nbreak"]]
    finally:
        tab.close()
