"""A configurable multilayer perceptron for 2-D toy data: one model, a batched grid of models, and a
hand-written forward/backward pass.

- `build_mlp` is the plain torch model a reader would write (used by tests and the copied script).
- `train_group` trains many models of one shape at once: every parameter has a leading "model"
  dimension, and per-model masks choose the activation, the output/loss, the batch size and the
  regulariser. Adam is elementwise, so one Adam over the stacked parameters is exactly one Adam per
  model; the total loss is a sum over models, so no model's gradient sees another's.
- `forward_backward` is backprop written out by hand, layer by layer, so the article can show every
  neuron's value and every weight's gradient; a test checks it against torch.autograd.

Weights are stored with the bias as an extra last column: a layer with n_in inputs and n_out
outputs is a (n_out, n_in + 1) matrix.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from explorer.data.toy2d import DATASETS, make_dataset
from explorer.errors import check_choice

ACTIVATIONS = ("relu", "tanh", "sigmoid")
OUTPUTS = ("sigmoid-mse", "softmax-ce")  # one sigmoid unit + squared error, or two logits + cross-entropy
REGULARIZATIONS = ("none", "l1", "l2")
REGULARIZATION_STRENGTH = {"none": 0.0, "l1": 1e-3, "l2": 1e-3}  # on weights, not biases
BATCH_SIZES = (1, 16, "full")


@dataclass(frozen=True)
class RunConfig:
    """One training run: what the reader picks in the playground."""

    dataset: str = "xor"
    layers: int = 1
    width: int = 4
    activation: str = "tanh"
    output: str = "sigmoid-mse"
    batch: int | str = "full"
    regularization: str = "none"

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("output", self.output, OUTPUTS)
        check_choice("regularization", self.regularization, REGULARIZATIONS)
        check_choice("batch size", self.batch, BATCH_SIZES)
        if not (1 <= self.layers <= 3 and 1 <= self.width <= 8):
            raise ValueError(f"layers must be 1-3 and width 1-8, got {self.layers} and {self.width}")

    @property
    def key(self) -> str:
        return "-".join(str(v) for v in asdict(self).values())

    @property
    def n_outputs(self) -> int:
        return 1 if self.output == "sigmoid-mse" else 2


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1000
    lr: float = 0.03
    n_train: int = 100
    n_test: int = 100
    data_seed: int = 0
    seed: int = 0
    checkpoints: tuple[float, ...] = (0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)  # fractions of steps
    curve_points: int = 40

    @property
    def checkpoint_steps(self) -> list[int]:
        return [round(f * self.steps) for f in self.checkpoints]

    @property
    def curve_steps(self) -> list[int]:
        return [round(i * self.steps / self.curve_points) for i in range(self.curve_points + 1)]


def activate(z: Tensor, name: str) -> Tensor:
    check_choice("activation", name, ACTIVATIONS)
    return {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[name](z)


def activation_slope(a: Tensor, z: Tensor, name: str) -> Tensor:
    """d act / d z, written with the activation's own output where that is the usual form."""
    return {"relu": lambda: (z > 0).to(z.dtype), "tanh": lambda: 1 - a**2, "sigmoid": lambda: a * (1 - a)}[name]()


def build_mlp(cfg: RunConfig) -> nn.Sequential:
    """The plain torch model for `cfg`: Linear, activation, ..., Linear (logits)."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[cfg.activation]
    layers: list[nn.Module] = []
    n_in = 2
    for _ in range(cfg.layers):
        layers += [nn.Linear(n_in, cfg.width), act()]
        n_in = cfg.width
    layers.append(nn.Linear(n_in, cfg.n_outputs))
    return nn.Sequential(*layers)


def mlp_weights(model: nn.Sequential) -> list[Tensor]:
    """The Linear layers of `model` as (n_out, n_in + 1) matrices, bias last."""
    return [torch.cat([m.weight, m.bias[:, None]], dim=1).detach() for m in model if isinstance(m, nn.Linear)]


def point_loss(logits: Float[Tensor, "... n_out"], y: Int[Tensor, "..."], output: str) -> Float[Tensor, "..."]:
    """Loss of each point: squared error of a sigmoid, or cross-entropy of a softmax."""
    if output == "sigmoid-mse":
        return (torch.sigmoid(logits[..., 0]) - y.to(logits.dtype)) ** 2
    return torch.logsumexp(logits, dim=-1) - logits.gather(-1, y[..., None])[..., 0]


@dataclass
class Backprop:
    """One input's trip through the network: forward values, then gradients."""

    values: list[Tensor]  # per layer of neurons: inputs, hidden layers, output probabilities; each (..., n)
    deltas: list[Tensor]  # dL/dz for each non-input layer (pre-activation), (..., n_out)
    grads: list[Tensor]  # dL/dW for each weight matrix, bias last, (..., n_out, n_in + 1)
    loss: Tensor  # (...)


def forward_backward(
    weights: list[Float[Tensor, "... n_out n_in_plus_1"]],
    x: Float[Tensor, "... 2"],
    y: Int[Tensor, "..."],
    activation: str,
    output: str,
) -> Backprop:
    """Backprop by hand for one input (or a batch of independent ones in the leading dims).

    Forward: z = W a + b, a = act(z), layer after layer; the last z are logits.
    Backward: the output delta is dL/dlogits; each weight's gradient is the delta of the neuron it
    feeds times the value of the neuron it reads; a hidden delta is the weighted sum of the deltas
    above it times the activation's slope (the chain rule).
    """
    check_choice("output", output, OUTPUTS)
    values, pre = [x], []
    for i, w in enumerate(weights):
        z = torch.einsum("...oi,...i->...o", w[..., :-1], values[-1]) + w[..., -1]  # (..., n_out)
        pre.append(z)
        if i < len(weights) - 1:
            values.append(activate(z, activation))
    logits = pre[-1]
    loss = point_loss(logits, y, output)
    if output == "sigmoid-mse":  # L = (p - y)^2, p = sigmoid(z): dL/dz = 2 (p - y) p (1 - p)
        p = torch.sigmoid(logits)  # (..., 1)
        delta = 2 * (p - y[..., None].to(p.dtype)) * p * (1 - p)
    else:  # L = -log softmax(z)_y: dL/dz = p - onehot(y)
        p = torch.softmax(logits, dim=-1)  # (..., 2)
        delta = p - nn.functional.one_hot(y, p.shape[-1]).to(p.dtype)
    values.append(p)
    deltas, grads = [delta], []
    for i in range(len(weights) - 1, -1, -1):
        a_in = torch.cat([values[i], torch.ones_like(values[i][..., :1])], dim=-1)  # bias input is 1
        grads.append(deltas[0][..., :, None] * a_in[..., None, :])
        if i > 0:
            back = torch.einsum("...oi,...o->...i", weights[i][..., :-1], deltas[0])
            deltas.insert(0, back * activation_slope(values[i], pre[i - 1], activation))
    return Backprop(values, deltas, grads[::-1], loss)


@dataclass
class GroupResult:
    """A trained group of same-shaped models: checkpoints, curves and accuracies, all on CPU."""

    weights: list[Tensor]  # per layer (n_checkpoints, models, n_out, n_in + 1)
    train_curve: Tensor  # (n_curve, models) data loss on the whole training set
    test_curve: Tensor  # (n_curve, models)
    train_accuracy: Tensor  # (n_checkpoints, models)
    test_accuracy: Tensor  # (n_checkpoints, models)


@contextmanager
def single_thread(device: torch.device) -> Iterator[None]:
    """On CPU, run tiny tensor ops on one thread: handing them between threads costs more than it saves."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_group(runs: list[RunConfig], settings: TrainSettings, device: torch.device) -> GroupResult:
    """Train every run in `runs` (same layers, width and batch size) in one vectorised loop."""
    with single_thread(device):
        return _train_group(runs, settings, device)


def _train_group(runs: list[RunConfig], settings: TrainSettings, device: torch.device) -> GroupResult:
    shapes = {(r.layers, r.width, r.batch) for r in runs}
    if len(shapes) != 1:
        raise ValueError(f"train_group needs runs of one shape and batch size, got {sorted(shapes, key=str)}")
    layers, width, batch = shapes.pop()
    m = len(runs)
    gen = torch.Generator().manual_seed(hash_seed(settings.seed, layers, width, batch))
    data = {name: make_dataset(name, settings.n_train, settings.n_test, settings.data_seed) for name in DATASETS}
    x_train = torch.stack([data[r.dataset].x_train for r in runs]).to(device)  # (m, n, 2)
    y_train = torch.stack([data[r.dataset].y_train for r in runs]).to(device)  # (m, n)
    x_test = torch.stack([data[r.dataset].x_test for r in runs]).to(device)
    y_test = torch.stack([data[r.dataset].y_test for r in runs]).to(device)
    n = x_train.shape[1]
    batch = n if batch == "full" else batch

    def column(values) -> Tensor:
        return torch.tensor(values, device=device)

    act_index = column([ACTIVATIONS.index(r.activation) for r in runs])[:, None, None]  # (m, 1, 1)
    is_mse = column([r.output == "sigmoid-mse" for r in runs])[:, None]  # (m, 1)
    out_mask = torch.ones(m, 2, 1, device=device)
    out_mask[is_mse[:, 0], 1] = 0  # a sigmoid model has one output: the second row stays zero
    strength = column([REGULARIZATION_STRENGTH[r.regularization] for r in runs])
    is_l1 = column([r.regularization == "l1" for r in runs])

    sizes = [2] + [width] * layers + [2]
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = n_in**-0.5  # torch.nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        params.append(((torch.rand(m, n_out, n_in + 1, generator=gen) * 2 - 1) * bound).to(device).requires_grad_())
    with torch.no_grad():
        params[-1].mul_(out_mask)
    optimizer = torch.optim.Adam(params, lr=settings.lr)

    def effective() -> list[Tensor]:
        return params[:-1] + [params[-1] * out_mask]

    def logits_of(x: Tensor) -> Tensor:
        a = x  # (m, points, n_in)
        for w in effective()[:-1]:
            z = torch.baddbmm(w[:, None, :, -1], a, w[:, :, :-1].transpose(1, 2))  # (m, points, width)
            a = torch.where(act_index == 0, torch.relu(z), torch.where(act_index == 1, torch.tanh(z), torch.sigmoid(z)))
        w = effective()[-1]
        return torch.baddbmm(w[:, None, :, -1], a, w[:, :, :-1].transpose(1, 2))  # (m, points, 2)

    def losses(logits: Tensor, y: Tensor) -> Tensor:  # (m, points)
        return torch.where(is_mse, point_loss(logits, y, "sigmoid-mse"), point_loss(logits, y, "softmax-ce"))

    def accuracy(x: Tensor, y: Tensor) -> Tensor:  # (m,)
        logits = logits_of(x)
        p = torch.where(is_mse, torch.sigmoid(logits[..., 0]), torch.softmax(logits, dim=-1)[..., 1])
        return ((p > 0.5).long() == y).float().mean(1)

    ckpt_steps, curve_steps = set(settings.checkpoint_steps), set(settings.curve_steps)
    weights, train_curve, test_curve, train_acc, test_acc = [], [], [], [], []
    rows = torch.arange(m, device=device)[:, None]
    for step in range(settings.steps + 1):
        with torch.no_grad():
            if step in curve_steps:
                train_curve.append(losses(logits_of(x_train), y_train).mean(1).cpu())
                test_curve.append(losses(logits_of(x_test), y_test).mean(1).cpu())
            if step in ckpt_steps:
                weights.append([w.detach().cpu().clone() for w in effective()])
                train_acc.append(accuracy(x_train, y_train).cpu())
                test_acc.append(accuracy(x_test, y_test).cpu())
        if step == settings.steps:
            break
        if batch == n:
            xb, yb = x_train, y_train
        else:  # each model draws its own mini-batch, without replacement
            pick = torch.rand(m, n, generator=gen).argsort(1)[:, :batch].to(device)  # (m, batch)
            xb, yb = x_train[rows, pick], y_train[rows, pick]
        data_loss = losses(logits_of(xb), yb).mean(1)  # (m,)
        penalty = sum(torch.where(is_l1[:, None, None], w[..., :-1].abs(), w[..., :-1] ** 2).sum((1, 2)) for w in effective())
        optimizer.zero_grad(set_to_none=True)
        (data_loss + strength * penalty).sum().backward()  # a sum: each model gets its own gradient
        optimizer.step()
    return GroupResult(
        weights=[torch.stack([c[i] for c in weights]) for i in range(len(params))],
        train_curve=torch.stack(train_curve),
        test_curve=torch.stack(test_curve),
        train_accuracy=torch.stack(train_acc),
        test_accuracy=torch.stack(test_acc),
    )


def hash_seed(*parts) -> int:
    """A stable seed from a few values (Python's hash() of a str changes between runs)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def trim_output(w: Tensor, cfg: RunConfig) -> Tensor:
    """The output matrix as the run really has it: one row for a sigmoid, two for a softmax."""
    return w[..., : cfg.n_outputs, :]
