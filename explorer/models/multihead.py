"""The multi-head chapter's models: one attention layer of a fixed width, split into 1, 2 or 4 heads.

The model is explorer/models/position_transformer.py's, with learned absolute positions (the task
needs them: one of its two parts is "the first pair"). Trained on the last position only, with
only the answers competing (as explorer/models/curriculum.py does for the attention chapter),
by position_transformer.fit: Adam at a constant rate, checkpoints and held-out accuracy of each
part along the way.
"""

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from explorer.data.two_part_recall import TwoPartRecall
from explorer.models import position_transformer as pt
from explorer.models import training

EVAL_SEED = 4321


def build(task: TwoPartRecall, n_heads: int, d_model: int) -> pt.PositionTransformer:
    return pt.PositionTransformer("learned", d_vocab=task.d_vocab, d_model=d_model, n_heads=n_heads, n_layers=1, n_ctx=task.length)


def answer_logits(model: pt.PositionTransformer, rows: Int[Tensor, "n pos"], task: TwoPartRecall,
                  fwd_hooks: list | None = None) -> Float[Tensor, "n answers"]:
    logits = model.run_with_hooks(rows[:, :-1], fwd_hooks=fwd_hooks or []) if fwd_hooks else model(rows[:, :-1])
    return logits[:, -1, task.answer_base :]


@torch.no_grad()
def part_accuracy(model: pt.PositionTransformer, rows: Int[Tensor, "n pos"], task: TwoPartRecall,
                  fwd_hooks: list | None = None) -> dict[str, float]:
    """Share of rows with the whole answer right, and with each part right."""
    predicted = answer_logits(model, rows, task, fwd_hooks).argmax(-1)
    lookup, first = task.parts(rows)
    right_lookup, right_first = predicted // task.n_values == lookup, predicted % task.n_values == first
    return {"both": (right_lookup & right_first).float().mean().item(), "lookup": right_lookup.float().mean().item(),
            "first": right_first.float().mean().item()}


def mean_ablation(head: int, mean_z: Tensor):
    """A hook that replaces one head's z by its mean over held-out rows (the head's information removed)."""
    def hook(z: Float[Tensor, "batch pos head d_head"], hook) -> Tensor:
        z = z.clone()
        z[:, :, head] = mean_z[:, :, head]
        return z
    return ("blocks.0.attn.hook_z", hook)


def train(task: TwoPartRecall, n_heads: int, seed: int, *, d_model: int, steps: int, batch: int, lr: float,
          eval_rows: int, checkpoint_every: int) -> dict:
    with training.cpu_threads(1, "cpu"):
        torch.manual_seed(seed)
        model = build(task, n_heads, d_model)
        generator = torch.Generator().manual_seed(seed)
        heldout = task.batch(eval_rows, torch.Generator().manual_seed(EVAL_SEED))
        return pt.fit(model, lambda: task.batch(batch, generator),
                      lambda m, rows: F.cross_entropy(answer_logits(m, rows, task), rows[:, -1] - task.answer_base),
                      lambda m: part_accuracy(m, heldout, task), steps=steps, lr=lr, checkpoint_every=checkpoint_every)


def load(task: TwoPartRecall, n_heads: int, d_model: int, weights: dict[str, Tensor]) -> pt.PositionTransformer:
    model = build(task, n_heads, d_model)
    model.load_state_dict(weights)
    return model.eval()
