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
# # Notebook: task arithmetic
#
# This notebook goes with the article *Task arithmetic* (`docs/techniques/task_arithmetic.md`).
# It fine-tunes the stored flagship (seed 0) on sympy for a few steps, takes the task vector
# (fine-tuned minus base weights), and scores the base moved along it, with the article's
# functions; then it rebuilds the article's first figure.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## A task vector
#
# `lora.fine_tune` with method "full" is plain fine-tuning of every weight; `ta.task_vector`
# subtracts the base, parameter by parameter.

# %%
from explorer import artifacts
from explorer.models.flagship import arch_of
from explorer.techniques import lora
from explorer.techniques import task_arithmetic as ta

base = artifacts.load("flagship-bytes-2l-s0").weights
arch = arch_of(base)
config = dict(method="full", rank=0, alpha=0, lr=3e-4, weight_decay=0.01, betas=(0.9, 0.99), threads=1, package="sympy",
              seed=0, steps=16, batch=4, warmup=4, eval_rows=8, tune_rows=4, other_limit=200_000)
tuned = lora.fine_tune(base, arch, config)
tau = ta.task_vector(tuned["weights"], base)
print(f"task vector: norm {ta.norm(tau):.3f} over {ta.flat(tau).numel():,} parameters")

# %% [markdown]
# ## The loss along the line θ_base + λ τ
#
# λ = 0 is the base, λ = 1 the fine-tuned model, λ < 0 subtracts the task.

# %%
evals = ta.evaluation_sets("sympy", "pandas", 8, arch["n_ctx"], 200_000)
for row in ta.sweep(base, [tau], (-1.0, 0.0, 0.5, 1.0, 2.0), arch, evals):
    print(f"λ = {row['coefficient']:+.1f}:", "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "coefficient"))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/task_arithmetic.py`) through the
# figure pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's
# own Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("task-arithmetic-line")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}
