"""Patching and ablation: which activations carry an induction answer, and which heads the loss needs."""

import altair as alt
import pandas as pd
import torch

from explorer.pipeline import FigureContext, figure
from explorer.techniques import heads, patching, prompts

ZOO_LABEL = "each model of the zoo (explorer.models.ZOO), trained by explorer/models/zoo.py"
HALF, ANSWER_AT = 12, 8  # random tokens per copy; the second copy stops just before r[ANSWER_AT]


def induction_pair(model, n_batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Clean: start + r + r[:ANSWER_AT], so the next token should be r[ANSWER_AT] (copied by induction).
    Corrupted: the same, except that r[ANSWER_AT] in the first copy is replaced by another random token,
    which induction would copy instead. Returns (clean, corrupted, clean answers, corrupt answers,
    position of the altered token)."""
    generator = torch.Generator().manual_seed(seed)
    vocab = torch.tensor(prompts.sampling_vocab(model))
    start = prompts.start_tokens(model)
    repeated = heads.repeated_random_tokens(n_batch, HALF, vocab, generator, start)
    clean = repeated[:, : len(start) + HALF + ANSWER_AT]  # (batch, pos)
    altered_at = len(start) + ANSWER_AT
    answers = clean[:, altered_at].clone()
    offsets = torch.randint(1, len(vocab), (n_batch,), generator=generator)
    index = (torch.searchsorted(vocab, answers) + offsets) % len(vocab)  # a different token of the vocabulary
    corrupt_answers = vocab[index]
    corrupted = clean.clone()
    corrupted[:, altered_at] = corrupt_answers
    device = model.cfg.device
    return clean.to(device), corrupted.to(device), answers.to(device), corrupt_answers.to(device), altered_at


def patching_run(ctx: FigureContext, name: str, sweep) -> dict:
    """Build the pair for one model and run one sweep (patch_residual_stream or patch_head_outputs)."""
    model = prompts.load(ctx, name)
    clean, corrupted, answers, corrupt_answers, altered_at = induction_pair(model, ctx.pick(smoke=8, full=32), ctx.seed)
    metric = patching.logit_difference(answers, corrupt_answers)
    with torch.no_grad():
        clean_value, corrupt_value = metric(model(clean)).item(), metric(model(corrupted)).item()
    scaled = patching.normalized(metric, clean_value, corrupt_value)
    return {
        "model": model, "clean": clean, "altered_at": altered_at, "clean_value": clean_value, "corrupt_value": corrupt_value,
        "grid": sweep(model, clean, corrupted, scaled),
    }


def position_names(n_pos: int, n_start: int, altered_at: int) -> list[str]:
    """Axis labels: roles, since the tokens themselves are random."""
    names = []
    for p in range(n_pos):
        if p < n_start:
            names.append(f"{p} start")
        elif p < n_start + HALF:
            names.append(f"{p} 1st copy" + (" (altered)" if p == altered_at else ""))
        else:
            names.append(f"{p} 2nd copy" + (" (last)" if p == n_pos - 1 else ""))
    return names


def sweep_models(ctx: FigureContext) -> list[str]:
    """The zoo (or the `--model`); smoke builds sweep two models only, to keep the tests fast."""
    names = prompts.zoo_or(ctx.model, ZOO_LABEL)
    return ctx.pick(smoke=[n for n in names if n in SMOKE_MODELS] or names, full=names)


def model_control(names: list[str], default: str) -> dict:
    return {"explorer": {
        "controls": [{"name": "model", "label": "Model", "options": names, "default": default}],
        "source": {"url": "models/{model}.json", "datasets": ["patch"]},
    }}


SMOKE_MODELS = ("attn-only-2l", "induction-2l")
RECOVERY_SCALE = alt.Scale(scheme="redblue", reverse=True, domain=[-1, 1], clamp=True)


@figure(
    "patching-resid",
    title="Patching the residual stream, position by position",
    caption=(
        "Clean input: 12 random tokens (after an end-of-text token where the model has one), then the first 8 of them again, so the next token "
        "should be the 9th (induction). Corrupted input: the same with that 9th token of the first copy "
        "replaced. Each cell runs the corrupted input but copies the clean residual stream at one position "
        "and one depth (rows: before the first block, after each block) and shows the fraction of the "
        "clean-minus-corrupted logit difference at the last position that comes back (1: all of it, "
        "0: none). Mean over a batch of random sequences."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def patching_resid(ctx: FigureContext) -> alt.Chart:
    names = sweep_models(ctx)
    for name in names:
        run = patching_run(ctx, name, patching.patch_residual_stream)
        grid, model = run["grid"], run["model"]
        n_start = len(prompts.start_tokens(model))
        labels = position_names(grid.shape[1], n_start, run["altered_at"])
        stages = ["embed"] + [f"after L{layer}" for layer in range(model.cfg.n_layers)]
        records = [
            {"stage": stages[s], "s": s, "pos": labels[p], "p": p, "v": grid[s, p].item()}
            for s in range(grid.shape[0])
            for p in range(grid.shape[1])
        ]
        ctx.asset(f"models/{name}.json", {"patch": records})
        key = name.replace("-", "_")
        ctx.claim(f"{key}_last_stage_last_pos", grid[-1, -1].item())
        ctx.claim(f"{key}_embed_altered_pos", grid[0, run["altered_at"]].item())
        ctx.claim(f"{key}_altered_pos_before_last_block", grid[-2, run["altered_at"]].item())
        ctx.claim(f"{key}_clean_logit_diff", run["clean_value"])
        ctx.claim(f"{key}_corrupt_logit_diff", run["corrupt_value"])

    base = alt.Chart(alt.Data(name="patch")).encode(
        x=alt.X("pos:N", sort=alt.EncodingSortField("p", op="min"), title="position", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("stage:N", sort=alt.EncodingSortField("s", op="min"), title="residual stream patched"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("v:Q", scale=RECOVERY_SCALE, title="recovered"),
        tooltip=["stage:N", "pos:N", alt.Tooltip("v:Q", title="recovered", format=".2f")],
    )
    numbers = base.mark_text(fontSize=9).encode(text=alt.Text("v:Q", format=".1f"))
    show = alt.param(name="show_numbers", value=True, bind=alt.binding_checkbox(name="show numbers "))
    numbers = numbers.encode(opacity=alt.condition(show, alt.value(1.0), alt.value(0.0)))
    chart = alt.layer(cells, numbers).add_params(show).properties(width="container", height=alt.Step(28))
    default = "induction-2l" if "induction-2l" in names else names[0]
    return chart.properties(usermeta=model_control(names, default))


@figure(
    "patching-heads",
    title="Patching one head's output at a time",
    caption=(
        "Same clean and corrupted inputs as above. Each cell runs the corrupted input with one head's "
        "output (at every position) taken from the clean run, and shows the fraction of the logit "
        "difference that comes back. Beside it, the head's induction score from the head wiki."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def patching_heads(ctx: FigureContext) -> alt.Chart:
    names = sweep_models(ctx)
    for name in names:
        run = patching_run(ctx, name, patching.patch_head_outputs)
        grid, model = run["grid"], run["model"]
        generator = torch.Generator().manual_seed(ctx.seed + 1)
        probe = heads.repeated_random_tokens(8, HALF, prompts.sampling_vocab(model), generator, prompts.start_tokens(model))
        scores = heads.head_scores(model, probe.to(model.cfg.device), ["induction"])
        records = [
            {"layer": int(r.layer), "head": int(r.head), "v": grid[int(r.layer), int(r.head)].item(), "induction": float(r.induction)}
            for r in scores.itertuples()
        ]
        ctx.asset(f"models/{name}.json", {"patch": records})
        best = max(records, key=lambda r: r["v"])
        key = name.replace("-", "_")
        ctx.claim(f"{key}_top_head", f"L{best['layer']}H{best['head']}")
        ctx.claim(f"{key}_top_head_recovered", best["v"])
        ctx.claim(f"{key}_top_head_induction", best["induction"])
        ctx.claim(f"{key}_top_layer_sum", sum(r["v"] for r in records if r["layer"] == best["layer"]))

    base = alt.Chart(alt.Data(name="patch")).encode(x=alt.X("head:O", title="head"), y=alt.Y("layer:O", title="layer"))
    tooltip = ["layer:O", "head:O", alt.Tooltip("v:Q", title="recovered", format=".2f"), alt.Tooltip("induction:Q", title="induction score", format=".2f")]
    recovered = alt.layer(
        base.mark_rect().encode(color=alt.Color("v:Q", scale=RECOVERY_SCALE, title="recovered"), tooltip=tooltip),
        base.mark_text(fontSize=11).encode(text=alt.Text("v:Q", format=".2f")),
    ).properties(width=alt.Step(48), height=alt.Step(36), title="fraction recovered by patching the head")
    induction = alt.layer(
        base.mark_rect().encode(color=alt.Color("induction:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="induction score"), tooltip=tooltip),
        base.mark_text(fontSize=11, color="white").encode(text=alt.Text("induction:Q", format=".2f")),
    ).properties(width=alt.Step(48), height=alt.Step(36), title="induction score")
    chart = alt.hconcat(recovered, induction).resolve_scale(color="independent")
    default = "induction-2l" if "induction-2l" in names else names[0]
    return chart.properties(usermeta=model_control(names, default))


def ablation_table(ctx: FigureContext, name: str) -> tuple[pd.DataFrame, float]:
    """Loss rise on held-out text for each head under each ablation, with the head's induction score."""
    model = prompts.load(ctx, name)
    n_rows = ctx.pick(smoke=4, full=32)
    rows = prompts.heldout_tokens(ctx, model, name, 2 * n_rows, model.cfg.n_ctx)
    text, reference = rows[0::2], rows[1::2]  # interleaved: both halves span the held-out files
    generator = torch.Generator().manual_seed(ctx.seed + 1)
    half = (model.cfg.n_ctx - len(prompts.start_tokens(model))) // 2
    probe = heads.repeated_random_tokens(8, half, prompts.sampling_vocab(model), generator, prompts.start_tokens(model))
    scores = heads.head_scores(model, probe.to(model.cfg.device), ["induction", "previous_token"])
    frames = []
    clean_loss = 0.0
    for method in patching.ABLATIONS:
        clean_loss, losses = patching.ablate_heads(model, text, method, reference)
        frame = scores.copy()
        frame["method"] = method
        frame["increase"] = [losses[int(r.layer), int(r.head)].item() - clean_loss for r in scores.itertuples()]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "model", name)
    table["label"] = [f"L{r.layer}H{r.head}" for r in table.itertuples()]
    return table, clean_loss


@figure(
    "patching-ablation",
    title="Knocking out one head at a time: does the loss care?",
    caption=(
        "Each point is one head of the chosen model. Horizontal: its induction score (from the head wiki). "
        "Vertical: how much the next-token loss on held-out text rises when the head's output is replaced: "
        "by zero, by its mean output over other held-out text, or (resample) by its output at the same "
        "position of another held-out sequence. Choose the model and the kind of ablation below."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def patching_ablation(ctx: FigureContext) -> alt.Chart:
    names = prompts.zoo_or(ctx.model, ZOO_LABEL)
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
            ctx.claim(f"{key}_{method}_top_head_induction", float(best["induction"]))
            ctx.claim(f"{key}_{method}_top_head_previous", float(best["previous_token"]))
            inductive = rows.loc[rows.induction.idxmax()]
            ctx.claim(f"{key}_{method}_top_induction_head", inductive["label"])
            ctx.claim(f"{key}_{method}_top_induction_head_increase", float(inductive["increase"]))
    table = pd.concat(tables, ignore_index=True)
    data = table[["model", "label", "layer", "head", "method", "induction", "previous_token", "increase"]].round(4)

    default = "attn-only-2l" if "attn-only-2l" in names else names[0]
    model_pick = alt.param(name="model_pick", value=default, bind=alt.binding_select(options=names, name="model "))
    method_pick = alt.param(name="method_pick", value="mean", bind=alt.binding_select(options=list(patching.ABLATIONS), name="ablation "))
    base = (
        alt.Chart(data)
        .transform_filter("datum.model == model_pick && datum.method == method_pick")
        .encode(
            x=alt.X("induction:Q", title="induction score", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("increase:Q", title="loss increase when ablated (nats/token)"),
        )
    )
    points = base.mark_circle(size=90).encode(
        color=alt.Color("layer:O", title="layer"),
        tooltip=["label:N", alt.Tooltip("induction:Q", format=".2f"), alt.Tooltip("previous_token:Q", title="previous-token score", format=".2f"),
                 alt.Tooltip("increase:Q", title="loss increase", format=".3f")],
    )
    labels = base.mark_text(dx=8, align="left", fontSize=10).encode(text="label:N")
    return alt.layer(points, labels).add_params(model_pick, method_pick).properties(width="container", height=320)
