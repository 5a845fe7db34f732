"""Curriculum, chapter 3: multi-head attention, on a task with two relations at once (two-part recall).

One attention layer of width 32 (explorer/models/multihead.py), split into 1 head of 32, 2 heads of
16 or 4 heads of 8, is trained here on explorer/data/two_part_recall.py, a synthetic task: eight
key-value pairs and a query key; the answer names the queried pair's value (a lookup by content)
and the first pair's value (a lookup by position). Three seeds per split, seconds each, cached.
"""

import functools

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.cache import cached
from explorer.data.two_part_recall import TwoPartRecall
from explorer.ensemble import claim_over_seeds
from explorer.models import multihead
from explorer.pipeline import FigureContext, figure
from explorer.techniques import position_steps

TASK = TwoPartRecall(n_keys=16, n_values=8, pairs=8)
SEEDS = (0, 1, 2)
SPLITS = (1, 2, 4)
D_MODEL = 32
RECIPE = dict(d_model=D_MODEL, steps=2000, batch=64, lr=3e-3, eval_rows=1024, checkpoint_every=100)
STEPS = {"smoke": 1200, "full": 2000}
MODEL = ("two-part-recall-1l: 1-layer attention-only transformers of width 32 (learned positions, no LayerNorm), as 1 head "
         "of 32, 2 heads of 16 or 4 heads of 8, trained here on two-part recall (explorer/data/two_part_recall.py, "
         "synthetic), seeds 0-2")
PARTS = {"both": "the whole answer", "lookup": "part 1: the queried pair's value", "first": "part 2: the first pair's value"}
CHANCE = {"both": 1 / TASK.n_values**2, "lookup": 1 / TASK.n_values, "first": 1 / TASK.n_values}
EXAMPLES = 4
PANEL_EVERY = 200  # the panel's slider: every other checkpoint


@functools.cache  # three figures read the same runs: one read of the cache each
def run(scale: str, n_heads: int, seed: int) -> dict:
    recipe = {**RECIPE, "steps": STEPS[scale]}
    config = {"task": vars(TASK), "n_heads": n_heads, "seed": seed, **recipe}
    return cached("multihead-runs", config, lambda: multihead.train(TASK, n_heads, seed, **recipe),
                  code=[multihead, "explorer/data/two_part_recall.py"])


def trained(scale: str, n_heads: int, seed: int, step: int | None = None):
    checkpoints = dict(run(scale, n_heads, seed)["checkpoints"])
    return multihead.load(TASK, n_heads, D_MODEL, checkpoints[max(checkpoints) if step is None else step])


def heldout() -> torch.Tensor:
    return TASK.batch(2048, torch.Generator().manual_seed(777))


def examples() -> torch.Tensor:
    return TASK.batch(EXAMPLES, torch.Generator().manual_seed(2024))


def split_label(n_heads: int) -> str:
    return f"{n_heads} head{'s' if n_heads > 1 else ''} of {D_MODEL // n_heads}"


# --------------------------------------------------------------------------- the computation panel


@torch.no_grad()
def panel_rows(model, row: torch.Tensor, step: int) -> list[dict]:
    s = position_steps.query_steps(model, row[:-1], query=TASK.pairs)
    w_u = model.unembed.weight[TASK.answer_base :]  # (answers, d_model)
    out = []

    lookup, first = (int(x[0]) for x in TASK.parts(row[None]))

    def add(stage: str, grid: torch.Tensor, digits: int = 2, answer: bool = False) -> None:
        for r in range(grid.shape[0]):
            for c, v in enumerate(grid[r]):
                out.append({"step": step, "stage": stage, "r": r, "c": c, "v": round(float(v), digits),
                            **({"answer": 1} if answer and (r, c) == (lookup, first) else {})})

    add("scores", s.scores)
    add("pattern", s.pattern)
    for h in range(len(s.head_out)):
        add(f"head{h}", (s.head_out[h] @ w_u.T).view(TASK.n_values, TASK.n_values), answer=True)  # (lookup value, first value)
    add("logits", s.logits[TASK.answer_base :].view(TASK.n_values, TASK.n_values), answer=True)
    return out


def example_label(row: torch.Tensor) -> str:
    return " ".join(TASK.token_text(int(t)) for t in row[:-1]) + f"  (answer {TASK.token_text(int(row[-1]))[1:]})"


@figure(
    "multihead-panel",
    title="Two heads, every number: each head's pattern and what it adds to the answer",
    caption=(
        "One input of two-part recall (pick it above): eight pairs, then a query key; the answer names the queried "
        "pair's value and the first pair's value. For the model you pick (the same width as 1, 2 or 4 heads, seed 0), "
        "each head's scores q·k/√d_head over the nine positions and its attention after the softmax, then what each "
        "head's output adds to the logit of each of the 64 answers (a grid: the queried pair's value down, the first "
        "pair's value across), and their sum with the rest of the stream: the model's logits, whose largest is its "
        "answer. The slider moves through training."
    ),
    model=MODEL,
)
def multihead_panel(ctx: FigureContext):
    rows = examples()
    steps = [s for s, _ in run(ctx.scale, 1, SEEDS[0])["checkpoints"] if s % PANEL_EVERY == 0]
    names, labels, gaps = [], [], []
    for n_heads in SPLITS:
        for i, row in enumerate(rows):
            data = []
            for step in steps:
                data += panel_rows(trained(ctx.scale, n_heads, SEEDS[0], step), row, step)
            model = trained(ctx.scale, n_heads, SEEDS[0])
            gaps.append(hook_gap(model, row))
            target = int(TASK.target_position(row[None])[0])
            tokens = [{"p": p, "t": TASK.token_text(int(t)), "role": "query" if p == TASK.pairs else "target" if p == target else
                       "first" if p == 0 else ""} for p, t in enumerate(row[:-1].tolist())]  # fmt: skip
            ctx.asset(f"panel/heads-{n_heads}-example-{i}.json", {"numbers": data, "tokens": tokens})
    names = [f"heads-{h}" for h in SPLITS]
    labels = [split_label(h) for h in SPLITS]
    ctx.claim("max_gap_to_hooks", max(gaps))
    ctx.claim("checkpoints", len(steps))

    panel = charts.Panel()
    panel.data("split", names, label="Heads (width 32 in all)", labels=labels, default="heads-2", fresh=True)
    panel.data("example", [f"example-{i}" for i in range(EXAMPLES)], label="Input", labels=[example_label(r) for r in rows],
               default="example-1")
    step = panel.steps("step", steps, value=steps[-1])
    panel.source("panel/{split}-{example}.json", datasets=["numbers", "tokens"])
    return panel.finish(panel_chart(step))


@torch.no_grad()
def hook_gap(model, row: torch.Tensor) -> float:
    """Largest difference between the panel's steps and the model's own hooks and logits."""
    s = position_steps.query_steps(model, row[:-1], query=TASK.pairs)
    logits, cache = model.run_with_cache(row[None, :-1])
    gaps = [(s.pattern - cache["blocks.0.attn.hook_pattern"][0, :, TASK.pairs]).abs().max(),
            (s.z - cache["blocks.0.attn.hook_z"][0, TASK.pairs]).abs().max(),
            (s.logits - logits[0, TASK.pairs]).abs().max()]  # fmt: skip
    return float(max(gaps))


def panel_chart(step: alt.Parameter):
    numbers = alt.Data(name="numbers")

    def title(text: str) -> alt.Title:
        return alt.Title(text, fontSize=charts.LABEL_SIZE, anchor="start")

    positions = alt.X("c:O", axis=None, scale=alt.Scale(domain=list(range(TASK.length))))
    tokens = (
        alt.Chart(alt.Data(name="tokens"), title=title("the input: the first pair (green), the queried pair (red), the query"))
        .encode(x=alt.X("p:O", axis=None, scale=alt.Scale(domain=list(range(TASK.length)))))
    )
    boxes = tokens.mark_rect(strokeWidth=1.5, fill="transparent").encode(stroke=alt.Color(
        "role:N", legend=None, scale=alt.Scale(domain=["target", "first", "query", ""],
                                               range=[charts.ACCENT, charts.SERIES[2], charts.MUTED, "transparent"])))
    letters = tokens.mark_text(fontSize=charts.LABEL_SIZE, color=charts.INK).encode(text="t:N")
    row = alt.layer(boxes, letters).properties(width=TASK.length * 34, height=22)

    def heads(stage: str, text: str, scale: alt.Scale, fmt: str) -> alt.LayerChart:
        base = (alt.Chart(numbers, title=title(text)).transform_filter(f"datum.stage == '{stage}' && datum.step == {step.name}")
                .encode(x=positions, y=alt.Y("r:O", title=None, axis=alt.Axis(labelExpr="'head ' + datum.label", ticks=False, domain=False))))
        cells = base.mark_rect(stroke=charts.RULE, strokeWidth=0.5).encode(
            color=alt.Color("v:Q", scale=scale, legend=None),
            tooltip=[alt.Tooltip("r:O", title="head"), alt.Tooltip("c:O", title="position"), alt.Tooltip("v:Q", format=fmt)])
        strong = f"abs(datum.v) / {scale.domain[-1]} > toNumber('{charts.SEQ_FLIP}')"  # the diverging scores: paper on strong cells
        ink = charts.ink_on("v") if stage == "pattern" else alt.condition(strong, alt.value(charts.PAPER), alt.value(charts.INK))
        text_ = base.mark_text(fontSize=charts.SMALL_SIZE).encode(text=alt.Text("v:Q", format=fmt), color=ink)
        return alt.layer(cells, text_).properties(width=TASK.length * 34, height=alt.Step(20))

    scores = heads("scores", "each head's scores q·k / √d_head", charts.diverging(8.0, clamp=True), ".1f")
    pattern = heads("pattern", "each head's attention (softmax)", charts.sequential((0, 1)), ".2f")

    def grid(test: str) -> alt.LayerChart:
        """8 x 8 logit cells (the queried pair's value down, the first pair's across), the answer outlined."""
        base = (alt.Chart().transform_filter(f"{test} && datum.step == {step.name}")
                .encode(x=alt.X("c:O", title="first pair's value", axis=alt.Axis(labelAngle=0, ticks=False, domain=False)),
                        y=alt.Y("r:O", title="queried value", axis=alt.Axis(ticks=False, domain=False))))
        cells = base.mark_rect().encode(color=alt.Color("v:Q", scale=charts.diverging(10.0, clamp=True), legend=None),
                                        tooltip=[alt.Tooltip("r:O", title="queried pair's value"),
                                                 alt.Tooltip("c:O", title="first pair's value"), alt.Tooltip("v:Q", format=".2f", title="logit")])
        outline = base.transform_filter("datum.answer").mark_rect(fill="transparent", stroke=charts.INK, strokeWidth=2)
        return alt.layer(cells, outline, data=numbers).properties(width=alt.Step(13), height=alt.Step(13))

    heads_only = "indexof(datum.stage, 'head') == 0"
    per_head = (grid(heads_only).facet(column=alt.Column("head:N", title=None, header=alt.Header(labelFontSize=charts.LABEL_SIZE, labelAnchor="start")),
                                       spacing=14)
                .transform_filter(heads_only).transform_calculate(head="'head ' + substring(datum.stage, 4) + ' adds'"))
    total = grid("datum.stage == 'logits'").properties(title=title("the logits (their sum)"))
    writes = alt.hconcat(per_head, total, spacing=24)
    return alt.vconcat(row, scores, pattern, writes, spacing=10).resolve_scale(color="independent")


# --------------------------------------------------------------------------- accuracy per split


@figure(
    "multihead-training",
    title="The same width as one, two or four heads: accuracy over training",
    caption=(
        "Held-out accuracy over training on the whole answer and on each part, for the three splits (line: mean of "
        "three seeds; band: lowest to highest). Dotted: chance (1 in 64 for the whole answer, 1 in 8 for a part)."
    ),
    model=MODEL,
)
def multihead_training(ctx: FigureContext):
    rows = []
    for n_heads in SPLITS:
        histories = {seed: run(ctx.scale, n_heads, seed)["history"] for seed in SEEDS}
        for part in PARTS:
            claim_over_seeds(ctx, f"heads_{n_heads}_{part}", {s: h[-1][part] for s, h in histories.items()})
        for i, point in enumerate(histories[SEEDS[0]]):
            for part in PARTS:
                values = [histories[s][i][part] for s in SEEDS]
                rows.append({"split": split_label(n_heads), "part": PARTS[part], "step": point["step"],
                             "mean": sum(values) / 3, "min": min(values), "max": max(values)})
    for part, chance in CHANCE.items():
        ctx.claim(f"chance_{part}", chance)
    ctx.claim("steps", STEPS[ctx.scale])
    frame = pd.DataFrame(rows).round(4)
    chance = pd.DataFrame([{"part": PARTS[p], "y": c} for p, c in CHANCE.items()])
    splits = charts.series_scale([split_label(h) for h in SPLITS], [charts.SERIES[7], charts.SERIES[0], charts.SERIES[1]])
    x = alt.X("step:Q", title="training step")
    band = alt.Chart().mark_area(opacity=0.2).encode(x=x, y=alt.Y("min:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), y2="max:Q",
                                                     color=alt.Color("split:N", scale=splits, title="heads"))
    line = alt.Chart().mark_line().encode(x=x, y="mean:Q", color=alt.Color("split:N", scale=splits, title="heads"),
                                          tooltip=["split:N", "step:Q", alt.Tooltip("mean:Q", format=".3f", title="mean over seeds"),
                                                   alt.Tooltip("min:Q", format=".3f"), alt.Tooltip("max:Q", format=".3f")])
    return _faceted(frame, chance, band, line)


def _faceted(frame: pd.DataFrame, chance: pd.DataFrame, band: alt.Chart, line: alt.Chart):
    """One small chart per part, side by side (they wrap on a phone), each with its chance rule."""
    views = []
    for part in PARTS.values():
        rule = alt.Chart(chance[chance.part == part]).mark_rule(color=charts.MUTED, strokeDash=[1, 2]).encode(y="y:Q")
        views.append(alt.layer(band.transform_filter(alt.datum.part == part), line.transform_filter(alt.datum.part == part), rule,
                               data=frame).properties(width=210, height=180, title=alt.Title(part, fontSize=charts.LABEL_SIZE)))
    return alt.hconcat(*views, spacing=18)


# --------------------------------------------------------------------------- what each head carries


@torch.no_grad()
def head_table(scale: str, n_heads: int, seed: int, rows: torch.Tensor) -> list[dict]:
    """Per head: its attention from the query on the queried pair and on the first pair, and the accuracy
    of each part with that head mean-ablated."""
    model = trained(scale, n_heads, seed)
    _, cache = model.run_with_cache(rows[:, :-1], names_filter=lambda n: n in ("blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z"))
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, TASK.pairs]  # (rows, head, keys)
    mean_z = cache["blocks.0.attn.hook_z"].mean(0, keepdim=True)
    target, n = TASK.target_position(rows), torch.arange(len(rows))
    out = []
    for h in range(n_heads):
        ablated = multihead.part_accuracy(model, rows, TASK, [multihead.mean_ablation(h, mean_z)])
        out.append({"heads": n_heads, "seed": seed, "head": h, "attn_target": float(pattern[n, h, target].mean()),
                    "attn_first": float(pattern[:, h, 0].mean()), "attn_query": float(pattern[:, h, TASK.pairs].mean()), "ablated_lookup": ablated["lookup"], "ablated_first": ablated["first"]})
    return out


@figure(
    "multihead-heads",
    title="What each head carries: its attention, and the answer without it",
    caption=(
        "Every head of every model (three splits, three seeds): how much of its attention at the query goes to the "
        "queried pair and to the first pair (held-out inputs), and the accuracy on each part of the answer when "
        "that head's output is replaced by its average (mean ablation), which removes what the head says about "
        "this input and nothing else. Chance on a part is 1 in 8."
    ),
    model=MODEL,
)
def multihead_heads(ctx: FigureContext):
    rows = heldout()
    table = [r for n_heads in SPLITS for seed in SEEDS for r in head_table(ctx.scale, n_heads, seed, rows)]
    per_seed: dict[str, dict[int, float]] = {}
    for seed in SEEDS:  # in each 2-head model, the head that reads the first pair and the one that looks up
        two = [r for r in table if r["heads"] == 2 and r["seed"] == seed]
        position = max(two, key=lambda r: r["attn_first"])
        lookup = next(r for r in two if r is not position)
        values = {"position_head_attn_first": position["attn_first"], "lookup_head_attn_target": lookup["attn_target"],
                  "lookup_head_attn_query": lookup["attn_query"],
                  "without_position_head_first": position["ablated_first"], "without_position_head_lookup": position["ablated_lookup"],
                  "without_lookup_head_lookup": lookup["ablated_lookup"], "without_lookup_head_first": lookup["ablated_first"]}
        for key, value in values.items():
            per_seed.setdefault(f"heads_2_{key}", {})[seed] = value
        one = next(r for r in table if r["heads"] == 1 and r["seed"] == seed)
        per_seed.setdefault("heads_1_attn_first", {})[seed] = one["attn_first"]
        per_seed.setdefault("heads_1_attn_target", {})[seed] = one["attn_target"]
        four = [r for r in table if r["heads"] == 4 and r["seed"] == seed]
        per_seed.setdefault("heads_4_worst_single_ablation_lookup", {})[seed] = min(r["ablated_lookup"] for r in four)
        per_seed.setdefault("heads_4_worst_single_ablation_first", {})[seed] = min(r["ablated_first"] for r in four)
    for key, values in per_seed.items():
        claim_over_seeds(ctx, key, values)
    ctx.claim("chance_part", CHANCE["lookup"])
    ctx.claim("uniform_attention", 1 / TASK.length)  # the query's attention spread evenly over the pairs and itself
    ctx.claim("steps", STEPS[ctx.scale])

    columns = {"attn_target": "attention on|the queried pair", "attn_first": "attention on|the first pair",
               "attn_query": "attention on|the query itself", "ablated_lookup": "part 1 right|without the head",
               "ablated_first": "part 2 right|without the head"}
    long = [{"model": f"{split_label(r['heads'])}, seed {r['seed']}", "head": f"head {r['head']}", "order": r["heads"] * 100 + r["seed"] * 10 + r["head"],
             "column": columns[k], "v": round(r[k], 3)} for r in table for k in columns]  # fmt: skip
    frame = pd.DataFrame(long)
    base = alt.Chart(frame).encode(
        x=alt.X("column:N", title=None, sort=list(columns.values()), axis=alt.Axis(orient="bottom", labelAngle=0, labelLimit=120, labelPadding=4,
                                                                                   labelExpr="split(datum.label, '|')")),
        y=alt.Y("head:N", title=None, axis=alt.Axis(ticks=False, domain=False)))
    cells = base.mark_rect(stroke=charts.RULE, strokeWidth=0.5).encode(
        color=alt.Color("v:Q", scale=charts.sequential((0, 1)), legend=None),
        tooltip=["model:N", "head:N", "column:N", alt.Tooltip("v:Q", format=".3f")])
    text = base.mark_text(fontSize=charts.SMALL_SIZE).encode(text=alt.Text("v:Q", format=".2f"), color=charts.ink_on("v"))
    return alt.layer(cells, text).properties(width=alt.Step(96), height=alt.Step(18)).facet(
        row=alt.Row("model:N", title=None, sort=alt.EncodingSortField("order", op="min"), header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=charts.LABEL_SIZE)),
        spacing=6).resolve_scale(y="independent")
