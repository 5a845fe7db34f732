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
# # Notebook: indirect objects: an IOI circuit
#
# This notebook goes with the article *Indirect objects: an IOI circuit* (`docs/interpretability/ioi.md`).
# It draws a few of the article's prompts, with their clean and corrupted (ABC) versions, and then
# rebuilds the figure of which heads carry the answer, from the stored IOI model.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## The prompts
#
# `ioi.sample` draws sentences such as "When Mary and John went to the store, John gave a drink to",
# whose answer is the indirect object (Mary). In the corrupted run the repeated name is replaced by a
# third one, so nothing tells the model which name to pick.

# %%
import torch

from explorer.data import ioi as ioi_data

batch = ioi_data.sample(3, torch.Generator().manual_seed(0))
for clean, corrupt, io in zip(batch.prompts(), batch.prompts(corrupted=True), batch.io):
    print(" ".join(clean), "->", io)
    print("   corrupted:", " ".join(corrupt))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/ioi.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("ioi-heads")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("ioi-heads"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
