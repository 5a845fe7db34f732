"""Attention, taken apart: scores, softmax with a temperature and a causal mask, positional
encodings, and the memory a KV cache needs.

- `run_attention` runs a TransformerBridge on one text and keeps, per layer, the real queries and
  keys (`hook_q`, `hook_k`) and the real pattern (`hook_pattern`). The pre-softmax scores are
  rebuilt from q and k: for BERT the bridge fires `hook_attn_scores` with the post-softmax
  weights, so that hook cannot be used for scores.
- `attention_pattern(scores, temperature, causal)` is softmax(scores / t), optionally with the
  future masked: t = 1 is what the model computes; t = 1/sqrt(d_head) undoes the 1/sqrt(d_head)
  scaling.
- Positional encodings are formulas (sinusoidal, RoPE, ALiBi), checked in the tests against the
  implementations in transformers.
- KV-cache bytes are arithmetic on published shapes.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from explorer.errors import ExplorerError, UnknownName, check_choice

Scores = Float[Tensor, "*head q_pos k_pos"]


# --------------------------------------------------------------------------- softmax and masks


def attention_scores(q: Float[Tensor, "pos head d_head"], k: Float[Tensor, "pos head d_head"]) -> Float[Tensor, "head q_pos k_pos"]:
    """Scaled dot products q·k / sqrt(d_head): what the softmax receives (before any mask)."""
    return torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])


def future_mask(n_pos: int, device: torch.device | str = "cpu") -> Bool[Tensor, "q_pos k_pos"]:
    """True where the key comes after the query: the cells a causal (GPT-style) mask removes."""
    return torch.ones(n_pos, n_pos, dtype=torch.bool, device=device).triu(diagonal=1)


def attention_pattern(scores: Scores, temperature: float = 1.0, causal: bool = False) -> Scores:
    """softmax(scores / temperature) over keys; with `causal`, future keys get exactly zero weight."""
    if temperature <= 0:
        raise ExplorerError(f"temperature must be positive, got {temperature}")
    logits = scores / temperature
    if causal:
        logits = logits.masked_fill(future_mask(scores.shape[-1], scores.device), float("-inf"))
    return logits.softmax(dim=-1)


def attention_entropy(pattern: Scores) -> Float[Tensor, "*head q_pos"]:
    """Entropy of each query's attention distribution, in bits (0 = one key, log2(n) = uniform)."""
    plogp = pattern * torch.log2(pattern.clamp_min(1e-30))  # 0·log 0 counts as 0
    return -plogp.sum(dim=-1)


# --------------------------------------------------------------------------- a real model's attention


@dataclass(frozen=True)
class AttentionRun:
    """One text through one model: tokens, and per layer the real scores and pattern."""

    tokens: list[str]
    scores: Float[Tensor, "layer head q_pos k_pos"]  # q·k / sqrt(d_head), rebuilt from hook_q and hook_k
    pattern: Float[Tensor, "layer head q_pos k_pos"]  # the model's own weights (hook_pattern)

    @property
    def n_layers(self) -> int:
        return self.scores.shape[0]

    @property
    def n_heads(self) -> int:
        return self.scores.shape[1]

    def head(self, layer: int, head: int) -> tuple[Float[Tensor, "q_pos k_pos"], Float[Tensor, "q_pos k_pos"]]:
        """(scores, pattern) of one head; an unknown layer or head raises UnknownName."""
        check_choice("layer", layer, range(self.n_layers))
        check_choice("head", head, range(self.n_heads))
        return self.scores[layer, head], self.pattern[layer, head]


def hook_name(layer: int, n_layers: int, hook: str = "hook_pattern") -> str:
    """`blocks.{layer}.attn.{hook}`, after checking the layer exists."""
    check_choice("layer", layer, range(n_layers))
    return f"blocks.{layer}.attn.{hook}"


@torch.no_grad()
def run_attention(bridge, ids: Int[Tensor, "1 pos"], tokens: list[str]) -> AttentionRun:
    """Run `bridge` once on `ids` and collect every layer's q, k and pattern (batch of one, no padding)."""
    n_layers = bridge.cfg.n_layers
    wanted = {hook_name(layer, n_layers, hook) for layer in range(n_layers) for hook in ("hook_q", "hook_k", "hook_pattern")}
    _, cache = bridge.run_with_cache(ids, names_filter=lambda name: name in wanted)
    scores, patterns = [], []
    for layer in range(n_layers):
        q = cache[hook_name(layer, n_layers, "hook_q")][0]  # (pos, head, d_head)
        k = cache[hook_name(layer, n_layers, "hook_k")][0]  # (pos, head, d_head)
        scores.append(attention_scores(q, k).float().cpu())  # (head, q_pos, k_pos)
        patterns.append(cache[hook_name(layer, n_layers)][0].float().cpu())  # (head, q_pos, k_pos)
    return AttentionRun(tokens, torch.stack(scores), torch.stack(patterns))


# --------------------------------------------------------------------------- positional encodings


def sinusoidal_encoding(n_pos: int, d_model: int, base: float = 10000.0) -> Float[Tensor, "pos d_model"]:
    """Vaswani et al. (2017): PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(p / base^(2i/d))."""
    angles = rope_angles(n_pos, d_model, base)  # (pos, d_model/2): the same p / base^(2i/d)
    encoding = torch.empty(n_pos, d_model, dtype=torch.float64)
    encoding[:, 0::2] = angles.sin()
    encoding[:, 1::2] = angles.cos()
    return encoding


def rope_frequencies(d_head: int, base: float = 10000.0) -> Float[Tensor, " pair"]:
    """Angular speed of each of the d_head/2 rotated pairs: base^(-2i/d_head), fastest first."""
    if d_head % 2:
        raise ExplorerError(f"rotary and sinusoidal encodings need an even width, got {d_head}")
    return base ** (-torch.arange(0, d_head, 2, dtype=torch.float64) / d_head)


def rope_angles(n_pos: int, d_head: int, base: float = 10000.0) -> Float[Tensor, "pos pair"]:
    """RoPE (Su et al. 2021) rotates pair i at position p by the angle p · base^(-2i/d_head)."""
    positions = torch.arange(n_pos, dtype=torch.float64)
    return positions[:, None] * rope_frequencies(d_head, base)[None, :]


def apply_rope(x: Float[Tensor, "*batch pos d_head"], base: float = 10000.0) -> Float[Tensor, "*batch pos d_head"]:
    """Rotate each (x[i], x[i + d/2]) pair by its position's angle: the half-split layout of Llama / GPT-NeoX."""
    n_pos, d_head = x.shape[-2], x.shape[-1]
    angles = rope_angles(n_pos, d_head, base).to(x.device, x.dtype)  # (pos, d_head/2)
    cos, sin = angles.cos(), angles.sin()
    first, second = x[..., : d_head // 2], x[..., d_head // 2 :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


def alibi_slopes(n_heads: int) -> Float[Tensor, " head"]:
    """Press et al. (2021): a geometric sequence starting at 2^(-8/n) with ratio 2^(-8/n).

    For a head count that is not a power of two, the paper takes the slopes of the nearest lower
    power of two and fills in every other slope of the next one.
    """
    if n_heads < 1:
        raise ExplorerError(f"ALiBi needs at least one head, got {n_heads}")
    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = [2 ** (-8 * (i + 1) / closest) for i in range(closest)]
    extra = [2 ** (-4 * (2 * i + 1) / closest) for i in range(n_heads - closest)]
    return torch.tensor(slopes + extra, dtype=torch.float64)


def alibi_bias(n_pos: int, n_heads: int) -> Float[Tensor, "head q_pos k_pos"]:
    """The bias ALiBi adds to the scores: -slope · (query - key); future keys are removed by the causal mask."""
    distance = torch.arange(n_pos, dtype=torch.float64)[:, None] - torch.arange(n_pos, dtype=torch.float64)[None, :]
    return -alibi_slopes(n_heads)[:, None, None] * distance  # (head, q_pos, k_pos)


POSITIONAL_ENCODINGS: dict[str, Callable[..., Tensor]] = {
    "sinusoidal": sinusoidal_encoding,
    "rope": rope_angles,
    "alibi": alibi_bias,
}


def positional_encoding(name: str, n_pos: int, width: int) -> Tensor:
    """By name: sinusoidal (pos, d_model), rope angles (pos, d_head/2), alibi bias (head, q, k)."""
    check_choice("positional encoding", name, POSITIONAL_ENCODINGS)
    return POSITIONAL_ENCODINGS[name](n_pos, width)


def relative_position_error(matrix: Float[Tensor, "q_pos k_pos"]) -> float:
    """How far a position-by-position matrix is from depending on (query - key) alone.

    Each diagonal of a matrix that depends only on the offset is constant; this is the largest
    spread found along any diagonal.
    """
    n = matrix.shape[0]
    spreads = [(d.max() - d.min()).item() for offset in range(-n + 1, n) if (d := matrix.diagonal(offset)).numel()]
    return max(spreads)


# --------------------------------------------------------------------------- KV cache


BYTES_PER_VALUE = {"fp16": 2, "fp32": 4}
KV_VARIANTS = ("mha", "gqa", "mqa")


@dataclass(frozen=True)
class AttentionShape:
    """What a KV cache's size depends on, as published in a model's config."""

    name: str
    n_layers: int
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads: n_heads for MHA, 1 for MQA, in between for GQA
    d_head: int
    n_ctx: int  # the longest context the model was trained for
    source: str

    @property
    def variant(self) -> str:
        if self.n_kv_heads == self.n_heads:
            return "mha"
        return "mqa" if self.n_kv_heads == 1 else "gqa"


def kv_cache_bytes(shape: AttentionShape, n_tokens: int, dtype: str = "fp16", batch: int = 1) -> int:
    """Keys and values (2) for every layer, KV head, head dimension and token: 2·L·H_kv·d_head·T·bytes."""
    check_choice("dtype", dtype, BYTES_PER_VALUE)
    return 2 * shape.n_layers * shape.n_kv_heads * shape.d_head * n_tokens * BYTES_PER_VALUE[dtype] * batch


def gqa_kv_heads(n_heads: int, group: int = 4) -> int | None:
    """KV heads if `group` query heads share one key/value head; None when `group` does not divide n_heads."""
    return n_heads // group if n_heads % group == 0 and n_heads > group else None


def with_kv_variant(shape: AttentionShape, variant: str) -> AttentionShape:
    """The same model with multi-head (one KV head per query head), grouped-query (4 query heads
    per KV head, or the model's own grouping) or multi-query (one KV head) attention."""
    check_choice("attention variant", variant, KV_VARIANTS)
    if variant == "mha":
        return replace(shape, n_kv_heads=shape.n_heads)
    if variant == "mqa":
        return replace(shape, n_kv_heads=1)
    if shape.variant == "gqa":
        return shape
    kv_heads = gqa_kv_heads(shape.n_heads)
    if kv_heads is None:
        raise ExplorerError(f"{shape.name}: {shape.n_heads} query heads cannot be split into groups of 4")
    return replace(shape, n_kv_heads=kv_heads)


# Published shapes, copied from each model's config.json on the Hugging Face hub (not downloaded here).
PUBLISHED_SHAPES: tuple[AttentionShape, ...] = (
    AttentionShape("GPT-2 small", 12, 12, 12, 64, 1024, "openai-community/gpt2 config.json: n_layer 12, n_head 12, n_embd 768, n_positions 1024"),
    AttentionShape("Pythia-70m", 6, 8, 8, 64, 2048, "EleutherAI/pythia-70m config.json: 6 layers, 8 heads, hidden 512, 2048 positions"),
    AttentionShape("Pythia-160m", 12, 12, 12, 64, 2048, "EleutherAI/pythia-160m config.json: 12 layers, 12 heads, hidden 768, 2048 positions"),
    AttentionShape("Llama-2-7B", 32, 32, 32, 128, 4096, "meta-llama/Llama-2-7b-hf config.json: 32 layers, 32 heads, 32 KV heads, hidden 4096, 4096 positions"),
    AttentionShape("Llama-3-8B", 32, 32, 8, 128, 8192, "meta-llama/Meta-Llama-3-8B config.json: 32 layers, 32 heads, 8 KV heads, hidden 4096, 8192 positions"),
    AttentionShape("Falcon-7B", 32, 71, 1, 64, 2048, "tiiuae/falcon-7b config.json: 32 layers, 71 heads, multi_query true, hidden 4544, 2048 positions"),
)


def shape_by_name(name: str, shapes: tuple[AttentionShape, ...] = PUBLISHED_SHAPES) -> AttentionShape:
    for shape in shapes:
        if shape.name == name:
            return shape
    raise UnknownName("model shape", name, [s.name for s in shapes])
