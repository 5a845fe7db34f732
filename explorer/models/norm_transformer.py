"""A small byte-level transformer with no LayerNorm, pre-LN or post-LN blocks (the curriculum's LayerNorm chapter).

Plain PyTorch, not TransformerLens: TL-native blocks are pre-LN only, and this chapter needs the
post-LN block of the original transformer too. The three variants differ only where the norm sits:

    none   x <- x + attn(x);          x <- x + mlp(x)
    pre    x <- x + attn(LN(x));      x <- x + mlp(LN(x))       (and a final LN before the unembedding)
    post   x <- LN(x + attn(x));      x <- LN(x + mlp(x))

Trained on the flagship's corpus (explorer/data/code_corpus.py, bytes of Python source) with Adam
at a constant learning rate and no warm-up, so that the settings that cannot take a learning rate
show it. Seconds per run on one CPU thread.
"""

import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from explorer.data import code_corpus

NORMS = ("none", "pre", "post")
VOCAB = 256


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, norm: str):
        super().__init__()
        self.norm, self.n_heads = norm, n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.o = nn.Linear(d_model, d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def attn(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x (batch, head, pos, d_head)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(z.transpose(1, 2).reshape(b, t, d))

    def mlp(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x)))

    def forward(self, x: Tensor) -> Tensor:
        if self.norm == "pre":
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        if self.norm == "post":
            x = self.ln1(x + self.attn(x))
            return self.ln2(x + self.mlp(x))
        x = x + self.attn(x)
        return x + self.mlp(x)


class NormTransformer(nn.Module):
    def __init__(self, norm: str, d_model: int, n_heads: int, n_layers: int, n_ctx: int):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")
        self.norm = norm
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Embedding(n_ctx, d_model)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, norm) for _ in range(n_layers)])
        self.ln_final = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()
        self.unembed = nn.Linear(d_model, VOCAB)

    def streams(self, tokens: Int[Tensor, "batch pos"]) -> tuple[Tensor, list[Tensor]]:
        """Logits and the residual stream after the embeddings and after every block."""
        x = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1]))
        kept = [x]
        for block in self.blocks:
            x = block(x)
            kept.append(x)
        return self.unembed(self.ln_final(x)), kept

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        return self.streams(tokens)[0]


def byte_rows(split: str, n_bytes: int) -> Tensor:
    return torch.from_numpy(code_corpus.corpus_bytes(split, n_bytes).astype(np.int64))


def windows(data: Tensor, n: int, length: int, generator: torch.Generator) -> Int[Tensor, "n length"]:
    starts = torch.randint(0, len(data) - length, (n,), generator=generator)
    return torch.stack([data[s : s + length] for s in starts.tolist()])


def train(norm: str, lr: float, seed: int, *, d_model: int, n_heads: int, n_layers: int, n_ctx: int, steps: int,
          batch: int, train_bytes: int, eval_rows: int, log_every: int) -> dict:
    """One run: the training loss every `log_every` steps, the held-out loss at the end, and the RMS of the
    residual stream after each block (on the held-out rows) at every logged step."""
    data, heldout = byte_rows("train", train_bytes), byte_rows("heldout", train_bytes // 10)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = NormTransformer(norm, d_model, n_heads, n_layers, n_ctx)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        evaluation = windows(heldout, eval_rows, n_ctx + 1, torch.Generator().manual_seed(99))
        history, start = [], time.perf_counter()
        for step in range(steps + 1):
            if step % log_every == 0 or step == steps:
                history.append({"step": step, **measure(model, evaluation)})
            if step == steps:
                break
            rows = windows(data, batch, n_ctx + 1, generator)
            loss = F.cross_entropy(model(rows[:, :-1]).reshape(-1, VOCAB), rows[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(before)
    return {"history": history, "seconds": time.perf_counter() - start}


@torch.no_grad()
def measure(model: NormTransformer, rows: Int[Tensor, "n length"]) -> dict:
    logits, kept = model.streams(rows[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), rows[:, 1:].reshape(-1)).item()
    rms = [float(x.pow(2).mean().sqrt()) for x in kept]  # after the embeddings, then after each block
    return {"loss": loss if math.isfinite(loss) else float("inf"), "rms": [r if math.isfinite(r) else float("inf") for r in rms]}


SWEEP = "layernorm-sweep"  # the cache entries of the LayerNorm chapter's runs


def sweep_entry(norm: str, lr: float, seed: int, recipe: dict) -> dict:
    """One run of the chapter's sweep: from the cache, or trained now and cached (worker processes run this too)."""
    from explorer.cache import cached

    config = {"norm": norm, "lr": lr, "seed": seed, **recipe}
    return cached(SWEEP, config, lambda: train(norm, lr, seed, **recipe), code=[sys.modules[__name__]])


def _train_only(job: tuple) -> None:
    sweep_entry(*job)


def train_missing(jobs: list[tuple[str, float, int]], recipe: dict, workers: int = 2) -> None:
    """Train the runs not yet cached, `workers` at a time (each on one thread, so the results are the bytes a
    single process would make; the CPU dispatch is pinned through the environment, which workers inherit)."""
    from explorer.cache import cache_key, entry_path

    module = sys.modules[__name__]
    missing = [(n, lr, s, recipe) for n, lr, s in jobs
               if not entry_path(SWEEP, cache_key(SWEEP, {"norm": n, "lr": lr, "seed": s, **recipe}, [module])).exists()]
    workers = max(1, min(workers, os.cpu_count() or 1, len(missing)))
    if workers < 2:
        return  # the figure trains them one by one as it reads them
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_train_only, missing))
