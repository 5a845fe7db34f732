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
# # Notebook: saliency maps
#
# This notebook goes with the article *Saliency maps* (`docs/techniques/saliency.md`). It computes a
# saliency map by hand in NumPy, checks it against autograd, and then rebuilds the article's figure
# that shows both maps side by side, at smoke scale.
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
# ## The gradient by hand
#
# `saliency_numpy.input_gradient` writes out the backward sweep through the MLP (output weights, ReLU
# mask, weight matrix, twice). `torch.autograd` should give the same map.

# %%
import numpy as np

from explorer.techniques import saliency_numpy

model = run.model.double().eval()
weights = saliency_numpy.mlp_weights(model)
x = split.x_val[0].astype(np.float64)
by_hand = saliency_numpy.input_gradient(x, weights, int(split.y_val[0]))
xt = torch.from_numpy(x)[None].requires_grad_(True)
(auto,) = torch.autograd.grad(model(xt)[0, int(split.y_val[0])], xt)
print("largest |by hand - autograd|:", float(np.abs(by_hand - auto[0].numpy()).max()))
run.model.float()

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/saliency.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("saliency-numpy")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("saliency-numpy"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
