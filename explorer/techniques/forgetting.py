"""Catastrophic forgetting on sklearn's digits: train task A, then task B, and watch A's accuracy.

Two ways to make a second task out of the same images, the two settings of van de Ven, Tuytelaars
and Tolias (2022, "Three types of incremental learning"):

- "split" (class-incremental): A is the digits 0-4, B the digits 5-9, one shared 10-way head. After
  B the network must still tell all ten classes apart without being told which task an image is from.
- "permuted" (domain-incremental): A is the digits, B the same digits with their 64 pixels shuffled by
  one fixed permutation; the labels are the same ten classes.

During B the network is trained one of several ways, each measured the same way (A's and B's test
accuracy every few steps of B):

- "plain": B alone, every parameter trained (the forgetting itself);
- "replay": each batch of B mixed with a batch from a small buffer of stored A examples;
- "ewc": elastic weight consolidation (Kirkpatrick et al. 2017), a quadratic pull towards A's weights
  weighted by the diagonal of the Fisher information on A;
- "lora": the A weights frozen, B learned by low-rank adapters W + (alpha / r) B A on every linear layer
  (Hu et al. 2022), explorer/techniques/lora.py's `LoRALinear`;
- "freeze": only the output layer trained on B;
- "joint": A's and B's training sets together, the reference a method with all of A's data reaches.

The MLP is explorer.models.digits.make_mlp; training is one CPU thread, seeded, full-set evaluation.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

from explorer.device import deterministic
from explorer.errors import check_choice
from explorer.models.digits import load_digits_split, make_mlp
from explorer.techniques.lora import LoRALinear

SETTINGS = ("split", "permuted")
METHODS = ("plain", "replay", "ewc", "lora", "freeze", "joint")
CHANCE = 0.1  # ten outputs


# --------------------------------------------------------------------------- data


def task_data(setting: str, seed: int) -> dict[str, dict[str, Tensor]]:
    """{"A" | "B": {"x_train", "y_train", "x_tune", "y_tune", "x_test", "y_test"}}.

    The digits' own 80/20 split gives train and test; a fifth of train is held out again as the
    tuning set on which EWC's strength is picked, so the test set never chooses anything.
    `seed` draws the permutation of the permuted setting.
    """
    check_choice("setting", setting, SETTINGS)
    split = load_digits_split(0)
    x_fit, x_tune, y_fit, y_tune = train_test_split(split.x_train, split.y_train, test_size=0.2, stratify=split.y_train, random_state=0)
    parts = {"train": (x_fit, y_fit), "tune": (x_tune, y_tune), "test": (split.x_val, split.y_val)}
    perm = np.random.default_rng(1000 + seed).permutation(64)
    out = {"A": {}, "B": {}}
    for part, (x, y) in parts.items():
        if setting == "split":
            for task, keep in (("A", y < 5), ("B", y >= 5)):
                out[task][f"x_{part}"], out[task][f"y_{part}"] = torch.from_numpy(x[keep]), torch.from_numpy(y[keep])
        else:
            out["A"][f"x_{part}"], out["A"][f"y_{part}"] = torch.from_numpy(x), torch.from_numpy(y)
            out["B"][f"x_{part}"], out["B"][f"y_{part}"] = torch.from_numpy(np.ascontiguousarray(x[:, perm])), torch.from_numpy(y)
    return out


@torch.no_grad()
def accuracy(model: nn.Module, x: Float[Tensor, "n 64"], y: Int[Tensor, " n"]) -> float:
    model.eval()
    return float((model(x).argmax(-1) == y).float().mean())


# --------------------------------------------------------------------------- LoRA


def add_lora(model: nn.Sequential, rank: int, alpha: float) -> nn.Sequential:
    """A copy of `model` whose every nn.Linear is wrapped in a LoRALinear (all else frozen)."""
    adapted = copy.deepcopy(model)
    for p in adapted.parameters():
        p.requires_grad_(False)
    for name, module in list(adapted.named_children()):
        if isinstance(module, nn.Linear):
            setattr(adapted, name, LoRALinear(module, rank, alpha))  # A from the global generator, seeded per run
    return adapted


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- EWC


def fisher_diagonal(model: nn.Module, x: Float[Tensor, "n 64"], samples: int, generator: torch.Generator) -> dict[str, Tensor]:
    """The diagonal of the Fisher information on A: the mean over inputs of the squared gradient of
    log p(y | x), y drawn from the model's own prediction (the true Fisher, not the empirical one)."""
    model.eval()
    params = {n: p for n, p in model.named_parameters()}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    idx = torch.randperm(len(x), generator=generator)[:samples]
    for i in idx:
        logp = F.log_softmax(model(x[i : i + 1]), -1)[0]  # (10,)
        y = torch.multinomial(logp.exp().detach(), 1, generator=generator)[0]
        grads = torch.autograd.grad(logp[y], list(params.values()))
        for (n, _), g in zip(params.items(), grads, strict=True):
            fisher[n] += g.detach() ** 2 / len(idx)
    return fisher


def ewc_penalty(model: nn.Module, anchor: dict[str, Tensor], fisher: dict[str, Tensor]) -> Tensor:
    """(1/2) sum_i F_i (theta_i - theta_A,i)^2."""
    return 0.5 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in model.named_parameters())


# --------------------------------------------------------------------------- training


def train_task_a(data: dict, config: dict, seed: int) -> nn.Sequential:
    """The MLP trained on A alone (Adam, mini-batches drawn with replacement)."""
    torch.manual_seed(seed)
    model = make_mlp(tuple(config["hidden"]))
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    a = data["A"]
    batches = torch.randint(len(a["x_train"]), (config["steps_a"], config["batch"]))  # (steps, batch)
    model.train()
    for idx in batches:
        loss = F.cross_entropy(model(a["x_train"][idx]), a["y_train"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def train_task_b(model_a: nn.Sequential, data: dict, method: str, config: dict, seed: int, ewc_lambda: float = 0.0,
                 fisher: dict | None = None, split: str = "test") -> dict:  # fmt: skip
    """Train on B from `model_a` by `method`; every `eval_every` steps record A's and B's accuracy on `split`.

    Returns {"steps": [...], "A": [...], "B": [...], "trainable": n}."""
    check_choice("method", method, METHODS)
    torch.manual_seed(10_000 + seed)
    a, b = data["A"], data["B"]
    if method == "lora":
        model = add_lora(model_a, config["rank"], config["alpha"])
    else:
        model = copy.deepcopy(model_a)
        if method == "freeze":
            for name, p in model.named_parameters():
                p.requires_grad_(name.startswith("out."))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config["lr"])
    anchor = {n: p.detach().clone() for n, p in model_a.named_parameters()}
    steps, batch = config["steps_b"], config["batch"]
    if method == "joint":
        x_pool, y_pool = torch.cat([a["x_train"], b["x_train"]]), torch.cat([a["y_train"], b["y_train"]])
    else:
        x_pool, y_pool = b["x_train"], b["y_train"]
    batches = torch.randint(len(x_pool), (steps, batch))  # (steps, batch)
    if method == "replay":
        buffer = torch.randperm(len(a["x_train"]))[: config["buffer"]]  # the stored A examples
        replay = buffer[torch.randint(len(buffer), (steps, config["replay_batch"]))]  # (steps, replay_batch)
    out = {"steps": [], "A": [], "B": [], "trainable": trainable(model)}
    for step in range(steps + 1):
        if step % config["eval_every"] == 0 or step == steps:
            out["steps"].append(step)
            out["A"].append(accuracy(model, a[f"x_{split}"], a[f"y_{split}"]))
            out["B"].append(accuracy(model, b[f"x_{split}"], b[f"y_{split}"]))
        if step == steps:
            break
        model.train()
        x, y = x_pool[batches[step]], y_pool[batches[step]]
        if method == "replay":
            x, y = torch.cat([x, a["x_train"][replay[step]]]), torch.cat([y, a["y_train"][replay[step]]])
        loss = F.cross_entropy(model(x), y)
        if method == "ewc":
            loss = loss + ewc_lambda * ewc_penalty(model, anchor, fisher)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return out


def run_setting(setting: str, config: dict) -> dict:
    """Every method on one setting, every seed; EWC's strength picked per seed on the tuning set.

    Returns {"seeds": {seed: {"methods": {method: curve}, "lambda": chosen, "sweep_tune": {lambda:
    [A, B] final accuracy on the tuning sets}, "full_params": n}}} (JSON-able, for explorer.cache)."""
    out = {}
    with deterministic(threads=1):
        for seed in config["seeds"]:
            data = task_data(setting, seed)
            model_a = train_task_a(data, config, seed)
            fisher = fisher_diagonal(model_a, data["A"]["x_train"], config["fisher_samples"], torch.Generator().manual_seed(seed))
            sweep = {}
            for lam in config["lambdas"]:
                tune = train_task_b(model_a, data, "ewc", dict(config, eval_every=config["steps_b"]), seed, lam, fisher, split="tune")
                sweep[str(lam)] = [tune["A"][-1], tune["B"][-1]]
            chosen = max(config["lambdas"], key=lambda lam: (sum(sweep[str(lam)]), -lam))
            methods = {m: train_task_b(model_a, data, m, config, seed, chosen, fisher) for m in METHODS}
            out[str(seed)] = {"methods": methods, "lambda": chosen, "sweep_tune": sweep, "full_params": trainable(model_a)}
    return {"seeds": out}
