"""Projections: PCA, t-SNE and UMAP of the digits MLP's penultimate layer, from initialization to trained.

The pictures show seed 0; the scores are means over three seeds of the network (each projected
with its own seed), next to two nulls: a random linear projection and chance.
"""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer import charts
from explorer.jsonio import significant
from explorer.models.digits import load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.ensemble import MIN_SEEDS, claim_over_seeds, spread
from explorer.techniques.projection import (
    METHOD_LABELS,
    METHODS,
    align,
    knn_accuracy,
    normalize,
    penultimate_activations,
    project,
    random_projection,
    trust,
)

SEEDS = tuple(range(MIN_SEEDS))  # three trained networks for every number the page quotes


def per_seed_of(values) -> dict[int, float]:
    """{seed: value} from values listed in SEEDS order (what explorer.ensemble records)."""
    return dict(zip(SEEDS, (float(v) for v in values), strict=True))

TRUST_NEIGHBOURS = 10
KNN_NEIGHBOURS = 5
RANDOM_DRAWS = 5  # random projections averaged for the null
NULL, FULL = "random 2-D projection", "32-d space"
SCORE_SERIES = [*METHOD_LABELS.values(), FULL, NULL]
SCORE_COLORS = [charts.SERIES[0], charts.SERIES[1], charts.SERIES[2], charts.INK, charts.MUTED]


def scores_of(features: np.ndarray, planes: dict[str, np.ndarray], labels: np.ndarray, seed: int) -> dict[str, dict]:
    """Trustworthiness and k-NN accuracy of each picture, of the full space, and of random projections."""
    out = {FULL: {"knn": knn_accuracy(features, labels, KNN_NEIGHBOURS)}}
    for method, plane in planes.items():
        out[METHOD_LABELS[method]] = {"trust": trust(features, plane, TRUST_NEIGHBOURS), "knn": knn_accuracy(plane, labels, KNN_NEIGHBOURS)}
    nulls = [random_projection(features, seed=1000 * seed + d) for d in range(RANDOM_DRAWS)]
    out[NULL] = {"trust": float(np.mean([trust(features, p, TRUST_NEIGHBOURS) for p in nulls])),
                 "knn": float(np.mean([knn_accuracy(p, labels, KNN_NEIGHBOURS) for p in nulls]))}
    return out


@figure(
    "projections-digits",
    title="Three projections of the same 32 hidden units",
    caption=(
        "Each dot is one validation digit; its position is a 2-D projection (PCA, t-SNE or UMAP) of the 32 activations "
        "the MLP's output layer reads, seed 0. Slide or play through training, from the random initialization (step 0) "
        "to the trained network. Drag a rectangle in any view: the same digits stay coloured in the other two. Below: "
        f"trustworthiness ({TRUST_NEIGHBOURS} neighbours) and {KNN_NEIGHBOURS}-nearest-neighbour accuracy (5-fold) of "
        "each projection, mean over three seeds of the network (band: the lowest and highest seed), against the same "
        "scores in the full 32-dimensional space, for a random linear projection to 2-D, and chance (10%)."
    ),
    model="MLP 64-64-32-10 (ReLU) trained on scikit-learn digits by explorer/models/digits.py (healthy regime, Adam, seeds 0-2)",
)
def digits_projections(ctx: FigureContext) -> alt.TopLevelMixin:
    steps = ctx.pick(smoke=100, full=2000)
    shown = ctx.pick(smoke=(0, 50, 100), full=(0, 50, 100, 200, 500, 1000, 2000))
    split = load_digits_split()
    points = ctx.pick(smoke=120, full=len(split.y_val))
    x_val = torch.from_numpy(split.x_val[:points]).to(ctx.device)
    labels = split.y_val[:points]
    chance = 1 / len(np.unique(labels))
    iterations = ctx.pick(smoke={"tsne": 500, "umap": 30}, full={"tsne": None, "umap": None})  # t-SNE needs 250 past its early exaggeration

    embeddings = {}  # (step, method) -> plane, seed 0
    found: dict[tuple, list[float]] = {}  # (series, score, step) -> per seed
    accuracies = []
    for seed in SEEDS:
        trained = train_digits("mlp", "healthy", steps=steps, seed=seed, checkpoints=ctx.pick(smoke=4, full=40))
        accuracies.append(trained.history[-1]["val_accuracy"])
        for step in ctx.progress(shown, desc=f"seed {seed} checkpoints"):
            features = penultimate_activations(trained.model_at(step).to(ctx.device), x_val).cpu().numpy()  # (points, 32)
            planes = {m: normalize(project(features, m, seed=seed, iterations=iterations.get(m))) for m in METHODS}
            if seed == SEEDS[0]:
                embeddings.update({(step, m): plane for m, plane in planes.items()})
            for series, values in scores_of(features, planes, labels, seed).items():
                for score, value in values.items():
                    found.setdefault((series, score, step), []).append(value)
    for step in shown[:-1]:  # keep each method's picture in the pose it has at the end of training
        for method in METHODS:
            embeddings[step, method] = align(embeddings[step, method], embeddings[shown[-1], method])

    keys = {**{label: m for m, label in METHOD_LABELS.items()}, FULL: "full", NULL: "random"}
    score_rows = []
    for (series, score, step), values in found.items():
        when = {shown[0]: "init", shown[-1]: "trained"}.get(step)
        if when:
            claim_over_seeds(ctx, f"{keys[series]}_{score}_{when}", per_seed_of(values))
        score_rows.append({**spread(per_seed_of(values)), "series": series, "score": score, "step": step})
    pca_trust = {step: float(np.mean(found[METHOD_LABELS["pca"], "trust", step])) for step in shown}
    peak = max(pca_trust, key=pca_trust.get)
    claim_over_seeds(ctx, "pca_trust_peak", per_seed_of(found[METHOD_LABELS["pca"], "trust", peak]))
    ctx.claim("pca_trust_peak_step", peak)
    claim_over_seeds(ctx, "val_accuracy", per_seed_of(accuracies))
    ctx.claim("points", points)
    ctx.claim("units", int(features.shape[1]))
    ctx.claim("trust_neighbours", TRUST_NEIGHBOURS)
    ctx.claim("knn_neighbours", KNN_NEIGHBOURS)
    ctx.claim("chance", chance)
    ctx.claim("trained_step", shown[-1])
    ctx.claim("random_draws", RANDOM_DRAWS)
    ctx.claim("seeds", len(SEEDS))

    rows = []
    for step in shown:
        columns = {f"{m[0]}{axis}": significant(embeddings[step, m][:, j]) for m in METHODS for j, axis in enumerate("xy")}
        rows += [{"step": step, "i": i, "d": int(labels[i]), **{name: values[i] for name, values in columns.items()}} for i in range(points)]

    panel = charts.Panel()
    step = panel.steps("step", shown)
    brushes = {m: alt.selection_interval(name=f"brush_{m}", encodings=["x", "y"]) for m in METHODS}
    chosen = brushes["pca"] & brushes["tsne"] & brushes["umap"]
    base = alt.Chart(pd.DataFrame(rows)).transform_filter(f"datum.step == {step.name}")
    digit_color = alt.Color("d:N", title="digit", scale=charts.series_scale(list(range(10))))
    views = []
    for method, brush in brushes.items():
        axis = alt.Scale(domain=[-2.4, 2.4], nice=False)
        views.append(
            base.mark_circle(size=16, opacity=0.85, clip=True)
            .encode(
                x=alt.X(f"{method[0]}x:Q", axis=None, scale=axis),
                y=alt.Y(f"{method[0]}y:Q", axis=None, scale=axis),
                color=alt.when(chosen).then(digit_color).otherwise(alt.value(charts.FAINT)),
                tooltip=[alt.Tooltip("d:N", title="digit"), alt.Tooltip("i:Q", title="validation index")],
            )
            .add_params(brush)
            .properties(width=185, height=185, title=METHOD_LABELS[method])
        )

    x = alt.X("step:Q", title="training step", scale=alt.Scale(type="symlog", constant=50),
              axis=alt.Axis(values=list(shown), labelFlush=False))
    series_scale = charts.series_scale(SCORE_SERIES, SCORE_COLORS)
    series_color = alt.Color("series:N", title="picture", scale=series_scale)
    dash = alt.StrokeDash("series:N", scale=alt.Scale(domain=SCORE_SERIES, range=[[1, 0], [1, 0], [1, 0], [6, 3], [2, 2]]), title="picture")

    def score_view(score: str, title: str, y_title: str, domain) -> alt.LayerChart:
        frame = alt.Chart(pd.DataFrame([r for r in score_rows if r["score"] == score]))
        y = alt.Y("mean:Q", title=y_title, scale=alt.Scale(domain=domain))
        layers = [
            frame.mark_area(opacity=0.2).encode(x=x, y="min:Q", y2="max:Q", color=alt.Color("series:N", scale=series_scale, legend=None)),
            frame.mark_line(point=alt.OverlayMarkDef(size=20)).encode(x=x, y=y, color=series_color, strokeDash=dash),
            charts.hover_rule(frame, x="step", series="series", y="mean",
                              names=[s for s in SCORE_SERIES if score == "knn" or s != FULL], x_title="step"),
            charts.now_rule(step),
        ]
        if score == "knn":
            layers.append(alt.Chart(pd.DataFrame({"y": [chance], "t": [f"chance {chance:.0%}"]})).mark_rule(color=charts.MUTED, strokeDash=[2, 2])
                          .encode(y="y:Q"))
            layers.append(alt.Chart(pd.DataFrame({"y": [chance], "t": [f"chance {chance:.0%}"]}))
                          .mark_text(align="right", baseline="bottom", dy=-2, color=charts.MUTED, fontSize=charts.SMALL_SIZE)
                          .encode(y="y:Q", x=alt.value(240), text="t:N"))
        return alt.layer(*layers).properties(width=240, height=170, title=title)

    scores_row = alt.hconcat(
        score_view("trust", "What each projection keeps", "trustworthiness", [0.6, 1]),
        score_view("knn", "Can the classes be read off it?", f"{KNN_NEIGHBOURS}-NN accuracy", [0, 1]),
    )
    chart = alt.vconcat(alt.hconcat(*views), scores_row).resolve_scale(color="independent")
    return panel.finish(chart)
