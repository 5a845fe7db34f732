"""DistilBERT through TransformerLens's BERT adapter: the same encoder, its weights renamed.

TransformerLens 4.x has no DistilBERT adapter, but DistilBERT is BERT with fewer layers, no
token-type embeddings and no pooler: the same embeddings, post-norm blocks (attention, add, layer
norm, GELU MLP, add, layer norm) and masked-LM head. So the checkpoint is copied weight by weight
into a `BertForMaskedLM` (token-type embedding zero: adding it changes nothing) and booted with
the bridge's BERT adapter, which gives the classic hooks (`blocks.{l}.attn.hook_pattern`, ...).
A test checks that the copy computes what DistilBERT computes.
"""

import json
import shutil
import tempfile
from pathlib import Path

import torch

ARCHITECTURE = "DistilBertForMaskedLM"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

# DistilBERT name (after `distilbert.transformer.layer.{i}.`) -> BERT name (after `bert.encoder.layer.{i}.`)
BLOCK_NAMES = {
    "attention.q_lin": "attention.self.query",
    "attention.k_lin": "attention.self.key",
    "attention.v_lin": "attention.self.value",
    "attention.out_lin": "attention.output.dense",
    "sa_layer_norm": "attention.output.LayerNorm",
    "ffn.lin1": "intermediate.dense",
    "ffn.lin2": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}
OTHER_NAMES = {
    "distilbert.embeddings.word_embeddings": "bert.embeddings.word_embeddings",
    "distilbert.embeddings.position_embeddings": "bert.embeddings.position_embeddings",
    "distilbert.embeddings.LayerNorm": "bert.embeddings.LayerNorm",
    "vocab_transform": "cls.predictions.transform.dense",
    "vocab_layer_norm": "cls.predictions.transform.LayerNorm",
    "vocab_projector": "cls.predictions.decoder",
}


def is_distilbert(path: str | Path) -> bool:
    config = json.loads((Path(path) / "config.json").read_text())
    return ARCHITECTURE in (config.get("architectures") or []) or config.get("model_type") == "distilbert"


def bert_name(name: str) -> str:
    if name.startswith("distilbert.transformer.layer."):
        layer, rest = name.removeprefix("distilbert.transformer.layer.").split(".", 1)
        module, leaf = rest.rsplit(".", 1)
        return f"bert.encoder.layer.{layer}.{BLOCK_NAMES[module]}.{leaf}"
    module, leaf = name.rsplit(".", 1)
    return f"{OTHER_NAMES[module]}.{leaf}"


def as_bert(distil) -> "torch.nn.Module":
    """A BertForMaskedLM computing what `distil` (a DistilBertForMaskedLM) computes."""
    from transformers import BertConfig, BertForMaskedLM

    d = distil.config
    if getattr(d, "sinusoidal_pos_embds", False):
        raise ValueError("DistilBERT with sinusoidal position embeddings has no BERT counterpart here")
    config = BertConfig(
        vocab_size=d.vocab_size, hidden_size=d.dim, num_hidden_layers=d.n_layers, num_attention_heads=d.n_heads,
        intermediate_size=d.hidden_dim, hidden_act=d.activation, max_position_embeddings=d.max_position_embeddings,
        type_vocab_size=1, layer_norm_eps=1e-12, pad_token_id=d.pad_token_id, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, attn_implementation="eager",
    )
    config.architectures = ["BertForMaskedLM"]
    bert = BertForMaskedLM(config)
    state = {bert_name(name): value for name, value in distil.state_dict().items()}
    state["bert.embeddings.token_type_embeddings.weight"] = torch.zeros(1, d.dim)
    state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
    missing, unexpected = bert.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.endswith("position_ids")]:
        raise ValueError(f"DistilBERT -> BERT: missing {missing}, unexpected {unexpected}")
    return bert.eval()


def load(path: str | Path, device=None):
    """The DistilBERT checkpoint at `path` (a hub snapshot) as a TransformerBridge over its BERT copy."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import BertForMaskedLM, DistilBertForMaskedLM

    bert = as_bert(DistilBertForMaskedLM.from_pretrained(str(path), attn_implementation="eager").eval())
    with tempfile.TemporaryDirectory() as folder:  # the bridge reads the tokenizer from a folder: DistilBERT's own
        for name in TOKENIZER_FILES:
            if (Path(path) / name).exists():
                shutil.copy(Path(path) / name, Path(folder) / name)
        bert.config.save_pretrained(folder)
        bridge = TransformerBridge.boot_transformers(folder, device=device, model_class=BertForMaskedLM, hf_model=bert)
    return bridge.eval()
