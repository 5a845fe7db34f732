"""Catastrophic forgetting: an MLP on sklearn's digits learns task A, then task B, six ways.

Two settings (explorer/techniques/forgetting.py): "split" (A = digits 0-4, B = 5-9, one shared
10-way head: class-incremental) and "permuted" (B = the same digits with their pixels shuffled by one
fixed permutation: domain-incremental). For each of 3 seeds the MLP is trained on A, then on B by
each method (plain, replay, EWC, LoRA, freezing all but the head, and joint training on A and B as
the reference), and A's and B's test accuracy are measured every 10 steps of B. Chance is 10%.
"""

import functools

import altair as alt
import pandas as pd

from explorer import charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.pipeline import FigureContext, figure
from explorer.techniques import forgetting as fg

SEEDS = (0, 1, 2)
CONFIG = {
    "full": dict(hidden=[128, 128], lr=1e-3, batch=64, steps_a=500, steps_b=500, eval_every=10, rank=4, alpha=4, buffer=50,
                 replay_batch=16, fisher_samples=200, lambdas=[1, 10, 100, 1000, 10000, 100000, 1000000], seeds=list(SEEDS)),
    # smoke keeps B's 500 steps: how much of A a method keeps depends on how long B trains (EWC holds A for 150 steps, not 500)
    "smoke": dict(hidden=[128, 128], lr=1e-3, batch=64, steps_a=200, steps_b=500, eval_every=10, rank=4, alpha=4, buffer=50,
                  replay_batch=16, fisher_samples=50, lambdas=[100, 10000, 1000000], seeds=list(SEEDS)),
}  # fmt: skip
SETTING_LABELS = {"split": "split digits: A = 0-4, B = 5-9", "permuted": "permuted digits: B = the pixels shuffled"}
METHOD_LABELS = {"plain": "plain fine-tuning", "replay": "replay (50 stored A images)", "ewc": "EWC", "lora": "LoRA, rank 4",
                 "freeze": "only the head trained", "joint": "joint A + B (reference)"}  # fmt: skip
MODEL = ("MLP 64-128-128-10 (ReLU) trained here on sklearn's digits, task A then task B, 3 seeds "
         "(explorer/techniques/forgetting.py)")  # fmt: skip


@functools.cache
def runs(scale: str) -> dict[str, dict]:
    """{setting: fg.run_setting(...)} (cached)."""
    config = CONFIG[scale]
    return {s: cached("forgetting", dict(config, setting=s), lambda s=s: fg.run_setting(s, config), code=[fg]) for s in fg.SETTINGS}


def record_claims(ctx: FigureContext, results: dict, scale: str) -> None:
    config = CONFIG[scale]
    for setting, run in results.items():
        seeds = {int(k): v for k, v in run["seeds"].items()}
        first = seeds[SEEDS[0]]
        claim_over_seeds(ctx, f"{setting}_A_before", {s: v["methods"]["plain"]["A"][0] for s, v in seeds.items()})
        claim_over_seeds(ctx, f"{setting}_B_before", {s: v["methods"]["plain"]["B"][0] for s, v in seeds.items()})
        for method in fg.METHODS:
            for task in "AB":
                claim_over_seeds(ctx, f"{setting}_{method}_{task}", {s: v["methods"][method][task][-1] for s, v in seeds.items()})
            ctx.claim(f"{setting}_{method}_trainable", first["methods"][method]["trainable"])
        # how fast plain fine-tuning forgets: the first evaluation at which A's accuracy is below half its start
        half = {}
        for s, v in seeds.items():
            curve, steps = v["methods"]["plain"]["A"], v["methods"]["plain"]["steps"]
            below = [step for step, acc in zip(steps, curve, strict=True) if acc < curve[0] / 2]
            half[s] = below[0] if below else steps[-1] + config["eval_every"]
        claim_over_seeds(ctx, f"{setting}_plain_half_step", half)  # a seed that never got there counts as one evaluation past the end
        ctx.claim(f"{setting}_plain_half_reached", sum(step <= config["steps_b"] for step in half.values()))
        ctx.claim(f"{setting}_lambdas", ", ".join(f"{v['lambda']:,}" for _, v in sorted(seeds.items())))
        claim_over_seeds(ctx, f"{setting}_sweep_best_A", {s: max(a for a, _ in v["sweep_tune"].values()) for s, v in seeds.items()})
        claim_over_seeds(ctx, f"{setting}_sweep_worst_B", {s: min(b for _, b in v["sweep_tune"].values()) for s, v in seeds.items()})
    ctx.claim("full_params", results["split"]["seeds"][str(SEEDS[0])]["full_params"])
    ctx.claim("chance", fg.CHANCE)
    for key in ("steps_a", "steps_b", "eval_every", "buffer", "replay_batch", "rank", "fisher_samples", "batch"):
        ctx.claim(key, config[key])
    ctx.claim("lambda_lo", min(config["lambdas"]))
    ctx.claim("lambda_hi", max(config["lambdas"]))
    ctx.claim("seeds", len(SEEDS))


# --------------------------------------------------------------------------- figure 1: the curves


@figure(
    "forgetting-curves",
    title="Accuracy on the old task while the network learns the new one",
    caption=(
        "Test accuracy on task A (left) and task B (right) at every 10th step of training on B, starting from the network "
        "trained on A. Each line is one way of training on B, the mean of 3 seeds; the band is their range. Dashed: chance "
        "(10%, ten outputs). Choose the setting: split digits (A = 0-4, B = 5-9, one shared head) or permuted digits (B = "
        "the same images with their pixels shuffled)."
    ),
    model=MODEL,
)
def curves(ctx: FigureContext) -> alt.TopLevelMixin:
    results = runs(ctx.scale)
    record_claims(ctx, results, ctx.scale)
    rows = []
    for setting, run in results.items():
        for method in fg.METHODS:
            per_seed = [v["methods"][method] for v in run["seeds"].values()]
            for i, step in enumerate(per_seed[0]["steps"]):
                for task in "AB":
                    values = [c[task][i] for c in per_seed]
                    rows.append({"setting": setting, "method": METHOD_LABELS[method], "task": task, "step": step,
                                 "acc": sum(values) / len(values), "lo": min(values), "hi": max(values)})  # fmt: skip
    panel = charts.Panel()
    panel.select("setting", list(fg.SETTINGS), label="Setting", labels=[SETTING_LABELS[s] for s in fg.SETTINGS])
    names = [METHOD_LABELS[m] for m in fg.METHODS]
    color = alt.Color("method:N", scale=charts.series_scale(names), title=None, legend=alt.Legend(orient="bottom", columns=3))
    base = alt.Chart(pd.DataFrame(rows)).transform_filter("datum.setting == setting")
    tips = [alt.Tooltip("method:N"), alt.Tooltip("step:Q", title="step of B"), alt.Tooltip("acc:Q", format=".1%", title="accuracy (mean)"),
            alt.Tooltip("lo:Q", format=".1%", title="lowest seed"), alt.Tooltip("hi:Q", format=".1%", title="highest seed")]  # fmt: skip
    chance = alt.Chart(alt.Data(values=[{"c": fg.CHANCE}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(
        y="c:Q", tooltip=[alt.Tooltip("c:Q", format=".0%", title="chance")])

    def view(task: str, title: str) -> alt.LayerChart:
        data = base.transform_filter(f"datum.task == '{task}'")
        y = alt.Y("acc:Q", title="test accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
        band = data.mark_area(opacity=0.15).encode(x="step:Q", y=alt.Y("lo:Q", scale=alt.Scale(domain=[0, 1])), y2="hi:Q", color=alt.Color("method:N", scale=charts.series_scale(names), legend=None))
        line = data.mark_line(strokeWidth=1.8).encode(x=alt.X("step:Q", title="training step on B"), y=y, color=color, tooltip=tips)
        points = data.mark_point(size=20, opacity=0).encode(x="step:Q", y="acc:Q", tooltip=tips)
        return alt.layer(band, line, points, chance).properties(width=400, height=240, title=title)

    return panel.finish(alt.hconcat(view("A", "Task A (the old task)"), view("B", "Task B (the new task)")))


# --------------------------------------------------------------------------- figure 2: the trade-off


@figure(
    "forgetting-tradeoff",
    title="What each method keeps of A and learns of B",
    caption=(
        "Each method's test accuracy on A (x) against B (y) after training on B: small points are seeds, large ones their "
        "mean. The square is the network before B. The line is EWC's strength lambda swept over powers of ten (the "
        "means over seeds, measured on the tuning set, a fifth of the training images held out, where each seed's lambda "
        "was picked). Dashed: chance, 10%."
    ),
    model=MODEL,
)
def tradeoff(ctx: FigureContext) -> alt.TopLevelMixin:
    results = runs(ctx.scale)
    record_claims(ctx, results, ctx.scale)
    points, sweep, start = [], [], []
    for setting, run in results.items():
        seeds = list(run["seeds"].values())
        for method in fg.METHODS:
            finals = [(v["methods"][method]["A"][-1], v["methods"][method]["B"][-1]) for v in seeds]
            for (a, b), seed in zip(finals, run["seeds"], strict=True):
                points.append({"setting": setting, "method": METHOD_LABELS[method], "a": a, "b": b, "kind": f"seed {seed}"})
            points.append({"setting": setting, "method": METHOD_LABELS[method], "a": sum(a for a, _ in finals) / len(finals),
                           "b": sum(b for _, b in finals) / len(finals), "kind": "mean"})  # fmt: skip
        for lam in CONFIG[ctx.scale]["lambdas"]:
            pairs = [v["sweep_tune"][str(lam)] for v in seeds]
            sweep.append({"setting": setting, "lam": lam, "a": sum(p[0] for p in pairs) / len(pairs), "b": sum(p[1] for p in pairs) / len(pairs)})
        a0 = [v["methods"]["plain"]["A"][0] for v in seeds]
        b0 = [v["methods"]["plain"]["B"][0] for v in seeds]
        start.append({"setting": setting, "a": sum(a0) / len(a0), "b": sum(b0) / len(b0), "what": "before B"})
    panel = charts.Panel()
    panel.select("setting", list(fg.SETTINGS), label="Setting", labels=[SETTING_LABELS[s] for s in fg.SETTINGS])
    names = [METHOD_LABELS[m] for m in fg.METHODS]
    x = alt.X("a:Q", title="accuracy on A (old task)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    y = alt.Y("b:Q", title="accuracy on B (new task)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    tips = [alt.Tooltip("method:N"), alt.Tooltip("kind:N", title="run"), alt.Tooltip("a:Q", format=".1%", title="A"), alt.Tooltip("b:Q", format=".1%", title="B")]
    frame = alt.Chart(pd.DataFrame(points)).transform_filter("datum.setting == setting")
    color = alt.Color("method:N", scale=charts.series_scale(names), title=None, legend=alt.Legend(orient="right"))
    seeds_layer = frame.transform_filter("datum.kind != 'mean'").mark_point(size=30, opacity=0.6).encode(x=x, y=y, color=color, tooltip=tips)
    means = frame.transform_filter("datum.kind == 'mean'").mark_point(size=160, filled=True).encode(x="a:Q", y="b:Q", color=alt.Color("method:N", scale=charts.series_scale(names), legend=None), tooltip=tips)
    line = alt.Chart(pd.DataFrame(sweep)).transform_filter("datum.setting == setting").mark_line(color=charts.MUTED, strokeDash=[2, 2], point=alt.OverlayMarkDef(color=charts.MUTED, size=25)).encode(
        x="a:Q", y="b:Q", order="lam:Q",
        tooltip=[alt.Tooltip("lam:Q", format=",", title="EWC lambda"), alt.Tooltip("a:Q", format=".1%", title="A (tuning set)"), alt.Tooltip("b:Q", format=".1%", title="B (tuning set)")])  # fmt: skip
    before = alt.Chart(pd.DataFrame(start)).transform_filter("datum.setting == setting").mark_square(size=90, color=charts.INK).encode(
        x="a:Q", y="b:Q", tooltip=[alt.Tooltip("what:N", title=""), alt.Tooltip("a:Q", format=".1%", title="A"), alt.Tooltip("b:Q", format=".1%", title="B")])
    chance_x = alt.Chart(alt.Data(values=[{"c": fg.CHANCE}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(x="c:Q")
    chance_y = alt.Chart(alt.Data(values=[{"c": fg.CHANCE}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="c:Q")
    chart = alt.layer(chance_x, chance_y, line, seeds_layer, means, before).properties(width=420, height=360)
    return panel.finish(chart)
