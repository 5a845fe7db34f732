"""The home page: one small live figure for each section, each a real result from its article's models.

Each is shown first as its build-time picture (preview=True, explorer/pipeline/preview.py), so the
home page loads without running any figure; pointing at one makes it live.

- home-xor: the playground's default network learning XOR (build_figures/backprop.py's own run).
- home-ravine: plain gradient descent and Adam on the loss-landscape article's ravine surface.
- home-induction: the induction stripe, the attention of induction-2l's best induction head on the
  canonical repeated-token probe (explorer/techniques/probes.py).
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from build_figures import backprop
from explorer import charts
from explorer.data import toy2d
from explorer.models import mlp
from explorer.pipeline import FigureContext, figure
from explorer.techniques import landscape, probes, prompts

CELLS = 24  # boundary plane cells per side
SIZE = 230  # px: every home figure is about this big, so three fit a row on a laptop
RAVINE_START, RAVINE_STEPS, RAVINE_LR = (-1.6, 1.1), 60, 0.1


@figure(
    "home-xor",
    title="A network learning XOR",
    caption="The probability of class 1 over the plane as training goes on; press ▶. Circles are the training points.",
    model="the backprop playground's default MLP (2-4-1, tanh, sigmoid + squared error, full batch), build_figures/backprop.py",
)
def home_xor(ctx: FigureContext) -> alt.Chart:
    train = backprop.settings(ctx)
    grid = ctx.pick(smoke=backprop.SMOKE_GRID, full=backprop.FULL_GRID)
    default = backprop.DEFAULT
    same_group = [r for r in backprop.grid_runs(grid) if (r.layers, r.width, str(r.batch)) == (default.layers, default.width, str(default.batch))]
    result, index = backprop.train_all(same_group, train, ctx.device, ctx)[default.key]  # the playground's own run (cached)
    weights = backprop.run_weights(result, index, default)  # per layer (checkpoints, n_out, n_in + 1)
    ext = toy2d.EXTENT
    centres = (torch.arange(CELLS) + 0.5) / CELLS * 2 * ext - ext
    xy = torch.cartesian_prod(centres, centres)[:, [1, 0]]  # (cells^2, 2), x fastest
    rows = []  # one row per checkpoint: P(class 1) of every cell, in percent (cell i is column i % CELLS, row i // CELLS)
    for c, step in enumerate(train.checkpoint_steps):
        trip = mlp.forward_backward([w[c] for w in weights], xy, torch.zeros(len(xy), dtype=torch.long), default.activation, default.output)
        rows.append({"step": step, "p": (trip.values[-1][:, 0] * 100).round().int().tolist()})  # (cells^2,) sigmoid output
    split = toy2d.make_dataset(default.dataset, train.n_train, train.n_test, train.data_seed)
    points = pd.DataFrame({"x": split.x_train[:, 0].numpy().round(3), "y": split.x_train[:, 1].numpy().round(3), "c": split.y_train.numpy()})
    ctx.claim("final_test_accuracy", result.test_accuracy[-1, index].item())

    panel = charts.Panel()
    step = panel.steps("step", train.checkpoint_steps)
    half = ext / CELLS * 1.04
    axis = alt.Scale(domain=[-ext, ext], nice=False)
    plane = (
        alt.Chart(alt.Data(values=rows))
        .transform_filter(alt.datum.step == step)
        .transform_flatten(["p"], as_=["pct"])
        .transform_window(i="row_number()")
        .transform_calculate(
            p="datum.pct / 100",
            x=f"{ext}*(2*(((datum.i-1)%{CELLS})+0.5)/{CELLS}-1)", y=f"{ext}*(2*(floor((datum.i-1)/{CELLS})+0.5)/{CELLS}-1)",
        )
        .transform_calculate(x0=f"datum.x-{half}", x1=f"datum.x+{half}", y0=f"datum.y-{half}", y1=f"datum.y+{half}")
        .mark_rect()
        .encode(
            x=alt.X("x0:Q", scale=axis, title="x₁"), x2="x1:Q", y=alt.Y("y0:Q", scale=axis, title="x₂"), y2="y1:Q",
            color=alt.Color("p:Q", title="P(class 1)", scale=alt.Scale(domain=[0, 0.5, 1], range=[charts.NEG, charts.ZERO, charts.POS]),
                            legend=alt.Legend(orient="bottom", gradientLength=120)),
        )
    )
    dots = alt.Chart(points).mark_point(filled=True, size=16, strokeWidth=0.6, stroke=charts.PAPER).encode(
        x="x:Q", y="y:Q", color=alt.Color("c:N", scale=alt.Scale(domain=[0, 1], range=[charts.NEG, charts.POS]), legend=None),
    )
    return panel.finish(alt.layer(plane, dots).properties(width=SIZE, height=SIZE).configure_axis(grid=False), preview=True)


@figure(
    "home-ravine",
    title="Two optimizers in a ravine",
    caption="Plain gradient descent and Adam, from the same start and with the same learning rate, on a narrow tilted valley. Press ▶ to watch them walk.",
    model="a two-parameter quadratic ravine (a didactic surface, explorer/techniques/landscape.py), SGD and Adam from torch.optim",
)
def home_ravine(ctx: FigureContext) -> alt.Chart:
    surface = landscape.get_surface("ravine")
    xs, ys, loss = landscape.surface_grid(surface, ctx.pick(smoke=20, full=40))  # loss[i, j] at (xs[j], ys[i])
    gx, gy = np.meshgrid(xs, ys)
    heat = pd.DataFrame({"x": gx.ravel().round(3), "y": gy.ravel().round(3), "loss": np.log10(loss.ravel() + 1e-3).round(3)})
    step_x, step_y = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    paths = []
    for name, label in (("sgd", "gradient descent"), ("adam", "Adam")):
        walk = landscape.run_optimizer(surface, name, RAVINE_LR, 0.0 if name == "sgd" else 0.9, RAVINE_START, RAVINE_STEPS)
        paths += [{"optimizer": label, "t": t, "x": round(float(a), 3), "y": round(float(b), 3)} for t, (a, b, _) in enumerate(walk)]
        ctx.claim(f"{name}_final_loss", float(walk[-1, 2]))
        ctx.claim("start_loss", float(walk[0, 2]))
    panel = charts.Panel()
    step = panel.slider("t", list(range(RAVINE_STEPS + 1)), label="Optimizer step", value=RAVINE_STEPS, play=True)
    heat = heat.assign(x0=heat.x - step_x / 2, x1=heat.x + step_x / 2, y0=heat.y - step_y / 2, y1=heat.y + step_y / 2)
    extent = alt.Scale(domain=[float(xs[0]), float(xs[-1])], nice=False)
    background = alt.Chart(heat).mark_rect().encode(
        x=alt.X("x0:Q", scale=extent, title="θ₁"), x2="x1:Q", y=alt.Y("y0:Q", scale=extent, title="θ₂"), y2="y1:Q",
        color=alt.Color("loss:Q", title="log₁₀ loss", scale=charts.sequential((float(heat.loss.min()), float(heat.loss.max())), reverse=True),
                        legend=alt.Legend(orient="bottom", gradientLength=100)),
    )
    walked = alt.Chart(pd.DataFrame(paths)).transform_filter(alt.datum.t <= step)
    colours = charts.series_scale(["gradient descent", "Adam"], [charts.ACCENT, charts.INK])
    lines = walked.mark_line(strokeWidth=1.8, clip=True).encode(
        x="x:Q", y="y:Q", order="t:Q", color=alt.Color("optimizer:N", scale=colours, legend=alt.Legend(orient="top", title=None)))
    heads = walked.transform_filter(alt.datum.t == step).mark_circle(size=50, clip=True, opacity=1).encode(
        x="x:Q", y="y:Q", color=alt.Color("optimizer:N", scale=colours, legend=None),
        tooltip=["optimizer:N", alt.Tooltip("t:Q", title="step"), alt.Tooltip("x:Q", format=".2f", title="θ₁"), alt.Tooltip("y:Q", format=".2f", title="θ₂")])
    return panel.finish(alt.layer(background, lines, heads).properties(width=SIZE, height=SIZE).configure_axis(grid=False), preview=True)


@figure(
    "home-induction",
    title="An induction head",
    caption=("Where induction-2l's best induction head looks on a block of random tokens shown twice: from every token of the "
             "second copy, one position after that token's first occurrence (the stripe)."),
    model="induction-2l (explorer.models.ZOO), trained by explorer/models/zoo.py; the canonical probe of explorer/techniques/probes.py",
)
def home_induction(ctx: FigureContext) -> alt.Chart:
    name = "induction-2l"
    model = prompts.load(ctx, name)
    probe = probes.probe_set(model, name, ctx.scale)
    table = probes.head_scores(model, probe)
    best = table.loc[table.induction.idxmax()]
    layer, head = int(best["layer"]), int(best["head"])
    hook = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = model.run_with_cache(probe.repeated[:1].to(model.cfg.device), names_filter=lambda n: n == hook)
    pattern = cache[hook][0, head].cpu()  # (q, k)
    n = pattern.shape[0]
    q, k = torch.tril_indices(n, n)
    frame = pd.DataFrame({"q": q.numpy(), "k": k.numpy(), "a": pattern[q, k].numpy().round(2)})
    ctx.claim("head", f"L{layer}H{head}")
    ctx.claim("induction_score", float(best["induction"]))
    ctx.claim("uniform_induction_score", probes.uniform_induction_score(probe))
    return charts.Panel().finish(
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("k:O", title="key position", axis=alt.Axis(values=list(range(0, n, 16)), labelAngle=0)),
            y=alt.Y("q:O", title="query position", axis=alt.Axis(values=list(range(0, n, 16)))),
            color=alt.Color("a:Q", title="attention", scale=charts.sequential((0, 1)), legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[alt.Tooltip("q:O", title="query"), alt.Tooltip("k:O", title="key"), alt.Tooltip("a:Q", format=".2f", title="attention")],
        )
        .properties(width=SIZE, height=SIZE, title=f"head L{layer}H{head}")
        .configure_axis(grid=False),
        preview=True,
    )
