"""Activations: what the hidden units of a digits MLP output, in a healthy run and three sick ones.

The same 64-64-32-10 MLP is trained in four regimes (explorer/models/digits.py REGIMES), each under
several seeds (REGIME_SEEDS). Every figure reads the hidden activations on the 360 validation
digits at saved checkpoints; figures draw the first seed, claims span all of them.
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import charts
from explorer.ensemble import claim_over_seeds
from explorer.models.digits import (
    CLASSES,
    LAST_EVALUATIONS,
    REGIMES,
    SATURATION_THRESHOLD,
    TrainedDigits,
    dead_fraction,
    get_regime,
    hidden_activations,
    late_accuracy,
    load_digits_split,
    saturated_fraction,
    train_regime_seeds,
    train_regimes,
)
from explorer.pipeline import FigureContext, figure

LAYERS = {"act1": "hidden layer 1 (64 units)", "act2": "hidden layer 2 (32 units)"}
BINS = 40
PER_CLASS = 10  # validation digits of each class in the heat map
EARLY_STEP = 80  # an early evaluation (the smoke run logs one at step 81) where the regimes' speeds differ
RESPONDS = 0.5  # a unit responds to a class when its mean activation there is at least this share of its preferred class's
MODEL = "MLP 64-64-32-10 on scikit-learn digits, trained in four regimes by explorer/models/digits.py"


def validation_inputs(ctx: FigureContext) -> tuple[torch.Tensor, np.ndarray]:
    split = load_digits_split()
    return torch.from_numpy(split.x_val).to(ctx.device), split.y_val


def activations_at(run: TrainedDigits, step: int, x: torch.Tensor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{layer: (pre-activation, activation)} as (inputs, units) arrays for the checkpoint at `step`."""
    model = run.model_at(step).to(x.device)
    return {name: (pre.cpu().numpy(), post.cpu().numpy()) for name, (pre, post) in hidden_activations(model, x).items()}


def stuck_fraction(regime: str, pre: np.ndarray, post: np.ndarray) -> float:
    """Dead units for ReLU (zero on every input), saturated pre-activations for tanh / sigmoid."""
    activation = get_regime(regime).activation
    if activation == "relu":
        return dead_fraction(torch.from_numpy(post))
    return saturated_fraction(torch.from_numpy(pre), activation)


def histogram_edges(regime: str, values: list[np.ndarray]) -> np.ndarray:
    """Fixed bins per (regime, layer) so that moving the step slider moves bars, not the axis."""
    activation = get_regime(regime).activation
    if activation == "tanh":
        return np.linspace(-1, 1, BINS + 1)
    if activation == "sigmoid":
        return np.linspace(0, 1, BINS + 1)
    top = float(np.quantile(np.concatenate([v.ravel() for v in values]), 0.999))
    return np.linspace(0, max(top, 1e-3), BINS + 1)


@figure(
    "activations-histograms",
    title="Activation histograms of a digits MLP, four ways to train it",
    caption=(
        "Bars: the share of all (validation digit, unit) activations of the chosen hidden layer that fall in each bin, "
        "over the 360 validation digits, at the chosen training step; values past the last bin are counted in it. "
        "Outline: the same layer at initialization (step 0). The vertical axis is square-root scaled so that a tall "
        "spike does not hide the tail. One training run per regime (seed 0)."
    ),
    model=MODEL,
)
def histograms(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    x, _ = validation_inputs(ctx)
    # The healthy first layer's exactly-zero share at the end (the spike at zero), over every seed.
    ensemble = train_regime_seeds(ctx.scale)
    claim_over_seeds(ctx, "healthy_zero_share_act1",
                     {seed: float(np.mean(activations_at(r["healthy"], r["healthy"].steps[-1], x)["act1"][1] == 0)) for seed, r in ensemble.items()})
    bars, notes = [], []
    for regime, run in runs.items():
        per_step = {step: activations_at(run, step, x) for step in run.steps}
        for layer in LAYERS:
            edges = histogram_edges(regime, [per_step[s][layer][1] for s in run.steps])
            for step in run.steps:
                pre, post = per_step[step][layer]
                counts, _ = np.histogram(np.clip(post, edges[0], edges[-1]), bins=edges)
                share = counts / post.size
                bars += [{"regime": regime, "layer": layer, "step": step, "lo": lo, "hi": hi, "share": s}
                         for lo, hi, s in zip(edges[:-1], edges[1:], share) if s > 0]  # fmt: skip
                notes += [{"regime": regime, "layer": layer, "step": step, "line": i, "note": line}
                          for i, line in enumerate(summary(regime, step, pre, post))]  # fmt: skip
    panel = charts.Panel()
    panel.select("regime", list(REGIMES), label="Regime", value="healthy")
    panel.select("layer", list(LAYERS), label="Layer", labels=list(LAYERS.values()))
    panel.steps("step", runs["healthy"].steps)
    chosen = "datum.regime == regime && datum.layer == layer"
    frame = alt.Chart(pd.DataFrame(bars)).transform_filter(chosen)
    encode = dict(
        x=alt.X("lo:Q", title="activation value"),
        x2="hi:Q",
        y=alt.Y("share:Q", title="share of activations", scale=alt.Scale(type="sqrt", domain=[0, 1]), axis=alt.Axis(format="%")),
        y2=alt.datum(0),
    )
    now = frame.transform_filter("datum.step == step").mark_rect(color=charts.ACCENT_2, opacity=0.85).encode(
        **encode,
        tooltip=[alt.Tooltip("step:Q", format=",", title="training step"), alt.Tooltip("lo:Q", format=".3f", title="from"),
                 alt.Tooltip("hi:Q", format=".3f", title="to"), alt.Tooltip("share:Q", format=".2%", title="share")],  # fmt: skip
    )
    init = frame.transform_filter("datum.step == 0").mark_rect(fill=None, stroke=charts.INK, strokeWidth=1, opacity=0.7).encode(**encode)
    note = (
        alt.Chart(pd.DataFrame(notes))
        .transform_filter(chosen + " && datum.step == step")
        .transform_calculate(top=f"6 + datum.line * {charts.LABEL_SIZE + 3}")  # pixels from the top, one text mark per line
        .mark_text(align="center", baseline="top", fontSize=charts.LABEL_SIZE, color=charts.INK)
        .encode(x=alt.value(alt.expr("width / 2")), y=alt.Y("top:Q", scale=None), text="note:N")
    )
    return panel.finish(alt.layer(now, init, note).properties(width="container", height=260))


def summary(regime: str, step: int, pre: np.ndarray, post: np.ndarray) -> list[str]:
    """The lines drawn over the histogram: the step and the share of stuck activations or units."""
    activation = get_regime(regime).activation
    if activation == "relu":
        dead = int(np.all(post <= 0, axis=0).sum())
        return [f"step {step:,}", f"exactly zero: {np.mean(post == 0):.0%} of activations", f"dead units: {dead} of {post.shape[1]}"]
    return [f"step {step:,}", f"saturated pre-activations: {np.mean(np.abs(pre) > SATURATION_THRESHOLD[activation]):.0%}"]


@figure(
    "activations-dead-units",
    title="Stuck units over training",
    caption=(
        "Left: share of ReLU units that output exactly zero on all 360 validation digits (dead units). "
        "Middle: share of tanh / sigmoid pre-activations in the saturated range, |z| > 2.65 for tanh "
        "(|tanh z| > 0.99) and |z| > 4.6 for sigmoid (output below 0.01 or above 0.99). Right: validation accuracy; "
        "the dashed line is chance (10%). Thick lines: the mean over the seeds, the numbers the text quotes; thin "
        "lines: each seed. The step axis is symmetric-log scaled."
    ),
    model=MODEL,
)
def dead_units(ctx: FigureContext) -> alt.Chart:
    ensemble = train_regime_seeds(ctx.scale)
    x, _ = validation_inputs(ctx)
    per_seed = {seed: stuck_rows(runs, x) for seed, runs in ensemble.items()}
    record_claims(ctx, ensemble, per_seed)

    stuck = pd.DataFrame([{**row, "seed": seed} for seed, rows in per_seed.items() for row in rows])
    accuracy = pd.DataFrame([{"regime": regime, "seed": seed, "step": max(h["step"], 0), "accuracy": h["val_accuracy"]}
                             for seed, runs in ensemble.items() for regime, run in runs.items() for h in run.history])  # fmt: skip
    panel = charts.Panel()
    panel.select("layer", ["all", *LAYERS], label="Layer", labels=["all hidden units", *LAYERS.values()])
    panel.select("regime", ["all", *REGIMES], label="Highlight", labels=["every regime", *REGIMES])
    picked = "regime == 'all' || datum.regime == regime"
    colour = alt.Color("regime:N", scale=charts.series_scale(list(REGIMES)), title="regime",
                       legend=alt.Legend(orient="bottom", direction="horizontal", labelFontSize=charts.LABEL_SIZE, symbolType="stroke",
                                         symbolStrokeWidth=3, symbolOpacity=1))  # fmt: skip
    last = ensemble[next(iter(ensemble))]["healthy"].steps[-1]
    ticks = [t for t in (0, 10, 100, 1000) if t < last] + [last]
    step_axis = alt.X("step:Q", scale=alt.Scale(type="symlog", constant=10, domain=[0, last], nice=False), title="training step",
                      axis=alt.Axis(values=ticks, labelExpr="format(datum.value, ',')"))  # symlog axes ignore format
    percent = dict(scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))

    def lines(frame: pd.DataFrame, y: str, title: str, regimes: list[str], name: str, filters: tuple[str, ...] = ()) -> alt.LayerChart:
        """Each seed thin and faint, their mean thick, and a hover rule listing every regime's mean."""
        base = alt.Chart(frame).transform_filter(alt.FieldOneOfPredicate(field="regime", oneOf=regimes))
        for condition in filters:
            base = base.transform_filter(condition)
        y_enc = alt.Y(f"{y}:Q", title=None, **percent)
        each = base.mark_line(strokeWidth=1).encode(
            x=step_axis, y=y_enc, color=colour, detail="seed:N",
            opacity=alt.condition(picked, alt.value(0.35), alt.value(0.06)),
            tooltip=["regime:N", "seed:N", alt.Tooltip("step:Q", format=",", title="training step"), alt.Tooltip(f"{y}:Q", format=".1%")],
        )
        mean = base.transform_aggregate(mean=f"mean({y})", groupby=["regime", "step"])
        thick = mean.mark_line(strokeWidth=2.5).encode(
            x=step_axis, y=alt.Y("mean:Q", title=None, **percent), color=colour,
            opacity=alt.condition(picked, alt.value(1.0), alt.value(0.15)),
        )
        hover = charts.hover_rule(mean, x="step", series="regime", y="mean", names=regimes, fmt=".1%",
                                  x_title="training step", name=name).encode(x=step_axis)  # fmt: skip
        return alt.layer(each, thick, hover).properties(width=230, height=200, title=title)

    relu = [r for r in REGIMES if get_regime(r).activation == "relu"]
    squashing = [r for r in REGIMES if r not in relu]
    layer_filter = ("datum.layer == layer",)
    dead = lines(stuck, "stuck", "dead ReLU units", relu, "hover_dead", layer_filter)
    saturated = lines(stuck, "stuck", "saturated pre-activations", squashing, "hover_saturated", layer_filter)
    chance = (
        alt.Chart(pd.DataFrame([{"chance": 1 / CLASSES, "label": f"chance {1 / CLASSES:.0%}"}]))
        .mark_rule(color=charts.MUTED, strokeDash=[4, 3])
        .encode(y="chance:Q")
    )
    chance_label = chance.mark_text(align="right", baseline="bottom", dy=-2, fontSize=charts.SMALL_SIZE, color=charts.MUTED).encode(
        x=alt.value("width"), y="chance:Q", text="label:N")
    acc = alt.layer(lines(accuracy, "accuracy", "validation accuracy", list(REGIMES), "hover_accuracy"), chance, chance_label)
    return panel.finish(alt.hconcat(dead, saturated, acc).resolve_scale(color="shared"))


def stuck_rows(runs: dict[str, TrainedDigits], x: torch.Tensor) -> list[dict]:
    """One row per (regime, layer, checkpoint) with the stuck share; layer "all" pools both hidden layers."""
    rows = []
    for regime, run in runs.items():
        for step in run.steps:
            acts = activations_at(run, step, x)
            everything = tuple(np.concatenate([a[i] for a in acts.values()], axis=1) for i in (0, 1))
            for layer, (pre, post) in {**acts, "all": everything}.items():
                rows.append({"regime": regime, "layer": layer, "step": step, "stuck": stuck_fraction(regime, pre, post)})
    return rows


def early_accuracy(run: TrainedDigits, step: int = EARLY_STEP) -> float:
    """Validation accuracy at the first evaluation at or after `step`: how fast a regime learns."""
    return float(next(h["val_accuracy"] for h in run.history if h["step"] >= step))


def revived_share(run: TrainedDigits, layer: str, x: torch.Tensor) -> float:
    """Share of the layer's units that were dead at some checkpoint after initialization and fire at the end."""
    dead = np.stack([np.all(activations_at(run, step, x)[layer][1] <= 0, axis=0) for step in run.steps[1:]])  # (checkpoints, units)
    return float(np.mean(dead[:-1].any(axis=0) & ~dead[-1]))


def record_claims(ctx: FigureContext, ensemble: dict[int, dict[str, TrainedDigits]], per_seed: dict[int, list[dict]]) -> None:
    """Every number the page quotes, over all seeds: mean, range and per-seed values (explorer.ensemble)."""
    x, _ = validation_inputs(ctx)

    def at(seed: int, regime: str, layer: str, step: int | None = None) -> float:
        run = ensemble[seed][regime]
        step = run.steps[-1] if step is None else step
        return next(r["stuck"] for r in per_seed[seed] if r["regime"] == regime and r["layer"] == layer and r["step"] == step)

    def peak(seed: int, regime: str, layer: str) -> float:
        return max(r["stuck"] for r in per_seed[seed] if r["regime"] == regime and r["layer"] == layer)

    def over_seeds(key: str, value) -> None:
        claim_over_seeds(ctx, key, {seed: value(seed) for seed in ensemble})

    over_seeds("dying_dead_fraction", lambda s: at(s, "dying-relu", "all"))
    over_seeds("dying_dead_fraction_act1", lambda s: at(s, "dying-relu", "act1"))
    over_seeds("dying_dead_fraction_act2", lambda s: at(s, "dying-relu", "act2"))
    over_seeds("dying_dead_fraction_act2_peak", lambda s: peak(s, "dying-relu", "act2"))
    over_seeds("dying_revived_act1", lambda s: revived_share(ensemble[s]["dying-relu"], "act1", x))
    over_seeds("dying_revived_act2", lambda s: revived_share(ensemble[s]["dying-relu"], "act2", x))
    over_seeds("dying_dead_fraction_init", lambda s: at(s, "dying-relu", "all", 0))
    over_seeds("healthy_dead_fraction", lambda s: at(s, "healthy", "all"))
    over_seeds("tanh_saturated_fraction", lambda s: at(s, "saturated-tanh", "all"))
    over_seeds("sigmoid_saturated_fraction", lambda s: at(s, "saturated-sigmoid", "all"))
    over_seeds("tanh_saturated_fraction_init", lambda s: at(s, "saturated-tanh", "all", 0))
    over_seeds("sigmoid_saturated_fraction_init", lambda s: at(s, "saturated-sigmoid", "all", 0))
    for regime in REGIMES:
        over_seeds(f"{regime.replace('-', '_')}_val_accuracy", lambda s, regime=regime: late_accuracy(ensemble[s][regime]))
        over_seeds(f"{regime.replace('-', '_')}_early_accuracy", lambda s, regime=regime: early_accuracy(ensemble[s][regime]))
    ctx.claim("early_step", next(h["step"] for h in ensemble[next(iter(ensemble))]["healthy"].history if h["step"] >= EARLY_STEP))
    ctx.claim("accuracy_evaluations_averaged", LAST_EVALUATIONS)
    ctx.claim("chance_accuracy", 1 / CLASSES)
    ctx.claim("seeds", len(ensemble))
    # The first checkpoint with more than half of all units dead, in the slowest seed, and the lowest share after it.
    dying = {s: [r for r in per_seed[s] if r["regime"] == "dying-relu" and r["layer"] == "all"] for s in ensemble}
    first_majority = {s: next(r["step"] for r in rows if r["stuck"] > 0.5) for s, rows in dying.items()}
    ctx.claim("dying_dead_by_step", max(first_majority.values()))
    ctx.claim("dying_dead_by_step_seeds", {str(s): step for s, step in first_majority.items()})
    over_seeds("dying_dead_fraction_floor", lambda s: min(r["stuck"] for r in dying[s] if r["step"] >= first_majority[s]))


@figure(
    "activations-heatmap",
    title="Which units fire for which digits",
    caption=(
        f"Rows: the hidden units of the chosen layer at the end of training, grouped by the digit class they respond to "
        f"most on average, units that never fire at the bottom. Columns: {PER_CLASS} validation digits of each class, in "
        "class order. Colour: the unit's activation divided by its largest absolute value on these digits; grey is "
        "exactly zero. One training run per regime (seed 0)."
    ),
    model=MODEL,
)
def heatmap(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    x, y = validation_inputs(ctx)
    picked = np.concatenate([np.flatnonzero(y == c)[:PER_CLASS] for c in range(CLASSES)])  # (100,) in class order
    for regime, run in runs.items():
        for layer, (_, post) in activations_at(run, run.steps[-1], x[picked]).items():
            ctx.asset(f"heat/{regime}-{layer}.json", {"units": heat_rows(post, y[picked])})
    # How distributed the healthy first layer's code is, on all validation digits, over every seed.
    ensemble = train_regime_seeds(ctx.scale)
    finals = {seed: activations_at(r["healthy"], r["healthy"].steps[-1], x)["act1"][1] for seed, r in ensemble.items()}
    counts = {seed: classes_responded(post, y) for seed, post in finals.items()}
    claim_over_seeds(ctx, "healthy_act1_classes_median", {seed: float(np.median(c)) for seed, c in counts.items()})
    claim_over_seeds(ctx, "healthy_act1_single_class_units", {seed: int(np.sum(c == 1)) for seed, c in counts.items()})
    claim_over_seeds(ctx, "healthy_act1_live_units", {seed: len(c) for seed, c in counts.items()})
    ctx.claim("responds_share", RESPONDS)
    panel = charts.Panel()
    panel.data("regime", list(REGIMES), label="Regime", default="healthy")
    panel.data("layer", list(LAYERS), label="Layer", labels=list(LAYERS.values()), default="act1")
    panel.source("heat/{regime}-{layer}.json", datasets=["units"])
    columns = PER_CLASS * CLASSES
    cells = (
        alt.Chart(alt.NamedData(name="units"))
        .transform_flatten(["a"])
        .transform_window(i="row_number()", groupby=["r"])
        .transform_calculate(i2="datum.i", i="datum.i - 1", d=f"floor(datum.i / {PER_CLASS})", mag="abs(datum.a)")  # in order
        .transform_joinaggregate(top="max(mag)", groupby=["r"])
        .transform_calculate(v="datum.top > 0 ? datum.a / datum.top : 0")
        .mark_rect()
        .encode(
            x=alt.X("i:Q", title="validation digits, grouped by class", scale=alt.Scale(domain=[0, columns], nice=False),
                    axis=alt.Axis(values=[PER_CLASS * c + PER_CLASS / 2 for c in range(CLASSES)], labelExpr=f"floor(datum.value / {PER_CLASS})",
                                  ticks=False, grid=False, labelFontSize=charts.LABEL_SIZE)),  # fmt: skip
            x2="i2:Q",
            y=alt.Y("r:O", title="hidden unit (sorted by preferred digit)", axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color("v:Q", scale=charts.diverging(1.0), title=["activation ÷", "max |activation|"]),
            tooltip=[alt.Tooltip("u:Q", title="unit"), alt.Tooltip("p:N", title="preferred digit"),
                     alt.Tooltip("d:Q", title="input digit"), alt.Tooltip("a:Q", title="activation", format=".3f")],  # fmt: skip
        )
    )
    # Thin paper-coloured lines between the classes, so the blocks read as blocks.
    borders = (
        alt.Chart(alt.Data(values=[{"x": PER_CLASS * c} for c in range(1, CLASSES)]))
        .mark_rule(color=charts.PAPER, strokeWidth=1.5)
        .encode(x="x:Q")
    )
    return panel.finish(alt.layer(cells, borders).properties(width="container", height=320))


def classes_responded(post: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each unit that fires on some digit: how many classes have a mean activation of at least
    RESPONDS times that of its preferred class. (live units,)"""
    class_means = np.stack([post[labels == c].mean(axis=0) for c in range(CLASSES)])  # (10, units)
    top = class_means.max(axis=0)
    live = top > 0
    return (class_means[:, live] >= RESPONDS * top[live]).sum(axis=0)


def heat_rows(post: np.ndarray, labels: np.ndarray) -> list[dict]:
    """One row per unit, its activations on the inputs as an array; units ordered by preferred class, silent ones last."""
    class_means = np.stack([post[labels == c].mean(axis=0) for c in range(10)])  # (10, units)
    preferred = class_means.argmax(axis=0)
    silent = np.all(post == 0, axis=0)
    selectivity = class_means.max(axis=0) - class_means.mean(axis=0)
    order = np.lexsort((-selectivity, preferred, silent))  # the last key sorts first
    return [
        {"r": row, "u": int(unit), "p": "never fires" if silent[unit] else str(preferred[unit]), "a": [float(f"{v:.3g}") for v in post[:, unit]]}
        for row, unit in enumerate(order)
    ]
