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
# # Notebook: catastrophic forgetting
#
# This notebook goes with the article *Catastrophic forgetting* (`docs/techniques/forgetting.md`).
# It trains the article's digits MLP on task A, then on task B two ways (plain fine-tuning and
# replay), and prints A's accuracy as B trains, with the article's functions; then it rebuilds the
# article's first figure.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Task A, then task B
#
# `fg.task_data("split", seed)` gives task A (digits 0-4) and task B (digits 5-9), each with a
# training, a tuning and a test set. `fg.train_task_a` trains the MLP on A; `fg.train_task_b`
# continues on B by one method and records both tasks' test accuracy every `eval_every` steps.

# %%
from explorer.techniques import forgetting as fg

config = dict(hidden=[128, 128], lr=1e-3, batch=64, steps_a=200, steps_b=100, eval_every=20, rank=4, alpha=4, buffer=50,
              replay_batch=16)
data = fg.task_data("split", seed=0)
model_a = fg.train_task_a(data, config, seed=0)
for method in ("plain", "replay"):
    curve = fg.train_task_b(model_a, data, method, config, seed=0)
    print(method, "A:", " ".join(f"{a:.0%}" for a in curve["A"]), "| B at the end:", f"{curve['B'][-1]:.0%}")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/forgetting.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("forgetting-curves")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("forgetting-curves"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
