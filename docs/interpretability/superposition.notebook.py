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
# # Notebook: superposition
#
# This notebook goes with the article *Superposition* (`docs/interpretability/superposition.md`). It
# trains the toy model of Elhage et al. (2022) with the article's code: five features squeezed into
# two dimensions, at two sparsities, and then rebuilds the figure of the columns of W as sparsity
# grows, at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Five features in two dimensions
#
# Each feature is present with probability 1 - S. `toy.train` trains every instance at once; a
# feature is represented when its column of W has length about 1 (`toy.norms`).

# %%
import torch

from explorer.models import toy_superposition as toy

importance = torch.tensor([[0.9**i for i in range(5)]] * 2)
density = torch.tensor([[1.0] * 5, [0.1] * 5])  # S = 0 (dense) and S = 0.9 (sparse)
run = toy.train(importance, density, [0, 0], n_hidden=2, steps=1000, batch=1024, lr=3e-3, checkpoints=[0, 1000])
for label, norms in zip(("dense", "sparse"), toy.norms(run.W).tolist()):
    print(f"{label:7} column lengths {[round(n, 2) for n in norms]}")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/superposition.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("superposition-five")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("superposition-five"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
