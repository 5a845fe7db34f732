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
# # Notebook: residual connections
#
# This notebook goes with the article *Residual connections* (`docs/curriculum/residual_connections.md`).
# It measures how much gradient reaches each block of a deep MLP on the digits, with and without skip
# connections, using the article's own functions, and then redraws the gradient figure at smoke
# scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Gradients at initialization
#
# `residual.weight_gradient_norms` returns the size of the loss gradient with respect to each hidden
# block's weight matrix. We build both nets fresh (no training) and compare the first block with the
# last.

# %%
import torch

from explorer.models import deep_mlp
from explorer.techniques import residual

x_train, y_train, _, _ = deep_mlp.digits_tensors()
for skip in (False, True):
    torch.manual_seed(0)
    norms = residual.weight_gradient_norms(deep_mlp.DeepMLP(20, 32, skip), x_train, y_train)
    print("with skips" if skip else "plain     ", f"first block {norms[0]:.2e}, last block {norms[-1]:.2e}")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/residual_connections.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("residual-gradients")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("residual-gradients"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
