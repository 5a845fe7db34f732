"""Shared fixtures: one smoke-scale build of every figure per test session."""

from pathlib import Path

import pytest

from explorer import jsonio
from explorer.pipeline import build as pipeline


class SmokeBuild:
    """The outcome of building every figure at smoke scale into .cache/smoke-figures/."""

    def __init__(self, out: Path, outcomes: list[pipeline.Outcome]):
        self.out = out
        self.outcomes = {o.id: o for o in outcomes}
        self.manifest = pipeline.read_manifest(out)

    def claims(self, figure_id: str) -> dict:
        outcome = self.outcomes.get(figure_id)
        assert outcome is not None, f"no figure {figure_id!r}"
        assert outcome.status in ("built", "fresh"), f"{figure_id}: {outcome.status}: {outcome.message}"
        return self.manifest[figure_id].get("claims", {})

    def spec(self, figure_id: str) -> dict:
        self.claims(figure_id)
        return jsonio.read_json(self.out / figure_id / "spec.json")

    def path(self, figure_id: str) -> Path:
        self.claims(figure_id)
        return self.out / figure_id


@pytest.fixture(scope="session")
def smoke() -> SmokeBuild:
    out = pipeline.default_out("smoke")
    outcomes = pipeline.build(scale="smoke", out=out, progress=False)
    return SmokeBuild(out, outcomes)


@pytest.fixture(scope="session")
def smoke_claims(smoke: SmokeBuild):
    """`smoke_claims("figure-id")` -> the claims that figure's producer recorded at smoke scale."""
    return smoke.claims
