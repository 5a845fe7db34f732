"""Models: the small networks the articles train, and the single door to language models.

    from explorer import models
    model = models.load("attn-only-2l", scale=ctx.scale, device=ctx.device)   # trained here, cached
    model = models.load("gpt2", device=ctx.device)   # local Hugging Face cache, else ModelUnavailable
"""

import torch
from transformer_lens.model_bridge import TransformerBridge

from explorer.errors import UnknownName
from explorer.models.zoo import (  # noqa: F401  (re-exported API)
    ZOO,
    TrainingRun,
    heldout_tokens,
    token_strings,
    tokenizer,
    training_run,
)


def known() -> list[str]:
    from explorer.models import hub

    return [*ZOO, *hub.HUB]


def load(name: str, scale: str = "full", device: torch.device | str | None = None, step: int | None = None) -> TransformerBridge:
    """Any model by name: a zoo model (trained on demand at `scale`) or a pretrained hub model."""
    from explorer.models import hub, zoo

    if name in ZOO:
        return zoo.load(name, scale=scale, device=device, step=step)
    if name in hub.HUB:
        return hub.load(name, device=device)
    raise UnknownName("model", name, known())
