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
# # Notebook: the model zoo
#
# This notebook goes with the article *The model zoo* (`docs/models/zoo.md`). It loads one of the
# zoo's small transformers, asks it for a prediction, and then redraws the article's training-curve
# figure from the same code that made it, at smoke scale: short runs that take seconds on a laptop
# CPU. The numbers differ from the published ones, which come from the full-scale runs, but the
# shape of the curves should tell the same story.
#
# Run it from the checkout with the project's environment: `make kernel` registers a Jupyter kernel
# that uses `.venv`'s Python, and every cell runs offline.

# %%
from explorer import models, notebook

# %% [markdown]
# ## One model of the zoo
#
# `models.load` trains a model on first use and keeps it in `.cache/`, keyed by its recipe, so a
# second call is instant. Here we take the two-layer attention-only model at smoke scale and read
# a few rows of held-out code as it sees them: as tokens.

# %%
model = models.load("attn-only-2l", scale="smoke", device="cpu")
rows = models.heldout_tokens("attn-only-2l", 2, scale="smoke")
print(model.cfg.n_layers, "layers,", model.cfg.n_heads, "heads per layer, vocabulary of", model.cfg.d_vocab)
print(models.token_strings("attn-only-2l", rows[0], scale="smoke")[:24])

# %% [markdown]
# The loss on that held-out text is what the figure tracks over training: the mean of minus the log
# probability the model gave to each real next token.

# %%
loss = model(rows, return_type="loss")
print(f"held-out loss of the smoke-scale model: {loss.item():.3f} nats per token")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/zoo.py`) through the figure pipeline
# with a smoke-scale `FigureContext`, exactly as the tests do, and draws the result with the site's
# own Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("zoo-loss")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this run measured them: for instance which
# language model ends with the lowest held-out loss.

# %%
{key: fig.claims[key] for key in ("best_language_model", "attn_only_2l_heldout_loss", "attn_only_2l_uniform_loss")}

# %% [markdown]
# To see what the experiment does, print the producer: `print(notebook.source("zoo-loss"))`.
# `notebook.figure("zoo-loss", scale="full")` reruns it at the published scale (much longer).
