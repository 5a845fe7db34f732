"""Associative recall, a synthetic task that one attention head solves on its own.

A row holds `pairs` key-value tokens, then a query key, then the answer: "C7 A2 F0 ... ? A" -> 2.
Each pair is one token (key and value together), so the whole task is a lookup: the query must
find the position whose key matches its own and copy that position's value. Nothing else in the
row helps; a model with one attention head and no MLP can do it exactly, and the head's pattern
at the query says whether it has found the pair.

Token ids: pair (k, v) is k * n_values + v; the query for key k is n_keys * n_values + k; the
answer v is n_keys * n_values + n_keys + v. Keys in a row are distinct, values may repeat.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

KEY_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class RecallTask:
    n_keys: int = 16
    n_values: int = 16
    pairs: int = 8

    @property
    def query_base(self) -> int:
        return self.n_keys * self.n_values

    @property
    def answer_base(self) -> int:
        return self.query_base + self.n_keys

    @property
    def d_vocab(self) -> int:
        return self.answer_base + self.n_values

    @property
    def length(self) -> int:
        """Tokens a model reads: the pairs and the query (the answer is what it predicts)."""
        return self.pairs + 1

    def batch(self, n: int, generator: torch.Generator) -> Int[Tensor, "n pairs_plus_2"]:
        """`n` rows of pairs, query and answer; the queried pair is at a uniformly random place."""
        keys = torch.rand(n, self.n_keys, generator=generator).argsort(-1)[:, : self.pairs]  # (n, pairs), distinct
        values = torch.randint(0, self.n_values, (n, self.pairs), generator=generator)  # (n, pairs)
        which = torch.randint(0, self.pairs, (n,), generator=generator)  # (n,)
        rows = torch.arange(n)
        query = self.query_base + keys[rows, which]
        answer = self.answer_base + values[rows, which]
        return torch.cat([keys * self.n_values + values, query[:, None], answer[:, None]], dim=1)

    def answer_index(self, rows: Int[Tensor, "n pos"]) -> Int[Tensor, " n"]:
        """The answer of each row as a value 0 .. n_values-1."""
        return rows[:, -1] - self.answer_base

    def target_position(self, rows: Int[Tensor, "n pos"]) -> Int[Tensor, " n"]:
        """Where each row's queried pair sits (0 .. pairs-1)."""
        keys = rows[:, : self.pairs] // self.n_values  # (n, pairs)
        wanted = rows[:, self.pairs] - self.query_base  # (n,)
        return (keys == wanted[:, None]).float().argmax(-1)

    def token_text(self, token: int) -> str:
        """'C7' for a pair, '?C' for a query, '=7' for an answer."""
        if token < self.query_base:
            return f"{KEY_NAMES[token // self.n_values]}{token % self.n_values}"
        if token < self.answer_base:
            return f"?{KEY_NAMES[token - self.query_base]}"
        return f"={token - self.answer_base}"
