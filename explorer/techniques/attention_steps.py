"""One attention head's computation, one step at a time, from the weights (the teaching version).

The curriculum's computation panel shows every number between a token and the model's answer:

    x_j = W_E[t_j] + W_pos[j]                         residual stream at each position
    q   = x_query W_Q + b_Q,  k_j = x_j W_K + b_K     the query, one key per position
    s_j = q · k_j                                      raw scores
    s_j / sqrt(d_head)                                 scaled scores
    a   = softmax(scaled) over j <= query              the attention pattern
    v_j = x_j W_V + b_V,  z = sum_j a_j v_j            values and their weighted sum
    out = z W_O + b_O                                  what the head writes to the residual stream
    logits = (x_query + out) W_U + b_U                 the answer (1 layer, attention only, no LayerNorm)

`head_steps` computes all of it with plain tensor algebra; tests check each step against the
TransformerLens hook of the same name on the same model (hook_q, hook_k, hook_pattern, hook_v,
hook_z, hook_attn_out, the logits; the scores against hook_q · hook_k, because the bridge's
hook_attn_scores carries the post-softmax pattern). `multiplier` multiplies the scaled
scores before the softmax, as the chapter's scaling experiment does with a hook on the query.
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor


@dataclass(frozen=True)
class HeadSteps:
    resid: Float[Tensor, "pos d_model"]
    q: Float[Tensor, " d_head"]  # at the query position
    k: Float[Tensor, "keys d_head"]  # keys 0 .. query
    scores: Float[Tensor, " keys"]  # q · k_j
    scaled: Float[Tensor, " keys"]  # (q · k_j) / sqrt(d_head), times the multiplier
    pattern: Float[Tensor, " keys"]
    v: Float[Tensor, "keys d_head"]
    z: Float[Tensor, " d_head"]
    out: Float[Tensor, " d_model"]
    logits: Float[Tensor, " vocab"]


def _weights(model, layer: int, head: int) -> dict[str, Tensor]:
    attn = model.blocks[layer].attn.original_component
    d_head = attn.d_head
    rows = slice(head * d_head, (head + 1) * d_head)
    return {
        "W_Q": attn.q.weight[rows].T, "b_Q": attn.q.bias[rows],  # (d_model, d_head), (d_head,)
        "W_K": attn.k.weight[rows].T, "b_K": attn.k.bias[rows],
        "W_V": attn.v.weight[rows].T, "b_V": attn.v.bias[rows],
        "W_O": attn.o.weight[:, rows].T,  # (d_head, d_model)
        "scale": torch.tensor(attn.scale),
    }


@torch.no_grad()
def head_steps(model, tokens: Int[Tensor, " pos"], query: int, layer: int = 0, head: int = 0,
               multiplier: float = 1.0) -> HeadSteps:
    """Every intermediate of head `head` at position `query` of a 1-layer attention-only model."""
    w = _weights(model, layer, head)
    pos = torch.arange(len(tokens))
    resid = model.embed.weight[tokens] + model.pos_embed.weight[pos]  # (pos, d_model)
    seen = resid[: query + 1]  # causal: keys up to the query
    q = resid[query] @ w["W_Q"] + w["b_Q"]  # (d_head,)
    k = seen @ w["W_K"] + w["b_K"]  # (keys, d_head)
    v = seen @ w["W_V"] + w["b_V"]
    scores = k @ q  # (keys,)
    scaled = scores / w["scale"] * multiplier
    pattern = scaled.softmax(-1)
    z = pattern @ v  # (d_head,)
    attn = model.blocks[layer].attn.original_component
    out = z @ w["W_O"] + (attn.o.bias if attn.n_heads == 1 else 0)  # the bias once, when the head is alone
    logits = (resid[query] + out) @ model.unembed.weight.T + model.unembed.bias
    return HeadSteps(resid, q, k, scores, scaled, pattern, v, z, out, logits)


def entropy_bits(pattern: Float[Tensor, "*batch keys"]) -> Float[Tensor, "*batch"]:
    """Shannon entropy of attention rows in bits: 0 for one-hot, log2(keys) for uniform."""
    p = pattern.clamp_min(1e-12)
    return -(pattern * p.log2()).sum(-1)


def query_multiplier_hook(multiplier: float):
    """A hook on hook_q that multiplies every score by `multiplier` (q·k is linear in q).

    Not on hook_attn_scores: a TL-native model fires that hook after the fact, so an edit there
    changes nothing downstream (measured: accuracy identical at 0.1x and 10x)."""
    def hook(q, hook):  # noqa: ARG001
        return q * multiplier
    return hook


def uniform_entropy_bits(keys: int) -> float:
    return math.log2(keys)
