"""The committed smoke-scale figures (tests/smoke-figures/) match the code.

The article tests read them through `smoke_claims`; a stale one is rebuilt on the spot, so the
suite stays correct either way, but a clean checkout then pays minutes of training for every
article its author forgot to rebuild. This test fails in that case and names them.
"""

from conftest import STALE_AT_START
from explorer.pipeline import build as pipeline


def test_the_committed_smoke_figures_match_the_code():
    assert not STALE_AT_START, (
        f"{len(STALE_AT_START)} committed smoke figure(s) did not match the code when the tests began: "
        f"{', '.join(STALE_AT_START)}. Run `make figures SCALE=smoke` and commit tests/smoke-figures/ "
        "(the tests that read them rebuild them on the spot, at minutes per article)")


def test_the_smoke_figures_live_beside_the_tests_and_never_over_the_published_ones():
    assert pipeline.default_out("smoke") == pipeline.SMOKE_FIGURES
    assert pipeline.SMOKE_FIGURES.parent.name == "tests" and pipeline.SMOKE_FIGURES != pipeline.default_out("full")
