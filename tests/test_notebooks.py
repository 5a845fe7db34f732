"""The companion notebooks (docs/<section>/<article>.notebook.py): every article with a producer has
one and links to it, each redraws a figure of its own article, and each runs from top to bottom.

The notebooks run in kernels of the venv's Python (ipykernel from .tools) through `python -m
explorer.notebook --one-kernel`: two kernels side by side, each running its share of notebooks
one after another with the namespace reset between them, so torch is imported once per kernel
rather than once per notebook (about 5 s each). Their figures build at smoke scale into
tests/smoke-figures/ (committed), where the article tests' SmokeBuild finds them, so a notebook
costs little more than its cells.
"""

import json
import re
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import tools_env
from explorer import paths
from explorer.pipeline.index import scan

SUFFIX = ".notebook.py"
NOTEBOOKS = sorted(paths.DOCS.glob(f"*/*{SUFFIX}"))
AT_ONCE = 2  # the test machine has two cores
FIGURE_CALL = re.compile(r"""notebook\.figure\(\s*["']([a-z0-9-]+)["']""")


def articles_with_producers() -> list[Path]:
    """docs/<section>/<article>.md that embeds a figure and has build_figures/<article>.py."""
    return [md for md in sorted(paths.DOCS.glob("*/*.md"))
            if "{{ figure:" in md.read_text() and (paths.BUILD_FIGURES / f"{md.stem}.py").exists()]


def notebook_of(article: Path) -> Path:
    return article.with_name(article.stem + SUFFIX)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("article", articles_with_producers(), ids=lambda p: p.relative_to(paths.DOCS).as_posix())
def test_every_article_with_a_producer_has_a_notebook_and_links_to_it(article):
    notebook = notebook_of(article)
    assert notebook.exists(), f"{paths.display(article)} has a producer but no notebook {paths.display(notebook)} (see Contributing -> Writing an article)"
    assert re.search(rf"\[Run this yourself\]\({re.escape(notebook.name)}\)", article.read_text()), \
        f"{paths.display(article)} does not link to its notebook: [Run this yourself]({notebook.name})"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.relative_to(paths.DOCS).as_posix())
def test_each_notebook_redraws_a_figure_of_its_own_article(notebook):
    stem = notebook.name.removesuffix(SUFFIX)
    assert notebook.with_name(stem + ".md").exists(), f"{paths.display(notebook)} has no article beside it"
    figures = scan().figures
    called = FIGURE_CALL.findall(notebook.read_text())
    assert called, f"{paths.display(notebook)} draws no figure with notebook.figure(...)"
    for fid in called:
        assert fid in figures and figures[fid].article == stem, f"{paths.display(notebook)}: {fid!r} is not a figure of build_figures/{stem}.py"
    text = notebook.read_text()
    assert text.startswith("# ---\n# jupyter:\n") and "# %% [markdown]\n# # " in text, "a jupytext percent script with a title"


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[Path, tuple[bool, str, float]]:
    """Every notebook run, AT_ONCE kernels side by side, each kernel running its share one after
    another (explorer.notebook --one-kernel: imports once, namespace reset between notebooks):
    path -> (ran, error, seconds)."""
    out = tmp_path_factory.mktemp("notebooks")
    env = tools_env()
    shares = [NOTEBOOKS[i::AT_ONCE] for i in range(AT_ONCE)]

    def run(k: int) -> dict[Path, tuple[bool, str, float]]:
        report = out / f"report-{k}.json"
        result = subprocess.run([sys.executable, "-m", "explorer.notebook", "--one-kernel", "--report", str(report), "--out", str(out),
                                 *map(str, shares[k])], cwd=paths.REPO, capture_output=True, text=True, env=env, timeout=1800)
        if not report.exists():  # the runner itself died: every notebook of this share fails with its output
            return {nb: (False, (result.stdout + result.stderr)[-4000:], 0.0) for nb in shares[k]}
        return {Path(p): tuple(r) for p, r in json.loads(report.read_text()).items()}

    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    results: dict[Path, tuple[bool, str, float]] = {}
    with ThreadPoolExecutor(AT_ONCE) as pool:
        for share in pool.map(run, range(AT_ONCE)):
            results.update(share)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime  # the runners and their kernels
    print(f"\n{len(NOTEBOOKS)} notebooks ran in {time.perf_counter() - started:.0f} s ({cpu_s:.0f} CPU s), {AT_ONCE} kernel(s): "
          + ", ".join(f"{p.name.removesuffix(SUFFIX)} {r[2]:.0f} s" for p, r in results.items()))
    return results


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.relative_to(paths.DOCS).as_posix())
def test_notebook_runs_without_an_error(executed, notebook):
    assert notebook in executed, f"{paths.display(notebook)} was not run"
    ran, error, _ = executed[notebook]
    assert ran, error[-4000:]


@pytest.mark.parametrize("figure_id", ["zoo-loss", "heads-viewer"])
def test_a_notebook_chart_is_self_contained(figure_id):
    """What a notebook draws carries its data (the data files and the file its controls start on) and the
    palette's colours, so it needs neither the site's page script nor its stylesheet; it still compiles."""
    from explorer import jsonio, notebook
    from explorer.pipeline.spec import check_compiles

    folder = paths.FIGURES / figure_id
    published = jsonio.read_json(folder / "spec.json")
    spec = notebook.show(published, folder).spec
    text = jsonio.dumps(spec)
    assert "var(--fig-" not in text and "usermeta" not in text
    assert not re.findall(r'"url":\s*"', text), "every data file is inlined"
    source = (published.get("usermeta") or {}).get("explorer", {}).get("source")
    for name in (source or {}).get("datasets", []):
        assert name in spec["datasets"], f"{figure_id}: the starting file's {name!r} is not inlined"
    check_compiles(spec)
