"""Loss landscapes: optimizers on four didactic surfaces, then a slice through a trained digits MLP."""

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call

from explorer.jsonio import significant
from explorer.models.digits import load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
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
        "Colour: loss above the surface's global minimum (log scale). Pick the surface and start above the plot, "
        "the optimizer, learning rate and momentum (SGD's momentum or Adam's beta1) below it, and scrub the step."
    ),
    model="Analytic two-parameter surfaces (explorer/techniques/landscape.py); torch.optim SGD and Adam",
)
def optimizers(ctx: FigureContext) -> alt.Chart:
    lrs = ctx.pick(smoke=(DEFAULT_LR,), full=LRS)
    momenta = ctx.pick(smoke=(0.0, DEFAULT_MOMENTUM), full=MOMENTA)
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
    opt = alt.param(name="optimizer", value="sgd", bind=alt.binding_select(options=list(OPTIMIZER_LABELS), labels=list(OPTIMIZER_LABELS.values()), name="Optimizer "))
    lr = alt.param(name="lr", value=DEFAULT_LR, bind=alt.binding_select(options=list(lrs), name="Learning rate "))
    momentum = alt.param(name="momentum", value=DEFAULT_MOMENTUM, bind=alt.binding_select(options=list(momenta), name="Momentum / Adam β1 "))
    step = alt.param(name="step", value=STEPS, bind=alt.binding_range(min=0, max=STEPS, step=1, name="Step "))

    flat = alt.Chart(alt.Data(name="path")).transform_flatten(["t", "x", "y", "g"])
    chosen = flat.transform_filter("datum.o == optimizer && datum.r == lr && datum.m == momentum")
    heat = (
        alt.Chart(alt.Data(name="heat"))
        .transform_calculate(x0=f"datum.x - {overlap}", x1=f"datum.x + {overlap}", y0=f"datum.y - {overlap}", y1=f"datum.y + {overlap}")
        .mark_rect()
        .encode(
            x=alt.X("x0:Q", scale=axis, title="θ₁", axis=no_grid),
            x2="x1:Q",
            y=alt.Y("y0:Q", scale=axis, title="θ₂", axis=no_grid),
            y2="y1:Q",
            color=alt.Color("g:Q", scale=alt.Scale(type="log", scheme="viridis"), title="loss − min"),
            tooltip=[alt.Tooltip("x:Q", title="θ₁"), alt.Tooltip("y:Q", title="θ₂"), alt.Tooltip("g:Q", title="loss − min", format=".3g")],
        )
    )
    walked = chosen.transform_filter("datum.t <= step")
    path = walked.mark_line(color="white", strokeWidth=1.5, clip=True).encode(**xy, order="t:Q")
    dots = walked.mark_circle(color="white", size=12, clip=True).encode(**xy)
    ball = (
        chosen.transform_filter("datum.t == step")
        .mark_circle(color="#ff5a36", size=110, stroke="white", strokeWidth=1.5, clip=True)
        .encode(
            **xy,
            tooltip=[alt.Tooltip("t:Q", title="step"), alt.Tooltip("x:Q", title="θ₁"), alt.Tooltip("y:Q", title="θ₂"), alt.Tooltip("g:Q", title="loss − min", format=".3g")],
        )
    )  # fmt: skip
    start = alt.Chart(alt.Data(name="start")).mark_point(shape="diamond", color="white", size=90, filled=True).encode(**xy)
    plane = alt.layer(heat, path, dots, ball, start).properties(width=280, height=280, title="Parameters (θ₁, θ₂)")

    both = flat.transform_filter("datum.r == lr && datum.m == momentum").transform_calculate(name="datum.o == 'sgd' ? 'SGD' : 'Adam'")
    curves = both.mark_line(clip=True).encode(
        x=alt.X("t:Q", title="step", scale=alt.Scale(domain=[0, STEPS])),
        y=alt.Y("g:Q", scale=gap_scale, title="loss − min (log)"),
        color=alt.Color("name:N", title=None, scale=alt.Scale(domain=["SGD", "Adam"], range=["#1f77b4", "#ff7f0e"]), legend=alt.Legend(orient="top-right")),
        opacity=alt.condition("datum.o == optimizer", alt.value(1.0), alt.value(0.35)),
        strokeWidth=alt.condition("datum.o == optimizer", alt.value(2.5), alt.value(1.2)),
    )
    now = alt.Chart(alt.Data(values=[{}])).mark_rule(color="#ff5a36").encode(x=alt.datum(alt.expr("step"), type="quantitative"))
    curve_view = alt.layer(curves, now).properties(width=230, height=280, title="Loss above the minimum")

    chart = alt.hconcat(plane, curve_view).add_params(opt, lr, momentum, step).resolve_scale(color="independent")
    starts = SURFACES["ravine"].starts
    return chart.properties(usermeta={"explorer": {
        "controls": [
            {"name": "surface", "label": "Surface", "options": list(SURFACES), "labels": [s.label for s in SURFACES.values()], "default": "ravine"},
            {"name": "start", "label": "Start", "options": list(starts), "labels": [f"start {k}" for k in starts], "default": "A"},
        ],
        "source": {"url": "runs/{surface}-{start}.json", "datasets": ["heat", "path", "start"]},
    }})  # fmt: skip


# --------------------------------------------------------------------------- a real network


@figure(
    "landscapes-digits-slice",
    title="A slice through the loss of a trained digits MLP",
    caption=(
        "Training cross-entropy of the digits MLP on a plane through its trained weights (the centre). "
        "Random plane: two random directions, filter-normalized (each neuron's slice rescaled to that neuron's weight norm; "
        "biases not moved), as in Li et al. 2018. PCA plane: the top two principal directions of the weights' path "
        "over training. White: the training trajectory (its checkpoints) projected onto the plane; scrub the step."
    ),
    model="MLP 64-64-32-10 (ReLU) trained on scikit-learn digits by explorer/models/digits.py (healthy regime, Adam)",
)
def digits_slice(ctx: FigureContext) -> alt.Chart:
    steps = ctx.pick(smoke=100, full=2000)
    grid = ctx.pick(smoke=9, full=31)  # points per side of the slice (odd: the trained weights are the centre cell)
    trained = train_digits("mlp", "healthy", steps=steps, seed=0, checkpoints=ctx.pick(smoke=4, full=40))
    model = trained.model.to(ctx.device)
    x_train, y_train, _, _ = load_digits_split().tensors(ctx.device)
    path = [{k: v.to(ctx.device) for k, v in state.items()} for _, state in trained.checkpoints]
    center = {name: p.detach() for name, p in model.named_parameters()}

    generator = torch.Generator().manual_seed(ctx.seed)
    random_plane = (filter_normalized_direction(model, generator), filter_normalized_direction(model, generator))
    pca_1, pca_2, variance = trajectory_pca_directions(path, center)
    planes = {"random": random_plane, "pca": (pca_1, pca_2)}

    with torch.no_grad():  # the real training loss at each checkpoint, whatever the plane
        path_losses = [F.cross_entropy(functional_call(model, weights, (x_train,)), y_train).item() for weights in path]

    heat_rows, path_rows, cell = [], [], {}
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
            ctx.claim("center_loss", float(losses[len(betas) // 2, len(alphas) // 2]))
            ctx.claim("random_center_margin", center_margin(losses))
            ctx.claim("random_max_loss", float(losses.max()))
        else:
            ctx.claim("pca_min_loss", float(losses.min()))
        init_a, init_b = coords[0]
        offset = torch.cat([(path[0][k] - center[k]).reshape(-1) for k in center])
        captured = torch.cat([(init_a * directions[0][k] + init_b * directions[1][k]).reshape(-1) for k in center])
        ctx.claim(f"{plane}_init_captured", float(captured.norm() / offset.norm()))
    ctx.claim("pca_variance", float(variance.sum()))
    ctx.claim("val_accuracy", trained.history[-1]["val_accuracy"])
    ctx.claim("train_steps", steps)
    ctx.claim("parameters", sum(p.numel() for p in center.values()))
    ctx.claim("grid", grid)
    ctx.claim("checkpoint_every", trained.steps[1])

    plane_param = alt.param(name="plane", value="random", bind=alt.binding_select(options=["random", "pca"], labels=["random, filter-normalized", "PCA of the trajectory"], name="Plane "))
    step_param = alt.param(name="upto", value=steps, bind=alt.binding_range(min=0, max=steps, step=trained.steps[1], name="Training step "))
    no_grid = alt.Axis(grid=False)  # grid lines would show through the heat map
    half_a = f"(datum.p == 'random' ? {cell['random'][0]:.6g} : {cell['pca'][0]:.6g})"
    half_b = f"(datum.p == 'random' ? {cell['random'][1]:.6g} : {cell['pca'][1]:.6g})"
    heat = (
        alt.Chart(pd.DataFrame(heat_rows))
        .transform_filter("datum.p == plane")
        .transform_calculate(a0=f"datum.a - {half_a}", a1=f"datum.a + {half_a}", b0=f"datum.b - {half_b}", b1=f"datum.b + {half_b}")
        .mark_rect()
        .encode(
            x=alt.X("a0:Q", title="α (first direction)", scale=alt.Scale(nice=False, zero=False), axis=no_grid),
            x2="a1:Q",
            y=alt.Y("b0:Q", title="β (second direction)", scale=alt.Scale(nice=False, zero=False), axis=no_grid),
            y2="b1:Q",
            color=alt.Color("loss:Q", scale=alt.Scale(type="log", scheme="viridis"), title="train loss"),
            tooltip=[alt.Tooltip("a:Q", title="α"), alt.Tooltip("b:Q", title="β"), alt.Tooltip("loss:Q", format=".3g")],
        )
    )
    walk = alt.Chart(pd.DataFrame(path_rows)).transform_filter("datum.p == plane && datum.step <= upto")
    a_axis, b_axis = alt.X("a:Q", axis=no_grid), alt.Y("b:Q", axis=no_grid)
    line = walk.mark_line(color="white", strokeWidth=2).encode(x=a_axis, y=b_axis, order="step:Q")
    dots = walk.mark_circle(color="white", size=28, opacity=1).encode(
        x=a_axis, y=b_axis, tooltip=[alt.Tooltip("step:Q"), alt.Tooltip("loss:Q", title="train loss", format=".3g")]
    )
    trained_point = alt.Chart(alt.Data(values=[{"a": 0, "b": 0}])).mark_point(shape="cross", color="#ff5a36", size=160, strokeWidth=3).encode(x=a_axis, y=b_axis)
    return alt.layer(heat, line, dots, trained_point).add_params(plane_param, step_param).properties(width="container", height=420)
