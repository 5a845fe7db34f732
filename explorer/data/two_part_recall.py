"""Two-part recall, a synthetic task with two relations at once (the curriculum's multi-head chapter).

A row holds `pairs` key-value tokens with distinct keys, then a query key; the answer names two
values: the one paired with the queried key (a lookup by content) and the one of the first pair
(a lookup by position). "C7 A2 F0 ... ?F" -> (0, 7). The answer is one token of n_values²,
a * n_values + b, so a model must get both parts from the one position it predicts at.

Pairs and queries are explorer/data/recall.py's tokens; only the answers differ: the answer
(a, b) is n_keys * n_values + n_keys + a * n_values + b.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from explorer.data.recall import RecallTask


@dataclass(frozen=True)
class TwoPartRecall(RecallTask):
    n_values: int = 8

    @property
    def d_vocab(self) -> int:
        return self.answer_base + self.n_values**2

    def batch(self, n: int, generator: torch.Generator) -> Int[Tensor, "n pairs_plus_2"]:
        keys = torch.rand(n, self.n_keys, generator=generator).argsort(-1)[:, : self.pairs]  # (n, pairs), distinct
        values = torch.randint(0, self.n_values, (n, self.pairs), generator=generator)  # (n, pairs)
        which = torch.randint(0, self.pairs, (n,), generator=generator)  # (n,)
        rows = torch.arange(n)
        answer = self.answer_base + values[rows, which] * self.n_values + values[:, 0]
        return torch.cat([keys * self.n_values + values, (self.query_base + keys[rows, which])[:, None], answer[:, None]], dim=1)

    def parts(self, rows: Int[Tensor, "n pos"]) -> tuple[Int[Tensor, " n"], Int[Tensor, " n"]]:
        """The two values of each row's answer: (the looked-up value, the first pair's value)."""
        answer = self.answer_index(rows)  # a * n_values + b
        return answer // self.n_values, answer % self.n_values

    def token_text(self, token: int) -> str:
        """'C7' for a pair, '?C' for a query, '=0,7' for an answer."""
        if token < self.answer_base:
            return super().token_text(token)
        a, b = divmod(token - self.answer_base, self.n_values)
        return f"={a},{b}"
