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
# # Notebook: positional encodings
#
# This notebook goes with the article *Positional encodings* (`docs/curriculum/positional_encodings.md`).
# It computes the encodings themselves (sinusoidal, RoPE, ALiBi) with the functions the article uses,
# then rebuilds the extrapolation figure at smoke scale: models trained on rows of 16 tokens, tested
# on rows of 64.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## The encodings
#
# Each is a few lines of `explorer.techniques.attention`: sinusoidal vectors added to the input, RoPE
# angles that rotate queries and keys, and ALiBi's bias on the scores.

# %%
from explorer.techniques import attention as formulas

pe = formulas.sinusoidal_encoding(64, 32)
angles = formulas.rope_angles(64, 8)
bias = formulas.alibi_bias(8, 4)
print("sinusoidal:", tuple(pe.shape), " RoPE angles:", tuple(angles.shape), " ALiBi bias:", tuple(bias.shape))
print("ALiBi slopes for 4 heads:", formulas.alibi_slopes(4).tolist())
print("a sinusoidal dot product depends on the offset only:", round(formulas.relative_position_error(pe @ pe.T), 4))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/positional_encodings.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("positional-extrapolation")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("positional-extrapolation"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
