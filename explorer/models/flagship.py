"""The flagship: a byte-level 2-layer attention-only transformer trained on real Python source.

The zoo's BPE models saw 1-6M tokens and never formed induction heads on text; at 256 byte values a
model of the same size sees tens of millions of tokens in minutes on one CPU thread, and does. It
trains as a plain PyTorch model (explorer.models.reference.PlainTransformer, fused attention, no
hooks: about four times faster) in the long-run tier (explorer/longruns/flagship.py), and the
articles read it as a TransformerLens model: `to_lens_weights` maps the plain state dict onto
TransformerBridge's native layout, and a test checks the two give the same logits.
"""

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from explorer.models.flagship_config import ARCH, PRINTABLE, SEEDS, name  # noqa: F401 (re-exported)


def arch_of(plain: dict[str, Tensor]) -> dict[str, Any]:
    """The flagship architecture these PlainTransformer weights were trained with: ARCH, or ARCH with MLPs
    (the GELU flagship of explorer/longruns/flagship_gelu.py) when the state dict has them."""
    if "blocks.0.mlp.0.weight" not in plain:
        return dict(ARCH)
    return dict(ARCH, attn_only=False, d_mlp=int(plain["blocks.0.mlp.0.weight"].shape[0]))


def to_lens_weights(plain: dict[str, Tensor], arch: dict[str, Any] | None = None) -> dict[str, Tensor]:
    """PlainTransformer's state dict in TransformerBridge's native names (q/k/v split out of qkv; a zero unembed bias)."""
    arch = arch or arch_of(plain)
    d = arch["d_model"]
    out = {"embed.weight": plain["embed.weight"], "pos_embed.weight": plain["pos.weight"],
           "ln_final.weight": plain["ln_final.weight"], "ln_final.bias": plain["ln_final.bias"],
           "unembed.weight": plain["unembed.weight"], "unembed.bias": torch.zeros(arch["d_vocab"], dtype=plain["unembed.weight"].dtype)}  # fmt: skip
    for layer in range(arch["n_layers"]):
        p, q = f"blocks.{layer}.", f"blocks.{layer}."
        out[q + "ln1.weight"], out[q + "ln1.bias"] = plain[p + "ln1.weight"], plain[p + "ln1.bias"]
        weights, biases = plain[p + "qkv.weight"].split(d, 0), plain[p + "qkv.bias"].split(d, 0)  # each (d, d), (d,)
        for part, w, b in zip("qkv", weights, biases, strict=True):
            out[q + f"attn.{part}.weight"], out[q + f"attn.{part}.bias"] = w, b
        out[q + "attn.o.weight"], out[q + "attn.o.bias"] = plain[p + "out.weight"], plain[p + "out.bias"]
        if not arch["attn_only"]:  # nn.Sequential(Linear, GELU, Linear) -> mlp.in / mlp.out
            out[q + "ln2.weight"], out[q + "ln2.bias"] = plain[p + "ln2.weight"], plain[p + "ln2.bias"]
            out[q + "mlp.in.weight"], out[q + "mlp.in.bias"] = plain[p + "mlp.0.weight"], plain[p + "mlp.0.bias"]
            out[q + "mlp.out.weight"], out[q + "mlp.out.bias"] = plain[p + "mlp.2.weight"], plain[p + "mlp.2.bias"]
    return {k: v.detach().float().clone() for k, v in out.items()}


def lens_model(plain: dict[str, Tensor], arch: dict[str, Any] | None = None, device: torch.device | str | None = None, tokenizer=None):
    """A TransformerBridge in eval mode with these weights (attention turns explicit when a hook reads the pattern)."""
    from explorer.models import training

    arch = arch or arch_of(plain)
    model = training.build_bridge(dict(arch), tokenizer=tokenizer, device=device)
    model.load_state_dict(to_lens_weights(plain, arch))
    return model.eval()


def encode(text: str) -> Int[Tensor, " pos"]:
    """Text as the model reads it: its UTF-8 bytes."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


MODEL_NAME = "flagship-bytes-2l"  # the articles' name for seed 0, the flagship the interpretability pages read


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-in character for each byte value (so a byte-level tokenizer can hold all 256)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def byte_tokenizer():
    """A tokenizer whose token id is the byte value (no merges, no special tokens), as TransformerBridge wants one.

    A fresh one per model: the bridge writes its special tokens into the tokenizer it is given. Byte 0
    is the unknown token, so the end-of-text token the bridge asks for maps onto it instead of a
    257th id the model does not have (prompts.start_tokens then sees that there is none)."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers import models as token_models
    from transformers import PreTrainedTokenizerFast

    symbols = _byte_symbols()
    tok = Tokenizer(token_models.BPE(vocab={s: b for b, s in enumerate(symbols)}, merges=[], unk_token=symbols[0]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=symbols[0])
    wrapped.byte_level_flagship = True  # read by prompts.sampling_vocab
    return wrapped


def stored(seed: int = 0):
    """A stored flagship run (literal names, so a figure that loads one hashes its provenance)."""
    from explorer import artifacts

    return {0: lambda: artifacts.load("flagship-bytes-2l-s0"), 1: lambda: artifacts.load("flagship-bytes-2l-s1"),
            2: lambda: artifacts.load("flagship-bytes-2l-s2")}[seed]()  # fmt: skip


def load(seed: int = 0, step: int | None = None, device: torch.device | str | None = None):
    """The trained flagship (or a checkpoint of its run) as a TransformerBridge that reads text as bytes."""
    run = stored(seed)
    weights = run.weights if step is None else run.checkpoints[step]
    return lens_model(weights, device=device, tokenizer=byte_tokenizer())


def heldout_rows(n_rows: int, n_ctx: int = ARCH["n_ctx"]) -> Int[Tensor, "rows n_ctx"]:
    """The training run's held-out rows (code it never saw), rebuilt exactly as the run built them."""
    import numpy as np

    from explorer.data import code_corpus
    from explorer.longruns import flagship as run

    data = code_corpus.corpus_bytes("heldout", run.HELDOUT_LIMIT)
    starts = np.linspace(0, len(data) - ARCH["n_ctx"] - 1, n_rows).astype(np.int64)
    return run.windows(data, starts, ARCH["n_ctx"])[:, :n_ctx]
