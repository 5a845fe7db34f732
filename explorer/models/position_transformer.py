"""A small attention-only transformer with one of five positional encodings (the curriculum's chapter 4).

Plain PyTorch with TransformerLens hook points, because TL-native blocks offer only learned and
rotary positions and the chapter compares five. The encodings differ in one place each:

    none        x_j = W_E[t_j]                                   (order only through the causal mask)
    learned     x_j = W_E[t_j] + W_pos[j]                        (one trained vector per position)
    sinusoidal  x_j = W_E[t_j] + PE[j]                           (fixed sines and cosines, Vaswani et al.)
    rope        q_i, k_j rotated by angles i·θ and j·θ           (Su et al.: the score sees only i - j)
    alibi       score_ij - slope_h · (i - j)                     (Press et al.: a fixed penalty on distance)

The formulas live in explorer/techniques/attention.py and are shared with the "attention and
position" article. Hook names follow TransformerLens: hook_embed, hook_pos_embed, blocks.L.attn.
hook_q / hook_k / hook_rot_q / hook_rot_k / hook_attn_scores (before the softmax, bias included) /
hook_pattern / hook_v / hook_z, and blocks.L.hook_resid_post, so run_with_cache works as it does
on a TL model. No LayerNorm and no MLP: the chapter's task needs attention and order, nothing else.
"""

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from explorer.models import training
from explorer.techniques import attention as formulas

ENCODINGS = ("none", "learned", "sinusoidal", "rope", "alibi")


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, encoding: str, n_ctx: int):
        super().__init__()
        self.n_heads, self.d_head, self.encoding = n_heads, d_model // n_heads, encoding
        self.W_Q, self.W_K, self.W_V = (nn.Linear(d_model, d_model) for _ in range(3))
        self.W_O = nn.Linear(d_model, d_model)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_rot_q, self.hook_rot_k = HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern, self.hook_z = HookPoint(), HookPoint(), HookPoint()
        if encoding == "alibi":
            self.register_buffer("alibi", formulas.alibi_bias(n_ctx, n_heads).float(), persistent=False)  # (head, q_pos, k_pos)

    def split(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos head d_head"]:
        return x.view(*x.shape[:2], self.n_heads, self.d_head)

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        n = x.shape[1]
        q = self.hook_q(self.split(self.W_Q(x)))  # (batch, pos, head, d_head)
        k = self.hook_k(self.split(self.W_K(x)))
        v = self.hook_v(self.split(self.W_V(x)))
        if self.encoding == "rope":
            q = self.hook_rot_q(formulas.apply_rope(q.transpose(1, 2)).transpose(1, 2))
            k = self.hook_rot_k(formulas.apply_rope(k.transpose(1, 2)).transpose(1, 2))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.d_head)  # (batch, head, q_pos, k_pos)
        if self.encoding == "alibi":
            scores = scores + self.alibi[:, :n, :n]
        scores = scores.masked_fill(formulas.future_mask(n, x.device), float("-inf"))
        pattern = self.hook_pattern(self.hook_attn_scores(scores).softmax(-1))
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))  # (batch, pos, head, d_head)
        return self.W_O(z.reshape(*x.shape))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, encoding: str, n_ctx: int):
        super().__init__()
        self.attn = Attention(d_model, n_heads, encoding, n_ctx)
        self.hook_resid_post = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return self.hook_resid_post(x + self.attn(x))


class PositionTransformer(HookedRootModule):
    def __init__(self, encoding: str, *, d_vocab: int, d_model: int, n_heads: int, n_layers: int, n_ctx: int):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown positional encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
        self.encoding, self.n_ctx = encoding, n_ctx
        self.embed = nn.Embedding(d_vocab, d_model)
        if encoding == "learned":
            self.pos_embed = nn.Embedding(n_ctx, d_model)
        if encoding == "sinusoidal":
            self.register_buffer("sinusoid", formulas.sinusoidal_encoding(n_ctx, d_model).float(), persistent=False)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList([Block(d_model, n_heads, encoding, n_ctx) for _ in range(n_layers)])
        self.unembed = nn.Linear(d_model, d_vocab)
        self.setup()  # names every HookPoint after its place in the module tree

    def positions(self, n: int) -> Float[Tensor, "pos d_model"] | None:
        """What is added to the token embeddings at positions 0 .. n-1 (None for the other encodings)."""
        if self.encoding == "learned":
            return self.pos_embed(torch.arange(n))
        if self.encoding == "sinusoidal":
            return self.sinusoid[:n]
        return None

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        if tokens.shape[1] > self.n_ctx:
            raise ValueError(f"{tokens.shape[1]} tokens is longer than the model's context of {self.n_ctx}")
        x = self.hook_embed(self.embed(tokens))  # (batch, pos, d_model)
        added = self.positions(tokens.shape[1])
        if added is not None:
            x = x + self.hook_pos_embed(added)[None]
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)


def copy_back_rows(n: int, length: int, d_vocab: int, generator: torch.Generator) -> Int[Tensor, "n length"]:
    """Random tokens; the target at position t (for t >= k) is the token at t - k."""
    return torch.randint(0, d_vocab, (n, length), generator=generator)


def copy_back_loss(logits: Float[Tensor, "batch pos vocab"], rows: Int[Tensor, "batch pos"], k: int) -> Tensor:
    return F.cross_entropy(logits[:, k:].reshape(-1, logits.shape[-1]), rows[:, :-k].reshape(-1))


@torch.no_grad()
def accuracy_by_position(model: PositionTransformer, rows: Int[Tensor, "n pos"], k: int) -> list[float]:
    """Share of rows whose top prediction at position t is the token k back, for t = k .. pos-1."""
    right = model(rows)[:, k:].argmax(-1) == rows[:, :-k]  # (n, pos - k)
    return right.float().mean(0).tolist()


@torch.enable_grad()  # a figure may ask for a run from inside torch.no_grad
def fit(model: nn.Module, next_rows: Callable[[], Tensor], loss_of: Callable[[nn.Module, Tensor], Tensor],
        measure: Callable[[nn.Module], dict], *, steps: int, lr: float, checkpoint_every: int) -> dict:
    """The curriculum's small training loop: Adam at a constant rate, no weight decay; `measure(model)` and a
    copy of the weights every `checkpoint_every` steps and at the end. The caller seeds and builds the model."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history, checkpoints, start = [], [], time.perf_counter()
    for step in range(steps + 1):
        if step % checkpoint_every == 0 or step == steps:
            model.eval()
            history.append({"step": step, **measure(model)})
            checkpoints.append((step, {name: p.detach().clone() for name, p in model.state_dict().items()}))
            model.train()
        if step == steps:
            break
        loss = loss_of(model, next_rows())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"history": history, "checkpoints": checkpoints, "seconds": time.perf_counter() - start}


def train(encoding: str, seed: int, *, k: int, d_vocab: int, d_model: int, n_heads: int, n_layers: int, train_length: int,
          test_length: int, steps: int, batch: int, lr: float, eval_rows: int, checkpoint_every: int) -> dict:
    """Train on rows of `train_length` tokens (every position from k on is a target); measure per-position
    accuracy on rows of `test_length` (up to 4x longer) at every checkpoint. No weight decay: the learned
    table's rows past `train_length` never receive a gradient and keep their initial values."""
    with training.cpu_threads(1, "cpu"):
        torch.manual_seed(seed)
        model = PositionTransformer(encoding, d_vocab=d_vocab, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                                    n_ctx=test_length)
        generator = torch.Generator().manual_seed(seed)
        heldout = copy_back_rows(eval_rows, test_length, d_vocab, torch.Generator().manual_seed(4321))
        return fit(model, lambda: copy_back_rows(batch, train_length, d_vocab, generator),
                   lambda m, rows: copy_back_loss(m(rows), rows, k),
                   lambda m: {"accuracy": accuracy_by_position(m, heldout, k)},
                   steps=steps, lr=lr, checkpoint_every=checkpoint_every)


def load(encoding: str, weights: dict[str, Tensor], **arch) -> PositionTransformer:
    model = PositionTransformer(encoding, **arch)
    model.load_state_dict(weights)
    return model.eval()
