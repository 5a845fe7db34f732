"""Curriculum, chapter 4: positional encodings, on a task that needs order ("copy the token 3 back").

The same 1-layer attention-only transformer (explorer/models/position_transformer.py) is trained
here with no positional information, learned absolute positions, sinusoids, RoPE and ALiBi, three
seeds each, on rows of 16 random tokens, and tested on rows of 64: the answer at position t is the
token at t - 3. Synthetic data: the task is chosen so that order is the whole story. Each run takes
about two seconds on one CPU thread and is cached.
"""

import functools

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.models import position_transformer as pt
from explorer.pipeline import FigureContext, figure
from explorer.techniques import attention as formulas
from explorer.techniques import position_steps

SEEDS = (0, 1, 2)
K = 3  # the answer at position t is the token at t - K
TRAIN_LENGTH, TEST_LENGTH = 16, 64
ARCH = dict(d_vocab=16, d_model=32, n_heads=4, n_layers=1, n_ctx=TEST_LENGTH)
RECIPE = dict(k=K, d_vocab=ARCH["d_vocab"], d_model=ARCH["d_model"], n_heads=ARCH["n_heads"], n_layers=ARCH["n_layers"],
              train_length=TRAIN_LENGTH, test_length=TEST_LENGTH, steps=600, batch=64, lr=3e-3, eval_rows=256,
              checkpoint_every=100)  # fmt: skip
STEPS = {"smoke": 400, "full": 600}  # the same story at 400 steps (measured), in two thirds of the suite's time
MODEL = ("copy-3-back-1l4h: 1-layer attention-only transformers (d_model 32, 4 heads of 8, no LayerNorm) trained here on "
         "rows of 16 random tokens to repeat the token 3 back (synthetic), one per positional encoding, seeds 0-2")
NAMES = {"none": "no position", "learned": "learned absolute", "sinusoidal": "sinusoidal", "rope": "RoPE", "alibi": "ALiBi"}
CHANCE = 1 / ARCH["d_vocab"]
LETTERS = "ABCDEFGHIJKLMNOP"
PANEL_QUERIES = (9, 15, 24, 40, 63)  # two inside the training length, three beyond it
RANGES = {"in": (K, TRAIN_LENGTH), "2L": (TRAIN_LENGTH, 2 * TRAIN_LENGTH), "3L": (2 * TRAIN_LENGTH, 3 * TRAIN_LENGTH),
          "far": (3 * TRAIN_LENGTH, TEST_LENGTH)}  # query positions; "far": the last quarter, up to 4x the training length


@functools.cache  # three figures read the same runs: one read of the cache each
def run(encoding: str, seed: int, scale: str = "full") -> dict:
    recipe = {**RECIPE, "steps": STEPS[scale]}
    config = {"encoding": encoding, "seed": seed, **recipe}
    return cached("positional-runs", config, lambda: pt.train(encoding, seed, **recipe), code=[pt])


def trained(encoding: str, seed: int, step: int | None = None, scale: str = "full") -> pt.PositionTransformer:
    checkpoints = dict(run(encoding, seed, scale)["checkpoints"])
    return pt.load(encoding, checkpoints[max(checkpoints) if step is None else step], **ARCH)


def test_row() -> torch.Tensor:
    """The row the panel and the attention maps show: 64 random tokens, apart from training and evaluation."""
    return pt.copy_back_rows(1, TEST_LENGTH, ARCH["d_vocab"], torch.Generator().manual_seed(2024))[0]


def heldout() -> torch.Tensor:
    return pt.copy_back_rows(256, TEST_LENGTH, ARCH["d_vocab"], torch.Generator().manual_seed(777))


def span_mean(values: list[float], span: tuple[int, int]) -> float:
    """Mean of per-position values (indexed from position K) over query positions span[0] .. span[1]-1."""
    lo, hi = span
    return sum(values[lo - K : hi - K]) / (hi - lo)


@torch.no_grad()
def patterns(model: pt.PositionTransformer, rows: torch.Tensor) -> torch.Tensor:
    """(rows, head, q_pos, k_pos): the layer's attention on these rows, one forward pass for every measure below."""
    _, cache = model.run_with_cache(rows, names_filter="blocks.0.attn.hook_pattern")
    return cache["blocks.0.attn.hook_pattern"]


def attention_on_target(pattern: torch.Tensor) -> torch.Tensor:
    """(head, query): each head's mean attention from position t on position t - K, over the rows."""
    t = torch.arange(K, pattern.shape[-1])
    return pattern[:, :, t, t - K].mean(0)  # (head, query - K)


def copy_head(pattern: torch.Tensor) -> int:
    """The head that attends most to the token K back, on queries inside the training length."""
    return int(attention_on_target(pattern)[:, : TRAIN_LENGTH - K].mean(-1).argmax())


# --------------------------------------------------------------------------- the computation panel


@torch.no_grad()
def panel_rows(model: pt.PositionTransformer, row: torch.Tensor, query: int, step: int) -> list[dict]:
    s = position_steps.query_steps(model, row, query)
    out = []

    def add(stage: str, grid: torch.Tensor, digits: int = 3) -> None:
        grid = grid if grid.dim() == 2 else grid[None]
        for r in range(grid.shape[0]):
            out.extend({"step": step, "stage": stage, "r": r, "c": c, "v": round(float(v), digits)} for c, v in enumerate(grid[r]))

    if s.added is not None:
        add("added", s.added)
    if s.angles is not None:
        add("angles", torch.remainder(s.angles, 2 * torch.pi))
    if s.bias is not None:
        add("added", s.bias)
    add("scores", s.scores, 2)
    add("pattern", s.pattern)
    add("probs", s.logits.softmax(-1))
    return out


ADDED_NOTES = {
    "none": "nothing: without positional information,\nevery key looks the same wherever it stands",
    "learned": "the learned position vector W_pos[t] is added\nto the query's stream (32 numbers)",
    "sinusoidal": "the fixed sinusoid PE[t] is added to the\nquery's stream (32 numbers)",
    "rope": "each head rotates its query's 4 pairs by t·θ\n(these angles, in radians) and each key's by j·θ",
    "alibi": "each head subtracts slope × distance from\nevery key's score (one row per head)",
}


@figure(
    "positional-panel",
    title="Where position enters: one query, every number, five encodings",
    caption=(
        "One row of 64 random tokens, read by the model trained with the encoding you pick (seed 0); the query "
        "position is yours too (the model was trained on rows of 16, so positions 16-63 are new to it). The "
        "panel shows what the encoding contributes at that query, then each of the four heads' scores over "
        "the keys before it (bias included, before the softmax), the attention weights after the softmax, and "
        "the predicted probability of each token. The right answer is the token 3 back, outlined in the row. "
        "The slider moves through training."
    ),
    model=MODEL,
)
def positional_panel(ctx: FigureContext):
    row = test_row()
    steps = [s for s, _ in run("rope", SEEDS[0], ctx.scale)["checkpoints"]]
    names, labels, gaps = [], [], []
    for encoding in pt.ENCODINGS:
        for query in PANEL_QUERIES:
            data = []
            for step in steps:
                model = trained(encoding, SEEDS[0], step, ctx.scale)
                data += panel_rows(model, row, query, step)
            final = trained(encoding, SEEDS[0], scale=ctx.scale)
            gaps.append(hook_gap(final, row, query))
            tokens = [{"p": p, "t": LETTERS[int(t)], "role": "query" if p == query else "answer" if p == query - K else
                       "later" if p > query else ""} for p, t in enumerate(row.tolist())]  # fmt: skip
            ctx.asset(f"panel/{encoding}-{query}.json", {"numbers": data, "tokens": tokens,
                                                        "note": [{"text": ADDED_NOTES[encoding]}]})
        names.append(encoding)
        labels.append(NAMES[encoding])
    ctx.claim("max_gap_to_hooks", max(gaps))
    ctx.claim("checkpoints", len(steps))
    ctx.claim("train_length", TRAIN_LENGTH)

    panel = charts.Panel()
    panel.data("encoding", names, label="Positional encoding", labels=labels, default="rope")
    panel.data("query", [str(q) for q in PANEL_QUERIES], label="Query position",
               labels=[f"{q}{' (inside training length)' if q < TRAIN_LENGTH else ' (beyond it)'}" for q in PANEL_QUERIES])
    step = panel.steps("step", steps, value=steps[-1])
    panel.source("panel/{encoding}-{query}.json", datasets=["numbers", "tokens", "note"])
    return panel.finish(panel_chart(step))


@torch.no_grad()
def hook_gap(model: pt.PositionTransformer, row: torch.Tensor, query: int) -> float:
    """Largest difference between the panel's steps and the model's own hooks and logits."""
    s = position_steps.query_steps(model, row, query)
    logits, cache = model.run_with_cache(row[None, : query + 1])
    gaps = [(s.scores - cache["blocks.0.attn.hook_attn_scores"][0, :, query]).abs().max(),
            (s.pattern - cache["blocks.0.attn.hook_pattern"][0, :, query]).abs().max(),
            (s.logits - logits[0, query]).abs().max()]  # fmt: skip
    return float(max(gaps))


def panel_chart(step: alt.Parameter):
    numbers = alt.Data(name="numbers")
    keys = alt.X("c:O", axis=None, scale=alt.Scale(domain=list(range(TEST_LENGTH))))
    width = TEST_LENGTH * 10

    def title(text: str) -> alt.Title:
        return alt.Title(text, fontSize=charts.LABEL_SIZE, anchor="start")

    tokens = (
        alt.Chart(alt.Data(name="tokens"), title=title("the row: query filled, answer (3 back) outlined"))
        .encode(x=alt.X("p:O", title=None, scale=alt.Scale(domain=list(range(TEST_LENGTH))),
                        axis=alt.Axis(values=[0, 16, 32, 48, 63], labelAngle=0, ticks=False, domain=False)))
    )
    boxes = tokens.mark_rect(strokeWidth=1.5).encode(
        color=alt.condition("datum.role == 'query'", alt.value(charts.ACCENT), alt.value("transparent")),
        stroke=alt.condition("datum.role == 'answer'", alt.value(charts.ACCENT), alt.value("transparent")))
    letters = tokens.mark_text(fontSize=charts.SMALL_SIZE).encode(
        text="t:N", color=alt.Color("role:N", legend=None, scale=alt.Scale(
            domain=["query", "answer", "later", ""], range=[charts.PAPER, charts.INK, charts.MUTED, charts.INK])))
    row = alt.layer(boxes, letters).properties(width=width, height=22)
    note = (alt.Chart(alt.Data(name="note"), title=title("what the encoding contributes at the query"))
            .mark_text(align="left", baseline="top", fontSize=charts.LABEL_SIZE, color=charts.MUTED, x=0, y=0, lineBreak="\n")
            .encode(text="text:N").properties(width=width, height=30))
    added = (
        alt.Chart(numbers).transform_filter(f"datum.stage == 'added' && datum.step == {step.name}")
        .mark_rect(stroke=charts.RULE, strokeWidth=0.5)
        .encode(x=alt.X("c:O", axis=None), y=alt.Y("r:O", axis=None),
                color=alt.Color("v:Q", scale=charts.diverging(3.0, clamp=True), legend=None),
                tooltip=[alt.Tooltip("r:O", title="row (head)"), alt.Tooltip("c:O", title="component, pair or key"),
                         alt.Tooltip("v:Q", format=".3f")])
        .properties(width=alt.Step(10), height=alt.Step(12))
    )

    angles = (
        alt.Chart(numbers).transform_filter(f"datum.stage == 'angles' && datum.step == {step.name}")
        .transform_calculate(label="'pair ' + datum.c + ': ' + format(datum.v, '.2f')")
        .mark_text(align="left", fontSize=charts.SMALL_SIZE, color=charts.INK)
        .encode(x=alt.X("c:O", axis=None), text="label:N")
        .properties(width=alt.Step(76), height=14)
    )

    def heads(stage: str, text: str, scale: alt.Scale, fmt: str) -> alt.Chart:
        return (
            alt.Chart(numbers, title=title(text))
            .transform_filter(f"datum.stage == '{stage}' && datum.step == {step.name}")
            .mark_rect(stroke=charts.RULE, strokeWidth=0.5)
            .encode(x=keys, y=alt.Y("r:O", title=None, axis=alt.Axis(labelAngle=0, ticks=False, domain=False, labelExpr="'h' + datum.label")),
                    color=alt.Color("v:Q", scale=scale, legend=None),
                    tooltip=[alt.Tooltip("r:O", title="head"), alt.Tooltip("c:O", title="key position"), alt.Tooltip("v:Q", format=fmt)])
            .properties(width=width, height=alt.Step(14))
        )

    scores = heads("scores", "scores q·k / √8 (+ ALiBi's penalty), per head and key", charts.diverging(6.0, clamp=True), ".2f")
    pattern = heads("pattern", "attention weights (softmax), per head and key", charts.sequential((0, 1)), ".3f")
    probs = (
        alt.Chart(alt.Data(name="numbers"), title=title("predicted probability of each token"))
        .transform_filter(f"datum.stage == 'probs' && datum.step == {step.name}")
        .transform_calculate(token=f"substring('{LETTERS}', datum.c, datum.c + 1)")
        .mark_bar()
        .encode(x=alt.X("token:N", title=None, sort=list(LETTERS), axis=alt.Axis(labelAngle=0)),
                y=alt.Y("v:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(values=[0, 0.5, 1])),
                color=alt.value(charts.SERIES[0]),
                tooltip=[alt.Tooltip("token:N"), alt.Tooltip("v:Q", title="probability", format=".3f")])
        .properties(width=16 * 18, height=100)
    )
    return alt.vconcat(row, note, added, angles, scores, pattern, probs, spacing=8)


# --------------------------------------------------------------------------- each encoding, and what it learned


def encoding_matrix(encoding: str, model: pt.PositionTransformer, head: int) -> list[dict]:
    """The encoding itself as rows (r: position, c: component), as the figure draws it."""
    if encoding == "learned":
        grid = model.pos_embed.weight.detach()  # (pos, d_model)
    elif encoding == "sinusoidal":
        grid = formulas.sinusoidal_encoding(TEST_LENGTH, ARCH["d_model"])
    elif encoding == "rope":
        angles = formulas.rope_angles(TEST_LENGTH, ARCH["d_model"] // ARCH["n_heads"])  # (pos, pair)
        grid = torch.stack([angles.cos(), angles.sin()], dim=-1).flatten(1)  # cos, sin of each pair
    elif encoding == "alibi":
        grid = formulas.alibi_bias(TEST_LENGTH, ARCH["n_heads"])[head].masked_fill(formulas.future_mask(TEST_LENGTH), float("nan"))
    else:
        return []
    return [{"r": r, "c": c, "v": round(float(v), 3)} for r in range(grid.shape[0]) for c, v in enumerate(grid[r])
            if v == v]  # fmt: skip


ENCODING_TITLES = {
    "none": "no encoding: nothing is added",
    "learned": "W_pos, as trained (position × 32 components)",
    "sinusoidal": "PE, fixed sines and cosines (position × 32)",
    "rope": "RoPE: cos and sin of each pair's angle (position × 4 pairs)",
    "alibi": "ALiBi's bias for this head (query × key)",
}


@figure(
    "positional-encodings",
    title="Each encoding, and the attention it learns",
    caption=(
        "Left: the encoding itself, for 64 positions. Learned absolute positions are a trained table whose rows past "
        "15 never received a gradient (they keep their random start); sinusoids are fixed bands, fast in the first "
        "components and slow in the last; RoPE rotates each pair of a head's query and key by an angle that grows with "
        "position, at four speeds; ALiBi subtracts a penalty proportional to distance. Right: the attention of the "
        "head that copies (the one that attends most to the token 3 back), seed 0, on one row of 64 tokens. Rows "
        "below the dashed line are query positions past the training length of 16."
    ),
    model=MODEL,
)
def positional_encodings(ctx: FigureContext):
    row, rows = test_row(), heldout()
    for encoding in pt.ENCODINGS:
        model = trained(encoding, SEEDS[0], scale=ctx.scale)
        head = copy_head(patterns(model, rows))
        _, cache = model.run_with_cache(row[None], names_filter="blocks.0.attn.hook_pattern")
        pattern = cache["blocks.0.attn.hook_pattern"][0, head]  # (q_pos, k_pos)
        attention = [{"q": q, "k": k, "v": round(float(pattern[q, k]), 3)} for q in range(TEST_LENGTH) for k in range(q + 1)]
        ctx.asset(f"encodings/{encoding}.json", {"encoding": encoding_matrix(encoding, model, head), "attention": attention,
                                                 "title": [{"text": ENCODING_TITLES[encoding]}]})
        on_target, unseen = {}, {}
        for seed in SEEDS:
            pattern = patterns(trained(encoding, seed, scale=ctx.scale), rows)
            copying = copy_head(pattern)
            per_query = attention_on_target(pattern)[copying]  # (query - K,)
            on_target[seed] = {span: span_mean(per_query.tolist(), RANGES[span]) for span in ("in", "far")}
            unseen[seed] = attention_past_training_distance(pattern, copying)
        for span in ("in", "far"):
            claim_over_seeds(ctx, f"{encoding}_target_attention_{span}", {s: v[span] for s, v in on_target.items()})
        claim_over_seeds(ctx, f"{encoding}_unseen_distance_attention_far", unseen)
    ctx.claim("uniform_attention_far", float(torch.tensor([1 / (q + 1) for q in range(*RANGES["far"])]).mean()))

    panel = charts.Panel()
    panel.data("encoding", list(pt.ENCODINGS), label="Positional encoding", labels=[NAMES[e] for e in pt.ENCODINGS], default="rope")
    panel.source("encodings/{encoding}.json", datasets=["encoding", "attention", "title"])
    return panel.finish(encodings_chart())


def attention_past_training_distance(pattern: torch.Tensor, head: int) -> float:
    """Share of `head`'s attention, from the last quarter of query positions, on keys farther back than any
    distance seen in training (TRAIN_LENGTH or more)."""
    q = torch.arange(*RANGES["far"])
    far_keys = torch.arange(TEST_LENGTH)[None, :] <= q[:, None] - TRAIN_LENGTH  # (query, k_pos)
    return float((pattern[:, head][:, q] * far_keys).sum(-1).mean())


def encodings_chart():
    size = 256
    title = (alt.Chart(alt.Data(name="title")).mark_text(align="left", fontSize=charts.LABEL_SIZE, color=charts.INK, x=0)
             .encode(text="text:N").properties(width=size, height=14))
    matrix = (
        alt.Chart(alt.Data(name="encoding")).mark_rect()
        .encode(x=alt.X("c:O", title="component", axis=None), y=alt.Y("r:O", title="position", axis=alt.Axis(values=[0, 16, 32, 48, 63])),
                color=alt.Color("v:Q", scale=charts.diverging(1.5, clamp=True), title="value"),
                tooltip=[alt.Tooltip("r:O", title="position (query)"), alt.Tooltip("c:O", title="component (key)"),
                         alt.Tooltip("v:Q", format=".3f")])
        .properties(width=size, height=size)
    )
    positions = alt.Scale(domain=list(range(TEST_LENGTH)))
    heat = alt.Chart(alt.Data(name="attention"), title=alt.Title("attention of the copying head", fontSize=charts.LABEL_SIZE, anchor="start")).mark_rect().encode(
        x=alt.X("k:O", title="key position", scale=positions, axis=alt.Axis(values=[0, 16, 32, 48, 63], labelAngle=0)),
        y=alt.Y("q:O", title="query position", scale=positions, axis=alt.Axis(values=[0, 16, 32, 48, 63])),
        color=alt.Color("v:Q", scale=charts.sequential((0, 1)), title="attention"),
        tooltip=[alt.Tooltip("q:O", title="query"), alt.Tooltip("k:O", title="key"), alt.Tooltip("v:Q", format=".3f")],
    ).properties(width=size, height=size)
    boundary = alt.Chart(alt.Data(values=[{"q": TRAIN_LENGTH}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(
        y=alt.Y("q:O", scale=positions))
    left = alt.vconcat(title, matrix, spacing=4)
    return alt.hconcat(left, alt.layer(heat, boundary), spacing=24).resolve_scale(color="independent")


# --------------------------------------------------------------------------- extrapolation


@figure(
    "positional-extrapolation",
    title="Trained on 16 tokens, tested on 64: accuracy at each position",
    caption=(
        "Accuracy of repeating the token 3 back at each position of held-out rows of 64 tokens, for the five "
        "encodings (line: mean of three seeds; band: lowest to highest seed). Training rows had 16 tokens: left of "
        "the dashed line is what the models trained on. The dotted line is chance, 1 in 16."
    ),
    model=MODEL,
)
def positional_extrapolation(ctx: FigureContext):
    rows = []
    for encoding in pt.ENCODINGS:
        per_seed = {seed: run(encoding, seed, ctx.scale)["history"][-1]["accuracy"] for seed in SEEDS}
        for span, bounds in RANGES.items():
            claim_over_seeds(ctx, f"{encoding}_accuracy_{span}", {s: span_mean(a, bounds) for s, a in per_seed.items()})
        for i in range(TEST_LENGTH - K):
            values = [per_seed[s][i] for s in SEEDS]
            rows.append({"encoding": NAMES[encoding], "position": i + K, "mean": sum(values) / len(values),
                         "min": min(values), "max": max(values)})
    ctx.claim("chance", CHANCE)
    ctx.claim("train_length", TRAIN_LENGTH)
    ctx.claim("test_length", TEST_LENGTH)
    ctx.claim("steps", STEPS[ctx.scale])
    frame = pd.DataFrame(rows).round(4)
    names = [NAMES[e] for e in pt.ENCODINGS]
    colors = charts.series_scale(names, [charts.SERIES[7], charts.SERIES[0], charts.SERIES[1], charts.SERIES[2], charts.SERIES[3]])
    base = alt.Chart(frame).encode(x=alt.X("position:Q", title="position in the row (query)", scale=alt.Scale(domain=[0, TEST_LENGTH])))
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("min:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), y2="max:Q",
                                              color=alt.Color("encoding:N", scale=colors, title="encoding"))
    line = base.mark_line().encode(y="mean:Q", color=alt.Color("encoding:N", scale=colors, title="encoding"),
                                   tooltip=["encoding:N", "position:Q", alt.Tooltip("mean:Q", format=".2f", title="mean over seeds"),
                                            alt.Tooltip("min:Q", format=".2f"), alt.Tooltip("max:Q", format=".2f")])
    trained_edge = alt.Chart(pd.DataFrame([{"x": TRAIN_LENGTH - 0.5}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(x="x:Q")
    chance = alt.Chart(pd.DataFrame([{"y": CHANCE}])).mark_rule(color=charts.MUTED, strokeDash=[1, 2]).encode(y="y:Q")
    return alt.layer(band, line, trained_edge, chance).properties(width=520, height=260)
