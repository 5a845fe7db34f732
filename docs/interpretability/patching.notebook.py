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
# # Notebook: patching and ablation
#
# This notebook goes with the article *Patching and ablation* (`docs/interpretability/patching.md`).
# It ablates each head of the flagship in turn on held-out code and measures how much the loss
# rises, then rebuilds the article's head-patching figure at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Ablating one head at a time
#
# `patching.ablate_heads` replaces one head's output by its mean over reference rows (the "mean"
# ablation of the article) and returns the clean loss and the loss with each head ablated.

# %%
import torch

from explorer.models import flagship

model = flagship.load(0)  # stored under models/: nothing trains
rows = torch.as_tensor(flagship.heldout_rows(4, 256)).long()  # held-out code, as bytes

from explorer.techniques import patching

clean, ablated, _ = patching.ablate_heads(model, rows[:2], "mean", rows[2:])
print(f"clean loss {clean:.3f}; loss with each head mean-ablated (rows: layer, columns: head):")
print((ablated - clean).round(decimals=3))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/patching.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("patching-heads")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("patching-heads"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
