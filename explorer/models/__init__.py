"""Models: the small networks the articles train, and the single door to language models.

    from explorer import models
    model = models.load("attn-only-2l", scale=ctx.scale, device=ctx.device)   # trained here, cached
    model = models.load("gpt2", device=ctx.device)   # local Hugging Face cache, else ModelUnavailable

The zoo API (ZOO, training_run, heldout_tokens, token_strings, TrainingRun) is imported on first
use, so that `import explorer.models.mlp` does not pay for importing TransformerLens. A zoo model's
tokenizer is `explorer.models.zoo.tokenizer(name)` (or `models.load(name).tokenizer`):
`explorer.models.tokenizer` is the module that builds tokenizers.
"""

import importlib

from explorer.errors import UnknownName

_ZOO_API = ("ZOO", "TrainingRun", "heldout_tokens", "token_strings", "training_run")


def __getattr__(name: str):
    if name in _ZOO_API:
        return getattr(importlib.import_module("explorer.models.zoo"), name)
    raise AttributeError(f"module 'explorer.models' has no attribute {name!r}")


def known() -> list[str]:
    from explorer.models import hub, zoo

    return [*zoo.ZOO, *hub.HUB]


def load(name: str, scale: str = "full", device=None, step: int | None = None):
    """Any model by name, as a TransformerBridge: a zoo model (trained on demand at `scale`) or a
    pretrained hub model."""
    from explorer.models import hub, zoo

    if name in zoo.ZOO:
        return zoo.load(name, scale=scale, device=device, step=step)
    if name in hub.HUB:
        return hub.load(name, device=device)
    raise UnknownName("model", name, known())
