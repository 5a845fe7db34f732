"""Device choice and seeding, in one place so every producer does the same."""

import os
import random

import numpy as np
import torch


def pick_device() -> torch.device:
    """CUDA when present, else CPU; EXPLORER_DEVICE overrides (e.g. to force cpu)."""
    name = os.environ.get("EXPLORER_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
