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
# # Notebook: attention and position
#
# This notebook goes with the article *Attention and position* (`docs/techniques/attention.md`). It
# runs the pretrained MiniLM (loaded offline from its wheel) on one sentence and measures how spread
# out each head's attention is, then rebuilds the article's KV-cache figure, which is arithmetic on
# published model shapes.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## Attention patterns of a real model
#
# `load_minilm` wraps all-MiniLM-L6-v2 in a TransformerLens bridge; `run_attention` collects every
# layer's queries, keys and patterns for one input.

# %%
import torch

from explorer.models.minilm import load_minilm, tokenize
from explorer.techniques.attention import attention_entropy, kv_cache_bytes, run_attention, shape_by_name

bridge = load_minilm("cpu")
ids, tokens = tokenize(bridge, "Return the sum of the two numbers.")
with torch.no_grad():
    result = run_attention(bridge, ids, tokens)
entropy = attention_entropy(result.pattern).mean(-1)  # (layer, head): bits, averaged over queries
print(tokens)
print("mean attention entropy per layer (bits):", [round(v, 2) for v in entropy.mean(-1).tolist()], "uniform:", round(float(torch.log2(torch.tensor(len(tokens)))), 2))
print("KV cache of GPT-2 small for 1,024 tokens in fp16:", kv_cache_bytes(shape_by_name("GPT-2 small"), 1024, "fp16") / 1e6, "MB")

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/attention.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("attention-kv-cache")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: fig.claims[key] for key in ("gpt2_1024_fp16_mb", "minilm_512_fp32_mb", "llama3_8192_fp16_gib", "llama3_as_mha_8192_fp16_gib") if key in fig.claims}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("attention-kv-cache"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
