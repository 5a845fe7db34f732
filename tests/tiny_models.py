"""Tiny randomly initialised models for unit tests, with every parameter away from its initial value."""

import torch
from transformer_lens.model_bridge import TransformerBridge
import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)


def scrambled(model: TransformerBridge, seed: int = 0) -> TransformerBridge:
    """Layer-norm weights away from 1 and biases away from 0, so the terms that depend on them are
    exercised (a fresh layer norm is the identity up to scale, a zero bias adds nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() != 1:
                continue
            ln_weight = ".ln" in name and name.endswith("weight") or name.startswith("ln_out") and name.endswith("weight")
            param.copy_((1.0 if ln_weight else 0.0) + 0.3 * torch.randn(param.shape, generator=g))
    return model


def tiny(n_layers: int = 2, normalization_type: str | None = "LN", seed: int = 0, **cfg) -> TransformerBridge:
    arch = dict(n_layers=n_layers, d_model=32, n_ctx=40, d_head=8, n_heads=4, d_vocab=50, attn_only=True,
                normalization_type=normalization_type, seed=seed) | cfg
    return scrambled(TransformerBridge.boot_native(arch).eval(), seed)


def gpt2_in_hub_cache(root, words: list[str], unk: str, eos: str | None = None) -> None:
    """A random-init GPT-2-architecture checkpoint laid out as the Hugging Face cache stores it, with a
    word-level tokenizer over `words` (id = index; `eos`, when given, is one of them)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    special = words.index(eos) if eos is not None else 0
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=len(words), bos_token_id=special, eos_token_id=special)
    _in_hub_cache(root / "models--openai-community--gpt2", GPT2LMHeadModel(cfg), words, unk, eos)


def pythia_in_hub_cache(root, words: list[str], unk: str, eos: str | None = None) -> None:
    """The same for Pythia's architecture (GPT-NeoX: rotary positions on a quarter of each head,
    attention and MLP in parallel), under pythia-70m's repository name."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    special = words.index(eos) if eos is not None else 0
    cfg = GPTNeoXConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=128, max_position_embeddings=64,
                        vocab_size=len(words), bos_token_id=special, eos_token_id=special, rotary_pct=0.25)
    _in_hub_cache(root / "models--EleutherAI--pythia-70m", GPTNeoXForCausalLM(cfg), words, unk, eos)


def distilbert_in_hub_cache(root, model, words: list[str]) -> None:
    """A DistilBERT checkpoint (`model`) under distilbert-base-uncased's repository name, with a
    word-level tokenizer over `words`, which must include BERT's bracketed special tokens."""
    _in_hub_cache(root / "models--distilbert--distilbert-base-uncased", model, words, "[UNK]", None,
                  cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]")


def _in_hub_cache(repo, model, words: list[str], unk: str, eos: str | None, **special) -> None:
    from tokenizers import Tokenizer, models as tok_models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    snapshot = repo / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    model.save_pretrained(snapshot)
    tok = Tokenizer(tok_models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    extra = {"eos_token": eos} if eos is not None else {}
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, **extra, **special).save_pretrained(snapshot)
