"""Weight evolution: which of the flagship's matrices move in pretraining and in fine-tuning, and how low-rank the move is.

Pretraining: the stored checkpoints of the three attention-only flagship runs (seeds 0-2) and the
GELU flagship (one seed), steps 0-5,000. Fine-tuning: each attention-only seed continued for a few
hundred steps on the training files of one package (sympy), and, as the control, for as many steps
on the whole training corpus, with the same recipe (explorer/techniques/weight_change.py). Every
change is measured against the null of a Gaussian matrix of the same shape and norm.
"""

import functools

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import artifacts, charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.models.flagship import arch_of
from explorer.pipeline import FigureContext, figure
from explorer.techniques import weight_change as wc

SEEDS = (0, 1, 2)
PACKAGE = "sympy"
RUNS = ("s0", "s1", "s2", "gelu")  # the pretraining runs: the attention-only seeds and the GELU flagship
RUN_LABELS = {"s0": "attention-only, seed 0", "s1": "attention-only, seed 1", "s2": "attention-only, seed 2", "gelu": "GELU MLPs, seed 0"}
BYTES_PER_STEP = 32 * 256  # the long runs' batch
NULL_DRAWS = {"smoke": 2, "full": 8}
TOP_K = 8  # a typical LoRA rank: the share of an update a rank-8 adapter could hold at best
FINE_TUNE = {
    "full": dict(steps=240, batch=8, checkpoint_every=40, eval_rows=32, other_limit=3_000_000, warmup=20),
    "smoke": dict(steps=20, batch=4, checkpoint_every=10, eval_rows=8, other_limit=500_000, warmup=5),
}
FINE_TUNE_RECIPE = dict(package=PACKAGE, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.99), threads=1)
GROUPS = {"embed": "embeddings, unembedding", "L0": "layer 0", "L1": "layer 1", "LN": "LayerNorm gains"}
PRE_MODEL = ("flagship-bytes-2l seeds 0-2 (attention-only) and flagship-bytes-gelu-2l seed 0: their stored checkpoints "
             "(models/, trained by explorer/longruns/flagship.py and flagship_gelu.py)")  # fmt: skip
FT_MODEL = ("flagship-bytes-2l seeds 0-2, each fine-tuned here on sympy's training files and, as the control, on the whole "
            "training corpus (explorer/techniques/weight_change.py)")  # fmt: skip


@functools.cache
def pretraining_runs() -> dict[str, artifacts.Artifact]:
    """The stored runs (literal names, so each one's provenance is an input of these figures)."""
    return {"s0": artifacts.load("flagship-bytes-2l-s0"), "s1": artifacts.load("flagship-bytes-2l-s1"),
            "s2": artifacts.load("flagship-bytes-2l-s2"), "gelu": artifacts.load("flagship-bytes-gelu-2l-s0")}  # fmt: skip


def group_of(name: str) -> str:
    return GROUPS["LN"] if "LN" in name else GROUPS.get(name[:2], GROUPS["embed"])


def names_of(arch: dict) -> list[str]:
    return wc.matrix_names(arch) + wc.gain_names(arch)


def shape_key(matrix: torch.Tensor) -> str:
    return "x".join(str(n) for n in matrix.shape)


# --------------------------------------------------------------------------- measurements


@functools.cache
def pretraining_changes() -> dict[str, dict]:
    """Per run: steps, {step: {name: relative change since step 0}}, the same from the previous checkpoint
    per 1,000 steps, per-head changes, and the singular values of every change W_t - W_0."""
    out = {}
    for run, art in pretraining_runs().items():
        arch = arch_of(art.weights)
        steps = sorted(art.checkpoints)
        states = [art.checkpoints[s] for s in steps]
        named = [{**wc.named_matrices(sd, arch), **wc.named_gains(sd, arch)} for sd in states]
        heads = [wc.head_matrices(sd, arch) for sd in states]
        since_init, since_prev, heads_init, heads_prev, spectra = {}, {}, {}, {}, {}
        for i, step in enumerate(steps):
            since_init[step] = {n: wc.relative_change(w, named[0][n]) for n, w in named[i].items()}
            heads_init[step] = {k: wc.relative_change(w, heads[0][k]) for k, w in heads[i].items()}
            if i:
                per = 1000 / (step - steps[i - 1])
                since_prev[step] = {n: per * wc.relative_change(w, named[i - 1][n]) for n, w in named[i].items()}
                heads_prev[step] = {k: per * wc.relative_change(w, heads[i - 1][k]) for k, w in heads[i].items()}
                spectra[step] = {n: wc.singular_values(named[i][n] - named[0][n]) for n in wc.matrix_names(arch)}
        shapes = {n: shape_key(named[0][n]) for n in wc.matrix_names(arch)}
        out[run] = dict(arch=arch, steps=steps, since_init=since_init, since_prev=since_prev, heads_init=heads_init,
                        heads_prev=heads_prev, spectra=spectra, shapes=shapes, film=art.provenance["metrics"]["film"],
                        init=named[0])  # fmt: skip
    return out


@functools.cache
def null_spectra(shapes: tuple[str, ...], draws: int) -> dict[str, np.ndarray]:
    """{shape: mean singular values of unit-norm Gaussian matrices of that shape}."""
    return {s: wc.null_spectrum(tuple(int(n) for n in s.split("x")), draws) for s in shapes}


def fine_tune_config(scale: str, seed: int, data: str) -> dict:
    return dict(FINE_TUNE_RECIPE, **FINE_TUNE[scale], seed=seed, data=data)


@functools.cache
def fine_tunes(scale: str) -> dict[tuple[str, int], dict]:
    """{("package" | "all", seed): the fine-tune of attention-only seed `seed`} (cached: minutes cold)."""
    runs = pretraining_runs()
    out = {}
    for data in ("package", "all"):
        for seed in SEEDS:
            start = runs[f"s{seed}"]
            config = dict(fine_tune_config(scale, seed, data), start=start.provenance["weights_sha256"])
            out[(data, seed)] = cached("weight-evolution-finetune", config,
                                       lambda start=start, config=config: wc.fine_tune(start.weights, arch_of(start.weights), config),
                                       code=[wc])  # fmt: skip
    return out


@functools.cache
def fine_tune_changes(scale: str) -> dict[tuple[str, int], dict]:
    """Per fine-tune: steps, relative change since the pretrained weights, and spectra of the update."""
    out = {}
    for key, run in fine_tunes(scale).items():
        steps = sorted(run["checkpoints"])
        arch = arch_of(run["checkpoints"][0])
        named = {s: {**wc.named_matrices(run["checkpoints"][s], arch), **wc.named_gains(run["checkpoints"][s], arch)} for s in steps}
        since = {s: {n: wc.relative_change(w, named[0][n]) for n, w in named[s].items()} for s in steps}
        spectra = {s: {n: wc.singular_values(named[s][n] - named[0][n]) for n in wc.matrix_names(arch)} for s in steps[1:]}
        out[key] = dict(arch=arch, steps=steps, since=since, spectra=spectra, losses=run["losses"],
                        shapes={n: shape_key(named[0][n]) for n in wc.matrix_names(arch)})  # fmt: skip
    return out


# --------------------------------------------------------------------------- figure 1: relative change over pretraining


@figure(
    "weight-evolution-pretraining",
    title="Which matrices move in pretraining",
    caption=(
        "Left: each weight matrix's relative change at the chosen step, either since initialisation, ||W_t - W_0|| / ||W_0||, "
        "or since the previous checkpoint, ||W_t - W_prev|| / ||W_prev|| per 1,000 steps (Frobenius norms; W_Q, W_K, W_V and "
        "W_O of a layer map d_model to d_model; biases start at zero and are left out). Middle: the same for each head's "
        "W_Q, W_K, W_V (its 32 rows) and W_O (its 32 columns), coloured relative to the largest cell. Right: every matrix over "
        "training, and the best head's induction score from the run's training film (steps of 8,192 bytes). The dashed line "
        "is the chosen step."
    ),
    model=PRE_MODEL,
)
def pretraining(ctx: FigureContext) -> alt.TopLevelMixin:
    changes = pretraining_changes()
    record_pretraining_claims(ctx, changes)
    rows, head_rows, film_rows = [], [], []
    for run, c in changes.items():
        names = names_of(c["arch"])
        for step in c["steps"]:
            for measure, table in (("init", c["since_init"]), ("prev", c["since_prev"])):
                if step in table:
                    rows += [{"run": run, "step": step, "measure": measure, "m": wc.label(n), "o": i, "g": group_of(n),
                              "v": table[step][n]} for i, n in enumerate(names)]  # fmt: skip
            for measure, table in (("init", c["heads_init"]), ("prev", c["heads_prev"])):
                if step in table:
                    head_rows += [{"run": run, "step": step, "measure": measure, "h": f"L{layer}H{head}", "k": f"W_{kind}", "v": v}
                                  for (layer, head, kind), v in table[step].items()]  # fmt: skip
        film_rows += [{"run": run, "step": f["step"], "score": f["induction_max"]} for f in c["film"]]
    steps = changes["s0"]["steps"]
    panel = charts.Panel()
    panel.select("run", list(RUNS), label="Run", labels=[RUN_LABELS[r] for r in RUNS])
    panel.select("measure", ["init", "prev"], label="Change", labels=["since initialisation", "since the previous checkpoint (per 1,000 steps)"])
    step = panel.steps("step", steps)
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame).transform_filter("datum.run == run && datum.measure == measure")
    groups = list(GROUPS.values())
    color = alt.Color("g:N", scale=charts.series_scale(groups), title=None, legend=alt.Legend(orient="bottom", columns=2))
    tips = [alt.Tooltip("m:N", title="matrix"), alt.Tooltip("step:Q", format=",", title="step"), alt.Tooltip("v:Q", format=".3f", title="relative change")]
    bars = base.transform_filter("datum.step == step").mark_bar().encode(
        y=alt.Y("m:N", sort=alt.SortField("o"), title=None), x=alt.X("v:Q", title="relative change"), color=color, tooltip=tips,
    ).properties(width=220, height=alt.Step(15), title="At the chosen step")  # fmt: skip
    heads = (
        alt.Chart(pd.DataFrame(head_rows))
        .transform_filter("datum.run == run && datum.measure == measure && datum.step == step")
        .transform_joinaggregate(top="max(v)")
        .transform_calculate(c="datum.top > 0 ? datum.v / datum.top : 0")
    )
    cells = heads.mark_rect().encode(
        x=alt.X("k:N", title=None, sort=["W_Q", "W_K", "W_V", "W_O"], axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("h:N", title=None), color=alt.Color("c:Q", scale=charts.sequential((0, 1)), legend=None),
        tooltip=[alt.Tooltip("h:N", title="head"), alt.Tooltip("k:N", title="matrix"), alt.Tooltip("v:Q", format=".3f", title="relative change")],
    )  # fmt: skip
    numbers = heads.mark_text(fontSize=charts.SMALL_SIZE).encode(
        x=alt.X("k:N", sort=["W_Q", "W_K", "W_V", "W_O"]), y="h:N", text=alt.Text("v:Q", format=".1f"), color=charts.ink_on("c"))
    head_view = alt.layer(cells, numbers).properties(width=140, height=alt.Step(20), title="Per head")
    lines = base.mark_line(strokeWidth=1.4, point=alt.OverlayMarkDef(size=14)).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("v:Q", title="relative change"), color=alt.Color("g:N", scale=charts.series_scale(groups), legend=None),
        detail="m:N", tooltip=tips,
    )  # fmt: skip
    line_view = alt.layer(lines, charts.now_rule(step)).properties(width=330, height=200, title="Over training")
    film = alt.Chart(pd.DataFrame(film_rows)).transform_filter("datum.run == run").mark_line(color=charts.ACCENT_2, strokeWidth=1.5).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("score:Q", title="induction score", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("step:Q", format=","), alt.Tooltip("score:Q", format=".2f", title="best induction score")],
    )  # fmt: skip
    film_view = alt.layer(film, charts.now_rule(step)).properties(width=330, height=90, title="Induction score (training film)")
    chart = alt.hconcat(bars, head_view, alt.vconcat(line_view, film_view)).resolve_scale(color="independent")
    return panel.finish(chart)


def record_pretraining_claims(ctx: FigureContext, changes: dict) -> None:
    seeds = {seed: changes[f"s{seed}"] for seed in SEEDS}
    arch = seeds[0]["arch"]
    last = seeds[0]["steps"][-1]
    for name in names_of(arch):
        claim_over_seeds(ctx, f"rel_{name}", {s: c["since_init"][last][name] for s, c in seeds.items()})
    matrices = wc.matrix_names(arch)
    order = {s: sorted(matrices, key=lambda n: -c["since_init"][last][n]) for s, c in seeds.items()}
    ctx.claim("largest_W_U_seeds", sum(o[0] == "W_U" for o in order.values()))
    claim_over_seeds(ctx, "rel_runner_up", {s: c["since_init"][last][order[s][1]] for s, c in seeds.items()})
    # V and O move least: the largest of the four W_V/W_O against the smallest of the rest
    vo = [n for n in matrices if n[-1] in "VO"]
    claim_over_seeds(ctx, "rel_VO_max", {s: max(c["since_init"][last][n] for n in vo) for s, c in seeds.items()})
    claim_over_seeds(ctx, "rel_rest_min", {s: min(c["since_init"][last][n] for n in matrices if n not in vo) for s, c in seeds.items()})
    # the null for a relative change: how far apart two independent initialisations are
    init = {s: c["init"] for s, c in seeds.items()}
    claim_over_seeds(ctx, "init_distance", {s: float(np.mean([wc.relative_change(init[(s + 1) % 3][n], init[s][n]) for n in matrices]))
                                            for s in SEEDS})  # fmt: skip
    # from checkpoint to checkpoint: which matrix moves fastest while the induction head forms (steps 500-1,500)
    for step in (1000, 1500):
        fastest = {s: max(matrices, key=lambda n: c["since_prev"][step][n]) for s, c in seeds.items()}
        ctx.claim(f"fastest_layer1_seeds_{step}", sum(f.startswith("L1") for f in fastest.values()))
        top4 = {s: sorted(matrices, key=lambda n: -c["since_prev"][step][n])[:4] for s, c in seeds.items()}
        ctx.claim(f"layer1_top4_seeds_{step}", sum(all(n.startswith("L1") for n in t) for t in top4.values()))
        claim_over_seeds(ctx, f"rate_L1_QK_{step}", {s: max(c["since_prev"][step][f"L1_W_{k}"] for k in "QK") for s, c in seeds.items()})
        claim_over_seeds(ctx, f"rate_rest_{step}", {s: max(c["since_prev"][step][n] for n in matrices if not n.startswith("L1"))
                                                    for s, c in seeds.items()})  # fmt: skip
    claim_over_seeds(ctx, "rate_first", {s: float(np.mean([c["since_prev"][500][n] for n in matrices])) for s, c in seeds.items()})
    claim_over_seeds(ctx, "rate_last", {s: float(np.mean([c["since_prev"][last][n] for n in matrices])) for s, c in seeds.items()})
    # the induction head (the film's best at the end) against the other heads of its layer
    for kind in ("V", "O"):
        own, others = {}, {}
        for s, c in seeds.items():
            head = c["film"][-1]["induction_head"]  # "L1H0"
            layer, index = int(head[1]), int(head[3:])
            cells = {h: v for (lay, h, k), v in c["heads_init"][last].items() if lay == layer and k == kind}
            own[s], others[s] = cells[index], max(v for h, v in cells.items() if h != index)
        claim_over_seeds(ctx, f"induction_head_{kind}", own)
        claim_over_seeds(ctx, f"other_heads_{kind}_max", others)
    ctx.claim("induction_heads", ", ".join(sorted({c["film"][-1]["induction_head"] for c in seeds.values()})))
    gelu = changes["gelu"]
    for name in ("L0_W_in", "L0_W_out", "L1_W_in", "L1_W_out", "W_U", "W_E"):
        ctx.claim(f"gelu_rel_{name}", gelu["since_init"][gelu["steps"][-1]][name])
    ctx.claim("seeds", len(seeds))
    ctx.claim("last_step", last)


# --------------------------------------------------------------------------- figure 2: spectra of the changes


def spectrum_rows(steps, spectra: dict, shapes: dict, names: list[str], nulls: dict[str, np.ndarray]) -> list[dict]:
    """One row per (step, matrix): the change's cumulative share ("c"), its null's ("n"), both r90s and the entropy rank."""
    rows = []
    for step in steps:
        for i, name in enumerate(names):
            sv = spectra[step][name]
            share = wc.cumulative_share(sv)
            rows.append({"s": step, "m": wc.label(name), "o": i, "shape": shapes[name], "r": wc.rank_at(sv), "e": round(wc.entropy_rank(sv), 1),
                         "c": [round(float(x), 3) for x in share], "n": [round(float(x), 3) for x in wc.cumulative_share(nulls[shapes[name]])],
                         "rn": wc.rank_at(nulls[shapes[name]])})  # fmt: skip
    return rows


@figure(
    "weight-evolution-spectrum",
    title="How many directions a change uses",
    caption=(
        "For each weight matrix, the share of the change's squared norm held by its first k singular values (k on the x "
        "axis, largest first), at the chosen step. The change is W_t - W_0: since initialisation for a pretraining run, since "
        "the pretrained weights for a fine-tune. Grey: a Gaussian matrix of the same shape and norm (the mean of several "
        "draws), a change with no structure. In each panel, r90 is the number of singular values that hold 90% of the squared "
        "norm (dotted line), for the change and for the null."
    ),
    model=PRE_MODEL + "; " + FT_MODEL,
)
def spectrum(ctx: FigureContext) -> alt.TopLevelMixin:
    pre, post = pretraining_changes(), fine_tune_changes(ctx.scale)
    shapes = sorted({s for c in [*pre.values(), *post.values()] for s in c["shapes"].values()})
    nulls = null_spectra(tuple(shapes), NULL_DRAWS[ctx.scale])
    updates, labels, choices = [], [], {}
    for run, c in pre.items():
        steps = c["steps"][1:]
        updates.append(f"pre-{run}")
        labels.append(f"pretraining, {RUN_LABELS[run]}")
        ctx.asset(f"spectra/pre-{run}.json", {"spectra": spectrum_rows(steps, c["spectra"], c["shapes"], wc.matrix_names(c["arch"]), nulls)})
        choices[f"pre-{run}"] = {"options": steps, "labels": charts.step_labels(steps), "value": steps[-1]}
    for (data, seed), c in sorted(post.items()):
        key = f"ft-{data}-s{seed}"
        steps = c["steps"][1:]
        updates.append(key)
        labels.append(f"fine-tune on {PACKAGE}, seed {seed}" if data == "package" else f"control fine-tune (whole corpus), seed {seed}")
        ctx.asset(f"spectra/{key}.json", {"spectra": spectrum_rows(steps, c["spectra"], c["shapes"], wc.matrix_names(c["arch"]), nulls)})
        choices[key] = {"options": steps, "labels": charts.step_labels(steps), "value": steps[-1]}
    record_spectrum_claims(ctx, pre, nulls)

    panel = charts.Panel()
    panel.data("update", updates, label="Change", labels=labels, default="pre-s0")
    panel.source("spectra/{update}.json", datasets=["spectra"])
    all_steps = sorted({s for choice in choices.values() for s in choice["options"]})
    step = panel.slider("step", all_steps, label="Step", labels=charts.step_labels(all_steps), value=choices["pre-s0"]["value"],
                        play=True, by="update", choices=choices)  # fmt: skip
    base = alt.Chart(alt.NamedData(name="spectra")).transform_filter(f"datum.s == {step.name}")
    curves = (
        base.transform_flatten(["c", "n"])
        .transform_window(k="row_number()", groupby=["m"])
        .transform_fold(["c", "n"], as_=["series", "share"])
        .transform_calculate(series="datum.series == 'c' ? 'the change' : 'Gaussian null'")
        .mark_line(strokeWidth=1.5, clip=True)
        .encode(
            x=alt.X("k:Q", title="k (singular values)", scale=alt.Scale(domain=[0, 128]), axis=alt.Axis(tickCount=3)),
            y=alt.Y("share:Q", title="share of ‖ΔW‖²", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", tickCount=3)),
            color=alt.Color("series:N", scale=charts.series_scale(["the change", "Gaussian null"], [charts.ACCENT, charts.MUTED]),
                            title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("m:N", title="matrix"), alt.Tooltip("series:N"), alt.Tooltip("k:Q"), alt.Tooltip("share:Q", format=".1%")],
        )
    )  # fmt: skip
    r90 = base.mark_rule(color=charts.ACCENT, strokeDash=[2, 2]).encode(x="r:Q", tooltip=[alt.Tooltip("r:Q", title="r90")])
    text = base.transform_calculate(t="'r90 ' + datum.r + ' (null ' + datum.rn + ')'").mark_text(
        align="right", baseline="bottom", dx=-2, dy=-2, fontSize=charts.SMALL_SIZE, color=charts.INK
    ).encode(x=alt.value(130), y=alt.value(60), text="t:N", tooltip=[alt.Tooltip("m:N", title="matrix"), alt.Tooltip("r:Q", title="r90 of the change"),
                                                                      alt.Tooltip("rn:Q", title="r90 of the null"), alt.Tooltip("e:Q", title="entropy rank")])  # fmt: skip
    chart = alt.layer(curves, r90, text).properties(width=130, height=80).facet(
        facet=alt.Facet("m:N", sort=alt.SortField("o"), title=None, header=alt.Header(labelFontSize=charts.LABEL_SIZE, labelColor=charts.INK)),
        columns=5, spacing=10,
    )  # fmt: skip
    return panel.finish(chart)


def record_spectrum_claims(ctx: FigureContext, pre: dict, nulls: dict) -> None:
    seeds = {seed: pre[f"s{seed}"] for seed in SEEDS}
    arch = seeds[0]["arch"]
    last = seeds[0]["steps"][-1]
    for name in wc.matrix_names(arch):
        claim_over_seeds(ctx, f"r90_{name}", {s: wc.rank_at(c["spectra"][last][name]) for s, c in seeds.items()})
        claim_over_seeds(ctx, f"erank_{name}", {s: wc.entropy_rank(c["spectra"][last][name]) for s, c in seeds.items()})
    for shape, sv in nulls.items():
        ctx.claim(f"null_r90_{shape}", wc.rank_at(sv))
        ctx.claim(f"null_erank_{shape}", wc.entropy_rank(sv))
    first = seeds[0]["steps"][1]
    claim_over_seeds(ctx, "r90_W_pos_first", {s: wc.rank_at(c["spectra"][first]["W_pos"]) for s, c in seeds.items()})
    ctx.claim("first_step", first)
    # how many matrices' changes sit below the null, every seed
    below = {s: sum(wc.rank_at(c["spectra"][last][n]) < wc.rank_at(nulls[c["shapes"][n]]) for n in wc.matrix_names(arch)) for s, c in seeds.items()}
    ctx.claim("below_null_min", min(below.values()))
    ctx.claim("matrices", len(wc.matrix_names(arch)))
    gelu = pre["gelu"]
    for name in ("L0_W_in", "L0_W_out", "L1_W_in", "L1_W_out"):
        ctx.claim(f"gelu_r90_{name}", wc.rank_at(gelu["spectra"][gelu["steps"][-1]][name]))
    ctx.claim("seeds", len(seeds))


# --------------------------------------------------------------------------- figure 3: fine-tuning


@figure(
    "weight-evolution-finetune",
    title="Fine-tuning on one package: which matrices move, and how low-rank the update is",
    caption=(
        "Each attention-only flagship seed continued on sympy's training files (AdamW, learning rate 1e-3 after 20 warm-up "
        "steps, batches of 8 rows of 256 bytes), and, as the control, the same recipe on the whole training corpus. Left: "
        "each matrix's relative change from the pretrained weights, ||W - W_pre|| / ||W_pre||, at the chosen step. Middle: "
        "r90 of the update W - W_pre (singular values holding 90% of its squared norm), with the Gaussian null of the same "
        "shape (|). Right: loss on held-out sympy files and on the other held-out files, in nats per byte."
    ),
    model=FT_MODEL,
)
def finetune(ctx: FigureContext) -> alt.TopLevelMixin:
    changes = fine_tune_changes(ctx.scale)
    shapes = sorted({s for c in changes.values() for s in c["shapes"].values()})
    nulls = null_spectra(tuple(shapes), NULL_DRAWS[ctx.scale])
    record_finetune_claims(ctx, changes, nulls)
    series = {"package": f"fine-tune on {PACKAGE}", "all": "control: whole corpus"}
    evals = {"package": f"held-out {PACKAGE}", "other": "other held-out code"}
    rel_rows, rank_rows, loss_rows = [], [], []
    for (data, seed), c in sorted(changes.items()):
        names = names_of(c["arch"])
        for step in c["steps"]:
            rel_rows += [{"seed": seed, "step": step, "run": series[data], "m": wc.label(n), "o": i, "v": c["since"][step][n]} for i, n in enumerate(names)]
            if step in c["spectra"]:
                rank_rows += [{"seed": seed, "step": step, "run": series[data], "m": wc.label(n), "o": i, "r": wc.rank_at(c["spectra"][step][n]),
                               "rn": wc.rank_at(nulls[c["shapes"][n]]), "top": wc.top_share(c["spectra"][step][n], TOP_K)}
                              for i, n in enumerate(wc.matrix_names(c["arch"]))]  # fmt: skip
            loss_rows += [{"seed": seed, "step": step, "run": series[data], "set": evals[e], "loss": c["losses"][step][e]} for e in evals]
    steps = changes[("package", 0)]["steps"]
    panel = charts.Panel()
    panel.select("seed", list(SEEDS), label="Seed", radio=True)
    step = panel.steps("step", steps, label="Fine-tuning step")
    runs = list(series.values())
    color = alt.Color("run:N", scale=charts.series_scale(runs), title=None, legend=alt.Legend(orient="bottom", columns=1))
    filt = "datum.seed == seed && datum.step == step"
    bars = alt.Chart(pd.DataFrame(rel_rows)).transform_filter(filt).mark_bar().encode(
        y=alt.Y("m:N", sort=alt.SortField("o"), title=None), yOffset=alt.YOffset("run:N", sort=runs), x=alt.X("v:Q", title="relative change"),
        color=color, tooltip=[alt.Tooltip("m:N", title="matrix"), alt.Tooltip("run:N"), alt.Tooltip("v:Q", format=".4f", title="relative change")],
    ).properties(width=230, height=alt.Step(9), title="How far each matrix moved")  # fmt: skip
    rank_base = alt.Chart(pd.DataFrame(rank_rows)).transform_filter(filt)
    tips = [alt.Tooltip("m:N", title="matrix"), alt.Tooltip("run:N"), alt.Tooltip("r:Q", title="r90"), alt.Tooltip("rn:Q", title="r90 of the null"),
            alt.Tooltip("top:Q", format=".0%", title=f"share in the top {TOP_K}")]  # fmt: skip
    dots = rank_base.mark_point(filled=True, size=45).encode(
        y=alt.Y("m:N", sort=alt.SortField("o"), title=None), x=alt.X("r:Q", title="r90 of the update", scale=alt.Scale(domain=[0, 128])),
        color=alt.Color("run:N", scale=charts.series_scale(runs), legend=None), tooltip=tips)  # fmt: skip
    null_ticks = rank_base.mark_tick(color=charts.MUTED, thickness=2, size=12).encode(
        y=alt.Y("m:N", sort=alt.SortField("o")), x="rn:Q", tooltip=[alt.Tooltip("m:N", title="matrix"), alt.Tooltip("rn:Q", title="r90 of the Gaussian null")])
    rank_view = alt.layer(null_ticks, dots).properties(width=200, height=alt.Step(16), title="How many directions (r90)")
    losses = alt.Chart(pd.DataFrame(loss_rows)).transform_filter("datum.seed == seed").mark_line(strokeWidth=1.6).encode(
        x=alt.X("step:Q", title="fine-tuning step"), y=alt.Y("loss:Q", title="loss (nats/byte)", scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", scale=charts.series_scale(runs), legend=None),
        strokeDash=alt.StrokeDash("set:N", title=None, legend=alt.Legend(orient="bottom", columns=1, symbolType="stroke", symbolStrokeColor=charts.INK)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("set:N", title="measured on"), alt.Tooltip("step:Q"), alt.Tooltip("loss:Q", format=".3f")],
    )  # fmt: skip
    loss_view = alt.layer(losses, charts.now_rule(step)).properties(width=260, height=200, title="Held-out loss")
    return panel.finish(alt.hconcat(bars, rank_view, loss_view))


def record_finetune_claims(ctx: FigureContext, changes: dict, nulls: dict) -> None:
    ft = {seed: changes[("package", seed)] for seed in SEEDS}
    ctl = {seed: changes[("all", seed)] for seed in SEEDS}
    arch = ft[0]["arch"]
    last = ft[0]["steps"][-1]
    for prefix, runs in (("ft", ft), ("ctl", ctl)):
        for e in ("package", "other"):
            claim_over_seeds(ctx, f"{prefix}_loss_{e}_after", {s: c["losses"][last][e] for s, c in runs.items()})
            claim_over_seeds(ctx, f"{prefix}_loss_{e}_change", {s: c["losses"][last][e] - c["losses"][0][e] for s, c in runs.items()})
        for name in names_of(arch):
            claim_over_seeds(ctx, f"{prefix}_rel_{name}", {s: c["since"][last][name] for s, c in runs.items()})
        for name in wc.matrix_names(arch):
            claim_over_seeds(ctx, f"{prefix}_r90_{name}", {s: wc.rank_at(c["spectra"][last][name]) for s, c in runs.items()})
            claim_over_seeds(ctx, f"{prefix}_top8_{name}", {s: wc.top_share(c["spectra"][last][name], TOP_K) for s, c in runs.items()})
        claim_over_seeds(ctx, f"{prefix}_r90_median", {s: float(np.median([wc.rank_at(c["spectra"][last][n]) for n in wc.matrix_names(arch)]))
                                                       for s, c in runs.items()})  # fmt: skip
        claim_over_seeds(ctx, f"{prefix}_top8_median", {s: float(np.median([wc.top_share(c["spectra"][last][n], TOP_K) for n in wc.matrix_names(arch)]))
                                                        for s, c in runs.items()})  # fmt: skip
        claim_over_seeds(ctx, f"{prefix}_rel_mean", {s: float(np.mean([c["since"][last][n] for n in wc.matrix_names(arch)])) for s, c in runs.items()})
    claim_over_seeds(ctx, "loss_package_before", {s: c["losses"][0]["package"] for s, c in ft.items()})
    claim_over_seeds(ctx, "loss_other_before", {s: c["losses"][0]["other"] for s, c in ft.items()})
    claim_over_seeds(ctx, "rel_ratio_W_U", {s: ft[s]["since"][last]["W_U"] / ctl[s]["since"][last]["W_U"] for s in SEEDS})
    claim_over_seeds(ctx, "rel_ratio_mean", {s: float(np.mean([ft[s]["since"][last][n] / ctl[s]["since"][last][n] for n in wc.matrix_names(arch)]))
                                             for s in SEEDS})  # fmt: skip
    largest = {s: max(wc.matrix_names(arch), key=lambda n: c["since"][last][n]) for s, c in ft.items()}
    ctx.claim("ft_largest", ", ".join(sorted({wc.label(n) for n in largest.values()})))
    for shape, sv in nulls.items():
        ctx.claim(f"null_r90_{shape}", wc.rank_at(sv))
        ctx.claim(f"null_top8_{shape}", wc.top_share(sv, TOP_K))
    ctx.claim("top_k", TOP_K)
    config = fine_tune_config(ctx.scale, 0, "package")
    ctx.claim("steps", config["steps"])
    ctx.claim("batch", config["batch"])
    ctx.claim("kbytes", config["steps"] * config["batch"] * arch["n_ctx"] / 1e3)
    ctx.claim("lr", config["lr"])
    ctx.claim("package", PACKAGE)
    ctx.claim("package_files", len(wc.package_files(PACKAGE, "train")))
    ctx.claim("package_mbytes", sum(f.path.stat().st_size for f in wc.package_files(PACKAGE, "train")) / 1e6)
    ctx.claim("seeds", len(ft))
