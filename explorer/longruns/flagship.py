"""The flagship's training runs: a byte-level 2-layer attention-only model on Python source, three seeds.

Measured before this was written (issue 10): the same recipe on the standard library's source
formed a previous-token head by 12M bytes and an induction head (score 0.61) by 35M. Each run here
sees 5,000 batches of 32 x 256 bytes (41M bytes) of the bigger corpus (explorer.data.code_corpus),
on two CPU threads (about 42k bytes/s here: 20 minutes a seed), and records its film every
`film_every` steps: every head's previous-token and induction score, held-out loss and the
in-context-learning score. Train one with `make models NAME=flagship-bytes-2l-s0`.

The artifact's key is the training code only (this file, the plain model, the corpus): the film's
measurements (explorer.techniques.flagship_film) are loaded by name, so improving a detector does
not demand an hour of retraining. The film is data measured by the code of its day; the figure
rescores the stored checkpoints with today's code and tests/test_flagship.py checks they agree.
"""

import importlib
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from explorer import artifacts
from explorer.data import code_corpus
from explorer.models import flagship_config as flagship
from explorer.models.reference import PlainTransformer

CONFIG = dict(arch=flagship.ARCH, batch=32, steps=5000, threads=2, lr=3e-3, warmup=200, weight_decay=0.01, betas=(0.9, 0.99),
              init_std=0.02, corpus="stdlib + site-packages .py (explorer.data.code_corpus)", heldout_share=code_corpus.HELDOUT_SHARE,
              film_every=200, checkpoints=(0, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000), eval_rows=64, probe_rows=32)  # fmt: skip
HELDOUT_LIMIT = 4_000_000  # bytes of held-out text read for evaluation (the split has ~16M)


def init_weights(model: torch.nn.Module, std: float) -> None:
    """GPT-2's initialisation: normal(0, std) for every matrix and embedding, zero biases, unit layer norms."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, 0.0, std)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)


def windows(data: np.ndarray, starts: np.ndarray, n_ctx: int) -> torch.Tensor:
    """Rows of `n_ctx` bytes beginning at `starts`: (len(starts), n_ctx) token ids."""
    index = starts[:, None] + np.arange(n_ctx)[None, :]
    return torch.from_numpy(data[index].astype(np.int64))


def train(config: dict, device) -> artifacts.Trained:
    arch, seed = config["arch"], int(config["seed"])
    film_of = importlib.import_module("explorer.techniques.flagship_film").film_frame  # by name: see the module docstring
    torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(seed)
    model = PlainTransformer(arch).to(device)
    init_weights(model, config["init_std"])
    data = code_corpus.corpus_bytes("train")
    heldout_data = code_corpus.corpus_bytes("heldout", HELDOUT_LIMIT)
    eval_starts = np.linspace(0, len(heldout_data) - arch["n_ctx"] - 1, config["eval_rows"]).astype(np.int64)
    heldout = windows(heldout_data, eval_starts, arch["n_ctx"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], betas=tuple(config["betas"]), weight_decay=config["weight_decay"])
    sampler = np.random.default_rng(seed)
    film, checkpoints, started = [], {}, time.perf_counter()
    for step in range(config["steps"] + 1):
        if step in config["checkpoints"]:
            checkpoints[step] = {k: v.detach().to(torch.float16).cpu().clone() for k, v in model.state_dict().items()}
        if step % config["film_every"] == 0 or step == config["steps"]:
            model.eval()
            frame = film_of(model.state_dict(), heldout, config["probe_rows"])
            film.append({"step": step, "bytes": step * config["batch"] * arch["n_ctx"], **frame})
            print(f"step {step}: loss {frame['heldout_loss']:.3f}, prev {frame['previous_token_max']:.2f}, "
                  f"induction {frame['induction_max']:.2f}, icl {frame['icl_score']:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
            model.train()
        if step == config["steps"]:
            break
        lr = config["lr"] * min(1.0, (step + 1) / config["warmup"])  # warm-up, then constant
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = sampler.integers(0, len(data) - arch["n_ctx"] - 1, config["batch"])
        batch = windows(data, starts, arch["n_ctx"]).to(device)  # (batch, n_ctx)
        logits = model(batch)  # (batch, n_ctx, 256)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, arch["d_vocab"]), batch[:, 1:].reshape(-1))
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"flagship seed {seed}: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    wall = time.perf_counter() - started
    tokens = config["steps"] * config["batch"] * arch["n_ctx"]
    metrics = {"film": film, "threads": torch.get_num_threads(), "final": film[-1], "tokens_per_s": round(tokens / wall), "corpus_fingerprint": code_corpus.fingerprint(),
               "train_bytes": int(len(data)), "heldout_files": len(code_corpus.split_files("heldout")),
               "train_files": len(code_corpus.split_files("train"))}  # fmt: skip
    return artifacts.Trained(weights=model.state_dict(), checkpoints=checkpoints, tokens=tokens, metrics=metrics)


for _seed in flagship.SEEDS:
    artifacts.long_run(flagship.name(_seed), config=dict(CONFIG, seed=_seed),
                       description=f"flagship byte-level 2-layer attention-only model on Python source, seed {_seed}")(train)  # fmt: skip
