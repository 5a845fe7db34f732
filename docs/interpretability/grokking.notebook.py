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
# # Notebook: grokking
#
# This notebook goes with the article *Grokking* (`docs/interpretability/grokking.md`). It trains the
# article's model (`explorer/models/grokking.py`) on a small modulus for a few hundred full-batch steps,
# looks at its embedding's Fourier spectrum, and then redraws the article's training curves from the
# stored run (`models/grok-113-s0`), which took about 45 minutes on one core.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds.

# %%
from explorer import notebook

# %% [markdown]
# ## A small run of the same model
#
# Addition modulo 23, a third of the pairs for training, the article's optimiser (AdamW with weight
# decay 1.0). A few hundred steps memorise the training pairs; generalising takes far longer.

# %%
import torch

from explorer.models import grokking as g

torch.manual_seed(0)
p = 23
model = g.ModularAdditionTransformer(g.GrokConfig(p=p, d_model=64, n_heads=4, d_head=16, d_mlp=128))
tokens, train = g.all_pairs(p), g.train_split(p, 0.3, seed=0)
target = g.labels(tokens, p)
optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98))
for step in range(301):
    loss = g.loss_fn(model(tokens[train]), target[train])
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    if step % 100 == 0:
        with torch.no_grad():
            accuracy = (model(tokens).argmax(-1) == target).double().mean().item()
        print(f"step {step:3}: training loss {loss.item():.4f}, accuracy on every pair {accuracy:.1%}")

# %% [markdown]
# How much of the embedding lies at each frequency k (`g.embedding_frequency_norms`): after a few
# hundred steps it is still spread out; the stored run's final embedding is not.

# %%
print([round(x, 2) for x in g.embedding_frequency_norms(model.W_E.detach(), p).tolist()])

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/grokking.py`) through the figure
# pipeline with a smoke-scale `FigureContext`; it reads the stored run, so smoke and full scale
# show the same curves.

# %%
fig = notebook.figure("grokking-curves")
fig

# %% [markdown]
# The claims are the numbers the article quotes.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}
