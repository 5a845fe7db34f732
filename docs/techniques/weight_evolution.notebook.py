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
# # Notebook: weight evolution
#
# This notebook goes with the article *Weight evolution* (`docs/techniques/weight_evolution.md`). It
# reads the flagship's stored checkpoints and measures how far each weight matrix has moved from
# its initialisation, and in how many directions, with the article's functions; then it rebuilds
# the pretraining figure.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## How far each matrix moved
#
# `wc.named_matrices` names the matrices of a checkpoint (W_E, each layer's W_Q, W_K, W_V, W_O, W_U);
# `wc.relative_change` is ||W_t - W_0|| / ||W_0||, and `wc.rank_at` the number of singular
# directions that hold 90% of the change.

# %%
from explorer.models import flagship
from explorer.techniques import weight_change as wc

run = flagship.stored(0)
arch = flagship.arch_of(run.weights)
first, last = min(run.checkpoints), max(run.checkpoints)
start, end = wc.named_matrices(run.checkpoints[first], arch), wc.named_matrices(run.checkpoints[last], arch)
for name in start:
    delta = end[name] - start[name]
    print(f"{wc.label(name):10} moved {wc.relative_change(end[name], start[name]):6.2f}x, 90% of the change in "
          f"{wc.rank_at(wc.singular_values(delta))} of {min(delta.shape)} directions")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/weight_evolution.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("weight-evolution-pretraining")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("weight-evolution-pretraining"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
