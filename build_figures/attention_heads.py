"""Attention heads: every head of the zoo's models, what it looks at, and a score for each kind of head."""

import altair as alt
import pandas as pd
import torch

from explorer.pipeline import FigureContext, figure
from explorer.techniques import heads, probes, prompts

ZOO_LABEL = "each model of the zoo (explorer.models.ZOO), trained by explorer/models/zoo.py"
PROMPT_LABELS = {"code": "Python code", "prose": "docstring prose", "repeat": "random tokens, repeated"}
KIND_LABELS = {"previous_token": "previous token", "duplicate_token": "duplicate token", "induction": "induction", "first_token": "first token"}
STRIP_COLUMNS = 16  # tokens per line in the token strip


def attention_payload(model, tokens: torch.Tensor, labels: list[str]) -> dict:
    """One file per (model, prompt): every head's attention rows as whole percentages, and the tokens.

    A row is stored as a list (the key is its index), which is about six times lighter than one
    record per (query, key).
    """
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    rows = []
    for layer, name in enumerate(names):
        pattern = (cache[name][0] * 100).round().int().cpu()  # (head, q, k), percent
        for head in range(pattern.shape[0]):
            for q in range(pattern.shape[1]):
                rows.append({"l": layer, "h": head, "q": q, "w": pattern[head, q, : q + 1].tolist()})
    strip = [{"q": i, "t": text, "row": i // STRIP_COLUMNS, "col": i % STRIP_COLUMNS} for i, text in enumerate(labels)]
    return {"attn": rows, "tokens": strip}


def flattened(data: alt.Data) -> alt.Chart:
    """Attention records (l, h, q, k, a) from the stored rows; zero weights are not drawn."""
    return (
        alt.Chart(data)
        .transform_flatten(["w"], as_=["pct"])
        .transform_window(rank="row_number()", groupby=["l", "h", "q"])
        .transform_calculate(k="datum.rank - 1", a="datum.pct / 100")
        .transform_filter("datum.pct > 0")
    )


@figure(
    "heads-viewer",
    title="Every attention head, on code, prose and repeated random tokens",
    caption=(
        "Top left: the attention pattern of every head (rows: queries, columns: keys; darker = more "
        "attention). Click a head to enlarge it on the right. Below: the prompt's tokens; hover one to "
        "see where the selected head looks from it (the token's attention row). Weights are rounded to "
        "whole percents. Spaces are drawn ·, newlines ⏎."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def heads_viewer(ctx: FigureContext) -> alt.Chart:
    runs, labels = [], []
    for name in prompts.zoo_or(ctx.model, ZOO_LABEL):
        model = prompts.load(ctx, name)
        for kind in prompts.prompt_kinds(name):
            tokens = prompts.prompt_tokens(model, name, kind)
            ctx.asset(f"attn/{name}--{kind}.json", attention_payload(model, tokens, prompts.token_strings(model, tokens[0])))
            runs.append(f"{name}--{kind}")
            labels.append(f"{name}: {PROMPT_LABELS[kind]}")
    default = "induction-2l--repeat" if "induction-2l--repeat" in runs else runs[0]
    ctx.claim("runs", len(runs))

    attn, strip_data = alt.Data(name="attn"), alt.Data(name="tokens")
    pick = alt.selection_point(name="pick", fields=["l", "h"], on="click", value=[{"l": 0, "h": 0}], clear=False)
    query = alt.selection_point(name="query", fields=["q"], on="pointerover", value=[{"q": 24}], clear=False)  # a token of the second copy
    blues = alt.Scale(scheme="blues", domain=[0, 1])

    overview = (
        flattened(attn)
        .mark_rect()
        .encode(
            x=alt.X("k:O", axis=None),
            y=alt.Y("q:O", axis=None),
            color=alt.Color("a:Q", scale=blues, legend=None),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.3)),
        )
        .properties(width=64, height=64)
        .add_params(pick)
        .facet(row=alt.Row("l:O", title="layer"), column=alt.Column("h:O", title="head"))
    )
    detail = (
        flattened(attn)
        .transform_filter(pick)
        .mark_rect()
        .encode(
            x=alt.X("k:O", title="key position"),
            y=alt.Y("q:O", title="query position"),
            color=alt.Color("a:Q", scale=blues, title="attention"),
            tooltip=[alt.Tooltip("l:O", title="layer"), alt.Tooltip("h:O", title="head"), "q:O", "k:O", alt.Tooltip("a:Q", format=".2f")],
        )
        .properties(width=300, height=300, title="selected head")
    )
    cell = {"x": alt.X("col:O", axis=None), "y": alt.Y("row:O", axis=None)}
    weights = (
        flattened(attn)
        .transform_filter(pick)
        .transform_filter(query)
        .transform_calculate(row=f"floor(datum.k / {STRIP_COLUMNS})", col=f"datum.k % {STRIP_COLUMNS}")
        .mark_rect()
        .encode(**cell, color=alt.Color("a:Q", scale=blues, legend=None))
    )
    text = alt.Chart(strip_data).mark_text(fontSize=11, limit=44).encode(**cell, text=alt.Text("t:N"))
    marker = alt.Chart(strip_data).transform_filter(query).mark_rect(fill=None, stroke="#e6550d", strokeWidth=2).encode(**cell)
    hover_cells = (
        alt.Chart(strip_data)
        .mark_rect(fill="#000000", fillOpacity=0, stroke="#888888", strokeOpacity=0.25)
        .encode(**cell, tooltip=[alt.Tooltip("q:O", title="position"), alt.Tooltip("t:N", title="token")])
        .add_params(query)
    )
    strip = alt.layer(weights, text, marker, hover_cells).properties(
        width=STRIP_COLUMNS * 44, height=alt.Step(22), title="hover a token: where the selected head looks from it"
    )
    chart = alt.vconcat(alt.hconcat(overview, detail), strip)
    return chart.properties(usermeta={"explorer": {
        "controls": [{"name": "run", "label": "Model and prompt", "options": runs, "labels": labels, "default": default,
                      "fresh": True}],  # models differ in layers and heads: a kept pick could point at no head
        "source": {"url": "attn/{run}.json", "datasets": ["attn", "tokens"]},
    }})


def score_table(ctx: FigureContext, name: str) -> pd.DataFrame:
    """Head-wiki rows for one model, scored on its canonical probe set (explorer.techniques.probes):
    previous-token and first-token scores on held-out text, duplicate-token and induction scores on
    repeated random tokens (text repeats too rarely). Every page shows these same numbers."""
    model = prompts.load(ctx, name)
    table = probes.head_scores(model, probes.probe_set(model, name, ctx.scale))
    table.insert(0, "model", name)
    return table


def top_head(table: pd.DataFrame, kind: str) -> tuple[str, float]:
    best = table.loc[table[kind].idxmax()]
    return f"L{int(best['layer'])}H{int(best['head'])}", float(best[kind])


@figure(
    "heads-wiki",
    title="A head wiki: four detector scores for every head of every model",
    caption=(
        "Each cell is one head (columns: head index, rows: layer). Previous-token and first-token "
        "scores are the mean attention a head puts on the previous token / on position 0, over held-out "
        "text; duplicate-token and induction scores are its mean attention on earlier copies of the "
        "current token / on the tokens right after them, over sequences of random tokens repeated once, "
        "counting only queries that have such a target. 1 is a perfect head of that kind. The slider dims "
        "heads that score below it."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def heads_wiki(ctx: FigureContext) -> alt.Chart:
    names = prompts.zoo_or(ctx.model, ZOO_LABEL)
    table = pd.concat([score_table(ctx, name) for name in names], ignore_index=True)
    for name in names:
        rows = table[table.model == name]
        key = name.replace("-", "_")
        for kind in ("induction", "previous_token"):
            head, score = top_head(rows, kind)
            ctx.claim(f"{key}_{kind}_head", head)
            ctx.claim(f"{key}_{kind}_max", score)
        ctx.claim(f"{key}_induction_heads_over_half", int((rows.induction > 0.5).sum()))
    text_models = [name for name in names if prompts.reads_text(name)]
    if text_models:
        text_rows = table[table.model.isin(text_models)]
        ctx.claim("text_models_best_induction", float(text_rows.induction.max()))
        ctx.claim("text_models_best_previous_token", float(text_rows.previous_token.max()))
    return wiki_chart(table, names)


def wiki_chart(table: pd.DataFrame, names: list[str]) -> alt.Chart:
    """Small heatmaps: one row of four (one per kind) for each model."""
    long = table.melt(id_vars=["model", "layer", "head"], value_vars=list(heads.HEAD_KINDS), var_name="kind", value_name="score")
    long["kind"] = long["kind"].map(KIND_LABELS)
    long["score"] = long["score"].round(3)

    threshold = alt.param(name="threshold", value=0.2, bind=alt.binding_range(min=0, max=1, step=0.05, name="dim heads scoring below "))
    base = alt.Chart(long).encode(x=alt.X("head:O", title="head"), y=alt.Y("layer:O", title="layer"))
    cells = base.mark_rect().encode(
        color=alt.Color("score:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="score"),
        opacity=alt.condition("datum.score >= threshold", alt.value(1.0), alt.value(0.2)),
        tooltip=["model:N", "layer:O", "head:O", "kind:N", alt.Tooltip("score:Q", format=".2f")],
    )
    numbers = base.mark_text(fontSize=10).encode(
        text=alt.Text("score:Q", format=".2f"),
        color=alt.condition("datum.score >= threshold && datum.score <= 0.6", alt.value("white"), alt.value("black")),
    )
    return (
        alt.layer(cells, numbers)
        .properties(width=alt.Step(34), height=66)
        .add_params(threshold)
        .facet(
            row=alt.Row("model:N", title=None, sort=names, header=alt.Header(labelAngle=0, labelAlign="left")),
            column=alt.Column("kind:N", title=None, sort=list(KIND_LABELS.values())),
        )
        .resolve_scale(y="independent")
    )
