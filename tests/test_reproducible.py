"""Trained claims reproduce on another machine.

The digits regimes are rebuilt from an empty model cache in fresh processes, once under another
thread count and once under other CPU code paths (what a second machine of the same kind can
differ in: ATen's instruction set, MKL's GEMM kernels, oneDNN's ISA). A claim measured over seeds
must stay inside the range the reference build states for it; every other claim must be equal.
Without seed ensembles the dying-ReLU claims move (a last-bit difference decides which units die).
"""

import os
import subprocess
import sys

import pytest

from explorer import paths
from explorer.ensemble import OTHER_CPU, OTHER_THREADS, SENSITIVE_FIGURES, compare_claims, interval_claims, rebuild_claims

FIGURES = SENSITIVE_FIGURES  # the chaotic dying-ReLU runs (dead units, accuracies) and the weight claims
SETTINGS = {"another thread count": OTHER_THREADS, "other CPU code paths": OTHER_CPU}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """{setting: {figure id: claims}}, each built at smoke scale in its own process from an empty cache."""
    return rebuild_claims(SETTINGS, FIGURES, "smoke", tmp_path_factory.mktemp("rebuilt"))


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("figure_id", FIGURES)
def test_claims_agree_or_stay_inside_their_intervals(smoke_claims, rebuilt, setting, figure_id):
    moved = compare_claims(smoke_claims(figure_id), rebuilt[setting][figure_id])
    assert not moved, f"{figure_id} under {setting}: " + "; ".join(moved)


def test_another_thread_count_trains_the_same_bytes(smoke_claims, rebuilt):
    """Training runs on one thread whatever the machine has, so even per-seed values agree exactly."""
    for figure_id in FIGURES:
        assert rebuilt["another thread count"][figure_id] == smoke_claims(figure_id)


def test_the_chaotic_claims_are_stated_over_seeds(smoke_claims):
    claims = smoke_claims("activations-dead-units")
    intervals = interval_claims(claims)
    assert {"dying_dead_fraction", "dying_relu_val_accuracy", "healthy_val_accuracy"} <= set(intervals)
    for key, (lo, hi) in intervals.items():
        seeds = claims[f"{key}_seeds"]
        assert len(seeds) >= 3 and lo == min(seeds.values()) and hi == max(seeds.values()) and lo <= claims[key] <= hi, key
    assert "dying_fc1_relative_change" in interval_claims(smoke_claims("weights-templates"))


def test_importing_explorer_pins_the_cpu_code_paths_before_torch_loads():
    """A fresh process that imports explorer (as the CLI and the tests do) runs ATen at AVX2 on an AVX2 CPU."""
    from explorer.device import CPU_DISPATCH, _has_avx2

    environment = {k: v for k, v in os.environ.items() if k not in CPU_DISPATCH}
    script = "import os, explorer, torch; print(torch.backends.cpu.get_cpu_capability(), os.environ.get('ONEDNN_MAX_CPU_ISA'))"
    result = subprocess.run([sys.executable, "-c", script], cwd=paths.REPO, env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.split() == (["AVX2", "AVX2"] if _has_avx2() else [result.stdout.split()[0], "None"])
    chosen = {**environment, "ATEN_CPU_CAPABILITY": "default"}  # a value already set wins (no torch needed to see it)
    script = "import os, explorer; print(os.environ['ATEN_CPU_CAPABILITY'])"
    result = subprocess.run([sys.executable, "-c", script], cwd=paths.REPO, env=chosen, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["default"]


def test_deterministic_trains_on_one_thread_and_restores_the_caller_state():
    import torch

    from explorer.device import deterministic

    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with deterministic():
        assert torch.get_num_threads() == 1
    with deterministic(device="cuda"):  # only flips flags: no CUDA needed
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
