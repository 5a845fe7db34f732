# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Inside the Network (.venv)
#     language: python
#     name: inside-the-network
# ---

# %% [markdown]
# # Notebook: projections: PCA, t-SNE, UMAP
#
# This notebook goes with the article *Projections: PCA, t-SNE, UMAP* (`docs/techniques/projections.md`).
# It projects the hidden units of a digits MLP to two dimensions with the article's functions, scores
# how well each projection keeps neighbours, and then rebuilds the article's figure at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## A digits MLP, trained here
#
# `train_digits` trains the article's MLP (64 pixels in, hidden layers of 64 and 32 units, 10
# classes out) on scikit-learn's 8x8 digits, and caches the result in `.cache/` by its arguments:
# a second call returns at once. A short run is enough to see it learn.

# %%
import torch

from explorer.models.digits import load_digits_split, train_digits

split = load_digits_split()
run = train_digits("mlp", "healthy", steps=150, seed=0, checkpoints=[150])
with torch.no_grad():
    predicted = run.model(torch.from_numpy(split.x_val)).argmax(-1).numpy()
print(f"validation accuracy after 150 steps: {(predicted == split.y_val).mean():.3f} (chance 0.1)")

# %% [markdown]
# ## Three projections, scored
#
# `penultimate_activations` catches what the output layer reads; `project` maps it to 2-D by PCA,
# t-SNE or UMAP; `trust` is scikit-learn's trustworthiness (1: every point's near neighbours in 2-D
# were near in the 32 dimensions too).

# %%
from explorer.techniques.projection import penultimate_activations, project, trust

features = penultimate_activations(run.model, torch.from_numpy(split.x_val[:120])).numpy()
for method in ("pca", "tsne"):  # "umap" works the same way; its first call compiles for a minute
    points = project(features, method, seed=0, iterations={"pca": None, "tsne": 500}[method])
    print(f"{method:5} trustworthiness {trust(features, points):.3f}")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/projections.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("projections-digits")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("projections-digits"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
