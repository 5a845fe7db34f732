"""Weights: the first layer of the digits MLP drawn as 8x8 templates, and weight histograms over training."""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer.ensemble import claim_over_seeds
from explorer.jsonio import significant
from explorer.models.digits import REGIMES, TrainedDigits, hidden_activations, load_digits_split, train_regime_seeds, train_regimes
from explorer.pipeline import FigureContext, figure

LAYERS = {"fc1": "layer 1 (64 x 64)", "fc2": "layer 2 (64 x 32)", "out": "output (32 x 10)"}
BINS = 40
MODEL = "MLP 64-64-32-10 on scikit-learn digits, trained in four regimes by explorer/models/digits.py"


@figure(
    "weights-templates",
    title="First-layer weights as 8x8 templates",
    caption=(
        "Each small square is one hidden unit of the first layer: its 64 incoming weights laid out like the 8x8 image they "
        "multiply. Orange: a bright pixel there raises the unit's pre-activation; blue: lowers it. Each template is scaled "
        "to its own largest |weight|. Units are sorted by the digit that drives them hardest on average; "
        "'dead' marks units that output zero on every validation digit. One training run per regime (seed 0); "
        "the numbers in the text are means over several seeds with their range."
    ),
    model=MODEL,
)
def templates(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    split = load_digits_split()
    x = torch.from_numpy(split.x_val).to(ctx.device)
    steps = runs["healthy"].steps
    for regime, run in runs.items():
        for step in run.steps:
            model = run.model_at(step).to(ctx.device)
            _, post = hidden_activations(model, x)["act1"]  # (360, 64)
            ctx.asset(f"templates/{regime}-{step}.json", {"units": template_rows(model.fc1.weight.detach().cpu().numpy(), post.cpu().numpy(), split.y_val)})
    ensemble = train_regime_seeds(ctx.scale)  # the drawn runs are its first seed
    blank = np.flatnonzero(split.x_train.max(axis=0) == 0)  # pixels that are zero in every training digit
    ctx.claim("blank_pixels", len(blank))
    # No gradient reaches a weight on an always-blank pixel: exactly zero change, in every seed and regime.
    ctx.claim("blank_pixel_max_change", max(float(fc1_change(run)[:, blank].abs().max()) if len(blank) else 0.0
                                            for runs_of_seed in ensemble.values() for run in runs_of_seed.values()))  # fmt: skip
    for regime in ("healthy", "dying-relu"):
        claim_over_seeds(ctx, f"{regime.split('-')[0]}_fc1_relative_change", {seed: relative_change(r[regime]) for seed, r in ensemble.items()})
    ctx.claim("seeds", len(ensemble))

    chart = (
        alt.Chart(alt.Data(name="units"))
        .transform_flatten(["w"])
        .transform_window(p="row_number()", groupby=["rank"])
        .transform_calculate(col="(datum.p - 1) % 8", row="floor((datum.p - 1) / 8)", mag="abs(datum.w)")
        .transform_joinaggregate(top="max(mag)", groupby=["rank"])
        .transform_calculate(v="datum.top > 0 ? datum.w / datum.top : 0")
        .mark_rect()
        .encode(
            x=alt.X("col:O", axis=None),
            y=alt.Y("row:O", axis=None),
            color=alt.Color("v:Q", scale=alt.Scale(scheme="blueorange", domain=[-1, 1]), title="weight / max |weight|"),
            tooltip=[alt.Tooltip("unit:Q"), alt.Tooltip("label:N", title="unit"), alt.Tooltip("w:Q", title="weight", format=".3f"),
                     alt.Tooltip("row:Q", title="pixel row"), alt.Tooltip("col:Q", title="pixel column")],  # fmt: skip
        )
        .properties(width=56, height=56)
        .facet(facet=alt.Facet("label:N", sort=alt.SortField("rank"), title=None, header=alt.Header(labelFontSize=9, labelPadding=2)), columns=8, spacing=4)
    )
    return chart.properties(usermeta={"explorer": {
        "controls": [
            {"name": "regime", "label": "Regime", "options": list(REGIMES), "default": "healthy"},
            {"name": "step", "label": "Training step", "options": steps, "default": steps[-1]},
        ],
        "source": {"url": "templates/{regime}-{step}.json", "datasets": ["units"]},
    }})  # fmt: skip


def fc1_change(run: TrainedDigits) -> torch.Tensor:
    """(units, 64) first-layer weights at the end minus at initialization."""
    return run.model.fc1.weight.detach() - run.model_at(0).fc1.weight.detach()


def relative_change(run: TrainedDigits) -> float:
    """How far training moved the first layer: ||W_end - W_0|| / ||W_0|| (Frobenius norms)."""
    return float(fc1_change(run).norm() / run.model_at(0).fc1.weight.detach().norm())


def template_rows(weight: np.ndarray, post: np.ndarray, labels: np.ndarray) -> list[dict]:
    """One row per first-layer unit: its 64 weights (row-major 8x8), a label, and its display rank."""
    class_means = np.stack([post[labels == c].mean(axis=0) for c in range(10)])  # (10, units)
    preferred = class_means.argmax(axis=0)
    dead = np.all(post <= 0, axis=0)
    order = np.lexsort((np.arange(len(dead)), preferred, dead))
    rows = []
    for rank, unit in enumerate(order):
        tag = "dead" if dead[unit] else f"likes {preferred[unit]}"
        rows.append({"rank": rank, "unit": int(unit), "label": f"#{unit} {tag}", "w": significant(weight[unit])})
    return rows


@figure(
    "weights-histograms",
    title="Weight histograms over training",
    caption=(
        "Bars: distribution of the chosen layer's weights at the chosen step. Grey outline: the same layer at "
        "initialization (step 0), so that the slider shows how far training moved the weights."
    ),
    model=MODEL,
)
def histograms(ctx: FigureContext) -> alt.Chart:
    runs = train_regimes(ctx.scale)
    rows = []
    for regime, run in runs.items():
        for layer in LAYERS:
            weights = [run.checkpoints[i][1][f"{layer}.weight"].cpu().numpy().ravel() for i in range(len(run.steps))]
            top = float(np.quantile(np.abs(np.concatenate(weights)), 0.999))
            edges = np.linspace(-top, top, BINS + 1)
            for index, w in enumerate(weights):
                counts, _ = np.histogram(np.clip(w, -top, top), bins=edges)
                rows += [{"regime": regime, "layer": layer, "checkpoint": index, "lo": lo, "hi": hi, "share": c / w.size}
                         for lo, hi, c in zip(edges[:-1], edges[1:], counts) if c]  # fmt: skip
    steps = runs["healthy"].steps
    frame = pd.DataFrame(rows)
    frame["step"] = [steps[i] for i in frame["checkpoint"]]
    last = len(steps) - 1
    regime = alt.param("regime", value="healthy", bind=alt.binding_select(options=list(REGIMES), name="Regime "))
    layer = alt.param("layer", value="fc1", bind=alt.binding_select(options=list(LAYERS), labels=list(LAYERS.values()), name="Layer "))
    checkpoint = alt.param("checkpoint", value=last, bind=alt.binding_range(min=0, max=last, step=1, name="Checkpoint "))
    base = alt.Chart(frame).transform_filter("datum.regime == regime && datum.layer == layer")
    encode = dict(x=alt.X("lo:Q", title="weight"), x2="hi:Q", y=alt.Y("share:Q", title="share of weights", axis=alt.Axis(format="%")), y2=alt.datum(0))
    now = base.transform_filter("datum.checkpoint == checkpoint").mark_rect(color="#dd8452", opacity=0.85).encode(
        **encode, tooltip=["step:Q", alt.Tooltip("lo:Q", format=".3f", title="from"), alt.Tooltip("hi:Q", format=".3f", title="to"), alt.Tooltip("share:Q", format=".2%")]
    )
    init = base.transform_filter("datum.checkpoint == 0").mark_rect(fill=None, stroke="#555", strokeWidth=1).encode(**encode)
    label = (
        base.transform_filter("datum.checkpoint == checkpoint")
        .transform_aggregate(step="max(step)")
        .transform_calculate(text="'step ' + datum.step")
        .mark_text(align="right", baseline="top", dx=-4, dy=4, fontSize=12)
        .encode(x=alt.value("width"), y=alt.value(0), text="text:N")
    )
    return alt.layer(now, init, label).add_params(regime, layer, checkpoint).properties(width="container", height=240)
