"""Saliency maps on the digits classifiers: six methods side by side, and two checks of them.

Figures: saliency-panel (every method on one digit, any target class), saliency-numpy (the
gradient by hand against autograd), saliency-completeness (integrated gradients' sum rule),
saliency-deletion (deletion curves against a random and a brightness order), saliency-sanity
(cascading model randomization, in three variants of the rank correlation).

Numbers that depend on training come from three seeds of each network (explorer/ensemble.py); the
pictures of single maps show seed 0.
"""

import functools
from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd
import torch
from torch import nn

from explorer import charts
from explorer.models.digits import CLASSES, TrainedDigits, load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.ensemble import MIN_SEEDS, claim_over_seeds, spread
from explorer.techniques import saliency_numpy
from explorer.techniques.saliency import (
    BASELINES,
    CORRELATIONS,
    METHODS,
    attribute,
    brightness_map,
    cascading_randomization,
    completeness_gap,
    curve_area,
    deletion_curve,
    integrated_gradients_refined,
    map_correlation,
    methods_for,
)

SEEDS = tuple(range(MIN_SEEDS))  # three trained networks for every number the page quotes


def per_seed_of(values) -> dict[int, float]:
    """{seed: value} from values listed in SEEDS order (what explorer.ensemble records)."""
    return dict(zip(SEEDS, (float(v) for v in values), strict=True))

ARCHS = {"mlp": "MLP 64-64-32-10", "cnn": "CNN (conv 16, conv 32, max-pool, linear)"}
MODEL = "MLP 64-64-32-10 and a two-conv CNN trained on scikit-learn digits by explorer/models/digits.py (healthy regime, seeds 0-2)"
CHANCE = 1 / CLASSES
SG_SAMPLES = (1, 5, 10, 25, 50)
SG_NOISE = (0.05, 0.1, 0.2, 0.3)
SG_DEFAULT = {"n_samples": 25, "noise": 0.2}
IG_STEPS = 256  # where the integration starts; images whose sum check fails get more (saliency-completeness)
IG_TOLERANCE = 0.005
IG_OPTIONS = {"n_steps": IG_STEPS, "tolerance": IG_TOLERANCE, "max_steps": 2048}
RANDOMIZE_TOP_DOWN = {"mlp": ["out", "fc2", "fc1"], "cnn": ["out", "conv2", "conv1"]}
STAGES = ["trained", "output layer", "+ 2nd hidden", "+ 1st hidden", "other seed"]
QUANT = 99  # maps are stored as integers in [-99, 99] times a per-map scale
MAP_SIZE = 84
RANDOM, BRIGHTNESS = "Random order", "Brightness order"
# Grad-CAM last: the MLP has none, and the colours of the others must not move when it is missing.
LINE_NAMES = [RANDOM, BRIGHTNESS] + [METHODS[m].label for m in ("gradient", "smoothgrad", "integrated-gradients", "lrp", "occlusion", "grad-cam")]
LINE_COLORS = [charts.FAINT, charts.MUTED, *charts.SERIES[:6]]
METHOD_ORDER = [m for m in METHODS]  # the panel's order: gradient, smoothgrad, ig, grad-cam, lrp, occlusion
NO_CONV_NOTE = ["the MLP has", "no convolution"]


def method_color(**legend) -> alt.Color:
    """The same colour for a method in every figure; the two model-free orders are greys.

    No fixed domain: the legend lists only the lines drawn (the MLP has no Grad-CAM), and the sort
    keeps each name on its colour."""
    return alt.Color("method:N", title="ranking", sort=LINE_NAMES, scale=alt.Scale(range=LINE_COLORS),
                     legend=alt.Legend(**legend) if legend else alt.Legend())


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


def default_options(method: str) -> dict:
    """The variant of `method` the checks use: SmoothGrad's default setting, IG from black, refined."""
    return {"smoothgrad": SG_DEFAULT, "integrated-gradients": {**IG_OPTIONS, "baseline": "black"}}.get(method, {})


def quantized(maps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-map scale (max |value|) and the map as integers in [-QUANT, QUANT]."""
    flat = maps.flatten(1).double().cpu().numpy()  # (batch, 64)
    scale = np.abs(flat).max(axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    return scale, np.rint(flat / safe[:, None] * QUANT).astype(int)


def map_records(key: str, classes: list[int], maps: torch.Tensor) -> list[dict]:
    scale, ints = quantized(maps)
    return [{"k": key, "c": c, "s": float(f"{s:.3g}"), "v": v.tolist()} for c, s, v in zip(classes, scale, ints)]


def placeholder_records(key: str, classes: list[int]) -> list[dict]:
    """An empty map (drawn as a note): keeps the grid of maps the same shape for every network."""
    return [{"k": key, "c": c, "s": 0, "v": [0] * 64, "na": True} for c in classes]


ATTRIBUTION_LEGEND = dict(title=["attribution", "(÷ largest |value|)"], values=[-1, 0, 1], gradientLength=MAP_SIZE,
                          labelExpr="datum.value > 0 ? '+max' : datum.value < 0 ? '−max' : '0'")


def text_lines(chart: alt.Chart, lines: str, *, x: float = 0, y: float = 0, line_height: int = 15, **mark) -> alt.Chart:
    """Lines of text, one mark each (`lines`: an expression giving a list of strings). Vega draws a
    multi-line text as <tspan>s, which the page's contrast audit would take for the background."""
    return (
        chart.transform_calculate(line=lines)
        .transform_calculate(n="sequence(0, length(datum.line))")
        .transform_flatten(["line", "n"])
        .transform_calculate(ly=f"{y} + datum.n * {line_height}")
        .mark_text(**{"align": "left", "baseline": "top", "fontSize": charts.LABEL_SIZE, "color": charts.INK, **mark})
        .encode(text="line:N", x=alt.value(x), y=alt.Y("ly:Q", scale=None))
    )


def heatmap(*, size: int = MAP_SIZE, image: bool = False, legend: bool = True) -> alt.LayerChart:
    """An 8x8 map per record {k, s, v[64], na?}: signed attributions (diverging) or the input image.

    Each record's 64 values are flattened next to their pixel index (a zipped flatten, no window
    transform, so that changing a control re-numbers nothing). A record marked `na` is drawn as a
    grey square with a note. No data: facet or layer it with the data and filters it shows."""
    color_scale = alt.Scale(domain=[0, 1], range=[charts.ZERO, charts.INK]) if image else charts.diverging(1)
    cells = alt.Chart().mark_rect().encode(
        x=alt.X("col:O", axis=None),
        y=alt.Y("row:O", axis=None),
        color=alt.Color("norm:Q", scale=color_scale, title="pixel" if image else None,
                        legend=alt.Legend(**ATTRIBUTION_LEGEND) if legend and not image else None),
        tooltip=[alt.Tooltip("row:O"), alt.Tooltip("col:O"), alt.Tooltip("value:Q", format=".3g")],
    )
    note = text_lines(alt.Chart().transform_filter("datum.na && datum.p == 0"), f"{NO_CONV_NOTE}", x=size / 2, y=size / 2 - 13,
                      line_height=13, align="center", fontSize=charts.SMALL_SIZE, color=charts.MUTED)
    return (
        alt.layer(cells, note)
        .transform_calculate(p="sequence(64)")
        .transform_flatten(["v", "p"])
        .transform_calculate(row="floor(datum.p / 8)", col="datum.p % 8", norm=f"datum.v / {QUANT}",
                             value=f"datum.v / {QUANT} * datum.s")
        .properties(width=size, height=size)
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
    methods = methods_for(model)
    for method in METHOD_ORDER:
        if method not in methods:
            for payload in payloads:
                payload["maps"] += placeholder_records(method, classes)
            continue
        for key, options in method_options(method, sg_grid):
            if method == "integrated-gradients":
                baseline = options["baseline"]
                maps, used = integrated_gradients_refined(model, every, targets, baseline, IG_STEPS, IG_TOLERANCE, IG_OPTIONS["max_steps"])
                gaps = completeness_gap(model, every, targets, maps, baseline).view(n, 10)
                sums = maps.flatten(1).sum(1).view(n, 10)
                used = used.view(n, 10)
            else:
                maps = attribute(method, model, every, targets, **options)
            maps = maps.view(n, 10, 1, 8, 8)
            for d, payload in enumerate(payloads):
                payload["maps"] += map_records(key, classes, maps[d])
                if method == "integrated-gradients":
                    payload["gaps"] += [{"c": c, "b": baseline, "sum": sums[d, c].item(), "gap": gaps[d, c].item(),
                                         "steps": int(used[d, c])} for c in classes]
    with torch.no_grad():
        probs = model(images).softmax(-1).tolist()  # (n, 10)
    for payload, p in zip(payloads, probs):
        payload["probs"] = [{"c": c, "p": value} for c, value in enumerate(p)]
    return payloads


def panel_chart(panel: charts.Panel, sg_samples: tuple[int, ...], sg_noise: tuple[float, ...]) -> dict:
    target = panel.select("target", list(range(10)), label="Target class", value=3, group="Image")
    samples = panel.slider("sg_samples", list(sg_samples), label="SmoothGrad: noisy copies", value=SG_DEFAULT["n_samples"],
                           group="Method settings")
    noise = panel.slider("sg_noise", list(sg_noise), label="SmoothGrad: noise (std)", value=SG_DEFAULT["noise"],
                         group="Method settings")
    baseline = panel.select("ig_baseline", list(BASELINES), label="Integrated gradients: baseline", value="black",
                            radio=True, group="Method settings")
    maps = alt.Data(name="maps")
    shown = (
        f"datum.c == {target.name} && (datum.k == 'gradient' || datum.k == 'grad-cam' || datum.k == 'lrp'"
        f" || datum.k == 'occlusion' || datum.k == 'smoothgrad:' + {samples.name} + ':' + {noise.name}"
        f" || datum.k == 'integrated-gradients:' + {baseline.name})"
    )
    order = {key: i for i, key in enumerate(METHOD_ORDER)}
    labels = {name: m.label for name, m in METHODS.items()}
    methods = (
        heatmap()
        .facet(facet=alt.Facet("method:N", sort=alt.SortField("order"), title=None), columns=len(METHOD_ORDER), data=maps)
        .transform_filter(shown)
        .transform_calculate(method=f"{labels}[split(datum.k, ':')[0]]", order=f"{order}[split(datum.k, ':')[0]]")
    )
    digit = alt.layer(heatmap(image=True), data=maps).transform_filter("datum.k == 'input'").properties(title="Input")
    probs = (
        alt.Chart(alt.Data(name="probs"))
        .mark_bar()
        .encode(
            x=alt.X("c:O", title="class", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("p:Q", title="probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(values=[0, 0.5, 1])),
            color=alt.condition(f"datum.c == {target.name}", alt.value(charts.ACCENT), alt.value(charts.FAINT)),
            tooltip=[alt.Tooltip("c:O", title="class"), alt.Tooltip("p:Q", title="probability", format=".3f")],
        )
        .properties(width=220, height=MAP_SIZE, title="The model's prediction (red: the target class)")
    )
    readout = text_lines(
        alt.Chart(alt.Data(name="gaps")).transform_filter(f"datum.c == {target.name} && datum.b == {baseline.name}"),
        "['Integrated gradients from the ' + datum.b + ' baseline:',"
        " 'the map sums to ' + format(datum.sum, '.4~g') + '; completeness gap ' + format(datum.gap, '.3%'),"
        " '(' + datum.steps + ' integration steps)']",
    ).properties(width=330, height=46, view=alt.ViewBackground(stroke=None))
    chart = alt.vconcat(alt.hconcat(digit, probs), methods, readout).resolve_scale(color="independent")
    return panel.finish(chart)


@figure(
    "saliency-panel",
    title="Six saliency methods on one digit",
    caption=(
        "Each map explains the score of the chosen target class: red pixels raise it, blue pixels lower it, and "
        "every map is scaled to its own largest value (the legend). Pick a network, a digit and the target class, "
        "SmoothGrad's number of noisy copies and noise level, and the integrated-gradients baseline. Grad-CAM needs "
        "a convolution, so the MLP's Grad-CAM square stays empty. Seed 0 of each network."
    ),
    model=MODEL,
)
@on_one_thread
def saliency_panel(ctx: FigureContext) -> dict:
    images, labels = showcase_digits(ctx, per_class=2)
    images, labels = images[: ctx.pick(smoke=4, full=20)], labels[: ctx.pick(smoke=4, full=20)]
    sg_grid = ctx.pick(smoke=((1, SG_DEFAULT["n_samples"], 50), (SG_DEFAULT["noise"], 0.3)), full=(SG_SAMPLES, SG_NOISE))
    for arch in ARCHS:
        runs = [trained(arch, ctx, seed) for seed in SEEDS]
        claim_over_seeds(ctx, f"{arch}_val_accuracy", per_seed_of([run.history[-1]["val_accuracy"] for run in runs]))
        for i, payload in enumerate(panel_payloads(model_on_device(runs[0], ctx), images, labels, sg_grid)):
            ctx.asset(f"maps/{arch}-{i}.json", payload)
    ctx.claim("chance", CHANCE)
    ctx.claim("seeds", len(SEEDS))
    panel = charts.Panel()
    panel.data("arch", list(ARCHS), label="Network", labels=list(ARCHS.values()), default="cnn", group="Image")
    panel.data("digit", list(range(len(images))), label="Digit", labels=[f"#{i}: a {int(y)}" for i, y in enumerate(labels)],
               default=3, group="Image")
    panel.source("maps/{arch}-{digit}.json", datasets=["maps", "gaps", "probs"])
    return panel_chart(panel, *sg_grid)


# --------------------------------------------------------------------------- by hand vs autograd


@figure(
    "saliency-numpy",
    title="The gradient by hand equals autograd's",
    caption=(
        "First: the saliency map of the MLP computed in NumPy with the backward sweep written out (row of the output "
        "weights, ReLU mask, weight matrix, twice). Second: the same map from torch.autograd. Pick a digit and a "
        "target class; the text under the maps gives their largest difference."
    ),
    model="MLP 64-64-32-10 trained on scikit-learn digits by explorer/models/digits.py (healthy regime, seed 0)",
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
    panel = charts.Panel()
    digit = panel.slider("digit", list(range(len(images))), label="Digit", labels=[f"a {int(y)}" for y in labels], value=3)
    target = panel.select("target_class", list(range(10)), label="Target class", value=3)
    data = alt.Data(values=records)
    maps = (
        heatmap(size=150)
        .facet(facet=alt.Facet("k:N", title=None, sort=["NumPy, by hand", "torch.autograd"]), columns=2, data=data)
        .transform_filter(f"datum.d == {digit.name} && datum.c == {target.name}")
    )
    text = text_lines(
        alt.Chart(data).transform_filter(f"datum.d == {digit.name} && datum.c == {target.name} && datum.k == 'torch.autograd'"),
        f"['digit: a ' + {[int(y) for y in labels]}[datum.d] + ', target class ' + datum.c,"
        " 'largest |NumPy − autograd| = ' + format(datum.diff, '.1e')]",
    ).properties(width=300, height=32, view=alt.ViewBackground(stroke=None))
    return panel.finish(alt.vconcat(maps, text))


# --------------------------------------------------------------------------- completeness


@figure(
    "saliency-completeness",
    title="Integrated gradients add up to the change in score",
    caption=(
        "Completeness gap |sum of the map − (f(x) − f(baseline))| / |f(x) − f(baseline)| for the true class, against "
        "a fixed number of integration steps (Gauss-Legendre, Captum's default), over validation digits and three "
        "seeds of each network. Lines: the median; dots: the worst map. The dashed rule is the tolerance above which "
        "the library integrates again with twice the steps. Pick the network; hover for the values."
    ),
    model=MODEL,
)
@on_one_thread
def saliency_completeness(ctx: FigureContext) -> dict:
    images, labels = validation(ctx, ctx.pick(smoke=8, full=60))
    # At smoke scale the integration starts coarse, so that the refinement has maps to fix there too.
    start = ctx.pick(smoke=16, full=IG_STEPS)
    options = {**IG_OPTIONS, "n_steps": start}
    step_grid = ctx.pick(smoke=(start, IG_STEPS), full=(8, 16, 32, 64, 128, IG_STEPS))
    rows, fixed_worst, refined_worst, most_steps, refined, over, maps_total = [], 0.0, 0.0, 0, 0, 0, 0
    for arch in ARCHS:
        models = [model_on_device(trained(arch, ctx, seed), ctx) for seed in SEEDS]
        for baseline in BASELINES:
            medians = []
            for n_steps in step_grid:
                gaps = torch.cat([
                    completeness_gap(m, images, labels, attribute("integrated-gradients", m, images, labels, baseline=baseline,
                                                                  n_steps=n_steps, tolerance=None), baseline)
                    for m in models
                ])  # (seeds * images,)
                per_seed = gaps.view(len(models), -1).median(dim=1).values.tolist()
                for stat, value in (("median", gaps.median().item()), ("worst", gaps.max().item())):
                    rows.append({"arch": arch, "baseline": baseline, "stat": stat, "series": f"{baseline}, {stat}",
                                 "steps": n_steps, "gap": value, "seeds": per_seed if stat == "median" else None})
                if n_steps == IG_STEPS:
                    medians = per_seed
                if n_steps == start:
                    fixed_worst = max(fixed_worst, gaps.max().item())
            claim_over_seeds(ctx, f"{arch}_{baseline}_gap_median_pct", per_seed_of([100 * m for m in medians]))
            for m in models:
                maps, used = integrated_gradients_refined(m, images, labels, baseline, **options)
                gap = completeness_gap(m, images, labels, maps, baseline)
                refined_worst = max(refined_worst, gap.max().item())
                most_steps, refined = max(most_steps, int(used.max())), refined + int((used > start).sum())
                over += int((gap > IG_TOLERANCE).sum())
                maps_total += len(images)
    ctx.claim("steps", start)
    ctx.claim("max_steps", IG_OPTIONS["max_steps"])
    ctx.claim("fixed_max_gap_pct", 100 * fixed_worst)
    ctx.claim("max_gap_pct", 100 * refined_worst)
    ctx.claim("tolerance_pct", 100 * IG_TOLERANCE)
    ctx.claim("most_steps", most_steps)
    ctx.claim("refined_maps", refined)
    ctx.claim("over_tolerance_maps", over)
    ctx.claim("maps", maps_total)

    panel = charts.Panel()
    arch = panel.select("arch", list(ARCHS), label="Network", labels=list(ARCHS.values()))
    names = [f"{b}, {s}" for b in BASELINES for s in ("median", "worst")]
    base = alt.Chart(pd.DataFrame(rows)).transform_filter(f"datum.arch == {arch.name}")
    x = alt.X("steps:Q", scale=alt.Scale(type="log", base=2), title="integration steps", axis=alt.Axis(values=list(step_grid)))
    y = alt.Y("gap:Q", scale=alt.Scale(type="log", domain=[1e-5, 1]), title="completeness gap", axis=alt.Axis(format="%"))
    color = alt.Color("baseline:N", title="baseline", scale=charts.series_scale(list(BASELINES)))
    lines = base.transform_filter("datum.stat == 'median'").mark_line(point=True).encode(x=x, y=y, color=color)
    dots = base.transform_filter("datum.stat == 'worst'").mark_point(filled=False, size=50).encode(
        x=x, y=y, color=color, shape=alt.Shape("stat:N", title=None, legend=alt.Legend(labelExpr="'worst map'")))
    hover = charts.hover_rule(base, x="steps", series="series", y="gap", names=names, fmt=".3%", x_title="steps")
    rule = (
        alt.Chart(pd.DataFrame({"y": [IG_TOLERANCE], "label": [f"tolerance {100 * IG_TOLERANCE:g}%"]}))
        .mark_rule(strokeDash=[4, 4], color=charts.MUTED)
        .encode(y="y:Q")
    )
    rule_text = rule.mark_text(align="left", baseline="bottom", dx=4, dy=-3, color=charts.MUTED, fontSize=charts.SMALL_SIZE).encode(
        x=alt.value(0), y="y:Q", text="label:N")
    return panel.finish(alt.layer(lines, dots, rule, rule_text, hover).properties(width="container", height=260))


# --------------------------------------------------------------------------- deletion


@figure(
    "saliency-deletion",
    title="Deleting the pixels a map ranks highest",
    caption=(
        "The curves: probability of the true class, averaged over validation digits and three seeds, as the pixels a "
        "ranking puts first are set to black, 4 pixels (1/16 of the image) at a time. Two rankings ignore the model: "
        "a random order, and the brightest pixels first. Integrated gradients and LRP nearly coincide. The dots: the area under each curve (lower means the ranking "
        "found the pixels the prediction rests on); dots are the mean over seeds, bars the lowest and highest seed. "
        "Pick the network; click a legend entry to pick out one ranking."
    ),
    model=MODEL,
)
@on_one_thread
def saliency_deletion(ctx: FigureContext) -> alt.TopLevelMixin:
    images, labels = validation(ctx, ctx.pick(smoke=20, full=200))
    steps, draws = 16, ctx.pick(smoke=2, full=5)
    curve_rows, area_rows = [], []
    for arch in ARCHS:
        curves: dict[str, list[torch.Tensor]] = {}
        for seed in SEEDS:
            model = model_on_device(trained(arch, ctx, seed), ctx)
            generator = torch.Generator().manual_seed(seed)
            found = {
                "random": torch.stack([deletion_curve(model, images, labels, None, steps, generator) for _ in range(draws)]).mean(0),
                "brightness": torch.stack([deletion_curve(model, images, labels, brightness_map(images, generator), steps)
                                           for _ in range(draws)]).mean(0),
            }
            for method in methods_for(model):
                found[method] = deletion_curve(model, images, labels, attribute(method, model, images, labels, **default_options(method)), steps)
            for name, curve in found.items():
                curves.setdefault(name, []).append(curve)  # (images, steps + 1) per seed
        for name, per_seed in curves.items():
            areas = per_seed_of([curve_area(c).mean().item() for c in per_seed])
            claim_over_seeds(ctx, f"{arch}_area_{name}", areas)
            area_rows.append({**spread(areas), "arch": arch, "method": label_of(name)})
            mean_curve = torch.stack(per_seed).mean(dim=(0, 1))  # (steps + 1,)
            for k, p in enumerate(mean_curve.tolist()):
                curve_rows.append({"arch": arch, "method": label_of(name), "fraction": k / steps, "probability": p})

    panel = charts.Panel()
    arch = panel.select("arch", list(ARCHS), label="Network", labels=list(ARCHS.values()))
    pick = alt.selection_point(fields=["method"], bind="legend")
    dim = alt.condition(pick, alt.value(1.0), alt.value(0.15))
    base = alt.Chart(pd.DataFrame(curve_rows)).transform_filter(f"datum.arch == {arch.name}")
    lines = base.mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("fraction:Q", title="fraction of pixels removed", axis=alt.Axis(format="%")),
        y=alt.Y("probability:Q", title="probability of the true class", scale=alt.Scale(domain=[0, 1])),
        color=method_color(orient="right"),
        strokeDash=alt.condition(f"datum.method == '{RANDOM}' || datum.method == '{BRIGHTNESS}'", alt.value([5, 4]), alt.value([1, 0])),
        opacity=dim,
    )
    hover = charts.hover_rule(base, x="fraction", series="method", y="probability", names=LINE_NAMES, x_title="fraction removed",
                              x_format=".0%")
    curves_view = alt.layer(lines, hover).properties(width=370, height=280, title="Deletion curves")
    areas = (
        alt.Chart(pd.DataFrame(area_rows))
        .transform_filter(f"datum.arch == {arch.name}")
        .encode(y=alt.Y("method:N", sort=alt.SortField("mean"), title=None),
                color=method_color(), opacity=dim,
                tooltip=[alt.Tooltip("method:N", title="ranking"), alt.Tooltip("mean:Q", title="area, mean", format=".3f"),
                         alt.Tooltip("min:Q", title="lowest seed", format=".3f"), alt.Tooltip("max:Q", title="highest seed", format=".3f"),
                         alt.Tooltip("seeds:N", title="each seed")])
    )
    area_x = alt.X("mean:Q", title="area under the curve", scale=alt.Scale(domain=[0, 0.6]))
    # One selection per layer: Altair binds a layer's selections to every view of it that has one.
    area_view = alt.layer(
        areas.mark_rule(strokeWidth=2).encode(x=alt.X("min:Q", scale=alt.Scale(domain=[0, 0.6])), x2="max:Q"),
        areas.mark_point(filled=True, size=50).encode(x=area_x).add_params(pick),
    ).properties(width=230, height=200, title="Area (lower: a sharper ranking)")
    return panel.finish(alt.hconcat(curves_view, area_view))


def label_of(name: str) -> str:
    return {"random": RANDOM, "brightness": BRIGHTNESS}.get(name) or METHODS[name].label


# --------------------------------------------------------------------------- randomization


@figure(
    "saliency-sanity",
    title="Do the maps depend on the model? Cascading randomization",
    caption=(
        "Top: rank correlation (Spearman) between each method's map from the trained network and from copies whose "
        "layers are re-initialized one more at a time, from the output layer down; mean over validation digits, then "
        "over three seeds (bars: the lowest and highest seed). Three variants: absolute values over all pixels "
        "(Adebayo et al.'s default), absolute values over the digit's ink only (background pixels excluded), and signed "
        "values. Dashed: the same correlation with a second network trained from another seed, what two good models' "
        "maps share. Bottom: the maps of one digit along the way; pick the network and the method. A constant map "
        "counts as correlation 0."
    ),
    model=MODEL + "; randomized copies re-initialized with PyTorch's default init",
)
@on_one_thread
def saliency_sanity(ctx: FigureContext) -> dict:
    images, labels = validation(ctx, ctx.pick(smoke=8, full=50))
    rows, examples = [], []
    for arch, layers in RANDOMIZE_TOP_DOWN.items():
        models = [model_on_device(trained(arch, ctx, seed), ctx) for seed in SEEDS]
        found: dict[tuple, list[float]] = {}  # (method, variant, stage) -> per seed
        for s, model in enumerate(models):
            other = models[(s + 1) % len(models)]
            stages = [model] + [m.to(ctx.device) for _, m in cascading_randomization(model, layers)] + [other]
            for method in methods_for(model):
                options = default_options(method)
                reference = attribute(method, model, images, labels, **options)
                for stage, m in enumerate(stages):
                    maps = reference if stage == 0 else attribute(method, m, images, labels, **options)
                    for variant in CORRELATIONS:
                        found.setdefault((method, variant, stage), []).append(float(map_correlation(variant, reference, maps, images).mean()))
                    if s == 0:
                        examples += [{**r, "arch": arch, "method": METHODS[method].label, "stage": stage}
                                     for r in map_records(STAGES[stage], [int(labels[0])], maps[:1])]
        for (method, variant, stage), values in found.items():
            if stage == len(STAGES) - 1:
                key = f"{arch}_{method}_{variant}_rho_other_seed"
            elif stage == len(STAGES) - 2:
                key = f"{arch}_{method}_{variant}_rho_randomized"
            else:
                key = None
            if key:
                claim_over_seeds(ctx, key, per_seed_of(values))
            rows.append({**spread(per_seed_of(values)), "arch": arch, "method": METHODS[method].label,
                         "variant": CORRELATIONS[variant][0], "stage": stage, "other": stage == len(STAGES) - 1})
        if arch == "mlp":  # the MLP has no Grad-CAM: an empty cell keeps the grid the same for both networks
            rows.append({"arch": arch, "method": METHODS["grad-cam"].label, "na": True, "stage": 0})
            examples += [{**r, "arch": arch, "method": METHODS["grad-cam"].label, "stage": stage}
                         for stage in range(len(STAGES)) for r in placeholder_records(STAGES[stage], [int(labels[0])])]

    panel = charts.Panel()
    arch = panel.select("arch", list(ARCHS), label="Network", labels=list(ARCHS.values()))
    method = panel.select("method", [METHODS[m].label for m in METHOD_ORDER], label="Method (maps below)")
    variants = [label for label, _, _ in CORRELATIONS.values()]
    variant_color = alt.Color("variant:N", title="correlation of", scale=charts.series_scale(variants),
                              legend=alt.Legend(orient="bottom", direction="vertical"))
    stage_x = alt.X("xs:Q", title="layers re-initialized", scale=alt.Scale(domain=[-0.3, 3.3], nice=False),
                    axis=alt.Axis(values=[0, 1, 2, 3], format="d"))
    y = alt.Y("mean:Q", title="Spearman ρ with trained", scale=alt.Scale(domain=[-0.3, 1]))
    tooltip = [alt.Tooltip("method:N"), alt.Tooltip("variant:N", title="correlation of"), alt.Tooltip("stage:Q", title="layers re-initialized"),
               alt.Tooltip("mean:Q", title="ρ, mean over seeds", format=".3f"), alt.Tooltip("min:Q", title="lowest seed", format=".3f"),
               alt.Tooltip("max:Q", title="highest seed", format=".3f")]
    offsets = {label: 0.1 * (i - 1) for i, label in enumerate(variants)}  # side by side, so no point hides another
    cascade = alt.Chart().transform_filter("!datum.na && !datum.other").transform_calculate(xs=f"datum.stage + {offsets}[datum.variant]")
    cell = alt.layer(
        cascade.mark_line().encode(x=stage_x, y=y, color=variant_color),
        cascade.mark_rule().encode(x=stage_x, y="min:Q", y2="max:Q", color=variant_color),
        cascade.mark_point(filled=True, size=30).encode(x=stage_x, y=y, color=variant_color, tooltip=tooltip),
        alt.Chart().transform_filter("datum.other").mark_rule(strokeDash=[4, 3]).encode(y="mean:Q", color=variant_color, tooltip=tooltip),
        text_lines(alt.Chart().transform_filter("datum.na"), f"{NO_CONV_NOTE}", x=80, y=47, line_height=13, align="center",
                   fontSize=charts.SMALL_SIZE, color=charts.MUTED),
    ).properties(width=160, height=120)
    curves = (
        cell.facet(facet=alt.Facet("method:N", title=None, sort=[METHODS[m].label for m in METHOD_ORDER]), columns=3,
                   data=pd.DataFrame(rows))
        .transform_filter(f"datum.arch == {arch.name}")
    )
    maps = (
        heatmap()
        .facet(facet=alt.Facet("stage:O", title=None, header=alt.Header(labelExpr=f"{STAGES}[datum.value]")),
               columns=len(STAGES), data=alt.Data(values=examples))
        .transform_filter(f"datum.arch == {arch.name} && datum.method == {method.name}")
    )
    return panel.finish(alt.vconcat(curves, maps).resolve_scale(color="independent"))
