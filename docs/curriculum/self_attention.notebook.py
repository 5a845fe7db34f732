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
# # Notebook: attention
#
# This notebook goes with the article *Attention* (`docs/curriculum/self_attention.md`). The article
# follows one head of a one-layer model through every step, from query and key to the weighted sum,
# and asks what the 1/√d scaling does. Here we take the entropy helper the article uses, then rebuild
# the scaling figure at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Entropy of an attention row
#
# A row that puts all its weight on one key has entropy 0 bits; a uniform row over n keys has
# log2(n) bits. `attention_steps.entropy_bits` measures the rows of a pattern.

# %%
import torch

from explorer.techniques import attention_steps

rows = torch.tensor([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25]])
print("entropy of each row (bits):", [round(v, 3) + 0.0 for v in attention_steps.entropy_bits(rows).tolist()], " uniform over 9 keys:", round(attention_steps.uniform_entropy_bits(9), 3))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/self_attention.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("self-attention-scaling")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("self-attention-scaling"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
