"""Task arithmetic: task vectors of two packages on the flagship, added, negated and scaled.

For each flagship run (flagship-bytes-2l seeds 0-2) two full fine-tunes, on sympy (task A) and on
pandas (task B), give two task vectors τ = θ_fine-tuned − θ_base (explorer/techniques/task_arithmetic.py).
The figures walk θ_base + λ τ for τ_A, τ_B and τ_A + τ_B over λ from −1 to 2 and score each point on
held-out sympy, held-out pandas and the rest of the held-out corpus (the control), and compare the
task vectors' cosine with two references: the same task fine-tuned on other batches, and random
directions.
"""

import functools

import altair as alt
import numpy as np
import pandas as pd

from explorer import artifacts, charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.models.flagship import arch_of
from explorer.pipeline import FigureContext, figure
from explorer.techniques import lora
from explorer.techniques import task_arithmetic as ta

SEEDS = (0, 1, 2)
TASKS = {"A": "sympy", "B": "pandas"}
RUN = {"full": dict(steps=96, batch=8, warmup=8, eval_rows=32, tune_rows=8, other_limit=1_000_000),
       "smoke": dict(steps=32, batch=4, warmup=4, eval_rows=12, tune_rows=4, other_limit=300_000)}
RECIPE = dict(method="full", rank=0, alpha=0, lr=3e-4, weight_decay=0.01, betas=(0.9, 0.99), threads=1)  # the LoRA page's full fine-tuning
COEFFICIENTS = {"full": tuple(np.round(np.arange(-1.0, 2.01, 0.25), 2)), "smoke": (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)}
CONTROL_LIMIT = {"full": 2_000_000, "smoke": 500_000}
OTHER_BATCHES = 100  # the seed offset of the second fine-tune on task A: same task, other batches
NULL_DRAWS = 20
VECTORS = {"A": ("A",), "B": ("B",), "A+B": ("A", "B")}
VECTOR_LABELS = {"A": "τ_A (sympy)", "B": "τ_B (pandas)", "A+B": "τ_A + τ_B"}
SETS = {"A": "held-out sympy", "B": "held-out pandas", "control": "other held-out code"}
MODEL = ("flagship-bytes-2l seeds 0-2 (attention-only, bytes; models/), each fully fine-tuned here on sympy's and, "
         "separately, on pandas's training files (the LoRA page's recipe); task vectors and their sums scored on held-out files")


@functools.cache
def pretrained() -> dict[int, artifacts.Artifact]:
    """The stored flagship runs (literal names, so each one's provenance is an input of these figures)."""
    return {0: artifacts.load("flagship-bytes-2l-s0"), 1: artifacts.load("flagship-bytes-2l-s1"), 2: artifacts.load("flagship-bytes-2l-s2")}


def fine_tuned(scale: str, seed: int, task: str, batches: int = 0) -> dict:
    """Full fine-tuning of run `seed` on a task's package (batches: an offset to the batch order's seed)."""
    start = pretrained()[seed]
    config = dict(RECIPE, **RUN[scale], package=TASKS[task], seed=seed + batches, start=start.provenance["weights_sha256"])
    return cached("task-arithmetic-finetune", config, lambda: lora.fine_tune(start.weights, arch_of(start.weights), config), code=[lora])


@functools.cache
def vectors(scale: str, seed: int) -> dict[str, dict]:
    base = {k: v.float() for k, v in pretrained()[seed].weights.items()}
    out = {task: ta.task_vector(fine_tuned(scale, seed, task)["weights"], base) for task in TASKS}
    out["A again"] = ta.task_vector(fine_tuned(scale, seed, "A", OTHER_BATCHES)["weights"], base)
    return out


@functools.cache
def evals(scale: str) -> dict:
    arch = arch_of(pretrained()[0].weights)
    return ta.evaluation_sets(TASKS["A"], TASKS["B"], RUN[scale]["eval_rows"], arch["n_ctx"], CONTROL_LIMIT[scale])


@functools.cache
def sweeps(scale: str) -> dict[tuple[str, int], list[dict]]:
    """{(vector, seed): [{coefficient, A, B, control}, ...]}: losses along θ_base + λ τ."""
    arch = arch_of(pretrained()[0].weights)
    out = {}
    for seed in SEEDS:
        base = {k: v.float() for k, v in pretrained()[seed].weights.items()}
        vs = vectors(scale, seed)
        for name, parts in VECTORS.items():
            out[(name, seed)] = ta.sweep(base, [vs[p] for p in parts], COEFFICIENTS[scale], arch, evals(scale))
    return out


def at(rows: list[dict], coefficient: float) -> dict:
    return next(r for r in rows if abs(r["coefficient"] - coefficient) < 1e-9)


@figure(
    "task-arithmetic-line",
    title="Walking along a task vector: the loss on each task as the coefficient changes",
    caption=(
        "The flagship moved along a task vector, θ_base + λ τ, for the vector the menu picks: τ_A (full fine-tuning on "
        "sympy minus the base), τ_B (on pandas) or their sum. λ = 0 is the base, λ = 1 the fine-tuned model (for the sum: "
        "both vectors added at full strength), λ < 0 subtracts the task. Each line is the change of the loss (nats per "
        "byte) from the base's on held-out sympy, held-out pandas and the rest of the held-out code; the mean of 3 seeds "
        "(three flagship runs, each with its own fine-tunes), the band their range."
    ),
    model=MODEL,
)
def task_arithmetic_line(ctx: FigureContext):
    runs = sweeps(ctx.scale)
    rows = []
    for (name, seed), sweep in runs.items():
        base = at(sweep, 0.0)
        rows += [{"vector": name, "seed": seed, "coefficient": r["coefficient"], "set": SETS[k], "change": r[k] - base[k]}
                 for r in sweep for k in SETS]
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["vector", "coefficient", "set"], as_index=False)["change"].agg(["mean", "min", "max"]).reset_index()
    ctx.claim("seeds", len(SEEDS))
    ctx.claim("steps", RUN[ctx.scale]["steps"])
    ctx.claim("coefficient_min", float(min(COEFFICIENTS[ctx.scale])))
    ctx.claim("coefficient_max", float(max(COEFFICIENTS[ctx.scale])))
    for name in VECTORS:  # where along the line each task's loss is lowest (mean over seeds)
        mean_rows = [{"coefficient": c, **{k: float(np.mean([at(runs[(name, s)], c)[k] for s in SEEDS])) for k in SETS}}
                     for c in COEFFICIENTS[ctx.scale]]
        for key in SETS:
            ctx.claim(f"{name.replace('+', '')}_{key}_best_coefficient", ta.best_coefficient(mean_rows, [key]))
    claim_over_seeds(ctx, "A_A_at_2", {s: at(runs[("A", s)], 2.0)["A"] - at(runs[("A", s)], 0.0)["A"] for s in SEEDS})
    claim_over_seeds(ctx, "A_A_at_1", {s: at(runs[("A", s)], 1.0)["A"] - at(runs[("A", s)], 0.0)["A"] for s in SEEDS})
    claim_over_seeds(ctx, "A_control_at_2", {s: at(runs[("A", s)], 2.0)["control"] - at(runs[("A", s)], 0.0)["control"] for s in SEEDS})
    panel = charts.Panel()
    vector = panel.select("vector", list(VECTORS), label="Task vector", labels=[VECTOR_LABELS[v] for v in VECTORS])
    names = list(SETS.values())
    base = alt.Chart(summary).transform_filter(f"datum.vector == {vector.name}")
    x = alt.X("coefficient:Q", title="coefficient λ (0: the base; 1: the fine-tuned model)")
    color = alt.Color("set:N", scale=charts.series_scale(names), title=None, legend=alt.Legend(orient="bottom"))
    band = base.mark_area(opacity=0.18).encode(x=x, y="min:Q", y2="max:Q", color=color)
    lines = base.mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title="loss change from the base (nats per byte)"), color=color,
        tooltip=[alt.Tooltip("set:N"), alt.Tooltip("coefficient:Q", title="λ"), alt.Tooltip("mean:Q", title="change (mean of 3)", format="+.4f"),
                 alt.Tooltip("min:Q", format="+.4f", title="lowest seed"), alt.Tooltip("max:Q", format="+.4f", title="highest seed")])
    marks = alt.Chart(pd.DataFrame([{"c": 0.0, "what": "the base"}, {"c": 1.0, "what": "the fine-tuned model"}])).mark_rule(
        color=charts.MUTED, strokeDash=[3, 3]).encode(x="c:Q", tooltip=["what:N"])
    zero = alt.Chart(pd.DataFrame([{"y": 0.0}])).mark_rule(color=charts.MUTED).encode(y="y:Q")
    return panel.finish(alt.layer(band, zero, marks, lines).properties(width=460, height=280))


@figure(
    "task-arithmetic-summary",
    title="Adding, averaging and negating task vectors, and how alike the vectors are",
    caption=(
        "Left: the change of the loss from the base's (nats per byte) on each held-out set, for the models fine-tuned on "
        "one task, the base plus both task vectors (λ = 1) and plus their mean (λ = 0.5), and the base minus τ_A; the bars "
        "are the mean of 3 seeds, the ticks each seed. Right: the cosine between task vectors (all parameters as one "
        "vector) for each seed: τ_A against τ_B, τ_A against a second fine-tune on sympy with other batches (the same "
        "task), and τ_A against random directions (the null)."
    ),
    model=MODEL,
)
def task_arithmetic_summary(ctx: FigureContext):
    runs = sweeps(ctx.scale)
    models = {"fine-tuned on A": ("A", 1.0), "fine-tuned on B": ("B", 1.0), "base + τ_A + τ_B": ("A+B", 1.0),
              "base + (τ_A + τ_B) / 2": ("A+B", 0.5), "base − τ_A": ("A", -1.0)}
    keys = {"fine-tuned on A": "ftA", "fine-tuned on B": "ftB", "base + τ_A + τ_B": "sum", "base + (τ_A + τ_B) / 2": "mean", "base − τ_A": "negA"}
    rows = []
    for label, (name, c) in models.items():
        for key in SETS:
            changes = {s: at(runs[(name, s)], c)[key] - at(runs[(name, s)], 0.0)[key] for s in SEEDS}
            claim_over_seeds(ctx, f"{keys[label]}_{key}", changes)
            rows += [{"model": label, "set": SETS[key], "seed": s, "change": v} for s, v in changes.items()]
    claim_over_seeds(ctx, "base_A", {s: at(runs[("A", s)], 0.0)["A"] for s in SEEDS})
    claim_over_seeds(ctx, "base_control", {s: at(runs[("A", s)], 0.0)["control"] for s in SEEDS})
    cos_rows = []
    cosines: dict[str, dict[int, float]] = {"τ_A vs τ_B": {}, "τ_A vs τ_A (other batches)": {}, "τ_A vs random": {}}
    for s in SEEDS:
        vs = vectors(ctx.scale, s)
        cosines["τ_A vs τ_B"][s] = ta.cosine(vs["A"], vs["B"])
        cosines["τ_A vs τ_A (other batches)"][s] = ta.cosine(vs["A"], vs["A again"])
        null = ta.random_cosine(vs["A"], NULL_DRAWS, seed=s)
        cosines["τ_A vs random"][s] = float(null.abs().max())
    claim_over_seeds(ctx, "cos_AB", cosines["τ_A vs τ_B"])
    claim_over_seeds(ctx, "cos_AA", cosines["τ_A vs τ_A (other batches)"])
    claim_over_seeds(ctx, "cos_random_max", cosines["τ_A vs random"])
    ctx.claim("null_draws", NULL_DRAWS)
    for kind, values in cosines.items():
        cos_rows += [{"pair": kind, "seed": s, "cosine": v} for s, v in values.items()]
    frame = pd.DataFrame(rows)
    order = list(models)
    color = alt.Color("set:N", scale=charts.series_scale(list(SETS.values())), title=None, legend=alt.Legend(orient="bottom"))
    bars = alt.Chart(frame).mark_bar(opacity=0.85).encode(
        y=alt.Y("set:N", title=None, axis=None), x=alt.X("mean(change):Q", title="loss change from the base (nats per byte)"),
        color=color, tooltip=[alt.Tooltip("model:N"), alt.Tooltip("set:N"), alt.Tooltip("mean(change):Q", format="+.4f", title="mean of 3 seeds")])
    ticks = alt.Chart(frame).mark_tick(color=charts.INK, thickness=1.5, size=10).encode(
        y=alt.Y("set:N", title=None, axis=None), x="change:Q",
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("set:N"), alt.Tooltip("seed:O"), alt.Tooltip("change:Q", format="+.4f")])
    left = alt.layer(bars, ticks).properties(width=300, height=alt.Step(12)).facet(
        row=alt.Row("model:N", sort=order, title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=charts.LABEL_SIZE)),
        spacing=6)
    cos = alt.Chart(pd.DataFrame(cos_rows)).mark_point(filled=True, size=60).encode(
        y=alt.Y("pair:N", title=None, sort=list(cosines), axis=alt.Axis(labelLimit=200)),
        x=alt.X("cosine:Q", title="cosine between task vectors", scale=alt.Scale(domain=[0, 1])),
        color=alt.value(charts.SERIES[0]),
        tooltip=[alt.Tooltip("pair:N"), alt.Tooltip("seed:O"), alt.Tooltip("cosine:Q", format=".3f")],
    ).properties(width=220, height=alt.Step(26), title="How alike the task vectors are")
    return alt.vconcat(left, cos, spacing=30)
