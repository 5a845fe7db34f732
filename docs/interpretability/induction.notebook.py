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
# # Notebook: induction heads
#
# This notebook goes with the article *Induction heads* (`docs/interpretability/induction.md`). It
# feeds the zoo's two-layer induction model rows of random tokens that repeat, shows that the loss
# falls on the second copy, and then rebuilds the figure of induction scores against the repeat
# length at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Loss on a repeated row
#
# `probes.repeated_rows` builds the standard probe: random tokens, then the same tokens again. No
# model can predict the first copy; a model with induction heads predicts the second.

# %%
import torch

from explorer import models
from explorer.techniques import induction, probes

model = models.load("induction-2l", scale="smoke", device="cpu")
half = 10
tokens, prefix = probes.repeated_rows(model, 8, half)
with torch.no_grad():
    loss = induction.per_position_loss(model, tokens)
print(f"first copy: {induction.first_copy_loss(loss, prefix, half):.2f} nats, second copy: {induction.repeated_half_loss(loss, prefix + half):.2f} nats")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/induction.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("induction-repeat-length")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("induction-repeat-length"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
