"""`make bench`: performance numbers, printed (never asserted).

Sections: no-op `figures --check` (goal <= 1 s), no-op figure build, full-scale build time per article (recorded in the manifest when
the published figures were built, plus a cold rebuild of chosen articles with an empty model
cache), bytes of figure spec + data per page, time from page load to all figures drawn in
headless Chromium, one step of the playground's slider, Lighthouse on every page
(explorer/site/pagebench.py), the model zoo's training throughput, and the claims that move when
the chaotic digits figures are rebuilt under another thread count and other CPU code paths, and
the mutation score: the share of planted bugs the unit tests catch (explorer/mutants.py), and each
interpretability article's time and peak memory on a full-size GPT-2 stand-in.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from explorer import jsonio, paths
from explorer.site import pagebench
from explorer.site.weights import page_weights

PAGE_GOAL = 1_500_000
THROUGHPUT_GOAL = 0.9  # training through TransformerLens vs plain PyTorch, tokens per CPU-second
ZOO_GOAL_S = 600
CHECK_GOAL_S = 1.0  # `figures --check` when nothing is stale
# Rebuilt from an empty model cache by default: the curriculum's chapters and the techniques articles.
CURRICULUM = ("backprop", "self_attention", "multi_head", "positional_encodings", "residual_connections", "layer_norm")
CHAPTER_GOAL_S = 120  # each curriculum chapter's figures, full scale, from an empty model cache
# Full-scale goals (s, from an empty model cache; stored long runs are read, not retrained) for the articles
# whose issues set one: the representation articles (issue 13) and the training-dynamics ones (issue 14),
# where grokking's figures come from its stored runs.
ARTICLE_GOALS_S = {**dict.fromkeys(CURRICULUM, CHAPTER_GOAL_S),
                   **dict.fromkeys(("superposition", "saes", "probing", "steering", "neurons"), 300),
                   **dict.fromkeys(("weight_evolution", "lora", "forgetting"), 300), "grokking": 60}
COLD_ARTICLES = (*CURRICULUM, "activations", "weights", "features", "saliency", "loss_landscapes", "projections", "attention",
                 "superposition", "saes", "probing", "steering", "neurons", "weight_evolution", "lora", "forgetting", "grokking")


def _time(command: list[str], env: dict | None = None, repeat: int = 3) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=paths.REPO, env={**os.environ, **(env or {})}, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def bench_noop() -> None:
    times = _time([sys.executable, "-m", "explorer", "figures", "--quiet"])
    print(f"no-op `make figures`: min {min(times):.2f} s, median {statistics.median(times):.2f} s over {len(times)} runs")


def bench_check() -> None:
    """`figures --check` with nothing stale: reads sources and hashes files, imports no producer."""
    command = [sys.executable, "-m", "explorer", "figures", "--check"]
    subprocess.run(command, cwd=paths.REPO, capture_output=True)  # warm .cache/figure-index.json and the page cache
    times = []
    for _ in range(5):
        start = time.perf_counter()
        stale = subprocess.run(command, cwd=paths.REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    note = "" if stale.returncode == 0 else f" ({len(stale.stdout.splitlines())} figures stale: the time is the same, the answer is not no-op)"
    print(f"no-op `figures --check`: median {median:.2f} s, min {min(times):.2f} s over {len(times)} runs "
          f"(goal <= {CHECK_GOAL_S:.0f} s){'' if median <= CHECK_GOAL_S else '  OVER GOAL'}{note}")


def bench_recorded() -> None:
    manifest = jsonio.read_json(paths.FIGURES / "manifest.json")["figures"]
    per_article = defaultdict(float)
    for entry in manifest.values():
        per_article[entry["article"]] += entry["wall_time_s"]
    print("full-scale build time per article, as recorded when published (s; includes training only if the cache was cold):")
    for article, seconds in sorted(per_article.items()):
        print(f"  {article:24} {seconds:8.1f}")
    print(f"  {'total':24} {sum(per_article.values()):8.1f}")


def bench_cold(articles: tuple[str, ...]) -> None:
    from explorer.pipeline.registry import discover

    figures = discover()
    for article in articles:
        ids = [fid for fid, f in figures.items() if f.article == article]
        if not ids:
            print(f"cold build {article}: no such article")
            continue
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            env = {"EXPLORER_CACHE": cache}
            (seconds,) = _time([sys.executable, "-m", "explorer", "figures", "--quiet", "--out", out, "--only", *ids], env, repeat=1)
        goal = ""
        if article in ARTICLE_GOALS_S:
            limit = ARTICLE_GOALS_S[article]
            goal = f" (goal <= {limit} s){'  OVER GOAL' if seconds > limit else ''}"
        print(f"cold full-scale build of {article} ({len(ids)} figures, empty model cache): {seconds:.1f} s{goal}")


HUB_GOAL_S, HUB_GOAL_GB = 600, 8.0  # per interpretability article on GPT-2 small, this CPU
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
try:
    code = subprocess.run(sys.argv[2:], timeout=float(sys.argv[1])).returncode
except subprocess.TimeoutExpired:
    code = "timeout"
print(f"{time.perf_counter() - start:.1f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6:.2f} {code}")
"""


def bench_hub(model: str = "gpt2", limit_gb: float = 16.0, timeout_s: float = 900.0) -> None:
    """Each model-aware article on a full-size GPT-2 stand-in (explorer/models/hub_standin.py): wall time and
    peak memory, against the goals. Address space is capped at `limit_gb` so a producer that would take the
    machine's memory fails instead."""
    import resource

    from explorer.models import hub_standin
    from explorer.pipeline.registry import discover

    articles: dict[str, list[str]] = defaultdict(list)
    for fid, fig in discover().items():
        if fig.model_option:
            articles[fig.article].append(fid)
    cap = int(limit_gb * 2**30)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryDirectory() as hub, tempfile.TemporaryDirectory() as out:
        hub_standin.build_gpt2(Path(hub))
        env = {**os.environ, "HF_HUB_CACHE": hub, "HF_HUB_OFFLINE": "1"}
        print(f"interpretability articles on a full-size {model} stand-in (random weights; goal <= {HUB_GOAL_S} s and <= {HUB_GOAL_GB:.0f} GB each; "
              f"memory capped at {limit_gb:.0f} GB, time at {timeout_s:.0f} s):")
        for article, ids in sorted(articles.items()):
            command = [sys.executable, "-m", "explorer", "figures", "--quiet", "--model", model, "--out", out, "--force", "--only", *ids]
            done = subprocess.run([sys.executable, "-c", MEASURE, str(timeout_s), *command], cwd=paths.REPO, env=env,
                                  capture_output=True, text=True, preexec_fn=limit)
            seconds, peak, code = done.stdout.strip().splitlines()[-1].split()
            failed = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith(("failed", "skipped"))]
            over = float(seconds) > HUB_GOAL_S or float(peak) > HUB_GOAL_GB or code != "0"
            print(f"  {article:20} {float(seconds):7.1f} s  peak {float(peak):5.2f} GB  exit {code}{'  OVER GOAL' if over else ''}")
            for line in failed:
                print(f"      {line[:200]}")


def bench_reproducible(scale: str = "full") -> None:
    """Rebuild the chaotic digits figures from empty caches under two settings and list what moved."""
    from explorer.ensemble import OTHER_CPU, OTHER_THREADS, SENSITIVE_FIGURES, compare_claims, interval_claims, rebuild_claims

    other = {**OTHER_THREADS, **OTHER_CPU}
    start = time.perf_counter()
    built = rebuild_claims({"pinned": {}, "other": other}, SENSITIVE_FIGURES, scale)
    outside, inside = [], []
    for fid in SENSITIVE_FIGURES:
        reference, moved = built["pinned"][fid], built["other"][fid]
        outside += [f"{fid}:{line}" for line in compare_claims(reference, moved)]
        inside += [f"{fid}:{key} {reference[key]:.6g} -> {moved[key]:.6g} (range {lo:.4g}-{hi:.4g})"
                   for key, (lo, hi) in interval_claims(reference).items() if key in moved and moved[key] != reference[key] and lo <= moved[key] <= hi]  # fmt: skip
    setting = " ".join(f"{k}={v}" for k, v in other.items())
    print(f"claims that moved between the pinned defaults and {setting} ({scale} scale, empty caches, {time.perf_counter() - start:.0f} s; "
          f"goal: none outside their stated intervals): {len(outside)} outside{'  OVER GOAL' if outside else ''}, {len(inside)} inside")
    for line in outside:
        print(f"  outside  {line}")
    for line in inside:
        print(f"  inside   {line}")


def bench_mutants() -> None:
    """Plant each hand-made bug of explorer.mutants in a copy of the checkout and run its unit tests."""
    from explorer import mutants

    report = mutants.run()
    print(report.line())
    for result in report.results:
        if not result.killed:
            print(f"  {result.status:8} {result.mutant.id:40} {result.mutant.file}: {result.mutant.bug}")


def bench_pages(site: Path) -> None:
    print(f"figure spec + data per page (goal <= {PAGE_GOAL / 1e6:.1f} MB):")
    for page, size in page_weights(site).items():
        flag = "" if size <= PAGE_GOAL else "  OVER GOAL"
        print(f"  {page:48} {size / 1e6:7.3f} MB{flag}")


def bench_models() -> None:
    from explorer.models.benchmark import throughput, zoo_training_time

    timing = zoo_training_time()
    print("model zoo, trained from scratch at full scale (one torch thread):")
    for name, m in timing["models"].items():
        print(f"  {name:16} {m['wall_s']:7.1f} s wall {m['cpu_s']:7.1f} s CPU {m['tokens']:>10,} tokens {m['tokens_per_s']:>8,} tokens/s")
    over = "" if timing["total_wall_s"] <= ZOO_GOAL_S else "  OVER GOAL"
    print(f"  {'total':16} {timing['total_wall_s']:7.1f} s wall {timing['total_cpu_s']:7.1f} s CPU (goal <= {ZOO_GOAL_S} s){over}")
    print(f"training tokens per CPU-second, one thread (goal: TransformerLens >= {THROUGHPUT_GOAL:.0%} of plain PyTorch):")
    for name in ("gelu-2l", "attn-only-2l"):
        result = throughput(name)
        speeds = ", ".join(f"{k} {v:,}" for k, v in result["tokens_per_cpu_s"].items())
        ratio = result["transformer_lens_vs_plain"]
        print(f"  {name:16} TransformerLens / plain {ratio:.3f} (stock TransformerLens {result['explicit_attention_vs_plain']:.3f}){'' if ratio >= THROUGHPUT_GOAL else '  UNDER GOAL'}")
        print(f"  {'':16} {speeds}")


def bench_long_runs() -> None:
    """The long runs as stored: tokens seen, throughput and device, from each artifact's provenance (not retrained)."""
    from explorer import artifacts

    names = artifacts.stored()
    if not names:
        return
    print("long runs, as trained (models/*/provenance.json):")
    for name in names:
        record = jsonio.read_json(artifacts.provenance_file(name))
        metrics = record.get("metrics") or {}
        speed = metrics.get("tokens_per_s")
        tokens = record.get("tokens")
        print(f"  {name:24} {tokens or 0:>12,} tokens {f'{speed:>8,} tokens/s' if speed else '':18} "
              f"{record.get('wall_time_s', 0):7.0f} s on {record.get('device')}, {metrics.get('threads', '?')} thread(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="explorer bench")
    parser.add_argument("--cold", nargs="*", default=list(COLD_ARTICLES), metavar="ARTICLE", help="articles to rebuild from an empty cache")
    parser.add_argument("--no-zoo", action="store_true", help="skip training the model zoo from scratch")
    parser.add_argument("--repro-scale", choices=("smoke", "full", "none"), default="full", help="scale of the cross-setting claim comparison (none: skip)")
    parser.add_argument("--no-lighthouse", action="store_true", help="skip the Lighthouse audit of every page (about a minute a page)")
    parser.add_argument("--no-mutants", action="store_true", help="skip the mutation run (a few minutes)")
    parser.add_argument("--no-hub", action="store_true", help="skip the interpretability articles on a full-size GPT-2 stand-in (up to an hour)")
    args = parser.parse_args(argv)
    bench_check()
    bench_noop()
    bench_recorded()
    bench_long_runs()
    if not args.no_mutants:
        bench_mutants()
    bench_cold(tuple(args.cold))
    if args.repro_scale != "none":
        bench_reproducible(args.repro_scale)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(site)], cwd=paths.REPO, check=True)
        bench_pages(site)
        pagebench.bench_render(site)
        pagebench.bench_slider(site)
        if not args.no_lighthouse:
            pagebench.bench_lighthouse(site)
    if not args.no_zoo:
        bench_models()
    if not args.no_hub:
        bench_hub()
    return 0
