"""Claims measured over several seeds: the mean, the range, and every seed's value.

A number that comes from training is reported over at least 3 seeds. `claim_over_seeds(ctx, key,
{seed: value})` records

    key          the mean over the seeds (what the page quotes),
    key_min      the smallest and
    key_max      the largest value: the interval the page quotes beside the mean,
    key_seeds    {seed: value}, every seed's own value, for readers and tests.

Another machine, thread count or CPU code path trains slightly different networks; its mean is
expected inside this range (tests/test_reproducible.py checks it), not equal to the digit.
"""

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MIN_SEEDS = 3
# The figures whose claims come from chaotic training (the dying-ReLU regime), rebuilt by the test and
# the bench, and the articles (build_figures/<article>.py) that define them.
SENSITIVE_FIGURES = ("activations-dead-units", "weights-templates")
SENSITIVE_ARTICLES = ("activations", "weights")
# What a second machine of the same kind can differ in, set by hand: its core count (the default
# thread count), and the CPU code paths torch and MKL pick (explorer.device pins the first two
# variables; a value already in the environment wins, so these override the pins).
OTHER_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}


def spread(values: Mapping[int, float]) -> dict[str, Any]:
    """{"mean", "min", "max", "seeds"} of per-seed values; at least MIN_SEEDS of them."""
    if len(values) < MIN_SEEDS:
        raise ValueError(f"a claim over seeds needs at least {MIN_SEEDS} seeds, got {len(values)}")
    array = np.array([float(v) for v in values.values()])
    return {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max()),
            "seeds": {str(seed): float(v) for seed, v in values.items()}}  # fmt: skip


def claim_over_seeds(ctx, key: str, values: Mapping[int, float]) -> float:
    """Record `key` (mean), `key_min`, `key_max` and `key_seeds` on the figure context; return the mean."""
    summary = spread(values)
    ctx.claim(key, summary["mean"])
    ctx.claim(f"{key}_min", summary["min"])
    ctx.claim(f"{key}_max", summary["max"])
    ctx.claim(f"{key}_seeds", summary["seeds"])
    return summary["mean"]


def interval_claims(claims: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """{key: (min, max)} for every claim recorded by claim_over_seeds in `claims`."""
    return {key: (claims[f"{key}_min"], claims[f"{key}_max"]) for key in claims
            if f"{key}_min" in claims and f"{key}_max" in claims and f"{key}_seeds" in claims}  # fmt: skip


def compare_claims(reference: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What moved between two builds of the same figure, one line per claim that breaks the rule:
    a claim over seeds (its mean) must lie inside the reference's [min, max]; any other claim must
    be equal. The per-seed values themselves (`*_seeds`) and the ranges may move."""
    intervals = interval_claims(reference)
    derived = {f"{k}_{s}" for k in intervals for s in ("min", "max")}
    problems = []
    for key in sorted(set(reference) | set(other)):
        if key in derived or key.endswith("_seeds"):
            continue
        if key not in reference or key not in other:
            problems.append(f"{key}: only in {'the reference' if key in reference else 'the other build'}")
        elif key in intervals:
            lo, hi = intervals[key]
            if not lo <= other[key] <= hi:
                problems.append(f"{key}: {other[key]:.4g} outside the reference's range {lo:.4g}-{hi:.4g}")
        elif other[key] != reference[key]:
            problems.append(f"{key}: {reference[key]!r} -> {other[key]!r}")
    return problems


def rebuild_claims(settings: Mapping[str, Mapping[str, str]], figures=SENSITIVE_FIGURES, scale: str = "smoke",
                   folder: Path | None = None, articles=SENSITIVE_ARTICLES) -> dict[str, dict[str, dict]]:  # fmt: skip
    """{setting: {figure id: claims}}: each setting builds `figures` in its own process, from an empty
    model cache, with its variables added to the environment. The builds run side by side, and
    import only `articles` (the producer modules that define `figures`), not every article."""
    from explorer import jsonio, paths

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        producers = Path(tmp) / "producers"
        producers.mkdir()
        for article in articles:
            (producers / f"{article}.py").symlink_to(paths.BUILD_FIGURES / f"{article}.py")
        running = {}
        for i, (name, env) in enumerate(settings.items()):
            where = Path(tmp) / str(i)
            command = [sys.executable, "-m", "explorer", "figures", "--scale", scale, "--quiet", "--force", "--out", str(where / "figures"), "--only", *figures]
            environment = {**os.environ, "EXPLORER_CACHE": str(where / "cache"), "EXPLORER_DEVICE": "cpu", "EXPLORER_PRODUCERS": str(producers), **env}
            running[name] = (where, subprocess.Popen(command, cwd=paths.REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        claims = {}
        for name, (where, process) in running.items():
            output, _ = process.communicate()
            manifest_file = where / "figures" / "manifest.json"
            manifest = jsonio.read_json(manifest_file)["figures"] if manifest_file.exists() else {}
            if not set(figures) <= set(manifest):  # judged by what was built: another article's import error is not ours
                raise RuntimeError(f"rebuild under {name} did not build {', '.join(sorted(set(figures) - set(manifest)))}: {output.strip()[-2000:]}")
            claims[name] = {fid: manifest[fid].get("claims", {}) for fid in figures}
    return claims
