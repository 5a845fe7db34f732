"""Per-unit dashboards: a unit's strongest contexts as text, quantile samples and its activation histogram.

A "unit" is anything with one activation per token: an MLP neuron, an SAE latent, a probe direction.
The pages draw a dashboard's contexts with the text view (docs/assets/javascripts/explorer/textview.js):
one row per token, `t` its text, `w` the unit's activation there as a share of its largest (only where
it is on), and a row `{"t": label, "c": label}` starting each context ("#1", "p90+", ...).
"""

from collections.abc import Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

# Bands of a unit's positive activations that quantile samples are drawn from: (label, from, to) as shares.
QUANTILES = (("p90+", 0.9, 1.0), ("p50-90", 0.5, 0.9), ("p0-50", 0.0, 0.5))


def byte_text(b: int) -> str:
    """One byte as the page shows it: printable ASCII and whitespace as themselves, any other byte as \\xNN."""
    return chr(b) if 32 <= b < 127 or b in (9, 10, 13) else f"\\x{b:02x}"


def byte_line(row: Sequence[int], values: np.ndarray, at: int, label: str, before: int, after: int) -> list[dict]:
    """Byte `at` of a row of bytes in its line: back to the line's start and on to its end (at most `before`
    and `after` bytes, '…' where cut); `w` is `values` where positive (the caller scales it). Bytes the unit
    is off on are merged into one span (a third of the rows), every byte it is on keeps its own."""
    start = at
    while start > 0 and at - start < before and row[start - 1] != 10:
        start -= 1
    end = at
    while end + 1 < len(row) and end - at < after and row[end] != 10:
        end += 1
    out = [{"t": label, "c": label}]
    if start > 0 and row[start - 1] != 10:
        out.append({"t": "…"})
    for i in range(start, end + 1):
        item = {"t": byte_text(int(row[i]))}
        if values[i] > 0:
            item["w"] = float(values[i])
        out.append(item)
    if row[end] != 10:
        out.append({"t": "…\n" if end + 1 < len(row) and row[end + 1] != 10 else "\n"})
    return merge_off(out)


def merge_off(tokens: list[dict]) -> list[dict]:
    """Consecutive tokens without `w` as one span (a newline stays the end of its span); the label row stays."""
    out = [tokens[0]]
    for item in tokens[1:]:
        last = out[-1]
        if len(out) > 1 and "w" not in item and "w" not in last and not last["t"].endswith("\n"):
            out[-1] = {"t": last["t"] + item["t"]}
        else:
            out.append(item)
    return out


def sample_tokens(column: np.ndarray, top: int, per_band: int, generator: np.random.Generator) -> list[tuple[str, int]]:
    """(label, token index) of the unit's `top` strongest activations ("#1", ...), then `per_band` random
    tokens from each QUANTILES band of its positive activations, none chosen twice."""
    order = np.argsort(-column, kind="stable")
    chosen = [(f"#{i + 1}", int(t)) for i, t in enumerate(order[:top]) if column[t] > 0]
    positive = np.flatnonzero(column > 0)
    ranked = positive[np.argsort(column[positive], kind="stable")]  # ascending
    taken = {t for _, t in chosen}
    for label, lo, hi in QUANTILES:
        band = [int(t) for t in ranked[int(lo * len(ranked)):int(np.ceil(hi * len(ranked)))] if int(t) not in taken]
        for t in generator.choice(band, size=min(per_band, len(band)), replace=False) if band else []:
            chosen.append((label, int(t)))
            taken.add(int(t))
    return chosen


def histogram(column: np.ndarray, bins: int) -> list[dict]:
    """Counts of every activation (negative ones too: a GELU neuron's small negative values) in `bins` equal
    bins from the smallest to the largest, as rows {x0, x1, n} for a binned bar chart."""
    lo, hi = float(column.min()), float(column.max())
    counts, edges = np.histogram(column, bins=bins, range=(lo, hi if hi > lo else lo + 1))
    return [{"x0": round(float(edges[i]), 3), "x1": round(float(edges[i + 1]), 3), "n": int(counts[i])} for i in range(bins)]


def random_token_distinct(token_ids: Tensor, top: int, draws: int, seed: int) -> float:
    """The null of `sae.distinct_top_tokens`: the mean number of distinct tokens among `top` tokens drawn at
    random from the text (what a unit that fired on arbitrary positions would score)."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(token_ids), (draws, top), generator=g)
    return float(np.mean([torch.unique(token_ids[p]).numel() for p in picks]))


def random_unit_max_cosine(d: int, n: int, seed: int) -> Float[Tensor, " n"]:
    """The largest |cosine| of each of `n` random unit directions of R^d with a basis vector: the null of
    'how well does a direction line up with one neuron' (about sqrt(2 ln d / d))."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, d, generator=g)
    return (v.abs().max(-1).values / v.norm(dim=-1))


# --------------------------------------------------------------------------- the charts a dashboard shares


def unit_list(base, tips: list, *, unit: str, name_width: int, density: str, density_axis: str, density_expr: str,
              top: str, top_width: int):
    """The list of units as four narrow columns (name, how often it is on, distinct top tokens, top token),
    one row per `rank` of `base` (the producer's chart, already sorted and paged, with fields name, ld's
    input d, u and t). `density_expr` is the log10 of the share it is on, from -5 (rare) to 0."""
    import altair as alt

    from explorer import charts

    y = alt.Y("rank:O", title=None, axis=alt.Axis(labels=False, ticks=False, domain=False))
    name = base.mark_text(align="left", fontSize=charts.SMALL_SIZE, color=charts.INK).encode(
        y=y, x=alt.value(3), text="name:N", tooltip=tips).properties(width=name_width, height=alt.Step(14), title=unit)
    bar = base.transform_calculate(ld=density_expr).mark_bar(color=charts.SERIES[0]).encode(
        y=y, x=alt.X("ld:Q", title=density_axis, scale=alt.Scale(domain=[-5, 0]),
                     axis=alt.Axis(values=[-4, -2, 0], labelExpr="format(pow(10, datum.value), '~%')")),
        x2=alt.X2(datum=-5), tooltip=tips).properties(width=72, height=alt.Step(14), title=density)
    distinct = base.mark_text(align="right", fontSize=charts.SMALL_SIZE, color=charts.INK).encode(
        y=y, x=alt.value(22), text="u:Q", tooltip=tips).properties(width=26, height=alt.Step(14), title="distinct")
    top_token = base.mark_text(align="left", fontSize=charts.SMALL_SIZE, color=charts.INK, limit=54).encode(
        y=y, x=alt.value(3), text="t:N", tooltip=tips).properties(width=top_width, height=alt.Step(14), title=top)
    return alt.hconcat(name, bar, distinct, top_token, spacing=3)


def effect_bars(kinds: tuple[str, str], *, effect: str, item: str, title: str):
    """The items a unit's output direction pushes up and down most (dataset "logits": rows k, r, t, v, as
    effect_list-style producers write them), the first kind above the second."""
    import altair as alt

    from explorer import charts

    return alt.Chart(alt.NamedData("logits")).mark_bar().encode(
        y=alt.Y("label:N", title=None, sort=alt.EncodingSortField("order"), axis=alt.Axis(labelLimit=100)),  # fits a phone
        x=alt.X("v:Q", title=effect),
        color=alt.Color("k:N", scale=charts.series_scale(list(kinds), [charts.POS, charts.NEG]), title=None,
                        legend=alt.Legend(orient="bottom", labelFontSize=charts.LABEL_SIZE)),
        tooltip=[alt.Tooltip("t:N", title=item), alt.Tooltip("k:N", title=""), alt.Tooltip("v:Q", format=".3f", title=effect)],
    ).transform_calculate(order=f"(datum.k == '{kinds[0]}' ? 0 : 100) + datum.r",
                          label="(datum.k == '" + kinds[0] + "' ? '+' : '−') + (datum.r + 1) + ' ' + datum.t").properties(
        width=150, height=alt.Step(11), title=title)
