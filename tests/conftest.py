"""Shared fixtures: figures built at smoke scale, once per test session, article by article."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import jsonio, paths
from explorer.pipeline import build as pipeline
from explorer.pipeline.registry import discover


REBUILD = os.environ.get("SMOKE_REBUILD") == "1"  # rebuild every article's smoke figures, fresh or not
STALE_AT_START: list[str] = []  # smoke figures whose committed files did not match the code when the session began


def pytest_collection_modifyitems(session, config, items):
    """Before any test rebuilds them, note which committed smoke figures are stale (test_smoke_figures.py asks)."""
    if any(item.path.name == "test_smoke_figures.py" for item in items):
        STALE_AT_START[:] = pipeline.check(scale="smoke")


class SmokeBuild:
    """Brings an article's smoke-scale figures up to date in tests/smoke-figures/ the first time one is asked for.

    That folder is committed (explorer.pipeline.build.SMOKE_FIGURES), so a clean checkout rebuilds
    only the articles whose inputs changed (the pipeline's own hashes decide); SMOKE_REBUILD=1
    rebuilds every article once per session.
    """

    def __init__(self, out: Path, force: bool = False):
        self.out = out
        self.force = force
        self.outcomes: dict[str, pipeline.Outcome] = {}

    def _ensure(self, figure_id: str) -> None:
        if figure_id in self.outcomes:
            return
        figures = discover()
        assert figure_id in figures, f"no figure {figure_id!r}"
        article = [fid for fid, f in figures.items() if f.article == figures[figure_id].article]
        for outcome in pipeline.build(article, scale="smoke", out=self.out, force=self.force, progress=False):
            self.outcomes[outcome.id] = outcome

    def claims(self, figure_id: str) -> dict:
        self._ensure(figure_id)
        outcome = self.outcomes[figure_id]
        assert outcome.status in ("built", "fresh"), f"{figure_id}: {outcome.status}: {outcome.message}"
        return pipeline.read_manifest(self.out)[figure_id].get("claims", {})

    def spec(self, figure_id: str) -> dict:
        return jsonio.read_json(self.path(figure_id) / "spec.json")

    def path(self, figure_id: str) -> Path:
        self.claims(figure_id)
        return self.out / figure_id


@pytest.fixture(scope="session")
def smoke() -> SmokeBuild:
    return SmokeBuild(pipeline.default_out("smoke"), force=REBUILD)


@pytest.fixture(scope="session")
def smoke_claims(smoke: SmokeBuild):
    """`smoke_claims("figure-id")` -> the claims that figure's producer recorded at smoke scale."""
    return smoke.claims


TOOLS = paths.REPO / ".tools"  # what `make tools` installs outside the venv (tools-constraints.txt)


def tools_env() -> dict[str, str]:
    """The environment of a subprocess that needs the tools outside the venv: mkdocs-jupyter for the
    notebook pages, nbclient and ipykernel to run the notebooks. Installs them (as `make tools` does)
    when they are missing; never into the venv, whose site-packages are the code corpus."""
    if not (TOOLS / ".installed").exists():
        shutil.rmtree(TOOLS, ignore_errors=True)
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(TOOLS),
                                 "-r", str(paths.REPO / "tools-constraints.txt")], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"`make tools` failed: {result.stderr.strip().splitlines()[-3:]}"
        (TOOLS / ".installed").touch()
    path = os.pathsep.join(filter(None, [str(TOOLS), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, "JUPYTER_PATH": str(TOOLS / "share" / "jupyter")}


def build_site(destination: Path, config: Path | None = None) -> Path:
    """`mkdocs build --strict` into `destination` (the repo's own site unless `config` is given),
    with the tools of `make tools` on the path (the site's mkdocs.yml renders the notebooks)."""
    # not -q: it hides the warnings strict counts; EXPLORER_DRAFT=1 (local work while figures are
    # being rebuilt) shows missing claims instead of failing, and drops strict
    strict = ["--no-strict"] if os.environ.get("EXPLORER_DRAFT") == "1" else ["--strict"]
    command = [sys.executable, "-m", "mkdocs", "build", *strict, "-d", str(destination)]
    if config is not None:
        command += ["-f", str(config)]
    result = subprocess.run(command, cwd=paths.REPO, capture_output=True, text=True, env=tools_env())
    assert result.returncode == 0, result.stderr
    return destination


@pytest.fixture(scope="session")
def mkdocs_build():
    return build_site


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The real site, built once per test session."""
    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def one_thread():
    """Tiny models: one torch thread is several times faster than two on a busy machine.
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session, shared by every browser test module."""
    from test_browser import CHROMIUM, FLAGS

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def site_url(built_site):
    """The real site, served on a free port."""
    from test_browser import serve

    server, url = serve(built_site)
    yield url
    server.shutdown()
