"""The canonical probe set: one seeded set of inputs per model, shared by every page that scores heads.

Each page used to build its own repeated-token rows (repeat lengths 12, 24 and 32 for the same
model), so one head had three induction scores. Now the head wiki, the induction article and the
patching article all read `probe_set(model, name, scale)` and score with `head_scores`:

- `repeated`: rows of `prefix + r + r`, with `r` a block of `half` *distinct* random tokens (so
  every query of the second copy has exactly one induction target and one duplicate), drawn from
  the model's ordinary vocabulary with a fixed generator. `half` is `REPEAT_FRACTION` of the
  context, the same fraction for every model; how the score depends on it is drawn once, on the
  induction page (figure induction-repeat-length).
- `text`: held-out rows of the model's own data (for induction-2l: periodic rows it was not trained on).

Previous-token and first-token scores are measured on `text`, duplicate-token and induction scores
on `repeated` (text repeats too rarely). The averaging is explorer.techniques.heads's, the only one.
"""

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens.head_detector import compute_head_attention_similarity_score, get_induction_head_detection_pattern

from explorer.techniques import heads

PROBE_SEED = 1234  # apart from every training and held-out generator
REPEAT_FRACTION = 3 / 8  # each copy is 3/8 of the context: the two copies fill three quarters of it
MAX_HALF = 48  # ... up to 48 tokens per copy (the zoo's longest context, 128), so hub models stay cheap to patch
PROBE_CONTEXT = 256  # tokens per held-out text row at most: our longest context (the flagship's), a quarter of GPT-2's
ROWS = {"smoke": 16, "full": 64}  # repeated rows
TEXT_ROWS = {"smoke": 16, "full": 64}  # held-out text rows (the ablations split them into text and reference)
TEXT_KINDS = ("previous_token", "first_token")
REPEAT_KINDS = ("duplicate_token", "induction")


@dataclass(frozen=True)
class ProbeSet:
    """The inputs every page scores a model's heads on (token ids on the CPU)."""

    name: str
    repeated: Int[Tensor, "rows pos"]  # prefix + r + r
    prefix: int  # start tokens before the first copy (0 or 1)
    half: int  # tokens per copy
    text: Int[Tensor, "text_rows length"]  # held-out rows of min(n_ctx, PROBE_CONTEXT) tokens

    @property
    def second_copy(self) -> slice:
        """Positions of the second copy, where induction applies."""
        return slice(self.prefix + self.half, self.prefix + 2 * self.half)


def repeat_length(n_ctx: int, n_prefix: int = 0, fraction: float = REPEAT_FRACTION) -> int:
    """Tokens per copy for a context of `n_ctx`: `fraction` of it (at most MAX_HALF), and both copies must fit."""
    return max(2, min(math.floor(n_ctx * fraction), MAX_HALF, (n_ctx - n_prefix) // 2))


def repeated_random_tokens(
    n_batch: int, half: int, vocab: Sequence[int] | Tensor, generator: torch.Generator, prefix: Sequence[int] = ()
) -> Int[Tensor, "batch pos"]:
    """[prefix] + r + r, with r `half` distinct tokens drawn from `vocab`: the standard induction probe.

    Distinct tokens make the targets unambiguous: a query in the second copy has one earlier copy
    of its token, and one token after it.
    """
    vocab = torch.as_tensor(vocab if isinstance(vocab, Tensor) else list(vocab))
    if half > len(vocab):
        raise ValueError(f"cannot draw {half} distinct tokens from a vocabulary of {len(vocab)}")
    order = torch.rand(n_batch, len(vocab), generator=generator).argsort(-1)  # a random permutation per row
    first = vocab[order[:, :half]]  # (batch, half)
    start = torch.as_tensor(list(prefix), dtype=first.dtype).expand(n_batch, len(prefix))
    return torch.cat([start, first, first], dim=1)


def repeated_rows(model, n_rows: int, half: int, seed: int = PROBE_SEED) -> tuple[Int[Tensor, "rows pos"], int]:
    """`n_rows` repeated rows for `model` with copies of `half` tokens; returns (rows, prefix length)."""
    from explorer.techniques import prompts  # prompts imports this module for its own repeat prompt

    start = prompts.start_tokens(model)
    generator = torch.Generator().manual_seed(seed)
    return repeated_random_tokens(n_rows, half, prompts.sampling_vocab(model), generator, start), len(start)


SWEEP_WORK = 2e12  # parameters x tokens one sweep may push through the model: minutes for GPT-2 small on 2 CPU cores
MIN_ROWS = 4  # ... but never fewer rows than this


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def rows_within(model, rows: int, tokens_per_row: int, passes: int) -> int:
    """How many of `rows` a sweep of `passes` forward passes over rows of `tokens_per_row` tokens
    can afford within SWEEP_WORK (at least MIN_ROWS). Our models are far inside it and keep every
    row; GPT-2 small (124M parameters) patching 144 heads gets the minimum. The figures store the
    rows they used."""
    affordable = int(SWEEP_WORK // (parameter_count(model) * tokens_per_row * max(1, passes)))
    return max(min(rows, MIN_ROWS), min(rows, affordable))


def text_length(model) -> int:
    """Held-out rows as long as the model's context, up to PROBE_CONTEXT: a head's previous-token or
    first-token score needs a few hundred positions, not GPT-2's 1024 (64 rows of every head's
    pattern at 1024 tokens would be 40 GB)."""
    return min(model.cfg.n_ctx, PROBE_CONTEXT)


_SETS: dict[tuple[str, str, int], ProbeSet] = {}


def probe_set(model, name: str, scale: str) -> ProbeSet:
    """The canonical probe set of model `name` at `scale` (the same rows on every call)."""
    from explorer.techniques import prompts

    key = (name, scale, model.cfg.n_ctx)
    if key not in _SETS and prompts.is_encoder(name):
        _SETS[key] = minilm_probe_set(model, scale, name)
    if key not in _SETS:
        prefix = len(prompts.start_tokens(model))
        half = repeat_length(model.cfg.n_ctx, prefix)
        repeated, prefix = repeated_rows(model, ROWS[scale], half)
        text = prompts.heldout_tokens(SimpleNamespace(scale=scale), model, name, TEXT_ROWS[scale], text_length(model)).cpu()
        _SETS[key] = ProbeSet(name, repeated, prefix, half, text)
    return _SETS[key]


MINILM_LENGTH = 128  # tokens per MiniLM probe row, [CLS] and [SEP] included (its context is 512)


def minilm_probe_set(bridge, scale: str, name: str = "all-MiniLM-L6-v2") -> ProbeSet:
    """An encoder's probe set (MiniLM's, DistilBERT's): the same construction, each row framed
    [CLS] ... [SEP] as in its training, on rows of MINILM_LENGTH tokens (held-out standard-library
    code in its own word pieces)."""
    from explorer.models import minilm
    from explorer.techniques import prompts

    half = repeat_length(MINILM_LENGTH, 2)
    generator = torch.Generator().manual_seed(PROBE_SEED)
    repeated = minilm.framed(bridge, repeated_random_tokens(ROWS[scale], half, minilm.sampling_vocab(bridge), generator))
    body = prompts.heldout_tokens(SimpleNamespace(scale=scale), bridge, name, TEXT_ROWS[scale], MINILM_LENGTH - 2)
    return ProbeSet(name, repeated, 1, half, minilm.framed(bridge, body.cpu()))


FROZEN: "weakref.WeakSet" = weakref.WeakSet()  # models whose weights never change while loaded (prompts.load's hub models)
_SCORED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # frozen model -> {probe key: table}


@torch.no_grad()
def head_scores(model, probe: ProbeSet) -> pd.DataFrame:
    """One row per head: layer, head and the four detector scores on the probe (see module doc).

    Kept for a model in FROZEN while it lives: several figures of a hub run score the same model on
    the same probe (for GPT-2 each scoring is a minute of CPU). Other models (checkpoints loaded
    into one module, say) are scored every time."""
    key = (probe.name, tuple(probe.text.shape), tuple(probe.repeated.shape))
    known = _SCORED.setdefault(model, {}) if model in FROZEN else {}
    if key not in known:
        device = model.cfg.device
        on_text = heads.head_scores(model, probe.text.to(device), TEXT_KINDS)
        on_repeats = heads.head_scores(model, probe.repeated.to(device), REPEAT_KINDS)
        known[key] = on_text.merge(on_repeats, on=["layer", "head"])[["layer", "head", *heads.HEAD_KINDS]]
    return known[key].copy()


def score_grid(table: pd.DataFrame, kind: str) -> torch.Tensor:
    """A `head_scores` column as a (layer, head) tensor."""
    n_layers, n_heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    grid = torch.full((n_layers, n_heads), float("nan"))
    for row in table.itertuples():
        grid[int(row.layer), int(row.head)] = float(getattr(row, kind))
    return grid


@torch.no_grad()
def library_induction_scores(model, tokens: Int[Tensor, "rows pos"]) -> torch.Tensor:
    """TransformerLens's own induction score per head, (layer, head): `detect_head`'s "mul" measure.

    detect_head(model, prompts, "induction_head") scores each prompt with
    compute_head_attention_similarity_score on get_induction_head_detection_pattern and averages
    over prompts; we do the same on our token rows (detect_head itself only takes strings and
    re-tokenizes them). The measure divides by *every* query row, including the first copy, where
    there is nothing to copy, so a perfect induction head scores about half.
    """
    tokens = tokens.to(model.cfg.device)
    detections = [get_induction_head_detection_pattern(tokens[b : b + 1].cpu()) for b in range(tokens.shape[0])]
    scores = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)

    def scorer(layer: int, rows: slice):
        def score(pattern, hook=None):  # (rows, head, q, k), one layer at a time: no layer's pattern is kept
            for i, detection in enumerate(detections[rows]):
                for head in range(model.cfg.n_heads):
                    scores[layer, head] += compute_head_attention_similarity_score(
                        pattern[i, head], detection.to(pattern.device), exclude_bos=False, exclude_current_token=False, error_measure="mul")

        return score

    for rows in heads.row_chunks(model, tokens):
        model.run_with_hooks(tokens[rows], fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", scorer(layer, rows)) for layer in range(model.cfg.n_layers)])
    return scores / tokens.shape[0]


def uniform_induction_score(probe: ProbeSet) -> float:
    """The induction score of a head that spreads its attention evenly over the positions it may see:
    the chance level. Query q (0-based) sees q + 1 keys, one of which is its target."""
    queries = torch.arange(probe.second_copy.start, probe.second_copy.stop, dtype=torch.float64)
    return (1.0 / (queries + 1)).mean().item()


def uniform_previous_token_score(n_pos: int) -> float:
    """The previous-token score of uniform attention over rows 1 .. n_pos-1 of a causal pattern."""
    queries = torch.arange(1, n_pos, dtype=torch.float64)
    return (1.0 / (queries + 1)).mean().item()
