"""Curriculum, chapter 5: residual connections, on a 20-layer MLP and on the flagship transformer.

Deep MLPs (width 32, ReLU, PyTorch's default initialisation) are trained here on scikit-learn's
8x8 digits with and without a skip connection around every hidden block (explorer/models/deep_mlp.py),
three seeds each and at several depths. The transformer part reads the stored checkpoints of the
flagship (explorer/longruns/flagship.py): how large each attention block's write is against the
residual stream it is added to, over training; and trains small 8-block byte-level transformers
with and without their residual additions (explorer/models/skip_transformer.py).
"""

import functools
import math

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.models import deep_mlp, flagship, norm_transformer, skip_transformer
from explorer.pipeline import FigureContext, figure
from explorer.techniques import residual

SEEDS = (0, 1, 2)
WIDTH, DEPTH = 32, 20
RECIPE = dict(steps=1000, lr=1e-3, batch=64, eval_every=50)
KEEP = [0, 50, 100, 250, 500, 1000]  # checkpoints the sliders show
DEPTHS = {"smoke": (2, 20), "full": (1, 2, 5, 10, 20)}
NETS = {"plain": False, "residual": True}
NET_LABELS = ["plain", "residual"]
MODEL = ("deep MLPs on scikit-learn's 8x8 digits (explorer/models/deep_mlp.py): 20 hidden blocks of width 32, ReLU, "
         "PyTorch's default initialisation, with and without a skip connection around each block, seeds 0-2")
FLAGSHIP = "flagship-bytes-2l (stored checkpoints of its three training runs, explorer/longruns/flagship.py)"
CHANCE = 0.1  # ten balanced classes
EXAMPLES = 6


@functools.cache  # the panel reads every kept checkpoint of a run: one read of the cache per run
def run(depth: int, net: str, seed: int) -> dict:
    config = {"depth": depth, "width": WIDTH, "skip": NETS[net], "seed": seed, "recipe": RECIPE, "keep": KEEP}
    return cached("residual-mlp-runs", config, lambda: deep_mlp.train(depth, WIDTH, NETS[net], seed, keep=KEEP, **RECIPE),
                  code=[deep_mlp])


def model_at(net: str, seed: int, step: int, depth: int = DEPTH) -> deep_mlp.DeepMLP:
    return deep_mlp.load(depth, WIDTH, NETS[net], run(depth, net, seed)["checkpoints"][step])


# --------------------------------------------------------------------------- the computation panel


@figure(
    "residual-panel",
    title="One input through twenty blocks, with and without the skip",
    caption=(
        "One validation digit (pick it above) through the 20-block MLP, seed 0, plain and with a skip connection "
        "around every block. Top: for the chosen block, the 32 numbers of the stream coming in (h), of what the "
        "block computes (f(h) = relu(Wh + b)) and of the stream going out: f(h) alone in the plain network, h + f(h) "
        "with the skip. Below: the size (norm) of the stream and of the block's write at every block, the size of "
        "the gradient of the loss with respect to the stream at every block (log scales), and the predicted "
        "probabilities. The sliders move through blocks and through training."
    ),
    model=MODEL,
)
def residual_panel(ctx: FigureContext):
    _, _, x_val, y_val = deep_mlp.digits_tensors()
    names = []
    for i in range(EXAMPLES):
        rows = []
        for net in NETS:
            for step in KEEP:
                s = residual.stream_steps(model_at(net, SEEDS[0], step), x_val[i], int(y_val[i]))
                for l in range(DEPTH):
                    for stage, values in (("in", s.stream_in[l]), ("write", s.write[l]), ("out", s.stream_out[l])):
                        # one row per vector, its 32 numbers as a list (the chart flattens it): a tenth of the bytes
                        rows.append({"net": net, "step": step, "layer": l + 1, "stage": stage,
                                     "w": [float(f"{float(v):.4g}") for v in values]})
                    rows += [{"net": net, "step": step, "layer": l + 1, "stage": f"norm_{stage}", "v": float(t[l].norm())}
                             for stage, t in (("in", s.stream_in), ("write", s.write), ("grad", s.grad_stream))]  # fmt: skip
                rows += [{"net": net, "step": step, "stage": "p", "c": c, "v": round(float(p), 4)} for c, p in enumerate(s.probabilities)]
        ctx.asset(f"panel/digit-{i}.json", {"numbers": rows})
        names.append(f"digit-{i}")
    trained = {net: residual.stream_steps(model_at(net, SEEDS[0], KEEP[-1]), x_val[0], int(y_val[0])) for net in NETS}
    untrained = {net: residual.stream_steps(model_at(net, SEEDS[0], 0), x_val[0], int(y_val[0])) for net in NETS}
    ctx.claim("digit_0_label", int(y_val[0]))
    for net in NETS:
        ctx.claim(f"digit_0_{net}_p_true", float(trained[net].probabilities[int(y_val[0])]))
        ctx.claim(f"digit_0_{net}_init_stream_first", float(untrained[net].stream_in[0].norm()))
        ctx.claim(f"digit_0_{net}_init_stream_last", float(untrained[net].stream_out[-1].norm()))
        ctx.claim(f"digit_0_{net}_init_grad_first", float(untrained[net].grad_stream[0].norm()))
        ctx.claim(f"digit_0_{net}_init_grad_last", float(untrained[net].grad_stream[-1].norm()))
    ctx.claim("depth", DEPTH)
    ctx.claim("width", WIDTH)

    panel = charts.Panel()
    panel.data("digit", names, label="Validation digit", labels=[f"digit {i + 1} (a {int(y_val[i])})" for i in range(EXAMPLES)])
    step = panel.steps("step", KEEP, value=0)
    layer = panel.slider("layer", list(range(1, DEPTH + 1)), label="Block", value=1)
    panel.source("panel/{digit}.json", datasets=["numbers"])
    return panel.finish(panel_chart(step, layer))


def panel_chart(step: alt.Parameter, layer: alt.Parameter):
    numbers = alt.Data(name="numbers")
    nets = charts.series_scale(NET_LABELS, [charts.SERIES[7], charts.SERIES[0]])
    cells = (
        alt.Chart(numbers, title=alt.Title(alt.expr(f"'block ' + {layer.name} + ': the stream and the write (32 numbers each)'"),
                                           fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.step == {step.name} && datum.layer == {layer.name} && indexof(['in', 'write', 'out'], datum.stage) >= 0")
        .transform_flatten(["w"], as_=["v"])
        .transform_window(rank="row_number()", groupby=["net", "stage"])
        .transform_calculate(c="datum.rank - 1",
                             row="datum.net + ': ' + (datum.stage == 'in' ? 'h' : datum.stage == 'write' ? 'f(h)' : 'out')")
        .mark_rect(stroke=charts.RULE, strokeWidth=0.5)
        .encode(x=alt.X("c:O", title="component", axis=alt.Axis(labels=False, ticks=False)),
                y=alt.Y("row:N", title=None, sort=[f"{n}: {s}" for n in NET_LABELS for s in ("h", "f(h)", "out")]),
                color=alt.Color("v:Q", scale=charts.diverging(2.0, clamp=True), title="value"),
                tooltip=["net:N", alt.Tooltip("stage:N"), alt.Tooltip("c:O", title="component"), alt.Tooltip("v:Q", format=".4g")])
        .properties(width=32 * 11, height=alt.Step(18))
    )
    norms = (
        alt.Chart(numbers, title=alt.Title("size of the stream and of the write", fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.step == {step.name} && (datum.stage == 'norm_in' || datum.stage == 'norm_write')")
        .transform_calculate(what="datum.stage == 'norm_in' ? 'stream' : 'write'", shown="max(datum.v, 1e-12)")
        .mark_line(point=True)
        .encode(x=alt.X("layer:Q", title="block", scale=alt.Scale(domain=[1, DEPTH])),
                y=alt.Y("shown:Q", title="norm", scale=alt.Scale(type="log")),
                color=alt.Color("net:N", scale=nets, title="network"), strokeDash=alt.StrokeDash("what:N", title=None),
                detail="what:N",
                tooltip=["net:N", "what:N", "layer:Q", alt.Tooltip("v:Q", format=".3g")])
        .properties(width=240, height=170)
    )
    grads = (
        alt.Chart(numbers, title=alt.Title("size of the gradient dL/dh", fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.step == {step.name} && datum.stage == 'norm_grad'")
        .transform_calculate(shown="max(datum.v, 1e-12)")
        .mark_line(point=True)
        .encode(x=alt.X("layer:Q", title="block", scale=alt.Scale(domain=[1, DEPTH])),
                y=alt.Y("shown:Q", title="gradient norm", scale=alt.Scale(type="log")),
                color=alt.Color("net:N", scale=nets, title="network"),
                tooltip=["net:N", "layer:Q", alt.Tooltip("v:Q", format=".3g", title="gradient norm")])
        .properties(width=240, height=170)
    )
    marker = (alt.Chart(alt.Data(values=[{}])).mark_rule(color=charts.ACCENT, strokeDash=[4, 3])
              .encode(x=alt.datum(alt.expr(layer.name), type="quantitative")))
    probs = (
        alt.Chart(numbers, title=alt.Title("predicted probability per digit", fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.step == {step.name} && datum.stage == 'p'")
        .mark_bar()
        .encode(x=alt.X("c:O", title="digit", axis=alt.Axis(labelAngle=0)), xOffset="net:N",
                y=alt.Y("v:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("net:N", scale=nets, title="network"),
                tooltip=["net:N", alt.Tooltip("c:O", title="digit"), alt.Tooltip("v:Q", format=".3f")])
        .properties(width=240, height=140)
    )
    return alt.vconcat(cells, alt.hconcat(alt.layer(norms, marker), alt.layer(grads, marker), probs, spacing=28), spacing=18)


# --------------------------------------------------------------------------- gradients per layer


@figure(
    "residual-gradients",
    title="How much gradient reaches each block, with and without skips",
    caption=(
        "The size of the gradient of the training loss with respect to each hidden block's weight matrix, on the "
        "whole training split, in the 20-block MLP with and without skip connections (log scale; the line is the mean "
        "over three seeds, the band their range). The slider moves through training; step 0 is the initialisation."
    ),
    model=MODEL,
)
def residual_gradients(ctx: FigureContext):
    x_train, y_train, _, _ = deep_mlp.digits_tensors()
    rows = []
    for net in NETS:
        for seed in SEEDS:
            for step in KEEP:
                norms = residual.weight_gradient_norms(model_at(net, seed, step), x_train, y_train)
                rows += [{"net": net, "seed": seed, "step": step, "layer": l + 1, "grad": g} for l, g in enumerate(norms)]
    frame = pd.DataFrame(rows)
    for net in NETS:
        at_init = frame[(frame.net == net) & (frame.step == 0)]
        ratio = {seed: math.log10(max(g[g.layer == 1].grad.iloc[0], 1e-30) / g[g.layer == DEPTH].grad.iloc[0])
                 for seed, g in at_init.groupby("seed")}  # fmt: skip
        claim_over_seeds(ctx, f"{net}_init_first_over_last_log10", ratio)
        claim_over_seeds(ctx, f"{net}_init_first_block_grad", {s: g[g.layer == 1].grad.iloc[0] for s, g in at_init.groupby("seed")})
    ctx.claim("depth", DEPTH)

    summary = frame.groupby(["net", "step", "layer"]).grad.agg(["mean", "min", "max"]).reset_index()
    for col in ("mean", "min", "max"):
        summary[col] = summary[col].clip(lower=1e-12)
    panel = charts.Panel()
    step = panel.steps("step", KEEP, value=0)
    base = alt.Chart(summary).transform_filter(f"datum.step == {step.name}").encode(
        x=alt.X("layer:Q", title="block (1 = nearest the input)", scale=alt.Scale(domain=[1, DEPTH])))
    nets = charts.series_scale(NET_LABELS, [charts.SERIES[7], charts.SERIES[0]])
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("min:Q", title="gradient norm of the block's weights", scale=alt.Scale(type="log")),
                                               y2="max:Q", color=alt.Color("net:N", scale=nets, title="network"))
    line = base.mark_line(point=True).encode(
        y="mean:Q", color=alt.Color("net:N", scale=nets, title="network"),
        tooltip=["net:N", "layer:Q", alt.Tooltip("mean:Q", format=".3g", title="mean over seeds"),
                 alt.Tooltip("min:Q", format=".3g"), alt.Tooltip("max:Q", format=".3g")])
    return panel.finish(alt.layer(band, line).properties(width=460, height=260))


# --------------------------------------------------------------------------- training, and depth


@figure(
    "residual-training",
    title="Training with and without skips, and how deep a plain network can go",
    caption=(
        "Left: validation accuracy of the 20-block MLP over training, with and without skip connections, three seeds "
        "each (chance: 10%). Right: validation accuracy after 1,000 steps against the number of hidden blocks, the "
        "mean over three seeds with their range."
    ),
    model=MODEL + "; and the same recipe at other depths",
)
def residual_training(ctx: FigureContext):
    curves = pd.DataFrame([{**h, "net": net, "seed": seed} for net in NETS for seed in SEEDS for h in run(DEPTH, net, seed)["history"]])
    depths = []
    for depth in DEPTHS[ctx.scale]:
        for net in NETS:
            finals = {seed: run(depth, net, seed)["history"][-1]["accuracy"] for seed in SEEDS}
            claim_over_seeds(ctx, f"{net}_depth_{depth}_accuracy", finals)
            depths += [{"net": net, "depth": depth, "seed": s, "accuracy": a} for s, a in finals.items()]
    ctx.claim("chance", CHANCE)
    ctx.claim("steps", RECIPE["steps"])
    ctx.claim("deepest", max(DEPTHS[ctx.scale]))
    ctx.claim("shallow", min(DEPTHS[ctx.scale]))

    nets = charts.series_scale(NET_LABELS, [charts.SERIES[7], charts.SERIES[0]])
    over_time = alt.Chart(curves).mark_line(opacity=0.85).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("accuracy:Q", title="validation accuracy", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("net:N", scale=nets, title="network"), detail="seed:N",
        tooltip=["net:N", "seed:N", "step:Q", alt.Tooltip("accuracy:Q", format=".3f")],
    ).properties(width=260, height=200)
    chance = alt.Chart(pd.DataFrame([{"y": CHANCE}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q")
    sweep = pd.DataFrame(depths).groupby(["net", "depth"]).accuracy.agg(["mean", "min", "max"]).reset_index()
    base = alt.Chart(sweep).encode(x=alt.X("depth:Q", title="hidden blocks", scale=alt.Scale(type="log", base=2),
                                           axis=alt.Axis(values=list(DEPTHS["full"]))))
    by_depth = alt.layer(
        base.mark_errorbar().encode(y=alt.Y("min:Q", title="accuracy after 1,000 steps", scale=alt.Scale(domain=[0, 1])), y2="max:Q",
                                    color=alt.Color("net:N", scale=nets, title="network")),
        base.mark_line(point=True).encode(y="mean:Q", color=alt.Color("net:N", scale=nets, title="network"),
                                          tooltip=["net:N", "depth:Q", alt.Tooltip("mean:Q", format=".3f"),
                                                   alt.Tooltip("min:Q", format=".3f"), alt.Tooltip("max:Q", format=".3f")]),
    ).properties(width=220, height=200)
    return alt.hconcat(alt.layer(over_time, chance), alt.layer(by_depth, chance), spacing=32)


# --------------------------------------------------------------------------- the transformer's residual stream


@figure(
    "residual-transformer",
    title="In a transformer: how large each block's write is against the stream",
    caption=(
        "The flagship (2 layers, attention only), on held-out Python: at every position, the size of what each "
        "attention block adds to the residual stream divided by the size of the stream it is added to, averaged "
        "over positions, at each stored checkpoint of its three training runs (line: mean; band: range)."
    ),
    model=FLAGSHIP,
)
def residual_transformer(ctx: FigureContext):
    rows_in = torch.as_tensor(flagship.heldout_rows(4 if ctx.smoke else 16, 256)).long()
    rows = []
    for seed in SEEDS:
        for step in flagship.stored(seed).checkpoints:
            ratios = residual.block_write_ratios(flagship.load(seed, step=step), rows_in)
            rows += [{"seed": seed, "step": step, "layer": f"layer {l}", "ratio": r} for l, r in enumerate(ratios["attn"])]
    frame = pd.DataFrame(rows)
    last = frame.step.max()
    for l in (0, 1):
        layer = frame[frame.layer == f"layer {l}"]
        claim_over_seeds(ctx, f"layer_{l}_final_ratio", layer[layer.step == last].set_index("seed").ratio.to_dict())
        claim_over_seeds(ctx, f"layer_{l}_initial_ratio", layer[layer.step == 0].set_index("seed").ratio.to_dict())
    ctx.claim("final_step", int(last))

    summary = frame.groupby(["layer", "step"]).ratio.agg(["mean", "min", "max"]).reset_index()
    layers = charts.series_scale(["layer 0", "layer 1"])
    base = alt.Chart(summary).encode(x=alt.X("step:Q", title="training step"))
    return alt.layer(
        base.mark_area(opacity=0.25).encode(y=alt.Y("min:Q", title="‖attention write‖ / ‖stream‖"), y2="max:Q",
                                            color=alt.Color("layer:N", scale=layers, title=None)),
        base.mark_line(point=True).encode(y="mean:Q", color=alt.Color("layer:N", scale=layers, title=None),
                                          tooltip=["layer:N", "step:Q", alt.Tooltip("mean:Q", format=".3f"),
                                                   alt.Tooltip("min:Q", format=".3f"), alt.Tooltip("max:Q", format=".3f")]),
        alt.Chart(pd.DataFrame([{"y": 1.0}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q"),
    ).properties(width=420, height=220)


# --------------------------------------------------------------------------- a transformer without its skips

SKIP_RECIPE = dict(d_model=32, n_heads=4, n_layers=8, n_ctx=32, batch=16, lr=3e-3, train_bytes=2_000_000, eval_rows=64, log_every=25)
SKIP_STEPS = {"smoke": 150, "full": 300}
SKIP_MODEL = ("byte-level pre-LN transformers trained here on the flagship's corpus (explorer/models/skip_transformer.py): "
              "8 blocks of attention and MLP, d_model 32, 4 heads, context 32, with and without the residual additions, "
              "Adam at 3e-3, seeds 0-2")
SKIP_LABELS = {True: "with skips", False: "without skips"}


@functools.cache  # the figure reads each run twice (losses, gradients): one read of the cache
def skip_run(skip: bool, seed: int, steps: int) -> dict:
    recipe = {**SKIP_RECIPE, "steps": steps}
    return cached("residual-transformer-runs", {"skip": skip, "seed": seed, **recipe},
                  lambda: skip_transformer.train(skip, seed, **recipe), code=[skip_transformer])


def unigram_loss(train_bytes: int) -> float:
    """Held-out loss of the best model that ignores context: each byte's frequency in the training bytes."""
    counts = torch.bincount(norm_transformer.byte_rows("train", train_bytes), minlength=norm_transformer.VOCAB).double() + 1
    heldout = norm_transformer.byte_rows("heldout", train_bytes // 10)
    return float(-(counts / counts.sum()).log()[heldout].mean())


@figure(
    "residual-transformer-skips",
    title="A transformer with and without its skip connections",
    caption=(
        "Small byte-level transformers, 8 blocks deep (attention and MLP, pre-LN), trained on Python source with and "
        "without the residual additions, three seeds each. Left: held-out loss over training (line: mean; band: lowest "
        "to highest seed); dashed: the best model that ignores context and predicts each byte by its frequency; "
        "dotted: every byte equally likely. Right: the gradient norm of each block's weights at the step the slider "
        "picks (log scale; block 1 is nearest the input)."
    ),
    model=SKIP_MODEL,
)
def residual_transformer_skips(ctx: FigureContext):
    steps = SKIP_STEPS[ctx.scale]
    losses, grads = [], []
    for skip in (True, False):
        runs = {seed: skip_run(skip, seed, steps)["history"] for seed in SEEDS}
        key = "skip" if skip else "noskip"
        claim_over_seeds(ctx, f"{key}_final_loss", {s: h[-1]["loss"] for s, h in runs.items()})
        claim_over_seeds(ctx, f"{key}_final_first_block_grad", {s: h[-1]["grad_norms"][0] for s, h in runs.items()})
        claim_over_seeds(ctx, f"{key}_init_first_block_grad", {s: h[0]["grad_norms"][0] for s, h in runs.items()})
        for i, point in enumerate(runs[SEEDS[0]]):
            values = [runs[s][i]["loss"] for s in SEEDS]
            losses.append({"net": SKIP_LABELS[skip], "step": point["step"], "mean": sum(values) / 3, "min": min(values), "max": max(values)})
            for block in range(SKIP_RECIPE["n_layers"]):
                g = [max(runs[s][i]["grad_norms"][block], 1e-12) for s in SEEDS]
                grads.append({"net": SKIP_LABELS[skip], "step": point["step"], "block": block + 1, "mean": sum(g) / 3, "min": min(g), "max": max(g)})
    ctx.claim("unigram_loss", unigram_loss(SKIP_RECIPE["train_bytes"]))
    ctx.claim("uniform_loss", math.log(norm_transformer.VOCAB))
    ctx.claim("steps", steps)
    ctx.claim("blocks", SKIP_RECIPE["n_layers"])

    nets = charts.series_scale(list(SKIP_LABELS.values()), [charts.SERIES[0], charts.SERIES[7]])
    color = alt.Color("net:N", scale=nets, title="network")
    curves = alt.Chart(pd.DataFrame(losses).round(4)).encode(x=alt.X("step:Q", title="training step"))
    references = pd.DataFrame([{"y": ctx.claims["unigram_loss"], "dash": "unigram"}, {"y": ctx.claims["uniform_loss"], "dash": "uniform"}])
    left = alt.layer(
        curves.mark_area(opacity=0.2).encode(y=alt.Y("min:Q", title="held-out loss (nats per byte)", scale=alt.Scale(domain=[2, 6])), y2="max:Q", color=color),
        curves.mark_line().encode(y="mean:Q", color=color, tooltip=["net:N", "step:Q", alt.Tooltip("mean:Q", format=".3f", title="mean over seeds")]),
        alt.Chart(references).mark_rule(color=charts.MUTED).encode(
            y="y:Q", strokeDash=alt.StrokeDash("dash:N", scale=alt.Scale(domain=["unigram", "uniform"], range=[[4, 3], [1, 2]]), legend=None)),
    ).properties(width=300, height=220)

    panel = charts.Panel()
    step = panel.steps("step", sorted({g["step"] for g in grads}), value=steps)
    per_block = alt.Chart(pd.DataFrame(grads)).transform_filter(f"datum.step == {step.name}").encode(
        x=alt.X("block:Q", title="block (1 = nearest the input)", scale=alt.Scale(domain=[1, SKIP_RECIPE["n_layers"]])))
    right = alt.layer(
        per_block.mark_area(opacity=0.2).encode(y=alt.Y("min:Q", title="gradient norm of the block", scale=alt.Scale(type="log"), axis=alt.Axis(format="~e")), y2="max:Q", color=color),
        per_block.mark_line(point=True).encode(y="mean:Q", color=color, tooltip=["net:N", "block:Q", alt.Tooltip("mean:Q", format=".3g", title="mean over seeds"),
                                                                                 alt.Tooltip("min:Q", format=".3g"), alt.Tooltip("max:Q", format=".3g")]),
    ).properties(width=300, height=220)
    return panel.finish(alt.hconcat(left, right, spacing=28))
