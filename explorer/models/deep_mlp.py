"""Deep MLPs with and without skip connections, on scikit-learn's 8x8 digits (the curriculum's residual chapter).

A network is an input layer (64 -> width), `depth` hidden blocks of the same width, and an output
layer (width -> 10). A hidden block computes f(h) = relu(W h + b); the plain network replaces the
stream with it (h <- f(h)), the residual network adds it (h <- h + f(h)). Everything else is the
same: PyTorch's default initialisation, Adam, minibatches of fresh draws from the training split.
Training is seconds on one CPU thread, cached by explorer.cache.
"""

import time

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from explorer.models.digits import load_digits_split


class DeepMLP(nn.Module):
    def __init__(self, depth: int, width: int, skip: bool):
        super().__init__()
        self.skip = skip
        self.inp = nn.Linear(64, width)
        self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.out = nn.Linear(width, 10)

    def forward(self, x: Float[Tensor, "batch 64"]) -> Float[Tensor, "batch 10"]:
        h = torch.relu(self.inp(x))  # (batch, width)
        for block in self.blocks:
            write = torch.relu(block(h))
            h = h + write if self.skip else write
        return self.out(h)


def digits_tensors(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_train, y_train, x_val, y_val) of the shared digits split, as float32 / int64 tensors."""
    return load_digits_split(seed).tensors()


@torch.no_grad()
def evaluate(model: DeepMLP, x: Tensor, y: Int[Tensor, " n"]) -> dict[str, float]:
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(-1) == y).float().mean().item()}


def train(depth: int, width: int, skip: bool, seed: int, *, steps: int, lr: float, batch: int,
          eval_every: int, keep: list[int]) -> dict:
    """Train one network; validation loss and accuracy every `eval_every` steps, weights at the steps in `keep`."""
    x_train, y_train, x_val, y_val = digits_tensors()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = DeepMLP(depth, width, skip)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        history, checkpoints = [], {}
        start = time.perf_counter()
        for step in range(steps + 1):
            if step in keep:
                checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if step % eval_every == 0 or step == steps:
                history.append({"step": step, **evaluate(model, x_val, y_val)})
            if step == steps:
                break
            idx = torch.randint(0, len(x_train), (batch,), generator=generator)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(before)
    return {"history": history, "checkpoints": checkpoints, "seconds": time.perf_counter() - start}


def load(depth: int, width: int, skip: bool, weights: dict[str, Tensor]) -> DeepMLP:
    model = DeepMLP(depth, width, skip)
    model.load_state_dict(weights)
    return model.eval()
