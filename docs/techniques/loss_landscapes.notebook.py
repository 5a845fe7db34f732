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
# # Notebook: loss landscapes
#
# This notebook goes with the article *Loss landscapes* (`docs/techniques/loss_landscapes.md`). It
# runs one of the article's optimizers on a two-dimensional test surface, then rebuilds the slice
# through the loss of a trained digits MLP at smoke scale (a 9 x 9 grid instead of 31 x 31).
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## An optimizer on a surface
#
# `explorer.techniques.landscape` holds the article's test surfaces (a ravine, among others) and
# runs the real torch optimizers on them; each row of the trajectory is (x, y, loss) before a step.

# %%
from explorer.techniques import landscape

name = "ravine" if "ravine" in landscape.SURFACES else next(iter(landscape.SURFACES))
surface = landscape.get_surface(name)
path = landscape.run_optimizer(surface, "sgd", lr=0.01, momentum=0.9, start=(-1.0, 1.0), steps=50)
print(name, "surface; loss at the start and after 50 steps of SGD with momentum:", path[0][2], path[-1][2])

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/loss_landscapes.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("landscapes-digits-slice")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("landscapes-digits-slice"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
