"""Fused attention for TL-native models whenever nobody is looking at the pattern.

TransformerLens computes attention explicitly so that `hook_pattern` can read and edit the
(batch, head, query, key) pattern. Training never looks at it, and materialising it is most of
what TransformerBridge costs over a plain PyTorch model. `use_fused_attention` makes each
attention layer call `F.scaled_dot_product_attention` while no hook (TransformerLens or plain
PyTorch, forward or backward) is attached to its `hook_pattern` or `hook_attn_scores`, and fall
back to TransformerLens's own code the moment one is, the way Hugging Face's "sdpa" attention
falls back to eager when asked for attention weights. Every other hook (q, k, v, z, result,
residual stream) fires as before.
"""

import torch.nn.functional as F
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.sources.native.model import NativeAttention
from transformer_lens.utilities.activation_functions import softcap_enabled


def _observed(hook: HookPoint) -> bool:
    """Whether any forward or backward hook would see this hook point's activation."""
    module = nn.modules.module
    return bool(
        hook._forward_hooks or hook._forward_pre_hooks or hook._backward_hooks
        or module._global_forward_hooks or module._global_forward_pre_hooks or module._global_backward_hooks
    )


class FusedWhenUnobservedAttention(NativeAttention):
    """NativeAttention that skips building the pattern when no hook would read it."""

    pattern_hooks: tuple[HookPoint, ...]  # set by use_fused_attention

    def _can_fuse(self, attention_mask) -> bool:
        plain = attention_mask is None and self.rotary is None and self.causal  # position_ids only matter to rotary
        return plain and self.kv_repeats == 1 and not softcap_enabled(self.attn_scores_soft_cap) and not any(map(_observed, self.pattern_hooks))

    def forward(self, hidden_states: Tensor, attention_mask=None, position_ids=None, pattern_fn=None, **kwargs):
        if not self._can_fuse(attention_mask):
            return super().forward(hidden_states, attention_mask, position_ids, pattern_fn, **kwargs)
        batch, seq, _ = hidden_states.shape
        q, k, v = (
            proj(hidden_states).view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)  # (batch, head, pos, d_head)
            for proj in (self.q, self.k, self.v)
        )
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / self.scale)  # (batch, head, pos, d_head)
        return self.o(z.transpose(1, 2).reshape(batch, seq, -1)), None  # no pattern: nobody asked for one


def use_fused_attention(bridge: TransformerBridge) -> TransformerBridge:
    """Switch every attention layer of a TL-native bridge to the fused-when-unobserved path (in place)."""
    for block in bridge.blocks:
        native = block.attn.original_component
        if not isinstance(native, NativeAttention):
            raise TypeError(f"use_fused_attention needs a TL-native model; {block.attn.name} wraps {type(native).__name__}")
        native.__class__ = FusedWhenUnobservedAttention
        native.pattern_hooks = (block.attn.hook_pattern, block.attn.hook_attn_scores)  # a tuple: not registered as submodules
    return bridge
