"""Curriculum, chapter 6: layer normalization, on the flagship's real activations and on small transformers.

The computation panel and the geometry read the flagship's stored checkpoints (a pre-LN transformer,
explorer/longruns/flagship.py): every number of its LayerNorm on one byte of code, over training.
The learning-rate sweep trains small byte-level transformers here (explorer/models/norm_transformer.py)
with no LayerNorm, pre-LN and post-LN blocks, three seeds each, at constant learning rates without
warm-up.
"""

import functools
import math

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.ensemble import claim_over_seeds
from explorer.models import flagship, norm_transformer
from explorer.pipeline import FigureContext, figure
from explorer.techniques import layernorm, prompts

SEEDS = (0, 1, 2)
FLAGSHIP = "flagship-bytes-2l (stored checkpoints of its three training runs, explorer/longruns/flagship.py)"
SWEEP_MODEL = ("byte-level transformers trained here on the flagship's corpus (explorer/models/norm_transformer.py): 4 layers, "
               "d_model 32, 4 heads, context 32, no LayerNorm / pre-LN / post-LN, Adam at a constant learning rate, seeds 0-2")
RECIPE = dict(d_model=32, n_heads=4, n_layers=4, n_ctx=32, steps=300, batch=16, train_bytes=2_000_000, eval_rows=64, log_every=25)
RATES = {"smoke": (3e-3, 3e-2), "full": (1e-3, 3e-3, 1e-2, 3e-2)}
SCALE_RATE = 3e-3  # the learning rate whose activation scales are drawn
UNIFORM_LOSS = math.log(norm_transformer.VOCAB)  # a model that predicts every byte equally: ln 256 = 5.55 nats
POSITIONS = 12  # bytes of the code prompt the panel offers
LN_LAYER = 1  # the panel's LayerNorm: the one in front of layer 1's attention, reading layer 0's output


@functools.cache  # the sweep and the scale figure read the same runs: one read of the cache each
def sweep_run(norm: str, lr: float, seed: int) -> dict:
    return norm_transformer.sweep_entry(norm, lr, seed, RECIPE)


def train_sweep(rates: tuple[float, ...]) -> None:
    """Train every missing run of these rates two at a time (the machine has two cores; each run uses one)."""
    norm_transformer.train_missing([(n, lr, s) for n in norm_transformer.NORMS for lr in rates for s in SEEDS], RECIPE)


def rate_key(lr: float) -> str:
    return f"{lr:.0e}".replace("-0", "m").replace("-", "m").replace("+0", "")


# --------------------------------------------------------------------------- the computation panel


def ln_input(model, tokens: torch.Tensor, layer: int) -> tuple[torch.Tensor, dict]:
    """The stream that LayerNorm `layer` reads (hook_in) and the hooks' own steps, for checking."""
    names = [f"blocks.{layer}.ln1.hook_{h}" for h in ("in", "scale", "normalized", "out")]
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return cache[names[0]][0], {h: cache[n][0] for h, n in zip(("in", "scale", "normalized", "out"), names, strict=True)}


@figure(
    "layernorm-panel",
    title="LayerNorm, every number: one byte of code through the flagship's norm",
    caption=(
        "The LayerNorm in front of the flagship's second attention layer, on one byte of the code prompt (pick it "
        "above): the 128 numbers of the residual stream it reads (x), their mean, the centred vector (x − mean), its "
        "size σ, the normalised vector ((x − mean) / σ, whose 128 numbers have mean 0 and variance 1), and the output "
        "after the learned per-component scale γ and shift β. The slider moves through the flagship's training (seed 0)."
    ),
    model=FLAGSHIP,
)
def layernorm_panel(ctx: FigureContext):
    trained = flagship.load(0)
    tokens = prompts.prompt_tokens(trained, prompts.FLAGSHIP, "code")
    text = prompts.token_strings(trained, tokens[0])
    positions = torch.linspace(8, tokens.shape[1] - 1, POSITIONS).round().long().tolist()
    steps = sorted(flagship.stored(0).checkpoints)
    rows = {p: [] for p in positions}
    checks = []
    for step in steps:  # one model and one forward pass per checkpoint serve every byte
        model = flagship.load(0, step=step)
        x, hooked = ln_input(model, tokens, LN_LAYER)
        ln = layernorm.torch_layernorm(model.blocks[LN_LAYER].ln1)
        for p in positions:
            s = layernorm.layernorm_steps(x[p], ln)
            checks.append(float((s.out - hooked["out"][p]).abs().max()))
            for stage, values in (("x", s.x), ("centred", s.centred), ("normalized", s.normalized), ("out", s.out)):
                rows[p] += [{"step": step, "stage": stage, "c": c, "v": round(float(v), 3)} for c, v in enumerate(values)]
            rows[p] += [{"step": step, "stage": "mean", "v": float(s.mean)}, {"step": step, "stage": "sigma", "v": float(s.scale)}]
    names, labels = [], []
    for p in positions:
        ctx.asset(f"panel/byte-{p}.json", {"numbers": rows[p]})
        names.append(f"byte-{p}")
        labels.append(f"byte {p}: {text[p]!s} in …{''.join(text[max(0, p - 6):p])}[{text[p]}]")
    ctx.claim("max_gap_to_hooks", max(checks))  # the panel's output against TransformerLens's hook_out
    trained_ln = layernorm.torch_layernorm(trained.blocks[LN_LAYER].ln1)
    ctx.claim("gamma_mean_abs_change", float((trained_ln.weight - 1).abs().mean()))
    ctx.claim("beta_mean_abs", float(trained_ln.bias.abs().mean()))
    ctx.claim("d_model", trained.cfg.d_model)
    ctx.claim("positions", len(positions))

    panel = charts.Panel()
    panel.data("byte", names, label="Byte of the code prompt", labels=labels)
    step = panel.steps("step", steps, value=steps[-1])
    panel.source("panel/{byte}.json", datasets=["numbers"])
    return panel.finish(panel_chart(step))


def panel_chart(step: alt.Parameter):
    numbers = alt.Data(name="numbers")
    titles = {"x": "x, the stream it reads", "centred": "x − mean", "normalized": "(x − mean) / σ", "out": "γ · (x − mean) / σ + β"}
    strips = []
    for stage, title in titles.items():
        strips.append(
            alt.Chart(numbers, title=alt.Title(title, fontSize=charts.LABEL_SIZE, anchor="start"))
            .transform_filter(f"datum.step == {step.name} && datum.stage == '{stage}'")
            .mark_rect()
            .encode(x=alt.X("c:O", axis=None), color=alt.Color("v:Q", scale=charts.diverging(3.0, clamp=True), title="value"),
                    tooltip=[alt.Tooltip("c:O", title="component"), alt.Tooltip("v:Q", format=".3f")])
            .properties(width=128 * 3, height=20)
        )
    scalars = (
        alt.Chart(numbers, title=alt.Title("the two numbers per vector", fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.step == {step.name} && (datum.stage == 'mean' || datum.stage == 'sigma')")
        .transform_calculate(label="(datum.stage == 'mean' ? 'mean = ' : 'σ = ') + format(datum.v, '.3f')")
        .mark_text(align="left", fontSize=charts.LABEL_SIZE, color=charts.INK)
        .encode(y=alt.Y("stage:N", axis=None, sort=["mean", "sigma"]), text="label:N")
        .properties(width=160, height=44)
    )
    return alt.vconcat(*strips, scalars, spacing=10).resolve_scale(color="shared")


# --------------------------------------------------------------------------- geometry


@figure(
    "layernorm-geometry",
    title="Centre, then scale onto a sphere: LayerNorm on 4,096 real activations",
    caption=(
        "The same LayerNorm of the flagship on held-out Python (each point one byte position): the mean of the 128 "
        "numbers of each vector against the vector's length. Before: a cloud. After centring, every mean is 0. After "
        "dividing by σ, every vector has length √128 ≈ 11.3: the points lie on one sphere (before the learned γ and β). "
        "Final weights of seed 0; the claims cover all three seeds."
    ),
    model=FLAGSHIP,
)
def layernorm_geometry(ctx: FigureContext):
    rows_in = torch.as_tensor(flagship.heldout_rows(4 if ctx.smoke else 16, 256)).long()
    per_seed, points = {}, []
    for seed in SEEDS:
        model = flagship.load(seed)
        name = f"blocks.{LN_LAYER}.ln1.hook_in"
        _, cache = model.run_with_cache(rows_in, names_filter=lambda n: n == name)
        x = cache[name].reshape(-1, model.cfg.d_model)  # (tokens, d_model)
        s = layernorm.layernorm_steps(x, layernorm.torch_layernorm(model.blocks[LN_LAYER].ln1))
        per_seed[seed] = {
            "mean_abs_before": float(s.mean.abs().mean()),
            "mean_abs_centred": float(s.centred.mean(-1).abs().max()),
            "norm_cv_before": float(s.x.norm(dim=-1).std() / s.x.norm(dim=-1).mean()),
            "norm_after": float(s.normalized.norm(dim=-1).mean()),
            "norm_spread_after": float(s.normalized.norm(dim=-1).max() - s.normalized.norm(dim=-1).min()),
        }
        if seed == 0:
            take = torch.arange(0, len(x), max(1, len(x) // 1024))
            for stage, vectors in (("1. before", s.x), ("2. centred", s.centred), ("3. normalised", s.normalized)):
                for i in take.tolist():
                    points.append({"stage": stage, "mean": round(float(vectors[i].mean()), 4), "norm": round(float(vectors[i].norm()), 4)})
    for key in per_seed[0]:
        claim_over_seeds(ctx, key, {seed: v[key] for seed, v in per_seed.items()})
    ctx.claim("sqrt_d", math.sqrt(flagship.load(0).cfg.d_model))
    ctx.claim("tokens", int(rows_in.numel()))
    chart = alt.Chart(pd.DataFrame(points)).mark_circle(size=14, opacity=0.5, color=charts.SERIES[0]).encode(
        x=alt.X("mean:Q", title="mean of the 128 numbers"), y=alt.Y("norm:Q", title="length of the vector", scale=alt.Scale(zero=True)),
        tooltip=[alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("norm:Q", format=".3f")],
    ).properties(width=190, height=180)
    return chart.facet(facet=alt.Facet("stage:N", title=None, header=alt.Header(labelFontSize=charts.LABEL_SIZE)), columns=3).resolve_scale(x="independent")


# --------------------------------------------------------------------------- the learning-rate sweep


@figure(
    "layernorm-sweep",
    title="No LayerNorm, pre-LN and post-LN over learning rates",
    caption=(
        "Small byte-level transformers (4 layers) trained for 300 steps on Python source at a constant learning rate "
        "with no warm-up, three seeds per setting: the held-out loss at the end (line: the mean; points: each seed; a "
        "run that diverged is drawn at the top, at 6). The dashed line is a model that gives every byte the same "
        "probability (ln 256 = 5.55 nats)."
    ),
    model=SWEEP_MODEL,
)
def layernorm_sweep(ctx: FigureContext):
    train_sweep(RATES[ctx.scale])
    rows = []
    for norm in norm_transformer.NORMS:
        for lr in RATES[ctx.scale]:
            finals = {seed: sweep_run(norm, lr, seed)["history"][-1]["loss"] for seed in SEEDS}
            shown = {s: min(v, 6.0) for s, v in finals.items()}
            claim_over_seeds(ctx, f"{norm}_{rate_key(lr)}_loss", shown)
            ctx.claim(f"{norm}_{rate_key(lr)}_diverged", sum(v > UNIFORM_LOSS for v in finals.values()))
            rows += [{"norm": norm, "lr": lr, "seed": s, "loss": v} for s, v in shown.items()]
    ctx.claim("uniform_loss", UNIFORM_LOSS)
    ctx.claim("steps", RECIPE["steps"])
    frame = pd.DataFrame(rows)
    norms = charts.series_scale(list(norm_transformer.NORMS), [charts.SERIES[7], charts.SERIES[0], charts.SERIES[1]])
    x = alt.X("lr:Q", title="learning rate (Adam, constant)", scale=alt.Scale(type="log"), axis=alt.Axis(values=list(RATES["full"]), format=".0e"))
    points = alt.Chart(frame).mark_point(filled=True, size=40).encode(
        x=x, y=alt.Y("loss:Q", title="held-out loss after 300 steps (nats per byte)", scale=alt.Scale(domain=[1.5, 6.2])),
        color=alt.Color("norm:N", scale=norms, title="LayerNorm"), tooltip=["norm:N", alt.Tooltip("lr:Q", format=".0e"), "seed:N", alt.Tooltip("loss:Q", format=".3f")])
    line = alt.Chart(frame).mark_line().encode(x=x, y="mean(loss):Q", color=alt.Color("norm:N", scale=norms, title="LayerNorm"))
    uniform = alt.Chart(pd.DataFrame([{"y": UNIFORM_LOSS}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q")
    return alt.layer(line, points, uniform).properties(width=380, height=240)


@figure(
    "layernorm-scale",
    title="How large the residual stream grows, with and without LayerNorm",
    caption=(
        "The same runs at learning rate 3e-3: the root-mean-square size of the residual stream after the embeddings "
        "(layer 0) and after each of the four blocks, on held-out rows, over training (mean over three seeds). The "
        "slider moves through training."
    ),
    model=SWEEP_MODEL,
)
def layernorm_scale(ctx: FigureContext):
    train_sweep((SCALE_RATE,))
    rows = []
    for norm in norm_transformer.NORMS:
        for seed in SEEDS:
            for h in sweep_run(norm, SCALE_RATE, seed)["history"]:
                rows += [{"norm": norm, "seed": seed, "step": h["step"], "layer": l, "rms": min(r, 1e6)} for l, r in enumerate(h["rms"])]
    frame = pd.DataFrame(rows)
    last = frame.step.max()
    for norm in norm_transformer.NORMS:
        final = frame[(frame.norm == norm) & (frame.step == last)]
        claim_over_seeds(ctx, f"{norm}_final_top_rms", final[final.layer == final.layer.max()].set_index("seed").rms.to_dict())
        claim_over_seeds(ctx, f"{norm}_final_embed_rms", final[final.layer == 0].set_index("seed").rms.to_dict())
    summary = frame.groupby(["norm", "step", "layer"]).rms.mean().reset_index()
    panel = charts.Panel()
    step = panel.steps("step", sorted(frame.step.unique().tolist()), value=int(last))
    norms = charts.series_scale(list(norm_transformer.NORMS), [charts.SERIES[7], charts.SERIES[0], charts.SERIES[1]])
    chart = alt.Chart(summary).transform_filter(f"datum.step == {step.name}").mark_line(point=True).encode(
        x=alt.X("layer:O", title="after block (0: the embeddings)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("rms:Q", title="RMS of the residual stream", scale=alt.Scale(type="log")),
        color=alt.Color("norm:N", scale=norms, title="LayerNorm"),
        tooltip=["norm:N", "layer:O", alt.Tooltip("rms:Q", format=".3g", title="mean over seeds")],
    ).properties(width=360, height=220)
    return panel.finish(chart)
