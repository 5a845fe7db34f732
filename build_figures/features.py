"""Feature visualization: inputs optimized to drive one unit of the digits MLP, beside the real digits that drive it most."""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer.models.digits import TrainedDigits, load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.techniques.feature_visualization import REGULARIZERS, layer_output, unit_objective, visualize_units

CHECKPOINTS = (0, 5, 10, 20, 40, 80, 160, 320, 640, 1000, 1500, 2000)  # the activations article's runs, shared via the cache
LAYERS = {"fc1": ("hidden 1", 64), "fc2": ("hidden 2", 32), "out": ("class", 10)}
TOP = 6  # real digits shown per target
GAP = 9  # x offset between 8-pixel panels
MODEL = "MLP 64-64-32-10 on scikit-learn digits, healthy regime, trained by explorer/models/digits.py"


def healthy_run(ctx: FigureContext) -> TrainedDigits:
    steps = ctx.pick(smoke=150, full=2000)
    return train_digits("mlp", "healthy", steps=steps, checkpoints=[s for s in CHECKPOINTS if s < steps] + [steps])


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


@figure(
    "features-explorer",
    title="What drives one unit: an optimized input beside the real digits that drive it most",
    caption=(
        "Left square: an input found by 300 steps of gradient ascent (Adam, lr 0.05, from a uniform grey 0.5 image) on the chosen "
        "target: a hidden unit's pre-activation or a class logit. The chosen regularizer shapes it: pixels clamped to [0, 1] after each "
        "step, optionally an L2 penalty on the pixels and a total-variation penalty on neighbour differences. Right: the six validation "
        "digits with the highest value of the same target. Numbers: the target's value on each image."
    ),
    model=MODEL,
)
def explorer_figure(ctx: FigureContext) -> alt.Chart:
    model = frozen(healthy_run(ctx).model, ctx.device)
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
            for u in units:
                rows.append({"t": f"{layer}:{u}", "g": reg, "k": 0, "head": "optimized", "a": float(values[u]), "px": pixels(images[u].cpu().numpy())})
        for u in units:
            for k in range(TOP):
                i = int(best_index[u, k])
                rows.append({"t": f"{layer}:{u}", "g": "real", "k": k + 1, "head": f"digit {split.y_val[i]}", "a": float(best_values[u, k]), "px": pixels(split.x_val[i])})
    for reg in REGULARIZERS:
        ctx.claim(f"beats_best_real_{reg.replace('-', '_')}", float(np.mean(wins[reg])))
        ctx.claim(f"median_ratio_{reg.replace('-', '_')}", float(np.median(ratios[reg])))
    ctx.claim("targets", len(wins["box"]))

    choices = [(layer, u) for layer, (_, width) in LAYERS.items() for u in range(width)]
    options, labels = [f"{layer}:{u}" for layer, u in choices], [target_name(layer, u) for layer, u in choices]
    target = alt.param("target", value="out:3", bind=alt.binding_select(options=options, labels=labels, name="Target "))
    regularizer = alt.param("reg", value="box-l2-tv", bind=alt.binding_select(options=list(REGULARIZERS), labels=[r.label for r in REGULARIZERS.values()], name="Regularizer "))
    base = alt.Chart(pd.DataFrame(rows)).transform_filter("datum.t == target && (datum.g == reg || datum.g == 'real')")
    cells = (
        base.transform_flatten(["px"])
        .transform_window(p="row_number()", groupby=["k"])
        .transform_calculate(x="datum.k * 9 + (datum.p - 1) % 8", y="floor((datum.p - 1) / 8)")
        .transform_calculate(x2="datum.x + 1", y2="datum.y + 1")
        .mark_rect()
        .encode(
            x=alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, GAP * (TOP + 1) - 1], nice=False)),
            x2="x2:Q",
            y=alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[-3, 8], reverse=True, nice=False)),
            y2="y2:Q",
            color=alt.Color("px:Q", scale=alt.Scale(scheme="greys", domain=[0, 1]), title="pixel"),
            tooltip=[alt.Tooltip("head:N", title="image"), alt.Tooltip("px:Q", title="pixel", format=".2f")],
        )
    )
    heads = base.transform_calculate(cx="datum.k * 9 + 4").mark_text(baseline="bottom", fontSize=12).encode(
        x="cx:Q", y=alt.datum(-1.6), text="head:N"
    )
    values = base.transform_calculate(cx="datum.k * 9 + 4", label="format(datum.a, '.2f')").mark_text(baseline="bottom", fontSize=11, color="#666").encode(
        x="cx:Q", y=alt.datum(-0.3), text="label:N"
    )
    return alt.layer(cells, heads, values).add_params(target, regularizer).properties(width="container", height=150)


@figure(
    "features-classes",
    title="What the network thinks each digit looks like",
    caption=(
        "Top row: for each class, the input that maximizes its logit under the chosen regularizer (same ascent as above). "
        "Bottom row: the average training digit of that class, for comparison."
    ),
    model=MODEL,
)
def classes(ctx: FigureContext) -> alt.Chart:
    model = frozen(healthy_run(ctx).model, ctx.device)
    split = load_digits_split()
    rows = []
    for reg in REGULARIZERS:
        images = visualize_units(model, "out", list(range(10)), reg, device=ctx.device).cpu().numpy()
        rows += [{"g": reg, "c": c, "r": 0, "px": pixels(images[c])} for c in range(10)]
    rows += [{"g": "mean", "c": c, "r": 1, "px": pixels(split.x_train[split.y_train == c].mean(axis=0))} for c in range(10)]
    with torch.no_grad():
        means = torch.from_numpy(np.stack([split.x_train[split.y_train == c].mean(axis=0) for c in range(10)])).to(ctx.device)
        ctx.claim("class_means_accuracy", float((model(means).argmax(-1).cpu() == torch.arange(10)).float().mean()))
    regularizer = alt.param("reg", value="box-l2-tv", bind=alt.binding_select(options=list(REGULARIZERS), labels=[r.label for r in REGULARIZERS.values()], name="Regularizer "))
    return (
        alt.Chart(pd.DataFrame(rows))
        .transform_filter("datum.g == reg || datum.g == 'mean'")
        .transform_flatten(["px"])
        .transform_window(p="row_number()", groupby=["c", "r"])
        .transform_calculate(x="datum.c * 9 + (datum.p - 1) % 8", y="datum.r * 9 + floor((datum.p - 1) / 8)")
        .transform_calculate(x2="datum.x + 1", y2="datum.y + 1")
        .mark_rect()
        .encode(
            x=alt.X("x:Q", axis=alt.Axis(values=[4 + 9 * c for c in range(10)], labelExpr="'class ' + floor(datum.value / 9)", title=None, grid=False, ticks=False, domain=False),
                    scale=alt.Scale(domain=[0, 89], nice=False)),  # fmt: skip
            x2="x2:Q",
            y=alt.Y("y:Q", axis=alt.Axis(values=[4, 13], labelExpr="datum.value < 9 ? 'optimized' : 'class mean'", title=None, grid=False, ticks=False, domain=False),
                    scale=alt.Scale(domain=[0, 17], reverse=True, nice=False)),  # fmt: skip
            y2="y2:Q",
            color=alt.Color("px:Q", scale=alt.Scale(scheme="greys", domain=[0, 1]), title="pixel"),
            tooltip=[alt.Tooltip("c:Q", title="class"), alt.Tooltip("px:Q", title="pixel", format=".2f")],
        )
        .add_params(regularizer)
        .properties(width="container", height=150)
    )
