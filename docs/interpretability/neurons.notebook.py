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
# # Notebook: a neuron browser
#
# This notebook goes with the article *A neuron browser* (`docs/interpretability/neurons.md`).
# It runs the GELU flagship (flagship-bytes-gelu-2l-s0, stored under `models/`) on held-out
# Python, finds the most token-specific neurons of its first MLP with the article's functions,
# prints one neuron's strongest contexts, and then rebuilds the article's first figure.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute or two.

# %%
from explorer import notebook

# %% [markdown]
# ## The neurons' activations
#
# `neurons.eval_acts(scale, layer)` (explorer/techniques/neurons.py) is a (tokens, 512) tensor: the GELU output of every neuron of
# that layer on the evaluation rows (one row in five of the held-out text), and
# `neurons.eval_bytes(scale)` the byte at each of those positions.

# %%
from explorer.techniques import neurons
from explorer.techniques import dashboard, sae

acts = neurons.eval_acts("smoke", 0)
data = neurons.eval_bytes("smoke")
distinct = sae.distinct_top_tokens(acts, data, neurons.TOP)  # (neuron,) distinct bytes among its top 20
print("neurons:", acts.shape[1], "| median distinct bytes in a neuron's top 20:", float(distinct.float().median()))
print("20 random positions of the text:", round(dashboard.random_token_distinct(data, neurons.TOP, 500, seed=0), 1))

# %% [markdown]
# ## One neuron's strongest contexts
#
# The most token-specific neuron that is on most often, and the lines around its five strongest
# activations (the byte it fires on in brackets).

# %%
import numpy as np

specific = (distinct <= neurons.SPECIFIC).nonzero().flatten()
n = int(specific[(acts[:, specific] > 0).float().mean(0).argmax()])
column = acts[:, n].numpy()
rows = data.reshape(-1, 256).tolist()
print(f"L0 N{n}: on for {np.mean(column > 0):.1%} of bytes, {int(distinct[n])} distinct bytes in its top 20")
for label, t in dashboard.sample_tokens(column, 5, 0, np.random.default_rng(0)):
    r, pos = divmod(t, 256)
    line = dashboard.byte_line(rows[r], column[r * 256:(r + 1) * 256], pos, label, before=20, after=8)
    print(label, "".join(f"[{x['t']}]" if x.get("w") == column[t] else x["t"] for x in line[1:]).rstrip("\n"))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/neurons.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("neurons-basis")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They come from
# fewer rows and shorter SAE training than the published ones, so expect other values with the
# same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}
