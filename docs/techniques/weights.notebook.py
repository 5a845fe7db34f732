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
# # Notebook: weights
#
# This notebook goes with the article *Weights* (`docs/techniques/weights.md`). It looks at how far
# training moves the first layer's weights of the digits MLP, then rebuilds the article's weight
# histograms over training (four regimes) at smoke scale.
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
# ## How far the weights moved
#
# The run keeps its checkpoints: the state dict at initialization (step 0) and at the end. The
# relative change of a matrix is ||W_end - W_0|| / ||W_0||.

# %%
trained = train_digits("mlp", "healthy", steps=150, seed=0, checkpoints=[0, 150])
(first_step, start), (last_step, end) = trained.checkpoints[0], trained.checkpoints[-1]
for name in [k for k in start if k.endswith("weight")]:
    change = (end[name] - start[name]).norm() / start[name].norm()
    print(f"{name:12} moved {change:.3f} of its initial norm between steps {first_step} and {last_step}")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/weights.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("weights-histograms")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("weights-histograms"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
