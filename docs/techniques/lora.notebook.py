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
# # Notebook: LoRA
#
# This notebook goes with the article *LoRA: learning and forgetting* (`docs/techniques/lora.md`).
# It wraps one linear layer in the article's LoRA adapter, checks that the adapter starts as the
# layer it wraps and that its update has rank r, then rebuilds the article's rank figure.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## An adapter
#
# `lora.LoRALinear(base, rank, alpha)` freezes `base` and adds (alpha / r) B A with B at zero.

# %%
import torch

from explorer.techniques import lora

torch.manual_seed(0)
base = torch.nn.Linear(128, 128)
adapter = lora.LoRALinear(base, rank=4, alpha=16.0)
x = torch.randn(3, 128)
print("starts as the base layer:", torch.allclose(adapter(x), base(x)))
with torch.no_grad():
    adapter.B.normal_()
print("rank of the update:", int(torch.linalg.matrix_rank(adapter.delta())), "| trainable:", lora.trainable(adapter), "of", 128 * 128 + 128)

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/lora.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("lora-rank")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("lora-rank"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
