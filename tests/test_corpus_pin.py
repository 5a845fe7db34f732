"""The code corpus is this environment's standard library and site-packages (explorer.data.code_corpus),
so installing one more package into the venv changes the held-out text every flagship figure reads
and the text the zoo trains on. The flagship's weights record the corpus they were trained and
evaluated on; a clean checkout must rebuild exactly that corpus, or its published numbers drift."""

import json

import pytest

from explorer import paths
from explorer.data import code_corpus

RUNS = sorted(p for p in (paths.REPO / "models").glob("flagship-*/provenance.json"))


@pytest.mark.parametrize("provenance", RUNS, ids=[p.parent.name for p in RUNS])
def test_this_environment_builds_the_corpus_the_flagship_was_trained_on(provenance):
    recorded = json.loads(provenance.read_text())["metrics"]["corpus_fingerprint"]
    assert code_corpus.fingerprint() == recorded, (
        f"{provenance.parent.name}: the code corpus of this environment ({code_corpus.fingerprint()}) is not the one "
        f"its weights were trained on ({recorded}): a package was added to or removed from the venv (pyproject.toml, "
        "constraints.txt, or a `pip install`), which changes the held-out text of every flagship figure; install "
        "tools that are not the project's dependencies outside the venv (pip install --target, a second venv)")


def test_there_are_flagship_runs_to_check():
    assert len(RUNS) >= 3
