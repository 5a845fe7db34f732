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
# # Notebook: the residual stream
#
# This notebook goes with the article *The residual stream* (`docs/interpretability/residual_stream.md`).
# It applies the logit lens to the flagship on held-out code, asking what the model would predict
# if it stopped after each block, then rebuilds the direct logit attribution figure at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## The logit lens
#
# `lens.logit_lens_top1` unembeds the residual stream after each block (through the final
# LayerNorm) and keeps the top prediction; we count how often it is the real next byte.

# %%
import torch

from explorer.models import flagship

model = flagship.load(0)  # stored under models/: nothing trains
rows = torch.as_tensor(flagship.heldout_rows(4, 256)).long()  # held-out code, as bytes

from explorer.techniques import lens

with torch.no_grad():
    top = lens.logit_lens_top1(model, rows)  # (stage, row, position)
hits = (top[:, :, :-1] == rows[None, :, 1:]).float().mean((1, 2))
for label, hit in zip(lens.resid_labels(model.cfg.n_layers), hits.tolist()):
    print(f"{label:20} top-1 accuracy {hit:.3f}")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/residual_stream.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("residual-dla")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("residual-dla"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
