"""Attention and position: the MiniLM loader, softmax with temperature and mask, positional
encodings against transformers' own implementations, KV-cache arithmetic, and the article's claims."""

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.bloom.modeling_bloom import build_alibi_tensor
from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from explorer.errors import ExplorerError, UnknownName
from explorer.models.minilm import load_minilm, minilm_config, tokenize
from explorer.techniques import attention as A


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def minilm_run():
    bridge = load_minilm("cpu")  # shared with the smoke build in this process
    return A.run_attention(bridge, *tokenize(bridge, "The cat sat on the mat."))


# --------------------------------------------------------------------------- the real model


def test_minilm_loads_offline_with_its_published_shape(minilm_run):
    assert minilm_config() == {"n_layers": 6, "n_heads": 12, "d_model": 384, "d_head": 32, "n_ctx": 512}
    assert minilm_run.tokens[0] == "[CLS]" and minilm_run.tokens[-1] == "[SEP]"
    assert minilm_run.pattern.shape == (6, 12, len(minilm_run.tokens), len(minilm_run.tokens))


def test_minilm_rows_sum_to_one_and_scores_rebuild_the_pattern(minilm_run):
    assert torch.allclose(minilm_run.pattern.sum(-1), torch.ones(6, 12, len(minilm_run.tokens)), atol=1e-5)
    assert torch.allclose(A.attention_pattern(minilm_run.scores), minilm_run.pattern, atol=1e-5)


def test_minilm_weights_are_pretrained_not_random(minilm_run):
    # Layer 0 of the checkpoint has a near-perfect previous-token head; random weights do not.
    previous = minilm_run.pattern[0].diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (head,)
    assert previous.max() > 0.9


def test_unknown_layer_or_head_is_named(minilm_run):
    with pytest.raises(UnknownName, match="unknown layer 6"):
        minilm_run.head(6, 0)
    with pytest.raises(UnknownName, match="unknown head 12"):
        minilm_run.head(0, 12)
    with pytest.raises(UnknownName, match="layer"):
        A.hook_name(-1, 6)


# --------------------------------------------------------------------------- softmax, mask, temperature


def test_causal_mask_zeroes_the_future_and_keeps_rows_normalised():
    scores = torch.randn(3, 7, 7)
    pattern = A.attention_pattern(scores, causal=True)
    assert pattern.triu(diagonal=1).abs().max() == 0
    assert torch.allclose(pattern.sum(-1), torch.ones(3, 7))
    assert torch.allclose(pattern[:, 0, 0], torch.ones(3))  # the first token can only read itself


def test_entropy_falls_with_temperature():
    scores = torch.randn(4, 9, 9) * 3
    entropies = [A.attention_entropy(A.attention_pattern(scores, t)).mean().item() for t in (4.0, 1.0, 0.25, 0.05)]
    assert entropies == sorted(entropies, reverse=True)
    assert A.attention_entropy(torch.full((5,), 0.2)).item() == pytest.approx(math.log2(5))
    with pytest.raises(ExplorerError):
        A.attention_pattern(scores, 0.0)


def test_scores_match_torch_scaled_dot_product_attention():
    q, k, v = torch.randn(3, 5, 2, 16)  # (pos, head, d_head) each
    ours = A.attention_pattern(A.attention_scores(q, k), causal=True) @ v.transpose(0, 1)  # (head, pos, d_head)
    reference = torch.nn.functional.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True)
    assert torch.allclose(ours, reference, atol=1e-5)


# --------------------------------------------------------------------------- positional encodings


def test_sinusoidal_matches_the_formula_and_distilbert():
    encoding = A.sinusoidal_encoding(20, 16)
    p, i = 7, 3
    assert encoding[p, 2 * i].item() == pytest.approx(math.sin(p / 10000 ** (2 * i / 16)))
    assert encoding[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * i / 16)))
    reference = torch.empty(20, 16)
    create_sinusoidal_embeddings(20, 16, reference)
    assert torch.allclose(encoding.float(), reference, atol=1e-6)


def test_rope_matches_llama_and_depends_on_relative_position_only():
    config = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=4)  # head_dim 16, base 10000
    q, k = torch.randn(2, 1, 4, 10, 16, dtype=torch.float64)  # (batch, head, pos, d_head)
    positions = torch.arange(10)[None]
    cos, sin = LlamaRotaryEmbedding(config)(q.float(), positions)
    reference_q, _ = apply_rotary_pos_emb(q.float(), k.float(), cos, sin)
    assert torch.allclose(A.apply_rope(q).float(), reference_q, atol=1e-5)

    one_q, one_k = torch.randn(2, 16, dtype=torch.float64)
    rotated_q, rotated_k = A.apply_rope(one_q.expand(12, 16)), A.apply_rope(one_k.expand(12, 16))
    scores = rotated_q @ rotated_k.T  # (q_pos, k_pos)
    assert A.relative_position_error(scores) < 1e-10
    assert scores[5, 2].item() == pytest.approx(scores[9, 6].item())  # same offset, same score
    assert A.relative_position_error(torch.randn(6, 6)) > 0.1  # the check itself can fail


def test_alibi_slopes_match_bloom():
    for n_heads in (8, 12):  # a power of two, and the interleaved case
        reference = build_alibi_tensor(torch.ones(1, 3), n_heads, torch.float64)[:, 0, 1]  # slope x key position 1
        assert torch.allclose(A.alibi_slopes(n_heads), reference)
    bias = A.alibi_bias(5, 8)
    assert bias[0, 4, 1].item() == pytest.approx(-0.5 * 3)
    assert (bias.diagonal(dim1=-2, dim2=-1) == 0).all()


def test_unknown_encoding_is_named():
    with pytest.raises(UnknownName, match="unknown positional encoding 'learned'; known: alibi, rope, sinusoidal"):
        A.positional_encoding("learned", 8, 8)
    assert A.positional_encoding("rope", 8, 8).shape == (8, 4)


# --------------------------------------------------------------------------- KV cache


def test_kv_cache_bytes_for_published_shapes():
    gpt2 = A.shape_by_name("GPT-2 small")
    assert A.kv_cache_bytes(gpt2, 1024, "fp16") == 2 * 12 * 12 * 64 * 1024 * 2 == 37_748_736
    assert A.kv_cache_bytes(gpt2, 1024, "fp32") == 2 * A.kv_cache_bytes(gpt2, 1024, "fp16")
    llama3 = A.shape_by_name("Llama-3-8B")
    assert llama3.variant == "gqa"
    assert A.kv_cache_bytes(A.with_kv_variant(llama3, "mha"), 100) == 4 * A.kv_cache_bytes(llama3, 100)
    assert A.with_kv_variant(llama3, "mqa").n_kv_heads == 1
    assert A.with_kv_variant(A.shape_by_name("Pythia-160m"), "gqa").n_kv_heads == 3
    with pytest.raises(ExplorerError, match="groups of 4"):
        A.with_kv_variant(A.shape_by_name("Falcon-7B"), "gqa")


def test_kv_cache_unknown_names():
    gpt2 = A.shape_by_name("GPT-2 small")
    with pytest.raises(UnknownName, match="unknown dtype 'int8'"):
        A.kv_cache_bytes(gpt2, 8, "int8")
    with pytest.raises(UnknownName, match="unknown attention variant 'mla'"):
        A.with_kv_variant(gpt2, "mla")
    with pytest.raises(UnknownName, match="unknown model shape 'GPT-5'"):
        A.shape_by_name("GPT-5")


# --------------------------------------------------------------------------- the article's claims


def test_heads_claims(smoke_claims):
    claims = smoke_claims("attention-heads")
    assert claims["row_sum_error"] < 1e-5
    assert claims["recompute_error"] < 1e-5
    assert claims["causal_future_max"] == 0
    assert 0.05 < claims["future_share"] < 0.5
    assert claims["entropy_unscaled"] < claims["entropy_t1"] < claims["entropy_t2"]
    assert claims["entropy_monotone_share"] == 1.0
    assert claims["peaked_share_unscaled"] > 2 * claims["peaked_share_t1"]
    assert claims["unscaled_temperature"] == pytest.approx(1 / math.sqrt(32), rel=1e-4)
    assert claims["prev_head_weight"] > 0.9 and claims["prev_head_layer"] == 0
    assert 0.2 < claims["special_share"] < 0.8
    # every habit against what attention spread evenly over the sentence would give
    assert claims["prev_head_weight"] > 10 * claims["uniform_neighbour_weight"]
    assert claims["next_head_weight"] > 5 * claims["uniform_neighbour_weight"]
    assert claims["special_share"] > 2 * claims["uniform_special_share"]
    assert claims["future_share"] < claims["uniform_future_share"]
    assert claims["entropy_t1"] < claims["uniform_entropy"] < claims["entropy_t2"] + 1
    assert claims["sink_head_share"] > max(0.8, claims["special_share"])
    assert claims["masked_next_head_cls_share"] > 0.5  # masked, the next-token head falls back on [CLS]


def test_heads_figure_shows_the_sentence_as_text(smoke):
    """The text view's tokens are the sentence itself, whitespace kept (no ids, no grid cells), and
    keys hidden by the causal mask are not drawn (they must differ from a small weight)."""
    import json

    from explorer import jsonio

    from build_figures.attention import SENTENCES, SPECIAL_TOKENS

    spec = smoke.spec("attention-heads")
    text = spec["usermeta"]["explorer"]["text"]
    assert text["tokens"] == "tokens" and text["color"]["data"] == "attn"
    for key in list(SENTENCES)[:2]:
        payload = jsonio.read_json(smoke.path("attention-heads") / "sentences" / f"{key}.json")
        words = [t["t"] for t in payload["tokens"] if t["t"] not in SPECIAL_TOKENS]
        assert "".join(words) == SENTENCES[key]
        assert all(len(row["w"]) == len(payload["tokens"]) for row in payload["attn"])
    assert "!datum.masked" in json.dumps(spec)


def test_positional_claims(smoke_claims):
    claims = smoke_claims("attention-positional-encodings")
    assert claims["sinusoidal_relative_error"] < 1e-9
    assert claims["rope_relative_error"] < 1e-9
    assert claims["sinusoidal_self_similarity"] == pytest.approx(32)  # d_model / 2: sin² + cos² per pair
    assert claims["rope_fastest_wavelength"] == pytest.approx(2 * math.pi, rel=1e-3)
    assert claims["rope_slowest_wavelength"] == pytest.approx(2 * math.pi * 10000 ** (62 / 64), rel=1e-3)
    assert claims["alibi_first_slope"] == 0.5
    assert claims["alibi_last_slope"] == pytest.approx(1 / 256)
    assert claims["alibi_bias_far"] == pytest.approx(-0.5 * 31)


def test_kv_cache_claims(smoke_claims):
    claims = smoke_claims("attention-kv-cache")
    assert claims["gpt2_1024_fp16_bytes"] == 37_748_736
    assert claims["gpt2_1024_fp16_mb"] == pytest.approx(37.7, abs=0.1)
    assert claims["minilm_512_fp32_mb"] == pytest.approx(2 * 6 * 12 * 32 * 512 * 4 / 1e6, rel=1e-3)
    assert claims["llama3_8192_fp16_gib"] == pytest.approx(1.0)
    assert claims["llama3_as_mha_8192_fp16_gib"] == pytest.approx(4.0)
    assert claims["falcon_as_mha_2048_fp16_gb"] == pytest.approx(71 * claims["falcon_2048_fp16_mb"] / 1000, rel=1e-3)
