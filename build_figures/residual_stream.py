"""The residual stream: what it predicts after each block (logit lens) and who wrote the answer (DLA)."""

import altair as alt
import torch

from explorer import charts
from explorer.pipeline import FigureContext, figure
from explorer.techniques import lens, probes, prompts

ZOO_LABEL = "each model of the zoo (explorer.models.ZOO), trained by explorer/models/zoo.py"
PROMPT_LABELS = {"code": "Python code", "prose": "docstring prose", "repeat": "random tokens, repeated"}
WINDOW = 16  # positions drawn at once; a slider moves the window
HOVER_DEFAULT = 24  # the token the text view opens on: one of the second copy of the repeated prompt


def runs_of(ctx: FigureContext) -> list[tuple[str, str]]:
    prompts.decoder_only(ctx.model, "the logit lens and direct logit attribution read next-token predictions")
    return [(name, kind) for name in prompts.zoo_or(ctx.model, ZOO_LABEL) for kind in prompts.prompt_kinds(name)]


def run_key(name: str, kind: str) -> str:
    return f"{name}--{kind}"


def window_panel(runs: list[tuple[str, str]], texts: dict[str, list[str]], datasets: list[str]) -> tuple[charts.Panel, alt.Parameter]:
    """The model-and-prompt choice, and a slider over the first position shown, bounded by the
    chosen prompt (the last window ends on its last token) and back at 0 on every new choice."""
    keys = [run_key(name, kind) for name, kind in runs]
    default = f"{prompts.FLAGSHIP}--code" if f"{prompts.FLAGSHIP}--code" in keys else keys[0]
    panel = charts.Panel()
    panel.data("run", keys, label="Model and prompt", labels=[f"{name}: {PROMPT_LABELS[kind]}" for name, kind in runs],
               default=default, fresh=True)  # fresh: a clicked position goes back to its default too
    panel.source("runs/{run}.json", datasets=datasets)
    choices = {}
    for key in keys:
        starts = list(range(max(1, len(texts[key]) - WINDOW + 1)))
        choices[key] = {"options": starts, "labels": [f"{p} ({texts[key][p]})" for p in starts], "value": 0}
    union = sorted({p for choice in choices.values() for p in choice["options"]})
    start = panel.slider("start", union, label="First position shown", value=0, by="run", choices=choices)
    return panel, start


def position_labels(texts: list[str]) -> tuple[list[str], list[str]]:
    """Axis label per position ("3 token") and the token that actually comes next ("" at the end)."""
    return [f"{i} {t}" for i, t in enumerate(texts)], texts[1:] + [""]


def lens_payload(model, tokens: torch.Tensor) -> tuple[dict, float, torch.Tensor]:
    """Per (stage, position): the top-3 predictions and the probability of the real next token;
    per position: the token, the real next token and its probability after the last block.

    Also returns how far the last stage is from the model's own logits (it should be 0), and the
    probability of the real next token per (stage, position)."""
    stages = lens.logit_lens(model, tokens)[:, 0]  # (stage, pos, vocab)
    gap = (stages[-1] - model(tokens)[0]).abs().max().item()
    probs = stages.softmax(-1)
    top_p, top_i = probs.topk(3, dim=-1)  # (stage, pos, 3)
    texts = prompts.token_strings(model, tokens[0])
    labels, following = position_labels(texts)
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
    final = [r["ptrue"] for r in records if r["s"] == len(names) - 1]
    strip = [{"p": p, "t": texts[p], "next": following[p], "pfinal": final[p]} for p in range(tokens.shape[1])]
    true_next = probs[:, :-1].gather(-1, tokens[0, 1:].view(1, -1, 1).expand(len(names), -1, 1)).squeeze(-1)  # (stage, pos-1)
    return {"lens": records, "tokens": strip}, gap, true_next


def heldout_top1(ctx: FigureContext, model, name: str) -> tuple[list[float], float]:
    """Share of held-out next tokens that each stage's top prediction gets right, and the chance
    level: the share a constant guess of the commonest next token would get on the same rows."""
    rows = prompts.heldout_tokens(ctx, model, name, ctx.pick(smoke=4, full=16), probes.text_length(model))
    hits = lens.logit_lens_top1(model, rows)[:, :, :-1] == rows[:, 1:]  # (stage, batch, pos-1)
    commonest = rows[:, 1:].flatten().bincount().max().item() / rows[:, 1:].numel()
    return hits.float().mean(dim=(1, 2)).tolist(), commonest


def column_x(title: str) -> alt.X:
    return alt.X("pos:N", sort=alt.EncodingSortField("p", op="min"), title=title,
                 axis=alt.Axis(labelAngle=-45, labelLimit=90, labelFontSize=charts.SMALL_SIZE))


@figure(
    "residual-logit-lens",
    title="Logit lens: the model's best guess after each block",
    caption=(
        "Each column is a position of the prompt (its token on the axis), each row the residual stream "
        "before the first block ('embed') and after each block, read out through the model's final layer "
        "norm and unembedding. The cell shows the top prediction for the next token; its colour is the "
        "probability this read-out gives the token that really comes next (hover for the top three). "
        "Sixteen positions are shown at once: the slider moves the window. Under the chart, the prompt "
        "as text, coloured by the probability the model's output gives each real next token; hover a "
        "token for its predictions after every block."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def residual_logit_lens(ctx: FigureContext) -> alt.Chart:
    runs = runs_of(ctx)
    worst_gap = 0.0
    texts = {}
    for name, kind in runs:
        model = prompts.load(ctx, name)
        tokens = prompts.prompt_tokens(model, name, kind)
        texts[run_key(name, kind)] = prompts.token_strings(model, tokens[0])
        payload, gap, true_next = lens_payload(model, tokens)
        worst_gap = max(worst_gap, gap)
        ctx.asset(f"runs/{run_key(name, kind)}.json", payload)
        if kind == "repeat":  # the second copy, where only induction can predict the next token
            half = (tokens.shape[1] - len(prompts.start_tokens(model))) // 2
            second_copy = true_next[:, -half + 1 :].mean(-1)  # (stage,)
            key = name.replace("-", "_")
            ctx.claim(f"{key}_repeat_p_before_last_block", second_copy[-2].item())
            ctx.claim(f"{key}_repeat_p_final", second_copy[-1].item())
            ctx.claim(f"{key}_repeat_chance", 1 / len(prompts.sampling_vocab(model)))  # a uniform guess
    ctx.claim("final_stage_max_gap", worst_gap)
    for name in dict(runs):
        if prompts.reads_text(name):
            accuracy, commonest = heldout_top1(ctx, prompts.load(ctx, name), name)
            key = name.replace("-", "_")
            ctx.claim(f"{key}_top1_embed", accuracy[0])
            ctx.claim(f"{key}_top1_final", accuracy[-1])
            ctx.claim(f"{key}_top1_commonest", commonest)
    lead = prompts.FLAGSHIP if ctx.model == ZOO_LABEL else ctx.model  # the model the page discusses first
    ctx.claim_subject(lead.replace("-", "_"), lead)

    panel, start = window_panel(runs, texts, ["lens", "tokens"])
    hovered = alt.param(name="lens_hover", value=HOVER_DEFAULT)  # the token hovered in the text view
    shown = alt.Chart(alt.Data(name="lens")).transform_filter(f"datum.p >= start && datum.p < start + {WINDOW}")
    base = shown.encode(
        x=column_x("position and input token"),
        y=alt.Y("stage:N", sort=alt.EncodingSortField("s", op="min"), title="residual stream read"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("ptrue:Q", scale=charts.sequential((0, 1)), title="p(real next token)"),
        tooltip=[
            alt.Tooltip("pos:N", title="input"), alt.Tooltip("next:N", title="real next token"),
            alt.Tooltip("ptrue:Q", title="p(real next)", format=".3f"), alt.Tooltip("stage:N", title="read after"),
            alt.Tooltip("top:N", title="top prediction"), alt.Tooltip("ptop:Q", title="p(top)", format=".3f"),
            alt.Tooltip("alt:N", title="next best"),
        ],
    )
    words = base.mark_text(fontSize=charts.SMALL_SIZE, limit=alt.expr(f"max(8, width / {WINDOW} - 3)")).encode(  # cut to its cell
        text=alt.Text("top:N"), color=charts.ink_on("ptrue"))
    marked = (
        shown.transform_filter("datum.p == lens_hover")
        .mark_rect(fill=None, stroke=charts.ACCENT, strokeWidth=2)
        .encode(x=column_x("position and input token"), y=alt.Y("stage:N", sort=alt.EncodingSortField("s", op="min")))
    )
    chart = alt.layer(cells, words, marked).add_params(hovered).properties(width="container", height=alt.Step(30))
    text = charts.text_view(
        "tokens", hover="lens_hover", default=HOVER_DEFAULT,
        label="The prompt as the model reads it. Hover a token, or focus it and use the arrow keys:",
        color={"data": "tokens", "key": "p", "value": "pfinal", "label": "p(real next token)",
               "masked": "last token (nothing follows)",
               "legend": "Colour: the probability the model's output gives the token that really comes next."},
        details={"data": "lens", "match": {"p": "@hover"}, "sort": "s",
                 "title": "After {@text} (position {@pos}) the real next token is {next}. Read after each block:",
                 "columns": [{"field": "stage", "label": "read after"}, {"field": "top", "label": "top prediction", "token": True},
                             {"field": "ptop", "label": "p", "format": ".2f"}, {"field": "alt", "label": "next best"},
                             {"field": "ptrue", "label": "p(real next)", "format": ".3f"}]},
    )
    return panel.finish(chart, text=text)


def dla_payload(model, tokens: torch.Tensor) -> tuple[dict, float, torch.Tensor, list[str]]:
    """Per (component, position): its direct push on the logit of the real next token."""
    contributions, names, constant, logits = lens.direct_logit_attribution(model, tokens[:, :-1], tokens[:, 1:])
    error = (contributions.sum(0) + constant - logits).abs().max().item()
    texts = prompts.token_strings(model, tokens[0])
    labels, following = position_labels(texts)
    n_pos = contributions.shape[2]
    records = [{"c": name, "ci": c, "p": p, "v": contributions[c, 0, p].item()} for c, name in enumerate(names) for p in range(n_pos)]
    records += [{"c": "constant (biases)", "ci": len(names), "p": p, "v": constant[0, p].item()} for p in range(n_pos)]
    strip = [{"p": p, "t": texts[p], "pos": labels[p], "next": following[p], "logit": logits[0, p].item()} for p in range(n_pos)]
    return {"dla": records, "tokens": strip}, error, contributions[:, 0], names


@figure(
    "residual-dla",
    title="Direct logit attribution: who writes the next token",
    caption=(
        "For each position (columns) and each component that writes to the residual stream (rows: the "
        "token and position embeddings, every head, each layer's attention bias, every MLP), how much it "
        "raises (red) or lowers (blue) the logit of the token that really comes next, through the final "
        "layer norm (its scale frozen at this run's value) and the unembedding. A column's cells add up "
        "to the model's logit. Click a column to list that position's components on the right; the "
        "colour scale is clipped at the 99th percentile of all pushes. Under the chart, the prompt as "
        "text: hover a token for the components that push its next token most."
    ),
    model=ZOO_LABEL,
    model_option=True,
)
def residual_dla(ctx: FigureContext) -> alt.Chart:
    runs = runs_of(ctx)
    worst_error = 0.0
    texts, pushes = {}, []
    for name, kind in runs:
        model = prompts.load(ctx, name)
        tokens = prompts.prompt_tokens(model, name, kind)
        texts[run_key(name, kind)] = prompts.token_strings(model, tokens[0])[:-1]  # the last token has no target
        payload, error, contributions, names = dla_payload(model, tokens)
        worst_error = max(worst_error, error)
        pushes.append(contributions.abs().flatten())
        ctx.asset(f"runs/{run_key(name, kind)}.json", payload)
        if kind == "repeat":  # second copy: the positions an induction head can predict
            half = (tokens.shape[1] - len(prompts.start_tokens(model))) // 2
            second_copy = contributions[:, -half + 1 :].mean(-1)  # (component,)
            first_copy = contributions[:, -2 * half + 1 : -half].mean(-1)  # the same prompt before it repeats
            best = int(second_copy.argmax())
            key = name.replace("-", "_")
            ctx.claim(f"{key}_repeat_top_component", names[best])
            ctx.claim(f"{key}_repeat_top_push", second_copy[best].item())
            ctx.claim(f"{key}_repeat_top_push_first_copy", first_copy[best].item())
            layer0_heads = [c for c, label in enumerate(names) if label.startswith("L0H")]
            ctx.claim(f"{key}_repeat_layer0_max_abs_push", second_copy[layer0_heads].abs().max().item())
    ctx.claim("max_sum_error", worst_error)
    lead = prompts.FLAGSHIP if ctx.model == ZOO_LABEL else ctx.model  # the model the page discusses first
    ctx.claim_subject(lead.replace("-", "_"), lead)
    limit = round(float(torch.cat(pushes).quantile(0.99)), 1)

    panel, start = window_panel(runs, texts, ["dla", "tokens"])
    column = alt.selection_point(name="column", fields=["p"], on="click[event.item && event.item.datum && event.item.datum.p != null]",
                                 value=[{"p": 8}], clear=False, toggle=False)
    labelled = alt.Chart(alt.Data(name="dla")).transform_lookup(
        lookup="p", from_=alt.LookupData(data=alt.Data(name="tokens"), key="p", fields=["pos", "next"])
    )
    shown = labelled.transform_filter(f"datum.p >= start && datum.p < start + {WINDOW}")
    tooltip = [
        alt.Tooltip("c:N", title="component"), alt.Tooltip("pos:N", title="input"),
        alt.Tooltip("next:N", title="real next token"), alt.Tooltip("v:Q", title="logit push", format=".2f"),
    ]
    diverging = charts.diverging(limit, clamp=True)
    grid = (
        shown.mark_rect()
        .encode(
            x=column_x("position and input token"),
            y=alt.Y("c:N", sort=alt.EncodingSortField("ci", op="min"), title=None),
            color=alt.Color("v:Q", scale=diverging, title="logit push"),
            stroke=alt.condition(column, alt.value(charts.INK), alt.value(None)),
            strokeWidth=alt.condition(column, alt.value(1.5), alt.value(0)),
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
        .properties(width=180, height=alt.Step(14), title=alt.Title(alt.expr("'Position ' + column.p"), subtitle="the clicked column"))
    )
    text = charts.text_view(
        "tokens", default=HOVER_DEFAULT,
        label="The prompt as the model reads it. Hover a token, or focus it and use the arrow keys:",
        details={"data": "dla", "match": {"p": "@hover"}, "sort": "-|v|", "limit": 6,
                 "title": "At {@text} (position {@pos}) the real next token is {@next}, logit {@logit:.2f}. "
                          "The components that move it most, directly:",
                 "columns": [{"field": "c", "label": "component"}, {"field": "v", "label": "push on its logit", "format": "+.2f"}]},
    )
    return panel.finish(alt.hconcat(grid, bars), text=text)
