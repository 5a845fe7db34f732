"""Activations: what the hidden units of a digits MLP output, in a healthy run and three sick ones.

The same 64-64-32-10 MLP is trained in four regimes (explorer/models/digits.py REGIMES), each under
several seeds (REGIME_SEEDS). Every figure reads the hidden activations on the 360 validation
digits at saved checkpoints; figures draw the first seed, claims span all of them.
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

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
        "Each bar is the share of all (validation digit, unit) activations of the chosen hidden layer that fall in "
        "its bin, over the 360 validation digits, at the chosen training step. Values past the last bin are counted in it. "
        "The vertical axis is square-root scaled so that a tall spike does not hide the tail."
    ),
    model=MODEL,
)
def histograms(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    x, _ = validation_inputs(ctx)
    bars, notes = [], []
    for regime, run in runs.items():
        per_step = {step: activations_at(run, step, x) for step in run.steps}
        for layer in LAYERS:
            edges = histogram_edges(regime, [per_step[s][layer][1] for s in run.steps])
            for index, step in enumerate(run.steps):
                pre, post = per_step[step][layer]
                counts, _ = np.histogram(np.clip(post, edges[0], edges[-1]), bins=edges)
                share = counts / post.size
                bars += [{"regime": regime, "layer": layer, "checkpoint": index, "lo": lo, "hi": hi, "share": s}
                         for lo, hi, s in zip(edges[:-1], edges[1:], share) if s > 0]  # fmt: skip
                notes.append({"regime": regime, "layer": layer, "checkpoint": index, "note": summary(regime, step, pre, post)})
    last = len(runs["healthy"].steps) - 1
    regime = alt.param("regime", value="healthy", bind=alt.binding_select(options=list(REGIMES), name="Regime "))
    layer = alt.param("layer", value="act1", bind=alt.binding_select(options=list(LAYERS), labels=list(LAYERS.values()), name="Layer "))
    checkpoint = alt.param("checkpoint", value=last, bind=alt.binding_range(min=0, max=last, step=1, name="Checkpoint "))
    chosen = "datum.regime == regime && datum.layer == layer && datum.checkpoint == checkpoint"
    hist = (
        alt.Chart(pd.DataFrame(bars))
        .mark_rect(color="#4c72b0")
        .encode(
            x=alt.X("lo:Q", title="activation value"),
            x2="hi:Q",
            y=alt.Y("share:Q", title="share of activations", scale=alt.Scale(type="sqrt", domain=[0, 1]), axis=alt.Axis(format="%")),
            y2=alt.datum(0),
            tooltip=[alt.Tooltip("lo:Q", format=".3f", title="from"), alt.Tooltip("hi:Q", format=".3f", title="to"),
                     alt.Tooltip("share:Q", format=".2%")],  # fmt: skip
        )
        .transform_filter(chosen)
    )
    note = (
        alt.Chart(pd.DataFrame(notes))
        .mark_text(align="right", baseline="top", dx=-4, dy=4, fontSize=12)
        .encode(x=alt.value("width"), y=alt.value(0), text="note:N")
        .transform_filter(chosen)
    )
    return alt.layer(hist, note).add_params(regime, layer, checkpoint).properties(width="container", height=260)


def summary(regime: str, step: int, pre: np.ndarray, post: np.ndarray) -> str:
    activation = get_regime(regime).activation
    if activation == "relu":
        return f"step {step} · exactly zero {np.mean(post == 0):.0%} · dead units {int(np.all(post <= 0, axis=0).sum())}/{post.shape[1]}"
    return f"step {step} · saturated pre-activations {np.mean(np.abs(pre) > SATURATION_THRESHOLD[activation]):.0%}"


@figure(
    "activations-dead-units",
    title="Stuck units over training",
    caption=(
        "Left: share of ReLU units that output exactly zero on all 360 validation digits (dead units). "
        "Middle: share of tanh / sigmoid pre-activations in the saturated range, |z| > 2.65 for tanh "
        "(|tanh z| > 0.99) and |z| > 4.6 for sigmoid (output below 0.01 or above 0.99). Right: validation accuracy "
        "(chance: 10%). The lines are one training run per regime (seed 0); the numbers in the text are means over "
        "several seeds with their range. The step axis is symmetric-log scaled. Pick the hidden layer; click a legend "
        "entry to highlight a regime."
    ),
    model=MODEL,
)
def dead_units(ctx: FigureContext) -> alt.Chart:
    ensemble = train_regime_seeds(ctx.scale)
    x, _ = validation_inputs(ctx)
    per_seed = {seed: stuck_rows(runs, x) for seed, runs in ensemble.items()}
    drawn_seed = next(iter(ensemble))
    runs, rows = ensemble[drawn_seed], per_seed[drawn_seed]
    record_claims(ctx, ensemble, per_seed)

    accuracy = pd.DataFrame([{"regime": regime, "step": max(h["step"], 0), "accuracy": h["val_accuracy"]} for regime, run in runs.items() for h in run.history])
    layer = alt.param("layer", value="all", bind=alt.binding_select(options=["all", *LAYERS], labels=["all hidden units", *LAYERS.values()], name="Layer "))
    highlight = alt.selection_point(name="regime_pick", fields=["regime"], bind="legend")
    colour = alt.Color("regime:N", scale=alt.Scale(domain=list(REGIMES)), title="regime")
    opacity = alt.condition(highlight, alt.value(1.0), alt.value(0.15))
    step_axis = alt.X("step:Q", scale=alt.Scale(type="symlog", constant=10), title="training step")
    stuck = pd.DataFrame(rows)

    def panel(regimes: list[str], title: str) -> alt.Chart:
        return (
            alt.Chart(stuck, title=title)
            .mark_line(point=True)
            .encode(x=step_axis, y=alt.Y("stuck:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None),
                    color=colour, opacity=opacity, tooltip=["regime:N", "step:Q", alt.Tooltip("stuck:Q", format=".1%")])  # fmt: skip
            .transform_filter(alt.FieldOneOfPredicate(field="regime", oneOf=regimes))
            .transform_filter("datum.layer == layer")
            .properties(width=190, height=200)
        )

    relu = [r for r in REGIMES if get_regime(r).activation == "relu"]
    squashing = [r for r in REGIMES if r not in relu]
    acc = (
        alt.Chart(accuracy, title="validation accuracy")
        .mark_line()
        .encode(x=step_axis, y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None),
                color=colour, opacity=opacity, tooltip=["regime:N", "step:Q", alt.Tooltip("accuracy:Q", format=".1%")])  # fmt: skip
        .properties(width=190, height=200)
    )
    # The legend selection lives in one view (the legend is shared): added to all three, Altair dedupes it with a warning.
    return alt.hconcat(panel(relu, "dead ReLU units").add_params(highlight), panel(squashing, "saturated pre-activations"), acc).add_params(layer)


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
        f"Rows: the hidden units of the chosen layer, grouped by the digit class they respond to most on average, "
        f"units that never fire at the bottom. Columns: {PER_CLASS} validation digits of each class, in class order. "
        "Colour: the unit's activation divided by its largest absolute value on these digits."
    ),
    model=MODEL,
)
def heatmap(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    x, y = validation_inputs(ctx)
    picked = np.concatenate([np.flatnonzero(y == c)[:PER_CLASS] for c in range(10)])  # (100,) in class order
    for regime, run in runs.items():
        for layer, (_, post) in activations_at(run, run.steps[-1], x[picked]).items():
            ctx.asset(f"heat/{regime}-{layer}.json", {"units": heat_rows(post, y[picked])})
    regimes, layers = list(REGIMES), list(LAYERS)
    chart = (
        alt.Chart(alt.Data(name="units"))
        .transform_flatten(["a"])
        .transform_window(i="row_number()", groupby=["r"])
        .transform_calculate(i="datum.i - 1", d=f"floor((datum.i - 1) / {PER_CLASS})", mag="abs(datum.a)")
        .transform_joinaggregate(top="max(mag)", groupby=["r"])
        .transform_calculate(v="datum.top > 0 ? datum.a / datum.top : 0")
        .mark_rect()
        .encode(
            x=alt.X("i:O", title="validation digit (grouped by class)",
                    axis=alt.Axis(labelExpr=f"datum.value % {PER_CLASS} == {PER_CLASS // 2} ? 'digit ' + floor(datum.value / {PER_CLASS}) : ''",
                                  ticks=False, labelAngle=0)),  # fmt: skip
            y=alt.Y("r:O", title="hidden unit (sorted by preferred digit)", axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color("v:Q", scale=alt.Scale(scheme="blueorange", domain=[-1, 1]), title="activation / max |activation|"),
            tooltip=[alt.Tooltip("u:Q", title="unit"), alt.Tooltip("p:N", title="preferred digit"),
                     alt.Tooltip("d:Q", title="input digit"), alt.Tooltip("a:Q", title="activation", format=".3f")],  # fmt: skip
        )
        .properties(width="container", height=320)
    )
    return chart.properties(usermeta={"explorer": {
        "controls": [
            {"name": "regime", "label": "Regime", "options": regimes, "default": "healthy"},
            {"name": "layer", "label": "Layer", "options": layers, "labels": list(LAYERS.values()), "default": "act1"},
        ],
        "source": {"url": "heat/{regime}-{layer}.json", "datasets": ["units"]},
    }})  # fmt: skip


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
