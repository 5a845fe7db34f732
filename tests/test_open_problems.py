"""The open-problems board (explorer/open_problems.yml, shown on docs/research/open-problems.md):
every problem of the source list once, well numbered, in a known category, and every claim of
evidence pointing at an article that exists and a figure id that is published and on that page.

The source list itself lives outside the repository (../shared/seeds), which a clean clone lacks:
the data stores how many problems each category has, and the tests hold the board to those counts;
where the list is reachable, a further test checks the numbering against it."""

import copy
import re

import pytest
import yaml

from explorer import jsonio, open_problems, paths
from explorer.errors import UnknownName
from explorer.site import audit
from test_browser import Tab

SEEDS = paths.REPO.parent / "shared" / "seeds"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(open_problems.DATA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifest() -> dict:
    return jsonio.read_json(paths.FIGURES / "manifest.json")["figures"]


def _problem(raw: dict, number: str) -> dict:
    return next(p for p in raw["problems"] if p["n"] == number)


def _with(raw: dict, edit) -> dict:
    changed = copy.deepcopy(raw)
    edit(changed)
    return changed


def test_the_board_is_whole_and_its_evidence_exists(raw, manifest):
    board = open_problems.parse(raw)
    assert open_problems.check(board, manifest) == []
    assert len(board.problems) == board.expected_count == sum(c.count for c in board.categories.values())
    assert set(board.categories) == set("123456789")
    assert {p.category for p in board.problems} == set(board.categories)  # every category has its problems
    assert board.counts["evidence"] > 0 and board.counts["answered"] > 0 and board.counts["none"] > 0


def test_the_board_keeps_the_problems_it_had_before_it_listed_them_all(raw):
    """The nine rows of the first board keep their evidence (merged in problem by problem)."""
    board = open_problems.parse(raw)
    by_number = {p.number: p for p in board.problems}
    first_board = ["1.9", "1.12", "5.9", "5.12", "5.13", "5.14", "5.22", "6.5", "6.8", "6.2", "6.18", "6.19", "6.20", "6.26"]
    for number in first_board:
        assert by_number[number].status != "none" and by_number[number].where and by_number[number].next, number


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source list (../shared/seeds) is not beside this checkout")
def test_the_numbering_is_the_source_lists():
    [source] = sorted(SEEDS.glob("002_*.txt"))
    numbers = open_problems.parse_seed_list(source.read_text(encoding="utf-8"))
    board = open_problems.load()
    assert [p.number for p in board.problems] == numbers
    assert len(numbers) == board.expected_count


def test_the_seed_parser_reads_1_1_after_1_9_as_1_10():
    assert open_problems.parse_seed_list("1.1\nq\n1.2\nq\n1.3\nq\n1.4\nq\n1.5\nq\n1.6\nq\n1.7\nq\n1.8\nq\n1.9\nq\n1.1\nq\n1.11\n") == [
        f"1.{i}" for i in range(1, 12)]
    with pytest.raises(open_problems.BoardError, match="1.3"):
        open_problems.parse_seed_list("1.1\nq\n1.3\nq\n")


def test_the_page_shows_the_data():
    assert open_problems.main(["--check"]) == 0, "run `python -m explorer.open_problems` to rewrite the board"
    page = open_problems.PAGE.read_text(encoding="utf-8")
    board = open_problems.load()
    for problem in board.problems:
        assert f'id="problem-{problem.number.replace(".", "-")}"' in page
    assert page.count('class="op-problem"') == board.expected_count


# --- each check can fail --------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["5.022", "5.", "5", "10.1", "0.3", "5.2a", " 5.2"])
def test_a_malformed_number_fails(raw, number):
    changed = _with(raw, lambda r: r["problems"][0].update(n=number))
    with pytest.raises(open_problems.BoardError, match="problem number"):
        open_problems.parse(changed)


def test_a_duplicated_number_fails(raw, manifest):
    changed = _with(raw, lambda r: r["problems"].insert(1, dict(r["problems"][0])))
    wrong = open_problems.check(open_problems.parse(changed), manifest)
    assert any("problem 1.1 appears 2 times" in w for w in wrong), wrong


def test_a_missing_problem_fails(raw, manifest):
    changed = _with(raw, lambda r: r["problems"].remove(_problem(r, "4.20")))
    wrong = open_problems.check(open_problems.parse(changed), manifest)
    assert any("category 4 lacks problems 4.20" in w for w in wrong), wrong
    assert any("the board has 338 problems" in w for w in wrong), wrong


def test_a_problem_beyond_its_categorys_count_fails(raw, manifest):
    changed = _with(raw, lambda r: r["problems"].insert(23, {"n": "1.24", "q": "an extra one"}))
    wrong = open_problems.check(open_problems.parse(changed), manifest)
    assert any("category 1 has 23 problems in the list, not 1.24" in w for w in wrong), wrong


def test_problems_out_of_order_fail(raw, manifest):
    def swap(r):
        r["problems"][9], r["problems"][10] = r["problems"][10], r["problems"][9]

    wrong = open_problems.check(open_problems.parse(_with(raw, swap)), manifest)
    assert any("not in the list's order" in w for w in wrong), wrong


def test_an_unknown_category_fails(raw):
    changed = _with(raw, lambda r: r["categories"].pop("8"))
    with pytest.raises(UnknownName, match="unknown category '8'"):
        open_problems.parse(changed)


def test_an_unknown_status_fails(raw):
    changed = _with(raw, lambda r: _problem(r, "5.22").update(status="solved"))
    with pytest.raises(UnknownName, match="status of problem 5.22"):
        open_problems.parse(changed)


def test_claimed_evidence_needs_its_text_and_figure(raw):
    changed = _with(raw, lambda r: _problem(r, "5.22").pop("where"))
    with pytest.raises(open_problems.BoardError, match="5.22 claims 'answered here for our models'"):
        open_problems.parse(changed)
    changed = _with(raw, lambda r: _problem(r, "1.1").update(evidence="something", where=[{"page": "index.md", "figure": "home-xor"}]))
    with pytest.raises(open_problems.BoardError, match="1.1 is not attempted but has evidence"):
        open_problems.parse(changed)


def test_evidence_in_a_figure_that_does_not_exist_fails(raw, manifest):
    changed = _with(raw, lambda r: _problem(r, "1.12")["where"][0].update(figure="patching-ablations"))
    wrong = open_problems.check(open_problems.parse(changed), manifest)
    assert wrong == ["problem 1.12: figure 'patching-ablations' is not in docs/figures/manifest.json"]


def test_evidence_on_a_page_that_does_not_exist_fails(raw, manifest):
    changed = _with(raw, lambda r: _problem(r, "1.12")["where"][0].update(page="interpretability/ablation.md"))
    wrong = open_problems.check(open_problems.parse(changed), manifest)
    assert wrong == ["problem 1.12: page interpretability/ablation.md does not exist under docs/"]


def test_evidence_in_a_figure_that_is_on_another_page_fails(raw, manifest):
    changed = _with(raw, lambda r: _problem(r, "1.12")["where"][0].update(figure="heads-wiki"))
    wrong = open_problems.check(open_problems.parse(changed), manifest)
    assert wrong == ["problem 1.12: figure 'heads-wiki' is not on interpretability/patching.md"]


def test_text_from_the_data_is_escaped_on_the_page(raw):
    def inject(r):
        _problem(r, "1.1")["q"] = "<script>alert(1)</script> & *not emphasis*"
        _problem(r, "1.12")["evidence"] = '<img src=x onerror="alert(2)">'
        _problem(r, "1.12")["next"] = "</p><b>bold</b>"
        r["categories"]["1"]["name"] = "<i>Neurons</i> | [link](x)"

    page = open_problems.render(open_problems.parse(_with(raw, inject)))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; *not emphasis*" in page
    assert "<img" not in page and "&lt;img src=x onerror=" in page
    assert "<b>bold" not in page
    assert "<i>" not in page and r"&lt;i&gt;Neurons&lt;/i&gt; \| \[link\](x)" in page
    # the question sits in a raw HTML block, so Markdown leaves it as written
    question = re.search(r'<p class="op-problem__question">(.*?)</p>', page).group(1)
    assert question.endswith("*not emphasis*")


# --- in a browser ---------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_board_filters_by_category_and_status(browser, site_url):
    board = open_problems.load()
    in_category = [p for p in board.problems if p.category == "4"]
    both = [p for p in in_category if p.status == "evidence"]
    assert 0 < len(both) < len(in_category) < board.expected_count
    tab = Tab(browser, site_url)
    try:
        # arrive as Material's instant navigation brings a reader who follows a link inside the site:
        # the address changes, the page is swapped and scripts are not rerun, yet the board must get
        # its filters. (A click would load the whole page here: the test server's port is not the
        # one in site_url, so Material does not count its links as the site's.)
        tab.page.goto(site_url)
        tab.page.evaluate("() => { window.boardTestMarker = true; }")
        tab.page.evaluate("url => { history.pushState({}, '', url); location$.next(new URL(url)); }", site_url + "research/open-problems/")
        tab.page.wait_for_function("() => location.pathname.endsWith('/research/open-problems/') && document.querySelector('.op-board')")
        form = tab.page.locator(".op-filters")
        form.wait_for(state="visible")
        assert tab.page.evaluate("() => window.boardTestMarker") is True  # no full page load happened
        visible = "() => [...document.querySelectorAll('.op-problem')].filter(e => e.offsetParent !== null).length"
        assert tab.page.evaluate(visible) == board.expected_count
        form.locator("select[name=category]").select_option("4")
        assert tab.page.evaluate(visible) == len(in_category)
        form.locator("select[name=status]").select_option("evidence")
        assert tab.page.evaluate(visible) == len(both)
        assert form.locator(".op-count").inner_text() == f"{len(both)} of {board.expected_count} problems"
        assert tab.page.locator(".op-category:visible").count() == 1
        assert "category=4" in tab.page.url and "status=evidence" in tab.page.url
        tab.page.reload()  # the address keeps the view
        form.wait_for(state="visible")
        assert tab.page.evaluate(visible) == len(both)
        form.locator("select[name=category]").select_option("")
        assert tab.page.evaluate(visible) == board.counts["evidence"]
        assert not tab.problems, tab.problems
    finally:
        tab.close()


@pytest.mark.browser
def test_the_board_fits_a_phone_in_the_dark_palette(browser, site_url):
    tab = Tab(browser, site_url, viewport=audit.PHONE, dark=True)
    try:
        tab.page.goto(site_url + "research/open-problems/?status=answered")
        tab.page.locator(".op-filters").wait_for(state="visible")
        assert tab.page.evaluate("document.body.getAttribute('data-md-color-scheme')") == "slate"
        assert tab.page.evaluate("document.documentElement.scrollWidth") <= audit.PHONE[0]
        widest = tab.page.evaluate("Math.max(...[...document.querySelectorAll('.op-board *, .op-summary table')].map(e => e.getBoundingClientRect().right))")
        assert widest <= audit.PHONE[0], widest
        # Material lets a wide table scroll inside its own box; the summary should not need to
        assert tab.page.evaluate("(w => w.scrollWidth <= w.clientWidth)(document.querySelector('.op-summary .md-typeset__scrollwrap'))")
        assert tab.page.locator(".op-problem:visible").count() == open_problems.load().counts["answered"]
        assert not tab.problems, tab.problems
    finally:
        tab.close()
