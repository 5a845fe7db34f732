"""Task arithmetic (Ilharco et al. 2023, "Editing models with task arithmetic") on the flagship.

A task vector is what fine-tuning on one task changed: τ = θ_fine-tuned − θ_base, every parameter.
Adding a scaled vector to the base, θ_base + λ τ, walks the straight line from the base (λ = 0)
through the fine-tuned model (λ = 1) and beyond; λ < 0 subtracts the task ("negation", to forget
it); θ_base + λ (τ_A + τ_B) is one model meant for both tasks ("addition").

Here the base is the attention-only flagship (flagship-bytes-2l, one run per seed) and a task is
one package of the code corpus: fine-tuning is the LoRA article's full fine-tuning
(explorer/techniques/lora.py `fine_tune`, AdamW, the same batches for a seed), and a task's score
is the loss (nats per byte) on that package's held-out files. The control is the rest of the
held-out corpus, code of neither package.
"""

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from explorer.models.reference import PlainTransformer
from explorer.techniques import weight_change as wc

State = dict[str, Tensor]


def task_vector(fine_tuned: Mapping[str, Tensor], base: Mapping[str, Tensor]) -> State:
    """τ = θ_fine-tuned − θ_base, parameter by parameter (float32)."""
    return {k: fine_tuned[k].float() - base[k].float() for k in base}


def combine(base: Mapping[str, Tensor], vectors: Sequence[Mapping[str, Tensor]], coefficient: float) -> State:
    """θ_base + λ Σ τ: the base moved along the sum of the task vectors."""
    out = {k: v.float().clone() for k, v in base.items()}
    for vector in vectors:
        for k in out:
            out[k] += coefficient * vector[k]
    return out


def flat(vector: Mapping[str, Tensor]) -> Float[Tensor, " params"]:
    return torch.cat([vector[k].reshape(-1) for k in sorted(vector)])


def cosine(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """The cosine between two task vectors, all parameters as one vector."""
    x, y = flat(a), flat(b)
    return float(x @ y / (x.norm() * y.norm()))


def norm(vector: Mapping[str, Tensor]) -> float:
    return float(flat(vector).norm())


def random_cosine(a: Mapping[str, Tensor], draws: int, seed: int) -> Float[Tensor, " draws"]:
    """The null of `cosine`: a task vector against Gaussian vectors of the same shape (about ±1/√params)."""
    x = flat(a)
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(draws)
    for i in range(draws):
        r = torch.randn(x.shape, generator=g)
        out[i] = x @ r / (x.norm() * r.norm())
    return out


@functools.cache
def evaluation_sets(task_a: str, task_b: str, rows: int, n_ctx: int, control_limit: int) -> dict[str, Tensor]:
    """Held-out rows of each task's package ("A", "B") and of the other held-out files ("control")."""
    from explorer.data import code_corpus

    own = set(wc.package_files(task_a, "heldout")) | set(wc.package_files(task_b, "heldout"))
    other = [f for f in code_corpus.split_files("heldout") if f not in own]
    step = max(1, len(other) // 200)  # files spread over the whole split, not the first ones by name
    return {"A": wc.eval_rows(wc.join_files(wc.package_files(task_a, "heldout")), rows, n_ctx),
            "B": wc.eval_rows(wc.join_files(wc.package_files(task_b, "heldout")), rows, n_ctx),
            "control": wc.eval_rows(wc.join_files(other[::step], control_limit), rows, n_ctx)}  # fmt: skip


def losses(state: Mapping[str, Tensor], arch: dict, evals: Mapping[str, Tensor]) -> dict[str, float]:
    """Loss (nats per byte) of the plain flagship with these weights on each evaluation set."""
    model = PlainTransformer(arch)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    return {name: wc.loss_on(model, rows) for name, rows in evals.items()}


def sweep(base: Mapping[str, Tensor], vectors: Sequence[Mapping[str, Tensor]], coefficients: Sequence[float], arch: dict,
          evals: Mapping[str, Tensor]) -> list[dict[str, float]]:
    """Losses of θ_base + λ Σ τ for each λ: [{"coefficient": λ, "A": .., "B": .., "control": ..}]."""
    return [{"coefficient": float(c), **losses(combine(base, vectors, float(c)), arch, evals)} for c in coefficients]


def best_coefficient(rows: Sequence[Mapping[str, float]], keys: Sequence[str]) -> float:
    """The λ of the sweep with the lowest mean loss over `keys` (ties: the smaller λ)."""
    scores = np.array([np.mean([r[k] for k in keys]) for r in rows])
    return float(rows[int(np.argmin(scores))]["coefficient"])
