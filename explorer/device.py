"""Device choice, seeding and reproducible training, in one place so every producer does the same.

Same seed, same bytes, on every machine of the same kind. torch picks some of its CPU code paths
at run time, and a training run that is chaotic (the dying-ReLU regime of the digits MLP) turns
a last-bit difference into a different published number. Measured on the digits regimes (tests/test_reproducible.py and
`make bench` repeat the comparison):

- intra-op threads: 2 threads instead of 1 change every trained weight (MKL splits the GEMMs
  differently). `deterministic()` trains on one thread, which is also the fastest for these sizes.
- ATen's kernels are compiled for several instruction sets and the widest one the CPU has is used:
  `ATEN_CPU_CAPABILITY=default` instead of `avx2` changes even the initial weights (`normal_` is
  vectorized), so an AVX-512 machine would train other networks than an AVX2 one. `pin_cpu_dispatch`
  fixes it at AVX2 on every CPU that has AVX2 (free there; the AVX-512 kernels are not used).
- oneDNN (the CNN's convolutions) JIT-compiles for the widest ISA: pinned with ONEDNN_MAX_CPU_ISA=AVX2.
- MKL's GEMM also picks a kernel by CPU. `MKL_CBWR=COMPATIBLE` makes it the same on every x86 CPU,
  but costs ~45% of transformer training speed, so it is not set; set it in the environment for a
  bit-exact comparison across CPU vendors. (MKL ignores its other branches, AVX2 etc., on AMD CPUs.)
- `torch.use_deterministic_algorithms`: changes no byte of these CPU runs and costs ~6% per step
  (it fills fresh tensors), so `deterministic()` only turns it on for CUDA, where kernels such as
  scatter-add with atomics really are nondeterministic.

The environment variables only work when set before torch is imported: `explorer/__init__.py`
calls `pin_cpu_dispatch()`, so every process that imports `explorer` before torch gets them (the
CLI, the tests, the bench). A value already in the environment wins.

Where chaos is inherent, pinning only moves the problem to the next machine that differs; those
claims are reported over several seeds (explorer.ensemble).
"""

import contextlib
import os
import platform
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch stays unimported until a function needs it: pin_cpu_dispatch must run first
    import torch

# Set before torch is imported; a value already in the environment wins (tests set other ones on purpose).
CPU_DISPATCH = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _has_avx2() -> bool:
    """Linux x86-64 CPUs that report AVX2 and FMA (what ATen's AVX2 kernels need); False elsewhere."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "avx2" in flags and "fma" in flags
    except OSError:
        pass
    return False


def pin_cpu_dispatch() -> dict[str, str]:
    """Fix the CPU code paths torch chooses at start-up (see the module docstring); returns what was set.

    Only on CPUs with AVX2: ATen would run AVX2 code on a CPU without it. Too late once torch is imported.
    """
    if not _has_avx2():
        return {}
    return {name: os.environ.setdefault(name, value) for name, value in CPU_DISPATCH.items()}


def cpu_dispatch() -> dict[str, str]:
    """What this process actually runs with, for provenance and for `make bench`."""
    import torch

    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **{name: os.environ.get(name, "") for name in (*CPU_DISPATCH, "MKL_CBWR")},
    }


def pick_device() -> "torch.device":
    """CUDA when present, else CPU; EXPLORER_DEVICE overrides (e.g. to force cpu)."""
    import torch

    name = os.environ.get("EXPLORER_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(threads: int = 1, device: "torch.device | str" = "cpu") -> Iterator[None]:
    """Train reproducibly: `threads` intra-op CPU threads (one: the same bytes whatever the machine's
    core count, and the fastest for small models), plus deterministic algorithms on CUDA (warnings
    for kernels that have none). Everything is restored on exit; seeding stays with the caller."""
    import torch

    cuda = torch.device(device).type == "cuda"
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    if cuda:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        if cuda:
            torch.use_deterministic_algorithms(before[1], warn_only=before[2])
