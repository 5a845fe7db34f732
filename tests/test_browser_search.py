"""Site search works offline: the reader's query finds an article by its words, a figure by its
caption, and a number the prose quotes (a claim), with no request leaving the site."""

import json
import re

import pytest

from test_browser import Tab

pytestmark = pytest.mark.browser
ARTICLE = "interpretability/attention_heads/"
CLAIM = re.compile(r'<span class="explorer-claim" data-claim="([^"]+)"[^>]*>([^<]+)</span>')


def _a_claim_only_this_page_quotes(built_site) -> str:
    """The text of a claim of ARTICLE (a head's name, a number) that no other page of the index holds."""
    docs = json.loads((built_site / "search" / "search_index.json").read_text())["docs"]
    for _, text in CLAIM.findall((built_site / ARTICLE / "index.html").read_text()):
        if len(text) < 4 or not re.search(r"\d", text):
            continue
        word = re.compile(rf"(?<![\w.]){re.escape(text)}(?!\w)")
        if {d["location"].split("#")[0] for d in docs if word.search(d["text"])} == {ARTICLE}:
            return text
    pytest.fail(f"no claim of {ARTICLE} is quoted on that page alone")


def _caption_words(built_site, figure_id: str) -> str:
    """Two words of the figure's caption that the page's prose does not use and that fewest pages hold:
    a query that finds the page only through the caption."""
    docs = json.loads((built_site / "search" / "search_index.json").read_text())["docs"]
    page = (built_site / ARTICLE / "index.html").read_text()
    start = page.index(f'id="fig-{figure_id}"')
    caption = page[page.index("<figcaption", start):page.index("</figcaption>", start)]
    caption = caption.split('<span class="explorer-figure__meta"', 1)[0]  # the title and caption, not the file list
    words = lambda text: set(re.findall(r"\b[a-z]{6,}\b", re.sub(r"<[^>]+>", " ", text).lower()))  # noqa: E731
    prose = words(re.sub(r"<figcaption.*?</figcaption>", " ", page, flags=re.S))
    pages = lambda w: {d["location"].split("#")[0] for d in docs if w in d["text"].lower()}  # noqa: E731
    rare = sorted((len(pages(w)), w) for w in words(caption) - prose if ARTICLE in pages(w))
    if len(rare) < 2:
        pytest.fail(f"{figure_id}: its caption has no words the prose does not also use")
    return " ".join(w for _, w in rare[:2])


def _search(tab, site_url, query: str) -> list[str]:
    tab.page.goto(site_url)
    box = tab.page.locator("input.md-search__input")
    box.click()
    box.fill(query)
    meta = tab.page.locator(".md-search-result__meta")
    for _ in range(50):  # a query typed before the search worker has its index is not run again: nudge it
        if "matching document" in (meta.text_content() or ""):
            break
        box.press("End")
        box.press("Space")
        box.press("Backspace")
        tab.page.wait_for_timeout(200)
    assert "matching document" in meta.text_content(), meta.text_content()
    links = tab.page.locator(".md-search-result__item > a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    return [link.split(site_url, 1)[-1].split("#")[0] for link in links]


@pytest.mark.parametrize("what", ["article", "caption", "claim"])
def test_search_finds_articles_figure_captions_and_claims(browser, site_url, built_site, what):
    query = {"article": lambda: "logit lens", "caption": lambda: _caption_words(built_site, "heads-wiki"),
             "claim": lambda: _a_claim_only_this_page_quotes(built_site)}[what]()
    expected = "interpretability/residual_stream/" if what == "article" else ARTICLE
    tab = Tab(browser, site_url)
    try:
        found = _search(tab, site_url, query)
        assert expected in found[:3], (query, found[:5])
        assert "No matching" not in tab.page.locator(".md-search-result__meta").text_content()
        assert not tab.problems, tab.problems
    finally:
        tab.close()
