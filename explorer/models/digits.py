"""The shared digits classifier: scikit-learn's 8x8 digits, a small MLP or CNN, and training regimes.

Several articles look inside the same network (activations, weights, saliency, loss landscapes),
so it lives here once. A *regime* is a real training recipe, not a drawing: "dying-relu" really
kills most ReLU units, "saturated-tanh" really pins most tanh pre-activations far from zero.

Input convention: both models accept either flat images `(N, 64)` or `(N, 1, 8, 8)`, pixel
values in [0, 1]; the MLP flattens, the CNN reshapes.

Training always runs on the CPU, in float32, on one thread and under its own seed
(explorer.device.deterministic): the networks are tiny (a GPU is slower for them) and this keeps
cached results byte-identical on every machine with the same CPU code paths (explorer.device
pins them). Move the returned model to any device for analysis.

The dying-ReLU regime is chaotic: a last-bit difference in one GEMM (another CPU, MKL kernel or
thread count) ends in a different set of dead units. Claims about the regimes are therefore
measured over the seeds in REGIME_SEEDS, not one run.
"""

import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

from explorer.cache import cached
from explorer.device import deterministic
from explorer.errors import check_choice

CLASSES = 10
PIXELS = 64  # 8 x 8
ARCHS = ("cnn", "mlp")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray  # (N_train, 64) float32 in [0, 1]
    y_train: np.ndarray  # (N_train,) int64
    x_val: np.ndarray  # (N_val, 64) float32 in [0, 1]
    y_val: np.ndarray  # (N_val,) int64

    def tensors(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x_train, y_train, x_val, y_val) as torch tensors on `device`."""
        return tuple(torch.from_numpy(a).to(device) for a in (self.x_train, self.y_train, self.x_val, self.y_val))


def load_digits_split(seed: int = 0) -> DigitsSplit:
    """scikit-learn's bundled 1,797 digits, scaled to [0, 1], split 80/20 stratified by class."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel intensities are 0..16
    y = digits.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return DigitsSplit(x_train, y_train, x_val, y_val)


# --------------------------------------------------------------------------- models


def make_mlp(hidden: Sequence[int] = (64, 32), activation: str = "relu") -> nn.Sequential:
    """64 -> hidden... -> 10. Layers are named fc1, act1, fc2, act2, ..., out, for hooks.

    Accepts (N, 64) or (N, 1, 8, 8); returns logits (N, 10).
    """
    check_choice("activation", activation, ACTIVATIONS)
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width = PIXELS
    for i, h in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(width, h)), (f"act{i}", ACTIVATIONS[activation]())]
        width = h
    layers.append(("out", nn.Linear(width, CLASSES)))
    return nn.Sequential(OrderedDict(layers))


class DigitsCNN(nn.Module):
    """conv1 (16 ch) -> act -> conv2 (32 ch) -> act -> 2x2 max-pool -> linear to 10 classes.

    `conv2` is the last convolution: its (N, 32, 8, 8) output is what Grad-CAM weighs.
    """

    def __init__(self, activation: str = "relu"):
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.act1 = ACTIVATIONS[activation]()
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.act2 = ACTIVATIONS[activation]()
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(32 * 4 * 4, CLASSES)

    def forward(self, x: Float[Tensor, "batch ..."]) -> Float[Tensor, "batch 10"]:
        x = x.reshape(-1, 1, 8, 8)  # (batch, 1, 8, 8)
        x = self.act1(self.conv1(x))  # (batch, 16, 8, 8)
        x = self.act2(self.conv2(x))  # (batch, 32, 8, 8)
        x = self.pool(x)  # (batch, 32, 4, 4)
        return self.out(x.flatten(1))


def make_cnn(activation: str = "relu") -> DigitsCNN:
    """A small CNN on (N, 1, 8, 8) (flat (N, 64) is reshaped); last conv layer is `model.conv2`."""
    return DigitsCNN(activation)


def hidden_layer_names(model: nn.Module) -> list[str]:
    """Names of the activation modules (act1, act2, ...): what the hidden units output."""
    return [name for name, m in model.named_children() if name.startswith("act")]


# --------------------------------------------------------------------------- regimes


@dataclass(frozen=True)
class Regime:
    """A training recipe. Init applies to hidden layers (Linear/Conv before an activation)."""

    name: str
    activation: str
    init: str  # "he" (kaiming normal, fan_in) | "xavier" | "scaled": normal with std = weight_scale / sqrt(fan_in)
    lr: float
    optimizer: str = "adam"  # "adam" | "sgd"
    weight_scale: float = 1.0
    bias: float = 0.0  # initial bias of hidden layers
    description: str = ""


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime("healthy", "relu", "he", lr=3e-3, description="ReLU, He init, zero bias, Adam lr 3e-3"),
        Regime(
            "dying-relu",
            "relu",
            "he",
            lr=0.1,
            description="ReLU, He init, Adam at lr 0.1: the first large updates push most units below zero for good",
        ),
        Regime(
            "saturated-tanh",
            "tanh",
            "scaled",
            lr=3e-3,
            weight_scale=12.0,
            description="tanh, weights 12/sqrt(fan_in): most pre-activations beyond |z| > 2.65 (|tanh| > 0.99)",
        ),
        Regime(
            "saturated-sigmoid",
            "sigmoid",
            "scaled",
            lr=3e-3,
            weight_scale=20.0,
            description="sigmoid, weights 20/sqrt(fan_in): most pre-activations beyond |z| > 4.6 (output < 0.01 or > 0.99)",
        ),
    )
}

# What "saturated" means for each squashing activation: |pre-activation| above this puts the
# output within 0.01 of its bounds, where the local derivative is 2% (tanh) or 4% (sigmoid) of its peak.
SATURATION_THRESHOLD = {"tanh": float(np.arctanh(0.99)), "sigmoid": float(np.log(0.99 / 0.01))}


def get_regime(name: str) -> Regime:
    check_choice("regime", name, REGIMES)
    return REGIMES[name]


def _initialize(model: nn.Module, regime: Regime) -> None:
    """Apply the regime's init to every hidden layer; the output layer keeps PyTorch's default."""
    for name, module in model.named_children():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or name == "out":
            continue
        fan_in = module.weight[0].numel()
        if regime.init == "he":
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif regime.init == "xavier":
            nn.init.xavier_normal_(module.weight)
        else:
            nn.init.normal_(module.weight, std=regime.weight_scale / fan_in**0.5)
        nn.init.constant_(module.bias, regime.bias)


def build_model(arch: str, regime: str, hidden: Sequence[int] = (64, 32)) -> nn.Module:
    """An untrained model of `arch` with `regime`'s activation (weights: PyTorch's default init)."""
    check_choice("arch", arch, ARCHS)
    activation = get_regime(regime).activation
    return make_mlp(hidden, activation) if arch == "mlp" else make_cnn(activation)


# --------------------------------------------------------------------------- training


@dataclass
class TrainedDigits:
    arch: str
    regime: str
    hidden: tuple[int, ...]
    model: nn.Module  # final weights, eval mode, on the CPU
    checkpoints: list[tuple[int, dict[str, Tensor]]]  # (step, state_dict), step 0 = initialization
    history: list[dict[str, float]] = field(default_factory=list)  # step, train_loss, val_loss, val_accuracy

    @property
    def steps(self) -> list[int]:
        return [step for step, _ in self.checkpoints]

    def model_at(self, step: int) -> nn.Module:
        """A fresh model in eval mode holding the weights saved at checkpoint `step`."""
        check_choice("checkpoint step", step, self.steps)
        model = build_model(self.arch, self.regime, self.hidden)
        model.load_state_dict(dict(self.checkpoints)[step])
        return model.eval()


def checkpoint_steps(steps: int, checkpoints: int | Sequence[int]) -> list[int]:
    """`checkpoints` evenly spaced snapshots (plus step 0), or an explicit list of steps."""
    if isinstance(checkpoints, int):
        return sorted({round(steps * i / checkpoints) for i in range(checkpoints + 1)})
    return sorted({int(s) for s in checkpoints if 0 <= int(s) <= steps})


def train_digits(
    arch: str = "mlp",
    regime: str = "healthy",
    steps: int = 2000,
    seed: int = 0,
    checkpoints: int | Sequence[int] = 10,
    *,
    hidden: Sequence[int] = (64, 32),
    batch_size: int = 64,
    log_every: int | None = None,
    split_seed: int = 0,
) -> TrainedDigits:
    """Train (or load from the cache) a digits classifier with mini-batches drawn with replacement.

    `checkpoints`: how many evenly spaced snapshots to keep (step 0 included) or which steps.
    `log_every`: history interval, default steps/50. Everything is keyed in the cache together
    with this module's source, so a change here retrains.
    """
    check_choice("arch", arch, ARCHS)
    get_regime(regime)
    hidden = tuple(int(h) for h in hidden)
    keep = checkpoint_steps(steps, checkpoints)
    log_every = log_every or max(1, steps // 50)
    config = dict(arch=arch, regime=regime, steps=steps, seed=seed, checkpoints=keep, hidden=list(hidden),
                  batch_size=batch_size, log_every=log_every, split_seed=split_seed)
    saved = cached(
        f"digits-{arch}",
        config,
        lambda: _train(arch, regime, steps, seed, keep, hidden, batch_size, log_every, split_seed),
        code=[sys.modules[__name__]],
    )
    model = build_model(arch, regime, hidden)
    model.load_state_dict(saved["checkpoints"][-1][1])
    return TrainedDigits(arch, regime, hidden, model.eval(), saved["checkpoints"], saved["history"])



# The runs the activations and weights articles share (through the cache): one definition, so
# both articles always show the same networks. Checkpoints are dense early: units die fast.
REGIME_STEPS = {"smoke": 150, "full": 2000}
REGIME_CHECKPOINTS = (0, 5, 10, 20, 40, 80, 160, 320, 640, 1000, 1500, 2000)
# Every regime is trained under each of these seeds; the figures draw the first, claims span them all.
REGIME_SEEDS = {"smoke": (0, 1, 2), "full": (0, 1, 2, 3, 4)}
LAST_EVALUATIONS = 5  # accuracies are averaged over the last few logged evaluations, not one noisy step


def train_regimes(scale: str, seed: int = 0) -> dict[str, TrainedDigits]:
    """The MLP trained in every regime at `scale` under `seed`, with checkpoints at REGIME_CHECKPOINTS and the end."""
    check_choice("scale", scale, REGIME_STEPS)
    steps = REGIME_STEPS[scale]
    keep = [s for s in REGIME_CHECKPOINTS if s < steps] + [steps]
    return {name: train_digits("mlp", name, steps=steps, seed=seed, checkpoints=keep) for name in REGIMES}


def train_regime_seeds(scale: str) -> dict[int, dict[str, TrainedDigits]]:
    """{seed: train_regimes(scale, seed)} for every seed in REGIME_SEEDS[scale], the drawn seed first."""
    check_choice("scale", scale, REGIME_STEPS)
    return {seed: train_regimes(scale, seed) for seed in REGIME_SEEDS[scale]}


def late_accuracy(run: TrainedDigits, last: int = LAST_EVALUATIONS) -> float:
    """Validation accuracy averaged over the last `last` logged evaluations (the final one included)."""
    return float(np.mean([row["val_accuracy"] for row in run.history[-last:]]))

def _train(arch, regime_name, steps, seed, keep, hidden, batch_size, log_every, split_seed) -> dict:
    regime = get_regime(regime_name)
    x_train, y_train, x_val, y_val = load_digits_split(split_seed).tensors()
    with deterministic(threads=1):  # one thread: the same bytes on any core count, and the fastest at this size
        return _train_loop(arch, regime, steps, seed, keep, hidden, batch_size, log_every, x_train, y_train, x_val, y_val)


def _train_loop(arch, regime, steps, seed, keep, hidden, batch_size, log_every, x_train, y_train, x_val, y_val) -> dict:
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state untouched
        torch.manual_seed(seed)
        model = build_model(arch, regime.name, hidden)
        _initialize(model, regime)
        opt_cls = torch.optim.Adam if regime.optimizer == "adam" else torch.optim.SGD
        optimizer = opt_cls(model.parameters(), lr=regime.lr)
        batches = torch.randint(len(x_train), (steps, batch_size))  # (steps, batch)
        snapshots, history = [], []
        for step in range(steps + 1):
            if step in keep:
                snapshots.append((step, {k: v.detach().clone() for k, v in model.state_dict().items()}))
            if step % log_every == 0 or step == steps:
                history.append({"step": step, **evaluate(model, x_train, y_train, x_val, y_val)})
            if step == steps:
                break
            model.train()
            idx = batches[step]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {"checkpoints": snapshots, "history": history}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x_train: Float[Tensor, "n_train 64"],
    y_train: Int[Tensor, " n_train"],
    x_val: Float[Tensor, "n_val 64"],
    y_val: Int[Tensor, " n_val"],
) -> dict[str, float]:
    """Full-set losses and validation accuracy (the sets are small enough for one pass)."""
    model.eval()
    val_logits = model(x_val)  # (n_val, 10)
    return {
        "train_loss": F.cross_entropy(model(x_train), y_train).item(),
        "val_loss": F.cross_entropy(val_logits, y_val).item(),
        "val_accuracy": (val_logits.argmax(-1) == y_val).float().mean().item(),
    }


# --------------------------------------------------------------------------- measurements


@torch.no_grad()
def hidden_activations(model: nn.Module, x: Float[Tensor, "batch ..."]) -> dict[str, tuple[Tensor, Tensor]]:
    """(pre-activation, activation) of every act* layer, from forward hooks.

    Shapes: (batch, units) for the MLP, (batch, channels, 8, 8) for the CNN.
    """
    out: dict[str, tuple[Tensor, Tensor]] = {}

    def keep(name: str):
        return lambda module, inputs, output: out.__setitem__(name, (inputs[0].detach(), output.detach()))

    handles = [getattr(model, name).register_forward_hook(keep(name)) for name in hidden_layer_names(model)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return out


def dead_fraction(activation: Float[Tensor, "batch units"]) -> float:
    """Share of ReLU units that output exactly zero on every input of the batch."""
    return (activation <= 0).all(dim=0).float().mean().item()


def saturated_fraction(pre_activation: Float[Tensor, "batch units"], activation: str) -> float:
    """Share of (input, unit) pre-activations past the saturation threshold of `activation`."""
    check_choice("squashing activation", activation, SATURATION_THRESHOLD)
    return (pre_activation.abs() > SATURATION_THRESHOLD[activation]).float().mean().item()
