"""Activation patching and head ablation.

Patching runs the corrupted input but copies one activation from the clean run, and asks how much
of the clean behaviour comes back (TransformerLens's `patching` module does the sweeps). Ablation
replaces one head's output on ordinary text and asks how much the loss rises.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from transformer_lens import patching as tl_patching
from transformer_lens import utilities as tl_utils

from explorer.errors import check_choice

ABLATIONS = ("zero", "mean", "resample")


def logit_difference(
    clean_answers: Int[torch.Tensor, "batch"], corrupt_answers: Int[torch.Tensor, "batch"]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Metric on the last position: logit of the clean run's answer minus the corrupted run's answer."""

    def metric(logits: Float[torch.Tensor, "batch pos vocab"]) -> torch.Tensor:
        last = logits[:, -1]  # (batch, vocab)
        rows = torch.arange(last.shape[0], device=last.device)
        return (last[rows, clean_answers] - last[rows, corrupt_answers]).mean()

    return metric


def normalized(metric: Callable, clean_value: float, corrupt_value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Rescale a metric so the corrupted run reads 0 and the clean run reads 1 (fraction recovered)."""
    return lambda logits: (metric(logits) - corrupt_value) / (clean_value - corrupt_value)


@torch.no_grad()
def patch_residual_stream(
    model, clean_tokens: Int[torch.Tensor, "batch pos"], corrupted_tokens: Int[torch.Tensor, "batch pos"], metric: Callable
) -> Float[torch.Tensor, "stage pos"]:
    """Metric after patching the clean residual stream at one (stage, position) into the corrupted run.

    Stage 0 is the stream before the first block (the embeddings), stage l+1 the stream after block l.
    """
    _, clean_cache = model.run_with_cache(clean_tokens)
    n_pos = clean_tokens.shape[1]
    before = tl_patching.generic_activation_patch(
        model, corrupted_tokens, clean_cache, metric, tl_patching.layer_pos_patch_setter, "resid_pre",
        index_df=tl_patching.make_df_from_ranges([1, n_pos], ["layer", "pos"]),
    )  # (pos,)
    after = tl_patching.generic_activation_patch(
        model, corrupted_tokens, clean_cache, metric, tl_patching.layer_pos_patch_setter, "resid_post",
        index_axis_names=["layer", "pos"],
    )  # (layer, pos)
    return torch.cat([before.unsqueeze(0), after]).cpu()


@torch.no_grad()
def patch_head_outputs(
    model, clean_tokens: Int[torch.Tensor, "batch pos"], corrupted_tokens: Int[torch.Tensor, "batch pos"], metric: Callable
) -> Float[torch.Tensor, "layer head"]:
    """Metric after patching one head's clean output (its z, at every position) into the corrupted run."""
    _, clean_cache = model.run_with_cache(clean_tokens)
    return tl_patching.get_act_patch_attn_head_out_all_pos(model, corrupted_tokens, clean_cache, metric).cpu()


def next_token_loss(logits: Float[torch.Tensor, "batch pos vocab"], tokens: Int[torch.Tensor, "batch pos"]) -> torch.Tensor:
    """Mean cross-entropy of predicting each next token."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


@torch.no_grad()
def ablate_heads(
    model, tokens: Int[torch.Tensor, "batch pos"], method: str, reference: Int[torch.Tensor, "batch pos"]
) -> tuple[float, Float[torch.Tensor, "layer head"]]:
    """Loss on `tokens` with each head's output replaced, one head at a time.

    zero: the head writes nothing. mean: it writes its average output over `reference` text, all
    positions pooled. resample: at each position it writes what it wrote at the same position of
    another sequence (`reference`, same shape). Returns (clean loss, loss per ablated head).
    """
    check_choice("ablation", method, ABLATIONS)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    z_names = [tl_utils.get_act_name("z", layer) for layer in range(n_layers)]
    _, ref_cache = model.run_with_cache(reference, names_filter=lambda name: name in z_names)
    clean_loss = next_token_loss(model(tokens), tokens).item()
    losses = torch.zeros(n_layers, n_heads)
    for layer in range(n_layers):
        ref_z = ref_cache[z_names[layer]]  # (batch, pos, head, d_head)
        for head in range(n_heads):
            if method == "zero":
                replacement = torch.zeros_like(ref_z[:, :, head])
            elif method == "mean":
                replacement = ref_z[:, :, head].mean(dim=(0, 1))
            else:
                replacement = ref_z[:, :, head]

            def replace(z, hook, head=head, replacement=replacement):
                z = z.clone()
                z[:, :, head] = replacement
                return z

            logits = model.run_with_hooks(tokens, fwd_hooks=[(z_names[layer], replace)])
            losses[layer, head] = next_token_loss(logits, tokens).item()
    return clean_loss, losses
