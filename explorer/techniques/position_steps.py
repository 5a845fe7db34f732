"""Where position enters one attention layer, one step at a time, from the weights (the teaching version).

For the query at position i of a PositionTransformer (explorer/models/position_transformer.py):

    x_j   = W_E[t_j] (+ p_j for learned and sinusoidal encodings)      the stream each key reads
    q, k_j, v_j = x W_Q + b_Q, x_j W_K + b_K, x_j W_V + b_V           per head
    RoPE: q <- R(i θ) q,  k_j <- R(j θ) k_j                            rotate by position
    s_j   = q · k_j / sqrt(d_head)  (- slope · (i - j) for ALiBi)      scores over keys j <= i
    a     = softmax(s);  z = Σ_j a_j v_j;  logits = (x_i + z W_O + b_O) W_U + b_U

`query_steps` computes it with plain tensor algebra and the formulas of explorer/techniques/
attention.py; the tests check each step against the model's own hooks (hook_pos_embed, hook_rot_q,
hook_attn_scores, hook_pattern) and its logits.
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from explorer.techniques import attention as formulas


@dataclass(frozen=True)
class QuerySteps:
    added: Float[Tensor, " d_model"] | None  # what the encoding adds to the query's stream (learned, sinusoidal)
    angles: Float[Tensor, " pair"] | None  # RoPE: the query's rotation angle per pair
    bias: Float[Tensor, "head keys"] | None  # ALiBi: the penalty on each key
    q: Float[Tensor, "head d_head"]  # after any rotation
    scores: Float[Tensor, "head keys"]  # before the softmax, bias included
    pattern: Float[Tensor, "head keys"]
    logits: Float[Tensor, " vocab"]


@torch.no_grad()
def query_steps(model, tokens: Int[Tensor, " pos"], query: int) -> QuerySteps:
    """Every number layer 0 computes for the query at `query` (a 1-layer PositionTransformer)."""
    if len(model.blocks) != 1:
        raise ValueError(f"the panel's steps are for a 1-layer model; this one has {len(model.blocks)}")
    attn, enc = model.blocks[0].attn, model.encoding
    keys = tokens[: query + 1]
    x = model.embed.weight[keys]  # (keys, d_model)
    added = None
    if enc in ("learned", "sinusoidal"):
        table = model.pos_embed.weight if enc == "learned" else formulas.sinusoidal_encoding(model.n_ctx, x.shape[1]).float()
        x = x + table[: query + 1]
        added = table[query]

    def per_head(linear) -> Tensor:  # (keys, head, d_head)
        return (x @ linear.weight.T + linear.bias).view(len(keys), attn.n_heads, attn.d_head)

    q, k, v = per_head(attn.W_Q), per_head(attn.W_K), per_head(attn.W_V)
    angles = None
    if enc == "rope":
        q = formulas.apply_rope(q.transpose(0, 1)).transpose(0, 1)  # rotate position j by j·θ
        k = formulas.apply_rope(k.transpose(0, 1)).transpose(0, 1)
        angles = formulas.rope_angles(query + 1, attn.d_head)[query].float()
    scores = torch.einsum("hd,khd->hk", q[query], k) / math.sqrt(attn.d_head)  # (head, keys)
    bias = None
    if enc == "alibi":
        bias = formulas.alibi_bias(query + 1, attn.n_heads)[:, query].float()  # (head, keys)
        scores = scores + bias
    pattern = scores.softmax(-1)
    z = torch.einsum("hk,khd->hd", pattern, v).reshape(-1)  # heads side by side
    out = z @ attn.W_O.weight.T + attn.W_O.bias
    logits = (x[query] + out) @ model.unembed.weight.T + model.unembed.bias
    return QuerySteps(added, angles, bias, q[query], scores, pattern, logits)
