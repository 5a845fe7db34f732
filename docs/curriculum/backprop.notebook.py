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
# # Notebook: backprop, visualized
#
# This notebook goes with the article *Backprop, visualized* (`docs/curriculum/backprop.md`). It
# trains the classic 2-4-1 tanh network on XOR with the same code as the article's playground, checks
# that the hand-written backward pass agrees with autograd, and then rebuilds the playground itself
# at smoke scale: a smaller grid of configurations, each trained for 300 steps.
#
# Run it from the checkout with the project's environment (`make kernel` registers a Jupyter
# kernel on `.venv`'s Python); every cell runs offline, on a CPU, in seconds to a minute.

# %%
from explorer import notebook

# %% [markdown]
# ## One network, trained here
#
# `mlp.train_group` trains several networks of one shape in a single vectorised loop; here the group
# is just the default: XOR, one hidden layer of four tanh units, a sigmoid output and squared error,
# full batch. It returns the weights at a few checkpoints and the loss and accuracy curves.

# %%
import torch

from explorer.models import mlp
from explorer.models.mlp import RunConfig, TrainSettings

result = mlp.train_group([RunConfig()], TrainSettings(steps=300), torch.device("cpu"))
print("training loss, first and last point:", round(result.train_curve[0, 0].item(), 4), round(result.train_curve[-1, 0].item(), 4))
print("held-out accuracy at each checkpoint:", [round(a, 2) for a in result.test_accuracy[:, 0].tolist()])

# %% [markdown]
# ## The backward pass by hand
#
# `mlp.forward_backward` is the article's backward sweep written out layer by layer. On a fresh
# network its gradients should equal what `torch.autograd` computes from the same loss.

# %%
torch.manual_seed(0)
run = RunConfig()
net = mlp.build_mlp(run)
x, y = torch.tensor([0.7, -0.7]), torch.tensor(1)
mlp.point_loss(net(x[None]), y[None], run.output).sum().backward()
linears = [m for m in net if isinstance(m, torch.nn.Linear)]
weights = [torch.cat([lin.weight, lin.bias[:, None]], dim=1).detach() for lin in linears]
hand = mlp.forward_backward(weights, x, y, run.activation, run.output).grads
for lin, g in zip(linears, hand):
    auto = torch.cat([lin.weight.grad, lin.bias.grad[:, None]], dim=1)
    print("largest |hand - autograd| in this layer:", float((auto - g).abs().max()))

# %% [markdown]
# ## The figure, rebuilt
#
# `notebook.figure` runs the article's producer (`build_figures/backprop.py`) through the figure
# pipeline with a smoke-scale `FigureContext`, as the tests do, and draws it with the site's own
# Vega library. A figure already built at this scale is read back from `tests/smoke-figures/`.

# %%
fig = notebook.figure("backprop-playground")
fig

# %% [markdown]
# The claims are the numbers the article quotes, as this smoke run measured them. They are
# smaller runs than the published ones, so expect other values with the same direction.

# %%
{key: value for key, value in sorted(fig.claims.items()) if not isinstance(value, (list, dict))}

# %% [markdown]
# To read the experiment itself, print its producer: `print(notebook.source("backprop-playground"))`. Passing
# `scale="full"` to `notebook.figure` reruns it at the published scale, which takes much longer.
