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
# # Notebook: probing
#
# This notebook goes with the article *Probing* (`docs/interpretability/probing.md`). It shows the
# labels the article's probes learn to read from the model's activations (token type, keyword,
# bracket depth, whether a name was seen before), computed from Python's own tokenizer, and then
# rebuilds the rank sweep at smoke scale.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Labels from the source
#
# `code_labels.tokens_of` tokenizes a piece of Python with the standard library's tokenizer and
# records each token's kind and the number of brackets open around it.

# %%
from explorer.data import code_labels as cl

source = "def area(w, h):\n    return max([w * h, 0])\n"
for token in cl.tokens_of(source):
    print(f"{token.text!r:10} {token.kind:8} depth {token.depth} keyword {token.is_keyword}")
print("tasks:", {task: list(labels) for task, labels in cl.TASKS.items()})

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/probing.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("probing-rank")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("probing-rank"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
