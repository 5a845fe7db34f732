"""Feature visualization: inputs optimized to drive one unit of the digits MLP, beside the real digits that drive it most.

The pictures show seed 0 of the network; the numbers the page quotes are over three seeds.
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import charts
from explorer.models.digits import CLASSES, TrainedDigits, load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.ensemble import MIN_SEEDS, claim_over_seeds, spread
from explorer.techniques.feature_visualization import REGULARIZERS, layer_output, unit_objective, visualize_units

SEEDS = tuple(range(MIN_SEEDS))  # three trained networks for every number the page quotes


def per_seed_of(values) -> dict[int, float]:
    """{seed: value} from values listed in SEEDS order (what explorer.ensemble records)."""
    return dict(zip(SEEDS, (float(v) for v in values), strict=True))

LAYERS = {"fc1": ("hidden 1", 64), "fc2": ("hidden 2", 32), "out": ("class", 10)}
TOP = 6  # real digits shown per target
CELL = 64  # px per 8x8 image
MODEL = "MLP 64-64-32-10 on scikit-learn digits, healthy regime, trained by explorer/models/digits.py (seeds 0-2)"
PIXEL_SCALE = alt.Scale(domain=[0, 1], range=[charts.ZERO, charts.INK])  # black pixels tinted, so the square shows


def healthy_run(ctx: FigureContext, seed: int) -> TrainedDigits:
    steps = ctx.pick(smoke=150, full=2000)
    return train_digits("mlp", "healthy", steps=steps, seed=seed, checkpoints=[steps])


def target_name(layer: str, unit: int) -> str:
    kind = LAYERS[layer][0]
    return f"{kind} unit {unit}" if layer != "out" else f"class {unit} logit"


def frozen(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def pixels(image: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in image.ravel()]


def image_cells(chart: alt.Chart, y_offset: str = "0") -> alt.Chart:
    """Each record's 64 pixels `px` as 8x8 cells (a zipped flatten: changing a control renumbers nothing)."""
    return (
        chart.transform_calculate(p="sequence(64)")
        .transform_flatten(["px", "p"])
        .transform_calculate(x="datum.p % 8", y=f"{y_offset} + floor(datum.p / 8)")
        .transform_calculate(x2="datum.x + 1", y2="datum.y + 1")
        .mark_rect()
    )


def explore_seed(ctx: FigureContext, seed: int) -> tuple[list[dict], dict[str, list[bool]], dict[str, list[float]]]:
    """Every target's optimized images and best real digits (rows for the figure), and how they compare."""
    model = frozen(healthy_run(ctx, seed).model, ctx.device)
    split = load_digits_split()
    x_val = torch.from_numpy(split.x_val).to(ctx.device)
    rows, wins, ratios = [], {r: [] for r in REGULARIZERS}, {r: [] for r in REGULARIZERS}
    for layer, (_, width) in LAYERS.items():
        units = list(range(width))
        objective = unit_objective(model, layer, units)
        with torch.no_grad():
            real = layer_output(model, layer, x_val).T  # (units, n_val)
        best_values, best_index = real.topk(TOP, dim=1)  # (units, TOP)
        for reg in REGULARIZERS:
            images = visualize_units(model, layer, units, reg, device=ctx.device)  # (units, 64)
            with torch.no_grad():
                values = objective(images)  # (units,)
            wins[reg] += (values > best_values[:, 0]).tolist()
            ratios[reg] += (values / best_values[:, 0]).tolist()
            rows += [{"t": f"{layer}:{u}", "g": reg, "k": 0, "head": "optimized", "a": float(values[u]),
                      "px": pixels(images[u].cpu().numpy())} for u in units]
        for u in units:
            for k in range(TOP):
                i = int(best_index[u, k])
                rows.append({"t": f"{layer}:{u}", "g": "real", "k": k + 1, "head": f"real #{k + 1}: a {split.y_val[i]}",
                             "a": float(best_values[u, k]), "px": pixels(split.x_val[i])})
    return rows, wins, ratios


@figure(
    "features-explorer",
    title="What drives one unit: an optimized input beside the real digits that drive it most",
    caption=(
        "First square: an input found by 300 steps of gradient ascent (Adam, lr 0.05, from a uniform grey 0.5 image) on "
        "the chosen target: a hidden unit's pre-activation or a class logit. The chosen regularizer shapes it: pixels "
        "clamped to [0, 1] after each step, optionally an L2 penalty on the pixels and a total-variation penalty on "
        "neighbour differences. Then the six validation digits with the highest value of the same target. Under each "
        "image: the target's value on it. Seed 0 of the network."
    ),
    model=MODEL,
)
def explorer_figure(ctx: FigureContext) -> alt.TopLevelMixin:
    found = [explore_seed(ctx, seed) for seed in SEEDS]
    rows = found[0][0]
    for reg in REGULARIZERS:
        key = reg.replace("-", "_")
        claim_over_seeds(ctx, f"beats_best_real_{key}", per_seed_of([float(np.mean(wins[reg])) for _, wins, _ in found]))
        claim_over_seeds(ctx, f"median_ratio_{key}", per_seed_of([float(np.median(ratios[reg])) for _, _, ratios in found]))
    ctx.claim("targets", len(found[0][1]["box"]))
    ctx.claim("seeds", len(SEEDS))

    choices = [(layer, u) for layer, (_, width) in LAYERS.items() for u in range(width)]
    panel = charts.Panel()
    target = panel.select("target", [f"{layer}:{u}" for layer, u in choices], label="Target",
                          labels=[target_name(layer, u) for layer, u in choices], value="out:3")
    regularizer = panel.select("reg", list(REGULARIZERS), label="Regularizer", labels=[r.label for r in REGULARIZERS.values()],
                               value="box-l2-tv", radio=True)
    image_y = alt.Scale(domain=[-2, 10], reverse=True, nice=False)  # rows -2..0: the title, 8..10: the value
    cells = image_cells(alt.Chart()).encode(
        x=alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, 8], nice=False)),
        x2="x2:Q",
        y=alt.Y("y:Q", axis=None, scale=image_y),
        y2="y2:Q",
        color=alt.Color("px:Q", scale=PIXEL_SCALE, title="pixel"),
        tooltip=[alt.Tooltip("head:N", title="image"), alt.Tooltip("px:Q", title="pixel", format=".2f")],
    )
    text = alt.Chart().mark_text(baseline="middle", fontSize=charts.SMALL_SIZE)
    heads = text.encode(x=alt.value(CELL / 2), y=alt.Y(datum=-1, scale=image_y), text="head:N", color=alt.value(charts.INK))
    values = text.transform_calculate(label="'value ' + format(datum.a, '.2f')").encode(
        x=alt.value(CELL / 2), y=alt.Y(datum=9, scale=image_y), text="label:N", color=alt.value(charts.MUTED))
    chart = (
        alt.layer(cells, heads, values).properties(width=CELL, height=CELL * 12 / 8, view=alt.ViewBackground(stroke=None))
        .facet(facet=alt.Facet("k:O", title=None, header=alt.Header(labels=False)), columns=TOP + 1, data=pd.DataFrame(rows), spacing=12)
        .transform_filter(f"datum.t == {target.name} && (datum.g == {regularizer.name} || datum.g == 'real')")
    )
    return panel.finish(chart)


@figure(
    "features-classes",
    title="What the network thinks each digit looks like",
    caption=(
        "Top square of each class: the input that maximizes its logit under the chosen regularizer (same ascent as "
        "above). Bottom square: the average training digit of that class, for comparison. Seed 0 of the network."
    ),
    model=MODEL,
)
def classes(ctx: FigureContext) -> alt.TopLevelMixin:
    split = load_digits_split()
    means = np.stack([split.x_train[split.y_train == c].mean(axis=0) for c in range(CLASSES)])  # (10, 64)
    accuracies, rows = [], []
    for seed in SEEDS:
        model = frozen(healthy_run(ctx, seed).model, ctx.device)
        with torch.no_grad():
            predicted = model(torch.from_numpy(means).to(ctx.device)).argmax(-1).cpu()
        accuracies.append(float((predicted == torch.arange(CLASSES)).float().mean()))
        if seed == SEEDS[0]:
            for reg in REGULARIZERS:
                images = visualize_units(model, "out", list(range(CLASSES)), reg, device=ctx.device).cpu().numpy()
                rows += [{"g": reg, "c": c, "r": 0, "px": pixels(images[c])} for c in range(CLASSES)]
    rows += [{"g": "mean", "c": c, "r": 1, "px": pixels(means[c])} for c in range(CLASSES)]
    claim_over_seeds(ctx, "class_means_accuracy", per_seed_of(accuracies))
    ctx.claim("chance", 1 / CLASSES)

    panel = charts.Panel()
    regularizer = panel.select("reg", list(REGULARIZERS), label="Regularizer", labels=[r.label for r in REGULARIZERS.values()],
                               value="box-l2-tv", radio=True)
    cells = image_cells(alt.Chart(), "datum.r * 9").encode(
        x=alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, 8], nice=False)),
        x2="x2:Q",
        y=alt.Y("y:Q", scale=alt.Scale(domain=[0, 17], reverse=True, nice=False),
                axis=alt.Axis(values=[4, 13], labelExpr="datum.value < 9 ? 'optimized' : 'class mean'", title=None,
                              grid=False, ticks=False, domain=False)),
        y2="y2:Q",
        color=alt.Color("px:Q", scale=PIXEL_SCALE, title="pixel"),
        tooltip=[alt.Tooltip("c:Q", title="class"), alt.Tooltip("px:Q", title="pixel", format=".2f")],
    ).properties(width=48, height=48 * 17 / 8, view=alt.ViewBackground(stroke=None))
    chart = (
        cells.facet(facet=alt.Facet("c:O", title=None, header=alt.Header(labelExpr="'class ' + datum.value")),
                    columns=CLASSES, data=pd.DataFrame(rows), spacing=8)
        .transform_filter(f"datum.g == {regularizer.name} || datum.g == 'mean'")
    )
    return panel.finish(chart)
