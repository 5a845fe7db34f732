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
# # Notebook: multi-head attention
#
# This notebook goes with the article *Multi-head attention* (`docs/curriculum/multi_head.md`). The
# article's task asks a one-layer model to recall an answer made of two parts; the same width is split
# into one, two or four heads. Here we look at the task, then rebuild the training curves of the
# three splits at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## The task
#
# `TwoPartRecall` draws rows of key-value pairs and a query key. The answer has two parts: the value
# paired with the queried key (a lookup by content) and the value of the first pair (a lookup by
# position), written as one token. Chance is 1 in 8 for a part and 1 in 64 for the whole answer.

# %%
import torch

from explorer.data.two_part_recall import TwoPartRecall

task = TwoPartRecall(n_keys=16, n_values=8, pairs=8)  # the article's task
rows = task.batch(3, torch.Generator().manual_seed(0))
for row in rows.tolist():
    print(" ".join(task.token_text(t) for t in row))
looked_up, first = task.parts(rows)
print("answers (looked-up value, first pair's value):", list(zip(looked_up.tolist(), first.tolist())))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/multi_head.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("multihead-training")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("multihead-training"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
