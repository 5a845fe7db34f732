"""Backprop, visualized: a playground where every choice is a real, stored training run.

Every combination of data set, depth, width, activation, output/loss, batch size and regulariser
is trained here (grouped by shape and batch size, many models per vectorised loop) and written as
one small JSON file per configuration. The browser loads the file the reader picks; the planes
(decision boundary, hidden neurons) are the network's forward pass over a grid, evaluated in the
page from the stored weights, so they need no storage of their own.
"""

import inspect
import itertools
from dataclasses import asdict, replace

import altair as alt
import numpy as np
import torch

from explorer import charts
from explorer.cache import cached
from explorer.data import toy2d
from explorer.models import mlp
from explorer.models.mlp import RunConfig, TrainSettings
from explorer.pipeline import FigureContext, figure
from explorer.ensemble import MIN_SEEDS, claim_over_seeds

FULL_GRID = {
    "dataset": list(toy2d.DATASETS),
    "layers": [1, 2, 3],
    "width": [2, 3, 4, 6, 8],
    "activation": list(mlp.ACTIVATIONS),
    "output": list(mlp.OUTPUTS),
    "batch": list(mlp.BATCH_SIZES),
    "regularization": list(mlp.REGULARIZATIONS),
}
SMOKE_GRID = {**FULL_GRID, "layers": [1, 3], "width": [2, 4], "activation": ["tanh"], "output": ["sigmoid-mse"], "batch": [1, "full"], "regularization": ["none", "l1"]}
LABELS = {
    "dataset": ("Data set", {"xor": "XOR", "circle": "circle", "spirals": "two spirals", "blobs": "gaussian blobs"}),
    "layers": ("Hidden layers", {}),
    "width": ("Neurons per layer", {}),
    "activation": ("Activation", {}),
    "output": ("Output + loss", {"sigmoid-mse": "sigmoid + MSE", "softmax-ce": "softmax + cross-entropy"}),
    "batch": ("Batch size", {"full": "full batch"}),
    "regularization": ("Regularization", {"none": "none", "l1": "L1", "l2": "L2"}),
}
DEFAULT = RunConfig()  # XOR, one hidden layer of 4 tanh neurons, sigmoid + MSE, full batch: the classic 2-4-1
PROBE_NEAR = {"xor": (0.7, -0.7), "circle": (0.2, 0.2), "spirals": (0.5, 0.0), "blobs": (0.3, 0.3)}
PLANE, NEURON_PLANE = 24, 10  # grid cells per side of the boundary plane and of each neuron's plane (kept small: every cell is redrawn at each slider step)
MAX_WIDTH, MAX_LAYERS = 8, 3
WEIGHT_SCALE = 1000  # weights and activations are stored as integers in thousandths
NEAR_ZERO = 0.01  # |w| below this counts as "pruned" by L1
SEEDS = tuple(range(MIN_SEEDS))  # the default network's seed ensemble: the grid's own run is seed 0


def settings(ctx: FigureContext) -> TrainSettings:
    return TrainSettings(steps=ctx.pick(smoke=300, full=1000))


def grid_runs(grid: dict) -> list[RunConfig]:
    return [RunConfig(*values) for values in itertools.product(*grid.values())]


def train_all(runs: list[RunConfig], train: TrainSettings, device: torch.device, ctx: FigureContext) -> dict[str, tuple]:
    """{run key: (group result, index in the group)}; each (layers, width, batch) group is cached."""
    groups: dict[tuple, list[RunConfig]] = {}
    for run in runs:
        groups.setdefault((run.layers, run.width, str(run.batch)), []).append(run)
    found = {}
    for shape, members in ctx.progress(groups.items(), desc="train", total=len(groups)):
        config = {"runs": [asdict(r) for r in members], "settings": asdict(train)}
        result = cached("backprop-mlp-group", config, lambda: mlp.train_group(members, train, device), code=[toy2d, mlp])
        found.update({r.key: (result, i) for i, r in enumerate(members)})
    return found


def probe_point(dataset: str, train: TrainSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The training point nearest PROBE_NEAR[dataset]: the input the computation panel follows."""
    split = toy2d.make_dataset(dataset, train.n_train, train.n_test, train.data_seed)
    i = int(((split.x_train - torch.tensor(PROBE_NEAR[dataset])) ** 2).sum(1).argmin())
    return split.x_train[i], split.y_train[i]


def run_weights(result: mlp.GroupResult, index: int, run: RunConfig) -> list[torch.Tensor]:
    """Per layer (checkpoints, n_out, n_in + 1) for one run, its output trimmed to its real size."""
    ws = [w[:, index] for w in result.weights]
    return ws[:-1] + [mlp.trim_output(ws[-1], run)]


def scaled(values: torch.Tensor) -> tuple[list[int], float]:
    """Integers in [-999, 999] and the scale that turns them back into values (3 significant digits)."""
    scale = float(values.abs().max()) / 999 or 1.0
    return torch.round(values / scale).int().flatten().tolist(), scale


def thousandths(values: torch.Tensor) -> list[int]:
    return torch.round(values * WEIGHT_SCALE).int().flatten().tolist()


def run_payload(run: RunConfig, result: mlp.GroupResult, index: int, train: TrainSettings) -> dict:
    weights = run_weights(result, index, run)
    x, y = probe_point(run.dataset, train)
    n_ckpt = weights[0].shape[0]
    trip = mlp.forward_backward(weights, x.expand(n_ckpt, 2), y.expand(n_ckpt), run.activation, run.output)
    net = []
    for c, step in enumerate(train.checkpoint_steps):
        grads = [scaled(g[c]) for g in trip.grads]
        deltas = [scaled(d[c]) for d in trip.deltas]
        net.append({
            "c": c,
            "step": step,
            "w": [thousandths(w[c]) for w in weights],  # per layer, row-major (n_out, n_in + 1), bias last
            "g": [g for g, _ in grads],
            "gs": [s for _, s in grads],
            "a": [thousandths(v[c]) for v in trip.values],  # inputs, hidden layers, output probabilities
            "d": [[]] + [d for d, _ in deltas],  # dL/dz; the input layer has none
            "ds": [1] + [s for _, s in deltas],
            "tr": result.train_accuracy[c, index].item(),
            "te": result.test_accuracy[c, index].item(),
        })
    return {
        "cfg": [{"k": 1, "dataset": run.dataset, "L": run.layers, "W": run.width, "act": run.activation, "out": run.n_outputs,
                 "px": x[0].item(), "py": x[1].item(), "label": int(y)}],
        "net": net,
        "curve": [{"every": train.steps / train.curve_points, "tr": result.train_curve[:, index], "te": result.test_curve[:, index]}],
        "code": pytorch_script(run, train),
    }


def pytorch_script(run: RunConfig, train: TrainSettings) -> str:
    """A standalone torch script that trains `run` the way the playground did (its own random draws)."""
    act = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()"}[run.activation]
    layers, n_in = [], 2
    for _ in range(run.layers):
        layers.append(f"    nn.Linear({n_in}, {run.width}), {act},")
        n_in = run.width
    layers.append(f"    nn.Linear({n_in}, {run.n_outputs}),")
    if run.output == "sigmoid-mse":
        loss = "((torch.sigmoid(logits[:, 0]) - y.float()) ** 2).mean()  # sigmoid + squared error"
        predict = "(torch.sigmoid(model(x)[:, 0]) > 0.5).long()"
    else:
        loss = "nn.functional.cross_entropy(logits, y)  # softmax + cross-entropy"
        predict = "model(x).argmax(1)"
    strength = mlp.REGULARIZATION_STRENGTH[run.regularization]
    penalty = {
        "none": "0.0",
        "l1": f"{strength} * sum(m.weight.abs().sum() for m in model if isinstance(m, nn.Linear))",
        "l2": f"{strength} * sum((m.weight ** 2).sum() for m in model if isinstance(m, nn.Linear))",
    }[run.regularization]
    batch = "batch = torch.arange(len(x_train))  # full batch" if run.batch == "full" else f"batch = torch.randperm(len(x_train))[:{run.batch}]"
    generator = inspect.getsource(toy2d.GENERATORS[run.dataset])
    n = train.n_train
    return f'''"""Train a {run.layers}-hidden-layer MLP ({run.width} {run.activation} neurons each) on {run.dataset}.

The configuration of the "Backprop, visualized" playground; random draws differ from the stored run.
"""
import numpy as np
import torch
from torch import nn


{generator}

xy, label = {run.dataset}({n + train.n_test}, np.random.default_rng({train.data_seed}))
x, y = torch.tensor(xy, dtype=torch.float32), torch.tensor(label)
x_train, y_train, x_test, y_test = x[:{n}], y[:{n}], x[{n}:], y[{n}:]

torch.manual_seed({train.seed})
model = nn.Sequential(
{chr(10).join(layers)}
)
optimizer = torch.optim.Adam(model.parameters(), lr={train.lr})


def data_loss(logits, y):
    return {loss}


def penalty():
    return {penalty}


losses = []
for step in range({train.steps}):
    {batch}
    loss = data_loss(model(x_train[batch]), y_train[batch]) + penalty()
    optimizer.zero_grad()
    loss.backward()  # backprop: d loss / d every weight
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    def accuracy(x, y):
        return ({predict} == y).float().mean().item()

    print(f"train accuracy {{accuracy(x_train, y_train):.2f}}, test accuracy {{accuracy(x_test, y_test):.2f}}")
'''


# ---------------------------------------------------------------------------------------------
# The forward pass over the input plane, as Vega expressions on the stored weights. Vega has no
# loops, so each layer is written out for the widest case (8 neurons) with guards for narrower ones.
#
# Speed: everything that does not depend on the slider is computed once per loaded run, for every
# checkpoint at once (11 x the grid), then pivoted so each grid cell holds its value at every
# checkpoint. The slider only picks one of those values (`datum[ckpt]`): the marks stay the same
# items and only their colour changes, so dragging it creates and removes nothing.


def _act(z: str) -> str:
    return f"(datum.act=='relu'?max(0,{z}):datum.act=='tanh'?(2/(1+exp(-2*({z})))-1):1/(1+exp(-({z}))))"


def _affine(layer: str, j: int, inputs: list[str], n_in: str) -> str:
    """z_j of a layer: sum_i w[j, i] * input_i + bias, weights in thousandths, row-major with bias last."""
    row = f"{j}*({n_in}+1)"
    terms = [f"({i}<{n_in}?datum.w[{layer}][{row}+{i}]*{x}:0)" for i, x in enumerate(inputs)]
    return f"({'+'.join(terms)}+datum.w[{layer}][{row}+{n_in}])/{WEIGHT_SCALE}"


def forward_transforms(cells: int) -> list[dict]:
    """Vega-Lite transforms: one row per (checkpoint, grid cell) -> (x, y), hidden values h1..h3 and
    p = P(class 1). Rows start from the `net` data (one per checkpoint, with its weights `w`)."""
    ext = toy2d.EXTENT
    t: list[dict] = [
        {"calculate": f"sequence(0, {cells * cells})", "as": "cell"},
        {"flatten": ["cell"]},
        {"calculate": f"{ext}*(2*((datum.cell%{cells})+0.5)/{cells}-1)", "as": "x"},
        {"calculate": f"{ext}*(2*(floor(datum.cell/{cells})+0.5)/{cells}-1)", "as": "y"},
        {"calculate": f"{ext}/{cells}", "as": "half"},
        {"calculate": "1", "as": "k"},
        {"lookup": "k", "from": {"data": {"name": "cfg"}, "key": "k", "fields": ["L", "W", "act", "out"]}},
        {"filter": "isValid(datum.w) && isValid(datum.L)"},
    ]
    inputs = ["datum.x", "datum.y"]
    for layer in range(MAX_LAYERS):
        ins = inputs if layer == 0 else [f"datum.h{layer}[{i}]" for i in range(MAX_WIDTH)]
        n_in = "2" if layer == 0 else "datum.W"
        z = "[" + ",".join(_affine(str(layer), j, ins, n_in) for j in range(MAX_WIDTH)) + "]"
        h = "[" + ",".join(_act(f"datum.z{layer + 1}[{j}]") for j in range(MAX_WIDTH)) + "]"
        guard = f"datum.L>{layer}"
        t += [{"calculate": f"{guard}?{z}:[]", "as": f"z{layer + 1}"}, {"calculate": f"{guard}?{h}:[]", "as": f"h{layer + 1}"}]
    t.append({"calculate": "datum.L==1?datum.h1:datum.L==2?datum.h2:datum.h3", "as": "hl"})
    last = [f"datum.hl[{i}]" for i in range(MAX_WIDTH)]
    logits = [_affine("datum.L", j, last, "datum.W") for j in range(2)]
    t.append({"calculate": f"datum.out==1?1/(1+exp(-{logits[0]})):1/(1+exp(-({logits[1]}-{logits[0]})))", "as": "p"})
    return t


# ---------------------------------------------------------------------------------------------
# The views. All read the named data sets fed per configuration (cfg, net, curve) and the slider.

CLASS_COLORS = alt.Scale(domain=[0, 1], range=[charts.NEG, charts.POS])
PROB_COLORS = alt.Scale(domain=[0, 0.5, 1], range=[charts.NEG, charts.ZERO, charts.POS], interpolate="hcl")
SIGN_COLORS = alt.Scale(domain=["negative", "positive"], range=[charts.NEG, charts.POS])
AXIS = alt.Scale(domain=[-toy2d.EXTENT, toy2d.EXTENT], nice=False)
NOW = "datum.c == ckpt"  # the slider's checkpoint: applied last, after everything it does not change
DECADES = 4  # backward edges: widths span four decades of |dL/dw| below the run's largest
GRAPH_NODE_SIZE = 760  # circle area in px^2: room for a four-character label at 10 px


def plane_rects(cells: int) -> alt.Chart:
    chart = alt.Chart(alt.NamedData(name="net"))
    chart.transform = forward_transforms(cells)
    # each rect a hair larger than its cell, so the canvas shows no seams between neighbours
    return chart.transform_calculate(x0="datum.x-1.04*datum.half", x1="datum.x+1.04*datum.half",
                                     y0="datum.y-1.04*datum.half", y1="datum.y+1.04*datum.half")


def at_slider(chart: alt.Chart, value: str, keep: list[str], as_: str) -> alt.Chart:
    """One row per grid cell with `value` at every checkpoint (fields "0", "1", ...), and `as_`, its
    value at the slider's checkpoint."""
    return chart.transform_pivot("c", value=value, groupby=keep).transform_calculate(**{as_: "datum['' + ckpt]"})


CELL = ["cell", "x", "y", "x0", "x1", "y0", "y1"]


def boundary_view(points: list[dict]) -> alt.LayerChart:
    rects = at_slider(plane_rects(PLANE), "p", CELL, "p").mark_rect().encode(
        x=alt.X("x0:Q", scale=AXIS, title="x₁", axis=alt.Axis(grid=False)), x2="x1:Q",
        y=alt.Y("y0:Q", scale=AXIS, title="x₂", axis=alt.Axis(grid=False)), y2="y1:Q",
        color=alt.Color("p:Q", scale=PROB_COLORS, title="P(class 1)", legend=alt.Legend(orient="bottom", gradientLength=160)),
        # no tooltip: re-formatting one per cell at every slider step costs a tenth of the step
    )
    dots = alt.Chart(alt.Data(values=points)).transform_lookup(
        lookup="d", from_=alt.LookupData(data=alt.NamedData(name="cfg"), key="dataset", fields=["dataset"]),
    ).transform_filter("isValid(datum.dataset)").mark_point(filled=True, size=24, strokeWidth=0.8, clip=True).encode(
        x="x:Q", y="y:Q",
        color=alt.Color("c:N", scale=CLASS_COLORS, title="class", legend=alt.Legend(orient="bottom")),
        shape=alt.Shape("s:N", scale=alt.Scale(domain=["train", "test"], range=["circle", "triangle-up"]), title="split",
                        legend=alt.Legend(orient="bottom")),
        stroke=alt.value(charts.PAPER),
        opacity=alt.condition("datum.s == 'test'", alt.value(0.65), alt.value(0.95)),
    )
    probe = alt.Chart(alt.NamedData(name="cfg")).mark_point(size=200, strokeWidth=2.5, color=charts.INK).encode(
        x="px:Q", y="py:Q", tooltip=[alt.Tooltip("px:Q", title="probe x₁"), alt.Tooltip("py:Q", title="probe x₂")]
    )
    return alt.layer(rects, dots, probe).properties(width=240, height=240, title="Decision boundary (ring: the probe input)")


def loss_view() -> alt.LayerChart:
    long = alt.Chart(alt.NamedData(name="curve")).transform_flatten(["tr", "te"]).transform_window(
        i="row_number()"
    ).transform_calculate(step="(datum.i-1)*datum.every").transform_fold(["tr", "te"], as_=["split", "loss"]).transform_calculate(
        split="datum.split=='tr'?'train':'test'"
    )
    curve = long.mark_line().encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("loss:Q", title="loss (data term)"),
        color=alt.Color("split:N", scale=charts.series_scale(["train", "test"], [charts.INK, charts.ACCENT_2]), title="loss",
                        legend=alt.Legend(orient="top-right")),
    )
    hover = charts.hover_rule(long, x="step", series="split", y="loss", names=["train", "test"], x_title="step")
    now = alt.Chart(alt.NamedData(name="net")).transform_filter(NOW)
    rule = now.mark_rule(color=charts.ACCENT, strokeDash=[4, 3], strokeWidth=1.5).encode(x="step:Q")
    label = now.transform_calculate(
        text="'step ' + format(datum.step, ',') + ': train ' + format(datum.tr, '.0%') + ', test ' + format(datum.te, '.0%') + ' correct'"
    ).mark_text(align="left", baseline="bottom", x=4, y=-6, fontSize=charts.LABEL_SIZE, color=charts.INK).encode(text="text:N")
    return alt.layer(curve, hover, rule, label).properties(width=240, height=240, title="Loss during training (dashed: the slider's step)")


def neurons_view() -> alt.Chart:
    """Each hidden neuron's output over the plane: one row per layer, one column per neuron."""
    chart = plane_rects(NEURON_PLANE).transform_calculate(
        hid="[" + ",".join(f"datum.L>{layer}?datum.h{layer + 1}:[]" for layer in range(MAX_LAYERS)) + "]",
    ).transform_calculate(
        slot="sequence(0, datum.L*datum.W)"
    ).transform_flatten(["slot"]).transform_calculate(
        li="floor(datum.slot/datum.W)", ni="datum.slot%datum.W",
    ).transform_calculate(
        value="datum.hid[datum.li][datum.ni]", layer="'layer ' + (datum.li+1)", neuron="datum.ni+1",
    ).transform_calculate(mag="abs(datum.value)").transform_joinaggregate(vmax="max(mag)")
    chart = at_slider(chart, "value", [*CELL, "layer", "neuron", "vmax"], "value").transform_calculate(
        shade="datum.vmax > 0 ? datum.value/datum.vmax : 0"  # one colour scale for the whole run
    )
    return chart.mark_rect().encode(
        x=alt.X("x0:Q", scale=AXIS, axis=None), x2="x1:Q",
        y=alt.Y("y0:Q", scale=AXIS, axis=None), y2="y1:Q",
        color=alt.Color("shade:Q", scale=charts.diverging(1.0), title=["activation ÷ the run's", "largest |activation|"],
                        legend=alt.Legend(orient="right", gradientLength=80)),
        row=alt.Row("layer:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelOrient="left")),
        column=alt.Column("neuron:O", title="Each hidden neuron's output over the input plane"),
        # no tooltip: 6,144 tooltips re-formatted at every slider step would cost more than the drawing
    ).properties(width=58, height=58, spacing=6)


def graph_data(field: str, scale_field: str | None) -> alt.Chart:
    """One row per weight (bias excluded) at every checkpoint, placed between its two neurons.

    `size` is the edge width, on one scale for the whole run (the largest |value| over every
    checkpoint): linear for weights, log-magnitude over DECADES decades for gradients. A gradient
    that is exactly zero gets no edge.
    """
    value = f"datum.{field}/{WEIGHT_SCALE}" if scale_field is None else f"datum.{field}*datum.{scale_field}"
    if scale_field is None:
        size = "0.4+5.6*abs(datum.value)/datum.vmax"
    else:
        size = f"0.4+5.6*clamp(1+log(abs(datum.value)/datum.vmax)/log(10)/{DECADES},0,1)"
    return alt.Chart(alt.NamedData(name="net")).transform_flatten(
        ["w", "g", "gs"]
    ).transform_window(l="row_number()", groupby=["c"]).transform_calculate(k="1").transform_lookup(
        lookup="k", from_=alt.LookupData(data=alt.NamedData(name="cfg"), key="k", fields=["W", "L"])
    ).transform_calculate(
        l="datum.l-1", nin="datum.l==0?2:datum.W"
    ).transform_calculate(nout="length(datum.w)/(datum.nin+1)").transform_flatten(["w", "g"]).transform_window(
        idx="row_number()", groupby=["c", "l"]
    ).transform_calculate(
        src="(datum.idx-1)%(datum.nin+1)", dst="floor((datum.idx-1)/(datum.nin+1))", value=value,
        weight=f"datum.w/{WEIGHT_SCALE}", grad="datum.g*datum.gs",
    ).transform_filter("datum.src < datum.nin").transform_calculate(mag="abs(datum.value)").transform_joinaggregate(
        vmax="max(mag)"
    ).transform_filter("datum.value != 0").transform_calculate(
        x1="datum.l", y1="datum.src-(datum.nin-1)/2", x2="datum.l+1", y2="datum.dst-(datum.nout-1)/2",
        sign="datum.value<0?'negative':'positive'", size=size,
    ).transform_filter(NOW)


def node_data() -> alt.Chart:
    return alt.Chart(alt.NamedData(name="net")).transform_filter(NOW).transform_flatten(
        ["a", "d", "ds"]
    ).transform_window(l="row_number()").transform_calculate(l="datum.l-1", n="length(datum.a)").transform_flatten(
        ["a", "d"]
    ).transform_window(i="row_number()", groupby=["l"]).transform_calculate(
        x="datum.l", y="datum.i-1-(datum.n-1)/2", value=f"datum.a/{WEIGHT_SCALE}", delta="isValid(datum.d)?datum.d*datum.ds:null",
    )


def graph_view(field: str, scale_field: str | None, title: str, node_label: str) -> alt.LayerChart:
    edges = graph_data(field, scale_field)
    tips = [alt.Tooltip("l:Q", title="layer"), alt.Tooltip("src:Q", title="from neuron"), alt.Tooltip("dst:Q", title="to neuron"),
            alt.Tooltip("weight:Q", format=".3f"), alt.Tooltip("grad:Q", format=".3~g", title="∂L/∂w")]
    lines = edges.mark_rule(opacity=0.85).encode(
        x=alt.X("x1:Q", axis=None, scale=alt.Scale(padding=22)), y=alt.Y("y1:Q", axis=None, scale=alt.Scale(domain=[-4.2, 4.2])),
        x2="x2:Q", y2="y2:Q",
        color=alt.Color("sign:N", scale=SIGN_COLORS, title="sign", legend=alt.Legend(orient="bottom")),
        strokeWidth=alt.StrokeWidth("size:Q", scale=None),
        tooltip=tips,
    )
    nodes = node_data()
    dots = nodes.mark_circle(size=GRAPH_NODE_SIZE, color=charts.PAPER, stroke=charts.MUTED, strokeWidth=1, opacity=1).encode(
        x="x:Q", y="y:Q",
        tooltip=[alt.Tooltip("l:Q", title="layer"), alt.Tooltip("value:Q", format=".3f", title="value a"),
                 alt.Tooltip("delta:Q", format=".3~g", title="δ = ∂L/∂z")],
    )
    if node_label == "value":  # "-0.93" -> "-.93": four characters fit the circle
        label = "replace(format(datum.value, '.2f'), '0.', '.')"
    else:  # "-3e-5"; exact zeros (a dead ReLU) print 0
        label = "!isValid(datum.delta) ? '' : datum.delta == 0 ? '0' : format(datum.delta, '.0e')"
    text = nodes.transform_calculate(label=label).mark_text(fontSize=charts.SMALL_SIZE, color=charts.INK).encode(
        x="x:Q", y="y:Q", text="label:N")
    return alt.layer(lines, dots, text).properties(width=280, height=300, title=title)


def points_rows(train: TrainSettings) -> list[dict]:
    rows = []
    for name in toy2d.DATASETS:
        split = toy2d.make_dataset(name, train.n_train, train.n_test, train.data_seed)
        for s, xs, ys in (("train", split.x_train, split.y_train), ("test", split.x_test, split.y_test)):
            rows += [{"d": name, "s": s, "x": round(float(p[0]), 3), "y": round(float(p[1]), 3), "c": int(c)} for p, c in zip(xs, ys)]
    return rows


def playground_chart(train: TrainSettings, grid: dict) -> alt.VConcatChart:
    panel = charts.Panel()
    for name, options in grid.items():
        # depth and width change how many planes and nodes there are: redraw the views for them
        panel.data(name, options, label=LABELS[name][0], labels=[LABELS[name][1].get(o, str(o)) for o in options],
                   default=getattr(DEFAULT, name), fresh=name in ("layers", "width"), group="Data and network")
    panel.steps("ckpt", train.checkpoint_steps, index=True, group="Training")
    panel.source("runs/" + "-".join("{" + name + "}" for name in grid) + ".json", ["cfg", "net", "curve"], code="code")
    forward = graph_view("w", None, "Forward: weights and the probe's values", "value")
    backward = graph_view("g", "gs", f"Backward: ∂L/∂w (width: log scale, {DECADES} decades) and δ", "delta")
    chart = alt.vconcat(
        alt.hconcat(boundary_view(points_rows(train)), loss_view()).resolve_scale(color="independent", shape="independent"),
        neurons_view(),
        alt.hconcat(forward, backward),
    ).resolve_scale(color="independent", shape="independent").properties(spacing=24)
    # thousands of cells: a canvas redraws them faster than SVG, and they never move, so a slider step
    # only re-encodes their colour (fixedPositions, docs/assets/javascripts/explorer/layout.js)
    return panel.finish(chart, renderer="canvas", fixedPositions=True)


# ---------------------------------------------------------------------------------------------
# Claims: numbers the page states, measured on the grid.


def corners_correct(run: RunConfig, result: mlp.GroupResult, index: int) -> int:
    """How many of XOR's four corners (+-1, +-1) the final network puts in the right class."""
    corners = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    final = [w[-1] for w in run_weights(result, index, run)]
    p = mlp.forward_backward(final, corners, labels, run.activation, run.output).values[-1]
    predicted = (p[:, 0] > 0.5).long() if run.output == "sigmoid-mse" else p.argmax(1)
    return int((predicted == labels).sum())


def autograd_gap(run: RunConfig, result: mlp.GroupResult, index: int, train: TrainSettings) -> float:
    """Largest |hand-written gradient - autograd gradient| over the probe at every checkpoint."""
    x, y = probe_point(run.dataset, train)
    gap = 0.0
    weights = run_weights(result, index, run)
    for c in range(weights[0].shape[0]):
        model = mlp.build_mlp(run)
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, w in zip(linears, weights):
                lin.weight.copy_(w[c, :, :-1])
                lin.bias.copy_(w[c, :, -1])
        mlp.point_loss(model(x[None]), y[None], run.output).sum().backward()
        hand = mlp.forward_backward([w[c] for w in weights], x, y, run.activation, run.output).grads
        for lin, g in zip(linears, hand):
            auto = torch.cat([lin.weight.grad, lin.bias.grad[:, None]], dim=1)
            gap = max(gap, float((auto - g).abs().max()))
    return gap


def roughness(curve: torch.Tensor) -> float:
    """Mean |change| between consecutive recorded training losses over the second half of training."""
    half = curve[len(curve) // 2 :]
    return float((half[1:] - half[:-1]).abs().mean())


def test_correct(result: mlp.GroupResult, index: int, train: TrainSettings) -> int:
    """Test points classified correctly at the end, as a count: float32 accuracies such as 0.9 are
    stored as 0.8999999762, so comparing fractions with `>= 0.9` would miss them."""
    return round(result.test_accuracy[-1, index].item() * train.n_test)


def seed_ensemble(ctx: FigureContext, train: TrainSettings, trained: dict) -> dict[str, list[tuple[mlp.GroupResult, int]]]:
    """The default network on each data set over SEEDS: the playground's own run (seed 0) and one
    more run per further seed."""
    members = [RunConfig(**{**asdict(DEFAULT), "dataset": name}) for name in toy2d.DATASETS]
    found: dict[str, list] = {run.dataset: [trained[run.key]] for run in members}
    for seed in SEEDS[1:]:
        settings_s = replace(train, seed=seed)
        config = {"runs": [asdict(r) for r in members], "settings": asdict(settings_s)}
        result = cached("backprop-mlp-group", config, lambda: mlp.train_group(members, settings_s, ctx.device), code=[toy2d, mlp])
        for i, run in enumerate(members):
            found[run.dataset].append((result, i))
    return found


def record_claims(ctx: FigureContext, runs: list[RunConfig], trained: dict, train: TrainSettings, grid: dict) -> None:
    def final_test(run: RunConfig) -> float:
        result, i = trained[run.key]
        return result.test_accuracy[-1, i].item()

    def select(**fixed) -> list[RunConfig]:
        return [r for r in runs if all(getattr(r, k) == v for k, v in fixed.items())]

    ctx.claim("configurations", len(runs))
    ctx.claim("steps", train.steps)
    ctx.claim("seeds", len(SEEDS))
    ensemble = seed_ensemble(ctx, train, trained)
    ctx.claim("xor_corners_correct_min", min(corners_correct(DEFAULT, r, i) for r, i in ensemble["xor"]))
    result, i = trained[DEFAULT.key]
    ctx.claim("autograd_max_gap", autograd_gap(DEFAULT, result, i, train))
    for name in toy2d.DATASETS:
        claim_over_seeds(ctx, f"default_test_accuracy_{name}",
                         {seed: test_correct(r, i, train) / train.n_test for seed, (r, i) in zip(SEEDS, ensemble[name])})
        labels = toy2d.make_dataset(name, train.n_train, train.n_test, train.data_seed).y_test
        ctx.claim(f"chance_accuracy_{name}", float(max(labels.float().mean(), 1 - labels.float().mean())))  # the larger class
    for layers in grid["layers"]:  # the best of a grid of single runs (one seed each)
        best = max(final_test(r) for r in select(dataset="spirals", layers=layers))
        ctx.claim(f"spirals_best_test_accuracy_{layers}_layers", best)
    for width in (2, 4):
        xor = select(dataset="xor", layers=1, width=width)
        reached = [test_correct(*trained[r.key], train) >= 0.9 * train.n_test for r in xor]
        ctx.claim(f"xor_width{width}_runs", len(xor))
        ctx.claim(f"xor_width{width}_reach90", int(sum(reached)))
        ctx.claim(f"xor_width{width}_reach90_fraction", float(np.mean(reached)))
    for reg in ("none", "l1"):
        fractions = []
        for r in select(regularization=reg):
            result, i = trained[r.key]
            w = torch.cat([m[-1, :, :-1].flatten() for m in run_weights(result, i, r)])
            fractions.append(float((w.abs() < NEAR_ZERO).float().mean()))
        ctx.claim(f"near_zero_weight_fraction_{reg}", float(np.mean(fractions)))
    for batch in (1, "full"):
        rough = [roughness(trained[r.key][0].train_curve[:, trained[r.key][1]]) for r in select(batch=batch)]
        ctx.claim(f"loss_roughness_batch_{batch}", float(np.median(rough)))


@figure(
    "backprop-playground",
    title="A multilayer perceptron learning 2-D data, every choice a real training run",
    caption=(
        "Pick a data set and a network; drag the slider to move through training. The planes are the stored "
        "network's forward pass over a grid, evaluated in your browser from the weights saved at that step; the "
        "lower panels follow one training point (the ringed probe) forward and backward."
    ),
    model="MLPs (1-3 hidden layers, 2-8 neurons) trained with Adam on toy 2-D data by build_figures/backprop.py",
)
def backprop_playground(ctx: FigureContext) -> alt.VConcatChart:
    grid = ctx.pick(smoke=SMOKE_GRID, full=FULL_GRID)
    train = settings(ctx)
    runs = grid_runs(grid)
    trained = train_all(runs, train, ctx.device, ctx)
    for run in ctx.progress(runs, desc="write"):
        result, i = trained[run.key]
        ctx.asset(f"runs/{run.key}.json", run_payload(run, result, i, train))
    record_claims(ctx, runs, trained, train, grid)
    sizes = [p.stat().st_size for p in (ctx.out / "runs").glob("*.json")]
    ctx.claim("mean_run_file_kb", sum(sizes) / len(sizes) / 1000)
    ctx.claim("total_runs_mb", sum(sizes) / 1e6)
    return playground_chart(train, grid)
