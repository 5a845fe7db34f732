"""Patching and ablation: which activations carry an induction answer, and which heads the loss needs.

Inputs come from the canonical probe set (explorer.techniques.probes), so a head's induction score
here is the one the induction article and the head wiki show. Each zoo model is one training run.
"""

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.pipeline import FigureContext, figure
from explorer.techniques import patching, probes, prompts

ZOO_LABEL = ("the flagship (models/flagship-bytes-2l-s0), induction-2l and attn-only-2l of the zoo (explorer/models/zoo.py), "
             "one training run each")  # fmt: skip
PATCHED_MODELS = (prompts.FLAGSHIP, "attn-only-2l", "induction-2l")  # the other zoo code models add no induction head, only minutes
NULL_DRAWS = {"smoke": 4, "full": 10}
ABLATION_TOKENS = 4096  # held-out tokens per ablation run (32 rows of the zoo's 128-token context)
ABLATION_CPU_WORK = 20 * probes.SWEEP_WORK  # beyond this (GPT-2 small: 300x), a CPU skips the ablation figure
LABELS = 3  # heads named in the ablation plot: the costliest that beat their null


def induction_pair(model, name: str, scale: str) -> dict:
    """Clean and corrupted inputs from the canonical probe rows.

    Clean: [start] + r + r[:k] with k = half // 2, so the next token should be r[k] (copied by
    induction). Corrupted: the same with r[k] of the first copy replaced by a token that is not in
    the row, which induction would copy instead.
    """
    p = probes.probe_set(model, name, scale)
    k = p.half // 2
    clean = p.repeated[:, : p.prefix + p.half + k].clone()  # (batch, pos)
    altered_at = p.prefix + k
    vocab = prompts.sampling_vocab(model)
    generator = torch.Generator().manual_seed(probes.PROBE_SEED + 1)
    corrupt_answers = []
    for row in clean.tolist():
        unused = sorted(set(vocab) - set(row))
        corrupt_answers.append(unused[int(torch.randint(len(unused), (1,), generator=generator))])
    corrupt_answers = torch.tensor(corrupt_answers)
    corrupted = clean.clone()
    corrupted[:, altered_at] = corrupt_answers
    device = model.cfg.device
    return {"clean": clean.to(device), "corrupted": corrupted.to(device), "answers": clean[:, altered_at].to(device),
            "corrupt_answers": corrupt_answers.to(device), "altered_at": altered_at, "probe": p, "k": k}


def patching_run(ctx: FigureContext, name: str, sweep) -> dict:
    """Build the pair for one model and run one sweep over it (`resid_sweep` or `heads_sweep`).

    A large model patches fewer of the probe's rows (probes.rows_within), each of ours all of them;
    the figure's data keeps the number of rows."""
    model = prompts.load(ctx, name)
    pair = induction_pair(model, name, ctx.scale)
    n = probes.rows_within(model, pair["clean"].shape[0], pair["clean"].shape[1], sweep(model, pair, None))
    pair.update({key: pair[key][:n] for key in ("clean", "corrupted", "answers", "corrupt_answers")})
    metric = patching.logit_difference(pair["answers"], pair["corrupt_answers"])
    with torch.no_grad():
        clean_value, corrupt_value = metric(model(pair["clean"])).item(), metric(model(pair["corrupted"])).item()
    scaled = patching.normalized(metric, clean_value, corrupt_value)
    return {**pair, "model": model, "clean_value": clean_value, "corrupt_value": corrupt_value,
            "grid": sweep(model, pair, scaled)}


def heads_sweep(model, pair: dict, metric) -> torch.Tensor | int:
    """Each head's output patched at every position; with metric None, the forward passes it takes."""
    if metric is None:
        return model.cfg.n_layers * model.cfg.n_heads + 2
    return patching.patch_head_outputs(model, pair["clean"], pair["corrupted"], metric)


def patched_positions(model, pair: dict) -> list[int] | None:
    """Every position (None), or only the key ones when patching them all, even over the fewest
    rows, would not fit the sweep budget (GPT-2 small: 13 stages x 73 positions = 949 passes)."""
    n_pos = pair["clean"].shape[1]
    every = (model.cfg.n_layers + 1) * n_pos + 2
    if probes.parameter_count(model) * probes.MIN_ROWS * n_pos * every <= probes.SWEEP_WORK:
        return None
    return [p for p, (_, key) in enumerate(position_roles(pair)) if key]


def resid_sweep(model, pair: dict, metric) -> torch.Tensor | int:
    """The residual stream patched at each (stage, position), NaN at positions left out (see
    patched_positions); with metric None, the forward passes it takes."""
    positions = patched_positions(model, pair)
    if metric is None:
        return (model.cfg.n_layers + 1) * (pair["clean"].shape[1] if positions is None else len(positions)) + 2
    grid = patching.patch_residual_stream(model, pair["clean"], pair["corrupted"], metric, positions=positions)
    if positions is None:
        return grid
    full = torch.full((grid.shape[0], pair["clean"].shape[1]), float("nan"))
    full[:, positions] = grid
    return full


def position_roles(run: dict) -> list[tuple[str, bool]]:
    """(label, is a key position) for every position of the pair: roles, since the tokens are random."""
    p, n_pos = run["probe"], run["clean"].shape[1]
    out = []
    for pos in range(n_pos):
        if pos < p.prefix:
            out.append((f"{pos} start", True))
        elif pos == run["altered_at"] - 1:
            out.append((f"{pos} 1st copy: the last token's earlier copy", True))
        elif pos == run["altered_at"]:
            out.append((f"{pos} 1st copy: the altered token", True))
        elif pos < p.prefix + p.half:
            out.append((f"{pos} 1st copy", pos in (p.prefix, run["altered_at"] + 1)))
        elif pos == n_pos - 1:
            out.append((f"{pos} 2nd copy: last", True))
        else:
            out.append((f"{pos} 2nd copy", pos == p.prefix + p.half))
    return out


def sweep_models(ctx: FigureContext) -> list[str]:
    """PATCHED_MODELS (or the `--model`): the flagship, the synthetic-task model and one zoo code model."""
    prompts.decoder_only(ctx.model, "the patching article measures next-token induction and next-token loss")
    names = prompts.zoo_or(ctx.model, ZOO_LABEL)
    return [n for n in names if n in PATCHED_MODELS] or names


def default_model(names: list[str]) -> str:
    return prompts.FLAGSHIP if prompts.FLAGSHIP in names else names[0]


def recovery_scale() -> alt.Scale:
    return charts.diverging(1.0, clamp=True)


def on_cell(field: str, limit: float = 0.6):
    """Text colour over a diverging cell: paper on strong colours, ink on pale ones."""
    return alt.condition(f"abs(datum.{field}) > {limit}", alt.value(charts.PAPER), alt.value(charts.INK))


@figure(
    "patching-resid",
    title="Patching the residual stream, position by position",
    caption=(
        "Clean input: a row of the canonical probe (random tokens, after an end-of-text token where the model has one) "
        "cut in the middle of its second copy, so the next token should be the one after the last token's earlier copy "
        "(induction). Corrupted input: the same with that token of the first copy replaced by one not in the row. Each "
        "cell runs the corrupted input but copies the clean residual stream at one position and one depth (rows: before "
        "the first block, after each block) and shows the fraction of the clean-minus-corrupted logit difference at the "
        "last position that comes back (1: all of it, 0: none). Mean over the probe's rows."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def patching_resid(ctx: FigureContext) -> alt.Chart:
    names = sweep_models(ctx)
    for name in names:
        run = patching_run(ctx, name, resid_sweep)
        grid, model = run["grid"], run["model"]
        roles = position_roles(run)
        stages = ["embed"] + [f"after L{layer}" for layer in range(model.cfg.n_layers)]
        records = [
            {"stage": stages[s], "s": s, "pos": roles[p][0], "p": p, "key": roles[p][1], "v": round(grid[s, p].item(), 3)}
            for s in range(grid.shape[0]) for p in range(grid.shape[1]) if not grid[s, p].isnan()
        ]
        ctx.asset(f"models/{name}.json", {"patch": records})
        key = name.replace("-", "_")
        ctx.claim(f"{key}_last_stage_last_pos", grid[-1, -1].item())
        ctx.claim(f"{key}_embed_altered_pos", grid[0, run["altered_at"]].item())
        ctx.claim(f"{key}_altered_pos_before_last_block", grid[-2, run["altered_at"]].item())
        ctx.claim(f"{key}_last_pos_before_last_block", grid[-2, -1].item())
        ctx.claim(f"{key}_clean_logit_diff", run["clean_value"])
        ctx.claim(f"{key}_corrupt_logit_diff", run["corrupt_value"])
        ctx.claim(f"{key}_rows", run["clean"].shape[0])
        if name == "induction-2l":
            ctx.claim("rows", run["clean"].shape[0])
            ctx.claim("half", run["probe"].half)
            ctx.claim("second_copy_tokens", run["k"])
    lead = prompts.FLAGSHIP if ctx.model == ZOO_LABEL else ctx.model  # the model the page discusses first
    ctx.claim_subject(lead.replace("-", "_"), lead)

    panel = charts.Panel()
    panel.data("model", names, label="Model", default=default_model(names))
    panel.source("models/{model}.json", datasets=["patch"])
    view = panel.select("positions", ["key", "every"], label="Positions", labels=["key positions, with numbers", "every position"], radio=True)
    base = alt.Chart(alt.NamedData("patch")).transform_filter("positions == 'every' || datum.key").encode(
        x=alt.X("pos:N", sort=alt.EncodingSortField("p", op="min"), title="position (role in the input)",
                axis=alt.Axis(labelAngle=-40, labelLimit=220, labelExpr="positions == 'every' ? (split(datum.label, ' ')[0] % 4 == 0 ? split(datum.label, ' ')[0] : '') : datum.label")),
        y=alt.Y("stage:N", sort=alt.EncodingSortField("s", op="min"), title="residual stream patched"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("v:Q", scale=recovery_scale(), title="recovered", legend=alt.Legend(gradientLength=100)),
        tooltip=["stage:N", alt.Tooltip("pos:N", title="position"), alt.Tooltip("v:Q", title="recovered", format=".2f")],
    )
    numbers = base.transform_filter(view == "key").mark_text(fontSize=charts.LABEL_SIZE).encode(
        text=alt.Text("v:Q", format=".2f"), color=on_cell("v"))
    return panel.finish(alt.layer(cells, numbers).properties(width="container", height=alt.Step(30)))


@figure(
    "patching-heads",
    title="Patching one head's output at a time",
    caption=(
        "Same clean and corrupted inputs as above. Left: each cell runs the corrupted input with one head's output (at "
        "every position) taken from the clean run, and shows the fraction of the logit difference that comes back. "
        "Right: the head's induction score on the canonical probe (the same number as in the head wiki and the induction "
        "article), with the score of uniform attention for comparison."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def patching_heads(ctx: FigureContext) -> alt.Chart:
    names = sweep_models(ctx)
    for name in names:
        run = patching_run(ctx, name, heads_sweep)
        grid, model = run["grid"], run["model"]
        scores = probes.head_scores(model, run["probe"])
        chance = probes.uniform_induction_score(run["probe"])
        records = [
            {"layer": int(r.layer), "head": int(r.head), "label": f"L{int(r.layer)}H{int(r.head)}", "v": round(grid[int(r.layer), int(r.head)].item(), 3),
             "induction": round(float(r.induction), 3)}
            for r in scores.itertuples()
        ]
        ctx.asset(f"models/{name}.json", {"patch": records, "meta": [{"text": f"uniform attention scores {chance:.2f}"}]})
        best = max(records, key=lambda r: r["v"])
        key = name.replace("-", "_")
        ctx.claim(f"{key}_top_head", best["label"])
        ctx.claim(f"{key}_top_head_recovered", grid[best["layer"], best["head"]].item())
        ctx.claim(f"{key}_top_head_induction", float(scores[(scores.layer == best["layer"]) & (scores["head"] == best["head"])].induction.iloc[0]))
        ctx.claim(f"{key}_top_layer_sum", grid[best["layer"]].sum().item())
        ctx.claim(f"{key}_chance_induction", chance)
        ctx.claim(f"{key}_rows", run["clean"].shape[0])
    lead = prompts.FLAGSHIP if ctx.model == ZOO_LABEL else ctx.model  # the model the page discusses first
    ctx.claim_subject(lead.replace("-", "_"), lead)

    panel = charts.Panel()
    panel.data("model", names, label="Model", default=default_model(names))
    panel.source("models/{model}.json", datasets=["patch", "meta"])
    base = alt.Chart(alt.NamedData("patch")).encode(x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
    tooltip = [alt.Tooltip("label:N", title="head"), alt.Tooltip("v:Q", title="recovered", format=".2f"),
               alt.Tooltip("induction:Q", title="induction score", format=".2f")]
    recovered = alt.layer(
        base.mark_rect().encode(color=alt.Color("v:Q", scale=recovery_scale(), title="recovered", legend=alt.Legend(gradientLength=80)), tooltip=tooltip),
        base.mark_text(fontSize=charts.LABEL_SIZE).encode(text=alt.Text("v:Q", format=".2f"), color=on_cell("v")),
    ).properties(width=alt.Step(48), height=alt.Step(36), title="fraction recovered by patching the head")
    induction = alt.layer(
        base.mark_rect().encode(color=alt.Color("induction:Q", scale=charts.sequential((0, 1)), title="induction score",
                                                legend=alt.Legend(gradientLength=80)), tooltip=tooltip),
        base.mark_text(fontSize=charts.LABEL_SIZE).encode(
            text=alt.Text("induction:Q", format=".2f"),
            color=alt.condition(alt.datum.induction > 0.55, alt.value(charts.PAPER), alt.value(charts.INK))),
    ).properties(width=alt.Step(48), height=alt.Step(36), title="induction score (canonical probe)")
    note = alt.Chart(alt.NamedData("meta")).mark_text(align="left", fontSize=charts.LABEL_SIZE, color=charts.MUTED).encode(
        text="text:N", x=alt.value(0), y=alt.value(8)).properties(width=200, height=16, view=alt.ViewConfig(stroke=None))
    return panel.finish(alt.hconcat(recovered, alt.vconcat(induction, note)).resolve_scale(color="independent"))


def ablation_table(ctx: FigureContext, name: str) -> tuple[pd.DataFrame, float]:
    """Loss rise on held-out text for each head under each ablation, its null, and the head's scores."""
    model = prompts.load(ctx, name)
    p = probes.probe_set(model, name, ctx.scale)
    length = p.text.shape[1]
    rows = min(len(p.text) // 2, max(8, ABLATION_TOKENS // length))  # the flagship's rows are twice as long as the zoo's
    passes = len(patching.ABLATIONS) * (model.cfg.n_layers * model.cfg.n_heads * (1 + NULL_DRAWS[ctx.scale]) + 3)
    rows = probes.rows_within(model, rows, length, passes)
    if str(ctx.device) == "cpu" and probes.parameter_count(model) * rows * length * passes > ABLATION_CPU_WORK:
        raise patching.TooCostly(
            f"{name}: ablating its {model.cfg.n_layers * model.cfg.n_heads} heads one at a time, each against "
            f"{NULL_DRAWS[ctx.scale]} random pushes, takes {passes} forward passes of {rows} x {length} tokens: hours on "
            "this CPU, minutes on a GPU (make figures runs on one when there is one)")
    text, reference = p.text[0::2][:rows].to(model.cfg.device), p.text[1::2][:rows].to(model.cfg.device)  # interleaved: both span the held-out rows
    scores = probes.head_scores(model, p)
    frames, clean_loss = [], 0.0
    for i, method in enumerate(patching.ABLATIONS):
        clean_loss, losses, null = patching.ablate_heads(model, text, method, reference, null_draws=NULL_DRAWS[ctx.scale], seed=i)
        frame = scores.copy()
        frame["method"] = method
        frame["increase"] = [losses[int(r.layer), int(r.head)].item() - clean_loss for r in scores.itertuples()]
        frame["null_median"] = [null[int(r.layer), int(r.head)].median().item() - clean_loss for r in scores.itertuples()]
        frame["null_p95"] = [torch.quantile(null[int(r.layer), int(r.head)], 0.95).item() - clean_loss for r in scores.itertuples()]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "model", name)
    table["label"] = [f"L{r.layer}H{r.head}" for r in table.itertuples()]
    return table, clean_loss


@figure(
    "patching-ablation",
    title="Knocking out one head at a time, against a random push of the same size",
    caption=(
        "Each point is one head of the chosen model. Horizontal: its induction or previous-token score on the canonical "
        "probe. Vertical: how much the next-token loss on held-out rows rises when the head's output is replaced: by "
        "zero, by its mean output over other held-out rows, or (resample) by its output at the same position of another "
        "held-out row. The grey tick at each head's score is its null: the 95th percentile of the rise under random pushes "
        "of the residual stream of the same size as the ablation. Named: the three costliest heads that beat their null."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def patching_ablation(ctx: FigureContext) -> alt.Chart:
    names = sweep_models(ctx)
    tables = []
    for name in names:
        table, clean_loss = ablation_table(ctx, name)
        tables.append(table)
        key = name.replace("-", "_")
        ctx.claim(f"{key}_clean_loss", clean_loss)
        for method in patching.ABLATIONS:
            rows = table[table.method == method]
            best = rows.loc[rows.increase.idxmax()]
            ctx.claim(f"{key}_{method}_top_head", best["label"])
            ctx.claim(f"{key}_{method}_top_increase", float(best["increase"]))
            ctx.claim(f"{key}_{method}_top_null_p95", float(best["null_p95"]))
            ctx.claim(f"{key}_{method}_top_head_induction", float(best["induction"]))
            ctx.claim(f"{key}_{method}_top_head_previous", float(best["previous_token"]))
            ctx.claim(f"{key}_{method}_heads_above_null", int((rows.increase > rows.null_p95).sum()))
            ratio = rows.increase / rows.null_p95.clip(lower=1e-6)  # how far past its own null each head's cost goes
            beyond = rows.loc[ratio.idxmax()]
            ctx.claim(f"{key}_{method}_top_ratio_head", beyond["label"])
            ctx.claim(f"{key}_{method}_top_ratio", float(ratio.max()))
            ctx.claim(f"{key}_{method}_top_head_ratio", float(best["increase"] / max(best["null_p95"], 1e-6)))
            inductive = rows.loc[rows.induction.idxmax()]
            ctx.claim(f"{key}_{method}_top_induction_head", inductive["label"])
            ctx.claim(f"{key}_{method}_top_induction_head_increase", float(inductive["increase"]))
            ctx.claim(f"{key}_{method}_top_induction_head_null_p95", float(inductive["null_p95"]))
        ctx.claim(f"{key}_heads", int(len(table) // len(patching.ABLATIONS)))
    lead = prompts.FLAGSHIP if ctx.model == ZOO_LABEL else ctx.model  # the model the page discusses first
    ctx.claim_subject(lead.replace("-", "_"), lead)
    table = pd.concat(tables, ignore_index=True)
    tops = {(m, method): table[(table.model == m) & (table.method == method)].sort_values("increase").iloc[-1]
            for m in names for method in patching.ABLATIONS}
    ctx.claim("models", len(names))
    ctx.claim("models_resample_largest", sum(tops[m, "resample"].increase > max(tops[m, "mean"].increase, tops[m, "zero"].increase) for m in names))
    ctx.claim("models_same_top_zero_mean", sum(tops[m, "zero"].label == tops[m, "mean"].label for m in names))
    table["beats_null"] = table.increase > table.null_p95
    table["rank"] = table.groupby(["model", "method"]).increase.rank(ascending=False, method="first")
    table["labelled"] = table.beats_null & (table["rank"] <= LABELS)
    data = table[["model", "label", "layer", "head", "method", "induction", "previous_token", "increase", "null_p95", "null_median", "labelled"]].round(4)
    data["layer"] = "layer " + data.layer.astype(str)

    panel = charts.Panel()
    model_pick = panel.select("model", names, label="Model", value=default_model(names))
    method_pick = panel.select("method", list(patching.ABLATIONS), label="Ablation", value="mean", radio=True)
    axis_pick = panel.select("score", ["induction", "previous_token"], label="Horizontal axis", labels=["induction score", "previous-token score"], radio=True)
    base = (
        alt.Chart(data)
        .transform_filter((alt.datum.model == model_pick) & (alt.datum.method == method_pick))
        .transform_calculate(x=f"datum[{axis_pick.name}]")
        .encode(x=alt.X("x:Q", title="score on the canonical probe (see Horizontal axis)", scale=alt.Scale(zero=True, nice=True)))
    )
    layers = sorted(data.layer.unique())
    tips = [alt.Tooltip("label:N", title="head"), alt.Tooltip("induction:Q", title="induction score", format=".2f"),
            alt.Tooltip("previous_token:Q", title="previous-token score", format=".2f"),
            alt.Tooltip("increase:Q", title="loss rise (nats)", format=".3f"), alt.Tooltip("null_p95:Q", title="null 95th percentile", format=".3f")]
    points = base.mark_circle(size=90, opacity=0.9).encode(
        y=alt.Y("increase:Q", title="loss rise when ablated (nats/token)"),
        color=alt.Color("layer:N", scale=charts.series_scale(layers), title=None, legend=alt.Legend(orient="bottom", direction="horizontal")),
        tooltip=tips)
    null = base.mark_tick(color=charts.FAINT, thickness=2, size=14).encode(y="null_p95:Q", tooltip=tips)
    labels = base.transform_filter(alt.datum.labelled).mark_text(dx=8, dy=-11, align="left", fontSize=charts.SMALL_SIZE, color=charts.INK).encode(
        y="increase:Q", text="label:N")
    return panel.finish(alt.layer(null, points, labels).properties(width="container", height=320))


# --------------------------------------------------------------------------- a natural pair: a renamed identifier

IDENTIFIER_PAIRS = (  # (shared prefix, one suffix, the other): every identifier is 9 bytes, so all rows align
    ("row_", "index", "value"), ("max_", "count", "width"), ("cur_", "value", "total"), ("num_", "items", "lines"),
    ("old_", "state", "match"), ("new_", "entry", "block"), ("out_", "chunk", "frame"), ("key_", "names", "parts"),
    ("top_", "score", "level"), ("tmp_", "files", "names"), ("src_", "lines", "bytes"), ("dst_", "paths", "files"),
)
IDENTIFIER_TEMPLATE = "def update(records):\n    {name} = None\n    for record in records:\n        {name} = record\n    return {prefix}"


def identifier_pairs() -> dict:
    """Clean and corrupted code that differ only in a variable's name (both orders of each pair of names).

    The prompt stops after the name's shared prefix in `return`: the next byte is the first letter of
    the suffix the function used, which only the earlier uses of the name can tell."""
    clean, corrupted, answers, corrupt_answers = [], [], [], []
    for prefix, one, other in IDENTIFIER_PAIRS:
        for mine, theirs in ((one, other), (other, one)):
            clean.append(list(IDENTIFIER_TEMPLATE.format(name=prefix + mine, prefix=prefix).encode()))
            corrupted.append(list(IDENTIFIER_TEMPLATE.format(name=prefix + theirs, prefix=prefix).encode()))
            answers.append(ord(mine[0]))
            corrupt_answers.append(ord(theirs[0]))
    clean_t, corrupted_t = torch.tensor(clean), torch.tensor(corrupted)  # (rows, pos)
    return {"clean": clean_t, "corrupted": corrupted_t, "answers": torch.tensor(answers), "corrupt_answers": torch.tensor(corrupt_answers),
            "differs": (clean_t != corrupted_t).any(0)}  # fmt: skip


def identifier_roles(pair: dict) -> list[tuple[str, bool]]:
    """(label, is a key position) per position: the first row's byte, and the renamed bytes' role."""
    row, differs = pair["clean"][0].tolist(), pair["differs"].tolist()
    first_renamed = [p for p in range(len(row)) if differs[p] and not differs[p - 1]]  # where each use of the name starts to differ
    uses = {p: i for i, p in enumerate(first_renamed)}
    out = []
    for p, byte in enumerate(row):
        char = prompts.printable(chr(byte)).replace(" ", "·").replace("\\n", "⏎")
        if p in uses:
            out.append((f"{p} {char}: renamed, use {uses[p] + 1}", True))
        elif p == len(row) - 1:
            out.append((f"{p} {char}: last (predicts the next letter)", True))
        else:
            out.append((f"{p} {char}", differs[p] or p in {q - 1 for q in first_renamed}))
    return out


@figure(
    "patching-identifier",
    title="A renamed variable: which stream and which head carry the name to where it is used",
    caption=(
        "Clean input: a short Python function that assigns a variable twice and stops in `return` after the name's "
        "prefix (`return row_`); corrupted input: the same function with the variable renamed (`row_index` becomes "
        "`row_value`), so the next byte should change from `i` to `v`. Twelve pairs of 9-byte names, in both orders "
        "(24 rows). Metric: the logit of the clean answer minus the corrupted answer at the last position, rescaled so "
        "the corrupted run reads 0 and the clean run 1. Left: patching the clean residual stream at one position and "
        "depth into the corrupted run (key positions; the labels are the first row's bytes). Right: patching one "
        "head's output at every position. Flagship seeds 0-2 (pick one)."
    ),
    model="flagship-bytes-2l seeds 0-2 (models/flagship-bytes-2l-s*, trained by explorer/longruns/flagship.py)",
)
def patching_identifier(ctx: FigureContext) -> alt.Chart:
    from explorer.ensemble import claim_over_seeds
    from explorer.models import flagship

    pair = identifier_pairs()
    roles = identifier_roles(pair)
    keys = [q for q, (_, key) in enumerate(roles) if key]  # the positions patched one by one
    stages = ["embed", "after L0", "after L1"]
    top1_clean, top1_corrupted = {}, {}
    clean_diff, untrained_diff, top, top_recovered, runner_up, resid_renamed, resid_last, induction_top = {}, {}, {}, {}, {}, {}, {}, {}
    seeds = (0, 1, 2)
    for seed in seeds:
        model = flagship.load(seed, device=ctx.device)
        clean, corrupted = pair["clean"].to(ctx.device), pair["corrupted"].to(ctx.device)
        metric = patching.logit_difference(pair["answers"].to(ctx.device), pair["corrupt_answers"].to(ctx.device))
        with torch.no_grad():
            clean_logits, corrupt_logits = model(clean)[:, -1], model(corrupted)[:, -1]  # (rows, vocab)
            top1_clean[seed] = (clean_logits.argmax(-1).cpu() == pair["answers"]).float().mean().item()
            top1_corrupted[seed] = (corrupt_logits.argmax(-1).cpu() == pair["corrupt_answers"]).float().mean().item()
            clean_value, corrupt_value = metric(model(clean)).item(), metric(model(corrupted)).item()
            untrained_diff[seed] = metric(flagship.load(seed, step=0, device=ctx.device)(clean)).item()
        scaled = patching.normalized(metric, clean_value, corrupt_value)
        resid = patching.patch_residual_stream(model, clean, corrupted, scaled, keys)  # (stage, key position)
        by_head = patching.patch_head_outputs(model, clean, corrupted, scaled)  # (layer, head)
        scores = probes.head_scores(model, probes.probe_set(model, prompts.FLAGSHIP, ctx.scale))  # the same inputs for every seed
        flat = by_head.flatten()
        order = flat.argsort(descending=True)
        best_layer, best_head = divmod(int(order[0]), model.cfg.n_heads)
        clean_diff[seed] = clean_value
        top[seed] = f"L{best_layer}H{best_head}"
        top_recovered[seed] = float(flat[order[0]])
        runner_up[seed] = float(flat[order[1]])
        renamed = [i for i, q in enumerate(keys) if "renamed" in roles[q][0]]
        resid_renamed[seed] = float(resid[1, renamed].max())  # after L0, at a renamed byte
        resid_last[seed] = float(resid[1, -1])  # after L0, at the last position
        best_induction = scores.loc[scores.induction.idxmax()]
        induction_top[seed] = int(f"L{int(best_induction.layer)}H{int(best_induction['head'])}" == top[seed])
        records = [{"stage": stages[s], "s": s, "pos": roles[q][0], "p": q, "v": round(resid[s, i].item(), 3)}
                   for s in range(resid.shape[0]) for i, q in enumerate(keys)]  # fmt: skip
        head_rows = [{"layer": int(r.layer), "head": int(r.head), "label": f"L{int(r.layer)}H{int(r.head)}",
                      "v": round(by_head[int(r.layer), int(r.head)].item(), 3), "induction": round(float(r.induction), 3),
                      "previous_token": round(float(r.previous_token), 3)} for r in scores.itertuples()]  # fmt: skip
        ctx.asset(f"seeds/{seed}.json", {"patch": records, "heads": head_rows})
    ctx.claim("rows", int(pair["clean"].shape[0]))
    ctx.claim("pairs", len(IDENTIFIER_PAIRS))
    ctx.claim("top_head", top[0])
    ctx.claim("seeds_top_head_is_induction_head", sum(induction_top.values()))
    ctx.claim("seeds_same_top_head", sum(t == top[0] for t in top.values()))
    claim_over_seeds(ctx, "clean_logit_diff", clean_diff)
    claim_over_seeds(ctx, "top1_clean", top1_clean)  # the next byte right on the clean input (chance: 1 in 95)
    claim_over_seeds(ctx, "top1_corrupted", top1_corrupted)
    claim_over_seeds(ctx, "untrained_logit_diff", untrained_diff)
    claim_over_seeds(ctx, "top_head_recovered", top_recovered)
    claim_over_seeds(ctx, "runner_up_recovered", runner_up)
    claim_over_seeds(ctx, "after_l0_renamed_max", resid_renamed)
    claim_over_seeds(ctx, "after_l0_last", resid_last)

    panel = charts.Panel()
    panel.data("seed", [str(s) for s in seeds], label="Seed", default="0")
    panel.source("seeds/{seed}.json", datasets=["patch", "heads"])
    base = alt.Chart(alt.NamedData("patch")).encode(
        y=alt.X("pos:N", sort=alt.EncodingSortField("p", op="min"), title="position (first row's byte)", axis=alt.Axis(labelLimit=260)),
        x=alt.Y("stage:N", sort=alt.EncodingSortField("s", op="min"), title="stream patched", axis=alt.Axis(labelAngle=0)),
    )
    tip = ["stage:N", alt.Tooltip("pos:N", title="position"), alt.Tooltip("v:Q", title="recovered", format=".2f")]
    stream = alt.layer(
        base.mark_rect().encode(color=alt.Color("v:Q", scale=recovery_scale(), title="recovered", legend=alt.Legend(gradientLength=80)), tooltip=tip),
        base.mark_text(fontSize=charts.LABEL_SIZE).encode(text=alt.Text("v:Q", format=".2f"), color=on_cell("v")),
    ).properties(width=alt.Step(64), height=alt.Step(20), title="residual stream")
    hbase = alt.Chart(alt.NamedData("heads")).encode(x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
    htip = [alt.Tooltip("label:N", title="head"), alt.Tooltip("v:Q", title="recovered", format=".2f"),
            alt.Tooltip("induction:Q", title="induction score", format=".2f"), alt.Tooltip("previous_token:Q", title="previous-token score", format=".2f")]
    by_head = alt.layer(
        hbase.mark_rect().encode(color=alt.Color("v:Q", scale=recovery_scale(), legend=None), tooltip=htip),
        hbase.mark_text(fontSize=charts.LABEL_SIZE).encode(text=alt.Text("v:Q", format=".2f"), color=on_cell("v")),
    ).properties(width=alt.Step(48), height=alt.Step(36), title="one head's output")
    return panel.finish(alt.hconcat(stream, by_head, spacing=28))
