"""Interpretability: a neuron browser for the GELU flagship, every MLP neuron with its dashboard.

What is measured lives in explorer/techniques/neurons.py (the model, its activations on held-out
Python, the SAEs on each layer's neurons, the polysemanticity measure and its nulls); this file
draws it: the neuron basis against SAE latents and random directions, and the browser, one lazily
loaded file per neuron (its contexts as text, its activation histogram, its direct logit effect and
the SAE latents aligned with it).
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import charts
from explorer.ensemble import claim_over_seeds
from explorer.models.tokenizer import visible
from explorer.pipeline import FigureContext, figure
from explorer.techniques import dashboard, sae
from explorer.techniques import neurons as nr

DASH_TOP = 8
PER_QUANTILE = 2
CONTEXT = (20, 8)  # bytes kept before and after the activating one, within its line
HIST_BINS = 24
ALIGNED_TOP = 5  # SAE latents listed per neuron
DASH_NEURONS = {"smoke": 16, "full": None}  # per layer; None: every neuron
LIST_PAGE = 25
NULL_DRAWS = 2000  # random draws of 20 positions for the token null


# --------------------------------------------------------------------------- 1. the neuron basis


KINDS = ("neurons", "SAE latents", "random directions")


@figure(
    "neurons-basis",
    title="Are the neurons special? Token specificity and SAE alignment",
    caption=(
        "Left: for each unit of each MLP layer, the number of distinct bytes among its 20 strongest activations on the "
        "held-out text (1: all 20 on one byte), as a share of the units of that kind: the 512 neurons of the layer, the "
        "live latents of the SAEs trained on those neurons (3 seeds pooled), and 512 random directions of the same "
        "neuron space (3 draws pooled). Dashed: 20 random positions of the text. Right: each live SAE latent's largest "
        "|cosine| with a single neuron (1: the latent is one neuron), against random unit directions of the 512-d "
        "neuron space (the null)."
    ),
    model=nr.MODEL,
)
def neurons_basis(ctx: FigureContext):
    rows_out, align_rows = [], []
    token_null = dashboard.random_token_distinct(nr.eval_bytes(ctx.scale), nr.TOP, NULL_DRAWS, seed=0)
    ctx.claim("token_null_distinct", token_null)
    ctx.claim("neurons_per_layer", nr.D_MLP)
    ctx.claim("top", nr.TOP)
    ctx.claim("specific_max", nr.SPECIFIC)
    ctx.claim("sae_latents", nr.SAE_RECIPE["n_latents"])
    ctx.claim("sae_seeds", len(nr.SEEDS))
    ctx.claim("row_bytes", int(nr.rows(ctx.scale).shape[1]))
    ctx.claim("eval_every", nr.EVAL_EVERY)
    for layer in nr.LAYERS:
        spec = nr.specificity(ctx.scale, layer)
        neurons = spec["neurons"][0]
        ctx.claim(f"l{layer}_live_neurons", int(len(neurons)))
        ctx.claim(f"l{layer}_neuron_distinct_median", float(np.median(neurons)))
        ctx.claim(f"l{layer}_neuron_specific_share", float((neurons <= nr.SPECIFIC).mean()))
        claim_over_seeds(ctx, f"l{layer}_random_distinct_median", {s: float(np.median(v)) for s, v in zip(nr.SEEDS, spec["random directions"])})
        claim_over_seeds(ctx, f"l{layer}_random_specific_share", {s: float((v <= nr.SPECIFIC).mean()) for s, v in zip(nr.SEEDS, spec["random directions"])})
        claim_over_seeds(ctx, f"l{layer}_sae_distinct_median", {s: float(np.median(v)) for s, v in zip(nr.SEEDS, spec["SAE latents"])})
        claim_over_seeds(ctx, f"l{layer}_sae_specific_share", {s: float((v <= nr.SPECIFIC).mean()) for s, v in zip(nr.SEEDS, spec["SAE latents"])})
        for kind in KINDS:
            values = np.concatenate(spec[kind])
            counts = np.bincount(values, minlength=nr.TOP + 1)[1:]
            rows_out += [{"layer": f"layer {layer}", "kind": kind, "distinct": i + 1, "share": float(c / len(values)), "n": int(c)}
                         for i, c in enumerate(counts)]
        cosines = {s: nr.alignment(ctx.scale, layer, s) for s in nr.SEEDS}
        claim_over_seeds(ctx, f"l{layer}_sae_max_cos_median", {s: float(v.median()) for s, v in cosines.items()})
        null = dashboard.random_unit_max_cosine(nr.D_MLP, 3000, seed=layer)
        ctx.claim(f"l{layer}_random_max_cos_median", float(null.median()))
        metrics = {s: sae.metrics(nr.layer_sae(ctx.scale, layer, s), nr.eval_acts(ctx.scale, layer)) for s in nr.SEEDS}
        claim_over_seeds(ctx, f"l{layer}_sae_variance_explained", {s: m["variance_explained"] for s, m in metrics.items()})
        claim_over_seeds(ctx, f"l{layer}_sae_l0", {s: m["l0"] for s, m in metrics.items()})
        for kind, values in (("SAE latents", torch.cat(list(cosines.values()))), ("random directions", null)):
            counts, edges = np.histogram(values.numpy(), bins=20, range=(0, 1))
            align_rows += [{"layer": f"layer {layer}", "kind": kind, "x0": float(edges[i]), "x1": float(edges[i + 1]),
                            "share": float(c / len(values))} for i, c in enumerate(counts)]
    colors = charts.series_scale(list(KINDS))
    align_colors = charts.series_scale(["SAE latents", "random directions"], [charts.SERIES[1], charts.SERIES[2]])
    frame, align_frame = pd.DataFrame(rows_out), pd.DataFrame(align_rows)
    left, right = [], []
    for layer in nr.LAYERS:
        name = f"layer {layer}"
        lines = alt.Chart(frame[frame["layer"] == name]).mark_line(point=True, interpolate="step-after").encode(
            x=alt.X("distinct:Q", title=f"distinct bytes among its {nr.TOP} strongest activations", scale=alt.Scale(domain=[1, nr.TOP])),
            y=alt.Y("share:Q", title="share of units", axis=alt.Axis(format="%")),
            color=alt.Color("kind:N", scale=colors, title=None, legend=alt.Legend(orient="bottom", columns=3)),
            tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("distinct:Q", title="distinct bytes"),
                     alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("n:Q", title="units")])
        null_rule = alt.Chart(pd.DataFrame([{"x": token_null}])).mark_rule(strokeDash=[4, 3], color=charts.MUTED).encode(
            x="x:Q", tooltip=[alt.Tooltip("x:Q", title="20 random positions: distinct bytes", format=".1f")])
        left.append(alt.layer(lines, null_rule).properties(width=300, height=150, title=f"Token specificity, {name}"))
        bars = alt.Chart(align_frame[align_frame["layer"] == name]).mark_bar(opacity=0.75).encode(
            x=alt.X("x0:Q", bin="binned", title="largest |cosine| with one neuron", scale=alt.Scale(domain=[0, 1])), x2="x1:Q",
            y=alt.Y("share:Q", title="share", axis=alt.Axis(format="%"), stack=None),
            color=alt.Color("kind:N", scale=align_colors, title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("x0:Q", title="from", format=".2f"),
                     alt.Tooltip("x1:Q", title="to", format=".2f"), alt.Tooltip("share:Q", format=".1%")])
        right.append(bars.properties(width=240, height=150, title=f"SAE latents against single neurons, {name}"))
    return alt.hconcat(alt.vconcat(*left, spacing=20), alt.vconcat(*right, spacing=20), spacing=30).resolve_scale(color="independent")


# --------------------------------------------------------------------------- 2. the browser


def neuron_payload(data: torch.Tensor, layer: int, n: int, column: np.ndarray, effects: list[dict], aligned: list[dict],
                   generator: np.random.Generator) -> tuple[dict, dict]:
    """Neuron n's dashboard file and its row of the list; `data` is the evaluation rows, (rows, 256) bytes."""
    width = data.shape[1]
    peak = float(column.max())
    tokens = []
    for label, t in dashboard.sample_tokens(column, DASH_TOP, PER_QUANTILE, generator):
        r, pos = divmod(t, width)
        values = column[r * width:(r + 1) * width]
        for item in dashboard.byte_line(data[r].tolist(), values, pos, label, *CONTEXT):
            if "w" in item:
                item["w"] = max(0.01, round(item["w"] / peak, 2))  # on, however faintly
            tokens.append({"p": len(tokens), **item})
    top = np.argsort(-column, kind="stable")[:nr.TOP]
    flat = data.reshape(-1)
    distinct = int(torch.unique(flat[torch.from_numpy(top[column[top] > 0])]).numel())
    info = {"f": layer * nr.D_MLP + n, "name": f"L{layer} N{n}", "d": float((column > 0).mean()), "u": distinct,
            "a": round(peak, 2), "t": visible(dashboard.byte_text(int(flat[int(top[0])])))}
    return {"tokens": tokens, "hist": dashboard.histogram(column, HIST_BINS), "logits": effects, "latents": aligned}, info


@figure(
    "neurons-browser",
    title="Neuron browser: every MLP neuron of the GELU flagship",
    caption=(
        "Every neuron of both MLP layers of flagship-bytes-gelu-2l-s0 (one training seed). Left: the neurons, sortable by "
        "how often they are on (GELU output above zero) on held-out bytes or by how many distinct bytes their 20 strongest "
        "activations sit on, and searchable by name (L1 N7) or top byte; pick one in the Neuron menu to load its page. "
        "Middle: the histogram of all its activations (log counts) and the latents of an SAE on its layer (seed 0) whose "
        "decoder directions put the most weight on it. Right: the bytes its output weights push up and down through the "
        "unembedding by the direct path (for layer 0, skipping block 1). Under the chart: its strongest activations and "
        "quantile samples as text."
    ),
    model=nr.MODEL,
)
def neurons_browser(ctx: FigureContext):
    generator = np.random.default_rng(0)
    infos = []
    limit = DASH_NEURONS[ctx.scale]
    data = nr.rows(ctx.scale)[nr.eval_mask(ctx.scale)]  # (eval rows, 256), the text every dashboard quotes
    for layer in nr.LAYERS:
        acts = nr.eval_acts(ctx.scale, layer).numpy()  # (tokens, neuron)
        effects = nr.output_effects(layer)
        weights, names, tops = nr.aligned_latents(ctx.scale, layer)
        shown = range(nr.D_MLP) if limit is None else range(limit)
        for n in ctx.progress(shown, desc=f"layer {layer}"):
            best = weights[n].topk(ALIGNED_TOP)
            aligned = [{"r": i, "t": f"{names[int(j)]} (top {tops[int(j)]})", "v": round(float(v), 3)}
                       for i, (v, j) in enumerate(zip(best.values, best.indices))]
            payload, info = neuron_payload(data, layer, n, acts[:, n], nr.effect_list(effects[n]), aligned, generator)
            ctx.asset(f"neurons/{info['f']}.json", payload)
            infos.append(info)
    frame = pd.DataFrame(infos)
    ctx.claim("shown", len(frame))
    ctx.claim("top_contexts", DASH_TOP)
    ctx.claim("aligned_top", ALIGNED_TOP)
    specific = frame[(frame["u"] <= nr.SPECIFIC) & frame["t"].str.contains("[A-Za-z]", regex=True)]
    default = int((specific if len(specific) else frame).sort_values(["d", "f"], ascending=[False, True])["f"].iloc[0])
    ctx.claim("default_neuron", str(frame.set_index("f").loc[default, "name"]))
    labels = [f"{r.name} · on {r.d:.1%} · {r.u} distinct · top {r.t}" for r in frame.itertuples()]
    return browser_chart(frame, labels, default)


SORTS = ("distinct_asc", "distinct_desc", "density_desc", "density_asc")
SORT_LABELS = ("fewest distinct top bytes first", "most distinct top bytes first", "on most often first", "on least often first")


def browser_chart(frame: pd.DataFrame, labels: list[str], default: int):
    panel = charts.Panel()
    panel.data("neuron", [int(f) for f in frame["f"]], label="Neuron", labels=labels, default=default, fresh=True)
    panel.source("neurons/{neuron}.json", datasets=["tokens", "hist", "logits", "latents"])
    sort = panel.select("sort", list(SORTS), label="Sort the list", labels=list(SORT_LABELS), group="The list")
    # A free-text search (Panel has no text control yet; adding one to explorer/charts.py restales every figure).
    query = panel._add(alt.param(name="query", value="", bind=alt.binding(input="search", placeholder="L1 N7, or a byte", name="Search")),
                       {"label": "Search", "kind": "text", "group": "The list"})
    pages = max(1, int(np.ceil(len(frame) / LIST_PAGE)))
    page = panel.slider("page", list(range(pages)), label="List page", value=0, group="The list",
                        labels=[f"{p * LIST_PAGE + 1}-{min(len(frame), (p + 1) * LIST_PAGE)}" for p in range(pages)])
    listed = frame[["f", "name", "d", "u", "t"]].copy()
    listed["d"] = listed["d"].map(lambda v: float(f"{v:.3g}"))
    key = (f"{sort.name} == 'density_desc' ? -datum.d : {sort.name} == 'density_asc' ? datum.d : "
           f"{sort.name} == 'distinct_asc' ? datum.u - datum.d : -datum.u - datum.d")
    # a name ("L1 N7") matches that neuron alone; anything else matches inside the name or the top byte
    exact = f"test(regexp('^l[0-9]+ n[0-9]+$', 'i'), trim({query.name}))"
    search = (f"trim({query.name}) == '' || indexof(lower(datum.name + ' ' + datum.t + ' '), "
              f"lower(trim({query.name})) + ({exact} ? ' ' : '')) >= 0")
    base = (alt.Chart(listed).transform_filter(search).transform_calculate(key=key)
            .transform_window(rank="row_number()", sort=[alt.SortField("key", order="ascending")])
            .transform_filter(f"datum.rank > {page.name} * {LIST_PAGE} && datum.rank <= ({page.name} + 1) * {LIST_PAGE}"))
    tips = [alt.Tooltip("name:N", title="neuron"), alt.Tooltip("d:Q", title="on (share of bytes)", format=".2%"),
            alt.Tooltip("u:Q", title=f"distinct bytes in its top {nr.TOP}"), alt.Tooltip("t:N", title="top byte")]
    count = alt.Chart(listed).transform_filter(search).transform_aggregate(n="count()").transform_calculate(
        line=f"datum.n + ' of {len(frame)} neurons match'").mark_text(align="left", fontSize=charts.SMALL_SIZE, color=charts.MUTED).encode(
        x=alt.value(0), y=alt.value(6), text="line:N").properties(width=220, height=12)
    columns = dashboard.unit_list(base, tips, unit="neuron", name_width=60, density="how often on", density_axis="on (log)",
                                  density_expr="log(max(datum.d, 1e-5)) / LN10", top="top byte", top_width=44)
    feature_list = alt.vconcat(count, columns, spacing=4)

    hist = alt.Chart(alt.NamedData("hist")).mark_bar(color=charts.SERIES[0]).encode(
        x=alt.X("x0:Q", title="activation (held-out bytes)", bin="binned"), x2="x1:Q",
        y=alt.Y("n:Q", title="bytes", scale=alt.Scale(type="symlog")),
        tooltip=[alt.Tooltip("x0:Q", title="from", format=".2f"), alt.Tooltip("x1:Q", title="to", format=".2f"),
                 alt.Tooltip("n:Q", title="bytes")]).properties(width=250, height=140, title="Activation histogram")
    latents = alt.Chart(alt.NamedData("latents")).mark_bar(color=charts.SERIES[1]).encode(
        y=alt.Y("t:N", title=None, sort=alt.EncodingSortField("r"), axis=alt.Axis(labelLimit=150)),
        x=alt.X("v:Q", title="|decoder weight| on this neuron", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("t:N", title="SAE latent"), alt.Tooltip("v:Q", format=".3f", title="|cosine| with this neuron")],
    ).properties(width=100, height=alt.Step(13), title="SAE latents (seed 0) aligned with it")
    logits = dashboard.effect_bars(("raises", "lowers"), effect="direct logit effect", item="byte", title="Bytes it pushes up and down")
    chart = alt.hconcat(feature_list, alt.vconcat(hist, latents, spacing=16), logits, spacing=24)
    view = charts.text_view(
        "tokens",
        label=(f"Its top {DASH_TOP} activations on held-out text (#1 ...), then {PER_QUANTILE} random samples from each band "
               "of its positive activations (p90+: the top tenth; p50-90; p0-50: the lower half), each within its line "
               "(… where cut). Hover a byte:"),
        color={"data": "tokens", "key": "p", "value": "w", "label": "activation / its largest", "match": {}, "masked": "off",
               "domain": [0, 1], "legend": "Colour: the neuron's activation on each byte, as a share of its largest on held-out text (faint: off)."},
        details={"data": "tokens", "match": {"p": "@hover"}, "title": "{@text}",
                 "columns": [{"field": "w", "label": "activation, share of the neuron's largest", "format": ".0%"}]},
    )
    return panel.finish(chart, text=view)
