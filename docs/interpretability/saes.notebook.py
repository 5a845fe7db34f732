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
# # Notebook: sparse autoencoders
#
# This notebook goes with the article *Sparse autoencoders* (`docs/interpretability/saes.md`). It
# trains a small sparse autoencoder on the flagship's residual stream with the article's code and
# reads its headline numbers, then rebuilds the figure of how often each latent fires, at smoke
# scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## A small SAE on the residual stream
#
# The activations are the residual stream after block 0 at every byte of a few held-out rows.
# `sae.train` is Adam on minibatches with an L1 penalty on the latents; `sae.metrics` reports L0
# (latents active per token) and how much of the variance the reconstruction explains.

# %%
import torch

from explorer.models import flagship

model = flagship.load(0)  # stored under models/: nothing trains
rows = torch.as_tensor(flagship.heldout_rows(8, 256)).long()  # held-out code, as bytes

from explorer.techniques import sae

name = "blocks.0.hook_resid_post"
with torch.no_grad():
    _, cache = model.run_with_cache(rows, names_filter=lambda n: n == name)
x = cache[name].reshape(-1, model.cfg.d_model)
train, test = x[: len(x) * 3 // 4], x[len(x) * 3 // 4 :]
autoencoder = sae.train(train, 0, n_latents=256, l1=2.0, steps=100, batch=512, lr=3e-3)
sae.metrics(autoencoder, test)

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/saes.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("saes-features")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("saes-features"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
