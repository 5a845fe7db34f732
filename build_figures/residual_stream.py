"""The residual stream: what it predicts after each block (logit lens) and who wrote the answer (DLA)."""

import altair as alt
import torch

from explorer.pipeline import FigureContext, figure
from explorer.techniques import lens, prompts

ZOO_LABEL = "each model of the zoo (explorer.models.ZOO), trained by explorer/models/zoo.py"
PROMPT_LABELS = {"code": "Python code", "prose": "docstring prose", "repeat": "random tokens, repeated"}
WINDOW = 16  # positions drawn at once; a slider moves the window


def runs_of(ctx: FigureContext) -> list[tuple[str, str]]:
    return [(name, kind) for name in prompts.zoo_or(ctx.model, ZOO_LABEL) for kind in prompts.prompt_kinds(name)]


def run_control(runs: list[tuple[str, str]], datasets: list[str]) -> dict:
    keys = [f"{name}--{kind}" for name, kind in runs]
    default = "gelu-2l--code" if "gelu-2l--code" in keys else keys[0]
    labels = [f"{name}: {PROMPT_LABELS[kind]}" for name, kind in runs]
    return {"explorer": {
        "controls": [{"name": "run", "label": "Model and prompt", "options": keys, "labels": labels, "default": default}],
        "source": {"url": "runs/{run}.json", "datasets": datasets},
    }}


def position_labels(model, tokens: torch.Tensor) -> tuple[list[str], list[str]]:
    """Axis label per position ("3 token") and the token that actually comes next ("" at the end)."""
    texts = prompts.token_strings(model, tokens[0])
    return [f"{i} {t}" for i, t in enumerate(texts)], texts[1:] + [""]


def lens_payload(model, tokens: torch.Tensor) -> tuple[dict, float, torch.Tensor]:
    """Per (stage, position): the top-3 predictions and the probability of the real next token.

    Also returns how far the last stage is from the model's own logits (it should be 0), and the
    probability of the real next token per (stage, position)."""
    stages = lens.logit_lens(model, tokens)[:, 0]  # (stage, pos, vocab)
    gap = (stages[-1] - model(tokens)[0]).abs().max().item()
    probs = stages.softmax(-1)
    top_p, top_i = probs.topk(3, dim=-1)  # (stage, pos, 3)
    labels, following = position_labels(model, tokens)
    names = lens.resid_labels(model.cfg.n_layers)
    records = []
    for s, stage in enumerate(names):
        for p in range(tokens.shape[1]):
            top = prompts.token_strings(model, top_i[s, p])
            true_p = probs[s, p, tokens[0, p + 1]].item() if p + 1 < tokens.shape[1] else None
            records.append({
                "stage": stage, "s": s, "p": p, "pos": labels[p], "next": following[p], "ptrue": true_p,
                "top": top[0], "ptop": top_p[s, p, 0].item(),
                "alt": f"{top[1]} ({top_p[s, p, 1]:.2f}), {top[2]} ({top_p[s, p, 2]:.2f})",
            })
    true_next = probs[:, :-1].gather(-1, tokens[0, 1:].view(1, -1, 1).expand(len(names), -1, 1)).squeeze(-1)  # (stage, pos-1)
    return {"lens": records}, gap, true_next


def heldout_top1(ctx: FigureContext, model, name: str) -> list[float]:
    """Share of held-out next tokens that each stage's top prediction gets right."""
    rows = prompts.heldout_tokens(ctx, model, name, ctx.pick(smoke=4, full=16), model.cfg.n_ctx)
    stages = lens.logit_lens(model, rows)  # (stage, batch, pos, vocab)
    hits = stages[:, :, :-1].argmax(-1) == rows[:, 1:]
    return hits.float().mean(dim=(1, 2)).tolist()


def window_param() -> alt.Parameter:
    return alt.param(name="start", value=0, bind=alt.binding_range(min=0, max=112, step=1, name="first position shown "))


@figure(
    "residual-logit-lens",
    title="Logit lens: the model's best guess after each block",
    caption=(
        "Each column is a position of the prompt (its token on the axis), each row the residual stream "
        "before the first block ('embed') and after each block, read out through the model's final layer "
        "norm and unembedding. The cell shows the top prediction for the next token; its colour is the "
        "probability this read-out gives the token that really comes next (hover for the top three). "
        "Only 16 positions are shown at once: the slider moves the window."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def residual_logit_lens(ctx: FigureContext) -> alt.Chart:
    runs = runs_of(ctx)
    worst_gap = 0.0
    for name, kind in runs:
        model = prompts.load(ctx, name)
        tokens = prompts.prompt_tokens(model, name, kind)
        payload, gap, true_next = lens_payload(model, tokens)
        worst_gap = max(worst_gap, gap)
        ctx.asset(f"runs/{name}--{kind}.json", payload)
        if kind == "repeat":  # the second copy, where only induction can predict the next token
            half = (tokens.shape[1] - len(prompts.start_tokens(model))) // 2
            second_copy = true_next[:, -half + 1 :].mean(-1)  # (stage,)
            key = name.replace("-", "_")
            ctx.claim(f"{key}_repeat_p_before_last_block", second_copy[-2].item())
            ctx.claim(f"{key}_repeat_p_final", second_copy[-1].item())
    ctx.claim("final_stage_max_gap", worst_gap)
    for name in dict(runs):
        if prompts.reads_text(name):
            accuracy = heldout_top1(ctx, prompts.load(ctx, name), name)
            key = name.replace("-", "_")
            ctx.claim(f"{key}_top1_embed", accuracy[0])
            ctx.claim(f"{key}_top1_final", accuracy[-1])

    start = window_param()
    base = (
        alt.Chart(alt.Data(name="lens"))
        .transform_filter(f"datum.p >= start && datum.p < start + {WINDOW}")
        .encode(
            x=alt.X("pos:N", sort=alt.EncodingSortField("p", op="min"), title="position and input token", axis=alt.Axis(labelAngle=-45, labelLimit=80)),
            y=alt.Y("stage:N", sort=alt.EncodingSortField("s", op="min"), title="residual stream read"),
        )
    )
    cells = base.mark_rect().encode(
        color=alt.Color("ptrue:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="p(real next token)"),
        tooltip=[
            alt.Tooltip("pos:N", title="input"), alt.Tooltip("next:N", title="real next token"),
            alt.Tooltip("ptrue:Q", title="p(real next)", format=".3f"), alt.Tooltip("stage:N", title="read after"),
            alt.Tooltip("top:N", title="top prediction"), alt.Tooltip("ptop:Q", title="p(top)", format=".3f"),
            alt.Tooltip("alt:N", title="next best"),
        ],
    )
    words = base.mark_text(fontSize=10, limit=40).encode(
        text=alt.Text("top:N"), color=alt.condition("datum.ptrue > 0.6", alt.value("black"), alt.value("white"))
    )
    chart = alt.layer(cells, words).add_params(start).properties(width="container", height=alt.Step(30))
    return chart.properties(usermeta=run_control(runs, ["lens"]))


def dla_payload(model, tokens: torch.Tensor) -> tuple[dict, float, torch.Tensor, list[str]]:
    """Per (component, position): its direct push on the logit of the real next token."""
    contributions, names, constant, logits = lens.direct_logit_attribution(model, tokens[:, :-1], tokens[:, 1:])
    error = (contributions.sum(0) + constant - logits).abs().max().item()
    labels, following = position_labels(model, tokens)
    n_pos = contributions.shape[2]
    records = [{"c": name, "ci": c, "p": p, "v": contributions[c, 0, p].item()} for c, name in enumerate(names) for p in range(n_pos)]
    records += [{"c": "constant (biases)", "ci": len(names), "p": p, "v": constant[0, p].item()} for p in range(n_pos)]
    positions = [{"p": p, "pos": labels[p], "next": following[p]} for p in range(n_pos)]  # joined in the browser
    return {"dla": records, "positions": positions}, error, contributions[:, 0], names


@figure(
    "residual-dla",
    title="Direct logit attribution: who writes the next token",
    caption=(
        "For each position (columns) and each component that writes to the residual stream (rows: the "
        "token and position embeddings, every head, each layer's attention bias, every MLP), how much it "
        "raises (red) or lowers (blue) the logit of the token that really comes next, through the final "
        "layer norm (its scale frozen at this run's value) and the unembedding. A column's cells add up "
        "to the model's logit. Click a column to list that position's components on the right."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def residual_dla(ctx: FigureContext) -> alt.Chart:
    runs = runs_of(ctx)
    worst_error = 0.0
    for name, kind in runs:
        model = prompts.load(ctx, name)
        tokens = prompts.prompt_tokens(model, name, kind)
        payload, error, contributions, names = dla_payload(model, tokens)
        worst_error = max(worst_error, error)
        ctx.asset(f"runs/{name}--{kind}.json", payload)
        if kind == "repeat":  # second copy: the positions an induction head can predict
            half = (tokens.shape[1] - len(prompts.start_tokens(model))) // 2
            second_copy = contributions[:, -half + 1 :].mean(-1)  # (component,)
            best = int(second_copy.argmax())
            key = name.replace("-", "_")
            ctx.claim(f"{key}_repeat_top_component", names[best])
            ctx.claim(f"{key}_repeat_top_push", second_copy[best].item())
            layer0_heads = [c for c, label in enumerate(names) if label.startswith("L0H")]
            ctx.claim(f"{key}_repeat_layer0_max_abs_push", second_copy[layer0_heads].abs().max().item())
    ctx.claim("max_sum_error", worst_error)

    start = window_param()
    column = alt.selection_point(name="column", fields=["p"], on="click", value=[{"p": 8}], clear=False)
    labelled = alt.Chart(alt.Data(name="dla")).transform_lookup(
        lookup="p", from_=alt.LookupData(data=alt.Data(name="positions"), key="p", fields=["pos", "next"])
    )
    shown = labelled.transform_filter(f"datum.p >= start && datum.p < start + {WINDOW}")
    tooltip = [
        alt.Tooltip("c:N", title="component"), alt.Tooltip("pos:N", title="input"),
        alt.Tooltip("next:N", title="real next token"), alt.Tooltip("v:Q", title="logit push", format=".2f"),
    ]
    diverging = alt.Scale(scheme="redblue", reverse=True, domainMid=0)
    grid = (
        shown.mark_rect()
        .encode(
            x=alt.X("pos:N", sort=alt.EncodingSortField("p", op="min"), title="position and input token", axis=alt.Axis(labelAngle=-45, labelLimit=80)),
            y=alt.Y("c:N", sort=alt.EncodingSortField("ci", op="min"), title=None),
            color=alt.Color("v:Q", scale=diverging, title="logit push"),
            stroke=alt.condition(column, alt.value("#333333"), alt.value(None)),
            tooltip=tooltip,
        )
        .add_params(column)
        .properties(width=420, height=alt.Step(14))
    )
    bars = (
        labelled.transform_filter(column)
        .mark_bar()
        .encode(
            x=alt.X("v:Q", title="push on the real next token's logit"),
            y=alt.Y("c:N", sort=alt.EncodingSortField("ci", op="min"), title=None, axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color("v:Q", scale=diverging, legend=None),
            tooltip=tooltip,
        )
        .properties(width=180, height=alt.Step(14), title="clicked position")
    )
    chart = alt.hconcat(grid, bars).add_params(start)
    return chart.properties(usermeta=run_control(runs, ["dla", "positions"]))
