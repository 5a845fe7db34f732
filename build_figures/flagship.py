"""The flagship's model card: its corpus, and its training film on text over three seeds.

Everything here reads the stored long runs (models/flagship-bytes-2l-s*/, trained by
explorer/longruns/flagship.py); `make figures` never retrains them. The film was measured while
training; the producer rescores the final weights with today's detectors and records both, so a
change of detector that would change the film shows up as a claim that moved (tests/test_flagship.py).
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import artifacts, charts
from explorer.data import code_corpus
from explorer.ensemble import claim_over_seeds
from explorer.models import flagship
from explorer.pipeline import FigureContext, figure
from explorer.techniques import flagship_film, heads, probes

MODEL_NOTE = ("flagship-bytes-2l: byte-level 2-layer attention-only transformer (d_model 128, 4 heads, context 256) "
              "trained on Python source by explorer/longruns/flagship.py, seeds 0-2 (stored weights in models/)")  # fmt: skip
WINDOW = (0.2, 0.8)  # the phase change: from 20% to 80% of the best induction score's rise
TOP_SOURCES = 12  # corpus sources drawn by name; the rest are summed as "other packages"


def stored_runs() -> dict[int, artifacts.Artifact]:
    """The three seeds' artifacts (literal names, so the pipeline hashes each one's provenance)."""
    return {0: artifacts.load("flagship-bytes-2l-s0"), 1: artifacts.load("flagship-bytes-2l-s1"), 2: artifacts.load("flagship-bytes-2l-s2")}


def phase_window(bytes_seen: list[int], values: list[float]) -> tuple[int, int]:
    """Bytes at which `values` first covers 20% and 80% of its rise from the first frame to its maximum."""
    start, top = values[0], max(values)
    first = lambda frac: next(b for b, v in zip(bytes_seen, values, strict=True) if v >= start + frac * (top - start))  # noqa: E731
    return first(WINDOW[0]), first(WINDOW[1])


def int8(value: torch.Tensor) -> tuple[torch.Tensor, float]:
    """A tensor rounded to int8 with one scale for the whole tensor (max |w| / 127): (values, scale)."""
    scale = float(value.float().abs().max() / 127) or 1.0
    return (value.float() / scale).round().clamp(-127, 127).to(torch.int8), scale


def quantized(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as the browser runs them: each tensor through int8, back in float."""
    return {k: q.float() * scale for k, (q, scale) in ((k, int8(v)) for k, v in weights.items())}


def live_payload(weights: dict[str, torch.Tensor]) -> dict:
    """The weights for the page's live model (docs/assets/javascripts/explorer/live.js): int8 per tensor, base64."""
    import base64

    tensors = {}
    for key, value in weights.items():
        q, scale = int8(value)
        tensors[key] = {"shape": list(value.shape), "scale": scale, "q": base64.b64encode(q.numpy().tobytes()).decode()}
    arch = {k: flagship.ARCH[k] for k in ("n_layers", "d_model", "n_heads", "n_ctx", "d_vocab")}
    return {"model": flagship.name(0), "arch": arch, "tensors": tensors}


heldout_rows = flagship.heldout_rows  # the film's held-out rows, rebuilt exactly as the training run built them


def training_loss(logits: torch.Tensor, rows: torch.Tensor) -> float:
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1)).item()


@torch.no_grad()
def control_induction(weights: dict, rows: int) -> float:
    """The null for the induction score: the best head's attention to where an induction head would look
    (the key half a probe back, plus one) when the second half is fresh random characters, not a repeat.
    (Scoring the fresh half with the usual detector is no null: characters recur by chance, and an
    induction head rightly follows those one-character matches.)"""
    model = flagship.lens_model(weights)
    repeated, half = flagship_film.probe_rows(rows)
    fresh = probes.repeated_random_tokens(rows, half, flagship.PRINTABLE, torch.Generator().manual_seed(probes.PROBE_SEED + 1))
    control = torch.cat([repeated[:, :half], fresh[:, :half]], dim=1)  # (rows, 2 half)
    target = torch.zeros(2 * half, 2 * half)
    queries = torch.arange(half, 2 * half)
    target[queries, queries - half + 1] = 1.0  # (q, k): the repeat's "next token" position, had there been a repeat
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(control, names_filter=lambda n: n in names)
    scores = [heads.attention_scores(cache[name][row], target) for name in names for row in range(rows)]  # each (head,)
    by_head = torch.stack(scores).reshape(len(names), rows, -1).mean(1)  # (layer, head)
    return float(by_head.max())


@figure(
    "flagship-film",
    title="Induction heads form on real code, in every seed",
    caption=(
        "Three training runs of the flagship (seeds 0-2) on Python source, measured every 200 steps (1.6M bytes). "
        "Left: the best head's previous-token score (attention to the byte just before, on held-out code) and "
        "induction score (attention, in the second copy of 48 random printable characters, to the character after the "
        "earlier occurrence), with uniform attention's induction score as chance. Right: held-out loss in nats per byte, "
        "and the in-context-learning score (loss at positions 224-255 minus loss at positions 32-63; negative when later "
        "bytes are easier). The band is the chosen seed's phase change (20% to 80% of its induction score's rise)."
    ),
    model=MODEL_NOTE,
)
def flagship_film_figure(ctx: FigureContext) -> alt.TopLevelMixin:
    runs = stored_runs()
    config = runs[0].provenance["config"]
    films = {seed: run.provenance["metrics"]["film"] for seed, run in runs.items()}
    rows = [{"seed": seed, "mbytes": f["bytes"] / 1e6, "step": f["step"], **{k: f[k] for k in
             ("previous_token_max", "induction_max", "heldout_loss", "icl_score")}} for seed, frames in films.items() for f in frames]  # fmt: skip
    frames = pd.DataFrame(rows)
    _, half = flagship_film.probe_rows(1)
    chance = float(np.mean([1.0 / (q + 1) for q in range(half, 2 * half)]))  # uniform attention over the keys a query sees

    windows = {seed: phase_window([f["bytes"] for f in fs], [f["induction_max"] for f in fs]) for seed, fs in films.items()}
    lasts = {seed: fs[-1] for seed, fs in films.items()}
    firsts = {seed: fs[0] for seed, fs in films.items()}
    claim_over_seeds(ctx, "induction_final", {s: f["induction_max"] for s, f in lasts.items()})
    claim_over_seeds(ctx, "previous_token_final", {s: f["previous_token_max"] for s, f in lasts.items()})
    claim_over_seeds(ctx, "induction_untrained", {s: f["induction_max"] for s, f in firsts.items()})
    claim_over_seeds(ctx, "heldout_loss_final", {s: f["heldout_loss"] for s, f in lasts.items()})
    claim_over_seeds(ctx, "heldout_loss_start", {s: f["heldout_loss"] for s, f in firsts.items()})
    claim_over_seeds(ctx, "icl_final", {s: f["icl_score"] for s, f in lasts.items()})
    claim_over_seeds(ctx, "icl_start", {s: f["icl_score"] for s, f in firsts.items()})
    claim_over_seeds(ctx, "window_start_mbytes", {s: w[0] / 1e6 for s, w in windows.items()})
    claim_over_seeds(ctx, "window_end_mbytes", {s: w[1] / 1e6 for s, w in windows.items()})
    claim_over_seeds(ctx, "window_fraction", {s: (w[1] - w[0]) / films[s][-1]["bytes"] for s, w in windows.items()})
    claim_over_seeds(ctx, "induction_control", {s: control_induction(run.weights, config["probe_rows"] if ctx.scale == "full" else 8)
                                                for s, run in runs.items()})  # fmt: skip
    claim_over_seeds(ctx, "layer1_heads_over_0_3_induction", {s: sum(v > 0.3 for v in f["induction"][1]) for s, f in lasts.items()})
    claim_over_seeds(ctx, "layer0_heads_over_0_2_previous", {s: sum(v > 0.2 for v in f["previous_token"][0]) for s, f in lasts.items()})
    fifth = {s: min(fs, key=lambda f: abs(f["step"] - 0.8 * fs[-1]["step"])) for s, fs in films.items()}
    claim_over_seeds(ctx, "induction_gain_last_fifth", {s: lasts[s]["induction_max"] - fifth[s]["induction_max"] for s in films})
    ctx.claim("chance_induction", chance)
    ctx.claim("induction_heads_in_layer_1", sum(f["induction_head"].startswith("L1") for f in lasts.values()))
    ctx.claim("previous_token_heads_in_layer_0", sum(f["previous_token_head"].startswith("L0") for f in lasts.values()))
    ctx.claim("seeds", len(runs))
    ctx.claim("steps", config["steps"])
    ctx.claim("batch", config["batch"])
    ctx.claim("n_ctx", config["arch"]["n_ctx"])
    ctx.claim("mbytes_seen", runs[0].provenance["tokens"] / 1e6)
    ctx.claim("half", half)
    ctx.claim("tokens_per_s", min(run.provenance["metrics"]["tokens_per_s"] for run in runs.values()))
    ctx.claim("threads", runs[0].provenance["metrics"]["threads"])
    ctx.claim("parameters", sum(v.numel() for v in runs[0].weights.values()))
    # today's detectors on the stored final weights (seed 0) against the film's last frame, measured in training
    rescored = flagship_film.film_frame(runs[0].weights, heldout_rows(config["eval_rows"]), config["probe_rows"])
    ctx.claim("rescored_induction_final_s0", rescored["induction_max"])
    ctx.claim("film_induction_final_s0", lasts[0]["induction_max"])
    ctx.claim("rescored_heldout_loss_final_s0", rescored["heldout_loss"])
    ctx.claim("film_heldout_loss_final_s0", lasts[0]["heldout_loss"])
    # the page's live model: seed 0 in int8, and how far its predictions are from the float weights'
    payload = live_payload(runs[0].weights)
    ctx.asset("live/weights.json", payload)
    ctx.claim("live_kbytes", sum(len(t["q"]) for t in payload["tensors"].values()) / 1e3)
    ctx.claim("induction_head_s0", lasts[0]["induction_head"])
    ctx.claim("previous_token_head_s0", lasts[0]["previous_token_head"])
    from explorer.models.reference import PlainTransformer

    full, small = PlainTransformer(flagship.ARCH), PlainTransformer(flagship.ARCH)
    full.load_state_dict({k: v.float() for k, v in runs[0].weights.items()})
    small.load_state_dict(quantized(runs[0].weights))
    rows = heldout_rows(8)
    with torch.no_grad():
        exact, rounded = full(rows), small(rows)  # (rows, pos, 256)
    ctx.claim("live_top1_agreement", (exact.argmax(-1) == rounded.argmax(-1)).float().mean().item())
    ctx.claim("live_loss_gap", abs(training_loss(rounded, rows) - training_loss(exact, rows)))

    panel = charts.Panel()
    seed = panel.select("seed", list(runs), label="Phase band of seed", radio=True)
    kinds = {"previous_token_max": "previous-token (best head)", "induction_max": "induction (best head)"}
    long = frames.melt(id_vars=["seed", "mbytes"], value_vars=list(kinds), var_name="kind", value_name="score")
    long["kind"] = long.kind.map(kinds)
    long["run"] = "seed " + long.seed.astype(str)
    band_rows = pd.DataFrame([{"seed": s, "start": w[0] / 1e6, "end": w[1] / 1e6} for s, w in windows.items()])
    x = alt.X("mbytes:Q", title="bytes seen (millions)")
    band = (alt.Chart(band_rows).transform_filter(f"datum.seed == {seed.name}")
            .mark_rect(color=charts.FAINT, opacity=0.35).encode(x="start:Q", x2="end:Q"))  # fmt: skip
    score_lines = alt.Chart(long).mark_line(strokeWidth=1.5).encode(
        x=x, y=alt.Y("score:Q", title="score", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", scale=charts.series_scale(list(kinds.values())), title=None, legend=alt.Legend(orient="bottom")),
        detail="run:N",
        opacity=alt.condition(f"datum.seed == {seed.name}", alt.value(1.0), alt.value(0.35)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("kind:N"), alt.Tooltip("mbytes:Q", title="M bytes", format=".1f"),
                 alt.Tooltip("score:Q", format=".2f")])  # fmt: skip
    chance_rule = alt.Chart(pd.DataFrame([{"y": chance, "label": "chance (uniform attention)"}])).mark_rule(
        color=charts.MUTED, strokeDash=[4, 3]).encode(y="y:Q", tooltip=[alt.Tooltip("label:N"), alt.Tooltip("y:Q", format=".3f")])
    scores_view = alt.layer(band, score_lines, chance_rule).properties(width=300, height=240, title="Head scores")

    losses = frames.melt(id_vars=["seed", "mbytes"], value_vars=["heldout_loss", "icl_score"], var_name="measure", value_name="value")
    losses["measure"] = losses.measure.map({"heldout_loss": "held-out loss (nats/byte)", "icl_score": "in-context-learning score"})
    losses["run"] = "seed " + losses.seed.astype(str)
    loss_lines = alt.Chart(losses).mark_line(strokeWidth=1.5).encode(
        x=x, y=alt.Y("value:Q", title="nats per byte"),
        color=alt.Color("measure:N", scale=charts.series_scale(sorted(losses.measure.unique())), title=None,
                        legend=alt.Legend(orient="bottom")),
        detail="run:N",
        opacity=alt.condition(f"datum.seed == {seed.name}", alt.value(1.0), alt.value(0.35)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("measure:N"), alt.Tooltip("mbytes:Q", title="M bytes", format=".1f"),
                 alt.Tooltip("value:Q", format=".3f")])  # fmt: skip
    zero = alt.Chart(pd.DataFrame([{"y": 0}])).mark_rule(color=charts.RULE).encode(y="y:Q")
    loss_view = alt.layer(band, zero, loss_lines).properties(width=300, height=240, title="Loss and in-context learning")
    return panel.finish(alt.hconcat(scores_view, loss_view).resolve_scale(color="independent"))


@figure(
    "flagship-corpus",
    title="What the flagship reads: Python source from the pinned environment",
    caption=(
        "Bytes of .py source per origin (the standard library, then each installed package), split by file into "
        "training and held-out text (5% of files, chosen by a hash of the file's name). The packaging tools (pip, "
        "setuptools, wheel) are left out: their versions float. Hover a bar for its files and bytes."
    ),
    model="none: the corpus itself (explorer/data/code_corpus.py)",
)
def flagship_corpus(ctx: FigureContext) -> alt.Chart:
    table = code_corpus.composition()
    rows = sorted(({"source": k, **v} for k, v in table.items()), key=lambda r: -(r["train_bytes"] + r["heldout_bytes"]))
    shown, rest = rows[:TOP_SOURCES], rows[TOP_SOURCES:]
    other = {"source": f"{len(rest)} other packages", **{k: sum(r[k] for r in rest) for k in ("files", "train_bytes", "heldout_bytes")}}
    data = pd.DataFrame(shown + [other])
    train_bytes, heldout_bytes = sum(r["train_bytes"] for r in rows), sum(r["heldout_bytes"] for r in rows)
    ctx.claim("train_mbytes", train_bytes / 1e6)
    ctx.claim("heldout_mbytes", heldout_bytes / 1e6)
    ctx.claim("files", sum(r["files"] for r in rows))
    ctx.claim("sources", len(rows))
    ctx.claim("stdlib_share", table["stdlib"]["train_bytes"] / train_bytes)
    ctx.claim("largest_source", rows[0]["source"])
    ctx.claim("largest_share", rows[0]["train_bytes"] / train_bytes)
    ctx.claim("heldout_share_files", len(code_corpus.split_files("heldout")) / sum(r["files"] for r in rows))
    long = data.melt(id_vars=["source", "files"], value_vars=["train_bytes", "heldout_bytes"], var_name="split", value_name="bytes")
    long["split"] = long.split.map({"train_bytes": "training", "heldout_bytes": "held out"})
    long["mbytes"] = (long.bytes / 1e6).round(3)
    order = list(data.source)
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("source:N", sort=order, title=None),
        x=alt.X("mbytes:Q", title="megabytes of source", stack=True),
        color=alt.Color("split:N", scale=charts.series_scale(["training", "held out"]), title=None, legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("source:N"), alt.Tooltip("split:N"), alt.Tooltip("mbytes:Q", title="MB", format=".2f"),
                 alt.Tooltip("files:Q", title="files (both splits)")],
    ).properties(width="container", height=320)  # fmt: skip


@figure(
    "flagship-gelu",
    title="The same recipe with MLPs: a GELU flagship beside the attention-only one",
    caption=(
        "The training film of the byte-level 2-layer transformer with GELU MLPs (d_mlp 512; one training run, seed 0) "
        "beside the three attention-only runs (faint), on the same corpus, batches and probe. Left: the best head's "
        "induction and previous-token scores; right: held-out loss in nats per byte. Hover a line for its values."
    ),
    model=("flagship-bytes-gelu-2l-s0 (one seed, trained by explorer/longruns/flagship_gelu.py) and flagship-bytes-2l "
           "seeds 0-2 (explorer/longruns/flagship.py)"),
)
def flagship_gelu_figure(ctx: FigureContext) -> alt.TopLevelMixin:
    gelu = artifacts.load("flagship-bytes-gelu-2l-s0")
    runs = stored_runs()
    films = {f"attention-only, seed {s}": run.provenance["metrics"]["film"] for s, run in runs.items()}
    films["GELU MLPs, seed 0"] = gelu.provenance["metrics"]["film"]
    frames = pd.DataFrame([{"run": name, "mbytes": f["bytes"] / 1e6, "induction": f["induction_max"], "previous token": f["previous_token_max"],
                            "held-out loss": f["heldout_loss"]} for name, fs in films.items() for f in fs])  # fmt: skip
    frames["kind"] = np.where(frames.run.str.startswith("GELU"), "GELU MLPs", "attention-only")
    g_film, g_last = gelu.provenance["metrics"]["film"], gelu.provenance["metrics"]["film"][-1]
    ctx.claim("gelu_induction_final", g_last["induction_max"])
    ctx.claim("gelu_previous_token_final", g_last["previous_token_max"])
    ctx.claim("gelu_heldout_loss_final", g_last["heldout_loss"])
    ctx.claim("gelu_icl_final", g_last["icl_score"])
    ctx.claim("gelu_induction_head", g_last["induction_head"])
    ctx.claim("gelu_previous_token_head", g_last["previous_token_head"])
    ctx.claim("gelu_induction_untrained", g_film[0]["induction_max"])
    start, end = phase_window([f["bytes"] for f in g_film], [f["induction_max"] for f in g_film])
    ctx.claim("gelu_window_start_mbytes", start / 1e6)
    ctx.claim("gelu_window_end_mbytes", end / 1e6)
    ctx.claim("gelu_tokens_per_s", gelu.provenance["metrics"]["tokens_per_s"])
    ctx.claim("gelu_threads", gelu.provenance["metrics"]["threads"])
    ctx.claim("gelu_parameters", sum(v.numel() for v in gelu.weights.values()))
    attn_last = [run.provenance["metrics"]["film"][-1] for run in runs.values()]
    ctx.claim("attn_only_heldout_loss_best", min(f["heldout_loss"] for f in attn_last))
    ctx.claim("attn_only_induction_lowest", min(f["induction_max"] for f in attn_last))
    ctx.claim("attn_only_induction_highest", max(f["induction_max"] for f in attn_last))
    rescored = flagship_film.film_frame(gelu.weights, heldout_rows(gelu.provenance["config"]["eval_rows"]), gelu.provenance["config"]["probe_rows"])
    ctx.claim("gelu_rescored_induction_final", rescored["induction_max"])

    x = alt.X("mbytes:Q", title="bytes seen (millions)")
    tips = [alt.Tooltip("run:N"), alt.Tooltip("mbytes:Q", title="M bytes", format=".1f")]
    kinds = ["attention-only", "GELU MLPs"]
    long = frames.melt(id_vars=["run", "kind", "mbytes"], value_vars=["induction", "previous token"], var_name="score", value_name="value")
    scores = alt.Chart(long).mark_line(strokeWidth=1.6).encode(
        x=x, y=alt.Y("value:Q", title="best head's score", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", scale=charts.series_scale(kinds), title=None, legend=alt.Legend(orient="bottom")),
        strokeDash=alt.StrokeDash("score:N", title=None, legend=alt.Legend(orient="bottom")),
        detail="run:N", opacity=alt.condition("datum.kind == 'GELU MLPs'", alt.value(1.0), alt.value(0.4)),
        tooltip=[*tips, alt.Tooltip("score:N"), alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=300, height=240, title="Head scores")
    loss = alt.Chart(frames[frames.mbytes > 0]).mark_line(strokeWidth=1.6).encode(
        x=x, y=alt.Y("held-out loss:Q", title="held-out loss (nats/byte)", scale=alt.Scale(zero=False)),
        color=alt.Color("kind:N", scale=charts.series_scale(kinds), title=None, legend=None),
        detail="run:N", opacity=alt.condition("datum.kind == 'GELU MLPs'", alt.value(1.0), alt.value(0.4)),
        tooltip=[*tips, alt.Tooltip("held-out loss:Q", format=".3f")],
    ).properties(width=300, height=240, title="Held-out loss (from the first frame after step 0)")
    return alt.hconcat(scores, loss).resolve_scale(color="shared")
