"""LoRA: what a low-rank adapter learns and forgets, against full fine-tuning and tuning only the last layers.

Two models trained here, each fine-tuned on a narrower or shifted task by seven methods (LoRA at ranks
1, 2, 4, 8 and 16, full fine-tuning, the last layers only), three seeds each, the same steps and data
for every method (explorer/techniques/lora.py):

- the flagship (flagship-bytes-2l seeds 0-2, attention-only, bytes) continued on one package's files
  (sympy), the narrow slice of the weight-evolution article. Target: loss on held-out sympy files;
  forgetting: the rise of the loss on the rest of the held-out corpus (weight_change's evaluation sets).
  LoRA adapts W_Q, W_K, W_V and W_O of both blocks; "last layers" trains block 1, the final LayerNorm
  and the unembedding.
- the digits MLP (64-64-32-10, the activations article's healthy run, seeds 0-2) fine-tuned on digits
  turned a quarter turn. Target: accuracy on rotated validation digits; forgetting: the fall of the
  accuracy on upright ones. LoRA adapts its three linear layers; "last layers" trains the output layer.

Each method's learning rate is the best of four on seed 0 by the target measured on a tuning set
kept apart from the evaluation set (other windows of the held-out sympy files; the other half of the
validation digits), then used for every seed. The update W_after - W_before is then measured with
weight_change's spectra against a Gaussian matrix of the same shape and norm.
"""

import functools

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import artifacts, charts
from explorer.cache import cached
from explorer.device import deterministic
from explorer.ensemble import claim_over_seeds
from explorer.models import digits
from explorer.models.flagship import arch_of
from explorer.pipeline import FigureContext, figure
from explorer.techniques import lora
from explorer.techniques import weight_change as wc

SEEDS = (0, 1, 2)
PACKAGE = "sympy"
RANKS = (1, 2, 4, 8, 16)
ALPHA = 16  # LoRA's update is scaled by alpha / r: fixed alpha, as the LoRA paper does, so the rank can change without retuning much
METHODS = {"full": ("full", 0), "last": ("last", 0), **{f"lora{r}": ("lora", r) for r in RANKS}}  # key: (method, rank)
LABELS = {"full": "full fine-tuning", "last": "last layers only", **{f"lora{r}": f"LoRA r={r}" for r in RANKS}}
FLAGSHIP_RUN = {
    "full": dict(steps=48, batch=8, warmup=8, eval_rows=32, tune_rows=16, other_limit=3_000_000),
    "smoke": dict(steps=16, batch=4, warmup=4, eval_rows=8, tune_rows=4, other_limit=500_000),
}
FLAGSHIP_RECIPE = dict(package=PACKAGE, weight_decay=0.01, betas=(0.9, 0.99), threads=1, alpha=ALPHA)  # weight_evolution's AdamW
FLAGSHIP_LRS = {"full": (1e-4, 3e-4, 1e-3, 3e-3), "last": (3e-4, 1e-3, 3e-3, 1e-2), "lora": (1e-3, 3e-3, 1e-2, 3e-2)}
DIGITS_RUN = {"full": dict(steps=200, batch=64), "smoke": dict(steps=60, batch=64)}
DIGITS_LRS = {"full": (3e-3, 1e-2, 3e-2, 1e-1), "last": (1e-2, 3e-2, 1e-1, 3e-1), "lora": (3e-3, 1e-2, 3e-2, 1e-1)}
ATTENTION = [f"L{layer}_W_{kind}" for layer in (0, 1) for kind in wc.KINDS]  # the matrices LoRA adapts in the flagship
DIGITS_LAYERS = ("fc1", "fc2", "out")
NULL_DRAWS = {"smoke": 2, "full": 8}
CHANCE = 0.1  # ten digit classes
# the rank of an update: singular values above this share of its largest. W after - W before in float32 leaves
# rounding noise near 1e-6 of the largest; a LoRA update's r-th value sits near 0.1 of it (measured on both scales)
RANK_TOL = 1e-4
FLAGSHIP_MODEL = ("flagship-bytes-2l seeds 0-2 (attention-only, bytes; models/), each fine-tuned here on sympy's training files by "
                  "seven methods (explorer/techniques/lora.py)")  # fmt: skip
DIGITS_MODEL = ("MLP 64-64-32-10 on scikit-learn digits (the healthy regime of explorer/models/digits.py, seeds 0-2), each "
                "fine-tuned here on rotated digits by seven methods (explorer/techniques/lora.py)")  # fmt: skip
MODEL = FLAGSHIP_MODEL + "; " + DIGITS_MODEL


@functools.cache
def pretrained() -> dict[int, artifacts.Artifact]:
    """The stored flagship runs (literal names, so each one's provenance is an input of these figures)."""
    return {0: artifacts.load("flagship-bytes-2l-s0"), 1: artifacts.load("flagship-bytes-2l-s1"), 2: artifacts.load("flagship-bytes-2l-s2")}


def flagship_config(scale: str, seed: int, key: str, lr: float) -> dict:
    method, rank = METHODS[key]
    return dict(FLAGSHIP_RECIPE, **FLAGSHIP_RUN[scale], seed=seed, method=method, rank=rank, lr=lr,
                start=pretrained()[seed].provenance["weights_sha256"])  # fmt: skip


def flagship_run(scale: str, seed: int, key: str, lr: float) -> dict:
    start = pretrained()[seed]
    config = flagship_config(scale, seed, key, lr)
    return cached("lora-flagship", config, lambda: lora.fine_tune(start.weights, arch_of(start.weights), config), code=[lora])


def sweep(grid: dict, run, score, better) -> tuple[dict, dict, dict]:
    """Seed 0 at every learning rate of its method's grid, the best by `score` on the tuning set, then
    seeds 1 and 2 at that rate. Returns ({(key, lr): seed-0 run}, {key: chosen lr}, {(key, seed): run})."""
    tuning = {(key, lr): run(0, key, lr) for key, (method, _) in METHODS.items() for lr in grid[method]}
    chosen = {key: better([lr for k, lr in tuning if k == key], key=lambda lr, key=key: score(tuning[(key, lr)])) for key in METHODS}
    runs = {(key, seed): tuning[(key, lr)] if seed == 0 else run(seed, key, lr) for key, lr in chosen.items() for seed in SEEDS}
    return tuning, chosen, runs


@functools.cache
def flagship(scale: str) -> dict:
    """Every flagship fine-tune (cached: a few minutes cold), the pretrained losses and the updates' spectra."""
    tuning, chosen, runs = sweep(FLAGSHIP_LRS, lambda seed, key, lr: flagship_run(scale, seed, key, lr), lambda r: r["losses"]["tuning"], min)
    arch = arch_of(pretrained()[0].weights)
    config = flagship_config(scale, 0, "full", 0.0)
    base = {seed: lora.losses_of(pretrained()[seed].weights, arch, config) for seed in SEEDS}
    before = {seed: wc.named_matrices({k: v.float() for k, v in pretrained()[seed].weights.items()}, arch) for seed in SEEDS}
    spectra = {(key, seed): {n: wc.singular_values(w - before[seed][n]) for n, w in wc.named_matrices(run["weights"], arch).items()}
               for (key, seed), run in runs.items()}  # fmt: skip
    return dict(tuning=tuning, chosen=chosen, runs=runs, base=base, spectra=spectra, arch=arch)


def digits_pretrained(scale: str, seed: int) -> digits.TrainedDigits:
    """The activations article's healthy MLP (the same cache entry: same steps, seed and checkpoints)."""
    steps = digits.REGIME_STEPS[scale]
    keep = [s for s in digits.REGIME_CHECKPOINTS if s < steps] + [steps]
    return digits.train_digits("mlp", "healthy", steps=steps, seed=seed, checkpoints=keep)


def digits_run(scale: str, seed: int, key: str, lr: float) -> dict:
    method, rank = METHODS[key]
    config = dict(DIGITS_RUN[scale], seed=seed, method=method, rank=rank, alpha=ALPHA, lr=lr, pretrain_steps=digits.REGIME_STEPS[scale])

    def build() -> dict:
        model = digits_pretrained(scale, seed).model_at(digits.REGIME_STEPS[scale])
        with deterministic(threads=1):
            return lora.fine_tune_digits(model, digits.load_digits_split(0).tensors(), config)

    return cached("lora-digits", config, build, code=[lora, digits])


@functools.cache
def digits_runs(scale: str) -> dict:
    tuning, chosen, runs = sweep(DIGITS_LRS, lambda seed, key, lr: digits_run(scale, seed, key, lr), lambda r: r["scores"]["tuning"], max)
    _, _, x_val, y_val = digits.load_digits_split(0).tensors()
    base, spectra = {}, {}
    for seed in SEEDS:
        model = digits_pretrained(scale, seed).model_at(digits.REGIME_STEPS[scale])
        base[seed] = lora.digits_scores(model, x_val, y_val)
        for key in METHODS:
            after = runs[(key, seed)]["weights"]
            spectra[(key, seed)] = {n: wc.singular_values(after[f"{n}.weight"] - getattr(model, n).weight.detach()) for n in DIGITS_LAYERS}
    return dict(tuning=tuning, chosen=chosen, runs=runs, base=base, spectra=spectra)


def gains(scale: str) -> dict:
    """{(key, seed): (target gain, forgetting)} of the flagship: the fall of the held-out sympy loss and the rise of the rest."""
    f = flagship(scale)
    return {(key, seed): (f["base"][seed]["package"] - run["losses"]["package"], run["losses"]["other"] - f["base"][seed]["other"])
            for (key, seed), run in f["runs"].items()}  # fmt: skip


def digits_gains(scale: str) -> dict:
    """{(key, seed): (rotated accuracy after, fall of the upright accuracy)} of the digits MLP."""
    d = digits_runs(scale)
    return {(key, seed): (run["scores"]["target"], d["base"][seed]["original"] - run["scores"]["original"]) for (key, seed), run in d["runs"].items()}


# --------------------------------------------------------------------------- figure 1: learning against forgetting


def tradeoff_rows(values: dict, model: str) -> list[dict]:
    rows = []
    for key in METHODS:
        ys, xs = zip(*(values[(key, seed)] for seed in SEEDS), strict=True)
        rows.append({"model": model, "method": LABELS[key], "o": list(METHODS).index(key), "x": float(np.mean(xs)), "y": float(np.mean(ys)),
                     "x0": min(xs), "x1": max(xs), "y0": min(ys), "y1": max(ys)})  # fmt: skip
    return rows


def tradeoff_view(rows: list[dict], reference: dict, *, x_title: str, y_title: str, title: str, y_format: str) -> alt.LayerChart:
    names = [LABELS[k] for k in METHODS]
    frame = pd.DataFrame(rows)
    color = alt.Color("method:N", scale=charts.series_scale(names), sort=names, title=None, legend=alt.Legend(orient="bottom", columns=4))
    tips = [alt.Tooltip("method:N"), alt.Tooltip("x:Q", title=x_title, format=".3f"), alt.Tooltip("x0:Q", title="lowest seed", format=".3f"),
            alt.Tooltip("x1:Q", title="highest seed", format=".3f"), alt.Tooltip("y:Q", title=y_title, format=y_format),
            alt.Tooltip("y0:Q", title="lowest seed", format=y_format), alt.Tooltip("y1:Q", title="highest seed", format=y_format)]  # fmt: skip
    base = alt.Chart(frame)
    x_bars = base.mark_rule(strokeWidth=1.5).encode(x=alt.X("x0:Q", title=x_title), x2="x1:Q", y=alt.Y("y:Q", title=y_title), color=color, tooltip=tips)
    y_bars = base.mark_rule(strokeWidth=1.5).encode(x="x:Q", y="y0:Q", y2="y1:Q", color=color, tooltip=tips)
    dots = base.mark_point(filled=True, size=70, opacity=1).encode(x="x:Q", y="y:Q", color=color, tooltip=tips)
    ref = alt.Chart(pd.DataFrame([reference])).mark_point(shape="cross", size=110, filled=True, color=charts.INK).encode(
        x="x:Q", y="y:Q", tooltip=[alt.Tooltip("what:N", title="reference"), alt.Tooltip("x:Q", title=x_title, format=".3f"),
                                   alt.Tooltip("y:Q", title=y_title, format=y_format)])  # fmt: skip
    ref_text = alt.Chart(pd.DataFrame([reference])).mark_text(align="left", dx=7, dy=-7, fontSize=charts.SMALL_SIZE, color=charts.INK).encode(
        x="x:Q", y="y:Q", text="what:N")  # fmt: skip
    return alt.layer(x_bars, y_bars, dots, ref, ref_text).properties(width=400, height=280, title=title)


@figure(
    "lora-tradeoff",
    title="What each method learns and what it forgets",
    caption=(
        "One point per method: the mean over 3 seeds, with each seed's range as bars. Left, the flagship fine-tuned on "
        "sympy's files: how far the loss on held-out sympy files falls (up: learns more) against how far the loss on the "
        "rest of the held-out corpus rises (right: forgets more), in nats per byte. Right, the digits MLP fine-tuned on "
        "digits turned a quarter turn: accuracy on rotated validation digits against the fall of the accuracy on upright "
        "ones. The cross is the pretrained model, before any fine-tuning. Every method ran the same steps on the same "
        "batches, at the best of four learning rates (chosen on seed 0, on a tuning set apart from these)."
    ),
    model=MODEL,
)
def tradeoff(ctx: FigureContext) -> alt.TopLevelMixin:
    g, d = gains(ctx.scale), digits_gains(ctx.scale)
    record_tradeoff_claims(ctx, g, d)
    base_rotated = float(np.mean([digits_runs(ctx.scale)["base"][s]["target"] for s in SEEDS]))
    left = tradeoff_view(tradeoff_rows({k: (y, x) for k, (y, x) in g.items()}, "flagship"), {"x": 0.0, "y": 0.0, "what": "pretrained"},
                         x_title="forgetting: rise of the other code's loss", y_title="learning: fall of the sympy loss",
                         title="Flagship, fine-tuned on sympy", y_format=".3f")  # fmt: skip
    right = tradeoff_view(tradeoff_rows(d, "digits"), {"x": 0.0, "y": base_rotated, "what": "pretrained (chance: 10%)"},
                          x_title="forgetting: fall of the upright accuracy", y_title="learning: rotated accuracy",
                          title="Digits MLP, fine-tuned on rotated digits", y_format=".1%")  # fmt: skip
    return alt.hconcat(left, right).resolve_scale(color="shared")


def record_tradeoff_claims(ctx: FigureContext, g: dict, d: dict) -> None:
    f, dr = flagship(ctx.scale), digits_runs(ctx.scale)
    for key in METHODS:
        claim_over_seeds(ctx, f"{key}_gain", {s: g[(key, s)][0] for s in SEEDS})
        claim_over_seeds(ctx, f"{key}_forget", {s: g[(key, s)][1] for s in SEEDS})
        claim_over_seeds(ctx, f"{key}_gain_share", {s: g[(key, s)][0] / g[("full", s)][0] for s in SEEDS})  # of full fine-tuning's gain
        claim_over_seeds(ctx, f"{key}_forget_share", {s: g[(key, s)][1] / g[("full", s)][1] for s in SEEDS})
        ctx.claim(f"{key}_lr", f["chosen"][key])
        ctx.claim(f"{key}_params", f["runs"][(key, 0)]["trainable"])
        claim_over_seeds(ctx, f"d_{key}_target", {s: d[(key, s)][0] for s in SEEDS})
        claim_over_seeds(ctx, f"d_{key}_forget", {s: d[(key, s)][1] for s in SEEDS})
        claim_over_seeds(ctx, f"d_{key}_original", {s: dr["runs"][(key, s)]["scores"]["original"] for s in SEEDS})
        ctx.claim(f"d_{key}_lr", dr["chosen"][key])
        ctx.claim(f"d_{key}_params", dr["runs"][(key, 0)]["trainable"])
    claim_over_seeds(ctx, "base_package", {s: f["base"][s]["package"] for s in SEEDS})
    claim_over_seeds(ctx, "base_other", {s: f["base"][s]["other"] for s in SEEDS})
    claim_over_seeds(ctx, "d_base_original", {s: dr["base"][s]["original"] for s in SEEDS})
    claim_over_seeds(ctx, "d_base_target", {s: dr["base"][s]["target"] for s in SEEDS})
    ctx.claim("chance", CHANCE)
    # in how many seeds each LoRA rank forgets less than full fine-tuning, and learns less
    for prefix, values in (("", g), ("d_", d)):
        for r in RANKS:
            ctx.claim(f"{prefix}lora{r}_forgets_less_seeds", sum(values[(f"lora{r}", s)][1] < values[("full", s)][1] for s in SEEDS))
            ctx.claim(f"{prefix}lora{r}_learns_less_seeds", sum(values[(f"lora{r}", s)][0] < values[("full", s)][0] for s in SEEDS))
    config = flagship_config(ctx.scale, 0, "full", 0.0)
    ctx.claim("steps", config["steps"])
    ctx.claim("batch", config["batch"])
    ctx.claim("kbytes", config["steps"] * config["batch"] * f["arch"]["n_ctx"] / 1e3)
    ctx.claim("package", PACKAGE)
    ctx.claim("d_steps", DIGITS_RUN[ctx.scale]["steps"])
    ctx.claim("d_batch", DIGITS_RUN[ctx.scale]["batch"])
    ctx.claim("alpha", ALPHA)
    ctx.claim("seeds", len(SEEDS))
    ctx.claim("full_params_total", f["runs"][("full", 0)]["trainable"])


# --------------------------------------------------------------------------- figure 2: the rank of the update


@functools.cache
def nulls(scale: str) -> dict[str, np.ndarray]:
    """Mean spectrum of a unit-norm Gaussian matrix of each shape the figure measures."""
    shapes = {"128x128": (128, 128), "64x64": (64, 64), "32x64": (32, 64), "10x32": (10, 32)}
    return {key: wc.null_spectrum(shape, NULL_DRAWS[scale]) for key, shape in shapes.items()}


def shape_of(model: str, name: str) -> str:
    return "128x128" if model == "flagship" else {"fc1": "64x64", "fc2": "32x64", "out": "10x32"}[name]


def matrix_label(model: str, name: str) -> str:
    return wc.label(name) if model == "flagship" else f"{name} ({shape_of(model, name).replace('x', ' × ')})"


@figure(
    "lora-rank",
    title="How many directions each update uses",
    caption=(
        "Left: r90 (the number of singular values that hold 90% of the squared norm) of each matrix's update, W after "
        "fine-tuning minus W before, for full fine-tuning (mean over 3 seeds, bar: range) and for each LoRA rank (its "
        "update has rank r at most), against a Gaussian matrix of the same shape and norm (grey tick). Right: the share "
        "of each full fine-tuning update's squared norm held by its top k singular directions (seed 0), the most that a "
        "rank-k update could reproduce (Eckart-Young); dashed, the Gaussian null; the vertical lines mark the LoRA ranks."
    ),
    model=MODEL,
)
def rank(ctx: FigureContext) -> alt.TopLevelMixin:
    f, d, null = flagship(ctx.scale), digits_runs(ctx.scale), nulls(ctx.scale)
    record_rank_claims(ctx, f, d, null)
    dots, curves = [], []
    for model, spectra, names in (("flagship", f["spectra"], ATTENTION), ("digits", d["spectra"], DIGITS_LAYERS)):
        for i, name in enumerate(names):
            m = matrix_label(model, name)
            shape = shape_of(model, name)
            for key in METHODS:
                if key == "last":
                    continue
                ranks = [wc.rank_at(spectra[(key, s)][name]) for s in SEEDS]
                dots.append({"model": model, "m": m, "o": i, "method": LABELS[key], "r": float(np.mean(ranks)), "r0": min(ranks), "r1": max(ranks),
                             "rn": wc.rank_at(null[shape]), "top": round(wc.top_share(spectra[(key, 0)][name], 8), 3)})  # fmt: skip
            share = wc.cumulative_share(spectra[("full", 0)][name])
            null_share = wc.cumulative_share(null[shape])
            curves += [{"model": model, "m": m, "k": k + 1, "series": "full fine-tuning", "share": round(float(v), 4)} for k, v in enumerate(share)]
            curves += [{"model": model, "m": m, "k": k + 1, "series": "Gaussian null", "share": round(float(v), 4)} for k, v in enumerate(null_share)]
    panel = charts.Panel()
    model = panel.select("model", ["flagship", "digits"], label="Model", labels=["the flagship (attention matrices)", "the digits MLP"], radio=True)
    names = [LABELS[k] for k in METHODS if k != "last"]
    color = alt.Color("method:N", scale=charts.series_scale([LABELS[k] for k in METHODS], None), sort=names, title=None,
                      legend=alt.Legend(orient="bottom", columns=3))  # fmt: skip
    tips = [alt.Tooltip("m:N", title="matrix"), alt.Tooltip("method:N"), alt.Tooltip("r:Q", title="r90 (mean)", format=".1f"),
            alt.Tooltip("r0:Q", title="lowest seed"), alt.Tooltip("r1:Q", title="highest seed"), alt.Tooltip("rn:Q", title="r90 of the null"),
            alt.Tooltip("top:Q", title="share in the top 8 (seed 0)", format=".0%")]  # fmt: skip
    base = alt.Chart(pd.DataFrame(dots)).transform_filter(f"datum.model == {model.name}")
    y = alt.Y("m:N", sort=alt.SortField("o"), title=None)
    x_scale = alt.Scale(type="log", domain=[0.8, 128])
    null_ticks = base.transform_filter("datum.method == 'full fine-tuning'").mark_tick(color=charts.MUTED, thickness=2, size=14).encode(
        y=y, x=alt.X("rn:Q", scale=x_scale), tooltip=[alt.Tooltip("m:N", title="matrix"), alt.Tooltip("rn:Q", title="r90 of the Gaussian null")])  # fmt: skip
    bars = base.mark_rule(strokeWidth=1.5).encode(y=y, x=alt.X("r0:Q", scale=x_scale), x2="r1:Q", color=color, tooltip=tips)
    points = base.mark_point(filled=True, size=50, opacity=0.95).encode(
        y=y, x=alt.X("r:Q", scale=x_scale, title="r90 of the update (log scale)", axis=alt.Axis(values=[1, 2, 4, 8, 16, 32, 64, 128])),
        color=color, tooltip=tips)  # fmt: skip
    left = alt.layer(null_ticks, bars, points).properties(width=380, height=alt.Step(26), title="Directions holding 90% of the update")
    curve_base = alt.Chart(pd.DataFrame(curves)).transform_filter(f"datum.model == {model.name}")
    lines = curve_base.mark_line(strokeWidth=1.4).encode(
        x=alt.X("k:Q", scale=alt.Scale(type="log", domain=[1, 128]), title="k (top singular directions, log scale)",
                axis=alt.Axis(values=[1, 2, 4, 8, 16, 32, 64, 128])),
        y=alt.Y("share:Q", scale=alt.Scale(domain=[0, 1]), title="share of ‖ΔW‖²", axis=alt.Axis(format="%")),
        detail="m:N",
        color=alt.Color("series:N", scale=charts.series_scale(["full fine-tuning", "Gaussian null"], [charts.ACCENT, charts.MUTED]), title=None,
                        legend=alt.Legend(orient="bottom")),
        strokeDash=alt.condition("datum.series == 'Gaussian null'", alt.value([4, 3]), alt.value([1, 0])),
        tooltip=[alt.Tooltip("m:N", title="matrix"), alt.Tooltip("series:N"), alt.Tooltip("k:Q"), alt.Tooltip("share:Q", format=".1%")],
    )  # fmt: skip
    marks = alt.Chart(pd.DataFrame([{"k": r, "t": f"r={r}"} for r in RANKS])).mark_rule(color=charts.RULE, strokeDash=[2, 2]).encode(
        x="k:Q", tooltip=[alt.Tooltip("t:N", title="LoRA rank")])  # fmt: skip
    right = alt.layer(marks, lines).properties(width=300, height=220, title="Share of the full update in its top k directions")
    return panel.finish(alt.hconcat(left, right).resolve_scale(color="independent"))


def record_rank_claims(ctx: FigureContext, f: dict, d: dict, null: dict) -> None:
    spectra = f["spectra"]
    for name in ATTENTION:
        claim_over_seeds(ctx, f"full_r90_{name}", {s: wc.rank_at(spectra[("full", s)][name]) for s in SEEDS})
    claim_over_seeds(ctx, "full_r90_median", {s: float(np.median([wc.rank_at(spectra[("full", s)][n]) for n in ATTENTION])) for s in SEEDS})
    claim_over_seeds(ctx, "full_r90_min", {s: min(wc.rank_at(spectra[("full", s)][n]) for n in ATTENTION) for s in SEEDS})
    claim_over_seeds(ctx, "full_erank_median", {s: float(np.median([wc.entropy_rank(spectra[("full", s)][n]) for n in ATTENTION])) for s in SEEDS})
    ctx.claim("null_r90", wc.rank_at(null["128x128"]))
    ctx.claim("null_erank", wc.entropy_rank(null["128x128"]))
    for r in RANKS:
        key = f"lora{r}"
        # a LoRA update has rank r at most: its r90 can only be r or less
        ctx.claim(f"{key}_r90_max", max(wc.rank_at(spectra[(key, s)][n]) for n in ATTENTION for s in SEEDS))
        ctx.claim(f"{key}_rank_max", max(int(np.sum(spectra[(key, s)][n] > RANK_TOL * spectra[(key, s)][n][0])) for n in ATTENTION for s in SEEDS))
        claim_over_seeds(ctx, f"ratio_r{r}", {s: float(np.median([wc.rank_at(spectra[("full", s)][n]) for n in ATTENTION])) / r for s in SEEDS})
        claim_over_seeds(ctx, f"full_top{r}_median", {s: float(np.median([wc.top_share(spectra[("full", s)][n], r) for n in ATTENTION])) for s in SEEDS})
        ctx.claim(f"null_top{r}", wc.top_share(null["128x128"], r))
    claim_over_seeds(ctx, "last_r90_L1_median", {s: float(np.median([wc.rank_at(spectra[("last", s)][n]) for n in ATTENTION[4:]])) for s in SEEDS})
    for name in DIGITS_LAYERS:
        shape = shape_of("digits", name)
        claim_over_seeds(ctx, f"d_full_r90_{name}", {s: wc.rank_at(d["spectra"][("full", s)][name]) for s in SEEDS})
        ctx.claim(f"d_null_r90_{name}", wc.rank_at(null[shape]))
        ctx.claim(f"d_max_rank_{name}", min(int(n) for n in shape.split("x")))
    ctx.claim("ranks", ", ".join(str(r) for r in RANKS))


# --------------------------------------------------------------------------- figure 3: the learning-rate sweeps


@figure(
    "lora-tuning",
    title="How each method's learning rate was chosen",
    caption=(
        "Seed 0 of each method at each of four learning rates, scored on the tuning set: for the flagship the loss on "
        "windows of the held-out sympy files between the evaluation windows (lower is better), for the digits MLP the "
        "accuracy on the half of the rotated validation digits the evaluation does not use (higher is better). The ringed "
        "point is the rate every seed then used. One seed (seed 0)."
    ),
    model=MODEL,
)
def tuning(ctx: FigureContext) -> alt.TopLevelMixin:
    f, d = flagship(ctx.scale), digits_runs(ctx.scale)
    rows = []
    for model, runs, chosen, score in (("flagship", f["tuning"], f["chosen"], lambda r: r["losses"]["tuning"]),
                                       ("digits", d["tuning"], d["chosen"], lambda r: r["scores"]["tuning"])):  # fmt: skip
        for (key, lr), run in runs.items():
            rows.append({"model": model, "method": LABELS[key], "lr": lr, "score": round(float(score(run)), 4), "chosen": lr == chosen[key]})
    edges = {(m, k): sum(1 for r in rows if r["model"] == m and r["method"] == LABELS[k] and r["chosen"]
                         and r["lr"] in (min(grid[METHODS[k][0]]), max(grid[METHODS[k][0]]))) for m, grid in (("flagship", FLAGSHIP_LRS), ("digits", DIGITS_LRS))
             for k in METHODS}  # fmt: skip
    ctx.claim("flagship_edge_choices", sum(v for (m, _), v in edges.items() if m == "flagship"))
    ctx.claim("digits_edge_choices", sum(v for (m, _), v in edges.items() if m == "digits"))
    ctx.claim("methods", len(METHODS))
    ctx.claim("grid_size", len(FLAGSHIP_LRS["full"]))
    panel = charts.Panel()
    model = panel.select("model", ["flagship", "digits"], label="Model", labels=["the flagship: tuning loss (lower is better)",
                                                                              "the digits MLP: tuning accuracy (higher is better)"], radio=True)  # fmt: skip
    names = [LABELS[k] for k in METHODS]
    base = alt.Chart(pd.DataFrame(rows)).transform_filter(f"datum.model == {model.name}")
    color = alt.Color("method:N", scale=charts.series_scale(names), sort=names, title=None, legend=alt.Legend(orient="right"))
    tips = [alt.Tooltip("method:N"), alt.Tooltip("lr:Q", title="learning rate", format=".0e"), alt.Tooltip("score:Q", format=".4f"),
            alt.Tooltip("chosen:N", title="chosen")]  # fmt: skip
    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate (log scale)", axis=alt.Axis(format=".0e", values=[1e-4, 1e-3, 1e-2, 1e-1]))
    lines = base.mark_line(strokeWidth=1.4, point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=x, y=alt.Y("score:Q", scale=alt.Scale(zero=False), title="score on the tuning set"), color=color, tooltip=tips)
    ring = base.transform_filter("datum.chosen").mark_point(size=180, strokeWidth=2, filled=False).encode(x=x, y="score:Q", color=color, tooltip=tips)
    return panel.finish(alt.layer(lines, ring).properties(width=520, height=260))
