"""Loss landscapes: optimizers on four didactic surfaces, then a slice through a trained digits MLP."""

import math

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call

from explorer import charts
from explorer.jsonio import significant
from explorer.models.digits import load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.ensemble import MIN_SEEDS, claim_over_seeds, spread
from explorer.techniques.landscape import (
    RAVINE_CURVATURES,
    SURFACES,
    center_margin,
    filter_normalized_direction,
    loss_slice,
    project_onto_plane,
    run_optimizer,
    surface_grid,
    surface_minimum,
    trajectory_pca_directions,
)

SEEDS = tuple(range(MIN_SEEDS))  # three trained networks for every number the page quotes


def per_seed_of(values) -> dict[int, float]:
    """{seed: value} from values listed in SEEDS order (what explorer.ensemble records)."""
    return dict(zip(SEEDS, (float(v) for v in values), strict=True))

STEPS = 100  # optimizer steps on the 2-D surfaces
LRS = (0.03, 0.1, 0.3)
MOMENTA = (0.0, 0.5, 0.9)
DEFAULT_LR, DEFAULT_MOMENTUM = 0.1, 0.9
GAP_FLOOR = 1e-6  # "loss above the minimum" is drawn on a log scale; exact zeros sit on this floor
HEAT_CELLS = 41
OPTIMIZER_LABELS = {"sgd": "SGD", "adam": "Adam"}


def surface_runs(name: str, start: str, lrs, momenta) -> dict:
    """Everything one (surface, start) choice draws: the heat map and every optimizer's path."""
    surface = SURFACES[name]
    minimum, _ = surface_minimum(surface)
    xs, ys, loss = surface_grid(surface, HEAT_CELLS)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    heat = [{"x": x, "y": y, "g": g} for x, y, g in zip(significant(gx.ravel()), significant(gy.ravel()), significant(np.maximum(loss.ravel() - minimum, GAP_FLOOR)))]
    paths = []
    for optimizer in OPTIMIZER_LABELS:
        for lr in lrs:
            for momentum in momenta:
                run = run_optimizer(surface, optimizer, lr, momentum, surface.starts[start], STEPS)
                paths.append({
                    "o": optimizer, "r": lr, "m": momentum,
                    "t": list(range(len(run))), "x": significant(run[:, 0]), "y": significant(run[:, 1]),
                    "g": significant(np.maximum(run[:, 2] - minimum, GAP_FLOOR)),
                })  # fmt: skip
    return {"heat": heat, "path": paths, "start": [dict(zip("xy", surface.starts[start]))]}


def final_gap(runs: dict, optimizer: str, lr: float, momentum: float) -> float:
    run = next(p for p in runs["path"] if (p["o"], p["r"], p["m"]) == (optimizer, lr, momentum))
    return run["g"][-1] if len(run["t"]) == STEPS + 1 else float("inf")


def escape_step(runs: dict, optimizer: str, momentum: float) -> int:
    """First step with |theta_2| > 0.5: off the saddle's ridge, half way to a minimum at theta_2 = +-1 (-1: never)."""
    run = next(p for p in runs["path"] if (p["o"], p["r"], p["m"]) == (optimizer, DEFAULT_LR, momentum))
    return next((t for t, y in zip(run["t"], run["y"]) if abs(y) > 0.5), -1)


@figure(
    "landscapes-optimizers",
    title="Three optimizers on four loss surfaces",
    caption=(
        "Didactic surfaces: each is a hand-written function of two parameters, not a trained model. "
        f"The paths are real: torch.optim.SGD and torch.optim.Adam run for {STEPS} steps on the two parameters. "
        "Colour: loss above the surface's global minimum (log scale). Pick the surface and start, the optimizer, "
        "learning rate and momentum (SGD's momentum or Adam's beta1), and slide or play the step; the second chart "
        "compares SGD and Adam with the same settings."
    ),
    model="Analytic two-parameter surfaces (explorer/techniques/landscape.py); torch.optim SGD and Adam",
)
def optimizers(ctx: FigureContext) -> alt.Chart:
    lrs = LRS  # cheap at every scale (a few hundred steps on two parameters); the try links name them all
    momenta = MOMENTA
    runs = {}
    for name, surface in SURFACES.items():
        for start in surface.starts:
            runs[name, start] = surface_runs(name, start, lrs, momenta)
            ctx.asset(f"runs/{name}-{start}.json", runs[name, start])

    ravine = runs["ravine", "A"]
    ctx.claim("ravine_sgd_gap", final_gap(ravine, "sgd", DEFAULT_LR, 0.0))
    ctx.claim("ravine_momentum_gap", final_gap(ravine, "sgd", DEFAULT_LR, DEFAULT_MOMENTUM))
    ctx.claim("ravine_adam_gap", final_gap(ravine, "adam", DEFAULT_LR, DEFAULT_MOMENTUM))
    ravine_start = SURFACES["ravine"].starts["A"]
    blown = run_optimizer(SURFACES["ravine"], "sgd", max(LRS), 0.0, ravine_start, STEPS)
    ctx.claim("ravine_sgd_big_lr", max(LRS))
    ctx.claim("ravine_sgd_big_lr_diverged_at", len(blown) - 1 if len(blown) <= STEPS else -1)
    for name, optimizer in (("momentum", "sgd"), ("adam", "adam")):
        run = run_optimizer(SURFACES["ravine"], optimizer, max(LRS), DEFAULT_MOMENTUM, ravine_start, STEPS)
        ctx.claim(f"ravine_big_lr_{name}_gap", run[-1, 2] if len(run) == STEPS + 1 else float("inf"))
    short_memory = run_optimizer(SURFACES["ravine"], "adam", DEFAULT_LR, DEFAULT_MOMENTUM, ravine_start, STEPS, beta2=0.9)
    ctx.claim("ravine_adam_beta2_09_gap", short_memory[-1, 2])  # the ravine's minimum is 0
    ctx.claim("ravine_condition", RAVINE_CURVATURES[1] / RAVINE_CURVATURES[0])
    ctx.claim("steps", STEPS)
    ctx.claim("default_lr", DEFAULT_LR)
    ctx.claim("default_momentum", DEFAULT_MOMENTUM)
    saddle = runs["saddle", "A"]
    ctx.claim("saddle_escape_sgd", escape_step(saddle, "sgd", 0.0))
    ctx.claim("saddle_escape_momentum", escape_step(saddle, "sgd", DEFAULT_MOMENTUM))
    ctx.claim("saddle_escape_adam", escape_step(saddle, "adam", DEFAULT_MOMENTUM))
    for start in SURFACES["wells"].starts:
        ctx.claim(f"wells_{start}_sgd_gap", final_gap(runs["wells", start], "sgd", DEFAULT_LR, 0.0))
        ctx.claim(f"wells_{start}_momentum_gap", final_gap(runs["wells", start], "sgd", DEFAULT_LR, DEFAULT_MOMENTUM))

    extent = max(s.extent for s in SURFACES.values())
    half_cell = extent / (HEAT_CELLS - 1)
    overlap = 1.04 * half_cell  # cells overlap a little: no hairline seams between rounded rectangles
    axis = alt.Scale(domain=[-extent - half_cell, extent + half_cell], nice=False)
    no_grid = alt.Axis(grid=False)  # grid lines would show through the heat map
    xy = {"x": alt.X("x:Q", scale=axis, axis=no_grid), "y": alt.Y("y:Q", scale=axis, axis=no_grid)}
    gap_scale = alt.Scale(type="log", domain=[GAP_FLOOR, 100], clamp=True)

    panel = charts.Panel()
    starts = SURFACES["ravine"].starts
    panel.data("surface", list(SURFACES), label="Surface", labels=[s.label for s in SURFACES.values()], default="ravine", group="Surface")
    panel.data("start", list(starts), label="Start", labels=[f"start {k}" for k in starts], default="A", group="Surface")
    panel.source("runs/{surface}-{start}.json", datasets=["heat", "path", "start"])
    opt = panel.select("optimizer", list(OPTIMIZER_LABELS), label="Optimizer", labels=list(OPTIMIZER_LABELS.values()), radio=True, group="Optimizer")
    lr = panel.select("lr", list(lrs), label="Learning rate", value=DEFAULT_LR, radio=True, group="Optimizer")
    momentum = panel.select("momentum", list(momenta), label="Momentum / Adam β1", value=DEFAULT_MOMENTUM, radio=True, group="Optimizer")
    step = panel.steps("step", list(range(STEPS + 1)), label="Optimizer step", group="Optimizer")

    flat = alt.Chart(alt.Data(name="path")).transform_flatten(["t", "x", "y", "g"])
    chosen = flat.transform_filter(f"datum.o == {opt.name} && datum.r == {lr.name} && datum.m == {momentum.name}")
    heat = (
        alt.Chart(alt.Data(name="heat"))
        .transform_calculate(x0=f"datum.x - {overlap}", x1=f"datum.x + {overlap}", y0=f"datum.y - {overlap}", y1=f"datum.y + {overlap}")
        .mark_rect()
        .encode(
            x=alt.X("x0:Q", scale=axis, title="θ₁", axis=no_grid),
            x2="x1:Q",
            y=alt.Y("y0:Q", scale=axis, title="θ₂", axis=no_grid),
            y2="y1:Q",
            color=alt.Color("g:Q", scale=log_sequential(GAP_FLOOR, 100), title="loss − min",
                            legend=alt.Legend(values=[1e-6, 1e-4, 1e-2, 1, 100], format=".0e")),
            tooltip=[alt.Tooltip("x:Q", title="θ₁"), alt.Tooltip("y:Q", title="θ₂"), alt.Tooltip("g:Q", title="loss − min", format=".3g")],
        )
    )
    walked = chosen.transform_filter(f"datum.t <= {step.name}")
    path = walked.mark_line(color=charts.ACCENT, strokeWidth=1.5, clip=True).encode(**xy, order="t:Q")
    dots = walked.mark_circle(color=charts.ACCENT, size=12, clip=True).encode(**xy)
    ball = (
        chosen.transform_filter(f"datum.t == {step.name}")
        .mark_circle(color=charts.ACCENT, size=110, stroke=charts.PAPER, strokeWidth=1.5, clip=True, opacity=1)
        .encode(
            **xy,
            tooltip=[alt.Tooltip("t:Q", title="step"), alt.Tooltip("x:Q", title="θ₁"), alt.Tooltip("y:Q", title="θ₂"), alt.Tooltip("g:Q", title="loss − min", format=".3g")],
        )
    )  # fmt: skip
    start = alt.Chart(alt.Data(name="start")).mark_point(shape="diamond", color=charts.ACCENT_2, stroke=charts.PAPER, size=90, filled=True, opacity=1).encode(**xy)
    plane = alt.layer(heat, path, dots, ball, start).properties(width=280, height=280, title="Parameters (θ₁, θ₂)")

    both = flat.transform_filter(f"datum.r == {lr.name} && datum.m == {momentum.name}").transform_calculate(name="datum.o == 'sgd' ? 'SGD' : 'Adam'")
    curves = both.mark_line(clip=True).encode(
        x=alt.X("t:Q", title="step", scale=alt.Scale(domain=[0, STEPS])),
        y=alt.Y("g:Q", scale=gap_scale, title="loss − min (log)", axis=alt.Axis(format=".0e")),
        color=alt.Color("name:N", title=None, scale=charts.series_scale(["SGD", "Adam"]), legend=alt.Legend(orient="top-right")),
        opacity=alt.condition(f"datum.o == {opt.name}", alt.value(1.0), alt.value(0.45)),
        strokeWidth=alt.condition(f"datum.o == {opt.name}", alt.value(2.5), alt.value(1.2)),
    )
    hover = charts.hover_rule(both, x="t", series="name", y="g", names=["SGD", "Adam"], x_title="step")
    curve_view = alt.layer(curves, hover, charts.now_rule(step)).properties(width=230, height=280, title="Loss above the minimum")
    return panel.finish(alt.hconcat(plane, curve_view).resolve_scale(color="independent"))


def log_sequential(lo: float, hi: float) -> alt.Scale:
    """The palette's one-hue scale on a log axis (its midpoint is the geometric mean)."""
    return alt.Scale(type="log", domain=[lo, math.sqrt(lo * hi), hi], range=list(charts.SEQUENTIAL), interpolate="hcl", clamp=True)


# --------------------------------------------------------------------------- a real network


@figure(
    "landscapes-digits-slice",
    title="A slice through the loss of a trained digits MLP",
    caption=(
        "Training cross-entropy of the digits MLP on a plane through its trained weights (the centre). "
        "Random plane: two random directions, filter-normalized (each neuron's slice rescaled to that neuron's weight norm; "
        "biases not moved), as in Li et al. 2018. PCA plane: the top two principal directions of the weights' path "
        "over training. Red: the training trajectory (its checkpoints) projected onto the plane, drawn up to the chosen step; "
        "slide or play it. Seed 0; the page quotes three seeds."
    ),
    model="MLP 64-64-32-10 (ReLU) trained on scikit-learn digits by explorer/models/digits.py (healthy regime, Adam, seeds 0-2)",
)
def digits_slice(ctx: FigureContext) -> alt.TopLevelMixin:
    steps = ctx.pick(smoke=100, full=2000)
    grid = ctx.pick(smoke=9, full=31)  # points per side of the slice (odd: the trained weights are the centre cell)
    found: dict[str, list[float]] = {}
    for seed in SEEDS:  # the figure draws seed 0; the claims are over every seed
        heat_rows, path_rows, cell, numbers, trained = slice_of_seed(ctx, seed, steps, grid)
        for key, value in numbers.items():
            found.setdefault(key, []).append(value)
        if seed == SEEDS[0]:
            shown = heat_rows, path_rows, cell, trained
    for key, values in found.items():
        claim_over_seeds(ctx, key, per_seed_of(values))
    heat_rows, path_rows, cell, trained = shown
    ctx.claim("train_steps", steps)
    ctx.claim("parameters", sum(p.numel() for p in trained.model.parameters()))
    ctx.claim("grid", grid)
    ctx.claim("checkpoint_every", trained.steps[1])
    ctx.claim("seeds", len(SEEDS))

    panel = charts.Panel()
    plane = panel.select("plane", ["random", "pca"], label="Plane", labels=["random, filter-normalized", "PCA of the trajectory"], radio=True)
    upto = panel.steps("upto", trained.steps, label="Training step (path drawn up to)")
    no_grid = alt.Axis(grid=False)  # grid lines would show through the heat map
    half_a = f"(datum.p == 'random' ? {cell['random'][0]:.6g} : {cell['pca'][0]:.6g})"
    half_b = f"(datum.p == 'random' ? {cell['random'][1]:.6g} : {cell['pca'][1]:.6g})"
    lo, hi = min(r["loss"] for r in heat_rows), max(r["loss"] for r in heat_rows)
    heat = (
        alt.Chart(pd.DataFrame(heat_rows))
        .transform_filter(f"datum.p == {plane.name}")
        .transform_calculate(a0=f"datum.a - {half_a}", a1=f"datum.a + {half_a}", b0=f"datum.b - {half_b}", b1=f"datum.b + {half_b}")
        .mark_rect()
        .encode(
            x=alt.X("a0:Q", title="α (first direction)", scale=alt.Scale(nice=False, zero=False), axis=no_grid),
            x2="a1:Q",
            y=alt.Y("b0:Q", title="β (second direction)", scale=alt.Scale(nice=False, zero=False), axis=no_grid),
            y2="b1:Q",
            color=alt.Color("loss:Q", scale=log_sequential(lo, hi), title="train loss", legend=alt.Legend(format=".0e")),
            tooltip=[alt.Tooltip("a:Q", title="α"), alt.Tooltip("b:Q", title="β"), alt.Tooltip("loss:Q", format=".3g")],
        )
    )
    walk = alt.Chart(pd.DataFrame(path_rows)).transform_filter(f"datum.p == {plane.name} && datum.step <= {upto.name}")
    a_axis, b_axis = alt.X("a:Q", axis=no_grid), alt.Y("b:Q", axis=no_grid)
    line = walk.mark_line(color=charts.ACCENT, strokeWidth=2).encode(x=a_axis, y=b_axis, order="step:Q")
    dots = walk.mark_circle(color=charts.ACCENT, size=28, opacity=1).encode(
        x=a_axis, y=b_axis, tooltip=[alt.Tooltip("step:Q"), alt.Tooltip("loss:Q", title="train loss", format=".3g")]
    )
    now = walk.transform_filter(f"datum.step == {upto.name}").mark_circle(color=charts.ACCENT, size=110, stroke=charts.PAPER,
                                                                          strokeWidth=1.5, opacity=1).encode(x=a_axis, y=b_axis)
    trained_point = alt.Chart(alt.Data(values=[{"a": 0, "b": 0, "what": "trained weights"}])).mark_point(
        shape="cross", color=charts.INK, size=160, strokeWidth=3).encode(x=a_axis, y=b_axis, tooltip=alt.Tooltip("what:N", title=""))
    chart = alt.layer(heat, line, dots, now, trained_point).properties(width="container", height=420)
    return panel.finish(chart)


def slice_of_seed(ctx: FigureContext, seed: int, steps: int, grid: int):
    """The two slices of one seed's network: heat and path rows, the half cell sizes, and the numbers the page quotes."""
    trained = train_digits("mlp", "healthy", steps=steps, seed=seed, checkpoints=ctx.pick(smoke=4, full=40))
    model = trained.model.to(ctx.device)
    x_train, y_train, _, _ = load_digits_split().tensors(ctx.device)
    path = [{k: v.to(ctx.device) for k, v in state.items()} for _, state in trained.checkpoints]
    center = {name: p.detach() for name, p in model.named_parameters()}

    generator = torch.Generator().manual_seed(seed)
    random_plane = (filter_normalized_direction(model, generator), filter_normalized_direction(model, generator))
    pca_1, pca_2, variance = trajectory_pca_directions(path, center)
    planes = {"random": random_plane, "pca": (pca_1, pca_2)}

    with torch.no_grad():  # the real training loss at each checkpoint, whatever the plane
        path_losses = [F.cross_entropy(functional_call(model, weights, (x_train,)), y_train).item() for weights in path]

    heat_rows, path_rows, cell, numbers = [], [], {}, {}
    for plane, directions in planes.items():
        coords = np.array([project_onto_plane(p, center, directions) for p in path])  # (checkpoints, 2)
        if plane == "random":
            lo_a, hi_a, lo_b, hi_b = -1.0, 1.0, -1.0, 1.0
        else:  # cover the whole trajectory, with a margin
            pad = 0.15 * np.ptp(coords, axis=0).max()
            (lo_a, lo_b), (hi_a, hi_b) = coords.min(0) - pad, coords.max(0) + pad
        alphas, betas = torch.linspace(lo_a, hi_a, grid), torch.linspace(lo_b, hi_b, grid)
        losses = loss_slice(model, directions, alphas, betas, x_train, y_train)  # (n_beta, n_alpha)
        cell[plane] = (1.04 * (hi_a - lo_a) / (len(alphas) - 1) / 2, 1.04 * (hi_b - lo_b) / (len(betas) - 1) / 2)  # a little overlap: no seams
        for i, b in enumerate(significant(betas)):
            for j, a in enumerate(significant(alphas)):
                heat_rows.append({"p": plane, "a": a, "b": b, "loss": float(f"{losses[i, j]:.3g}")})
        for step, (a, b), loss in zip(trained.steps, coords, path_losses):
            path_rows.append({"p": plane, "step": step, "a": float(f"{a:.3g}"), "b": float(f"{b:.3g}"), "loss": float(f"{loss:.3g}")})
        if plane == "random":
            numbers["center_loss"] = float(losses[len(betas) // 2, len(alphas) // 2])
            numbers["random_center_margin"] = center_margin(losses)
            numbers["random_max_loss"] = float(losses.max())
        else:
            numbers["pca_min_loss"] = float(losses.min())
        init_a, init_b = coords[0]
        offset = torch.cat([(path[0][k] - center[k]).reshape(-1) for k in center])
        captured = torch.cat([(init_a * directions[0][k] + init_b * directions[1][k]).reshape(-1) for k in center])
        numbers[f"{plane}_init_captured"] = float(captured.norm() / offset.norm())
    numbers["pca_variance"] = float(variance.sum())
    numbers["val_accuracy"] = trained.history[-1]["val_accuracy"]
    return heat_rows, path_rows, cell, numbers, trained
