"""The code corpus is this environment's standard library and site-packages (explorer.data.code_corpus),
so installing one more package into the venv changes the held-out text every flagship figure reads
and the text the zoo trains on. tests/corpus_pin.json records the corpus the published figures were
built on: the held-out bytes and the names of every file. (Not code_corpus.fingerprint(), which the
flagship's provenance records: it counts the size of the editable install's finder file, which
holds the checkout's path, so it changes with the folder a clone lives in.)"""

import hashlib
import json

from explorer import paths
from explorer.data import code_corpus

PIN = json.loads((paths.REPO / "tests" / "corpus_pin.json").read_text())
FIX = ("a package was added to or removed from the venv (pyproject.toml, constraints.txt, or a `pip install`): install "
       "tools that are not the project's dependencies outside the venv (pip install --target, like .tools and .bench/zensical)")


def _names() -> list[str]:
    return [f.name for f in code_corpus.source_files() if not f.name.startswith("site-packages/__editable__")]


def test_the_held_out_text_is_the_one_the_figures_were_built_on():
    held = code_corpus.corpus_bytes("heldout")
    assert (hashlib.sha256(held.tobytes()).hexdigest(), int(held.size)) == (PIN["heldout_sha256"], PIN["heldout_bytes"]), (
        f"the held-out code changed ({held.size:,} bytes, pinned {PIN['heldout_bytes']:,}): {FIX}")


def test_the_corpus_holds_the_same_files():
    names = _names()
    assert hashlib.sha256("\n".join(names).encode()).hexdigest() == PIN["file_names_sha256"], (
        f"the corpus has {len(names):,} files, pinned {PIN['files']:,}: {FIX}")
