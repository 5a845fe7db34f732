"""Finding an indirect-object circuit: the measurements of Wang et al. (2022), on any TransformerBridge.

A batch holds prompts of one template (so every role sits at the same position in every row):
IO and S in the first clause, S2 (the subject again) and END (the last token, where the model must
name IO). The metric is the logit difference IO - S at END. Heads are then read four ways:

- where they look: attention from END to IO and to S2, from S2 to S1 and to the token after S1;
- what they write: direct logit attribution of each head's END output to IO - S;
- what the answer needs: the logit difference when one head's output, at one role's position, is
  taken from the corrupted (ABC) run, in which S2 is a third name and nothing tells IO from S;
- how much of the answer a set of heads carries on its own: every other head mean-ablated (its
  output replaced by its mean over the ABC run, per position), as a share of the full model's.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from explorer.techniques import lens, patching

ROLES = ("IO", "S1", "S1+1", "S2", "END")


@dataclass(frozen=True)
class Batch:
    """One template's prompts as token ids, with each role's position and the two answers."""

    clean: Int[Tensor, "batch pos"]
    corrupted: Int[Tensor, "batch pos"]  # S2 replaced by a third name (ABC)
    io: Int[Tensor, " batch"]  # the answer's token id
    s: Int[Tensor, " batch"]  # the subject's token id
    positions: dict[str, int]  # role -> position (the same in every row of the batch)
    template: int


def logit_diff(logits: Float[Tensor, "batch pos vocab"], batch: Batch) -> Float[Tensor, " batch"]:
    """Logit of IO minus logit of S at the last position, per prompt."""
    last = logits[:, -1]
    rows = torch.arange(last.shape[0], device=last.device)
    return last[rows, batch.io.to(last.device)] - last[rows, batch.s.to(last.device)]


@torch.no_grad()
def behaviour(model, batch: Batch) -> dict[str, float]:
    """Logit difference, the share of prompts with IO above S, and with IO the top token, on clean prompts."""
    logits = model(batch.clean.to(model.cfg.device))
    diff = logit_diff(logits, batch)
    top = logits[:, -1].argmax(-1).cpu()
    corrupted = logit_diff(model(batch.corrupted.to(model.cfg.device)), batch)
    return {"logit_diff": diff.mean().item(), "io_over_s": (diff > 0).float().mean().item(),
            "io_top1": (top == batch.io).float().mean().item(), "corrupted_logit_diff": corrupted.mean().item()}  # fmt: skip


@torch.no_grad()
def attention_roles(model, batch: Batch, corrupted: bool = False) -> dict[str, Float[Tensor, "layer head"]]:
    """Mean attention of every head between the role pairs the IOI classes are defined by (on the
    corrupted prompts when `corrupted`: S2's position then holds a name that is no repeat)."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    tokens = batch.corrupted if corrupted else batch.clean
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=lambda n: n in names)
    p = batch.positions
    pairs = {"END->IO": ("END", "IO"), "END->S2": ("END", "S2"), "S2->S1": ("S2", "S1"), "S2->S1+1": ("S2", "S1+1"), "S1+1->S1": ("S1+1", "S1")}
    out = {}
    for label, (query, key) in pairs.items():
        out[label] = torch.stack([cache[name][:, :, p[query], p[key]].mean(0) for name in names]).cpu()  # (layer, head)
    return out


@torch.no_grad()
def head_dla(model, batch: Batch) -> Float[Tensor, "layer head"]:
    """Each head's direct push on IO - S at END (frozen final layer-norm scale; explorer.techniques.lens)."""
    tokens = batch.clean.to(model.cfg.device)
    io = batch.io[:, None].expand_as(batch.clean).to(model.cfg.device)
    s = batch.s[:, None].expand_as(batch.clean).to(model.cfg.device)
    to_io, labels, _, _ = lens.direct_logit_attribution(model, tokens, io)
    to_s, _, _, _ = lens.direct_logit_attribution(model, tokens, s)
    rows = [labels.index(f"L{layer}H{head}") for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    diff = (to_io - to_s)[rows, :, -1].mean(-1)  # (layer*head,)
    return diff.reshape(model.cfg.n_layers, model.cfg.n_heads).cpu()


@torch.no_grad()
def patch_heads_by_role(model, batch: Batch, roles: Sequence[str] = ("END", "S2", "S1+1")) -> dict[str, Float[Tensor, "layer head"]]:
    """Share of the clean logit difference left when one head's output (hook_z) at one role's position
    comes from the corrupted (ABC) run: 1 is no effect, 0 is as if the model could not tell IO from S.
    One forward pass per (head, role), patching that position only."""
    clean, corrupted = batch.clean.to(model.cfg.device), batch.corrupted.to(model.cfg.device)
    clean_value = logit_diff(model(clean), batch).mean().item()
    names = [patching.z_name(layer) for layer in range(model.cfg.n_layers)]
    _, corrupted_cache = model.run_with_cache(corrupted, names_filter=lambda n: n in names)
    out = {}
    for role in roles:
        pos = batch.positions[role]
        grid = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
        for layer, name in enumerate(names):
            source = corrupted_cache[name]  # (batch, pos, head, d_head)
            for head in range(model.cfg.n_heads):

                def swap(z, hook=None, source=source, head=head):
                    z = z.clone()
                    z[:, pos, head] = source[:, pos, head].to(z)
                    return z

                logits = model.run_with_hooks(clean, fwd_hooks=[(name, swap)])
                grid[layer, head] = logit_diff(logits, batch).mean().item() / clean_value
        out[role] = grid
    return out


@torch.no_grad()
def abc_means(model, batch: Batch) -> list[Float[Tensor, "1 pos head d_head"]]:
    """Each layer's head outputs (hook_z) averaged over the batch's corrupted (ABC) prompts, per position."""
    names = [patching.z_name(layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(batch.corrupted.to(model.cfg.device), names_filter=lambda n: n in names)
    return [cache[name].mean(0, keepdim=True) for name in names]


def _mean_z_hooks(model, means: list[Tensor], keep: Iterable[tuple[int, int]]) -> list:
    """Hooks that replace the output (hook_z) of every head not in `keep` by its ABC mean."""
    keep = set(keep)
    hooks = []
    for layer, mean in enumerate(means):
        ablated = [h for h in range(model.cfg.n_heads) if (layer, h) not in keep]
        if not ablated:
            continue

        def replace(z, hook=None, mean=mean, ablated=ablated):
            z = z.clone()
            z[:, :, ablated] = mean[:, :, ablated].to(z)
            return z

        hooks.append((patching.z_name(layer), replace))
    return hooks


@torch.no_grad()
def circuit_logit_diff(model, batch: Batch, keep: Iterable[tuple[int, int]], means: list[Tensor] | None = None) -> float:
    """Mean logit difference with every head outside `keep` mean-ablated over the ABC run
    (`means`: abc_means(model, batch), when one batch is scored for many sets)."""
    means = abc_means(model, batch) if means is None else means
    logits = model.run_with_hooks(batch.clean.to(model.cfg.device), fwd_hooks=_mean_z_hooks(model, means, keep))
    return logit_diff(logits, batch).mean().item()
