"""Where position enters one attention layer, one step at a time, from the weights (the teaching version).

For the query at position i of a PositionTransformer (explorer/models/position_transformer.py):

    x_j   = W_E[t_j] (+ p_j for learned and sinusoidal encodings)      the stream each key reads
    q, k_j, v_j = x W_Q + b_Q, x_j W_K + b_K, x_j W_V + b_V           per head
    RoPE: q <- R(i θ) q,  k_j <- R(j θ) k_j                            rotate by position
    s_j   = q · k_j / sqrt(d_head)  (- slope · (i - j) for ALiBi)      scores over keys j <= i
    a     = softmax(s);  z = Σ_j a_j v_j                               per head
    logits = (x_i + Σ_h z_h W_O[h] + b_O) W_U + b_U                    the heads' writes add up

`query_steps` computes it with plain tensor algebra and the formulas of explorer/techniques/
attention.py; the tests check each step against the model's own hooks (hook_pos_embed, hook_rot_q,
hook_attn_scores, hook_pattern, hook_z) and its logits. The multi-head chapter reads the same
steps per head.
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
    z: Float[Tensor, "head d_head"]  # each head's weighted sum of values
    head_out: Float[Tensor, "head d_model"]  # what each head writes: z_h W_O[h] (the bias b_O apart)
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
    z = torch.einsum("hk,khd->hd", pattern, v)  # (head, d_head)
    w_o = attn.W_O.weight.T.view(attn.n_heads, attn.d_head, -1)  # (head, d_head, d_model)
    head_out = torch.einsum("hd,hdm->hm", z, w_o)
    logits = (x[query] + head_out.sum(0) + attn.W_O.bias) @ model.unembed.weight.T + model.unembed.bias
    return QuerySteps(added, angles, bias, q[query], scores, pattern, z, head_out, logits)
