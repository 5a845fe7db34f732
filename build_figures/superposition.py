"""Interpretability: toy models of superposition (Elhage et al. 2022), and a sparse autoencoder that undoes one.

Everything here is the paper's didactic synthetic setup, trained here: the ReLU output model
x -> ReLU(W^T W x + b) (explorer/models/toy_superposition.py) on sparse synthetic features, many
instances at once as one batched model, three seeds each; and a small SAE
(explorer/models/toy_sae.py) on the hidden layer of the 5 -> 2 model. A feature counts as
represented when its column of W has length ||W_i|| > 0.5 (a trained model's columns end near 0 or
near 1 and above); the untrained models (the same initialisation, before any step) are the null.
"""

import functools
import math

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.models import toy_sae
from explorer.models import toy_superposition as toy
from explorer.pipeline import FigureContext, figure

SEEDS = (0, 1, 2)
NULL_INITS = 200  # untrained initialisations for the nulls (seeds 1000 ...)
THRESHOLD = 0.5  # ||W_i|| above this: the feature is represented
LR, BATCH = 3e-3, 1024  # Adam at a constant rate; the paper's notebook uses 1e-3 for 10,000 steps

# The 5 -> 2 model of the paper's first figure: importance 0.9^i.
FIVE_SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.97, 0.99)
FIVE_STEPS = {"smoke": 2500, "full": 6000}
FIVE_CHECKPOINTS = (0, 25, 50, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000)
FIVE_MODEL = ("toy ReLU output models x -> ReLU(WᵀWx + b), 5 features into 2 dimensions, importance 0.9^i, trained here "
              "on synthetic sparse features (one model per sparsity, seeds 0-2, as one batched run)")

# 20 -> 5: importance 0.7^i over a sparsity sweep (the W^T W figure), and uniform importance over
# 1/(1-S) (the dimensionality figure), in one batched run.
TWENTY_SPARSITIES = {"smoke": (0.0, 0.7, 0.9, 0.97, 0.99), "full": (0.0, 0.7, 0.9, 0.97, 0.99, 0.997)}
UNIFORM_X = {"smoke": (1.0, 1.25, 2.0, 8.0, 16.0), "full": (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 11.0, 16.0)}
TWENTY_STEPS = {"smoke": 2000, "full": 5000}
TWENTY_BATCH = {"smoke": 512, "full": 1024}
TWENTY_MODEL = ("toy ReLU output models, 20 features into 5 dimensions, trained here on synthetic sparse features: "
                "importance 0.7^i over sparsity, and equal importance over 1/(1-S); seeds 0-2, one batched run")
STICKY = {"1": 1.0, "3/4": 0.75, "1/2": 0.5, "2/5": 0.4, "5/16": 5 / 16, "1/4": 0.25}
NEAR = 0.03  # "at a fraction": |D_i - fraction| < NEAR

# 2 -> 1: the phase diagram.
PHASE_IMPORTANCE = {"smoke": 7, "full": 11}  # relative importance of feature 2, log-spaced 0.1 .. 10
PHASE_DENSITY = {"smoke": 5, "full": 9}  # feature density 1 - S, log-spaced 0.01 .. 1
PHASE_STEPS = {"smoke": 2000, "full": 4000}
PHASE_MODEL = ("toy ReLU output models, 2 features into 1 dimension, trained here on synthetic sparse features: one "
               "model per cell (relative importance x density), seeds 0-2, one batched run")
PHASES = ("not represented", "dedicated dimension", "superposed (antipodal)", "same direction")

# The SAE: on the hidden layer of the 5 -> 2 model at S = 0.99.
SAE_SPARSITY = 0.99
SAE_RECIPE = dict(n_latents=8, l1=0.3, steps=3000, batch=4096, lr=1e-2, resample_every=500, resample_until=1800,
                  checkpoints=[0, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 2500, 3000])
TRUE_LENGTH = 1.15  # the true directions are drawn a little longer than the unit decoder columns, to show beneath them
RECOVERED = 0.99  # a true feature counts as recovered when some decoder column has cosine above this with it
SAE_MODEL = ("sparse autoencoders (8 ReLU latents, L1 0.3, unit decoder columns, dead latents resampled), one per seed "
             "0-2, each trained here on the hidden layer of that seed's 5 -> 2 toy model at sparsity 0.99")


def tag(s: float) -> str:
    """Claim-key suffix of a sparsity: 0.97 -> 's97', 0.997 -> 's997', 0 -> 's0'."""
    return "s" + f"{s:.3f}".split(".")[1].rstrip("0") if s else "s0"


# --------------------------------------------------------------------------- runs


@functools.cache
def five_run(scale: str) -> toy.ToyRun:
    steps = FIVE_STEPS[scale]
    instances = [(s, seed) for s in FIVE_SPARSITIES for seed in SEEDS]
    config = {"sparsities": FIVE_SPARSITIES, "seeds": SEEDS, "n_features": 5, "n_hidden": 2, "importance": 0.9,
              "steps": steps, "batch": BATCH, "lr": LR, "checkpoints": [c for c in FIVE_CHECKPOINTS if c <= steps]}

    def build():
        importance = torch.tensor([[0.9**i for i in range(5)]] * len(instances))
        density = torch.tensor([[1 - s] * 5 for s, _ in instances])
        return toy.train(importance, density, [seed for _, seed in instances], n_hidden=2, steps=steps, batch=BATCH,
                         lr=LR, checkpoints=config["checkpoints"])

    return cached("superposition-five", config, build, code=[toy])


def five_index(s: float, seed: int) -> int:
    return FIVE_SPARSITIES.index(s) * len(SEEDS) + SEEDS.index(seed)


@functools.cache
def twenty_run(scale: str) -> tuple[toy.ToyRun, list[tuple[str, float, int]]]:
    instances = ([("decay", s, seed) for s in TWENTY_SPARSITIES[scale] for seed in SEEDS]
                 + [("uniform", x, seed) for x in UNIFORM_X[scale] for seed in SEEDS])  # fmt: skip
    steps = TWENTY_STEPS[scale]
    config = {"instances": instances, "n_features": 20, "n_hidden": 5, "importance": 0.7, "steps": steps,
              "batch": TWENTY_BATCH[scale], "lr": LR}

    def build():
        importance = torch.tensor([[0.7**i if kind == "decay" else 1.0 for i in range(20)] for kind, _, _ in instances])
        density = torch.tensor([[(1 - v) if kind == "decay" else 1 / v] * 20 for kind, v, _ in instances])
        return toy.train(importance, density, [seed for *_, seed in instances], n_hidden=5, steps=steps,
                         batch=TWENTY_BATCH[scale], lr=LR, checkpoints=[0, steps])

    return cached("superposition-twenty", config, build, code=[toy]), instances


def phase_grid(scale: str) -> tuple[list[float], list[float]]:
    n_r, n_d = PHASE_IMPORTANCE[scale], PHASE_DENSITY[scale]
    importances = [round(10 ** (-1 + 2 * i / (n_r - 1)), 4) for i in range(n_r)]
    densities = [round(10 ** (-2 + 2 * i / (n_d - 1)), 4) for i in range(n_d)]
    return importances, densities


@functools.cache
def phase_run(scale: str) -> tuple[toy.ToyRun, list[tuple[float, float, int]]]:
    importances, densities = phase_grid(scale)
    instances = [(r, d, seed) for d in densities for r in importances for seed in SEEDS]
    steps = PHASE_STEPS[scale]
    config = {"instances": instances, "n_features": 2, "n_hidden": 1, "steps": steps, "batch": 512, "lr": LR}

    def build():
        importance = torch.tensor([[1.0, r] for r, _, _ in instances])
        density = torch.tensor([[d, d] for _, d, _ in instances])
        return toy.train(importance, density, [seed for *_, seed in instances], n_hidden=1, steps=steps, batch=512,
                         lr=LR, checkpoints=[0, steps])

    return cached("superposition-phase", config, build, code=[toy]), instances


def untrained(n_hidden: int, n_features: int) -> torch.Tensor:
    """(NULL_INITS, hidden, feat): the same initialisation as training, never trained."""
    return toy.init_weights(list(range(1000, 1000 + NULL_INITS)), n_hidden, n_features)


# --------------------------------------------------------------------------- measures


def represented(W: torch.Tensor) -> torch.Tensor:
    return toy.norms(W) > THRESHOLD


def antipodal_pairs(W: torch.Tensor) -> int:
    """Pairs of represented features pointing in opposite directions (cosine below -0.99)."""
    unit = W / toy.norms(W).clamp_min(1e-9)
    cos = unit.T @ unit
    keep = represented(W)
    n = W.shape[1]
    return sum(1 for i in range(n) for j in range(i + 1, n) if keep[i] and keep[j] and cos[i, j] < -0.99)


def pentagon_error(W: torch.Tensor) -> float:
    """For a 2-D W: the largest gap, in degrees, between the angles of neighbouring features and the 72°
    of a regular pentagon (all five features, represented or not)."""
    angles = sorted(math.degrees(math.atan2(float(W[1, i]), float(W[0, i]))) % 360 for i in range(W.shape[1]))
    gaps = [b - a for a, b in zip(angles, angles[1:])] + [angles[0] + 360 - angles[-1]]
    return max(abs(g - 360 / len(angles)) for g in gaps)


def mean_dimensionality(W: torch.Tensor) -> float:
    keep = represented(W)
    return float(toy.dimensionality(W)[keep].mean()) if keep.any() else 0.0


# --------------------------------------------------------------------------- 1. five features in two dimensions


@figure(
    "superposition-five",
    title="Five features in two dimensions: the columns of W as sparsity grows",
    caption=(
        "A didactic synthetic toy, as in Elhage et al. (2022): five features, each present with probability 1 - S and "
        "then uniform in [0, 1], squeezed into two hidden dimensions and read back by ReLU(WᵀWx + b), trained on "
        "importance-weighted squared error (feature 1 counts 1, feature 5 counts 0.9⁴). Left: each feature's column "
        "W_i of the 2 × 5 matrix W drawn as an arrow in the hidden plane (the circle has radius 1). Right: the "
        "arrows' lengths; the dashed line is the 0.5 above which the text counts a feature as represented. Pick the "
        "sparsity and the seed; the step slider plays the training."
    ),
    model=FIVE_MODEL,
)
def superposition_five(ctx: FigureContext):
    run = five_run(ctx.scale)
    rows = []
    for k, s in enumerate(FIVE_SPARSITIES):
        for seed in SEEDS:
            i = five_index(s, seed)
            for c, step in enumerate(run.steps):
                W = run.W_checkpoints[c, i]
                for f in range(5):
                    rows.append({"k": k, "seed": seed, "step": step, "feature": f"feature {f + 1}", "x": float(W[0, f]),
                                 "y": float(W[1, f]), "norm": float(W[:, f].norm())})
    for s in FIVE_SPARSITIES:
        finals = {seed: run.W[five_index(s, seed)] for seed in SEEDS}
        claim_over_seeds(ctx, f"represented_{tag(s)}", {seed: float(represented(W).sum()) for seed, W in finals.items()})
        claim_over_seeds(ctx, f"dimensionality_{tag(s)}", {seed: mean_dimensionality(W) for seed, W in finals.items()})
        claim_over_seeds(ctx, f"antipodal_pairs_{tag(s)}", {seed: float(antipodal_pairs(W)) for seed, W in finals.items()})
        claim_over_seeds(ctx, f"pentagon_error_{tag(s)}", {seed: pentagon_error(W) for seed, W in finals.items()})
    null = untrained(2, 5)
    ctx.claim("untrained_represented", float(represented(null).sum(-1).float().mean()))
    ctx.claim("untrained_pentagon_error", sum(pentagon_error(W) for W in null) / len(null))
    ctx.claim("untrained_antipodal_pairs", sum(antipodal_pairs(W) for W in null) / len(null))
    ctx.claim("steps", run.steps[-1])
    ctx.claim("instances", len(FIVE_SPARSITIES) * len(SEEDS))

    panel = charts.Panel()
    sparsity = panel.slider("sparsity", list(range(len(FIVE_SPARSITIES))), label="Sparsity S",
                            labels=[f"S = {s:g} (density {1 - s:.2g})" for s in FIVE_SPARSITIES],
                            value=FIVE_SPARSITIES.index(0.9))
    seed = panel.select("seed", list(SEEDS), label="Seed")
    step = panel.steps("step", run.steps, value=run.steps[-1])
    frame = pd.DataFrame(rows).round(4)
    return panel.finish(five_chart(frame, sparsity, seed, step))


def feature_colors(n: int) -> alt.Scale:
    return charts.series_scale([f"feature {i + 1}" for i in range(n)])


def plane(base: alt.Chart, limit: float, color: alt.Color, tooltip: list, size: int = 300) -> alt.LayerChart:
    """Arrows from the origin to (x, y), a unit circle, and the axes, on a square plot of the hidden plane."""
    scale = alt.Scale(domain=[-limit, limit])
    ticks = alt.Axis(values=[-1, -0.5, 0, 0.5, 1])
    x = alt.X("x:Q", scale=scale, title="hidden dimension 1", axis=ticks)
    y = alt.Y("y:Q", scale=scale, title="hidden dimension 2", axis=ticks)
    circle = alt.Chart(pd.DataFrame([{"t": t, "x": math.cos(2 * math.pi * t / 72), "y": math.sin(2 * math.pi * t / 72)}
                                     for t in range(73)])).mark_line(color=charts.RULE).encode(x=x, y=y, order="t:Q")
    arrows = base.transform_calculate(x0="0", y0="0").mark_rule(strokeWidth=2.5).encode(
        x=alt.X("x0:Q", scale=scale, title="hidden dimension 1", axis=ticks),
        y=alt.Y("y0:Q", scale=scale, title="hidden dimension 2", axis=ticks),
        x2="x:Q", y2="y:Q", color=color)
    tips = base.mark_point(filled=True, size=60, opacity=1).encode(x=x, y=y, color=color, tooltip=tooltip)
    return alt.layer(circle, arrows, tips).properties(width=size, height=size)


def five_chart(frame: pd.DataFrame, sparsity, seed, step):
    base = alt.Chart(frame).transform_filter(
        f"datum.k == {sparsity.name} && datum.seed == {seed.name} && datum.step == {step.name}")
    color = alt.Color("feature:N", scale=feature_colors(5), title="feature (importance 0.9^i)")
    arrows = plane(base, 1.35, color, [alt.Tooltip("feature:N"), alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f"),
                                       alt.Tooltip("norm:Q", title="length ||W_i||", format=".3f")])
    bars = base.mark_bar().encode(
        x=alt.X("feature:N", title=None, axis=alt.Axis(labelAngle=0, labelExpr="replace(datum.label, 'feature ', '')")),
        y=alt.Y("norm:Q", title="length ||W_i||", scale=alt.Scale(domain=[0, 1.3])), color=color,
        tooltip=[alt.Tooltip("feature:N"), alt.Tooltip("norm:Q", title="||W_i||", format=".3f")])
    line = alt.Chart(pd.DataFrame([{"y": THRESHOLD}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q")
    return alt.hconcat(arrows, alt.layer(bars, line).properties(width=180, height=300), spacing=30)


# --------------------------------------------------------------------------- 2. twenty features in five dimensions


@figure(
    "superposition-twenty",
    title="Twenty features in five dimensions: WᵀW, and which features share",
    caption=(
        "The same toy at 20 features and 5 hidden dimensions, importance 0.7^i (feature 1 the most important), seed 0. "
        "Left: WᵀW, the 20 × 20 matrix the model multiplies its input by before the bias and ReLU (diagonal: ||W_i||²; "
        "off the diagonal: how much feature j leaks into feature i's output). Right: each feature's length ||W_i||, "
        "coloured by its superposition Σ_{j≠i} (Ŵ_i·W_j)², how much of the other features lands on its direction "
        "(0: a dimension of its own). Move the slider from dense to sparse to see more features packed in. "
        "A didactic synthetic setup."
    ),
    model=TWENTY_MODEL,
)
def superposition_twenty(ctx: FigureContext):
    run, instances = twenty_run(ctx.scale)
    sparsities = TWENTY_SPARSITIES[ctx.scale]
    cells, bars = [], []
    for k, s in enumerate(sparsities):
        W = run.W[instances.index(("decay", s, 0))]
        gram, norm, sup = W.T @ W, toy.norms(W), toy.superposition(W)
        cells += [{"k": k, "i": i + 1, "j": j + 1, "v": float(gram[i, j])} for i in range(20) for j in range(20)]
        bars += [{"k": k, "i": i + 1, "norm": float(norm[i]), "sup": float(sup[i])} for i in range(20)]
    null = untrained(5, 20)
    for s in sparsities:
        finals = {seed: run.W[instances.index(("decay", s, seed))] for seed in SEEDS}
        claim_over_seeds(ctx, f"represented_{tag(s)}", {seed: float(represented(W).sum()) for seed, W in finals.items()})
        claim_over_seeds(ctx, f"dims_per_feature_{tag(s)}", {seed: float(toy.dimensions_per_feature(W)) for seed, W in finals.items()})
        claim_over_seeds(ctx, f"superposition_{tag(s)}", {seed: float(toy.superposition(W)[represented(W)].mean())
                                                          for seed, W in finals.items()})  # fmt: skip
    ctx.claim("untrained_represented", float(represented(null).sum(-1).float().mean()))
    ctx.claim("untrained_dims_per_feature", float(toy.dimensions_per_feature(null).mean()))
    ctx.claim("sparsest", sparsities[-1])
    ctx.claim("steps", TWENTY_STEPS[ctx.scale])

    panel = charts.Panel()
    sparsity = panel.slider("sparsity", list(range(len(sparsities))), label="Sparsity S",
                            labels=[f"S = {s:g} (density {1 - s:.2g})" for s in sparsities], value=len(sparsities) - 2)
    filt = f"datum.k == {sparsity.name}"
    features = alt.Scale(domain=list(range(1, 21)))
    heat = alt.Chart(pd.DataFrame(cells).round(4)).transform_filter(filt).mark_rect().encode(
        x=alt.X("j:O", title="feature j", scale=features, axis=alt.Axis(labelAngle=0, values=[1, 5, 10, 15, 20])),
        y=alt.Y("i:O", title="feature i", scale=features, axis=alt.Axis(values=[1, 5, 10, 15, 20])),
        color=alt.Color("v:Q", scale=charts.diverging(1.2, clamp=True), title="(WᵀW)ᵢⱼ"),
        tooltip=[alt.Tooltip("i:O", title="feature i"), alt.Tooltip("j:O", title="feature j"), alt.Tooltip("v:Q", format=".3f")],
    ).properties(width=300, height=300)
    bar = alt.Chart(pd.DataFrame(bars).round(4)).transform_filter(filt).mark_bar().encode(
        y=alt.Y("i:O", title="feature i", scale=features, axis=alt.Axis(values=[1, 5, 10, 15, 20])),
        x=alt.X("norm:Q", title="length ||W_i||", scale=alt.Scale(domain=[0, 1.4])),
        color=alt.Color("sup:Q", scale=charts.sequential((0, 1), clamp=True), title="superposition"),
        tooltip=[alt.Tooltip("i:O", title="feature"), alt.Tooltip("norm:Q", title="||W_i||", format=".3f"),
                 alt.Tooltip("sup:Q", title="Σ (Ŵ_i·W_j)²", format=".3f")],
    )
    line = alt.Chart(pd.DataFrame([{"x": THRESHOLD}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(x="x:Q")
    chart = alt.hconcat(heat, alt.layer(bar, line).properties(width=200, height=300), spacing=30).resolve_scale(color="independent")
    return panel.finish(chart)


@figure(
    "superposition-dimensionality",
    title="How much of a dimension each feature gets: the sticky fractions",
    caption=(
        "20 features of equal importance in 5 dimensions, at sparsities from dense (1/(1-S) = 1) to 1/(1-S) = 16 "
        "(each feature present once in 16 inputs). Dots: each represented feature's dimensionality "
        "D_i = ||W_i||² / Σ_j (Ŵ_i·W_j)², the share of a dimension it has (1: its own; 1/2: an antipodal pair; "
        "2/5: a pentagon), for seeds 0-2. Line: the model's dimensions per feature, 5 / ||W||_F², mean of the seeds. "
        "Dashed: 3/4 (a tetrahedron), 1/2 (an antipodal pair), 2/5 (a pentagon), and 5/16 and 1/4 (16 and 20 features "
        "shared evenly by 5 dimensions). A didactic synthetic setup."
    ),
    model=TWENTY_MODEL,
)
def superposition_dimensionality(ctx: FigureContext):
    run, instances = twenty_run(ctx.scale)
    xs = UNIFORM_X[ctx.scale]
    points, line = [], []
    for x in xs:
        per_seed = []
        for seed in SEEDS:
            W = run.W[instances.index(("uniform", x, seed))]
            D, keep = toy.dimensionality(W), represented(W)
            points += [{"x": x, "seed": seed, "feature": i + 1, "D": float(D[i]), "norm": float(toy.norms(W)[i])}
                       for i in range(20) if keep[i]]
            per_seed.append(float(toy.dimensions_per_feature(W)))
        line.append({"x": x, "dpf": sum(per_seed) / len(per_seed)})
    null = untrained(5, 20)
    null_D = toy.dimensionality(null)[represented(null)]
    for name, fraction, x in (("half", 0.5, 2.0), ("five_sixteenths", 5 / 16, 8.0), ("quarter", 0.25, 16.0)):
        shares = {}
        for seed in SEEDS:
            W = run.W[instances.index(("uniform", x, seed))]
            D = toy.dimensionality(W)[represented(W)]
            shares[seed] = float(((D - fraction).abs() < NEAR).float().mean())
        claim_over_seeds(ctx, f"share_near_{name}", shares)
        ctx.claim(f"untrained_share_near_{name}", float(((null_D - fraction).abs() < NEAR).float().mean()))
    for x in (1.0, 2.0, 8.0, 16.0):
        claim_over_seeds(ctx, f"represented_x{x:g}", {seed: float(represented(run.W[instances.index(("uniform", x, seed))]).sum())
                                                      for seed in SEEDS})  # fmt: skip
    ctx.claim("near", NEAR)

    xscale = alt.Scale(type="log", domain=[0.9, 32])  # room on the right for the fractions' labels
    dots = alt.Chart(pd.DataFrame(points).round(4)).mark_circle(size=28, opacity=0.55, color=charts.SERIES[0]).encode(
        x=alt.X("x:Q", scale=xscale, title="1 / (1 − S)", axis=alt.Axis(values=[1, 2, 4, 8, 16], format="~g")),
        y=alt.Y("D:Q", title="feature dimensionality D_i", scale=alt.Scale(domain=[0, 1.1])),
        tooltip=[alt.Tooltip("x:Q", title="1/(1-S)", format=".3g"), "seed:O", "feature:O", alt.Tooltip("D:Q", format=".3f"),
                 alt.Tooltip("norm:Q", title="||W_i||", format=".3f")])
    dpf = alt.Chart(pd.DataFrame(line).round(4)).mark_line(color=charts.INK, point=alt.OverlayMarkDef(color=charts.INK, size=20)).encode(
        x=alt.X("x:Q", scale=xscale), y="dpf:Q",
        tooltip=[alt.Tooltip("x:Q", title="1/(1-S)", format=".3g"), alt.Tooltip("dpf:Q", title="dimensions per feature", format=".3f")])
    sticky = pd.DataFrame([{"name": n, "y": v} for n, v in STICKY.items()])
    rules = alt.Chart(sticky).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q")
    labels = alt.Chart(sticky).mark_text(align="right", baseline="bottom", dx=-2, dy=-2, fontSize=charts.SMALL_SIZE,
                                         color=charts.MUTED).encode(y="y:Q", x=alt.datum(30, scale=xscale), text="name:N")
    return alt.layer(rules, labels, dots, dpf).properties(width=520, height=300)


# --------------------------------------------------------------------------- 3. the phase diagram


def phase_of(W: torch.Tensor) -> str:
    """W: (1, 2). Feature 2 not represented (|w2| <= 0.5); given the dimension to itself (|w1| <= 0.5);
    superposed with feature 1 (both > 0.5, opposite signs); or both > 0.5 in the same direction."""
    w1, w2 = float(W[0, 0]), float(W[0, 1])
    if abs(w2) <= THRESHOLD:
        return PHASES[0]
    if abs(w1) <= THRESHOLD:
        return PHASES[1]
    return PHASES[2] if w1 * w2 < 0 else PHASES[3]


@figure(
    "superposition-phase",
    title="Two features, one dimension: when the second one gets in",
    caption=(
        "Each cell is a toy model trained here: two features into one hidden dimension, feature 1 of importance 1, "
        "feature 2 of the importance on the x axis, both present with the probability on the y axis. The colour is "
        "what the trained W = (w₁, w₂) does with feature 2: not represented (|w₂| ≤ 0.5), given the dimension on its "
        "own (|w₂| > 0.5, |w₁| ≤ 0.5), or superposed with feature 1 (both > 0.5, opposite signs: an antipodal pair). "
        "Pick the seed: every cell of a seed starts from the same initial W. A didactic synthetic setup, after the "
        "paper's phase diagram."
    ),
    model=PHASE_MODEL,
)
def superposition_phase(ctx: FigureContext):
    run, instances = phase_run(ctx.scale)
    importances, densities = phase_grid(ctx.scale)
    rows, phases = [], {}
    for n, (r, d, seed) in enumerate(instances):
        phase = phase_of(run.W[n])
        phases[(r, d, seed)] = phase
        rows.append({"r": importances.index(r), "d": densities.index(d), "importance": r, "density": d, "seed": seed,
                     "phase": phase, "w1": float(run.W[n, 0, 0]), "w2": float(run.W[n, 0, 1])})
    sparse = [d for d in densities if d <= 0.1]
    share = lambda cells, name, seed: sum(phases[(r, d, seed)] == name for r, d in cells) / len(cells)  # noqa: E731
    sparse_cells = [(r, d) for r in importances for d in sparse]
    dense_cells = [(r, densities[-1]) for r in importances]
    claim_over_seeds(ctx, "superposed_sparse", {seed: share(sparse_cells, PHASES[2], seed) for seed in SEEDS})
    claim_over_seeds(ctx, "superposed_dense", {seed: share(dense_cells, PHASES[2], seed) for seed in SEEDS})
    claim_over_seeds(ctx, "dedicated_dense_important", {seed: share([(r, densities[-1]) for r in importances if r > 1.5],
                                                                     PHASES[1], seed) for seed in SEEDS})  # fmt: skip
    claim_over_seeds(ctx, "absent_dense_unimportant", {seed: share([(r, densities[-1]) for r in importances if r < 0.67],
                                                                    PHASES[0], seed) for seed in SEEDS})  # fmt: skip
    start = toy.init_weights(list(SEEDS), 1, 2)[:, 0]  # (seed, 2): every cell of a seed starts from the same W
    same = [seed for seed in SEEDS if float(start[SEEDS.index(seed)].prod()) > 0]
    ctx.claim("same_sign_seeds", len(same))
    for name, group in (("same_sign", same), ("opposite_sign", [s for s in SEEDS if s not in same])):
        if group:
            ctx.claim(f"superposed_sparse_{name}", sum(share(sparse_cells, PHASES[2], s) for s in group) / len(group))
    cells = [(r, d) for r in importances for d in densities]
    ctx.claim("seeds_agree", sum(len({phases[(r, d, s)] for s in SEEDS}) == 1 for r, d in cells) / len(cells))
    null = untrained(1, 2)
    ctx.claim("untrained_superposed", sum(phase_of(W) == PHASES[2] for W in null) / len(null))
    ctx.claim("cells", len(cells))
    ctx.claim("sparse_density", max(sparse))

    panel = charts.Panel()
    seed = panel.select("seed", list(SEEDS), label="Seed")
    colors = charts.series_scale(list(PHASES), [charts.FAINT, charts.SERIES[1], charts.SERIES[0], charts.SERIES[3]])
    chart = alt.Chart(pd.DataFrame(rows).round(4)).transform_filter(f"datum.seed == {seed.name}").mark_rect(
        stroke=charts.PAPER, strokeWidth=1).encode(
        x=alt.X("r:O", title="relative importance of feature 2", axis=alt.Axis(
            labelAngle=0, labelExpr=f"format({importances}[datum.value], '.2~g')")),
        y=alt.Y("d:O", title="feature density 1 - S", sort="descending", axis=alt.Axis(
            labelExpr=f"format({densities}[datum.value], '.2~g')")),
        color=alt.Color("phase:N", scale=colors, title="feature 2 is"),
        tooltip=[alt.Tooltip("importance:Q", title="importance of feature 2", format=".3g"),
                 alt.Tooltip("density:Q", format=".3g"), "phase:N", alt.Tooltip("w1:Q", format=".3f"),
                 alt.Tooltip("w2:Q", format=".3f")],
    ).properties(width=440, height=320)
    return panel.finish(chart)


# --------------------------------------------------------------------------- 4. a sparse autoencoder


@functools.cache
def sae_runs(scale: str) -> dict[int, toy_sae.SAERun]:
    five = five_run(scale)
    out = {}
    for seed in SEEDS:
        W = five.W[five_index(SAE_SPARSITY, seed)]
        config = {"toy_steps": FIVE_STEPS[scale], "toy_sparsity": SAE_SPARSITY, "seed": seed, **SAE_RECIPE}
        out[seed] = cached("superposition-sae", config,
                           lambda W=W, seed=seed: toy_sae.train(W, 1 - SAE_SPARSITY, seed, **SAE_RECIPE), code=[toy_sae])
    return out


def random_directions_null(n_latents: int, n_features_dirs: torch.Tensor, draws: int = 2000) -> tuple[float, float]:
    """Random unit decoder columns: (mean number of true features recovered, mean worst max-cosine)."""
    generator = torch.Generator().manual_seed(77)
    recovered, worst = 0.0, 0.0
    for _ in range(draws):
        cos = toy_sae.max_cosine(n_features_dirs, torch.randn(n_features_dirs.shape[0], n_latents, generator=generator))
        recovered += float((cos > RECOVERED).sum())
        worst += float(cos.min())
    return recovered / draws, worst / draws


@figure(
    "superposition-sae",
    title="A sparse autoencoder finds the five features again",
    caption=(
        "A sparse autoencoder with 8 latents trained on the 2-D hidden activations h = Wx of the 5 → 2 toy model at "
        "S = 0.99 (a didactic synthetic setup: the true features are known). Left: the true feature directions "
        "(grey, the columns W_i, drawn at length 1.15 so that they show) and the SAE's 8 decoder columns (length 1; "
        "coloured if the "
        "latent fires on held-out inputs, faint if it is dead). Right: for each true feature, the largest cosine "
        "between its direction and any decoder column; dashed: the 0.99 the text calls recovered. Pick the seed; the "
        "step slider plays the SAE's training (dead latents are resampled at steps 500 to 1,500)."
    ),
    model=SAE_MODEL,
)
def superposition_sae(ctx: FigureContext):
    five, saes = five_run(ctx.scale), sae_runs(ctx.scale)
    arrows, cosines = [], []
    l0, fve, dead, recovered, worst, fve_init, on_feature, per_feature = {}, {}, {}, {}, {}, {}, {}, {}
    for seed in SEEDS:
        W = five.W[five_index(SAE_SPARSITY, seed)]
        h = toy_sae.toy_hidden(W, 1 - SAE_SPARSITY, 200_000, torch.Generator().manual_seed(2024 + seed))
        run = saes[seed]
        unit = W / toy.norms(W)
        for f in range(5):
            for step in run.steps:
                arrows.append({"seed": seed, "step": step, "kind": "true", "name": f"feature {f + 1}",
                               "x": TRUE_LENGTH * float(unit[0, f]), "y": TRUE_LENGTH * float(unit[1, f])})
        for step, params in zip(run.steps, run.checkpoints):
            fires = toy_sae.firing(params, h)
            for k in range(SAE_RECIPE["n_latents"]):
                arrows.append({"seed": seed, "step": step, "kind": "alive" if fires[k] > 0 else "dead",
                               "name": f"latent {k + 1}", "x": float(params["W_dec"][0, k]), "y": float(params["W_dec"][1, k]),
                               "fires": float(fires[k])})
            cos = toy_sae.max_cosine(W, params["W_dec"])
            cosines += [{"seed": seed, "step": step, "feature": f"feature {f + 1}", "cos": float(cos[f])} for f in range(5)]
        metrics = toy_sae.metrics(toy_sae.final(run), h)
        l0[seed], fve[seed], dead[seed] = metrics["l0"], metrics["variance_explained"], metrics["dead_fraction"]
        fve_init[seed] = toy_sae.metrics(run.checkpoints[0], h)["variance_explained"]
        cos = toy_sae.max_cosine(W, run.W_dec)
        recovered[seed], worst[seed] = float((cos > RECOVERED).sum()), float(cos.min())
        live = toy_sae.firing(toy_sae.final(run), h) > 0
        latent_cos = toy_sae.max_cosine(run.W_dec[:, live], W)  # each live latent's best cosine with a true feature
        on_feature[seed] = float((latent_cos > RECOVERED).float().mean())
        per_feature[seed] = metrics["l0"] / (5 * (1 - SAE_SPARSITY))
    claim_over_seeds(ctx, "recovered", recovered)
    claim_over_seeds(ctx, "worst_max_cosine", worst)
    claim_over_seeds(ctx, "l0", l0)
    claim_over_seeds(ctx, "variance_explained", fve)
    claim_over_seeds(ctx, "variance_explained_init", fve_init)
    claim_over_seeds(ctx, "dead_fraction", dead)
    claim_over_seeds(ctx, "live_on_a_feature", on_feature)
    claim_over_seeds(ctx, "l0_per_feature", per_feature)
    claim_over_seeds(ctx, "resampled", {seed: float(sum(saes[seed].resampled)) for seed in SEEDS})
    null_recovered, null_worst = random_directions_null(SAE_RECIPE["n_latents"], five.W[five_index(SAE_SPARSITY, 0)])
    ctx.claim("random_recovered", null_recovered)
    ctx.claim("random_worst_max_cosine", null_worst)
    ctx.claim("true_l0", 5 * (1 - SAE_SPARSITY))  # expected features present per input
    ctx.claim("n_latents", SAE_RECIPE["n_latents"])
    ctx.claim("l1", SAE_RECIPE["l1"])
    ctx.claim("sae_steps", SAE_RECIPE["steps"])
    ctx.claim("threshold", RECOVERED)

    panel = charts.Panel()
    seed = panel.select("seed", list(SEEDS), label="Seed")
    steps = saes[SEEDS[0]].steps
    step = panel.steps("step", steps, value=steps[-1], label="SAE training step")
    filt = f"datum.seed == {seed.name} && datum.step == {step.name}"
    base = alt.Chart(pd.DataFrame(arrows).round(4)).transform_filter(filt)
    kinds = alt.Color("kind:N", scale=charts.series_scale(["true", "alive", "dead"], [charts.MUTED, charts.ACCENT, charts.FAINT]),
                      title="direction")
    left = plane(base, 1.25, kinds, [alt.Tooltip("name:N"), alt.Tooltip("kind:N"), alt.Tooltip("x:Q", format=".3f"),
                                     alt.Tooltip("y:Q", format=".3f"), alt.Tooltip("fires:Q", title="fires on (share of inputs)", format=".4f")])
    bars = alt.Chart(pd.DataFrame(cosines).round(4)).transform_filter(filt).mark_bar(color=charts.SERIES[0]).encode(
        x=alt.X("feature:N", title="true feature", axis=alt.Axis(labelAngle=0, labelExpr="replace(datum.label, 'feature ', '')")),
        y=alt.Y("cos:Q", title="best cosine with a decoder column", scale=alt.Scale(domain=[0, 1])),
        tooltip=["feature:N", alt.Tooltip("cos:Q", title="max cosine", format=".4f")])
    line = alt.Chart(pd.DataFrame([{"y": RECOVERED}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q")
    return panel.finish(alt.hconcat(left, alt.layer(bars, line).properties(width=180, height=300), spacing=30))
