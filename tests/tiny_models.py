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
