"""A plain PyTorch transformer with the zoo's shapes, written the nanoGPT way.

It exists only as the yardstick of the training benchmark: how much does training through
TransformerBridge (hook points on every activation) cost compared with an unhooked model?
"""

from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_mlp: int | None, fused_attention: bool = True):
        super().__init__()
        self.n_heads = n_heads
        self.fused_attention = fused_attention
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.mlp = None
        if d_mlp:
            self.ln2 = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, d_model))

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        batch, pos, d_model = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d_model, dim=-1)  # each (batch, pos, d_model)
        q, k, v = (t.view(batch, pos, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))  # (batch, head, pos, d_head)
        if self.fused_attention:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (batch, head, pos, d_head)
        else:  # the pattern materialised, as a hooked model must do to expose it
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (batch, head, pos, pos)
            mask = torch.ones(pos, pos, dtype=torch.bool, device=x.device).triu(1)
            z = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v  # (batch, head, pos, d_head)
        x = x + self.out(z.transpose(1, 2).reshape(batch, pos, d_model))
        if self.mlp is not None:
            x = x + self.mlp(self.ln2(x))
        return x


class PlainTransformer(nn.Module):
    def __init__(self, arch: dict[str, Any], fused_attention: bool = True):
        super().__init__()
        self.embed = nn.Embedding(arch["d_vocab"], arch["d_model"])
        self.pos = nn.Embedding(arch["n_ctx"], arch["d_model"])
        d_mlp = None if arch["attn_only"] else arch["d_mlp"]
        self.blocks = nn.ModuleList(Block(arch["d_model"], arch["n_heads"], d_mlp, fused_attention) for _ in range(arch["n_layers"]))
        self.ln_final = nn.LayerNorm(arch["d_model"])
        self.unembed = nn.Linear(arch["d_model"], arch["d_vocab"], bias=False)

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        x = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))  # (batch, pos, d_model)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))
