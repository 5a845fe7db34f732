"""Induction heads: how a 2-layer attention-only transformer learns to copy from context.

All figures read the zoo model `induction-2l` (trained on random tokens repeating with a random
period) and its checkpoints, except the architecture sweep, which trains its own small models.
"""

import math
from functools import cache

import altair as alt
import pandas as pd
import torch

from explorer import models
from explorer.cache import cached
from explorer.data import induction_task
from explorer.models import fused_attention, training, zoo
from explorer.pipeline import FigureContext, figure
from explorer.techniques import induction

MODEL = "induction-2l"
MODEL_NOTE = "induction-2l (explorer zoo: 2-layer attention-only, trained on repeating random tokens)"
PROBE_SEED = 1234  # the probe rows are never training rows: their generator is seeded apart


def probe(scale: str, batch: int = 64) -> torch.Tensor:
    """Repeated random tokens of the model's vocabulary: `half` random tokens, then the same again."""
    arch = zoo.config(MODEL, scale)["arch"]
    half = arch["n_ctx"] * 3 // 8  # inside the training periods, so the rows look like training data
    return induction_task.repeated_random_tokens(batch, half, arch["d_vocab"], torch.Generator().manual_seed(PROBE_SEED))


def head_label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


@cache
def film(scale: str) -> list[dict]:
    """Scores and losses of every checkpoint of induction-2l, on the probe."""
    tokens = probe(scale)
    half = tokens.shape[1] // 2
    rows = []
    with training.cpu_threads(1, "cpu"):
        for step, weights in models.training_run(MODEL, scale).checkpoints:
            model = zoo.from_weights(MODEL, weights, scale, "cpu")
            scores = induction.head_scores(model, tokens)
            loss = induction.per_position_loss(model, tokens)
            rows.append({
                "step": step,
                "scores": scores,
                "repeated_loss": induction.repeated_half_loss(loss, half),
                "first_half_loss": loss[: half - 1].mean().item(),
                "icl": induction.icl_score(loss, ICL_WINDOW),
                "composition": induction.k_composition(model),
            })
    return rows


WINDOW = (0.2, 0.8)  # the phase change: from 20% to 80% of the induction score's total rise
ICL_WINDOW = 4  # positions averaged at each end of the context for the in-context learning score


def phase_window(steps: list[int], values: list[float], low: float = WINDOW[0], high: float = WINDOW[1]) -> tuple[int, int]:
    """Steps at which `values` first covers `low` and `high` of its total rise: the phase change."""
    start, end = values[0], values[-1]
    first = lambda frac: next(s for s, v in zip(steps, values) if v >= start + frac * (end - start))  # noqa: E731
    return first(low), first(high)


@figure(
    "induction-film",
    title="Induction heads form in a phase change",
    caption=(
        "Every checkpoint of the model, scored on rows of random tokens repeated once. Top: each head's "
        "previous-token score (attention to the token just before) and induction score (attention, in the "
        "second copy, to the token after the earlier occurrence of the current token). Bottom: the best "
        "score of each kind and the losses over training; the band marks the phase change (20% to 80% of "
        "the induction score's rise). Drag the slider to move through training."
    ),
    model=MODEL_NOTE,
)
def induction_film(ctx: FigureContext) -> alt.Chart:
    frames = film(ctx.scale)
    steps = [f["step"] for f in frames]
    top_induction = [f["scores"]["induction"][1].max().item() for f in frames]
    start, end = phase_window(steps, top_induction)
    last = frames[-1]
    best = int(last["scores"]["induction"][1].argmax())
    prev_best = int(last["scores"]["previous_token"][0].argmax())
    before = next(f for f in frames if f["step"] == start)
    after = next(f for f in frames if f["step"] == end)
    total_drop = frames[0]["repeated_loss"] - last["repeated_loss"]
    ctx.claim("steps", steps[-1])
    ctx.claim("induction_head", head_label(1, best))
    ctx.claim("induction_score", last["scores"]["induction"][1, best].item())
    ctx.claim("previous_token_head", head_label(0, prev_best))
    ctx.claim("previous_token_score", last["scores"]["previous_token"][0, prev_best].item())
    ctx.claim("best_layer0_induction_score", last["scores"]["induction"][0].max().item())
    ctx.claim("window_low", WINDOW[0])
    ctx.claim("window_high", WINDOW[1])
    ctx.claim("icl_window", ICL_WINDOW)
    ctx.claim("window_start", start)
    ctx.claim("window_end", end)
    ctx.claim("window_fraction", (end - start) / steps[-1])
    ctx.claim("loss_drop_in_window_fraction", (before["repeated_loss"] - after["repeated_loss"]) / total_drop)
    ctx.claim("repeated_loss_start", frames[0]["repeated_loss"])
    ctx.claim("repeated_loss_final", last["repeated_loss"])
    ctx.claim("first_half_loss_final", last["first_half_loss"])
    ctx.claim("icl_start", frames[0]["icl"])
    ctx.claim("icl_final", last["icl"])

    heads = pd.DataFrame([
        {"step": f["step"], "kind": kind.replace("_", "-"), "layer": layer, "head": head, "score": round(f["scores"][kind][layer, head].item(), 3)}
        for f in frames for kind in ("previous_token", "induction")
        for layer in range(f["scores"][kind].shape[0]) for head in range(f["scores"][kind].shape[1])
    ])
    curves = pd.DataFrame([
        {"step": f["step"], "panel": panel, "series": series, "value": round(value, 4)}
        for f in frames
        for panel, series, value in (
            ("score", "best induction score (layer 1)", f["scores"]["induction"][1].max().item()),
            ("score", "best previous-token score (layer 0)", f["scores"]["previous_token"][0].max().item()),
            ("loss", "loss on the repeated half", f["repeated_loss"]),
            ("loss", "loss on the first half", f["first_half_loss"]),
            ("loss", "in-context learning score", f["icl"]),
        )
    ])
    step = alt.param(name="step", value=steps[-1], bind=alt.binding_range(min=0, max=steps[-1], step=steps[1] - steps[0], name="training step "))
    def grid(kind: str, title: str) -> alt.LayerChart:
        cells = (
            alt.Chart(heads, title=title)
            .transform_filter((alt.datum.step == step) & (alt.datum.kind == kind))
            .encode(x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
        )
        rect = cells.mark_rect().encode(
            color=alt.Color("score:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis"), title="score"),
            tooltip=["kind:N", "layer:O", "head:O", alt.Tooltip("score:Q", format=".2f")],
        )
        text = cells.mark_text(fontSize=11).encode(
            text=alt.Text("score:Q", format=".2f"), color=alt.condition(alt.datum.score > 0.5, alt.value("black"), alt.value("white"))
        )
        return alt.layer(rect, text).properties(width=180, height=80)

    band = alt.Chart(pd.DataFrame([{"start": start, "end": end}])).mark_rect(opacity=0.15, color="orange").encode(x="start:Q", x2="end:Q")
    rule = alt.Chart(pd.DataFrame([{"x": 0}])).mark_rule(color="gray").encode(x=alt.X("s:Q")).transform_calculate(s="step")

    def panel(name: str, title: str) -> alt.LayerChart:
        lines = (
            alt.Chart(curves)
            .transform_filter(alt.datum.panel == name)
            .mark_line()
            .encode(
                x=alt.X("step:Q", title="training step"),
                y=alt.Y("value:Q", title=title),
                color=alt.Color("series:N", title=None, legend=alt.Legend(orient="right", labelLimit=260)),
                tooltip=["series:N", "step:Q", alt.Tooltip("value:Q", format=".3f")],
            )
        )
        return alt.layer(band, lines, rule).properties(width=420, height=140)

    grids = alt.hconcat(grid("previous-token", "previous-token score"), grid("induction", "induction score"))
    return alt.vconcat(grids, panel("score", "score"), panel("loss", "nats per token")).add_params(step).resolve_scale(color="independent")


@figure(
    "induction-patterns",
    title="What the heads look at",
    caption=(
        "Attention of each head of the trained model on one row of random tokens repeated once (query "
        "position down, key position across). A previous-token head draws the diagonal just below the main "
        "one; an induction head draws a diagonal in the second copy, one step right of the earlier copy."
    ),
    model=MODEL_NOTE,
)
def induction_patterns(ctx: FigureContext) -> alt.Chart:
    model = models.load(MODEL, scale=ctx.scale, device=ctx.device)
    tokens = probe(ctx.scale, batch=1).to(ctx.device)
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    labels = models.token_strings(MODEL, tokens[0].tolist(), scale=ctx.scale)
    rows, options = [], []
    for layer in range(model.cfg.n_layers):
        pattern = cache[induction.PATTERN.format(layer=layer)][0].cpu()  # (head, q, k)
        for head in range(model.cfg.n_heads):
            options.append(head_label(layer, head))
            rows += [
                {"head": head_label(layer, head), "q": q, "k": k, "query": f"{q}: {labels[q]}", "key": f"{k}: {labels[k]}", "attention": round(pattern[head, q, k].item(), 3)}
                for q in range(len(labels)) for k in range(q + 1) if pattern[head, q, k] >= 0.01
            ]
    scores = induction.head_scores(model, probe(ctx.scale).to(ctx.device))
    best = int(scores["induction"][1].argmax())
    positions = list(range(len(labels)))  # every position on the axes, including ones with no attention drawn
    choice = alt.param(name="head", value=head_label(1, best), bind=alt.binding_select(options=options, name="head "))
    return (
        alt.Chart(pd.DataFrame(rows))
        .transform_filter(alt.datum.head == choice)
        .mark_rect()
        .encode(
            x=alt.X("k:O", title="key position (attended to)", scale=alt.Scale(domain=positions), axis=alt.Axis(labelAngle=0, values=positions[::5])),
            y=alt.Y("q:O", title="query position", scale=alt.Scale(domain=positions), axis=alt.Axis(values=positions[::5])),
            color=alt.Color("attention:Q", scale=alt.Scale(domain=[0, 1], scheme="blues")),
            tooltip=["query:N", "key:N", alt.Tooltip("attention:Q", format=".2f")],
        )
        .add_params(choice)
        .properties(width="container", height=380)
    )


@figure(
    "induction-composition",
    title="K-composition: layer-1 keys read layer-0 outputs",
    caption=(
        "K-composition score of every (layer-0 head, layer-1 head) pair over training: the Frobenius norm of "
        "W_OV(layer 0) W_QK(layer 1)ᵀ divided by the product of the two norms, i.e. how much of what the "
        "layer-0 head writes is read by the layer-1 head's keys. The dashed line is the score of random "
        "matrices of the same shapes. Drag the slider to move through training."
    ),
    model=MODEL_NOTE,
)
def induction_composition(ctx: FigureContext) -> alt.Chart:
    frames = film(ctx.scale)
    arch = zoo.config(MODEL, ctx.scale)["arch"]
    last = frames[-1]
    ind = int(last["scores"]["induction"][1].argmax())
    prev = int(last["scores"]["previous_token"][0].argmax())
    comp = last["composition"]  # (head_l0, head_l1)
    others = torch.cat([comp[:, :ind], comp[:, ind + 1 :]], dim=1)
    baseline = induction.random_composition_baseline(arch["d_model"], arch["d_head"])
    ctx.claim("pair", f"{head_label(0, prev)} → {head_label(1, ind)}")
    ctx.claim("pair_score", comp[prev, ind].item())
    ctx.claim("pair_score_start", frames[0]["composition"][prev, ind].item())
    ctx.claim("max_other_l1_score", others.max().item())
    ctx.claim("random_baseline", baseline)

    rows = pd.DataFrame([
        {"step": f["step"], "pair": f"{head_label(0, a)} → {head_label(1, b)}", "from": head_label(0, a), "into": head_label(1, b),
         "score": round(f["composition"][a, b].item(), 4), "circuit": "yes" if (a, b) == (prev, ind) else "no"}
        for f in frames for a in range(comp.shape[0]) for b in range(comp.shape[1])
    ])
    steps = [f["step"] for f in frames]
    step = alt.param(name="step", value=steps[-1], bind=alt.binding_range(min=0, max=steps[-1], step=steps[1] - steps[0], name="training step "))
    heat = (
        alt.Chart(rows)
        .transform_filter(alt.datum.step == step)
        .mark_rect()
        .encode(
            x=alt.X("into:N", title="layer-1 head (keys)"),
            y=alt.Y("from:N", title="layer-0 head (output)"),
            color=alt.Color("score:Q", scale=alt.Scale(domain=[0, max(0.3, float(comp.max()))], scheme="oranges"), title="K-composition"),
            tooltip=["pair:N", alt.Tooltip("score:Q", format=".3f")],
        )
        .properties(width=220, height=220)
    )
    heat = heat + heat.mark_text(fontSize=11).encode(text=alt.Text("score:Q", format=".2f"), color=alt.value("black"))
    lines = (
        alt.Chart(rows)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="training step"),
            y=alt.Y("score:Q", title="K-composition"),
            detail="pair:N",
            color=alt.Color("circuit:N", title="previous-token → induction pair", scale=alt.Scale(domain=["yes", "no"], range=["#d62728", "#bbbbbb"])),
            tooltip=["pair:N", "step:Q", alt.Tooltip("score:Q", format=".3f")],
        )
    )
    base = alt.Chart(pd.DataFrame([{"y": baseline}])).mark_rule(strokeDash=[4, 4], color="black").encode(y="y:Q")
    rule = alt.Chart(pd.DataFrame([{"x": 0}])).mark_rule(color="gray").encode(x=alt.X("s:Q")).transform_calculate(s="step")
    return alt.hconcat(heat, alt.layer(lines, base, rule).properties(width=300, height=220)).add_params(step)


@figure(
    "induction-ablation",
    title="Ablating the induction head",
    caption=(
        "Loss of the trained model at each position of repeated random tokens, with one head's output "
        "replaced by its mean over the probe (mean ablation). Positions after the dashed line are the "
        "second copy, which an induction head can predict. Pick the head to ablate."
    ),
    model=MODEL_NOTE,
)
def induction_ablation(ctx: FigureContext) -> alt.Chart:
    model = models.load(MODEL, scale=ctx.scale, device=ctx.device)
    tokens = probe(ctx.scale).to(ctx.device)
    half = tokens.shape[1] // 2
    scores = induction.head_scores(model, tokens)
    best = int(scores["induction"][1].argmax())
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_z"))
    curves = {"none": induction.per_position_loss(model, tokens)}
    repeated = {}
    for layer in range(model.cfg.n_layers):
        z = cache[induction.Z.format(layer=layer)]  # (batch, pos, head, d_head)
        for head in range(model.cfg.n_heads):
            hook = induction.ablate_head_hook(layer, head, mean_over=z[:, :, head].mean((0, 1)))
            curves[head_label(layer, head)] = induction.per_position_loss(model, tokens, hooks=[hook])
    prev = int(scores["previous_token"][0].argmax())
    team = [h for h in range(model.cfg.n_heads) if scores["induction"][1, h] >= 0.5 * scores["induction"][1, best]]
    team_hooks = [induction.ablate_head_hook(1, h, mean_over=cache[induction.Z.format(layer=1)][:, :, h].mean((0, 1))) for h in team]
    curves["all induction heads"] = induction.per_position_loss(model, tokens, hooks=team_hooks)
    for name, loss in curves.items():
        repeated[name] = induction.repeated_half_loss(loss, half)
    circuit = {head_label(1, h) for h in team} | {head_label(0, prev)}
    outside = [h for h in curves if h not in circuit and h not in ("none", "all induction heads")]
    control = outside[int(torch.randint(len(outside), (1,)))] if outside else "none"  # a random head outside the circuit (seeded)
    ctx.claim("clean_loss", repeated["none"])
    ctx.claim("ablated_head", head_label(1, best))
    ctx.claim("ablated_loss", repeated[head_label(1, best)])
    ctx.claim("loss_increase", repeated[head_label(1, best)] - repeated["none"])
    ctx.claim("loss_ratio", repeated[head_label(1, best)] / repeated["none"])
    ctx.claim("second_best_induction_score", scores["induction"][1].sort(descending=True).values[1].item())
    ctx.claim("induction_heads", ", ".join(head_label(1, h) for h in team))
    ctx.claim("all_induction_ablated_loss", repeated["all induction heads"])
    ctx.claim("all_induction_increase", repeated["all induction heads"] - repeated["none"])
    ctx.claim("previous_token_head", head_label(0, prev))
    ctx.claim("previous_token_increase", repeated[head_label(0, prev)] - repeated["none"])
    ctx.claim("control_head", control)
    ctx.claim("control_increase", repeated[control] - repeated["none"])
    ctx.claim("mean_outside_increase", sum(repeated[h] for h in outside) / max(1, len(outside)) - repeated["none"])
    ctx.claim("uniform_loss", math.log(model.cfg.d_vocab))

    rows = pd.DataFrame([
        {"ablated": name, "position": pos + 1, "loss": round(value.item(), 3), "curve": "ablated" if name != "none" else "no ablation"}
        for name, loss in curves.items() for pos, value in enumerate(loss)
    ])
    clean = rows[rows.ablated == "none"].drop(columns="ablated")
    options = [h for h in curves if h != "none"]  # every single head, then the induction heads together
    choice = alt.param(name="ablate", value=head_label(1, best), bind=alt.binding_select(options=options, name="ablate head "))
    x = alt.X("position:Q", title="position of the predicted token")
    y = alt.Y("loss:Q", title="loss (nats)")
    lines = alt.Chart(rows[rows.ablated != "none"]).transform_filter(alt.datum.ablated == choice).mark_line(color="#d62728").encode(
        x=x, y=y, tooltip=["position:Q", alt.Tooltip("loss:Q", format=".2f")])
    base = alt.Chart(clean).mark_line(color="#1f77b4").encode(x=x, y=y, tooltip=["position:Q", alt.Tooltip("loss:Q", format=".2f")])
    divider = alt.Chart(pd.DataFrame([{"x": half + 0.5}])).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    bars = (
        alt.Chart(pd.DataFrame([{"head": h, "increase": round(repeated[h] - repeated["none"], 3)} for h in options]))
        .mark_bar()
        .encode(
            x=alt.X("head:N", title="ablated head"),
            y=alt.Y("increase:Q", title="rise in repeated-half loss (nats)"),
            color=alt.condition(alt.datum.head == choice, alt.value("#d62728"), alt.value("#9ecae1")),
            tooltip=["head:N", alt.Tooltip("increase:Q", format=".3f")],
        )
        .properties(width=220, height=220)
    )
    return alt.hconcat(alt.layer(base, lines, divider).properties(width=360, height=220), bars).add_params(choice)


# --- The minimal architecture sweep -------------------------------------------------------------

SWEEP = {
    "full": dict(layers=(1, 2, 3), heads=(1, 2, 4), widths=(16, 64), default_heads=2, default_width=32, seeds=(0, 1, 2),
                 n_ctx=32, vocab=64, batch=32, steps=600, lr=5e-3, warmup=20, min_period=4, max_period=12),
    "smoke": dict(layers=(1, 2), heads=(4,), widths=(), default_heads=4, default_width=32, seeds=(0, 1, 2),
                  n_ctx=32, vocab=64, batch=32, steps=500, lr=5e-3, warmup=20, min_period=4, max_period=12),
}
INDUCTION_THRESHOLD = 0.5  # a configuration "shows induction" when its median seed has a head above layer 0 scoring above this


def sweep_points(scale: str) -> list[tuple[int, int, int]]:
    """(layers, heads, width): the layers x heads grid at the default width, plus other widths for 2 layers."""
    s = SWEEP[scale]
    grid = [(layers, heads, s["default_width"]) for layers in s["layers"] for heads in s["heads"]]
    return grid + [(2, s["default_heads"], width) for width in s["widths"]]


def sweep_run(scale: str, layers: int, heads: int, width: int, seed: int) -> dict[str, float]:
    """Train one small attention-only model on the repeated-tokens task; score it on the probe."""
    s = SWEEP[scale]
    config = {k: s[k] for k in ("n_ctx", "vocab", "batch", "steps", "lr", "warmup", "min_period", "max_period")}
    config.update(layers=layers, heads=heads, width=width, seed=seed)

    def build() -> dict[str, float]:
        arch = dict(n_layers=layers, d_model=width, n_heads=heads, d_head=width // heads, n_ctx=s["n_ctx"], d_vocab=s["vocab"],
                    attn_only=True, act_fn="gelu", normalization_type="LN", positional_embedding_type="standard", init_mode="gpt2")
        half = s["n_ctx"] * 3 // 8  # as for induction-2l: a period inside the training range
        tokens = induction_task.repeated_random_tokens(64, half, s["vocab"], torch.Generator().manual_seed(PROBE_SEED))
        run = training.train(
            arch, lambda g: induction_task.periodic_batch(s["batch"], s["n_ctx"], s["vocab"], s["min_period"], s["max_period"], g),
            steps=s["steps"], lr=s["lr"], warmup=s["warmup"], seed=seed, log_every=s["steps"], checkpoint_every=s["steps"], evaluate=lambda m: {},
        )
        model = training.build_bridge(arch)
        model.load_state_dict(run.state_dict)
        model.eval()
        scores = induction.head_scores(model, tokens)
        loss = induction.per_position_loss(model, tokens)
        return {
            "induction": scores["induction"][1:].max().item() if layers > 1 else scores["induction"].max().item(),
            "repeated_loss": induction.repeated_half_loss(loss, half),
            "icl": induction.icl_score(loss),
            "train_seconds": run.train_seconds,
        }

    return cached("induction-sweep", config, build, code=[training, fused_attention, induction, induction_task])


@figure(
    "induction-sweep",
    title="What is the smallest model that learns induction?",
    caption=(
        "Attention-only transformers of 1 to 3 layers, 1 to 4 heads per layer and widths 16 to 64, each trained "
        "from scratch on the repeated-tokens task with three seeds (dots; the bar is their mean). Induction "
        "score: the best head above layer 0 (for 1-layer models, the only layer). Loss: on the repeated half of "
        "random tokens repeated once; the dashed line is the threshold for 'shows induction'. Choose the measure "
        "and the axis to compare along."
    ),
    model="small attention-only transformers trained by build_figures/induction.py (3 seeds per point)",
)
def induction_sweep(ctx: FigureContext) -> alt.Chart:
    s = SWEEP[ctx.scale]
    rows = []
    points = sweep_points(ctx.scale)
    for layers, heads, width in ctx.progress(points, "sweep"):
        for seed in s["seeds"]:
            result = sweep_run(ctx.scale, layers, heads, width, seed)
            rows.append({"layers": layers, "heads": heads, "width": width, "seed": seed,
                         "config": f"{layers}L × {heads}H × d{width}", **{k: round(v, 4) for k, v in result.items() if k != "train_seconds"}})
    frame = pd.DataFrame(rows)
    by_layers = frame.groupby("layers")["induction"]
    shows = frame.groupby(["layers", "heads", "width"])["induction"].median() > INDUCTION_THRESHOLD
    showing = shows[shows].reset_index().sort_values(["layers", "heads", "width"])
    minimal = showing.iloc[0] if len(showing) else pd.Series({"layers": 0, "heads": 0, "width": 0})  # 0: none showed it
    ctx.claim("runs", len(frame))
    ctx.claim("seeds", len(s["seeds"]))
    ctx.claim("threshold", INDUCTION_THRESHOLD)
    ctx.claim("one_layer_max_induction", by_layers.max()[1])
    ctx.claim("two_layer_mean_induction", by_layers.mean()[2])
    ctx.claim("one_layer_mean_repeated_loss", frame[frame.layers == 1].repeated_loss.mean())
    ctx.claim("two_layer_mean_repeated_loss", frame[frame.layers == 2].repeated_loss.mean())
    ctx.claim("minimal_layers", int(minimal.layers))
    ctx.claim("minimal_heads", int(minimal.heads))
    ctx.claim("minimal_width", int(minimal.width))
    for layers in s["layers"]:
        ctx.claim(f"fraction_showing_{layers}l", float(frame[frame.layers == layers].induction.gt(INDUCTION_THRESHOLD).mean()))
    two_layer_widths = frame[(frame.layers == 2) & (frame.heads == s["default_heads"])].groupby("width")
    for width, group in two_layer_widths:
        ctx.claim(f"median_induction_2l_d{width}", group.induction.median())
        ctx.claim(f"median_repeated_loss_2l_d{width}", group.repeated_loss.median())

    long = frame.melt(id_vars=["layers", "heads", "width", "seed", "config"], value_vars=["induction", "repeated_loss"], var_name="measure")
    long["measure"] = long.measure.map({"induction": "induction score", "repeated_loss": "repeated-half loss"})
    measure = alt.param(name="measure", value="induction score", bind=alt.binding_radio(options=["induction score", "repeated-half loss"], name="measure "))
    axis = alt.param(name="along", value="heads", bind=alt.binding_radio(options=["heads", "width"], name="vary "))
    chart = (
        alt.Chart(long)
        .transform_filter(alt.datum.measure == measure)
        .transform_filter(f"along == 'heads' ? datum.width == {s['default_width']} : datum.heads == {s['default_heads']}")
        .transform_calculate(x="along == 'heads' ? datum.heads : datum.width")
    )
    bars = chart.mark_bar(opacity=0.5).encode(
        x=alt.X("x:O", title="heads per layer / width (see 'vary')"),
        y=alt.Y("mean(value):Q", title="value"),
        color=alt.Color("layers:O", title="layers"),
        xOffset="layers:O",
    )
    dots = chart.mark_circle(size=30, opacity=0.9).encode(
        x=alt.X("x:O"), y=alt.Y("value:Q"), color=alt.Color("layers:O"), xOffset="layers:O",
        tooltip=["config:N", "seed:Q", "measure:N", alt.Tooltip("value:Q", format=".3f")],
    )
    threshold = (
        alt.Chart(pd.DataFrame([{"y": INDUCTION_THRESHOLD, "measure": "induction score"}]))
        .transform_filter(alt.datum.measure == measure)
        .mark_rule(strokeDash=[4, 4], color="black")
        .encode(y="y:Q")
    )
    return alt.layer(bars, dots, threshold).add_params(measure, axis).properties(width="container", height=260)
