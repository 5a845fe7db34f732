"""Saliency maps on the digits classifiers: six methods side by side, and two checks of them.

Figures: saliency-panel (every method on one digit, any target class), saliency-numpy (the
gradient by hand against autograd), saliency-completeness (integrated gradients' sum rule),
saliency-deletion (deletion curves against a random order), saliency-sanity (cascading
model randomization).
"""

import functools
from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd
import torch
from torch import nn

from explorer.models.digits import TrainedDigits, load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.techniques import saliency_numpy
from explorer.techniques.saliency import (
    BASELINES,
    METHODS,
    attribute,
    cascading_randomization,
    completeness_gap,
    curve_area,
    deletion_curve,
    integrated_gradients_refined,
    methods_for,
    rank_correlation,
)

ARCHS = {"mlp": "MLP 64-64-32-10", "cnn": "CNN (conv 16, conv 32, max-pool, linear)"}
MODEL = "MLP 64-64-32-10 and a two-conv CNN trained on scikit-learn digits by explorer/models/digits.py (healthy regime)"
SG_SAMPLES = (1, 5, 10, 25, 50)
SG_NOISE = (0.05, 0.1, 0.2, 0.3)
SG_DEFAULT = {"n_samples": 25, "noise": 0.2}
IG_STEPS = 256  # where the integration starts; images whose sum check fails get more (saliency-completeness)
IG_TOLERANCE = 0.005
IG_OPTIONS = {"n_steps": IG_STEPS, "tolerance": IG_TOLERANCE, "max_steps": 1024}
RANDOMIZE_TOP_DOWN = {"mlp": ["out", "fc2", "fc1"], "cnn": ["out", "conv2", "conv1"]}
STAGE_LABELS = "['trained', 'output layer', '+ 2nd hidden', '+ 1st hidden', 'other seed'][datum.value]"
QUANT = 99
METHOD_COLORS = {"Gradient": "#4c78a8", "SmoothGrad": "#54a24b", "Integrated Gradients": "#f58518",
                 "Grad-CAM": "#b279a2", "LRP (epsilon)": "#e45756", "Occlusion": "#72b7b2", "Random order": "#9d9d9d"}


def method_color() -> alt.Color:
    """The same colour for a method in every figure; the random order is grey."""
    return alt.Color("method:N", title="method",
                     scale=alt.Scale(domain=list(METHOD_COLORS), range=list(METHOD_COLORS.values())))  # maps are stored as integers in [-99, 99] times a per-map scale


def on_one_thread(producer: Callable) -> Callable:
    """Run a producer with one torch thread: these networks are so small that handing work between
    threads costs more than the arithmetic (8x slower on a busy two-core machine)."""

    @functools.wraps(producer)
    def run(ctx: FigureContext):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return producer(ctx)
        finally:
            torch.set_num_threads(before)

    return run


def trained(arch: str, ctx: FigureContext, seed: int = 0) -> TrainedDigits:
    steps = ctx.pick(smoke=300, full=2000)
    return train_digits(arch, "healthy", steps=steps, seed=seed, checkpoints=[steps])


def model_on_device(run: TrainedDigits, ctx: FigureContext) -> nn.Module:
    return run.model.to(ctx.device).eval()


def validation(ctx: FigureContext, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `n` validation digits as images (n, 1, 8, 8) and their labels (n,)."""
    split = load_digits_split()
    x = torch.from_numpy(split.x_val[:n]).view(-1, 1, 8, 8).to(ctx.device)
    return x, torch.from_numpy(split.y_val[:n]).to(ctx.device)


def showcase_digits(ctx: FigureContext, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` validation digits of each class, ordered by class: what the reader picks from."""
    split = load_digits_split()
    picked = np.concatenate([np.flatnonzero(split.y_val == c)[:per_class] for c in range(10)])
    picked = picked.reshape(10, per_class).T.reshape(-1)  # 0, 1, ..., 9, 0, 1, ...
    x = torch.from_numpy(split.x_val[picked]).view(-1, 1, 8, 8).to(ctx.device)
    return x, torch.from_numpy(split.y_val[picked]).to(ctx.device)


def method_options(method: str, sg_grid: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())) -> list[tuple[str, dict]]:
    """(key, options) of each variant to compute for `method`: SmoothGrad's default plus its `sg_grid`."""
    if method == "smoothgrad":
        samples, noises = sg_grid
        grid = {(n, s) for n in samples for s in noises} | {(SG_DEFAULT["n_samples"], SG_DEFAULT["noise"])}
        return [(f"smoothgrad:{n}:{s}", {"n_samples": n, "noise": s}) for n, s in sorted(grid)]
    if method == "integrated-gradients":
        return [(f"integrated-gradients:{b}", {**IG_OPTIONS, "baseline": b}) for b in BASELINES]
    return [(method, {})]


def quantized(maps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-map scale (max |value|) and the map as integers in [-QUANT, QUANT]."""
    flat = maps.flatten(1).double().cpu().numpy()  # (batch, 64)
    scale = np.abs(flat).max(axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    return scale, np.rint(flat / safe[:, None] * QUANT).astype(int)


def map_records(key: str, classes: list[int], maps: torch.Tensor) -> list[dict]:
    scale, ints = quantized(maps)
    return [{"k": key, "c": c, "s": float(f"{s:.3g}"), "v": v.tolist()} for c, s, v in zip(classes, scale, ints)]


def heatmap(data: alt.Data, where: str, *, title: str = "", size: int = 84, scheme: str = "redblue",
            domain: tuple[float, float] = (-1, 1)) -> alt.Chart:
    """An 8x8 heat map per record {k, s, v[64]} that passes the `where` filter.

    Each record's 64 values are flattened next to their pixel index (a zipped flatten, no window
    transform, so that changing a widget re-numbers nothing)."""
    return (
        alt.Chart(data)
        .transform_filter(where)
        .transform_calculate(p="sequence(64)")
        .transform_flatten(["v", "p"])
        .transform_calculate(row="floor(datum.p / 8)", col="datum.p % 8", norm=f"datum.v / {QUANT}",
                             value=f"datum.v / {QUANT} * datum.s")
        .mark_rect()
        .encode(
            x=alt.X("col:O", axis=None),
            y=alt.Y("row:O", axis=None),
            color=alt.Color("norm:Q", scale=alt.Scale(scheme=scheme, domain=list(domain), reverse=scheme == "redblue"),
                            legend=None),
            tooltip=[alt.Tooltip("row:O"), alt.Tooltip("col:O"), alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(width=size, height=size, title=title)
    )


# --------------------------------------------------------------------------- the panel


def panel_payloads(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, sg_grid) -> list[dict]:
    """For each digit: every method's map for each of the 10 classes, IG's sum check, the prediction."""
    n = len(images)
    every = images.repeat_interleave(10, dim=0)  # (n * 10, 1, 8, 8): one copy per target class
    targets = torch.arange(10, device=images.device).repeat(n)  # (n * 10,)
    classes = list(range(10))
    payloads = [{"maps": map_records("input", [-1], images[d : d + 1]), "gaps": [], "label": int(labels[d])}
                for d in range(n)]
    for method in methods_for(model):
        for key, options in method_options(method, sg_grid):
            maps = attribute(method, model, every, targets, **options).view(n, 10, 1, 8, 8)
            if method == "integrated-gradients":
                gaps = completeness_gap(model, every, targets, maps.flatten(0, 1), options["baseline"]).view(n, 10)
                sums = maps.flatten(2).sum(2)  # (n, 10)
            for d, payload in enumerate(payloads):
                payload["maps"] += map_records(key, classes, maps[d])
                if method == "integrated-gradients":
                    payload["gaps"] += [{"c": c, "b": options["baseline"], "sum": sums[d, c].item(),
                                         "gap": gaps[d, c].item()} for c in classes]
    with torch.no_grad():
        probs = model(images).softmax(-1).tolist()  # (n, 10)
    for payload, p in zip(payloads, probs):
        payload["probs"] = [{"c": c, "p": value} for c, value in enumerate(p)]
    return payloads


def with_params(chart: alt.TopLevelMixin, *params: alt.Parameter) -> dict:
    """The chart's spec with `params` at the top level (Altair cannot add params to a concat of facets)."""
    spec = chart.to_dict()
    spec["params"] = spec.get("params", []) + [p.param.to_dict() for p in params]
    return spec


def panel_chart(sg_samples: tuple[int, ...], sg_noise: tuple[float, ...]) -> dict:
    target = alt.param("target", value=3, bind=alt.binding_select(options=list(range(10)), name="Target class "))
    samples = alt.param("sg_samples", value=SG_DEFAULT["n_samples"],
                        bind=alt.binding_select(options=list(sg_samples), name="SmoothGrad samples "))
    noise = alt.param("sg_noise", value=SG_DEFAULT["noise"],
                      bind=alt.binding_select(options=list(sg_noise), name="SmoothGrad noise (std) "))
    baseline = alt.param("ig_baseline", value="black",
                         bind=alt.binding_select(options=list(BASELINES), name="IG baseline "))
    maps = alt.Data(name="maps")
    shown = (
        "datum.c == target && (datum.k == 'gradient' || datum.k == 'grad-cam' || datum.k == 'lrp'"
        " || datum.k == 'occlusion' || datum.k == 'smoothgrad:' + sg_samples + ':' + sg_noise"
        " || datum.k == 'integrated-gradients:' + ig_baseline)"
    )
    order = {key.split(":")[0]: i for i, key in enumerate(METHODS)}
    labels = {name: m.label for name, m in METHODS.items()}
    methods = (
        heatmap(maps, shown)
        .transform_calculate(method=f"{labels}[split(datum.k, ':')[0]]", order=f"{order}[split(datum.k, ':')[0]]")
        .facet(column=alt.Column("method:N", sort=alt.SortField("order"), title=None,
                                 header=alt.Header(labelFontSize=12)))
    )
    digit = heatmap(maps, "datum.k == 'input'", title="Input", scheme="greys", domain=(0, 1))
    probs = (
        alt.Chart(alt.Data(name="probs"))
        .mark_bar()
        .encode(
            x=alt.X("c:O", title="class"),
            y=alt.Y("p:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            color=alt.condition("datum.c == target", alt.value("#d62728"), alt.value("#9e9e9e")),
            tooltip=[alt.Tooltip("c:O", title="class"), alt.Tooltip("p:Q", format=".3f")],
        )
        .properties(width=220, height=90, title="Model's prediction (red: target class)")
    )
    gap_text = (
        alt.Chart(alt.Data(name="gaps"))
        .transform_filter("datum.c == target && datum.b == ig_baseline")
        .transform_calculate(text="'Integrated gradients, ' + datum.b + ' baseline: sum of the map = '"
                                  " + format(datum.sum, '.4f') + ', completeness gap = ' + format(datum.gap, '.3%')")
        .mark_text(align="left", fontSize=12)
        .encode(text="text:N", x=alt.value(0))
        .properties(width=400, height=20)
    )
    chart = alt.vconcat(alt.hconcat(digit, probs), methods, gap_text).resolve_scale(color="independent")
    return with_params(chart, target, samples, noise, baseline)


@figure(
    "saliency-panel",
    title="Six saliency methods on one digit",
    caption=(
        "Each map explains the score of the chosen target class; red pixels raise it, blue pixels lower it, and "
        "every map is scaled to its own largest value. Pick a network and a digit above the chart, and the target "
        "class, SmoothGrad's number of noisy copies and noise level, and the integrated-gradients baseline below it. "
        "Grad-CAM needs a convolution, so it appears for the CNN only."
    ),
    model=MODEL,
)
@on_one_thread
def saliency_panel(ctx: FigureContext) -> dict:
    images, labels = showcase_digits(ctx, per_class=2)
    images, labels = images[: ctx.pick(smoke=3, full=20)], labels[: ctx.pick(smoke=3, full=20)]
    sg_grid = ctx.pick(smoke=((1, SG_DEFAULT["n_samples"]), (0.05, SG_DEFAULT["noise"])), full=(SG_SAMPLES, SG_NOISE))
    for arch in ARCHS:
        run = trained(arch, ctx)
        ctx.claim(f"{arch}_val_accuracy", run.history[-1]["val_accuracy"])
        for i, payload in enumerate(panel_payloads(model_on_device(run, ctx), images, labels, sg_grid)):
            ctx.asset(f"maps/{arch}-{i}.json", payload)
    digit_labels = [f"#{i}: a {int(y)}" for i, y in enumerate(labels)]
    return panel_chart(*sg_grid) | {"usermeta": {"explorer": {
        "controls": [
            {"name": "arch", "label": "Network", "options": list(ARCHS), "labels": list(ARCHS.values()), "default": "cnn"},
            {"name": "digit", "label": "Digit", "options": list(range(len(images))), "labels": digit_labels, "default": 3},
        ],
        "source": {"url": "maps/{arch}-{digit}.json", "datasets": ["maps", "gaps", "probs"]},
    }}}


# --------------------------------------------------------------------------- by hand vs autograd


@figure(
    "saliency-numpy",
    title="The gradient by hand equals autograd's",
    caption=(
        "Left: the saliency map of the MLP computed in NumPy with the backward sweep written out (row of the output "
        "weights, ReLU mask, weight matrix, twice). Right: the same map from torch.autograd. Pick a digit and a "
        "target class; the text under the maps gives their largest difference."
    ),
    model="MLP 64-64-32-10 trained on scikit-learn digits by explorer/models/digits.py (healthy regime)",
)
@on_one_thread
def saliency_numpy_figure(ctx: FigureContext) -> dict:
    model = model_on_device(trained("mlp", ctx), ctx)
    weights = saliency_numpy.mlp_weights(model)
    images, labels = showcase_digits(ctx, 1)
    records, worst = [], 0.0
    for d, image in enumerate(images):
        flat = image.flatten().double().cpu().numpy()  # (64,)
        for c in range(10):
            by_hand = saliency_numpy.input_gradient(flat, weights, c)  # (64,)
            x = image[None].clone().requires_grad_(True)  # (1, 1, 8, 8)
            (autograd,) = torch.autograd.grad(model(x)[0, c], x)
            autograd = autograd.flatten().double().cpu().numpy()
            diff = float(np.abs(by_hand - autograd).max())
            worst = max(worst, diff)
            scale = float(np.abs(by_hand).max()) or 1.0
            for source, values in (("NumPy, by hand", by_hand), ("torch.autograd", autograd)):
                records.append({"d": d, "c": c, "k": source, "s": scale, "diff": diff,
                                "v": np.rint(values / scale * QUANT).astype(int).tolist()})
    ctx.claim("max_abs_difference", worst)
    digit = alt.param("digit", value=3, bind=alt.binding_range(min=0, max=len(images) - 1, step=1, name="Digit "))
    target = alt.param("target_class", value=3, bind=alt.binding_select(options=list(range(10)), name="Target class "))
    data = alt.Data(values=records)
    maps = (
        heatmap(data, "datum.d == digit && datum.c == target_class", size=150)
        .facet(column=alt.Column("k:N", title=None, sort=["NumPy, by hand", "torch.autograd"],
                                 header=alt.Header(labelFontSize=12)))
    )
    text = (
        alt.Chart(data)
        .transform_filter("datum.d == digit && datum.c == target_class && datum.k == 'torch.autograd'")
        .transform_calculate(text=f"'digit #' + datum.d + ' (a ' + {[int(y) for y in labels]}[datum.d] + '), class '"
                                  " + datum.c + ': largest |NumPy - autograd| = ' + format(datum.diff, '.1e')")
        .mark_text(align="left", fontSize=12)
        .encode(text="text:N", x=alt.value(0))
        .properties(width=340, height=20)
    )
    return with_params(alt.vconcat(maps, text), digit, target)


# --------------------------------------------------------------------------- completeness


@figure(
    "saliency-completeness",
    title="Integrated gradients add up to the change in score",
    caption=(
        "Completeness gap |sum of the map - (f(x) - f(baseline))| / |f(x) - f(baseline)| for the true class, against "
        "a fixed number of integration steps (Gauss-Legendre, Captum's default). Lines: median over validation "
        "digits; dots: the worst digit. The dashed rule is 1%. Pick the network."
    ),
    model=MODEL,
)
@on_one_thread
def saliency_completeness(ctx: FigureContext) -> alt.Chart:
    images, labels = validation(ctx, ctx.pick(smoke=8, full=60))
    step_grid = ctx.pick(smoke=(32, IG_STEPS), full=(8, 16, 32, 64, 128, IG_STEPS))
    rows, fixed_worst, refined_worst, most_steps, refined = [], 0.0, 0.0, 0, 0
    for arch in ARCHS:
        model = model_on_device(trained(arch, ctx), ctx)
        for baseline in BASELINES:
            for n_steps in step_grid:
                maps = attribute("integrated-gradients", model, images, labels, baseline=baseline, n_steps=n_steps,
                                 tolerance=None)
                gap = completeness_gap(model, images, labels, maps, baseline)
                rows.append({"arch": arch, "baseline": baseline, "steps": n_steps,
                             "median": gap.median().item(), "max": gap.max().item()})
            fixed_worst = max(fixed_worst, rows[-1]["max"])
            ctx.claim(f"{arch}_{baseline}_gap_median_pct", 100 * rows[-1]["median"])
            maps, used = integrated_gradients_refined(model, images, labels, baseline, **IG_OPTIONS)
            refined_worst = max(refined_worst, completeness_gap(model, images, labels, maps, baseline).max().item())
            most_steps, refined = max(most_steps, int(used.max())), refined + int((used > IG_STEPS).sum())
    ctx.claim("steps", IG_STEPS)
    ctx.claim("fixed_max_gap_pct", 100 * fixed_worst)
    ctx.claim("max_gap_pct", 100 * refined_worst)
    ctx.claim("tolerance_pct", 100 * IG_TOLERANCE)
    ctx.claim("most_steps", most_steps)
    ctx.claim("refined_maps", refined)
    ctx.claim("maps", len(images) * len(ARCHS) * len(BASELINES))
    arch = alt.param("arch", value="mlp", bind=alt.binding_select(options=list(ARCHS), labels=list(ARCHS.values()),
                                                                   name="Network "))
    base = alt.Chart(pd.DataFrame(rows)).transform_filter("datum.arch == arch").encode(
        x=alt.X("steps:Q", scale=alt.Scale(type="log", base=2), title="integration steps"),
        color=alt.Color("baseline:N", title="baseline"),
    )
    y = alt.Scale(type="log", domain=[1e-5, 1])
    lines = base.mark_line().encode(y=alt.Y("median:Q", scale=y, title="completeness gap", axis=alt.Axis(format="%")))
    dots = base.mark_point(filled=True).encode(y=alt.Y("max:Q", scale=y),
                                               tooltip=["baseline:N", "steps:Q", alt.Tooltip("median:Q", format=".2%"),
                                                        alt.Tooltip("max:Q", format=".2%")])
    rule = alt.Chart(pd.DataFrame({"y": [0.01]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
    return alt.layer(lines, dots, rule).add_params(arch).properties(width="container", height=260)


# --------------------------------------------------------------------------- deletion


@figure(
    "saliency-deletion",
    title="Deleting the pixels a map ranks highest",
    caption=(
        "Probability of the true class, averaged over validation digits, as the pixels a method ranks highest are set "
        "to black, 4 pixels (1/16 of the image) at a time. The dashed grey curve removes pixels in random order. A "
        "lower area under the curve means the map found the pixels the prediction rests on. Pick the network; click a "
        "legend entry to highlight one method."
    ),
    model=MODEL,
)
@on_one_thread
def saliency_deletion(ctx: FigureContext) -> alt.Chart:
    images, labels = validation(ctx, ctx.pick(smoke=20, full=200))
    steps, draws = 16, ctx.pick(smoke=2, full=5)
    rows = []
    for arch in ARCHS:
        model = model_on_device(trained(arch, ctx), ctx)
        curves = {}
        generator = torch.Generator().manual_seed(0)
        curves["random"] = torch.stack([deletion_curve(model, images, labels, None, steps, generator)
                                        for _ in range(draws)]).mean(0)
        for method in methods_for(model):
            maps = attribute(method, model, images, labels, **default_options(method))
            curves[method] = deletion_curve(model, images, labels, maps, steps)
        for name, curve in curves.items():
            ctx.claim(f"{arch}_area_{name}", curve_area(curve).mean().item())
            for k, p in enumerate(curve.mean(0).tolist()):
                rows.append({"arch": arch, "method": label_of(name), "fraction": k / steps, "probability": p})
    arch = alt.param("arch", value="mlp", bind=alt.binding_select(options=list(ARCHS), labels=list(ARCHS.values()),
                                                                   name="Network "))
    pick = alt.selection_point(fields=["method"], bind="legend")
    return (
        alt.Chart(pd.DataFrame(rows))
        .transform_filter("datum.arch == arch")
        .mark_line(point=True)
        .encode(
            x=alt.X("fraction:Q", title="fraction of pixels removed", axis=alt.Axis(format="%")),
            y=alt.Y("probability:Q", title="probability of the true class", scale=alt.Scale(domain=[0, 1])),
            color=method_color(),
            strokeDash=alt.condition("datum.method == 'Random order'", alt.value([5, 4]), alt.value([1, 0])),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=["method:N", alt.Tooltip("fraction:Q", format=".0%"), alt.Tooltip("probability:Q", format=".3f")],
        )
        .add_params(arch, pick)
        .properties(width="container", height=300)
    )


def default_options(method: str) -> dict:
    """The variant of `method` the checks use: SmoothGrad's default setting, IG from black in IG_STEPS."""
    return {"smoothgrad": SG_DEFAULT, "integrated-gradients": {**IG_OPTIONS, "baseline": "black"}}.get(method, {})


def label_of(name: str) -> str:
    return "Random order" if name == "random" else METHODS[name].label


# --------------------------------------------------------------------------- randomization


@figure(
    "saliency-sanity",
    title="Do the maps depend on the model? Cascading randomization",
    caption=(
        "Top: Spearman rank correlation between each method's map (absolute values) from the trained network and "
        "from copies whose layers are re-initialized one more at a time, from the output layer down; mean over "
        "validation digits. The hollow point at the right compares with a second network trained from another seed: "
        "how similar two good models' maps are. Bottom: the maps of one digit along the way. Pick the network and the "
        "method; a constant map counts as correlation 0."
    ),
    model=MODEL + "; randomized copies re-initialized with PyTorch's default init",
)
@on_one_thread
def saliency_sanity(ctx: FigureContext) -> dict:
    images, labels = validation(ctx, ctx.pick(smoke=8, full=50))
    rows, examples = [], []
    for arch, layers in RANDOMIZE_TOP_DOWN.items():
        model = model_on_device(trained(arch, ctx), ctx)
        other = model_on_device(trained(arch, ctx, seed=1), ctx)
        models = [("trained", model)] + [(f"+ {name}" if i else name, m.to(ctx.device))
                                         for i, (name, m) in enumerate(cascading_randomization(model, layers))]
        for method in methods_for(model):
            options = default_options(method)
            reference = attribute(method, model, images, labels, **options)
            for stage, (name, m) in enumerate(models + [("other seed", other)]):
                maps = reference if stage == 0 else attribute(method, m, images, labels, **options)
                rho = rank_correlation(reference, maps)
                rows.append({"arch": arch, "method": METHODS[method].label, "stage": stage, "model": name,
                             "rho": float(rho.mean())})
                examples += [{**r, "arch": arch, "method": METHODS[method].label, "model": name, "stage": stage}
                             for r in map_records(name, [int(labels[0])], maps[:1])]
            ctx.claim(f"{arch}_{method}_rho_randomized", float(rows[-2]["rho"]))
            ctx.claim(f"{arch}_{method}_rho_other_seed", float(rows[-1]["rho"]))
    arch = alt.param("arch", value="mlp", bind=alt.binding_select(options=list(ARCHS), labels=list(ARCHS.values()),
                                                                   name="Network "))
    method = alt.param("method", value="Gradient", bind=alt.binding_select(
        options=[m.label for m in METHODS.values()], name="Method (maps) "))
    frame = pd.DataFrame(rows)
    stages = alt.X("stage:O", title="layers re-initialized (cumulative, top down)",
                   axis=alt.Axis(labelExpr=STAGE_LABELS, labelAngle=0))
    base = alt.Chart(frame).transform_filter("datum.arch == arch")
    lines = base.transform_filter("datum.model != 'other seed'").mark_line(point=True).encode(
        x=stages, y=alt.Y("rho:Q", title="Spearman rho with trained map", scale=alt.Scale(domain=[-0.2, 1])),
        color=method_color(),
        tooltip=["method:N", "model:N", alt.Tooltip("rho:Q", format=".3f")],
    )
    seed = base.transform_filter("datum.model == 'other seed'").mark_point(size=80, filled=False).encode(
        x=stages, y="rho:Q", color=method_color(), tooltip=["method:N", "model:N", alt.Tooltip("rho:Q", format=".3f")]
    )
    curve = alt.layer(lines, seed).properties(width=560, height=240)
    maps = (
        heatmap(alt.Data(values=examples), "datum.arch == arch && datum.method == method")
        .facet(column=alt.Column("stage:O", title=None,
                                 header=alt.Header(labelExpr=STAGE_LABELS)))
    )
    return with_params(alt.vconcat(curve, maps).resolve_scale(color="independent"), arch, method)
