"""Induction heads: how a 2-layer attention-only transformer learns to copy from context.

The figures read the zoo model `induction-2l` (trained on random tokens repeating with a random
period) and two more training runs of the same recipe with other seeds, so every number from
training comes with its spread over three seeds. The architecture sweep trains its own small models.
Heads are scored on the canonical probe set (explorer.techniques.probes), as on every other page.
"""

import math
from functools import cache

import altair as alt
import pandas as pd
import torch

from explorer import charts, models
from explorer.cache import cached
from explorer.data import induction_task
from explorer.models import recipes, training, zoo
from explorer.models.training import TrainingRun
from explorer.pipeline import FigureContext, figure
from explorer.techniques import heads, induction, patching, probes

MODEL = "induction-2l"
SEEDS = (0, 1, 2)  # seed 0 is the zoo model; 1 and 2 retrain its recipe with other seeds
MODEL_NOTE = "induction-2l (explorer zoo: 2-layer attention-only, trained on repeating random tokens), seeds 0-2; seed 0 is the zoo model"
SEED_LABELS = ["seed 0 (the zoo model)", "seed 1", "seed 2"]
NULL_SAMPLES = 200  # random rotations per pair for the K-composition null
NULL_DRAWS = 20  # random pushes per ablation for its null
WINDOW = (0.2, 0.8)  # the phase change: from 20% to 80% of the induction score's total rise
ICL_WINDOW = 4  # positions averaged at each end of the context for the in-context learning score


def training_run(scale: str, seed: int) -> TrainingRun:
    """The zoo model (seed 0) or its recipe retrained with another seed (cached)."""
    if seed == 0:
        return zoo.training_run(MODEL, scale)
    cfg = zoo.config(MODEL, scale)
    cfg = {**cfg, "data": {**cfg["data"], "seed": seed}}
    return cached("induction-2l-seeds", cfg, lambda: recipes.train_uncached(cfg), code=[recipes])


def load(scale: str, seed: int, weights=None):
    return zoo.from_weights(MODEL, training_run(scale, seed).state_dict if weights is None else weights, scale, "cpu")


@cache
def probe(scale: str) -> probes.ProbeSet:
    return probes.probe_set(models.load(MODEL, scale=scale, device="cpu"), MODEL, scale)


def head_label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def claim_spread(ctx: FigureContext, key: str, values) -> None:
    """A number from training: its mean over the seeds, and its range (lo, hi) over them."""
    values = [float(v) for v in values]
    ctx.claim(key, sum(values) / len(values))
    ctx.claim(f"{key}_lo", min(values))
    ctx.claim(f"{key}_hi", max(values))


def seed_panel(panel: charts.Panel) -> alt.Parameter:
    return panel.select("seed", list(SEEDS), label="Training run", labels=SEED_LABELS)


# --- The training film: scores, losses and composition at every checkpoint ----------------------------


@cache
def film(scale: str, seed: int) -> list[dict]:
    """Scores, losses and K-composition (with its null) at every checkpoint of one training run."""
    p = probe(scale)
    rows = []
    with training.cpu_threads(1, "cpu"):
        for step, weights in training_run(scale, seed).checkpoints:
            model = load(scale, seed, weights)
            table = probes.head_scores(model, p)
            loss = induction.per_position_loss(model, p.repeated)
            rows.append({
                "step": step,
                "previous_token": probes.score_grid(table, "previous_token"),  # (layer, head)
                "induction": probes.score_grid(table, "induction"),
                "repeated_loss": induction.repeated_half_loss(loss, p.second_copy.start),
                "first_half_loss": induction.first_copy_loss(loss, p.prefix, p.half),
                "icl": induction.icl_score(loss, ICL_WINDOW),
                "composition": induction.k_composition(model),  # (head_l0, head_l1)
                "null": induction.k_composition_null(model, NULL_SAMPLES, seed=step),  # (head_l0, head_l1, samples)
            })
    return rows


def phase_window(steps: list[int], values: list[float], low: float = WINDOW[0], high: float = WINDOW[1]) -> tuple[int, int]:
    """Steps at which `values` first covers `low` and `high` of its total rise: the phase change."""
    start, end = values[0], values[-1]
    first = lambda frac: next(s for s, v in zip(steps, values) if v >= start + frac * (end - start))  # noqa: E731
    return first(low), first(high)


def circuit(frame: dict) -> tuple[int, int]:
    """(previous-token head of layer 0, induction head of layer 1) at a checkpoint: the best of each."""
    return int(frame["previous_token"][0].argmax()), int(frame["induction"][1].argmax())


def window_of(frames: list[dict]) -> tuple[int, int]:
    return phase_window([f["step"] for f in frames], [f["induction"][1].max().item() for f in frames])


@figure(
    "induction-film",
    title="Induction heads form in a phase change",
    caption=(
        "Every checkpoint of one training run, scored on the canonical probe. Top: each head's previous-token "
        "score (attention to the token just before, on held-out rows) and induction score (attention, in the "
        "second copy of repeated random tokens, to the token after the earlier occurrence of the current "
        "token). Middle: the best score of each kind over training, with the induction score of uniform "
        "attention (chance). Bottom: losses on the probe. The band marks the phase change (20% to 80% of the "
        "best induction score's rise). Choose the run, drag or play the step."
    ),
    model=MODEL_NOTE,
)
def induction_film(ctx: FigureContext) -> alt.Chart:
    p = probe(ctx.scale)
    runs = {seed: film(ctx.scale, seed) for seed in SEEDS}
    steps = [f["step"] for f in runs[0]]
    chance = probes.uniform_induction_score(p)
    windows = {seed: window_of(frames) for seed, frames in runs.items()}

    ctx.claim("steps", steps[-1])
    ctx.claim("seeds", len(SEEDS))
    ctx.claim("half", p.half)
    ctx.claim("chance_induction", chance)
    ctx.claim("chance_previous_token", probes.uniform_previous_token_score(p.text.shape[1]))
    zoo_last = runs[0][-1]
    prev0, ind0 = circuit(zoo_last)
    ctx.claim("induction_head", head_label(1, ind0))
    ctx.claim("induction_score", zoo_last["induction"][1, ind0].item())
    ctx.claim("previous_token_head", head_label(0, prev0))
    ctx.claim("previous_token_score", zoo_last["previous_token"][0, prev0].item())
    library = probes.library_induction_scores(load(ctx.scale, 0), p.repeated)
    ctx.claim("library_induction_score", library[1, ind0].item())
    ctx.claim("library_fraction_of_rows", p.half / p.repeated.shape[1])  # rows where TL's pattern has a target: the second copy

    lasts = [frames[-1] for frames in runs.values()]
    claim_spread(ctx, "top_induction", [f["induction"][1].max() for f in lasts])
    claim_spread(ctx, "top_previous_token", [f["previous_token"][0].max() for f in lasts])
    claim_spread(ctx, "best_layer0_induction", [f["induction"][0].max() for f in lasts])
    claim_spread(ctx, "layer0_mean_previous_token", [f["previous_token"][0].mean() for f in lasts])
    claim_spread(ctx, "window_start", [w[0] for w in windows.values()])
    claim_spread(ctx, "window_end", [w[1] for w in windows.values()])
    claim_spread(ctx, "window_fraction", [(w[1] - w[0]) / steps[-1] for w in windows.values()])
    drops = []
    for seed, frames in runs.items():
        at = {f["step"]: f for f in frames}
        before, after = at[windows[seed][0]], at[windows[seed][1]]
        drops.append((before["repeated_loss"] - after["repeated_loss"]) / (frames[0]["repeated_loss"] - frames[-1]["repeated_loss"]))
    claim_spread(ctx, "loss_drop_in_window_fraction", drops)
    claim_spread(ctx, "repeated_loss_start", [frames[0]["repeated_loss"] for frames in runs.values()])
    claim_spread(ctx, "repeated_loss_final", [f["repeated_loss"] for f in lasts])
    claim_spread(ctx, "first_half_loss_final", [f["first_half_loss"] for f in lasts])
    claim_spread(ctx, "icl_start", [frames[0]["icl"] for frames in runs.values()])
    claim_spread(ctx, "icl_final", [f["icl"] for f in lasts])
    ctx.claim("uniform_loss", math.log(zoo.config(MODEL, ctx.scale)["arch"]["d_vocab"]))
    ctx.claim("icl_window", ICL_WINDOW)
    ctx.claim("window_low", WINDOW[0])
    ctx.claim("window_high", WINDOW[1])

    cells = pd.DataFrame([
        {"seed": seed, "step": f["step"], "kind": kind, "layer": layer, "head": head, "label": head_label(layer, head),
         "score": round(f[kind][layer, head].item(), 3)}
        for seed, frames in runs.items() for f in frames for kind in ("previous_token", "induction")
        for layer in range(f[kind].shape[0]) for head in range(f[kind].shape[1])
    ])
    score_names = ["best induction score (layer 1)", "best previous-token score (layer 0)", "induction score of uniform attention"]
    loss_names = ["loss on the repeated half", "loss on the first copy", "in-context learning score"]
    curves = pd.DataFrame([
        {"seed": seed, "step": f["step"], "panel": panel, "series": series, "value": round(value, 4)}
        for seed, frames in runs.items() for f in frames
        for panel, series, value in (
            ("score", score_names[0], f["induction"][1].max().item()),
            ("score", score_names[1], f["previous_token"][0].max().item()),
            ("score", score_names[2], chance),
            ("loss", loss_names[0], f["repeated_loss"]),
            ("loss", loss_names[1], f["first_half_loss"]),
            ("loss", loss_names[2], f["icl"]),
        )
    ])
    bands = pd.DataFrame([{"seed": s, "start": w[0], "end": w[1]} for s, w in windows.items()])

    panel = charts.Panel()
    seed = seed_panel(panel)
    step = panel.steps("step", steps)

    def grid(kind: str, title: str) -> alt.LayerChart:
        base = (
            alt.Chart(cells, title=title)
            .transform_filter((alt.datum.seed == seed) & (alt.datum.step == step) & (alt.datum.kind == kind))
            .encode(x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
        )
        rect = base.mark_rect(stroke=charts.RULE).encode(
            color=alt.Color("score:Q", scale=charts.sequential((0, 1)), title="score", legend=alt.Legend(gradientLength=80)),
            tooltip=[alt.Tooltip("label:N", title="head"), alt.Tooltip("score:Q", format=".2f"), alt.Tooltip("step:Q", format=",")],
        )
        text = base.mark_text(fontSize=charts.LABEL_SIZE).encode(
            text=alt.Text("score:Q", format=".2f"),
            color=alt.condition(alt.datum.score > 0.55, alt.value(charts.PAPER), alt.value(charts.INK)),
        )
        return alt.layer(rect, text).properties(width=180, height=80)

    def lines(name: str, names: list[str], title: str) -> alt.LayerChart:
        base = alt.Chart(curves).transform_filter((alt.datum.seed == seed) & (alt.datum.panel == name))
        drawn = base.mark_line(strokeWidth=2).encode(
            x=alt.X("step:Q", title="training step", axis=alt.Axis(format=",d")),
            y=alt.Y("value:Q", title=title),
            color=alt.Color("series:N", scale=charts.series_scale(names), title=None,
                            legend=alt.Legend(orient="bottom", direction="vertical", columns=1, labelLimit=300)),
            strokeDash=alt.condition(alt.datum.series == score_names[2], alt.value([4, 3]), alt.value([1, 0])),
        )
        band = alt.Chart(bands).transform_filter(alt.datum.seed == seed).mark_rect(color=charts.ACCENT_2, opacity=0.15).encode(
            x="start:Q", x2="end:Q", tooltip=[alt.Tooltip("start:Q", title="phase change from step", format=","),
                                              alt.Tooltip("end:Q", title="to step", format=",")])
        hover = charts.hover_rule(base, x="step", series="series", y="value", names=names, fmt=".2f", x_title="step", name=f"hover_{name}")
        return alt.layer(band, drawn, hover, charts.now_rule(step)).properties(width=420, height=140)

    top = alt.hconcat(grid("previous_token", "previous-token score"), grid("induction", "induction score"))
    chart = alt.vconcat(top, lines("score", score_names, "score"), lines("loss", loss_names, "nats per token")).resolve_scale(color="independent")
    return panel.finish(chart)


@figure(
    "induction-patterns",
    title="What the heads look at",
    caption=(
        "Attention of one head of the trained model (seed 0) on one row of the canonical probe: random tokens, "
        "repeated once (query position down, key position across; the tooltip names each token). A "
        "previous-token head draws the diagonal just below the main one; an induction head draws a diagonal in "
        "the second copy, one step right of the earlier copy. Outlined: the cells that head kind should attend to."
    ),
    model=MODEL_NOTE,
)
def induction_patterns(ctx: FigureContext) -> alt.Chart:
    model = load(ctx.scale, 0)
    p = probe(ctx.scale)
    tokens = p.repeated[:1]  # (1, pos)
    _, cache_ = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    labels = models.token_strings(MODEL, tokens[0].tolist(), scale=ctx.scale)
    table = probes.head_scores(model, p)
    rows, options, names = [], [], []
    for layer in range(model.cfg.n_layers):
        pattern = cache_[f"blocks.{layer}.attn.hook_pattern"][0]  # (head, q, k)
        for head in range(model.cfg.n_heads):
            label = head_label(layer, head)
            score = table[(table.layer == layer) & (table["head"] == head)].iloc[0]
            options.append(label)
            names.append(f"{label}: previous-token {score.previous_token:.2f}, induction {score.induction:.2f}")
            rows += [{"head": label, "q": q, "w": [round(100 * a) for a in pattern[head, q, : q + 1].tolist()]} for q in range(len(labels))]
    n = len(labels)
    targets = [{"kind": "previous-token", "q": q, "k": q - 1} for q in range(1, n)]
    targets += [{"kind": "induction", "q": q, "k": q - p.half + 1} for q in range(p.second_copy.start, n)]
    best = int(probes.score_grid(table, "induction")[1].argmax())
    first_hover = p.second_copy.start + 2  # a query of the second copy, so the induction stripe shows at once
    ctx.claim("tokens", n)

    panel = charts.Panel()
    choice = panel.select("head", options, label="Head", labels=names, value=head_label(1, best))
    outline = panel.select("outline", ["induction", "previous-token", "none"], label="Outline the targets of", radio=True)
    ctx.asset("pattern.json", {"attn": rows, "tokens": [{"p": i, "t": t} for i, t in enumerate(labels)], "targets": targets})
    panel.source("pattern.json", datasets=["attn", "tokens", "targets"])
    hovered = alt.param(name="hq", value=first_hover)  # the query under the pointer in the text view
    positions = list(range(n))
    x = alt.X("k:O", title="key position (attended to)", scale=alt.Scale(domain=positions), axis=alt.Axis(labelAngle=0, values=positions[::4]))
    y = alt.Y("q:O", title="query position", scale=alt.Scale(domain=positions), axis=alt.Axis(values=positions[::4]))
    token_data = alt.NamedData("tokens")
    cells = (
        alt.Chart(alt.NamedData("attn"))
        .transform_filter(alt.datum.head == choice)
        .transform_flatten(["w"], as_=["pct"])
        .transform_window(rank="row_number()", groupby=["head", "q"])
        .transform_calculate(k="datum.rank - 1", a="datum.pct / 100")
        .transform_lookup(lookup="q", from_=alt.LookupData(token_data, key="p", fields=["t"]), as_=["tq"])
        .transform_lookup(lookup="k", from_=alt.LookupData(token_data, key="p", fields=["t"]), as_=["tk"])
        .mark_rect()
        .encode(x=x, y=y, color=alt.Color("a:Q", scale=charts.sequential((0, 1)), title="attention"),
                tooltip=[alt.Tooltip("q:O", title="query position"), alt.Tooltip("tq:N", title="query token"),
                         alt.Tooltip("k:O", title="key position"), alt.Tooltip("tk:N", title="key token"),
                         alt.Tooltip("a:Q", title="attention", format=".2f")])
    )
    marks = alt.Chart(alt.NamedData("targets")).transform_filter(alt.datum.kind == outline).mark_rect(
        fill=None, stroke=charts.ACCENT, strokeWidth=1.2).encode(x=x, y=y)
    row = alt.Chart(token_data).transform_filter("datum.p == hq").transform_calculate(q="datum.p").mark_rect(
        fill=None, stroke=charts.INK, strokeWidth=2, strokeDash=[3, 2]).encode(y=y)
    chart = alt.layer(cells, marks, row).add_params(hovered).properties(width="container", height=380)
    text = charts.text_view(
        "tokens", field="t", position="p", hover="hq", default=first_hover,
        label="The probe row as the model reads it (its tokens are the symbols t0, t1, ...). Hover a token, or focus it and use the arrow keys:",
        color={"data": "attn", "match": {"head": "head", "q": "@hover"}, "values": "w", "scale": 0.01, "label": "attention",
               "masked": "after the query (masked)",
               "legend": "Colour: the attention the chosen head pays each token from {@text} (position {@pos}); its row is dashed in the chart."},
    )
    return panel.finish(chart, text=text)


@figure(
    "induction-repeat-length",
    title="The induction score depends on the repeat length",
    caption=(
        "Induction score of each layer-1 head on rows of random tokens repeated once, as the number of tokens per "
        "copy grows. Ours averages over the queries of the second copy; TransformerLens's detect_head score "
        "(\"mul\") divides by every query row, so it is about half of ours. Dotted: the score of uniform attention. "
        "Shaded: the periods the model was trained on; the vertical rule marks the canonical probe every page uses."
    ),
    model=MODEL_NOTE,
)
def induction_repeat_length(ctx: FigureContext) -> alt.Chart:
    p = probe(ctx.scale)
    cfg = zoo.config(MODEL, ctx.scale)
    n_ctx = cfg["arch"]["n_ctx"]
    lengths = sorted({*range(2, n_ctx // 2 + 1, 2), p.half})
    rows = []
    for seed in SEEDS:
        model = load(ctx.scale, seed)
        for half in lengths:
            tokens, _ = probes.repeated_rows(model, probes.ROWS[ctx.scale], half)
            ours = probes.score_grid(heads.head_scores(model, tokens, ["induction"]), "induction")
            theirs = probes.library_induction_scores(model, tokens)
            chance_ours = probes.uniform_induction_score(probes.ProbeSet(MODEL, tokens, 0, half, p.text))
            chance_theirs = chance_ours * half / tokens.shape[1]  # TL divides the same attention mass by every row
            for head in range(model.cfg.n_heads):
                rows.append({"seed": seed, "half": half, "head": head_label(1, head), "measure": "ours", "score": round(ours[1, head].item(), 4)})
                rows.append({"seed": seed, "half": half, "head": head_label(1, head), "measure": "TransformerLens", "score": round(theirs[1, head].item(), 4)})
            rows.append({"seed": seed, "half": half, "head": "uniform attention", "measure": "ours", "score": round(chance_ours, 4)})
            rows.append({"seed": seed, "half": half, "head": "uniform attention", "measure": "TransformerLens", "score": round(chance_theirs, 4)})
    frame = pd.DataFrame(rows)
    heads_frame = frame[frame["head"] != "uniform attention"]
    tops = []
    for seed in SEEDS:
        at = heads_frame[(heads_frame.seed == seed) & (heads_frame.measure == "ours")]
        top = at[at.half == p.half].sort_values("score").iloc[-1]["head"]  # the induction head on the canonical probe
        curve = at[at["head"] == top].set_index("half").score
        tops.append({"canonical": curve[p.half], "min": curve[curve.index >= 4].min(), "max": curve.max(), "longest": curve[lengths[-1]],
                     "library": heads_frame[(heads_frame.seed == seed) & (heads_frame.measure == "TransformerLens") & (heads_frame["head"] == top)
                                            & (heads_frame.half == p.half)].score.iloc[0]})
    ctx.claim("canonical_half", p.half)
    ctx.claim("n_ctx", n_ctx)
    ctx.claim("longest_half", lengths[-1])
    ctx.claim("min_period", cfg["data"]["min_period"])
    ctx.claim("max_period", cfg["data"]["max_period"])
    for key in ("canonical", "min", "max", "longest", "library"):
        claim_spread(ctx, f"top_head_{key}", [t[key] for t in tops])

    panel = charts.Panel()
    seed = seed_panel(panel)
    measure = panel.select("measure", ["ours", "TransformerLens"], label="Score", radio=True,
                           labels=["ours (second-copy queries)", "TransformerLens detect_head (all queries)"])
    names = [head_label(1, h) for h in range(zoo.config(MODEL, ctx.scale)["arch"]["n_heads"])] + ["uniform attention"]
    base = alt.Chart(frame).transform_filter((alt.datum.seed == seed) & (alt.datum.measure == measure))
    period = alt.Chart(pd.DataFrame([{"lo": cfg["data"]["min_period"], "hi": cfg["data"]["max_period"]}])).mark_rect(
        color=charts.FAINT, opacity=0.25).encode(x="lo:Q", x2="hi:Q", tooltip=[alt.Tooltip("lo:Q", title="training periods from"),
                                                                              alt.Tooltip("hi:Q", title="to")])
    canonical = alt.Chart(pd.DataFrame([{"x": p.half}])).mark_rule(color=charts.ACCENT, strokeDash=[5, 3], strokeWidth=1.5).encode(
        x="x:Q", tooltip=[alt.Tooltip("x:Q", title="canonical probe: tokens per copy")])
    drawn = base.mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("half:Q", title="tokens per copy (repeat length)", scale=alt.Scale(domain=[0, lengths[-1] + 1])),
        y=alt.Y("score:Q", title="induction score", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("head:N", scale=charts.series_scale(names, [*charts.SERIES[: len(names) - 1], charts.MUTED]), title="layer-1 head",
                        legend=alt.Legend(orient="right")),
        strokeDash=alt.condition(alt.datum.head == "uniform attention", alt.value([2, 3]), alt.value([1, 0])),
        tooltip=["head:N", alt.Tooltip("half:Q", title="tokens per copy"), alt.Tooltip("score:Q", format=".3f")],
    )
    hover = charts.hover_rule(base, x="half", series="head", y="score", names=names, fmt=".2f", x_title="tokens per copy", x_format="d", name="hover_length")
    return panel.finish(alt.layer(period, canonical, drawn, hover).properties(width=560, height=260))


# --- K-composition ----------------------------------------------------------------------------------


@figure(
    "induction-composition",
    title="K-composition: layer-1 keys read layer-0 outputs",
    caption=(
        "K-composition of every (layer-0 head, layer-1 head) pair: ‖W_OV W_QKᵀ‖ / (‖W_OV‖ ‖W_QK‖), how much of what the "
        "layer-0 head writes lands where the layer-1 head's keys read. Its null: the same two matrices with the "
        "residual basis between them randomly rotated (200 rotations), which keeps their norms and spectra and "
        "randomises only their alignment. Left: every pair at the chosen step (the number under the score is its "
        "percentile in its null). Right: over training, the pair of the two circuit heads against its null band, "
        "and the same layer-0 head into the other layer-1 heads. Shaded: the phase change of the induction score."
    ),
    model=MODEL_NOTE,
)
def induction_composition(ctx: FigureContext) -> alt.Chart:
    runs = {seed: film(ctx.scale, seed) for seed in SEEDS}
    steps = [f["step"] for f in runs[0]]
    heat_rows, line_rows, bands, stats = [], [], [], []
    series = ["previous-token head → induction head", "previous-token head → other layer-1 heads (mean)",
              "other layer-0 heads → induction head (mean)", "null of the circuit pair, median", "null of the circuit pair, 95th percentile"]
    for seed, frames in runs.items():
        prev, ind = circuit(frames[-1])  # the circuit of the trained model, followed back through training
        start, end = window_of(frames)
        bands.append({"seed": seed, "start": start, "end": end})
        for f in frames:
            comp, null = f["composition"], f["null"]
            below = (null < comp[..., None]).float().mean(-1)  # (head_l0, head_l1): percentile of the score in its null
            q = torch.quantile(null, torch.tensor([0.05, 0.5, 0.95]), dim=-1)  # (3, head_l0, head_l1)
            for a in range(comp.shape[0]):
                for b in range(comp.shape[1]):
                    heat_rows.append({"seed": seed, "step": f["step"], "from": head_label(0, a), "into": head_label(1, b),
                                      "score": round(comp[a, b].item(), 3), "null_median": round(q[1, a, b].item(), 3),
                                      "null_p95": round(q[2, a, b].item(), 3), "percentile": round(100 * below[a, b].item()),
                                      "circuit": (a, b) == (prev, ind)})
            others = [b for b in range(comp.shape[1]) if b != ind]
            sources = [a for a in range(comp.shape[0]) if a != prev]
            values = (comp[prev, ind], comp[prev, others].mean(), comp[sources, ind].mean(), q[1, prev, ind], q[2, prev, ind])
            line_rows += [{"seed": seed, "step": f["step"], "series": s, "value": round(v.item(), 4)} for s, v in zip(series, values)]
        first, last = frames[0], frames[-1]
        n_heads = last["composition"].shape[0]
        pair = [f["composition"][prev, ind].item() for f in frames]
        rise_mid = next(f["step"] for f, v in zip(frames, pair) if v >= pair[0] + 0.5 * (pair[-1] - pair[0]))
        null_last = last["null"]
        stats.append({
            "pair": last["composition"][prev, ind].item(), "pair_start": first["composition"][prev, ind].item(),
            "null_median": null_last[prev, ind].median().item(), "null_p95": torch.quantile(null_last[prev, ind], 0.95).item(),
            "percentile": (null_last[prev, ind] < last["composition"][prev, ind]).float().mean().item(),
            "row_others": last["composition"][prev, [b for b in range(n_heads) if b != ind]].mean().item(),
            "row_rank": int((last["composition"][prev] > last["composition"][prev, ind]).sum()) + 1,
            "column_others": last["composition"][[a for a in range(n_heads) if a != prev], ind].mean().item(),
            "pairs_above_p95": int((last["composition"] > torch.quantile(null_last, 0.95, dim=-1)).sum()),
            "rise_mid": rise_mid, "window_start": start, "window_end": end, "rise_before_window": rise_mid < start,
        })
    zoo_prev, zoo_ind = circuit(runs[0][-1])
    ctx.claim("pair", f"{head_label(0, zoo_prev)} → {head_label(1, zoo_ind)}")
    ctx.claim("null_samples", NULL_SAMPLES)
    ctx.claim("pairs", len(runs[0][-1]["composition"].flatten()))
    for key in ("pair", "pair_start", "null_median", "null_p95", "percentile", "row_others", "column_others", "pairs_above_p95", "rise_mid", "row_rank"):
        claim_spread(ctx, key, [s[key] for s in stats])
    ctx.claim("rise_before_window_seeds", sum(s["rise_before_window"] for s in stats))
    ctx.claim("row_rank_not_first_seeds", sum(s["row_rank"] > 1 for s in stats))
    ctx.claim("seeds", len(SEEDS))

    heat = pd.DataFrame(heat_rows)
    panel = charts.Panel()
    seed = seed_panel(panel)
    step = panel.steps("step", steps)
    base = alt.Chart(heat).transform_filter((alt.datum.seed == seed) & (alt.datum.step == step)).encode(
        x=alt.X("into:N", title="layer-1 head (keys)", axis=alt.Axis(labelAngle=0)), y=alt.Y("from:N", title="layer-0 head (output)"))
    limit = max(0.3, float(heat.score.max()))
    tips = [alt.Tooltip("from:N", title="layer-0 head"), alt.Tooltip("into:N", title="layer-1 head"), alt.Tooltip("score:Q", format=".3f"),
            alt.Tooltip("null_median:Q", title="null median", format=".3f"), alt.Tooltip("null_p95:Q", title="null 95th percentile", format=".3f"),
            alt.Tooltip("percentile:Q", title="percentile in its null")]
    rect = base.mark_rect().encode(
        color=alt.Color("score:Q", scale=charts.sequential((0, limit)), title="K-composition", legend=alt.Legend(gradientLength=120)),
        stroke=alt.condition(alt.datum.circuit, alt.value(charts.ACCENT), alt.value(charts.RULE)),
        strokeWidth=alt.condition(alt.datum.circuit, alt.value(2.5), alt.value(0.5)), tooltip=tips)
    light = alt.condition(alt.datum.score > 0.55 * limit, alt.value(charts.PAPER), alt.value(charts.INK))
    score = base.mark_text(fontSize=charts.LABEL_SIZE, dy=-7).encode(text=alt.Text("score:Q", format=".2f"), color=light)
    pct = base.mark_text(fontSize=charts.SMALL_SIZE, dy=8).transform_calculate(p="'p' + datum.percentile").encode(text="p:N", color=light)
    heatmap = alt.layer(rect, score, pct).properties(width=200, height=200, title="at the chosen step")

    lines_base = alt.Chart(pd.DataFrame(line_rows)).transform_filter(alt.datum.seed == seed)
    colors = [charts.ACCENT, charts.SERIES[0], charts.SERIES[2], charts.MUTED, charts.MUTED]
    drawn = lines_base.mark_line(strokeWidth=2).encode(
        x=alt.X("step:Q", title="training step", axis=alt.Axis(format=",d")),
        y=alt.Y("value:Q", title="K-composition"),
        color=alt.Color("series:N", scale=charts.series_scale(series, colors), title=None,
                        legend=alt.Legend(orient="bottom", direction="vertical", columns=1, labelLimit=320)),
        strokeDash=alt.condition("indexof(datum.series, 'null') == 0", alt.value([4, 3]), alt.value([1, 0])),
    )
    band = alt.Chart(pd.DataFrame(bands)).transform_filter(alt.datum.seed == seed).mark_rect(color=charts.ACCENT_2, opacity=0.15).encode(
        x="start:Q", x2="end:Q", tooltip=[alt.Tooltip("start:Q", title="phase change from step", format=","), alt.Tooltip("end:Q", title="to step", format=",")])
    hover = charts.hover_rule(lines_base, x="step", series="series", y="value", names=series, fmt=".3f", x_title="step", name="hover_steps")
    over_time = alt.layer(band, drawn, hover, charts.now_rule(step)).properties(width=340, height=200, title="over training")
    return panel.finish(alt.hconcat(heatmap, over_time).resolve_scale(color="independent"))


# --- Ablation ---------------------------------------------------------------------------------------


def ablation_study(scale: str, seed: int) -> dict:
    """Mean-ablate each head (and the induction heads together) on the probe, each beside its null."""
    model = load(scale, seed)
    p = probe(scale)
    tokens = p.repeated
    table = probes.head_scores(model, p)
    ind_scores, prev_scores = probes.score_grid(table, "induction"), probes.score_grid(table, "previous_token")
    best = int(ind_scores[1].argmax())
    team = [(1, h) for h in range(model.cfg.n_heads) if ind_scores[1, h] >= 0.5 * ind_scores[1, best]]
    replacements = patching.replacement_z(model, tokens, "mean", tokens)
    generator = torch.Generator().manual_seed(seed)
    ablations = {head_label(l, h): [(l, h)] for l in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)}
    ablations["all induction heads"] = team
    clean = induction.per_position_loss(model, tokens)
    out = {"clean": clean, "curves": {}, "null_curves": {}, "null": {}, "team": team, "best": best,
           "prev": int(prev_scores[0].argmax()), "uniform": math.log(model.cfg.d_vocab), "n_heads": model.cfg.n_heads}
    start = p.second_copy.start
    for name, heads_ in ablations.items():
        out["curves"][name] = induction.per_position_loss(model, tokens, patching.ablation_hooks(heads_, replacements))
        change = patching.output_change(model, tokens, heads_, replacements)
        draws = patching.null_token_losses(model, tokens, change, NULL_DRAWS, generator).mean(1)  # (draws, pos-1)
        out["null_curves"][name] = draws.median(0).values
        out["null"][name] = torch.tensor([induction.repeated_half_loss(d, start) for d in draws])  # (draws,)
    out["repeated"] = {name: induction.repeated_half_loss(c, start) for name, c in out["curves"].items()}
    out["repeated_clean"] = induction.repeated_half_loss(clean, start)
    return out


@figure(
    "induction-ablation",
    title="Ablating the circuit, against ablations of the same size in random directions",
    caption=(
        "Loss of the trained model at each position of the canonical probe (repeated random tokens), with one head's "
        "output replaced by its mean over the probe (mean ablation). The null of each ablation pushes the residual "
        "stream, at every position, by the same distance as the ablation does, in a random direction (20 draws). "
        "Positions right of the dashed line are in the second copy, which an induction head can predict. Right: the "
        "rise of the repeated-half loss for each ablation, with the 95th percentile of its null. Pick the run and the ablation."
    ),
    model=MODEL_NOTE,
)
def induction_ablation(ctx: FigureContext) -> alt.Chart:
    p = probe(ctx.scale)
    studies = {seed: ablation_study(ctx.scale, seed) for seed in SEEDS}
    roles = []
    for seed, s in studies.items():
        clean = s["repeated_clean"]
        rise = {name: value - clean for name, value in s["repeated"].items()}
        p95 = {name: torch.quantile(null, 0.95).item() - clean for name, null in s["null"].items()}
        layer0 = [head_label(0, h) for h in range(s["n_heads"])]
        others0 = [h for h in layer0 if h != head_label(0, s["prev"])]
        singles = [name for name in rise if name != "all induction heads"]
        layer1 = [head_label(1, h) for h in range(s["n_heads"])]
        roles.append({
            "clean": clean, "induction": rise[head_label(1, s["best"])], "induction_null": p95[head_label(1, s["best"])],
            "previous": rise[head_label(0, s["prev"])], "previous_null": p95[head_label(0, s["prev"])],
            "team": rise["all induction heads"], "team_null": p95["all induction heads"], "team_loss": s["repeated"]["all induction heads"],
            "team_size": len(s["team"]), "other_layer0_mean": sum(rise[h] for h in others0) / len(others0),
            "other_layer0_max": max(rise[h] for h in others0), "other_layer0_null_max": max(p95[h] for h in others0),
            "other_layer0_above_null": sum(rise[h] > p95[h] for h in others0), "other_layer0": len(others0),
            "layer1_above_null": sum(rise[h] > p95[h] for h in layer1), "layer1": len(layer1),
            "previous_is_costliest": max(singles, key=lambda h: rise[h]) == head_label(0, s["prev"]),
            "above_null": sum(rise[h] > p95[h] for h in rise), "ablations": len(rise),
        })
    zoo_study = studies[0]
    ctx.claim("ablated_head", head_label(1, zoo_study["best"]))
    ctx.claim("previous_token_head", head_label(0, zoo_study["prev"]))
    ctx.claim("induction_heads", ", ".join(head_label(l, h) for l, h in zoo_study["team"]))
    ctx.claim("uniform_loss", zoo_study["uniform"])
    ctx.claim("null_draws", NULL_DRAWS)
    ctx.claim("seeds", len(SEEDS))
    for key in roles[0]:
        if key == "previous_is_costliest":
            ctx.claim("previous_is_costliest_seeds", sum(r[key] for r in roles))
        else:
            claim_spread(ctx, key, [r[key] for r in roles])

    curve_rows, bar_rows = [], []
    series = ["no ablation", "ablated", "null, a random push of the same size (median)"]
    for seed, s in studies.items():
        clean = s["repeated_clean"]
        for name in s["curves"]:
            for label, loss in ((series[1], s["curves"][name]), (series[2], s["null_curves"][name]), (series[0], s["clean"])):
                curve_rows += [{"seed": seed, "ablate": name, "series": label, "position": pos + 1, "loss": round(v.item(), 3)} for pos, v in enumerate(loss)]
            bar_rows.append({"seed": seed, "ablate": name, "rise": round(s["repeated"][name] - clean, 3),
                             "null_p95": round(torch.quantile(s["null"][name], 0.95).item() - clean, 3),
                             "null_median": round(s["null"][name].median().item() - clean, 3)})
    options = list(studies[0]["curves"])
    panel = charts.Panel()
    seed = seed_panel(panel)
    choice = panel.select("ablate", options, label="Ablate", value=head_label(1, studies[0]["best"]))
    base = alt.Chart(pd.DataFrame(curve_rows)).transform_filter((alt.datum.seed == seed) & (alt.datum.ablate == choice))
    drawn = base.mark_line(strokeWidth=2).encode(
        x=alt.X("position:Q", title="position of the predicted token"),
        y=alt.Y("loss:Q", title="loss (nats)"),
        color=alt.Color("series:N", scale=charts.series_scale(series, [charts.SERIES[0], charts.ACCENT, charts.MUTED]), title=None,
                        legend=alt.Legend(orient="bottom", direction="vertical", columns=1, labelLimit=320)),
        strokeDash=alt.condition(alt.datum.series == series[2], alt.value([4, 3]), alt.value([1, 0])),
    )
    divider = alt.Chart(pd.DataFrame([{"x": p.second_copy.start + 0.5, "what": "second copy starts"}])).mark_rule(
        strokeDash=[4, 4], color=charts.MUTED).encode(x="x:Q", tooltip=[alt.Tooltip("what:N", title="")])
    hover = charts.hover_rule(base, x="position", series="series", y="loss", names=series, fmt=".2f", x_title="position", x_format="d", name="hover_position")
    curves = alt.layer(drawn, divider, hover).properties(width=380, height=230)

    bars_base = alt.Chart(pd.DataFrame(bar_rows)).transform_filter(alt.datum.seed == seed)
    x = alt.X("ablate:N", title="ablated", sort=options, axis=alt.Axis(labelAngle=-40, labelLimit=120))
    tips = [alt.Tooltip("ablate:N", title="ablated"), alt.Tooltip("rise:Q", title="rise (nats)", format=".3f"),
            alt.Tooltip("null_median:Q", title="null median", format=".3f"), alt.Tooltip("null_p95:Q", title="null 95th percentile", format=".3f")]
    bars = bars_base.mark_bar().encode(
        x=x, y=alt.Y("rise:Q", title="rise in repeated-half loss (nats)"),
        color=alt.condition(alt.datum.ablate == choice, alt.value(charts.ACCENT), alt.value(charts.SERIES[0])), tooltip=tips)
    ticks = bars_base.mark_tick(color=charts.INK, thickness=2, size=18).encode(x=x, y="null_p95:Q", tooltip=tips)
    bar_chart = alt.layer(bars, ticks).properties(width=300, height=230, title="ablation (bar) and null 95th pct (tick)")
    return panel.finish(alt.hconcat(curves, bar_chart).resolve_scale(color="independent"))


# --- The minimal architecture sweep -------------------------------------------------------------

SWEEP = {
    "full": dict(layers=(1, 2, 3), heads=(1, 4), widths=(16, 32, 64), seeds=(0, 1, 2),
                 n_ctx=32, vocab=64, batch=32, steps=500, lr=5e-3, warmup=20, min_period=4, max_period=12),
    "smoke": dict(layers=(1, 2, 3), heads=(4,), widths=(32,), seeds=(0, 1, 2),
                  n_ctx=32, vocab=64, batch=32, steps=400, lr=5e-3, warmup=20, min_period=4, max_period=12),
}
INDUCTION_THRESHOLD = 0.5  # a run "shows induction" when a head above layer 0 (or of the only layer) scores above this
Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sweep_points(scale: str) -> list[tuple[int, int, int]]:
    """(layers, heads, width): the full grid, so every depth sees the same heads and widths."""
    s = SWEEP[scale]
    return [(layers, heads_, width) for layers in s["layers"] for heads_ in s["heads"] for width in s["widths"]]


def sweep_arch(scale: str, layers: int, heads_: int, width: int) -> dict:
    s = SWEEP[scale]
    return dict(n_layers=layers, d_model=width, n_heads=heads_, d_head=width // heads_, n_ctx=s["n_ctx"], d_vocab=s["vocab"],
                attn_only=True, act_fn="gelu", normalization_type="LN", positional_embedding_type="standard", init_mode="gpt2")


def sweep_weights(scale: str, layers: int, heads_: int, width: int, seed: int) -> dict:
    """Train one small attention-only model on the periodic task (cached: weights and wall time)."""
    s = SWEEP[scale]
    config = {k: s[k] for k in ("n_ctx", "vocab", "batch", "steps", "lr", "warmup", "min_period", "max_period")}
    config.update(layers=layers, heads=heads_, width=width, seed=seed)

    def build() -> dict:
        run = training.train(
            sweep_arch(scale, layers, heads_, width),
            lambda g: induction_task.periodic_batch(s["batch"], s["n_ctx"], s["vocab"], s["min_period"], s["max_period"], g),
            steps=s["steps"], lr=s["lr"], warmup=s["warmup"], seed=seed, log_every=s["steps"], checkpoint_every=s["steps"], evaluate=lambda m: {},
        )
        return {"state_dict": run.state_dict, "train_seconds": run.train_seconds}

    return cached("induction-sweep-weights", config, build, code=[training, induction_task])


def sweep_probe(scale: str) -> tuple[torch.Tensor, int]:
    """The canonical probe's rule for the sweep's models: distinct random tokens, 3/8 of the context per copy."""
    s = SWEEP[scale]
    half = probes.repeat_length(s["n_ctx"])
    generator = torch.Generator().manual_seed(probes.PROBE_SEED)
    return probes.repeated_random_tokens(probes.ROWS[scale], half, range(s["vocab"]), generator), half


def sweep_run(scale: str, layers: int, heads_: int, width: int, seed: int) -> dict[str, float]:
    """One sweep model's best induction score (above layer 0) and repeated-half loss on the probe."""
    stored = sweep_weights(scale, layers, heads_, width, seed)
    model = training.build_bridge(sweep_arch(scale, layers, heads_, width))
    model.load_state_dict(stored["state_dict"])
    model.eval()
    tokens, half = sweep_probe(scale)
    scores = probes.score_grid(heads.head_scores(model, tokens, ["induction"]), "induction")
    loss = induction.per_position_loss(model, tokens)
    return {
        "induction": (scores[1:] if layers > 1 else scores).max().item(),
        "repeated_loss": induction.repeated_half_loss(loss, half),
        "train_seconds": stored["train_seconds"],
    }


@figure(
    "induction-sweep",
    title="The smallest model that learns induction",
    caption=(
        "Attention-only transformers of 1 to 3 layers, with 1 or 4 heads per layer and widths 16 to 64 (every depth "
        "gets every combination), each trained from scratch on the periodic task with three seeds and the same budget. "
        "Left: each run (dots) and the median of its three seeds (bar); induction score: the best head above layer 0 "
        "(for 1-layer models, the only layer), with the threshold for 'shows induction' (dashed) and the score of "
        "uniform attention (dotted); loss: on the repeated half of the probe, with the loss of a uniform guess (dotted). "
        "Right: the share of runs that show induction at each depth, with its 95% Wilson interval."
    ),
    model="small attention-only transformers trained by build_figures/induction.py (3 seeds per configuration)",
)
def induction_sweep(ctx: FigureContext) -> alt.Chart:
    s = SWEEP[ctx.scale]
    rows = []
    for layers, heads_, width in ctx.progress(sweep_points(ctx.scale), "sweep"):
        for seed in s["seeds"]:
            result = sweep_run(ctx.scale, layers, heads_, width, seed)
            rows.append({"layers": layers, "heads": heads_, "width": width, "seed": seed, "config": f"{layers}L × {heads_}H × d{width}",
                         "induction": round(result["induction"], 4), "repeated_loss": round(result["repeated_loss"], 4)})
    frame = pd.DataFrame(rows)
    frame["shows"] = frame.induction > INDUCTION_THRESHOLD
    tokens, half = sweep_probe(ctx.scale)
    chance = probes.uniform_induction_score(probes.ProbeSet("sweep", tokens, 0, half, tokens))
    uniform = math.log(s["vocab"])
    ctx.claim("runs", len(frame))
    ctx.claim("seeds", len(s["seeds"]))
    ctx.claim("configs", len(sweep_points(ctx.scale)))
    ctx.claim("threshold", INDUCTION_THRESHOLD)
    ctx.claim("chance_induction", chance)
    ctx.claim("uniform_loss", uniform)
    ctx.claim("steps", s["steps"])
    ctx.claim("runs_per_depth", len(frame) // len(s["layers"]))
    summary = []
    for layers, group in frame.groupby("layers"):
        k, n = int(group.shows.sum()), len(group)
        lo, hi = wilson(k, n)
        ctx.claim(f"shows_{layers}l", k)
        ctx.claim(f"fraction_showing_{layers}l", k / n)
        ctx.claim(f"fraction_showing_{layers}l_lo", lo)
        ctx.claim(f"fraction_showing_{layers}l_hi", hi)
        ctx.claim(f"mean_repeated_loss_{layers}l", float(group.repeated_loss.mean()))
        ctx.claim(f"max_induction_{layers}l", float(group.induction.max()))
        summary.append({"layers": layers, "group": "all widths", "k": k, "n": n, "fraction": k / n, "lo": lo, "hi": hi})
        for width, sub in group.groupby("width"):
            k, n = int(sub.shows.sum()), len(sub)
            lo, hi = wilson(k, n)
            ctx.claim(f"shows_{layers}l_d{width}", k)
            summary.append({"layers": layers, "group": f"width {width}", "k": k, "n": n, "fraction": k / n, "lo": lo, "hi": hi})
        for heads_, sub in group.groupby("heads"):
            ctx.claim(f"shows_{layers}l_h{heads_}", int(sub.shows.sum()))
    ctx.claim("runs_per_depth_width", len(frame) // (len(s["layers"]) * len(s["widths"])))
    for (layers, heads_, width), group in frame.groupby(["layers", "heads", "width"]):
        ctx.claim(f"median_induction_{layers}l_h{heads_}_d{width}", float(group.induction.median()))
        ctx.claim(f"median_repeated_loss_{layers}l_h{heads_}_d{width}", float(group.repeated_loss.median()))
    medians = frame.groupby(["layers", "heads", "width"]).induction.median()
    showing = medians[medians > INDUCTION_THRESHOLD].reset_index().sort_values(["layers", "heads", "width"])
    minimal = showing.iloc[0] if len(showing) else pd.Series({"layers": 0, "heads": 0, "width": 0})  # 0: none showed it
    ctx.claim("minimal_layers", int(minimal.layers))
    ctx.claim("minimal_heads", int(minimal.heads))
    ctx.claim("minimal_width", int(minimal.width))

    long = frame.melt(id_vars=["layers", "heads", "width", "seed", "config"], value_vars=["induction", "repeated_loss"], var_name="measure")
    long["layers"] = long.layers.astype(str)
    refs = pd.DataFrame([
        {"measure": "induction", "y": INDUCTION_THRESHOLD, "what": "threshold: shows induction", "dash": "threshold"},
        {"measure": "induction", "y": round(chance, 4), "what": "uniform attention", "dash": "null"},
        {"measure": "repeated_loss", "y": round(uniform, 4), "what": "uniform guess over the vocabulary", "dash": "null"},
    ])
    panel = charts.Panel()
    group = panel.select("group", ["all widths"] + [f"width {w}" for w in s["widths"]], label="Share of runs, over")
    depth_names = [str(layers) for layers in s["layers"]]
    color = alt.Color("layers:N", scale=charts.series_scale(depth_names), title="layers", legend=alt.Legend(orient="bottom", direction="horizontal"))
    titles = {"induction": "best induction score", "repeated_loss": "repeated-half loss (nats)"}

    def cell(measure: str, heads_: int) -> alt.LayerChart:
        base = alt.Chart(long).transform_filter((alt.datum.measure == measure) & (alt.datum.heads == heads_))
        x = alt.X("width:O", title="width" if measure == "repeated_loss" else None, axis=alt.Axis(labelAngle=0))
        domain = [0, 1] if measure == "induction" else [0, math.ceil(uniform)]
        y_title = titles[measure] if heads_ == s["heads"][0] else None
        y = alt.Y("value:Q", title=y_title, scale=alt.Scale(domain=domain))
        bar = base.mark_bar(opacity=0.45).encode(x=x, xOffset="layers:N", y=alt.Y("median(value):Q", title=y_title, scale=alt.Scale(domain=domain)), color=color,
                                                 tooltip=[alt.Tooltip("layers:N"), alt.Tooltip("width:O"), alt.Tooltip("median(value):Q", title="median of 3 seeds", format=".3f")])
        dots = base.mark_circle(size=36, opacity=0.95).encode(x=x, xOffset="layers:N", y=y, color=color,
                                                              tooltip=["config:N", "seed:Q", alt.Tooltip("value:Q", format=".3f")])
        ref = alt.Chart(refs).transform_filter(alt.datum.measure == measure).mark_rule(color=charts.MUTED).encode(
            y="y:Q", strokeDash=alt.condition(alt.datum.dash == "threshold", alt.value([6, 3]), alt.value([2, 3])),
            tooltip=["what:N", alt.Tooltip("y:Q", format=".3f")])
        title = f"{heads_} head{'s' if heads_ > 1 else ''} per layer" if measure == "induction" else ""
        return alt.layer(bar, dots, ref).properties(width=190, height=150, title=title)

    per_run = alt.vconcat(*[alt.hconcat(*[cell(m, h) for h in s["heads"]]) for m in ("induction", "repeated_loss")])
    sums = alt.Chart(pd.DataFrame(summary).assign(layers=lambda d: d.layers.astype(str))).transform_filter(alt.datum.group == group)
    share_x = alt.X("layers:N", title="layers", axis=alt.Axis(labelAngle=0))
    share_tips = [alt.Tooltip("layers:N"), alt.Tooltip("k:Q", title="runs showing induction"), alt.Tooltip("n:Q", title="runs"),
                  alt.Tooltip("fraction:Q", format=".0%"), alt.Tooltip("lo:Q", title="95% Wilson from", format=".0%"), alt.Tooltip("hi:Q", title="to", format=".0%")]
    share = alt.layer(
        sums.mark_bar(opacity=0.6).encode(x=share_x, y=alt.Y("fraction:Q", title="share of runs showing induction", scale=alt.Scale(domain=[0, 1.1]),
                                                                 axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1])), color=color, tooltip=share_tips),
        sums.mark_rule(color=charts.INK, strokeWidth=1.5).encode(x=share_x, y="lo:Q", y2="hi:Q", tooltip=share_tips),
        sums.mark_text(dy=-8, fontSize=charts.LABEL_SIZE, color=charts.INK).transform_calculate(t="datum.k + '/' + datum.n").encode(
            x=share_x, y="hi:Q", text="t:N"),
    ).properties(width=150, height=336, title="share of runs (95% Wilson)")
    chart = alt.hconcat(per_run, share)
    return panel.finish(chart)
