"""Two-part recall, a synthetic task with two relations at once (the curriculum's multi-head chapter).

A row holds `pairs` key-value tokens with distinct keys, then a query key; the answer names two
values: the one paired with the queried key (a lookup by content) and the one of the first pair
(a lookup by position). "C7 A2 F0 ... ?F" -> (0, 7). The answer is one token of n_values²,
a * n_values + b, so a model must get both parts from the one position it predicts at.

Token ids: pair (k, v) is k * n_values + v; the query for key k is n_keys * n_values + k; the
answer (a, b) is n_keys * n_values + n_keys + a * n_values + b.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

KEY_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class TwoPartRecall:
    n_keys: int = 16
    n_values: int = 8
    pairs: int = 8

    @property
    def query_base(self) -> int:
        return self.n_keys * self.n_values

    @property
    def answer_base(self) -> int:
        return self.query_base + self.n_keys

    @property
    def d_vocab(self) -> int:
        return self.answer_base + self.n_values**2

    @property
    def length(self) -> int:
        """Tokens a model reads: the pairs and the query."""
        return self.pairs + 1

    def batch(self, n: int, generator: torch.Generator) -> Int[Tensor, "n pairs_plus_2"]:
        keys = torch.rand(n, self.n_keys, generator=generator).argsort(-1)[:, : self.pairs]  # (n, pairs), distinct
        values = torch.randint(0, self.n_values, (n, self.pairs), generator=generator)  # (n, pairs)
        which = torch.randint(0, self.pairs, (n,), generator=generator)  # (n,)
        rows = torch.arange(n)
        answer = self.answer_base + values[rows, which] * self.n_values + values[:, 0]
        return torch.cat([keys * self.n_values + values, (self.query_base + keys[rows, which])[:, None], answer[:, None]], dim=1)

    def parts(self, rows: Int[Tensor, "n pos"]) -> tuple[Int[Tensor, " n"], Int[Tensor, " n"]]:
        """The two values of each row's answer: (the looked-up value, the first pair's value)."""
        answer = rows[:, -1] - self.answer_base
        return answer // self.n_values, answer % self.n_values

    def target_position(self, rows: Int[Tensor, "n pos"]) -> Int[Tensor, " n"]:
        """Where each row's queried pair sits (0 .. pairs-1)."""
        keys = rows[:, : self.pairs] // self.n_values
        return (keys == (rows[:, self.pairs] - self.query_base)[:, None]).float().argmax(-1)

    def token_text(self, token: int) -> str:
        """'C7' for a pair, '?C' for a query, '=0,7' for an answer."""
        if token < self.query_base:
            return f"{KEY_NAMES[token // self.n_values]}{token % self.n_values}"
        if token < self.answer_base:
            return f"?{KEY_NAMES[token - self.query_base]}"
        a, b = divmod(token - self.answer_base, self.n_values)
        return f"={a},{b}"
