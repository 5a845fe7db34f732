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
# # Notebook: layer normalization
#
# This notebook goes with the article *Layer normalization* (`docs/curriculum/layer_norm.md`). It
# takes the flagship's first LayerNorm, feeds it real activations from held-out Python, and follows
# the two steps of the article: centre each vector, then divide by its spread, so that every vector
# ends on one sphere. Then it redraws the article's geometry figure at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## LayerNorm, step by step
#
# The flagship is stored in `models/`, so loading it trains nothing. We catch the input of block 0's
# first LayerNorm on four held-out rows and let `layernorm.layernorm_steps` return every
# intermediate.

# %%
import math

import torch

from explorer.models import flagship
from explorer.techniques import layernorm

model = flagship.load(0)
rows = torch.as_tensor(flagship.heldout_rows(4, 256)).long()
name = "blocks.0.ln1.hook_in"
_, cache = model.run_with_cache(rows, names_filter=lambda n: n == name)
x = cache[name].reshape(-1, model.cfg.d_model)
steps = layernorm.layernorm_steps(x, layernorm.torch_layernorm(model.blocks[0].ln1))
print("largest |mean| after centring:", steps.centred.mean(-1).abs().max().item())
print("length after normalising:", steps.normalized.norm(dim=-1).mean().item(), "vs sqrt(d_model) =", math.sqrt(model.cfg.d_model))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/layer_norm.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("layernorm-geometry")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: fig.claims[key] for key in ("norm_after", "sqrt_d", "tokens", "mean_abs_before") if key in fig.claims}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("layernorm-geometry"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
