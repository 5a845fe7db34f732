"""Grokking modular addition: what the stored run (explorer/longruns/grokking.py) did while it trained,
and the Fourier circuit it ended with (Nanda et al. 2023).

Everything reads the stored weights and the measures the runs kept; `make figures` never retrains.
Three seeds are stored; the curves and the spectra show each, the periodic picture seed 0 alone.
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import artifacts, charts
from explorer.ensemble import claim_over_seeds
from explorer.models import grokking as g
from explorer.pipeline import FigureContext, figure

SEEDS = (0, 1, 2)
MODEL_NOTE = ("grok-113-s0, -s1, -s2: one-layer transformer (d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm) "
              "trained full-batch on 30% of the pairs (a, b) to predict (a + b) mod 113, by explorer/longruns/grokking.py, "
              "seeds 0-2 (stored weights in models/)")  # fmt: skip
SEED0_NOTE = ("grok-113-s0: one-layer transformer (d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm) trained "
              "full-batch on 30% of the pairs (a, b) to predict (a + b) mod 113, by explorer/longruns/grokking.py, seed 0 "
              "(stored weights in models/)")  # fmt: skip
P = 113
TEST_DONE = 0.99  # "generalised": test accuracy above this


def stored_run(seed: int = 0) -> artifacts.Artifact:
    """A stored seed (literal names, so each figure that reads one hashes its provenance)."""
    return {0: lambda: artifacts.load("grok-113-s0"), 1: lambda: artifacts.load("grok-113-s1"),
            2: lambda: artifacts.load("grok-113-s2")}[seed]()  # fmt: skip


def phases(history: list[dict]) -> dict[str, int | None]:
    """Steps of the paper's landmarks: train accuracy first 100%, and test accuracy first above 99%
    (None: not within the run)."""
    memorised = next((h["step"] for h in history if h["train_acc"] >= 1.0), None)
    generalised = next((h["step"] for h in history if h["test_acc"] > TEST_DONE), None)
    return {"memorised": memorised, "generalised": generalised}


def seed_labels(marks: dict[int, dict]) -> list[str]:
    return [f"seed {s}: test > 99% at step {m['generalised']:,}" if m["generalised"] is not None else f"seed {s}: test never > 99%"
            for s, m in marks.items()]


@figure(
    "grokking-curves",
    title="Grokking: the test loss falls long after the training loss",
    caption=(
        "Full-batch training on 30% of the 12,769 sums (a + b) mod 113, for the seed the menu picks (3 seeds). Left: the "
        "loss on the training pairs and on the other 70% (log scale), and the restricted and excluded losses: the loss when "
        "the logits keep only their parts along cos and sin of w(a + b - c) at that seed's final key frequencies, and when "
        "they keep everything but those. Right: accuracy, and the sum of squared weights that weight decay wears down "
        "(dotted, right axis), from step 100 on. The dashed lines mark where training accuracy first reaches 100% and "
        "where test accuracy first passes 99% (if it does within the run)."
    ),
    model=MODEL_NOTE,
)
def grokking_curves(ctx: FigureContext) -> alt.Chart:
    runs = {s: stored_run(s).provenance["metrics"] for s in SEEDS}
    marks = {s: phases(m["history"]) for s, m in runs.items()}
    ctx.claim("seeds", len(SEEDS))
    ctx.claim("steps", int(runs[0]["history"][-1]["step"]))
    ctx.claim("chance_acc", 1 / P)
    claim_over_seeds(ctx, "memorised_step", {s: m["memorised"] for s, m in marks.items()})
    reached = {s: m["generalised"] for s, m in marks.items() if m["generalised"] is not None}
    ctx.claim("generalised_seeds", len(reached))
    for s in SEEDS:
        final = runs[s]["history"][-1]
        ctx.claim(f"final_test_acc_s{s}", final["test_acc"])
        if s in reached:
            ctx.claim(f"generalised_step_s{s}", reached[s])
    late = int(runs[0]["history"][-1]["step"]) - 1000  # a thousand steps before the end: still rising?
    ctx.claim("late_step", late)
    for s in SEEDS:
        ctx.claim(f"late_test_acc_s{s}", next(h["test_acc"] for h in runs[s]["history"] if h["step"] == late))
    ctx.claim("generalised_step_first", min(reached.values()))
    ctx.claim("generalised_step_last", max(reached.values()))
    per_seed: dict[str, dict[int, float]] = {}
    for s, m in runs.items():
        history, fourier = m["history"], m["fourier"]
        final = history[-1]
        at_memorised = next(h for h in history if h["step"] == marks[s]["memorised"])
        early = next(f for f in fourier if f["step"] >= marks[s]["memorised"] and f["step"] > 0)  # the first save after memorising
        values = {"final_train_loss": final["train_loss"], "final_test_loss": final["test_loss"], "final_test_acc": final["test_acc"],
                  "test_acc_when_memorised": at_memorised["test_acc"], "weight_norm_start": history[0]["weight_norm"],
                  "weight_norm_when_memorised": at_memorised["weight_norm"], "weight_norm_final": final["weight_norm"],
                  "early_step": early["step"], "early_restricted_loss": early["restricted_loss"],
                  "early_excluded_loss": early["excluded_loss"], "final_restricted_loss": fourier[-1]["restricted_loss"],
                  "final_excluded_loss": fourier[-1]["excluded_loss"]}
        for key, value in values.items():
            per_seed.setdefault(key, {})[s] = value
    for key, values in per_seed.items():
        claim_over_seeds(ctx, key, values)

    # drawn from the first log point on (step 100): a log axis has no step 0, and the measures are sparse before
    loss_rows, acc_rows, norm_rows, mark_rows = [], [], [], []
    for s, m in runs.items():
        logged = [h for h in m["history"] if h["step"] > 0]
        loss_rows += [{"seed": s, "step": h["step"], "series": split, "value": h[f"{split}_loss"]} for h in logged for split in ("train", "test")]
        loss_rows += [{"seed": s, "step": f["step"], "series": kind, "value": f[f"{kind}_loss"]}
                      for f in m["fourier"] if f["step"] > 0 for kind in ("restricted", "excluded")]
        acc_rows += [{"seed": s, "step": h["step"], "series": f"{split} accuracy", "value": h[f"{split}_acc"]} for h in logged for split in ("train", "test")]
        norm_rows += [{"seed": s, "step": h["step"], "value": h["weight_norm"]} for h in logged]
        mark_rows += [{"seed": s, "step": marks[s]["memorised"], "what": "train 100%"}]
        if marks[s]["generalised"] is not None:
            mark_rows += [{"seed": s, "step": marks[s]["generalised"], "what": "test > 99%"}]
    panel = charts.Panel()
    seed = panel.select("seed", list(SEEDS), label="Training run", labels=seed_labels(marks))
    pick = f"datum.seed == {seed.name}"
    last = runs[0]["history"][-1]["step"]
    x = alt.X("step:Q", scale=alt.Scale(type="log", domain=(100, last)), title="training step (log)")
    loss_names = ["train", "test", "restricted", "excluded"]
    losses = alt.Chart(alt.Data(values=loss_rows)).transform_filter(pick).mark_line().encode(
        x=x, y=alt.Y("value:Q", scale=alt.Scale(type="log"), title="loss (log)", axis=alt.Axis(format=".0e")),
        color=alt.Color("series:N", scale=charts.series_scale(loss_names), title=None, legend=alt.Legend(orient="bottom")),
        strokeDash=alt.condition("datum.series == 'restricted' || datum.series == 'excluded'", alt.value([4, 3]), alt.value([1, 0])),
    )
    rules = alt.Chart(alt.Data(values=mark_rows)).transform_filter(pick).mark_rule(color=charts.MUTED, strokeDash=[3, 3]).encode(
        x="step:Q", tooltip=["what:N", alt.Tooltip("step:Q", format=",")])
    hover = charts.hover_rule(alt.Chart(alt.Data(values=loss_rows)).transform_filter(pick), x="step", series="series", y="value",
                              names=loss_names, x_title="step", name="loss_hover")
    left = alt.layer(losses, rules, hover).properties(width=300, height=240)
    accuracy = alt.Chart(alt.Data(values=acc_rows)).transform_filter(pick).mark_line().encode(
        x=x, y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=(0, 1))),
        color=alt.Color("series:N", scale=charts.series_scale(["train accuracy", "test accuracy"]), title=None, legend=alt.Legend(orient="bottom")),
    )
    norm = alt.Chart(alt.Data(values=norm_rows)).transform_filter(pick).mark_line(color=charts.MUTED, strokeDash=[2, 2]).encode(
        x=x, y=alt.Y("value:Q", title="sum of squared weights", axis=alt.Axis(orient="right")))
    right = alt.layer(accuracy, rules, norm).resolve_scale(y="independent").properties(width=300, height=240)
    return panel.finish(alt.hconcat(left, right).resolve_scale(color="independent"))


@figure(
    "grokking-fourier",
    title="The embedding settles on a few frequencies, different ones in each seed",
    caption=(
        "How much of the 113 number embeddings lies at each frequency k of the discrete Fourier basis (cos and sin of "
        "2 pi k x / 113 together), for the seed the menu picks (3 seeds) at the training step the slider picks (saved "
        "every 1,000 steps). That seed's final key frequencies, those with at least half the largest norm, are marked. At "
        "step 0 the random embedding spreads over every frequency."
    ),
    model=MODEL_NOTE,
)
def grokking_fourier(ctx: FigureContext) -> alt.Chart:
    rows, labels, shares, key_sets = [], [], {}, []
    for s in SEEDS:
        metrics = stored_run(s).provenance["metrics"]
        keys = [int(k) for k in metrics["key_frequencies"]]
        key_sets.append(set(keys))
        ctx.claim(f"key_frequencies_s{s}", ", ".join(str(k) for k in keys))
        labels.append(f"seed {s}: k = {', '.join(str(k) for k in keys)}")
        fourier = metrics["fourier"]

        def key_share(norms: list[float], keys: list[int] = keys) -> float:  # share of the embedding's squared norm at the keys
            sq = np.square(norms)
            return float(sq[[k - 1 for k in keys]].sum() / sq.sum())

        values = {"key_frequency_count": len(keys), "key_norm_share_final": key_share(fourier[-1]["embedding_norms"]),
                  "key_norm_share_start": key_share(fourier[0]["embedding_norms"]),
                  "key_norm_share_uniform": len(keys) / len(fourier[0]["embedding_norms"]),  # the null: spread evenly
                  "logit_key_share_final": fourier[-1]["key_share"], "logit_key_share_start": fourier[0]["key_share"]}
        for key, value in values.items():
            shares.setdefault(key, {})[s] = value
        rows += [{"seed": s, "step": int(m["step"]), "k": k + 1, "norm": round(v, 4), "key": (k + 1) in keys}
                 for m in fourier for k, v in enumerate(m["embedding_norms"])]
        steps = [int(m["step"]) for m in fourier]
    for key, values in shares.items():
        claim_over_seeds(ctx, key, values)
    ctx.claim("shared_key_frequencies", len(set.intersection(*key_sets)))
    ctx.claim("distinct_key_frequencies", len(set.union(*key_sets)))
    panel = charts.Panel()
    seed = panel.select("seed", list(SEEDS), label="Training run", labels=labels)
    step = panel.steps("step", steps, value=steps[-1])
    bars = alt.Chart(alt.Data(values=rows)).transform_filter(f"datum.seed == {seed.name} && datum.step == {step.name}").mark_bar().encode(
        x=alt.X("k:O", title="frequency k", axis=alt.Axis(values=list(range(0, 57, 8)), labelAngle=0)),
        y=alt.Y("norm:Q", title="embedding norm at k"),
        color=alt.condition("datum.key", alt.value(charts.ACCENT), alt.value(charts.FAINT)),
        tooltip=[alt.Tooltip("k:O", title="frequency"), alt.Tooltip("norm:Q", format=".3f"), alt.Tooltip("step:Q", format=","),
                 alt.Tooltip("key:N", title="a key frequency of this seed")],
    ).properties(width="container", height=220)
    return panel.finish(bars)


@figure(
    "grokking-periodic",
    title="Attention and neurons are periodic in a and b",
    caption=(
        "For every input (a, b): left, the attention the '=' position pays to a in head 0; right, the activation of the "
        "MLP neuron whose activations vary most among those whose main frequency this sampling can show, at the training step the slider picks (stored steps only), every third a and b. The stripes "
        "of the trained model are waves in a and b at its key frequencies; at step 0 there are none. One training run (seed 0)."
    ),
    model=SEED0_NOTE,
)
def grokking_periodic(ctx: FigureContext) -> alt.Chart:
    run = stored_run(0)
    cfg = g.GrokConfig()
    model = g.ModularAdditionTransformer(cfg)
    tokens = g.all_pairs(P)
    steps = sorted(run.checkpoints)
    stride = 3  # every third a and b: 38 x 38 cells a panel keep the page light
    keep = torch.arange(0, P, stride)
    rows = []
    model.load_state_dict({k: v.float() for k, v in run.weights.items()})
    with torch.no_grad():
        final_post = model.run(tokens)["blocks.0.mlp.hook_post"]
    # the neuron to draw: the most variable one among those whose main frequency in a the every-`stride`
    # sampling shows without aliasing (k * stride below p / 2)
    grid = final_post.T.reshape(-1, P, P).double()  # (neuron, a, b)
    power = torch.fft.rfft(grid - grid.mean(1, keepdim=True), dim=1).abs().pow(2).mean(-1)[:, 1:]  # (neuron, k = 1 ..)
    main = power.argmax(-1) + 1
    variance = final_post.var(0).double().masked_fill(main * stride >= P / 2, -1.0)
    neuron = int(variance.argmax())
    ctx.claim("neuron", neuron)
    ctx.claim("neuron_frequency", int(main[neuron]))
    for step in steps:
        model.load_state_dict({k: v.float() for k, v in run.checkpoints[step].items()})
        with torch.no_grad():
            cache = model.run(tokens)
        attention = cache["blocks.0.attn.hook_pattern"][:, 0, 0].view(P, P)  # head 0, '=' attending to a
        post = cache["blocks.0.mlp.hook_post"][:, neuron].view(P, P)
        post = post / post.abs().max().clamp(min=1e-9)
        for i in keep.tolist():
            for j in keep.tolist():
                rows.append({"step": step, "a": i, "b": j, "attn": round(float(attention[i, j]), 2), "neuron": round(float(post[i, j]), 2)})
    panel = charts.Panel()
    step = panel.steps("step", steps, value=steps[-1])
    base = alt.Chart(alt.Data(values=rows)).transform_filter(f"datum.step == {step.name}")
    axis = dict(axis=alt.Axis(values=list(range(0, P, 3 * 6)), labelAngle=0))
    attn = base.mark_rect().encode(
        x=alt.X("a:O", title="a", **axis), y=alt.Y("b:O", title="b", **axis),
        color=alt.Color("attn:Q", scale=charts.sequential((0, 1)), title="attention to a"),
        tooltip=["a:O", "b:O", alt.Tooltip("attn:Q", format=".2f")]).properties(width=228, height=228)
    neu = base.mark_rect().encode(
        x=alt.X("a:O", title="a", **axis), y=alt.Y("b:O", title="b", **axis),
        color=alt.Color("neuron:Q", scale=charts.diverging(1.0), title="activation / max"),
        tooltip=["a:O", "b:O", alt.Tooltip("neuron:Q", format=".2f")]).properties(width=228, height=228)
    return panel.finish(alt.hconcat(attn, neu).resolve_scale(color="independent"))
