"""Pretrained models from the local Hugging Face cache, wrapped with TransformerBridge.

The site builds offline: nothing is downloaded. A model whose weights are not in the cache raises
ModelUnavailable, and the pipeline skips (does not fail) the figures that asked for it.
"""

import os

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.sources import transformers as _transformers_source  # noqa: F401  (attaches boot_transformers)

from explorer.errors import ModelUnavailable

# Short name -> Hugging Face repository id.
HUB: dict[str, str] = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "distilgpt2": "distilbert/distilgpt2",
    "pythia-70m": "EleutherAI/pythia-70m",
    "pythia-160m": "EleutherAI/pythia-160m",
    "pythia-410m": "EleutherAI/pythia-410m",
    "distilbert-base-uncased": "distilbert/distilbert-base-uncased",
}


def cache_dir() -> str | None:
    """The hub cache to read, looked up at call time (HF_HUB_CACHE, else HF_HOME/hub, else the default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def local_path(name: str) -> str:
    """The snapshot folder of `name` in the local cache; ModelUnavailable when it is not there."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo = HUB[name]
    try:
        return snapshot_download(repo, cache_dir=cache_dir(), local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError) as exc:
        raise ModelUnavailable(f"model {name!r} ({repo}) is not in the local Hugging Face cache and this build is offline") from exc


ENCODERS = ("distilbert-base-uncased",)  # they read both ways: only the head articles apply to them


def load(name: str, device: torch.device | str | None = None) -> TransformerBridge:
    from explorer.models import distilbert

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = local_path(name)
    try:
        if distilbert.is_distilbert(path):  # TransformerLens has no DistilBERT adapter: through its BERT one
            return distilbert.load(path, device=device)
        model = TransformerBridge.boot_transformers(path, device=device)
    except OSError as exc:  # e.g. the snapshot lacks its weights or tokenizer files
        raise ModelUnavailable(f"model {name!r} is only partly in the local Hugging Face cache ({exc.__class__.__name__})") from exc
    return model.eval()
