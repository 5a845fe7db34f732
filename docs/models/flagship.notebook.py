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
# # Notebook: the flagship
#
# This notebook goes with the article *The flagship: a byte-level model of Python*
# (`docs/models/flagship.md`). It loads the stored flagship (its weights are committed under
# `models/`, so nothing trains), measures its loss on held-out code, and then rebuilds the figure of
# the corpus it was trained on.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## The stored model on held-out code
#
# `flagship.load` returns the trained model as a TransformerLens bridge that reads bytes;
# `heldout_rows` rebuilds the rows of code the training run never saw.

# %%
import torch

from explorer.models import flagship

model = flagship.load(0)
rows = torch.as_tensor(flagship.heldout_rows(4, 256)).long()
with torch.no_grad():
    loss = model(rows, return_type="loss")
print(f"held-out loss: {loss.item():.3f} nats per byte ({loss.item() / 0.6931:.2f} bits)")
print(bytes(rows[0, :80].tolist()).decode("utf-8", "replace"))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/flagship.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("flagship-corpus")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: fig.claims[key] for key in ("train_mbytes", "heldout_mbytes", "files", "sources", "stdlib_share", "largest_source") if key in fig.claims}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("flagship-corpus"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
