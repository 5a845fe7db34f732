"""Weights: the first layer of the digits MLP drawn as 8x8 templates, and weight histograms over training."""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import charts
from explorer.ensemble import claim_over_seeds
from explorer.jsonio import significant
from explorer.models.digits import CLASSES, PIXELS, REGIMES, TrainedDigits, hidden_activations, load_digits_split, train_regime_seeds, train_regimes
from explorer.pipeline import FigureContext, figure

LAYERS = {"fc1": "layer 1 (64 x 64)", "fc2": "layer 2 (64 x 32)", "out": "output (32 x 10)"}
BINS = 40
INK = 0.1  # a pixel has ink when its mean intensity over the training digits is above this
SHUFFLES = 20  # pixel shuffles of each template for the null of the template match
EARLY_CHECKPOINT = 10  # a checkpoint of the first few steps (both scales keep it)
MODEL = "MLP 64-64-32-10 on scikit-learn digits, trained in four regimes by explorer/models/digits.py"


@figure(
    "weights-templates",
    title="First-layer weights as 8x8 templates",
    caption=(
        "Each small square is one hidden unit of the first layer: its 64 incoming weights laid out like the 8x8 image they "
        "multiply. Red: a bright pixel there raises the unit's pre-activation; blue: lowers it; grey: zero. Each template is "
        "scaled to its own largest |value|. 'Change since step 0' draws the weights minus their initial values instead. "
        "Units are sorted by the digit that drives them hardest on average at the chosen step; 'dead' marks units that "
        "output zero on every validation digit. One training run per regime (seed 0); the numbers in the text are means "
        "over the seeds with their range."
    ),
    model=MODEL,
)
def templates(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    split = load_digits_split()
    x = torch.from_numpy(split.x_val).to(ctx.device)
    steps = runs["healthy"].steps
    for regime, run in runs.items():
        initial = run.model_at(0).fc1.weight.detach().cpu().numpy()  # (64 units, 64 pixels)
        units = []
        for step in run.steps:
            model = run.model_at(step).to(ctx.device)
            _, post = hidden_activations(model, x)["act1"]  # (360, 64)
            change = model.fc1.weight.detach().cpu().numpy() - initial
            units += [{**row, "s": step} for row in template_rows(change, post.cpu().numpy(), split.y_val)]
        # The weights are the initial ones plus the change: the initial ones once, the change per step.
        init = [{"unit": unit, "w0": significant(initial[unit])} for unit in range(len(initial))]
        ctx.asset(f"templates/{regime}.json", {"units": units, "init": init})
    ensemble = train_regime_seeds(ctx.scale)  # the drawn runs are its first seed
    blank = np.flatnonzero(split.x_train.max(axis=0) == 0)  # pixels that are zero in every training digit
    ctx.claim("blank_pixels", len(blank))
    # No gradient reaches a weight on an always-blank pixel: exactly zero change, in every seed and regime.
    ctx.claim("blank_pixel_max_change", max(float(fc1_change(run)[:, blank].abs().max()) if len(blank) else 0.0
                                            for runs_of_seed in ensemble.values() for run in runs_of_seed.values()))  # fmt: skip
    for regime in ("healthy", "dying-relu"):
        claim_over_seeds(ctx, f"{regime.split('-')[0]}_fc1_relative_change", {seed: relative_change(r[regime]) for seed, r in ensemble.items()})
    ctx.claim("seeds", len(ensemble))
    record_template_match(ctx, ensemble, split, x)
    record_dead_unit_changes(ctx, ensemble, split, x)

    panel = charts.Panel()
    panel.data("regime", list(REGIMES), label="Regime", default="healthy")
    panel.source("templates/{regime}.json", datasets=["units", "init"])
    panel.steps("step", steps)
    panel.select("show", ["weights", "change"], label="Show", labels=["weights", "change since step 0"])
    chart = (
        alt.Chart(alt.NamedData(name="units"))
        .transform_filter("datum.s == step")
        .transform_lookup(lookup="unit", from_=alt.LookupData(data=alt.NamedData(name="init"), key="unit", fields=["w0"]))
        .transform_flatten(["d", "w0"])
        .transform_calculate(value="show == 'change' ? datum.d : datum.w0 + datum.d")
        .transform_window(p="row_number()", groupby=["rank"])
        .transform_calculate(col="(datum.p - 1) % 8", row="floor((datum.p - 1) / 8)", mag="abs(datum.value)")
        .transform_joinaggregate(top="max(mag)", groupby=["rank"])
        .transform_calculate(v="datum.top > 0 ? datum.value / datum.top : 0")
        .mark_rect()
        .encode(
            x=alt.X("col:O", axis=None),
            y=alt.Y("row:O", axis=None),
            color=alt.Color("v:Q", scale=charts.diverging(1.0), title=["value ÷ the unit's", "largest |value|"]),
            tooltip=[alt.Tooltip("label:N", title="unit"), alt.Tooltip("value:Q", title="value", format=".3f"),
                     alt.Tooltip("row:Q", title="pixel row"), alt.Tooltip("col:Q", title="pixel column")],  # fmt: skip
        )
        .properties(width=60, height=60)
        .facet(facet=alt.Facet("label:N", sort=alt.SortField("rank"), title=None,
                               header=alt.Header(labelFontSize=charts.SMALL_SIZE, labelPadding=2, labelColor=charts.INK)),
               columns=8, spacing=6)  # fmt: skip
    )
    return panel.finish(chart)


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows of a and b: (n, 64), (n, 64) -> (n,)."""
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def template_match(weight: np.ndarray, post: np.ndarray, split) -> np.ndarray:
    """Per live unit: the correlation of its template with the contrast image of its preferred class,
    that class's mean training image minus the mean over classes."""
    means = np.stack([split.x_train[split.y_train == c].mean(axis=0) for c in range(CLASSES)])  # (10, 64)
    contrast = means - means.mean(axis=0)
    class_means = np.stack([post[split.y_val == c].mean(axis=0) for c in range(CLASSES)])  # (10, units)
    live = np.flatnonzero(class_means.max(axis=0) > 0)
    preferred = class_means.argmax(axis=0)[live]
    return correlation(weight[live], contrast[preferred])


def record_template_match(ctx: FigureContext, ensemble: dict[int, dict[str, TrainedDigits]], split, x: torch.Tensor) -> None:
    """How much a healthy first-layer template looks like its digit, against two nulls: the same
    units at initialization (their preferred class is today's, so some match is built in) and the
    trained templates with their pixels shuffled (the same weights in random places)."""
    own, init, shuffled, positive = {}, {}, {}, {}
    rng = np.random.default_rng(0)
    orders = [rng.permutation(PIXELS) for _ in range(SHUFFLES)]
    for seed, runs in ensemble.items():
        run = runs["healthy"]
        _, post = hidden_activations(run.model_at(run.steps[-1]).to(ctx.device), x)["act1"]  # a copy: run.model stays on the CPU
        post = post.cpu().numpy()
        weight, initial = (m.fc1.weight.detach().cpu().numpy() for m in (run.model, run.model_at(0)))
        match = template_match(weight, post, split)
        own[seed], positive[seed] = float(match.mean()), float(np.mean(match > 0))
        init[seed] = float(template_match(initial, post, split).mean())
        shuffled[seed] = float(np.mean([template_match(weight[:, order], post, split).mean() for order in orders]))
    claim_over_seeds(ctx, "healthy_template_match", own)
    claim_over_seeds(ctx, "healthy_template_match_positive", positive)
    claim_over_seeds(ctx, "healthy_template_match_init", init)
    claim_over_seeds(ctx, "healthy_template_match_shuffled", shuffled)
    ctx.claim("shuffles", SHUFFLES)


def record_dead_unit_changes(ctx: FigureContext, ensemble: dict[int, dict[str, TrainedDigits]], split, x: torch.Tensor) -> None:
    """Where the dying-ReLU run's first layer moved: the share of (unit, ink pixel) weights that fell,
    for the units that end dead and for those that survive (the null: about half)."""
    ink = split.x_train.mean(axis=0) > INK  # (64,) pixels where digits usually have ink
    dead_share, live_share = {}, {}
    for seed, runs in ensemble.items():
        run = runs["dying-relu"]
        _, post = hidden_activations(run.model_at(run.steps[-1]).to(ctx.device), x)["act1"]
        dead = np.all(post.cpu().numpy() <= 0, axis=0)  # (units,)
        fell = fc1_change(run).cpu().numpy()[:, ink] < 0  # (units, ink pixels)
        dead_share[seed], live_share[seed] = float(fell[dead].mean()), float(fell[~dead].mean())
    claim_over_seeds(ctx, "dying_dead_units_fell", dead_share)
    claim_over_seeds(ctx, "dying_live_units_fell", live_share)
    ctx.claim("ink_pixels", int(ink.sum()))
    ctx.claim("ink_threshold", INK)


def fc1_change(run: TrainedDigits) -> torch.Tensor:
    """(units, 64) first-layer weights at the end minus at initialization."""
    return run.model.fc1.weight.detach() - run.model_at(0).fc1.weight.detach()


def relative_change(run: TrainedDigits) -> float:
    """How far training moved the first layer: ||W_end - W_0|| / ||W_0|| (Frobenius norms)."""
    return float(fc1_change(run).norm() / run.model_at(0).fc1.weight.detach().norm())


def template_rows(change: np.ndarray, post: np.ndarray, labels: np.ndarray) -> list[dict]:
    """One row per first-layer unit: its 64 weights' change since initialization (row-major 8x8), a
    label, and its display rank."""
    class_means = np.stack([post[labels == c].mean(axis=0) for c in range(10)])  # (10, units)
    preferred = class_means.argmax(axis=0)
    dead = np.all(post <= 0, axis=0)
    order = np.lexsort((np.arange(len(dead)), preferred, dead))
    rows = []
    for rank, unit in enumerate(order):
        tag = "dead" if dead[unit] else f"likes {preferred[unit]}"
        rows.append({"rank": rank, "unit": int(unit), "label": f"#{unit} {tag}", "d": significant(change[unit])})
    return rows


@figure(
    "weights-histograms",
    title="Weight histograms over training",
    caption=(
        "Bars: distribution of the chosen layer's weights at the chosen step. Outline: the same layer at "
        "initialization (step 0), so that the slider shows how far training moved the weights. One training run per "
        "regime (seed 0)."
    ),
    model=MODEL,
)
def histograms(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    record_widths(ctx, train_regime_seeds(ctx.scale))
    rows = []
    for regime, run in runs.items():
        for layer in LAYERS:
            weights = [run.checkpoints[i][1][f"{layer}.weight"].cpu().numpy().ravel() for i in range(len(run.steps))]
            top = float(np.quantile(np.abs(np.concatenate(weights)), 0.999))
            edges = np.linspace(-top, top, BINS + 1)
            for step, w in zip(run.steps, weights):
                counts, _ = np.histogram(np.clip(w, -top, top), bins=edges)
                rows += [{"regime": regime, "layer": layer, "step": step, "lo": lo, "hi": hi, "share": c / w.size}
                         for lo, hi, c in zip(edges[:-1], edges[1:], counts) if c]  # fmt: skip
    panel = charts.Panel()
    panel.select("regime", list(REGIMES), label="Regime", value="healthy")
    panel.select("layer", list(LAYERS), label="Layer", labels=list(LAYERS.values()))
    step = panel.steps("step", runs["healthy"].steps)
    base = alt.Chart(pd.DataFrame(rows)).transform_filter("datum.regime == regime && datum.layer == layer")
    encode = dict(x=alt.X("lo:Q", title="weight"), x2="hi:Q", y=alt.Y("share:Q", title="share of weights", axis=alt.Axis(format="%")), y2=alt.datum(0))
    now = base.transform_filter("datum.step == step").mark_rect(color=charts.ACCENT_2, opacity=0.85).encode(
        **encode, tooltip=[alt.Tooltip("step:Q", format=",", title="training step"), alt.Tooltip("lo:Q", format=".3f", title="from"),
                           alt.Tooltip("hi:Q", format=".3f", title="to"), alt.Tooltip("share:Q", format=".2%", title="share")]  # fmt: skip
    )
    init = base.transform_filter("datum.step == 0").mark_rect(fill=None, stroke=charts.INK, strokeWidth=1, opacity=0.7).encode(**encode)
    label = (
        alt.Chart(alt.Data(values=[{}]))
        .transform_calculate(text=f"'step ' + format({step.name}, ',')")
        .mark_text(align="right", baseline="top", dx=-4, dy=4, fontSize=charts.LABEL_SIZE, color=charts.INK)
        .encode(x=alt.value("width"), y=alt.value(0), text="text:N")
    )
    return panel.finish(alt.layer(now, init, label).properties(width="container", height=240))


def width_ratio(run: TrainedDigits, layer: str, step: int | None = None) -> float:
    """How much wider the layer's weight histogram is at `step` (default: the end) than at initialization:
    the ratio of the weights' standard deviations."""
    weights = dict(run.checkpoints)
    step = run.steps[-1] if step is None else step
    return float(weights[step][f"{layer}.weight"].std() / weights[0][f"{layer}.weight"].std())


def record_widths(ctx: FigureContext, ensemble: dict[int, dict[str, TrainedDigits]]) -> None:
    """The widening the histogram shows, per regime for the first and the output layer, over every seed."""
    for regime in REGIMES:
        short = regime.split("-")[-1] if regime.startswith("saturated") else regime.split("-")[0]  # healthy, dying, tanh, sigmoid
        for layer in ("fc1", "out"):
            claim_over_seeds(ctx, f"{short}_{layer}_width_ratio", {seed: width_ratio(r[regime], layer) for seed, r in ensemble.items()})
    early = EARLY_CHECKPOINT
    claim_over_seeds(ctx, "dying_fc1_width_ratio_early", {seed: width_ratio(r["dying-relu"], "fc1", early) for seed, r in ensemble.items()})
    ctx.claim("early_checkpoint", early)
