"""What a skip connection changes, measured: the stream, each block's write, and the gradients.

`stream_steps(model, x, y)` walks one input through a DeepMLP by hand, in order, and keeps every
number the residual chapter's panel shows: for block l, the stream h_l coming in, the block's
write f(h_l) = relu(W_l h_l + b_l), the stream after it (h_l + f(h_l) with the skip, f(h_l)
without), and the gradient of the loss with respect to each stream. A test checks it against the
module's own forward pass (forward hooks) and autograd on the module.

`block_write_ratios(bridge, tokens)` is the transformer version, from TransformerLens hooks: per
layer, the size of what the attention (and MLP) block adds, ||hook_attn_out||, against the size of
the stream it is added to, ||hook_resid_pre||, averaged over positions.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


@dataclass(frozen=True)
class StreamSteps:
    stream_in: Float[Tensor, "depth width"]  # h_l entering block l
    write: Float[Tensor, "depth width"]  # f(h_l)
    stream_out: Float[Tensor, "depth width"]  # h_{l+1}
    grad_stream: Float[Tensor, "depth width"]  # dL/dh_l
    probabilities: Float[Tensor, " classes"]
    loss: float


def stream_steps(model, x: Float[Tensor, " 64"], y: int) -> StreamSteps:
    """Every block's numbers for one input (the teaching version of DeepMLP.forward)."""
    h = torch.relu(model.inp(x[None]))  # (1, width)
    ins, writes, outs = [], [], []
    for block in model.blocks:
        h.retain_grad()
        ins.append(h)
        write = torch.relu(block(h))
        writes.append(write)
        h = h + write if model.skip else write
        outs.append(h)
    logits = model.out(h)
    loss = F.cross_entropy(logits, torch.tensor([y]))
    model.zero_grad(set_to_none=True)
    loss.backward()
    stack = lambda ts: torch.cat([t.detach() for t in ts])  # noqa: E731  (depth, width)
    return StreamSteps(stack(ins), stack(writes), stack(outs), torch.cat([t.grad for t in ins]),
                       logits.detach().softmax(-1)[0], loss.item())


def weight_gradient_norms(model, x: Float[Tensor, "batch 64"], y: Int[Tensor, " batch"]) -> list[float]:
    """||dL/dW_l|| for every hidden block's weight matrix, on one batch (the mean loss)."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    norms = [block.weight.grad.norm().item() for block in model.blocks]
    model.zero_grad(set_to_none=True)
    return norms


@torch.no_grad()
def block_write_ratios(bridge, tokens: Int[Tensor, "batch pos"]) -> dict[str, list[float]]:
    """Per layer: mean over positions of ||attn write|| / ||stream before it|| (and the same for MLPs, if any)."""
    n = bridge.cfg.n_layers
    names = [f"blocks.{l}.{hook}" for l in range(n) for hook in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out")]
    _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name in names)
    ratios = {"attn": [], "mlp": []}
    for l in range(n):
        pre = cache[f"blocks.{l}.hook_resid_pre"].norm(dim=-1)  # (batch, pos)
        ratios["attn"].append((cache[f"blocks.{l}.hook_attn_out"].norm(dim=-1) / pre).mean().item())
        if f"blocks.{l}.hook_mlp_out" in cache:
            mid = cache[f"blocks.{l}.hook_resid_mid"].norm(dim=-1)
            ratios["mlp"].append((cache[f"blocks.{l}.hook_mlp_out"].norm(dim=-1) / mid).mean().item())
    if not ratios["mlp"]:
        del ratios["mlp"]
    return ratios
