"""Grokking modular addition, the setup of Nanda et al. (2023): p = 113, a one-layer transformer
(explorer/models/grokking.py), 30% of the 12,769 pairs for training, full-batch AdamW (lr 1e-3,
weight decay 1.0, betas 0.9 / 0.98, 10 warm-up steps), three seeds.

The paper saw memorisation by about 1.4k epochs, the circuit forming to about 9.4k and clean-up
to about 13k. Here seed 0 passed 99.9% test accuracy by step 7k, so a run takes 10k full-batch
steps (clean-up may not be over by then: the weights are still shrinking): about 45 minutes a seed
on one loaded core here, minutes on a GPU (`make models NAME=grok-113-s0`). Train and test loss and accuracy and the sum of squared
weights are kept every 100 steps; the Fourier measures (restricted and excluded loss, the key
frequencies) come from weights saved every 1,000 steps, once the final weights say which
frequencies are key. Only a few checkpoints are stored (models/ has a 50 MB budget); a stopped
run resumes from its last partial save in .cache/longruns/.
"""

import hashlib
import time
from pathlib import Path

import torch

from explorer import artifacts, paths
from explorer.models import grokking as model_lib

CONFIG = dict(p=113, fraction=0.3, d_model=128, n_heads=4, d_head=32, d_mlp=512, steps=10_000, lr=1e-3, weight_decay=1.0,
              betas=(0.9, 0.98), warmup=10, log_every=100, measure_every=1000, save_every=1000,
              stored=(0, 1000, 2000, 4000, 6000, 8000, 10000))  # fmt: skip
SEEDS = (0, 1, 2)


def partial_file(config: dict) -> Path:
    """Where a run of this exact config saves its state as it goes (local: .cache is not committed)."""
    digest = hashlib.sha256(artifacts._canonical(config).encode()).hexdigest()[:12]
    return paths.REPO / ".cache" / "longruns" / f"grok-{config['p']}-s{config['seed']}-{digest}.pt"


def _metrics(model, tokens, target, train_idx, test_idx) -> dict[str, float]:
    with torch.no_grad():
        logits = model(tokens)
        out = {}
        for split, idx in (("train", train_idx), ("test", test_idx)):
            out[f"{split}_loss"] = model_lib.loss_fn(logits[idx], target[idx]).item()
            out[f"{split}_acc"] = (logits[idx].argmax(-1) == target[idx]).double().mean().item()
        out["weight_norm"] = sum(p.detach().double().pow(2).sum().item() for p in model.parameters())
    return out


def fourier_measures(weights_by_step: dict[int, dict], cfg: model_lib.GrokConfig, frequencies: list[int], tokens, target, train_idx) -> list[dict]:
    """Restricted and excluded loss (on the training pairs, as the paper plots them) at each saved step."""
    model = model_lib.ModularAdditionTransformer(cfg)
    rows = []
    for step, weights in sorted(weights_by_step.items()):
        model.load_state_dict(weights)
        with torch.no_grad():
            logits = model(tokens)
        restricted, excluded, share = model_lib.restricted_and_excluded(logits, cfg.p, frequencies)
        rows.append({"step": step, "restricted_loss": model_lib.loss_fn(restricted[train_idx], target[train_idx]).item(),
                     "excluded_loss": model_lib.loss_fn(excluded[train_idx], target[train_idx]).item(),
                     "key_share": share, "embedding_norms": [round(x, 5) for x in model_lib.embedding_frequency_norms(weights["W_E"], cfg.p).tolist()]})
    return rows


def train(config: dict, device) -> artifacts.Trained:
    cfg = model_lib.GrokConfig(p=config["p"], d_model=config["d_model"], n_heads=config["n_heads"], d_head=config["d_head"], d_mlp=config["d_mlp"])
    torch.manual_seed(config["seed"])
    model = model_lib.ModularAdditionTransformer(cfg).to(device)
    tokens = model_lib.all_pairs(cfg.p).to(device)
    target = model_lib.labels(tokens, cfg.p)
    train_idx = model_lib.train_split(cfg.p, config["fraction"], config["seed"]).to(device)
    test_mask = torch.ones(cfg.p * cfg.p, dtype=torch.bool, device=device)
    test_mask[train_idx] = False
    test_idx = torch.nonzero(test_mask).flatten()
    optimiser = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"], betas=tuple(config["betas"]))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / config["warmup"]))
    history, saved, start = [], {}, 0
    partial = partial_file(config)
    if partial.exists():  # a stopped run of this very config resumes where it saved
        state = torch.load(partial, map_location=device, weights_only=False)
        if state.get("config") == artifacts._canonical(config):
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            history, saved, start = state["history"], state["saved"], state["step"]
    started = time.perf_counter()
    x_train, y_train = tokens[train_idx], target[train_idx]
    for step in range(start, config["steps"] + 1):
        if step % config["log_every"] == 0:
            history.append({"step": step, **_metrics(model, tokens, target, train_idx, test_idx)})
        if step % config["save_every"] == 0:
            saved[step] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            partial.parent.mkdir(parents=True, exist_ok=True)
            tmp = partial.with_suffix(".tmp")
            torch.save({"config": artifacts._canonical(config), "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "history": history, "saved": saved, "step": step + 1}, tmp)
            tmp.replace(partial)
        if step == config["steps"]:
            break
        loss = model_lib.loss_fn(model(x_train), y_train)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    final = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    frequencies = model_lib.key_frequencies(final["W_E"], cfg.p)
    cpu = (tokens.cpu(), target.cpu(), train_idx.cpu())
    measures = fourier_measures(saved, cfg, frequencies, *cpu)
    checkpoints = {s: {k: v.to(torch.float16) for k, v in saved[s].items()} for s in config["stored"] if s in saved}
    return artifacts.Trained(weights=final, checkpoints=checkpoints, epochs=config["steps"],
                             metrics={"history": history, "fourier": measures, "key_frequencies": frequencies,
                                      "train_seconds": round(time.perf_counter() - started, 1), "resumed_at": start})


for _seed in SEEDS:
    artifacts.long_run(f"grok-113-s{_seed}", config=dict(CONFIG, seed=_seed),
                       description=f"one-layer transformer grokking (a + b) mod 113, seed {_seed}")(train)  # fmt: skip
