"""The published figures and the built site: compile, stay fresh, build strictly, stay offline."""

import re
import subprocess
import sys

import pytest
import vl_convert as vlc

from explorer import jsonio, paths
from explorer.site.weights import page_weights

PAGE_BUDGET = 1_500_000  # bytes of figure spec + data per page
PUBLISHED = sorted(p.parent.name for p in paths.FIGURES.glob("*/spec.json"))
SHORTCODES = "markdown_extensions: [explorer.site.shortcodes]\n"  # the site's shortcodes, as mkdocs.yml lists them
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//(?!127\.0\.0\.1|localhost)|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//""", re.I)


def test_published_figures_are_fresh():
    result = subprocess.run([sys.executable, "-m", "explorer", "figures", "--check"], cwd=paths.REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"stale figures (run `make figures`):\n{result.stdout}{result.stderr}"


def test_every_published_figure_is_in_the_manifest():
    manifest = jsonio.read_json(paths.FIGURES / "manifest.json")["figures"]
    assert PUBLISHED and sorted(manifest) == PUBLISHED
    assert all(entry["scale"] == "full" for entry in manifest.values())


@pytest.mark.parametrize("figure_id", PUBLISHED)
def test_published_spec_compiles(figure_id):
    spec = jsonio.read_json(paths.FIGURES / figure_id / "spec.json")
    vega = vlc.vegalite_to_vega(spec)
    assert vega["marks"] or vega.get("signals")
    for url in re.findall(r'"url":\s*"([^"]+)"', jsonio.dumps(spec)):
        assert not re.match(r"^([a-z]+:)?//", url), f"{figure_id}: data must load from the site, not {url}"


def test_site_builds_strictly_and_references_nothing_outside(built_site):
    offenders = []
    for page in list(built_site.rglob("*.html")) + list(built_site.rglob("*.css")):
        text = page.read_text(errors="replace")
        offenders += [f"{page.relative_to(built_site)}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert not offenders, "\n".join(offenders[:20])
    assert (built_site / "assets" / "vendor" / "vega-bundle.js").exists()


def test_every_page_stays_within_its_figure_budget(built_site):
    weights = page_weights(built_site)
    assert weights, "no page embeds a figure"
    heavy = {page: size for page, size in weights.items() if size > PAGE_BUDGET}
    assert not heavy, f"pages over {PAGE_BUDGET} bytes of figure data: {heavy}"


def test_unknown_figure_id_fails_the_build_with_page_and_id(tmp_path):
    docs = tmp_path / "docs"
    (docs / "figures").mkdir(parents=True)
    jsonio.write_json(docs / "figures" / "manifest.json", {"figures": {}})
    (docs / "index.md").write_text("# Title\n\nText.\n\n{{ figure: no-such-figure }}\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: docs\n{SHORTCODES}")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(tmp_path / "site")], capture_output=True, text=True)
    assert result.returncode != 0
    assert "index.md:5: unknown figure id 'no-such-figure'" in result.stderr


def test_shortcodes_escape_captions_and_quote_claims(tmp_path):
    docs = tmp_path / "docs"
    entry = {"title": "<b>T</b>", "caption": "<script>alert(1)</script>", "model": "m", "claims": {"acc": 0.98765}}
    jsonio.write_json(docs / "figures" / "manifest.json", {"figures": {"fig-a": entry}})
    (docs / "index.md").write_text("# T\n\n{{ figure: fig-a }}\n\nAccuracy {{ claim: fig-a:acc:.1% }}. \\{{ figure: fig-a }}\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: docs\n{SHORTCODES}")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config), "-d", str(tmp_path / "site")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "site" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "Accuracy <span" in page and ">98.8%</span>" in page
    assert "{{ figure: fig-a }}" in page  # the escaped shortcode is shown, not expanded


def _tiny_site(tmp_path, page: str, figures: dict | None = None, specs: dict | None = None, extra: str = ""):
    """A one-page site using the real shortcode extension; returns the build's CompletedProcess and the site folder."""
    docs = tmp_path / "docs"
    (docs / "figures").mkdir(parents=True, exist_ok=True)
    jsonio.write_json(docs / "figures" / "manifest.json", {"figures": figures or {}})
    for fid, spec in (specs or {}).items():
        jsonio.write_json(docs / "figures" / fid / "spec.json", spec)
    (docs / "index.md").write_text(page)
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: docs\n{SHORTCODES}{extra}")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(tmp_path / "site")],
                            capture_output=True, text=True)
    return result, tmp_path / "site"


@pytest.mark.parametrize("line", ["{{ figur: fig-a }}", "{{ figure: fig-a }", "see { figure: fig-a }} here", "{{ claim fig-a:acc }}"])
def test_malformed_shortcodes_fail_with_page_and_line(tmp_path, line):
    result, _ = _tiny_site(tmp_path, f"# T\n\nText.\n\n{line}\n", {"fig-a": {"title": "t", "caption": "c", "model": "m", "claims": {"acc": 0.5}}})
    assert result.returncode != 0
    assert "index.md:5: malformed shortcode" in result.stderr


def test_shortcodes_in_code_are_shown_not_expanded(tmp_path):
    result, site = _tiny_site(tmp_path, "# T\n\nWrite `{{ figure: some-id }}` or `f({a: {b: 1}},\n  {c: 2}})`.\n\n```\n{{ claim: x:y }}\n```\n")
    assert result.returncode == 0, result.stderr
    page = (site / "index.html").read_text()
    assert "{{ figure: some-id }}" in page and "{{ claim: x:y }}" in page


@pytest.mark.parametrize(("claims", "code", "message"), [
    ({"flag": True}, "flag:.2f", "is bool True: the number format '.2f' does not apply"),
    ({"head": "L1H0"}, "head:.1%", "is str 'L1H0'"),
    ({"missing": None}, "missing", "has no value"),
    ({"rows": [1, 2]}, "rows", "is a list"),
])
def test_claim_formats_must_fit_the_claim_type(tmp_path, claims, code, message):
    result, _ = _tiny_site(tmp_path, f"# T\n\nValue {{{{ claim: fig-a:{code} }}}}.\n", {"fig-a": {"title": "t", "caption": "c", "model": "m", "claims": claims}})
    assert result.returncode != 0
    assert "index.md:3: claim fig-a:" in result.stderr and message in result.stderr


TRY_SPEC = {"usermeta": {"explorer": {"controls": [{"name": "run", "options": ["a", "b<c"], "default": "a"}]}},
            "params": [{"name": "step", "value": 3}, {"name": "t", "value": 1, "bind": {"input": "range", "min": 0, "max": 4}},
                       {"name": "pick", "select": "point"}],
            "mark": "point"}
TRY_SPEC["usermeta"]["explorer"]["params"] = {"step": {"options": [0, 1, 2, 3], "kind": "slider"}}
TRY_ENTRY = {"fig-a": {"title": "t", "caption": "c", "model": "m", "claims": {}}}


def test_try_links_carry_a_checked_state(tmp_path):
    result, site = _tiny_site(tmp_path, "# T\n\n{{ figure: fig-a }}\n\n{{ try: fig-a | run=b<c, step=2, t=1.5 | see b & <2> }}\n", TRY_ENTRY, {"fig-a": TRY_SPEC})
    assert result.returncode == 0, result.stderr
    page = (site / "index.html").read_text()
    assert 'class="explorer-try" href="?fig-a.run=b%3Cc&amp;fig-a.step=2&amp;fig-a.t=1.5#fig-fig-a"' in page
    assert "data-state='{&quot;run&quot;: &quot;b&lt;c&quot;, &quot;step&quot;: &quot;2&quot;, &quot;t&quot;: &quot;1.5&quot;}'" in page
    assert ">see b &amp; &lt;2&gt;</a>" in page


@pytest.mark.parametrize(("link", "message"), [
    ("{{ try: fig-b | run=a | x }}", "unknown figure id 'fig-b'"),
    ("{{ try: fig-a | speed=2 | x }}", "figure 'fig-a' has no control 'speed'; it has: run, step, t"),
    ("{{ try: fig-a | run=z | x }}", "control fig-a:run has no value 'z'; it has: a, b<c"),
    ("{{ try: fig-a | step=9 | x }}", "control fig-a:step has no value '9'"),
    ("{{ try: fig-a | t=7 | x }}", "control fig-a:t runs from 0 to 4, not 7"),
    ("{{ try: fig-a | run=a }}", "a try link is"),
])
def test_bad_try_links_fail_with_page_and_line(tmp_path, link, message):
    result, _ = _tiny_site(tmp_path, f"# T\n\n{link}\n", TRY_ENTRY, {"fig-a": TRY_SPEC})
    assert result.returncode != 0
    assert f"index.md:3: " in result.stderr and message in result.stderr, result.stderr


PREDICT_ENTRY = {"fig-a": {"title": "t", "caption": "c", "model": "m", "claims": {"acc": 0.25, "head": "L1H0"}}}


def test_a_prediction_reveals_the_choice_that_holds_the_claim(tmp_path):
    """The right answer is found from the data, not written by the author; the page reveals it only after a pick."""
    page = "# T\n\n{{ predict: fig-a:acc:.0% | What <happens>? | it falls = ..0.5 | it holds = 0.5.. }}\n"
    result, site = _tiny_site(tmp_path, page, PREDICT_ENTRY)
    assert result.returncode == 0, result.stderr
    html = (site / "index.html").read_text()
    assert "What &lt;happens&gt;?" in html
    assert '<button type="button" class="explorer-predict__choice" aria-pressed="false" data-right>it falls</button>' in html
    assert '<button type="button" class="explorer-predict__choice" aria-pressed="false">it holds</button>' in html
    assert 'aria-live="polite" hidden>Measured: <span class="explorer-claim" data-claim="fig-a:acc">25%</span>' in html


@pytest.mark.parametrize(("code", "message"), [
    ("fig-a:acc | Q? | low = ..0.1 | high = 0.5..", "claim fig-a:acc = 0.25 falls in no choice"),
    ("fig-a:acc | Q? | low = ..0.3 | mid = 0.2..0.6", "falls in the choices 'low', 'mid'"),
    ("fig-a:head | Q? | a = ..1 | b = 1..", "needs a number, not 'L1H0'"),
    ("fig-a:acc | Q? | a = ..1", "at least two choices"),
    ("fig-a:acc | Q? | a ..1 | b = 1..", "is not 'label = lo..hi'"),
    ("fig-a:nope | Q? | a = ..1 | b = 1..", "figure 'fig-a' has no claim 'nope'"),
])
def test_bad_predictions_fail_with_page_and_line(tmp_path, code, message):
    result, _ = _tiny_site(tmp_path, f"# T\n\n{{{{ predict: {code} }}}}\n", PREDICT_ENTRY)
    assert result.returncode != 0
    assert "index.md:3: " in result.stderr and message in result.stderr, result.stderr


def test_a_page_missing_from_nav_fails_the_build(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    result, _ = _tiny_site(tmp_path, "# T\n", extra="nav:\n  - Home: index.md\n" + REPO_VALIDATION)
    assert result.returncode != 0
    assert "orphan.md" in result.stderr


REPO_VALIDATION = "validation:\n  " + (paths.REPO / "mkdocs.yml").read_text().split("\nvalidation:", 1)[1].split("\n  nav:", 1)[1].split("\n")[0].join(["nav:", "\n"])


def test_the_extension_finds_its_page_under_plain_markdown(tmp_path):
    """Outside MkDocs and Zensical nobody tells the extension its page: it finds the one file under
    docs_dir holding the text, for the figure's links (relative to the page) and the errors."""
    import markdown

    from explorer.site import shortcodes

    docs = tmp_path / "docs"
    jsonio.write_json(docs / "figures" / "manifest.json", {"figures": TRY_ENTRY})
    text = "# T\n\n{{ figure: fig-a }}\n"
    (docs / "section").mkdir()
    (docs / "section" / "page.md").write_text(text)
    (docs / "index.md").write_text("# Home\n")
    out = markdown.markdown(text, extensions=[shortcodes.makeExtension(docs_dir=str(docs))])
    assert 'data-base="../../figures/fig-a/"' in out and 'href="../../provenance/#fig-a"' in out
    with pytest.raises(shortcodes.PluginError, match=r"^section/page.md:3: unknown figure id 'fig-b'"):
        markdown.markdown(text.replace("fig-a", "fig-b"), extensions=[shortcodes.makeExtension(docs_dir=str(docs), page="section/page.md")])
    (docs / "other.md").write_text("# Other\n\n{{ figure: fig-a }}\n")  # the line alone no longer names one page
    with pytest.raises(shortcodes.PluginError, match="cannot tell which page"):
        markdown.markdown("# Elsewhere\n\n{{ figure: fig-a }}\n", extensions=[shortcodes.makeExtension(docs_dir=str(docs))])
