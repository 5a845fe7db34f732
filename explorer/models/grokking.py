"""The grokking model of Nanda et al. (2023), "Progress measures for grokking via mechanistic
interpretability": a one-layer transformer on "a b =" that learns (a + b) mod p.

Plain PyTorch, so a run can train anywhere torch does (a GPU included) and the figures read its
weights without TransformerLens. Its shapes follow TransformerLens's names (W_E, W_pos, W_Q ...,
W_U). Only the last position's query, MLP and unembedding are computed: the answer is read there,
and the other positions' residual streams feed nothing else in a one-layer model, so this is the
same function at about a third of the cost (`tests/test_grokking.py` checks it against the full,
causally masked computation).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn


@dataclass(frozen=True)
class GrokConfig:
    p: int = 113  # the modulus; tokens 0..p-1 are numbers, token p is "="
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    n_ctx: int = 3


class ModularAdditionTransformer(nn.Module):
    """One attention layer (4 heads, no LayerNorm), one ReLU MLP, learned positions, untied embeddings."""

    def __init__(self, cfg: GrokConfig):
        super().__init__()
        self.cfg = cfg
        d, h, dh = cfg.d_model, cfg.n_heads, cfg.d_head
        self.W_E = nn.Parameter(torch.randn(cfg.p + 1, d) / math.sqrt(d))
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, d) / math.sqrt(d))
        self.W_Q = nn.Parameter(torch.randn(h, d, dh) / math.sqrt(d))
        self.W_K = nn.Parameter(torch.randn(h, d, dh) / math.sqrt(d))
        self.W_V = nn.Parameter(torch.randn(h, d, dh) / math.sqrt(d))
        self.W_O = nn.Parameter(torch.randn(h, dh, d) / math.sqrt(d))
        self.W_in = nn.Parameter(torch.randn(d, cfg.d_mlp) / math.sqrt(d))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.randn(cfg.d_mlp, d) / math.sqrt(d))
        self.b_out = nn.Parameter(torch.zeros(d))
        self.W_U = nn.Parameter(torch.randn(d, cfg.p) / math.sqrt(cfg.p))

    def run(self, tokens: Int[Tensor, "batch 3"]) -> dict[str, Tensor]:
        """Every activation the figures read, at the last position (hook names as TransformerLens's)."""
        x = self.W_E[tokens] + self.W_pos  # (batch, pos, d_model)
        q = torch.einsum("bd,hde->bhe", x[:, -1], self.W_Q)  # (batch, head, d_head)
        k = torch.einsum("bpd,hde->bhpe", x, self.W_K)  # (batch, head, pos, d_head)
        v = torch.einsum("bpd,hde->bhpe", x, self.W_V)
        pattern = torch.softmax(torch.einsum("bhe,bhpe->bhp", q, k) / math.sqrt(self.cfg.d_head), dim=-1)  # (batch, head, pos)
        z = torch.einsum("bhp,bhpe->bhe", pattern, v)
        resid_mid = x[:, -1] + torch.einsum("bhe,hed->bd", z, self.W_O)  # (batch, d_model)
        pre = resid_mid @ self.W_in + self.b_in  # (batch, d_mlp)
        post = torch.relu(pre)
        resid_post = resid_mid + post @ self.W_out + self.b_out
        return {"blocks.0.attn.hook_pattern": pattern, "blocks.0.hook_resid_mid": resid_mid,
                "blocks.0.mlp.hook_pre": pre, "blocks.0.mlp.hook_post": post, "logits": resid_post @ self.W_U}

    def forward(self, tokens: Int[Tensor, "batch 3"]) -> Float[Tensor, "batch p"]:
        return self.run(tokens)["logits"]


def all_pairs(p: int) -> Int[Tensor, "p_squared 3"]:
    """Every input "a b =" in the order a * p + b."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    return torch.stack([a.flatten(), b.flatten(), torch.full((p * p,), p)], dim=1)


def labels(tokens: Int[Tensor, "batch 3"], p: int) -> Int[Tensor, " batch"]:
    return (tokens[:, 0] + tokens[:, 1]) % p


def train_split(p: int, fraction: float, seed: int) -> Int[Tensor, " n_train"]:
    """Indices (into all_pairs) of the training pairs: a seeded random `fraction` of them."""
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    return order[: int(fraction * p * p)].sort().values


def loss_fn(logits: Float[Tensor, "batch p"], target: Int[Tensor, " batch"]) -> Tensor:
    """Cross-entropy in float64, as the paper computes it (float32 rounding stalls the late loss)."""
    return torch.nn.functional.cross_entropy(logits.to(torch.float64), target)


# ---------------------------------------------------------------------------------------------
# The Fourier view: the paper's progress measures


def fourier_basis(p: int) -> tuple[Float[Tensor, "p p"], list[str]]:
    """Rows: the constant, then cos(2 pi k x / p) and sin(...) for k = 1 .. (p-1)/2, each of unit norm."""
    x = torch.arange(p, dtype=torch.float64)
    rows, names = [torch.ones(p, dtype=torch.float64)], ["const"]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
        names += [f"cos {k}", f"sin {k}"]
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True), names


def embedding_frequency_norms(W_E: Float[Tensor, "vocab d_model"], p: int) -> Float[Tensor, " freq"]:
    """How much of the number embeddings lies at each frequency k = 1 .. (p-1)/2 (cos and sin together)."""
    basis, _ = fourier_basis(p)
    coefficients = basis @ W_E[:p].to(torch.float64)  # (1 + 2 * freqs, d_model)
    per_row = coefficients.pow(2).sum(-1)
    return (per_row[1::2] + per_row[2::2]).sqrt()


def key_frequencies(W_E: Float[Tensor, "vocab d_model"], p: int, share: float = 0.5) -> list[int]:
    """The frequencies the embedding is built on: those whose norm is at least `share` of the largest."""
    norms = embedding_frequency_norms(W_E, p)
    return [int(k) + 1 for k in torch.nonzero(norms >= share * norms.max()).flatten()]


@lru_cache(maxsize=2)
def logit_directions(p: int, frequencies: tuple[int, ...]) -> Float[Tensor, "dirs p_squared p"]:
    """cos(w(a + b - c)) and sin(w(a + b - c)) over every (a, b) and answer c, for w = 2 pi k / p, unit norm."""
    a, b, c = torch.meshgrid(*(torch.arange(p, dtype=torch.float64),) * 3, indexing="ij")
    out = []
    for k in frequencies:
        phase = 2 * math.pi * k * (a + b - c) / p
        out += [torch.cos(phase), torch.sin(phase)]
    directions = torch.stack(out).reshape(len(out), p * p, p)
    return directions / directions.flatten(1).norm(dim=1).view(-1, 1, 1)


def restricted_and_excluded(logits: Float[Tensor, "p_squared p"], p: int, frequencies: list[int]) -> tuple[Tensor, Tensor, float]:
    """Logits keeping only the key frequencies' cos/sin(w(a+b-c)) parts (restricted), the logits
    without them (excluded), and the share of the logits' variance those parts hold. Each (a, b)'s
    mean over c is kept in both: it does not change a softmax."""
    centred = logits.to(torch.float64) - logits.to(torch.float64).mean(-1, keepdim=True)
    directions = logit_directions(p, tuple(frequencies))  # orthonormal: distinct frequencies, cos and sin
    coefficients = torch.einsum("dxc,xc->d", directions, centred)
    key_part = torch.einsum("d,dxc->xc", coefficients, directions)
    mean = logits.to(torch.float64).mean(-1, keepdim=True)
    share = float(key_part.pow(2).sum() / centred.pow(2).sum())
    return mean + key_part, mean + centred - key_part, share
