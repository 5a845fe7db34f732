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
    config.write_text(f"site_name: t\ndocs_dir: docs\nhooks:\n  - {paths.REPO / 'explorer/site/hooks.py'}\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(config), "-d", str(tmp_path / "site")], capture_output=True, text=True)
    assert result.returncode != 0
    assert "index.md:5: unknown figure id 'no-such-figure'" in result.stderr


def test_shortcodes_escape_captions_and_quote_claims(tmp_path):
    docs = tmp_path / "docs"
    entry = {"title": "<b>T</b>", "caption": "<script>alert(1)</script>", "model": "m", "claims": {"acc": 0.98765}}
    jsonio.write_json(docs / "figures" / "manifest.json", {"figures": {"fig-a": entry}})
    (docs / "index.md").write_text("# T\n\n{{ figure: fig-a }}\n\nAccuracy {{ claim: fig-a:acc:.1% }}. \\{{ figure: fig-a }}\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: docs\nhooks:\n  - {paths.REPO / 'explorer/site/hooks.py'}\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config), "-d", str(tmp_path / "site")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "site" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "Accuracy <span" in page and ">98.8%</span>" in page
    assert "{{ figure: fig-a }}" in page  # the escaped shortcode is shown, not expanded
