"""A small byte-level pre-LN transformer with and without its residual connections (the curriculum's chapter 5).

The blocks are explorer/models/norm_transformer.py's pre-LN blocks; `skip=False` drops the two
additions, so each block's output replaces the stream instead of adding to it:

    with skips     x <- x + attn(LN(x));   x <- x + mlp(LN(x))
    without        x <- attn(LN(x));       x <- mlp(LN(x))

Trained as the LayerNorm chapter's sweep is (bytes of Python source, Adam at a constant rate),
eight blocks deep; every logged step records the held-out loss and the gradient norm of each
block's weights. Seconds per run on one CPU thread.
"""

import math
import time

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from explorer.models import norm_transformer, training
from explorer.models.norm_transformer import VOCAB, byte_rows, windows


class SkipBlock(norm_transformer.Block):
    def __init__(self, d_model: int, n_heads: int, skip: bool):
        super().__init__(d_model, n_heads, "pre")
        self.skip = skip

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        if self.skip:
            return super().forward(x)
        return self.mlp(self.ln2(self.attn(self.ln1(x))))


class SkipTransformer(nn.Module):
    def __init__(self, skip: bool, d_model: int, n_heads: int, n_layers: int, n_ctx: int):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Embedding(n_ctx, d_model)
        self.blocks = nn.ModuleList([SkipBlock(d_model, n_heads, skip) for _ in range(n_layers)])
        self.ln_final = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, VOCAB)

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        x = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))


def block_gradient_norms(model: SkipTransformer) -> list[float]:
    """The gradient norm of each block's weights (all its parameters together), first block first."""
    return [math.sqrt(sum(float(p.grad.pow(2).sum()) for p in block.parameters() if p.grad is not None)) for block in model.blocks]


def loss_on(model: SkipTransformer, rows: Int[Tensor, "n length"]) -> Tensor:
    return F.cross_entropy(model(rows[:, :-1]).reshape(-1, VOCAB), rows[:, 1:].reshape(-1))


@torch.enable_grad()  # a figure may ask for a run from inside torch.no_grad
def train(skip: bool, seed: int, *, d_model: int, n_heads: int, n_layers: int, n_ctx: int, steps: int, batch: int, lr: float,
          train_bytes: int, eval_rows: int, log_every: int) -> dict:
    """One run: held-out loss and per-block gradient norms (of the training batch's loss, before the update)
    every `log_every` steps."""
    data, heldout = byte_rows("train", train_bytes), byte_rows("heldout", train_bytes // 10)
    with training.cpu_threads(1, "cpu"):
        torch.manual_seed(seed)
        model = SkipTransformer(skip, d_model, n_heads, n_layers, n_ctx)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        evaluation = windows(heldout, eval_rows, n_ctx + 1, torch.Generator().manual_seed(99))
        history, start = [], time.perf_counter()
        for step in range(steps + 1):
            rows = windows(data, batch, n_ctx + 1, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_on(model, rows)
            loss.backward()
            if step % log_every == 0 or step == steps:
                with torch.no_grad():
                    heldout_loss = float(loss_on(model, evaluation))
                history.append({"step": step, "loss": heldout_loss, "grad_norms": block_gradient_norms(model)})
            if step == steps:
                break
            optimizer.step()
    return {"history": history, "seconds": time.perf_counter() - start}
