"""Reading the residual stream in the vocabulary: the logit lens and direct logit attribution.

Both use the model's own final layer norm and unembedding, so they work on any TransformerBridge
(native models and wrapped Hugging Face ones alike) without folding weights.
"""

import torch
from jaxtyping import Float, Int


def resid_hook_names(n_layers: int) -> list[str]:
    """The residual stream before the first block, then after each block."""
    return ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(n_layers)]


def resid_labels(n_layers: int) -> list[str]:
    return ["embed"] + [f"after L{layer}" for layer in range(n_layers)]


@torch.no_grad()
def logit_lens(model, tokens: Int[torch.Tensor, "batch pos"]) -> Float[torch.Tensor, "stage batch pos vocab"]:
    """Logits the model would output if it stopped after each block: unembed(ln_final(resid)).

    The final layer norm recomputes its statistics from each stage's residual stream, as the model
    would if the remaining blocks added nothing. The last stage is exactly the model's output.
    """
    names = resid_hook_names(model.cfg.n_layers)
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    return torch.stack([model.unembed(model.ln_final(cache[name])) for name in names])


READOUT_BYTES = 2**28  # logits read out at once by `logit_lens_top1`: 256 MB, the zoo's whole batch in one go


@torch.no_grad()
def logit_lens_top1(model, tokens: Int[torch.Tensor, "batch pos"]) -> Int[torch.Tensor, "stage batch pos"]:
    """The logit lens's top prediction at every stage, without its full-vocabulary tensor.

    Same read-out as `logit_lens`, one stage at a time and in chunks of rows of at most
    READOUT_BYTES of logits (GPT-2's 50,257 logits for 16 rows of 1024 tokens at 13 stages would
    be 43 GB); only the residual streams are cached.
    """
    names = resid_hook_names(model.cfg.n_layers)
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    per_row = tokens.shape[1] * model.cfg.d_vocab * 4
    chunk = max(1, READOUT_BYTES // per_row)
    return torch.stack([
        torch.cat([model.unembed(model.ln_final(cache[name][i : i + chunk])).argmax(-1) for i in range(0, tokens.shape[0], chunk)])
        for name in names
    ])


@torch.no_grad()
def direct_logit_attribution(
    model, tokens: Int[torch.Tensor, "batch pos"], targets: Int[torch.Tensor, "batch pos"]
) -> tuple[Float[torch.Tensor, "component batch pos"], list[str], Float[torch.Tensor, "batch pos"], Float[torch.Tensor, "batch pos"]]:
    """How much each component writes the logit of `targets` straight through the unembedding.

    The final residual stream is a sum: token embedding, positional embedding, each head's output,
    each layer's attention output bias and each MLP's output. The final layer norm is affine once
    its scale is frozen at the value of this very run, so each term's share of the logit is
    ln_final.w * centre(term) / scale, dotted with the target's unembedding column. With the frozen
    scale the shares plus a constant (ln_final.b and b_U) add up to the logit exactly; the
    approximation is only in reading the frozen scale as "not caused by" the component.

    Returns (contributions, labels, constant, logits), where logits are the model's own.
    """
    logits, cache = model.run_with_cache(tokens)
    n_layers = model.cfg.n_layers
    parts, labels = [cache["hook_embed"]], ["embed"]
    if "hook_pos_embed" in cache.cache_dict:
        parts.append(cache["hook_pos_embed"])
        labels.append("pos_embed")
    heads, head_labels = cache.stack_head_results(layer=-1, return_labels=True)  # (layer*head, batch, pos, d_model)
    heads_by_layer = heads.reshape(n_layers, model.cfg.n_heads, *heads.shape[1:])
    for layer in range(n_layers):
        parts.extend(heads_by_layer[layer])
        labels.extend(head_labels[layer * model.cfg.n_heads : (layer + 1) * model.cfg.n_heads])
        parts.append(cache[f"blocks.{layer}.hook_attn_out"] - heads_by_layer[layer].sum(0))  # b_O
        labels.append(f"L{layer} attn bias")
        mlp = f"blocks.{layer}.hook_mlp_out"
        if mlp in cache.cache_dict:
            parts.append(cache[mlp])
            labels.append(f"MLP{layer}")
    stack = torch.stack(parts)  # (component, batch, pos, d_model)
    normed = cache.apply_ln_to_stack(stack, layer=None)  # centred and divided by the frozen scale
    weight = getattr(model.ln_final, "w", None)
    bias = getattr(model.ln_final, "b", None)
    if weight is not None:
        normed = normed * weight
    directions = model.W_U[:, targets]  # (d_model, batch, pos)
    contributions = torch.einsum("cbpd,dbp->cbp", normed, directions)
    constant = model.b_U[targets] if model.b_U is not None else torch.zeros_like(contributions[0])
    if bias is not None:
        constant = constant + torch.einsum("d,dbp->bp", bias, directions)
    model_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return contributions, labels, constant, model_logits
