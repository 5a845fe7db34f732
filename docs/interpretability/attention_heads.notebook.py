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
# # Notebook: attention heads
#
# This notebook goes with the article *Attention heads* (`docs/interpretability/attention_heads.md`).
# It scores every head of the flagship with the article's detectors (previous token, duplicate token,
# induction, first token) on held-out code, then rebuilds the article's scores of the 72 heads of the
# pretrained MiniLM at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Scoring heads
#
# A detector is a 0/1 mask of where a head of that kind would look; a head's score is its mean
# attention on the mask. `heads.head_scores` reads each layer's pattern as the forward pass makes it.

# %%
import torch

from explorer.models import flagship

model = flagship.load(0)  # stored under models/: nothing trains
rows = torch.as_tensor(flagship.heldout_rows(4, 256)).long()  # held-out code, as bytes

from explorer.techniques import heads

with torch.no_grad():
    scores = heads.head_scores(model, rows)
scores

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/attention_heads.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("heads-minilm")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("heads-minilm"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
