"""Activation patching and head ablation.

Patching runs the corrupted input but copies one activation from the clean run, and asks how much
of the clean behaviour comes back (TransformerLens's `patching` module does the sweeps). Ablation
replaces one head's output on ordinary text and asks how much the loss rises.
"""

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Float, Int
from transformer_lens import patching as tl_patching
from transformer_lens import utilities as tl_utils

from explorer.errors import ModelUnavailable, check_choice
from explorer.models.training import next_token_loss

ABLATIONS = ("zero", "mean", "resample")


class TooCostly(ModelUnavailable):
    """A sweep this model makes too costly for this machine: its figure is skipped (one line says why), not failed."""


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
    model, clean_tokens: Int[torch.Tensor, "batch pos"], corrupted_tokens: Int[torch.Tensor, "batch pos"], metric: Callable,
    positions: Sequence[int] | None = None,
) -> Float[torch.Tensor, "stage pos"]:
    """Metric after patching the clean residual stream at one (stage, position) into the corrupted run.

    Stage 0 is the stream before the first block (the embeddings), stage l+1 the stream after block l.
    `positions`: only these columns (in this order), for long inputs where most positions are context.
    """
    import pandas as pd

    _, clean_cache = model.run_with_cache(clean_tokens)
    n_pos = clean_tokens.shape[1]
    if positions is None:
        before = tl_patching.generic_activation_patch(
            model, corrupted_tokens, clean_cache, metric, tl_patching.layer_pos_patch_setter, "resid_pre",
            index_df=tl_patching.make_df_from_ranges([1, n_pos], ["layer", "pos"]),
        )  # (pos,)
        after = tl_patching.generic_activation_patch(
            model, corrupted_tokens, clean_cache, metric, tl_patching.layer_pos_patch_setter, "resid_post",
            index_axis_names=["layer", "pos"],
        )  # (layer, pos)
        return torch.cat([before.unsqueeze(0), after]).cpu()
    positions = list(positions)
    layers = model.cfg.n_layers
    before = tl_patching.generic_activation_patch(
        model, corrupted_tokens, clean_cache, metric, tl_patching.layer_pos_patch_setter, "resid_pre",
        index_df=pd.DataFrame({"layer": [0] * len(positions), "pos": positions}))  # (k,)
    after = tl_patching.generic_activation_patch(
        model, corrupted_tokens, clean_cache, metric, tl_patching.layer_pos_patch_setter, "resid_post",
        index_df=pd.DataFrame({"layer": [l for l in range(layers) for _ in positions], "pos": positions * layers}))  # (layer * k,)
    return torch.cat([before.reshape(1, -1), after.reshape(layers, -1)]).cpu()


@torch.no_grad()
def patch_head_outputs(
    model, clean_tokens: Int[torch.Tensor, "batch pos"], corrupted_tokens: Int[torch.Tensor, "batch pos"], metric: Callable
) -> Float[torch.Tensor, "layer head"]:
    """Metric after patching one head's clean output (its z, at every position) into the corrupted run."""
    _, clean_cache = model.run_with_cache(clean_tokens)
    return tl_patching.get_act_patch_attn_head_out_all_pos(model, corrupted_tokens, clean_cache, metric).cpu()


def z_name(layer: int) -> str:
    return tl_utils.get_act_name("z", layer)


@torch.no_grad()
def replacement_z(model, tokens: Int[torch.Tensor, "batch pos"], method: str, reference: Int[torch.Tensor, "batch pos"]) -> list[torch.Tensor]:
    """What each head writes instead of its own output, per layer (batch, pos, head, d_head).

    zero: nothing. mean: its average output over `reference`, all positions pooled. resample: at
    each position, what it wrote at the same position of another sequence (`reference`, same shape).
    """
    check_choice("ablation", method, ABLATIONS)
    names = [z_name(layer) for layer in range(model.cfg.n_layers)]
    _, ref_cache = model.run_with_cache(reference, names_filter=lambda name: name in names)
    shape = (tokens.shape[0], tokens.shape[1], model.cfg.n_heads, model.cfg.d_head)
    out = []
    for name in names:
        ref = ref_cache[name]  # (batch, pos, head, d_head)
        if method == "zero":
            out.append(torch.zeros(shape, device=ref.device, dtype=ref.dtype))
        elif method == "mean":
            out.append(ref.mean(dim=(0, 1), keepdim=True).expand(shape))
        else:
            if ref.shape != shape:
                raise ValueError(f"resample ablation needs reference text of the same shape as the tokens: {tuple(ref.shape)} != {shape}")
            out.append(ref)
    return out


def ablation_hooks(ablated: Sequence[tuple[int, int]], replacements: list[torch.Tensor]) -> list[tuple[str, Callable]]:
    """Hooks on hook_z that put `replacements[layer][:, :, head]` in place of each ablated head's output."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in ablated:
        by_layer.setdefault(layer, []).append(head)

    def hook_for(layer: int, heads: list[int]) -> Callable:
        def replace(z, hook=None):
            z = z.clone()
            z[:, :, heads] = replacements[layer][:, :, heads].to(z)
            return z

        return replace

    return [(z_name(layer), hook_for(layer, heads)) for layer, heads in sorted(by_layer.items())]


def clean_z(model, tokens: Int[torch.Tensor, "batch pos"]) -> dict[int, torch.Tensor]:
    """Every layer's hook_z on the clean run, (batch, pos, head, d_head), from one forward pass."""
    names = [z_name(layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    return {layer: cache[name] for layer, name in enumerate(names)}


@torch.no_grad()
def output_change(model, tokens: Int[torch.Tensor, "batch pos"], ablated: Sequence[tuple[int, int]],
                  replacements: list[torch.Tensor], clean: dict[int, torch.Tensor] | None = None) -> dict[int, torch.Tensor]:
    """How much an ablation moves the residual stream where the heads write: per layer, the sum over
    its ablated heads of (replacement - z) W_O, (batch, pos, d_model), on the clean run (`clean`:
    its z per layer from `clean_z`, computed here when not given)."""
    layers = sorted({layer for layer, _ in ablated})
    clean = clean if clean is not None else clean_z(model, tokens)
    change = {}
    for layer in layers:
        heads = [h for l, h in ablated if l == layer]
        delta = replacements[layer][:, :, heads].to(clean[layer]) - clean[layer][:, :, heads]  # (batch, pos, k, d_head)
        change[layer] = torch.einsum("bpkd,kdm->bpm", delta, model.W_O[layer][heads])
    return change


def random_direction_hooks(change: dict[int, torch.Tensor], generator: torch.Generator, draws: int = 1) -> list[tuple[str, Callable]]:
    """The null of an ablation: at every position, push the residual stream by the same distance as
    the ablation does (`output_change`), in a uniformly random direction. Hooks on hook_attn_out,
    for a batch of `draws` copies of the tokens (draw-major: rows d*batch ... (d+1)*batch-1)."""
    hooks = []
    for layer, delta in sorted(change.items()):
        noise = torch.randn((draws, *delta.shape), generator=generator, dtype=torch.float32).to(delta)  # (draws, batch, pos, d_model)
        push = (noise / noise.norm(dim=-1, keepdim=True) * delta.norm(dim=-1, keepdim=True)).flatten(0, 1)  # (draws*batch, pos, d_model)

        def add(out, hook=None, push=push):
            return out + push.to(out)

        hooks.append((f"blocks.{layer}.hook_attn_out", add))
    return hooks


@torch.no_grad()
def null_token_losses(model, tokens: Int[torch.Tensor, "batch pos"], change: dict[int, torch.Tensor], draws: int,
                      generator: torch.Generator) -> Float[torch.Tensor, "draws batch pos_minus_1"]:
    """Next-token losses under `draws` random pushes of the size of an ablation (one forward pass)."""
    losses = token_losses(model, tokens.repeat(draws, 1), random_direction_hooks(change, generator, draws))
    return losses.view(draws, tokens.shape[0], -1)


@torch.no_grad()
def token_losses(model, tokens: Int[torch.Tensor, "batch pos"], hooks: Sequence = ()) -> Float[torch.Tensor, "batch pos_minus_1"]:
    """Next-token loss at every position, optionally under hooks."""
    logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks)) if hooks else model(tokens)
    return next_token_loss(logits, tokens, per_token=True)


@torch.no_grad()
def ablate_heads(
    model, tokens: Int[torch.Tensor, "batch pos"], method: str, reference: Int[torch.Tensor, "batch pos"],
    null_draws: int = 0, seed: int = 0,
) -> tuple[float, Float[torch.Tensor, "layer head"], Float[torch.Tensor, "layer head draws"]]:
    """Loss on `tokens` with each head's output replaced (see `replacement_z`), one head at a time.

    Returns (clean loss, loss per ablated head, loss per head under `null_draws` random pushes of
    the same size as that head's ablation, see `random_direction_hooks`).
    """
    replacements = replacement_z(model, tokens, method, reference)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    clean_loss = token_losses(model, tokens).mean().item()
    losses = torch.zeros(n_layers, n_heads)
    null = torch.zeros(n_layers, n_heads, null_draws)
    generator = torch.Generator().manual_seed(seed)
    clean = clean_z(model, tokens) if null_draws else None  # once, not once per head
    for layer in range(n_layers):
        for head in range(n_heads):
            ablated = [(layer, head)]
            losses[layer, head] = token_losses(model, tokens, ablation_hooks(ablated, replacements)).mean().item()
            if null_draws:
                change = output_change(model, tokens, ablated, replacements, clean)
                null[layer, head] = null_token_losses(model, tokens, change, null_draws, generator).mean((1, 2))
    return clean_loss, losses, null
