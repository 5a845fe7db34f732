"""The GELU flagship's MLP neurons, measured: activations on held-out Python, their token specificity
and its nulls, SAEs on each layer's neurons, and the neurons' direct effect on the output.

The model: flagship-bytes-gelu-2l-s0 (byte-level, 2 layers, GELU MLPs of 512 neurons; one training
seed). It reads rows of 256 bytes of its held-out split (Python it never trained on). Every fifth
row is the evaluation text, where everything is measured; the other rows train sparse autoencoders
(explorer/techniques/sae.py, one per layer and seed) on the neuron activations
(`blocks.L.mlp.hook_post`). The polysemanticity measure is the SAE page's: the number of distinct
bytes among a unit's 20 strongest activations (sae.distinct_top_tokens). Its nulls: random
directions of the same neuron space (is the neuron basis special?) and random positions of the text
(explorer/techniques/dashboard.py). Used by build_figures/neurons.py and its notebook.
"""

import functools

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from explorer import artifacts
from explorer.cache import cached
from explorer.models import flagship
from explorer.models.tokenizer import visible
from explorer.techniques import dashboard, sae

RUN = "flagship-bytes-gelu-2l-s0"
LAYERS = (0, 1)
D_MLP = 512
HOOKS = tuple(f"blocks.{layer}.mlp.hook_post" for layer in LAYERS)
ROWS = {"smoke": 300, "full": 1500}  # rows of 256 held-out bytes
EVAL_EVERY = 5  # every fifth row is the evaluation text; the others train the SAEs
SEEDS = (0, 1, 2)  # SAE seeds (the model has one)
SAE_RECIPE = dict(n_latents=1024, l1=2.0, batch=256, lr=3e-3)
SAE_STEPS = {"smoke": 250, "full": 500}
TOP = 20  # strongest activations per unit for the distinct-byte count
LOGIT_TOP = 8
SPECIFIC = 3  # at most this many distinct bytes in its top 20: "token-specific"
TEXT_BYTES = torch.tensor([9, 10, *range(32, 127)])
MODEL = (f"{RUN} (byte-level 2-layer transformer with GELU MLPs of 512 neurons, trained here on Python source; one "
         "training seed), read on held-out Python; sparse autoencoders (1024 ReLU latents, L1) trained here on each "
         "layer's neuron activations, seeds 0-2")


@functools.cache
def model():
    run = artifacts.load("flagship-bytes-gelu-2l-s0")
    return run, flagship.lens_model(run.weights, device="cpu", tokenizer=flagship.byte_tokenizer())


@functools.cache
def rows(scale: str) -> Int[Tensor, "rows pos"]:
    return flagship.heldout_rows(ROWS[scale])  # (rows, 256) byte values


@functools.cache
def activations(scale: str) -> Float[Tensor, "layer rows pos neuron"]:
    """(layer, row, pos, neuron) GELU outputs of both MLPs on the held-out rows."""
    _, bridge = model()
    data = rows(scale)
    out = torch.empty(len(LAYERS), *data.shape, D_MLP)
    with torch.no_grad():
        for first in range(0, len(data), 100):
            _, cache = bridge.run_with_cache(data[first:first + 100], names_filter=lambda name: name in HOOKS)
            for layer, hook in enumerate(HOOKS):
                out[layer, first:first + 100] = cache[hook].float()
    return out


def eval_mask(scale: str) -> Tensor:
    return torch.arange(ROWS[scale]) % EVAL_EVERY == 0  # (rows,)


def eval_acts(scale: str, layer: int) -> Float[Tensor, "tokens neuron"]:
    """(tokens, neuron) activations on the evaluation rows, row-major."""
    return activations(scale)[layer][eval_mask(scale)].reshape(-1, D_MLP)


def eval_bytes(scale: str) -> Int[Tensor, " tokens"]:
    return rows(scale)[eval_mask(scale)].reshape(-1)  # (tokens,)


@functools.cache
def layer_sae(scale: str, layer: int, seed: int) -> sae.SAE:
    x = activations(scale)[layer][~eval_mask(scale)].reshape(-1, D_MLP)
    recipe = dict(SAE_RECIPE, steps=SAE_STEPS[scale])
    config = {"run": RUN, "hook": HOOKS[layer], "rows": ROWS[scale], "eval_every": EVAL_EVERY, "seed": seed, **recipe}
    return cached("neurons-sae", config, lambda: sae.train(x, seed, **recipe), code=[sae])


@functools.cache
def sae_latents(scale: str, layer: int, seed: int) -> Float[Tensor, "tokens latent"]:
    return sae.latents(layer_sae(scale, layer, seed), eval_acts(scale, layer))  # (tokens, latent)


def random_directions(scale: str, layer: int, seed: int) -> Float[Tensor, "tokens direction"]:
    """Projections of the (centred) neuron activations onto D_MLP random unit directions of the same space."""
    x = eval_acts(scale, layer)
    directions = sae.unit_columns(torch.randn(D_MLP, D_MLP, generator=torch.Generator().manual_seed(900 + 10 * layer + seed)))
    return (x - x.mean(0)) @ directions


def live(units: Float[Tensor, "tokens unit"]) -> Float[Tensor, "tokens live"]:
    """The units that are positive somewhere."""
    return units[:, (units > 0).any(0)]


@functools.cache
def specificity(scale: str, layer: int) -> dict[str, list[np.ndarray]]:
    """Distinct bytes among each unit's TOP strongest activations: the neurons, random directions (3 draws)
    and the live latents of each SAE seed."""
    tokens = eval_bytes(scale)
    neurons = sae.distinct_top_tokens(live(eval_acts(scale, layer)), tokens, TOP).numpy()
    return {"neurons": [neurons],
            "random directions": [sae.distinct_top_tokens(live(random_directions(scale, layer, s)), tokens, TOP).numpy() for s in SEEDS],
            "SAE latents": [sae.distinct_top_tokens(live(sae_latents(scale, layer, s)), tokens, TOP).numpy() for s in SEEDS]}


@functools.cache
def alignment(scale: str, layer: int, seed: int) -> Float[Tensor, " live"]:
    """Each live latent's largest |cosine| between its decoder direction and a neuron's basis vector."""
    f = sae_latents(scale, layer, seed)
    W = layer_sae(scale, layer, seed).W_dec[:, (f > 0).any(0)]  # (neuron, live latent), unit columns
    return W.abs().max(0).values


def output_effects(layer: int) -> Float[Tensor, "neuron text_byte"]:
    """(neuron, text byte) direct logit effect of each neuron's output weights: through the final layer norm's
    centring and gain (not its scale) and W_U, skipping any later block."""
    run, _ = model()
    w = run.weights
    W_out = w[f"blocks.{layer}.mlp.2.weight"].float()  # (d_model, d_mlp)
    gamma, W_U = w["ln_final.weight"].float(), w["unembed.weight"].float()  # (d,), (vocab, d)
    centred = W_out - W_out.mean(0, keepdim=True)
    return (W_U @ (gamma[:, None] * centred)).T[:, TEXT_BYTES]  # (d_mlp, text bytes)


def effect_list(row: Float[Tensor, " text_byte"]) -> list[dict]:
    """The LOGIT_TOP bytes a neuron raises most and lowers most, as rows for the dashboard's bar chart."""
    names = [visible(dashboard.byte_text(int(b))) for b in TEXT_BYTES]
    up, down = row.topk(LOGIT_TOP), (-row).topk(LOGIT_TOP)
    return ([{"k": "raises", "r": i, "t": names[int(j)], "v": round(float(v), 3)} for i, (v, j) in enumerate(zip(up.values, up.indices))]
            + [{"k": "lowers", "r": i, "t": names[int(j)], "v": round(-float(v), 3)} for i, (v, j) in enumerate(zip(down.values, down.indices))])


def aligned_latents(scale: str, layer: int) -> tuple[Float[Tensor, "neuron live"], list[str], list[str]]:
    """SAE seed 0 of the layer: |decoder weight| of each live latent on each neuron, and each latent's top byte."""
    f = sae_latents(scale, layer, 0)
    alive = torch.nonzero((f > 0).any(0)).flatten()
    tokens = eval_bytes(scale)
    tops = [visible(dashboard.byte_text(int(tokens[int(f[:, k].argmax())]))) for k in alive.tolist()]
    return layer_sae(scale, layer, 0).W_dec[:, alive].abs(), [f"latent {int(k)}" for k in alive], tops  # (neuron, live), names, tops


