"""Numbers that come from training are reported over several seeds: the mean and the range.

A single run's number can be luck. Producers train `SEEDS` runs, keep every run's value in the
figure data, and record the mean with the lowest and highest run as claims, so the page can quote
"0.97 (0.96-0.98 over 3 seeds)":

    spread = claim_spread(ctx, "val_accuracy", [run.accuracy for run in runs])
    # claims val_accuracy, val_accuracy_lo, val_accuracy_hi, and seeds (how many)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Spread:
    mean: float
    lo: float
    hi: float
    values: tuple[float, ...]

    def row(self, **extra: Any) -> dict:
        """The spread as a data row (for an interval drawn in a figure)."""
        return {**extra, "mean": self.mean, "lo": self.lo, "hi": self.hi, "seeds": list(self.values)}


def spread(values: Sequence[float]) -> Spread:
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("spread of no values")
    return Spread(sum(values) / len(values), min(values), max(values), values)


def claim_spread(ctx, key: str, values: Sequence[float]) -> Spread:
    """Record `key` (the mean over runs), `key_lo` and `key_hi` (the extreme runs) and `seeds`."""
    s = spread(values)
    ctx.claim(key, s.mean)
    ctx.claim(f"{key}_lo", s.lo)
    ctx.claim(f"{key}_hi", s.hi)
    ctx.claim("seeds", len(s.values))
    return s
