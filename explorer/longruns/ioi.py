"""The IOI model's training runs: a 3-layer attention-only transformer on indirect-object sentences, three seeds.

IOI is learnt in a phase change whose timing varies by seed (at 500 steps one seed of three had it),
so the runs are trained once, long enough for every seed, and stored: the figures and the tests
read the same weights at every scale. Each run: 2,000 steps of 64 sentences of one template
(explorer/data/ioi.py), next-token loss on every word, through TransformerLens's own forward pass
(explorer.models.training). About a minute a seed on one thread. Train one with
`make models NAME=ioi-3l-s0`.
"""

import torch

from explorer import artifacts
from explorer.data import ioi as ioi_data
from explorer.models import training

ARCH = dict(n_layers=3, d_model=64, n_heads=4, d_head=16, d_mlp=None, n_ctx=24, attn_only=True, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard", d_vocab=len(ioi_data.vocabulary()))  # fmt: skip
CONFIG = dict(arch=ARCH, steps=2000, batch=64, lr=3e-3, warmup=50, checkpoint_every=250)
SEEDS = (0, 1, 2)


def training_batch(generator: torch.Generator, size: int) -> torch.Tensor:
    """Sentences of one random template, each followed by its answer: (batch, words) token ids."""
    index = {w: i for i, w in enumerate(ioi_data.vocabulary())}
    t = int(torch.randint(len(ioi_data.TEMPLATES), (1,), generator=generator))
    s = ioi_data.sample(size, generator, templates=(ioi_data.TEMPLATES[t],))
    return torch.tensor([[index[w] for w in [*words, io]] for words, io in zip(s.words, s.io, strict=True)])


def train(config: dict, device) -> artifacts.Trained:
    run = training.train(config["arch"], lambda g: training_batch(g, config["batch"]), steps=config["steps"], lr=config["lr"],
                         warmup=config["warmup"], seed=int(config["seed"]), log_every=config["checkpoint_every"],
                         checkpoint_every=config["checkpoint_every"], evaluate=lambda model: {}, device=device)  # fmt: skip
    checkpoints = {step: {k: v.to(torch.float16) for k, v in weights.items()} for step, weights in run.checkpoints}
    losses = [h["train_loss"] for h in run.history]
    return artifacts.Trained(weights=run.state_dict, checkpoints=checkpoints, tokens=run.tokens_seen,
                             metrics={"train_loss": [None if x != x else round(x, 4) for x in losses], "train_seconds": round(run.train_seconds, 1)})  # fmt: skip


for _seed in SEEDS:
    artifacts.long_run(f"ioi-3l-s{_seed}", config=dict(CONFIG, seed=_seed),
                       description=f"3-layer attention-only IOI model, seed {_seed}")(train)  # fmt: skip
