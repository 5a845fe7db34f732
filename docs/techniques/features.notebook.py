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
# # Notebook: feature visualization
#
# This notebook goes with the article *Feature visualization* (`docs/techniques/features.md`). It
# optimizes an input image to excite one class logit of the digits MLP, the technique of the
# article, and then rebuilds the figure that compares those images with the average digit of each
# class at smoke scale.
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
# ## An image that maximizes a logit
#
# `visualize_units` starts from a blank image and climbs the gradient of the chosen units, here the
# output logits of classes 0 and 1, under one of the article's regularizers.

# %%
from explorer.techniques.feature_visualization import REGULARIZERS, visualize_units

images = visualize_units(run.model.eval(), "out", [0, 1], next(iter(REGULARIZERS)), steps=100)
print("regularizers:", list(REGULARIZERS), " images:", tuple(images.shape))
with torch.no_grad():
    print("predicted class of each optimized image:", run.model(images.reshape(len(images), -1)).argmax(-1).tolist())

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/features.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("features-classes")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("features-classes"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
