"""The synthetic induction task: random tokens that repeat with a random period per row.

A row is a random block of `period` tokens tiled to the context length. After the first period
every token is predictable by looking up where the current token last occurred and copying what
came next: exactly the induction algorithm. The period is drawn per row so that no fixed
positional offset works (a fixed period would let a single layer-0 head attend `period` back).
"""

import torch
from jaxtyping import Int
from torch import Tensor


def periodic_batch(
    batch: int, n_ctx: int, vocab: int, min_period: int, max_period: int, generator: torch.Generator
) -> Int[Tensor, "batch n_ctx"]:
    """Rows of random tokens repeating with a period drawn uniformly from [min_period, max_period]."""
    periods = torch.randint(min_period, max_period + 1, (batch,), generator=generator)  # (batch,)
    blocks = torch.randint(0, vocab, (batch, max_period), generator=generator)  # (batch, max_period)
    positions = torch.arange(n_ctx)[None, :] % periods[:, None]  # (batch, n_ctx)
    return blocks.gather(1, positions)

