"""The site under Zensical, Material for MkDocs' successor, which reads mkdocs.yml but runs no MkDocs
hooks: the shortcodes are a Markdown extension (explorer/site/shortcodes.py) that both generators load.

Installs Zensical outside the venv (.bench/zensical) on first use, and skips when it cannot. Zensical keeps
its cache in the project's `.cache/`, which in this checkout holds the trained models, and its
`--clean` deletes that folder: so it builds a copy of mkdocs.yml and docs/ in a temporary folder,
never the checkout itself.
"""

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from explorer import jsonio, paths
from explorer.site import shortcodes
from test_site import OUTSIDE

# Not in the venv: the code corpus is the venv's site-packages (explorer.data.code_corpus), so one more
# package there changes the flagship's held-out text (tests/test_corpus_pin.py). Zensical and the two
# packages it adds to ours go into .bench/zensical instead, from the package registry, on first use.
ZENSICAL = ("zensical==0.0.73", "deepmerge==4.0.0", "tomli==2.5.0")  # 0.1.x needs zensical-ui, not on this registry
TARGET = paths.REPO / ".bench" / "zensical"


@pytest.fixture(scope="module")
def zensical_env() -> dict[str, str]:
    """The environment a subprocess imports Zensical in (skips when it cannot be installed)."""
    if importlib.util.find_spec("zensical") is not None:
        return dict(os.environ)
    if not (TARGET / "zensical").is_dir():
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(TARGET), *ZENSICAL],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.skip(f"zensical could not be installed from the package registry: {result.stderr.strip().splitlines()[-1:]}")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TARGET), os.environ.get("PYTHONPATH", "")]))}


FIGURE = re.compile(r"^\{\{\s*figure:\s*([\w-]+)\s*\}\}$", re.M)
CLAIM = re.compile(r"(?<!\\)\{\{\s*claim:\s*([\w-]+):(\w+)(?::([^}\s]*))?\s*\}\}")


def _figure_and_claim_page() -> tuple[str, str, tuple[str, str, str]]:
    """A page two folders deep (its links climb out of both) that embeds a figure and quotes a claim."""
    for page in sorted(paths.DOCS.glob("*/*.md")):
        text = page.read_text()
        figure, claim = FIGURE.search(text), CLAIM.search(text)
        if figure and claim:
            return page.relative_to(paths.DOCS).as_posix(), figure.group(1), (claim.group(1), claim.group(2), claim.group(3) or "")
    pytest.fail("no page under docs/<section>/ embeds a figure and quotes a claim")


def _block(page_html: str, start: str, end: str) -> str:
    assert start in page_html, f"{start!r} not in the page"
    return page_html[page_html.index(start):page_html.index(end, page_html.index(start)) + len(end)]


@pytest.fixture(scope="module")
def zensical_site(tmp_path_factory, zensical_env):
    root = tmp_path_factory.mktemp("zensical")
    shutil.copy(paths.REPO / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(paths.REPO / "overrides", root / "overrides")  # theme.custom_dir
    shutil.copytree(paths.DOCS, root / "docs", ignore=shutil.ignore_patterns(".staging", "*.old", ".*.tmp", ".manifest.lock"))
    draft = os.environ.get("EXPLORER_DRAFT") == "1"  # a missing claim shows instead of failing; strict dropped
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "zensical", "build", "--clean", *([] if draft else ["--strict"])],
                            cwd=root, capture_output=True, text=True, timeout=600, env=zensical_env)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"zensical build: {seconds:.1f} s")
    return root / "site"


def test_zensical_expands_figures_and_claims_as_mkdocs_does(zensical_site, built_site):
    src, fid, (claim_fid, key, fmt) = _figure_and_claim_page()
    url = src.removesuffix(".md") + "/index.html"
    page = (zensical_site / url).read_text()
    assert "{{" not in page.split('<article class="md-content__inner md-typeset">', 1)[1].split("</article>", 1)[0]
    # the figure, as MkDocs writes it; Zensical rewrites relative links of the page's HTML as seen
    # from the source file, so the extension writes them that way and both end up the same
    figure = _block(page, f'<figure class="explorer-figure" id="fig-{fid}"', "</figure>")
    assert f'data-base="../../figures/{fid}/"' in figure
    assert figure == _block((built_site / url).read_text(), f'<figure class="explorer-figure" id="fig-{fid}"', "</figure>")
    for link in re.findall(r'(?:href|src)="(\.\./\.\./[^"#]*)', figure):
        assert (zensical_site / url).parent.joinpath(link).resolve().exists(), f"{src}: {link} leads nowhere"
    # the claim, formatted as the page asks
    value = jsonio.read_json(paths.FIGURES / "manifest.json")["figures"][claim_fid]["claims"][key]
    quoted = re.findall(rf'<span class="explorer-claim" data-claim="{re.escape(claim_fid)}:{key}"[^>]*>([^<]*)</span>', page)
    assert html.escape(shortcodes._formatted(value, fmt)) in quoted, (src, claim_fid, key, quoted)
    # the page script and its styles are there; nothing is loaded from outside the site
    assert 'src="../../assets/javascripts/explorer/figures.js" type="module"' in page
    assert (zensical_site / "assets" / "vendor" / "vega-bundle.js").exists()
    assert not OUTSIDE.search(page), OUTSIDE.search(page)
