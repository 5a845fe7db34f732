"""Projections: PCA, t-SNE and UMAP of the digits MLP's penultimate layer, from initialization to trained."""

import altair as alt
import numpy as np
import pandas as pd
import torch

from explorer.jsonio import significant
from explorer.models.digits import load_digits_split, train_digits
from explorer.pipeline import FigureContext, figure
from explorer.techniques.projection import METHOD_LABELS, METHODS, align, knn_accuracy, normalize, penultimate_activations, project, trust

TRUST_NEIGHBOURS = 10
KNN_NEIGHBOURS = 5


@figure(
    "projections-digits",
    title="Three projections of the same 32 hidden units",
    caption=(
        "Each dot is one validation digit; its position is a 2-D projection (PCA, t-SNE or UMAP) of the 32 activations "
        "the MLP's output layer reads. Slide through training checkpoints, from the random initialization to the trained "
        "network. Drag a rectangle in any view: the same digits stay coloured in the other two. Below: trustworthiness "
        f"({TRUST_NEIGHBOURS} neighbours) and {KNN_NEIGHBOURS}-nearest-neighbour accuracy (5-fold) of each projection; the "
        "dashed line is the k-NN accuracy in the full 32-dimensional space."
    ),
    model="MLP 64-64-32-10 (ReLU) trained on scikit-learn digits by explorer/models/digits.py (healthy regime, Adam)",
)
def digits_projections(ctx: FigureContext) -> alt.Chart:
    steps = ctx.pick(smoke=100, full=2000)
    trained = train_digits("mlp", "healthy", steps=steps, seed=0, checkpoints=ctx.pick(smoke=4, full=40))
    shown = ctx.pick(smoke=(0, 100), full=(0, 50, 100, 200, 500, 2000))
    split = load_digits_split()
    points = ctx.pick(smoke=120, full=len(split.y_val))
    x_val = torch.from_numpy(split.x_val[:points]).to(ctx.device)
    labels = split.y_val[:points]
    iterations = ctx.pick(smoke={"tsne": 500, "umap": 30}, full={"tsne": None, "umap": None})

    embeddings, scores = {}, []
    for k, step in enumerate(ctx.progress(shown, desc="checkpoints")):
        features = penultimate_activations(trained.model_at(step).to(ctx.device), x_val).cpu().numpy()  # (points, 32)
        scores.append({"k": k, "step": step, "key": "full", "method": "32-d space", "knn": knn_accuracy(features, labels, KNN_NEIGHBOURS)})
        for method in METHODS:
            plane = normalize(project(features, method, seed=ctx.seed, iterations=iterations.get(method)))
            embeddings[k, method] = plane
            scores.append({
                "k": k, "step": step, "key": method, "method": METHOD_LABELS[method],
                "trust": trust(features, plane, TRUST_NEIGHBOURS), "knn": knn_accuracy(plane, labels, KNN_NEIGHBOURS),
            })  # fmt: skip
    last = len(shown) - 1
    for k in range(last):  # keep each method's picture in the pose it has at the end of training
        for method in METHODS:
            embeddings[k, method] = align(embeddings[k, method], embeddings[last, method])

    for row in scores:
        when = "init" if row["k"] == 0 else ("trained" if row["k"] == last else None)
        if when:
            ctx.claim(f"{row['key']}_knn_{when}", row["knn"])
            if "trust" in row:
                ctx.claim(f"{row['key']}_trust_{when}", row["trust"])
    pca_rows = [row for row in scores if row["key"] == "pca"]
    peak = max(pca_rows, key=lambda row: row["trust"])
    ctx.claim("pca_trust_peak", peak["trust"])
    ctx.claim("pca_trust_peak_step", peak["step"])
    ctx.claim("points", points)
    ctx.claim("units", features.shape[1])
    ctx.claim("trust_neighbours", TRUST_NEIGHBOURS)
    ctx.claim("knn_neighbours", KNN_NEIGHBOURS)
    ctx.claim("chance", 1 / len(np.unique(labels)))
    ctx.claim("trained_step", shown[-1])
    ctx.claim("val_accuracy", trained.history[-1]["val_accuracy"])

    rows = []
    for k in range(len(shown)):
        columns = {f"{m[0]}{axis}": significant(embeddings[k, m][:, j]) for m in METHODS for j, axis in enumerate("xy")}
        for i in range(points):
            rows.append({"k": k, "i": i, "d": int(labels[i]), **{name: values[i] for name, values in columns.items()}})

    checkpoint = alt.param(name="checkpoint", value=last, bind=alt.binding_range(min=0, max=last, step=1, name="Checkpoint (0 = initialization) "))
    brushes = {m: alt.selection_interval(name=f"brush_{m}", encodings=["x", "y"]) for m in METHODS}
    chosen = brushes["pca"] & brushes["tsne"] & brushes["umap"]
    base = alt.Chart(pd.DataFrame(rows)).transform_filter("datum.k == checkpoint")
    views = []
    for method, brush in brushes.items():
        views.append(
            base.mark_circle(size=16, opacity=0.85, clip=True)
            .encode(
                x=alt.X(f"{method[0]}x:Q", axis=None, scale=alt.Scale(domain=[-2.4, 2.4], nice=False)),
                y=alt.Y(f"{method[0]}y:Q", axis=None, scale=alt.Scale(domain=[-2.4, 2.4], nice=False)),
                color=alt.when(chosen).then(alt.Color("d:N", title="digit", scale=alt.Scale(scheme="category10"))).otherwise(alt.value("#d0d0d0")),
                tooltip=[alt.Tooltip("d:N", title="digit"), alt.Tooltip("i:Q", title="validation index")],
            )
            .add_params(brush)
            .properties(width=185, height=185, title=METHOD_LABELS[method])
        )

    score_frame = pd.DataFrame(scores)
    step_axis = alt.X("step:O", title="training step", axis=alt.Axis(labelAngle=0))
    method_colour = alt.Color("method:N", title="projection", scale=alt.Scale(domain=[*METHOD_LABELS.values(), "32-d space"], range=["#4c78a8", "#f58518", "#54a24b", "#333333"]))
    marker = alt.Chart(score_frame).transform_filter("datum.k == checkpoint && datum.method == 'PCA'").mark_rule(color="#ff5a36", strokeWidth=2).encode(x=step_axis)
    trust_line = alt.Chart(score_frame).transform_filter("isValid(datum.trust)").mark_line(point=True).encode(
        x=step_axis, y=alt.Y("trust:Q", title="trustworthiness", scale=alt.Scale(zero=False)), color=method_colour,
        tooltip=["method:N", "step:O", alt.Tooltip("trust:Q", format=".3f")],
    )
    knn_line = alt.Chart(score_frame).mark_line(point=True).encode(
        x=step_axis, y=alt.Y("knn:Q", title=f"{KNN_NEIGHBOURS}-NN accuracy", scale=alt.Scale(domain=[0, 1])), color=method_colour,
        strokeDash=alt.condition("datum.method == '32-d space'", alt.value([4, 3]), alt.value([1, 0])),
        tooltip=["method:N", "step:O", alt.Tooltip("knn:Q", format=".3f")],
    )
    scores_row = alt.hconcat(
        alt.layer(trust_line, marker).properties(width=240, height=160, title="What each projection keeps"),
        alt.layer(knn_line, marker).properties(width=240, height=160, title="Can the classes be read off it?"),
    )
    return alt.vconcat(alt.hconcat(*views), scores_row).add_params(checkpoint).resolve_scale(color="independent")
