"""Curriculum, chapter 2: attention, on a task one head solves (associative recall).

A 1-layer, 1-head, attention-only transformer (d_model 32, d_head 8, no LayerNorm) is trained here
on explorer/data/recall.py, a synthetic task: eight key-value pairs, then a query key; the answer
is the value paired with it. Three seeds of the same recipe, trained in seconds and cached. The
figures: every number the head computes for one input (the computation panel, over training), the
pattern and accuracy over training, and what the 1/sqrt(d_head) scaling does to the trained model.
"""

import functools
import math

import altair as alt
import pandas as pd
import torch

from explorer import charts
from explorer.cache import cached
from explorer.data.recall import RecallTask
from explorer.ensemble import claim_over_seeds
from explorer.models import curriculum
from explorer.pipeline import FigureContext, figure
from explorer.techniques import attention_steps

TASK = RecallTask(n_keys=16, n_values=16, pairs=8)
SEEDS = (0, 1, 2)
ARCH = dict(n_layers=1, d_model=32, n_heads=1, d_head=8, d_mlp=None, n_ctx=TASK.length, d_vocab=TASK.d_vocab,
            attn_only=True, act_fn="gelu", normalization_type=None, positional_embedding_type="standard",
            init_mode="gpt2")  # fmt: skip
# TransformerLens reads attn_scale == 1.0 as a mistake; 1 + 1e-6 is "no scaling" to six digits
UNSCALED = {"use_attn_scale": True, "attn_scale": 1.000001}
RECIPE = dict(steps=1200, lr=1e-3, batch=128, checkpoint_every=50)
EVAL_ROWS = {"smoke": 256, "full": 1024}
MODEL = ("recall-1l1h: 1-layer, 1-head attention-only transformer (d_model 32, d_head 8, no LayerNorm) trained here on "
         "associative recall (explorer/data/recall.py, synthetic), seeds 0-2")
EXAMPLES = 6  # inputs the reader can pick in the computation panel
MULTIPLIERS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16)
CHANCE_ACCURACY = 1 / TASK.n_values
UNIFORM_ATTENTION = 1 / TASK.length  # the query sees the eight pairs and itself
ANSWERS = (TASK.answer_base, TASK.answer_base + TASK.n_values)  # the token ids that compete as answers


def evaluate(model, rows: torch.Tensor) -> dict[str, float]:
    """Accuracy, answer loss and the query's attention on the matching pair, on held-out rows."""
    logits, cache = model.run_with_cache(rows[:, :-1], names_filter="blocks.0.attn.hook_pattern")
    pattern = cache["blocks.0.attn.hook_pattern"][:, 0, -1]  # (rows, keys): the query's row
    target = TASK.target_position(rows)
    on_target = pattern[torch.arange(len(rows)), target]
    answers = curriculum.answer_logits(logits[:, -1], ANSWERS)
    return {
        "accuracy": curriculum.answer_accuracy(logits[:, -1], rows, ANSWERS),
        "loss": torch.nn.functional.cross_entropy(answers, rows[:, -1] - TASK.answer_base).item(),
        "attn_target": on_target.mean().item(),
        "attn_self": pattern[:, -1].mean().item(),
        "entropy_bits": attention_steps.entropy_bits(pattern).mean().item(),
    }


@functools.cache  # three figures read the same runs: one read of the cache each
def run(scale: str, seed: int, scaled: bool = True):
    arch = {**ARCH, **({} if scaled else UNSCALED)}
    config = {"arch": arch, "recipe": RECIPE, "task": vars(TASK), "seed": seed, "eval_rows": EVAL_ROWS[scale]}
    return cached("self-attention-runs", config, lambda: curriculum.train_answer(
        arch, TASK.batch, answers=ANSWERS, seed=seed, evaluate=evaluate, eval_rows=EVAL_ROWS[scale], **RECIPE),
        code=[curriculum, "explorer/data/recall.py"])  # fmt: skip


def examples() -> torch.Tensor:
    """The inputs of the computation panel: held-out rows, apart from training and evaluation."""
    return TASK.batch(EXAMPLES, torch.Generator().manual_seed(2024))


def example_label(row: torch.Tensor) -> str:
    return " ".join(TASK.token_text(int(t)) for t in row[:-1]) + f"  (answer {TASK.token_text(int(row[-1]))[1:]})"


def steps_to(history: list[dict], key: str, level: float) -> int:
    """The first evaluated step at which `key` reaches `level`."""
    return next((h["step"] for h in history if h[key] >= level), history[-1]["step"])


# --------------------------------------------------------------------------- the computation panel


def panel_rows(model, row: torch.Tensor, step: int) -> list[dict]:
    """Long rows (step, stage, r, c, value) of every number the head computes at the query."""
    s = attention_steps.head_steps(model, row[:-1], query=TASK.pairs)
    answers = s.logits[ANSWERS[0] : ANSWERS[1]]  # (n_values,)
    out = []

    def add(stage: str, values: torch.Tensor) -> None:
        grid = values.reshape(-1, values.shape[-1]) if values.dim() > 1 else values[:, None]
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                out.append({"step": step, "stage": stage, "r": r, "c": c, "v": round(float(grid[r, c]), 3)})

    add("q", s.q[None, :])
    add("k", s.k)
    add("score", s.scores)
    add("scaled", s.scaled)
    add("a", s.pattern)
    add("v", s.v)
    add("z", s.z[None, :])
    add("logit", answers[None, :])
    return out


@figure(
    "self-attention-panel",
    title="One head, every number: from the query to the answer",
    caption=(
        "One input of the recall task (pick it above): eight key-value pairs, then a query key. At the query's "
        "position the head forms its query vector q, compares it with each position's key k (the dot product "
        "q·k, then divided by √8), turns the scores into attention weights with a softmax, and adds up the "
        "positions' value vectors v in those proportions. The sum, through the output matrix and the "
        "unembedding, gives a logit per possible answer. The slider moves through training: at step 0 the "
        "weights are random and the attention is nearly even; later it lands on the pair whose key matches."
    ),
    model=MODEL,
)
def self_attention_panel(ctx: FigureContext):
    trained = run(ctx.scale, SEEDS[0])
    rows = examples()
    steps = [s for s, _ in trained.checkpoints]
    names = []
    for i, row in enumerate(rows):
        data = []
        for step, weights in trained.checkpoints:
            data += panel_rows(curriculum.load(ARCH, weights), row, step)
        tokens = [{"p": p, "t": TASK.token_text(int(t)), "target": int(p == int(TASK.target_position(row[None])[0]))}
                  for p, t in enumerate(row[:-1])]  # fmt: skip
        ctx.asset(f"panel/example-{i}.json", {"numbers": data, "tokens": tokens})
        names.append(f"example-{i}")
    final = attention_steps.head_steps(curriculum.load(ARCH, trained.state_dict), rows[0, :-1], query=TASK.pairs)
    ctx.claim("example_0_target_weight", float(final.pattern[int(TASK.target_position(rows[:1])[0])]))
    ctx.claim("example_0_correct", bool(int(final.logits[ANSWERS[0]:ANSWERS[1]].argmax()) == int(TASK.answer_index(rows[:1])[0])))
    ctx.claim("d_head", ARCH["d_head"])
    ctx.claim("checkpoints", len(steps))

    panel = charts.Panel()
    panel.data("example", names, label="Input", labels=[example_label(r) for r in rows])
    step = panel.steps("step", steps, value=steps[-1])
    panel.source("panel/{example}.json", datasets=["numbers", "tokens"])
    return panel.finish(panel_chart(step))


def _cells(stage: str, title: str, step: alt.Parameter, *, scale: alt.Scale, width: int, per_position: bool = True,
           fmt: str = ".2f") -> alt.LayerChart:
    """One stage's numbers as labelled cells: a row per position (keys, scores, values) or one row."""
    base = (
        alt.Chart(alt.Data(name="numbers"), title=alt.Title(title, fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.stage == '{stage}' && datum.step == {step.name}")
        .encode(x=alt.X("c:O", axis=None), y=alt.Y("r:O", axis=None))
    )
    cells = base.mark_rect(stroke=charts.RULE, strokeWidth=0.5).encode(
        color=alt.Color("v:Q", scale=scale, legend=None),
        tooltip=[alt.Tooltip("r:O", title="position"), alt.Tooltip("c:O", title="component"), alt.Tooltip("v:Q", format=".3f")])
    text = base.mark_text(fontSize=charts.SMALL_SIZE).encode(text=alt.Text("v:Q", format=fmt), color=ink_on_cells(scale))
    return alt.layer(cells, text).properties(width=width, height=alt.Step(22) if per_position else 22)


VECTOR_LIMIT = 2.0  # the diverging scale's full strength (clamped beyond)


def ink_on_cells(scale: alt.Scale) -> dict:
    """Paper-coloured numbers on strong cells, ink on pale ones, in both palettes: charts.ink_on for the
    sequential weights, and the same flip point on |v| for the signed (diverging) vectors."""
    if scale.range == list(charts.SEQUENTIAL):
        return charts.ink_on("v")
    test = f"abs(datum.v) / {VECTOR_LIMIT} > toNumber('{charts.SEQ_FLIP}')"
    return alt.condition(test, alt.value(charts.PAPER), alt.value(charts.INK))


def panel_chart(step: alt.Parameter):
    vectors = charts.diverging(VECTOR_LIMIT, clamp=True)
    weights = charts.sequential((0, 1))
    tokens = (
        alt.Chart(alt.Data(name="tokens"), title=alt.Title("the input: positions 0-7 hold pairs, 8 the query",
                                                           fontSize=charts.LABEL_SIZE, anchor="start"))
        .mark_text(fontSize=charts.LABEL_SIZE, align="left", dx=-14)
        .encode(y=alt.Y("p:O", title="position", axis=alt.Axis(ticks=False, labelAngle=0)), text="t:N",
                color=alt.condition("datum.target == 1", alt.value(charts.ACCENT), alt.value(charts.INK)))
        .properties(width=40, height=alt.Step(22))
    )
    k = _cells("k", "keys k (one row per position)", step, scale=vectors, width=8 * 34)
    score = _cells("score", "q·k", step, scale=vectors, width=44)
    scaled = _cells("scaled", "÷ √8", step, scale=vectors, width=44)
    a = _cells("a", "softmax", step, scale=weights, width=44)
    v = _cells("v", "values v", step, scale=vectors, width=8 * 34)
    q = _cells("q", "the query's vector q (position 8)", step, scale=vectors, width=8 * 34, per_position=False)
    z = _cells("z", "z = Σ softmax × v", step, scale=vectors, width=8 * 34, per_position=False)
    logits = (
        alt.Chart(alt.Data(name="numbers"), title=alt.Title("logit per answer (0-15), after W_O and the unembedding",
                                                            fontSize=charts.LABEL_SIZE, anchor="start"))
        .transform_filter(f"datum.stage == 'logit' && datum.step == {step.name}")
        .transform_joinaggregate(top="max(v)")
        .mark_bar()
        .encode(x=alt.X("c:O", title="answer", axis=alt.Axis(labelAngle=0)), y=alt.Y("v:Q", title="logit"),
                color=alt.condition("datum.v == datum.top", alt.value(charts.ACCENT), alt.value(charts.FAINT)),
                tooltip=[alt.Tooltip("c:O", title="answer"), alt.Tooltip("v:Q", title="logit", format=".2f")])
        .properties(width=16 * 20, height=120)
    )
    middle = alt.hconcat(tokens, k, score, scaled, a, v, spacing=8).resolve_scale(color="independent")
    # independent colour scales: the softmax weights (0..1, one hue) must not share the vectors' signed scale
    return alt.vconcat(q, middle, alt.hconcat(z, logits, spacing=24), spacing=16).resolve_scale(color="independent")


# --------------------------------------------------------------------------- the pattern over training


@figure(
    "self-attention-film",
    title="Learning to look: accuracy and attention over training, three seeds",
    caption=(
        "Held-out rows of the recall task, measured at every 50th step of three training runs: the share of rows "
        "answered correctly (chance: 1 in 16), the attention the query pays the pair whose key matches (uniform "
        "attention over the nine positions it sees would give 1/9), and the entropy of its attention row in bits "
        "(uniform: log2 9 = 3.17 bits). Shaded: the range over seeds; the line: their mean."
    ),
    model=MODEL,
)
def self_attention_film(ctx: FigureContext):
    runs = {seed: run(ctx.scale, seed) for seed in SEEDS}
    frame = pd.DataFrame([{**h, "seed": seed} for seed, r in runs.items() for h in r.history])
    final = {seed: r.history[-1] for seed, r in runs.items()}
    claim_over_seeds(ctx, "final_accuracy", {s: f["accuracy"] for s, f in final.items()})
    claim_over_seeds(ctx, "final_attn_target", {s: f["attn_target"] for s, f in final.items()})
    claim_over_seeds(ctx, "final_entropy_bits", {s: f["entropy_bits"] for s, f in final.items()})
    claim_over_seeds(ctx, "steps_to_90", {s: steps_to(r.history, "accuracy", 0.9) for s, r in runs.items()})
    claim_over_seeds(ctx, "initial_accuracy", {s: r.history[0]["accuracy"] for s, r in runs.items()})
    claim_over_seeds(ctx, "initial_attn_target", {s: r.history[0]["attn_target"] for s, r in runs.items()})
    ctx.claim("chance_accuracy", CHANCE_ACCURACY)
    ctx.claim("uniform_attention", UNIFORM_ATTENTION)
    ctx.claim("uniform_entropy_bits", math.log2(TASK.length))
    ctx.claim("steps", RECIPE["steps"])

    long = frame.melt(id_vars=["step", "seed"], value_vars=["accuracy", "attn_target", "entropy_bits"], var_name="measure")
    summary = long.groupby(["step", "measure"]).value.agg(["mean", "min", "max"]).reset_index()
    chance = pd.DataFrame([{"measure": "accuracy", "value": CHANCE_ACCURACY, "label": "chance"},
                           {"measure": "attn_target", "value": UNIFORM_ATTENTION, "label": "uniform"},
                           {"measure": "entropy_bits", "value": math.log2(TASK.length), "label": "uniform"}])  # fmt: skip
    titles = {"accuracy": "accuracy", "attn_target": "attention on the matching pair", "entropy_bits": "attention entropy (bits)"}
    views = []
    for measure, title in titles.items():
        rows = summary[summary.measure == measure]
        base = alt.Chart(rows).encode(x=alt.X("step:Q", title="training step"))
        band = base.mark_area(opacity=0.25, color=charts.SERIES[0]).encode(y=alt.Y("min:Q", title=title), y2="max:Q")
        line = base.mark_line(color=charts.SERIES[0]).encode(
            y="mean:Q", tooltip=[alt.Tooltip("step:Q"), alt.Tooltip("mean:Q", format=".3f", title=f"{title}, mean"),
                                 alt.Tooltip("min:Q", format=".3f"), alt.Tooltip("max:Q", format=".3f")])
        ref = alt.Chart(chance[chance.measure == measure]).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="value:Q")
        label = alt.Chart(chance[chance.measure == measure]).mark_text(
            align="right", dy=-6, fontSize=charts.SMALL_SIZE, color=charts.MUTED).encode(y="value:Q", text="label:N", x=alt.value(236))
        views.append(alt.layer(band, line, ref, label).properties(width=240, height=180))
    return alt.hconcat(*views, spacing=28)


# --------------------------------------------------------------------------- the 1/sqrt(d) scaling


def scaled_evaluation(model, rows: torch.Tensor, multiplier: float) -> dict[str, float]:
    """Accuracy and attention entropy when the head's scaled scores are multiplied by `multiplier`."""
    seen = {}

    def keep(pattern, hook):  # noqa: ARG001
        seen["pattern"] = pattern[:, 0, -1]  # (rows, keys): the query's row

    hooks = [("blocks.0.attn.hook_q", attention_steps.query_multiplier_hook(multiplier)), ("blocks.0.attn.hook_pattern", keep)]
    with torch.no_grad():
        logits = model.run_with_hooks(rows[:, :-1], fwd_hooks=hooks)
    return {"accuracy": curriculum.answer_accuracy(logits[:, -1], rows, ANSWERS),
            "entropy_bits": attention_steps.entropy_bits(seen["pattern"]).mean().item()}


def random_score_spread(d_heads=(2, 4, 8, 16, 32, 64, 128), n: int = 4096) -> pd.DataFrame:
    """The textbook argument on random numbers: q and k with unit-variance entries; q·k's spread grows as
    √d, q·k/√d's does not."""
    g = torch.Generator().manual_seed(7)
    out = []
    for d in d_heads:
        q, k = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        dots = (q * k).sum(-1)
        out += [{"d_head": d, "which": "q·k", "std": float(dots.std())},
                {"d_head": d, "which": "q·k / √d", "std": float((dots / math.sqrt(d)).std())}]
    return pd.DataFrame(out)


@figure(
    "self-attention-scaling",
    title="What the 1/√d scaling does, on the trained head and in training",
    caption=(
        "First two panels: the trained models of the chapter (three seeds), with the head's scaled scores multiplied "
        "by a factor before the softmax, from 1/16 (flatter) to 16 (sharper); accuracy on held-out rows (chance 1/16) "
        "and the entropy of the query's attention (uniform over nine positions: 3.17 bits); the dotted line marks the "
        "trained scale. Third: the same recipe trained with and without the 1/√8, three seeds each, accuracy over "
        "training. Last, on random numbers rather than a model: the spread of q·k for q and k with unit-variance "
        "entries grows as √d; divided by √d it stays 1."
    ),
    model=MODEL + "; the same recipe without the 1/sqrt(d_head) scaling, seeds 0-2; and random unit-variance vectors",
)
def self_attention_scaling(ctx: FigureContext):
    heldout = TASK.batch(EVAL_ROWS[ctx.scale], torch.Generator().manual_seed(curriculum.EVAL_SEED))
    rows = []
    for seed in SEEDS:
        model = curriculum.load(ARCH, run(ctx.scale, seed).state_dict)
        for m in MULTIPLIERS:
            rows.append({"seed": seed, "multiplier": m, **scaled_evaluation(model, heldout, m)})
    sweep = pd.DataFrame(rows)
    for m in MULTIPLIERS:
        key = f"x{m:g}".replace("/", "_").replace(".", "_")
        at = sweep[sweep.multiplier == m].set_index("seed")
        claim_over_seeds(ctx, f"accuracy_{key}", at.accuracy.to_dict())
        claim_over_seeds(ctx, f"entropy_bits_{key}", at.entropy_bits.to_dict())
    scaled = {seed: run(ctx.scale, seed) for seed in SEEDS}
    unscaled = {seed: run(ctx.scale, seed, scaled=False) for seed in SEEDS}
    claim_over_seeds(ctx, "steps_to_90_scaled", {s: steps_to(r.history, "accuracy", 0.9) for s, r in scaled.items()})
    claim_over_seeds(ctx, "steps_to_90_unscaled", {s: steps_to(r.history, "accuracy", 0.9) for s, r in unscaled.items()})
    claim_over_seeds(ctx, "final_accuracy_unscaled", {s: r.history[-1]["accuracy"] for s, r in unscaled.items()})
    claim_over_seeds(ctx, "unscaled_over_scaled_steps", {
        s: steps_to(unscaled[s].history, "accuracy", 0.9) / max(1, steps_to(scaled[s].history, "accuracy", 0.9)) for s in SEEDS})
    spread = random_score_spread()
    ctx.claim("random_std_d64", float(spread[(spread.d_head == 64) & (spread.which == "q·k")]["std"].iloc[0]))
    ctx.claim("random_scaled_std_d64", float(spread[(spread.d_head == 64) & (spread.which == "q·k / √d")]["std"].iloc[0]))
    ctx.claim("chance_accuracy", CHANCE_ACCURACY)
    ctx.claim("uniform_entropy_bits", math.log2(TASK.length))
    return scaling_chart(sweep, scaled, unscaled, spread)


def scaling_chart(sweep: pd.DataFrame, scaled: dict, unscaled: dict, spread: pd.DataFrame):
    summary = sweep.melt(id_vars=["seed", "multiplier"], var_name="measure").groupby(["multiplier", "measure"]).value.agg(
        ["mean", "min", "max"]).reset_index()
    x = alt.X("multiplier:Q", title="scores multiplied by", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(values=list(MULTIPLIERS), labelExpr="datum.value < 1 ? '1/' + round(1 / datum.value) : datum.value"))
    views = []
    for measure, title, ref in (("accuracy", "accuracy", CHANCE_ACCURACY), ("entropy_bits", "attention entropy (bits)", math.log2(TASK.length))):
        rows = summary[summary.measure == measure]
        base = alt.Chart(rows).encode(x=x)
        views.append(alt.layer(
            base.mark_area(opacity=0.25, color=charts.SERIES[0]).encode(y=alt.Y("min:Q", title=title), y2="max:Q"),
            base.mark_line(point=True, color=charts.SERIES[0]).encode(
                y="mean:Q", tooltip=[alt.Tooltip("multiplier:Q", format=".4g"), alt.Tooltip("mean:Q", format=".3f"),
                                     alt.Tooltip("min:Q", format=".3f"), alt.Tooltip("max:Q", format=".3f")]),
            alt.Chart(pd.DataFrame([{"y": ref}])).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q"),
            alt.Chart(pd.DataFrame([{"x": 1}])).mark_rule(color=charts.ACCENT, strokeDash=[2, 2]).encode(x="x:Q"),
        ).properties(width=220, height=170))
    curves = pd.DataFrame([{"step": h["step"], "accuracy": h["accuracy"], "seed": seed, "training": name}
                           for name, runs in (("÷ √8 (standard)", scaled), ("no scaling", unscaled))
                           for seed, r in runs.items() for h in r.history])  # fmt: skip
    names = ["÷ √8 (standard)", "no scaling"]
    training_view = alt.Chart(curves).mark_line(opacity=0.8).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("accuracy:Q", title="accuracy"),
        color=alt.Color("training:N", scale=charts.series_scale(names), title="scores"),
        detail="seed:N", strokeDash=alt.StrokeDash("training:N", legend=None),
        tooltip=["training:N", "seed:N", "step:Q", alt.Tooltip("accuracy:Q", format=".3f")],
    ).properties(width=220, height=170)
    random_view = alt.Chart(spread).mark_line(point=True).encode(
        x=alt.X("d_head:Q", title="d (random vectors)", scale=alt.Scale(type="log", base=2)),
        y=alt.Y("std:Q", title="spread of the score (std)", scale=alt.Scale(type="log", base=2)),
        color=alt.Color("which:N", scale=charts.series_scale(["q·k", "q·k / √d"], [charts.SERIES[2], charts.SERIES[3]]), title=None),
        tooltip=["which:N", "d_head:Q", alt.Tooltip("std:Q", format=".2f")],
    ).properties(width=200, height=170)
    return alt.hconcat(*views, training_view, random_view, spacing=28).resolve_scale(color="independent")
