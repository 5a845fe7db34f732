"""The model zoo and the single door `explorer.models.load`, on smoke-scale models and a tiny local checkpoint."""

import json

import pytest
import torch

from explorer import models
from explorer.data import corpus, induction_task
from explorer.errors import ModelUnavailable, UnknownName
from explorer.models import hub, training, zoo

import tiny_models


def test_corpus_split_is_by_file_sorted_and_disjoint():
    train, heldout = corpus.split_files("train"), corpus.split_files("heldout")
    assert train and heldout
    assert not set(train) & set(heldout)
    assert list(corpus.stdlib_files()) == sorted(corpus.stdlib_files(), key=lambda p: p.name)
    assert len(heldout) == -(-len(corpus.stdlib_files()) // corpus.HELDOUT_EVERY)
    with pytest.raises(UnknownName, match="known: heldout, train"):
        corpus.split_files("test")


def test_periodic_batch_repeats_with_a_per_row_period():
    rows = induction_task.periodic_batch(64, 40, 50, 4, 12, torch.Generator().manual_seed(0))
    periods = []
    for row in rows:
        period = next(p for p in range(4, 13) if torch.equal(row[p:], row[:-p]))
        periods.append(period)
    assert len(set(periods)) > 3  # not one fixed period, which a positional head could exploit


@pytest.fixture(scope="module")
def attn2():
    return models.load("attn-only-2l", scale="smoke")


def test_zoo_model_exposes_classic_hook_names(attn2):
    tokens = models.heldout_tokens("attn-only-2l", 2, scale="smoke")
    logits, cache = attn2.run_with_cache(tokens)
    cfg = zoo.config("attn-only-2l", "smoke")["arch"]
    assert logits.shape == (2, cfg["n_ctx"], cfg["d_vocab"])
    assert cache["blocks.1.attn.hook_pattern"].shape == (2, cfg["n_heads"], cfg["n_ctx"], cfg["n_ctx"])
    assert "blocks.0.hook_resid_post" in cache and "blocks.1.attn.hook_z" in cache


def test_training_lowers_heldout_loss_and_keeps_checkpoints():
    run = models.training_run("gelu-1l", scale="smoke")
    assert run.history[-1]["heldout_loss"] < run.history[0]["heldout_loss"] - 0.5
    steps = [s for s, _ in run.checkpoints]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == zoo.config("gelu-1l", "smoke")["train"]["steps"]
    assert run.tokens_seen == run.history[-1]["tokens"] > 0
    first = models.load("gelu-1l", scale="smoke", step=0)
    last = models.load("gelu-1l", scale="smoke")
    assert not torch.equal(first.W_Q, last.W_Q)
    with pytest.raises(UnknownName, match="checkpoint step"):
        models.load("gelu-1l", scale="smoke", step=7)


def test_cached_run_is_not_retrained(monkeypatch):
    models.training_run("attn-only-1l", scale="smoke")

    def fail(*args, **kwargs):
        raise AssertionError("retrained a cached model")

    monkeypatch.setattr(training, "train", fail)
    assert models.training_run("attn-only-1l", scale="smoke").tokens_seen > 0


def test_token_strings_make_whitespace_visible():
    tok = zoo.tokenizer("attn-only-1l", scale="smoke")
    ids = tok.encode("def f(x):\n\treturn x")
    shown = models.token_strings("attn-only-1l", ids, scale="smoke")
    assert "".join(shown) == "def·f(x):⏎→return·x"
    assert models.token_strings("induction-2l", [0, 5], scale="smoke") == ["t0", "t5"]


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownName, match="known: .*attn-only-2l.*gpt2"):
        models.load("gpt-5")
    with pytest.raises(UnknownName, match="known: full, smoke"):
        zoo.config("gelu-1l", "medium")


def _tiny_gpt2_in_hub_cache(root):
    """A random-init GPT-2-architecture checkpoint laid out as the Hugging Face cache stores it."""
    tiny_models.gpt2_in_hub_cache(root, [f"w{i}" for i in range(64)], unk="w0")


def test_hub_model_loads_from_the_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _tiny_gpt2_in_hub_cache(tmp_path)
    model = models.load("gpt2", device="cpu")
    logits, cache = model.run_with_cache(torch.tensor([[1, 2, 3, 4]]))
    assert logits.shape == (1, 4, 64)
    assert cache["blocks.1.attn.hook_pattern"].shape == (1, 2, 4, 4)


def test_missing_hub_model_is_unavailable_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="pythia-70m.*not in the local Hugging Face cache"):
        models.load("pythia-70m")
    assert "pythia-70m" in hub.HUB


def test_reference_model_attention_paths_agree():
    from explorer.models.reference import PlainTransformer

    arch = zoo.config("gelu-1l", "smoke")["arch"]
    fused = PlainTransformer(arch)
    explicit = PlainTransformer(arch, fused_attention=False)
    explicit.load_state_dict(fused.state_dict())
    tokens = torch.randint(0, arch["d_vocab"], (2, arch["n_ctx"]))
    assert torch.allclose(fused(tokens), explicit(tokens), atol=1e-5)


def test_throughput_benchmark_reports_every_contender():
    from explorer.models import benchmark

    result = benchmark.throughput("attn-only-1l", scale="smoke", steps=1, rounds=1)
    assert set(result["tokens_per_cpu_s"]) == {"transformer_lens", "transformer_lens_explicit_attention", "plain_pytorch", "plain_pytorch_explicit_attention"}
    assert all(v > 0 for v in result["tokens_per_cpu_s"].values()) and result["transformer_lens_vs_plain"] > 0


def test_bench_flags_a_throughput_under_the_goal(monkeypatch, capsys):
    from explorer import bench
    from explorer.models import benchmark

    measure = benchmark.throughput

    def slow_bridge(name, **_):
        return {**measure(name, scale="smoke", steps=1, rounds=1), "transformer_lens_vs_plain": 0.5}

    zoo_time = {"models": {"attn-only-1l": {"wall_s": 1.0, "cpu_s": 1.0, "tokens": 10, "tokens_per_s": 10}}, "total_wall_s": 1.0, "total_cpu_s": 1.0}
    monkeypatch.setattr(benchmark, "zoo_training_time", lambda: zoo_time)
    monkeypatch.setattr(benchmark, "throughput", slow_bridge)
    bench.bench_models()
    out = capsys.readouterr().out
    assert out.count("UNDER GOAL") == 2 and "OVER GOAL" not in out


def test_zoo_figure_compares_every_model_in_one_chart(smoke, smoke_claims):
    """One figure for the zoo: every model's curves, every card's numbers as claims, losses below the
    uniform guess once trained, and the language models in one view, the induction model apart."""
    claims = smoke_claims("zoo-loss")
    for name in zoo.ZOO:
        key = name.replace("-", "_")
        assert claims[f"{key}_heldout_loss"] < claims[f"{key}_initial_heldout_loss"] - 0.5, name
        assert claims[f"{key}_heldout_loss"] < claims[f"{key}_uniform_loss"], name
        assert claims[f"{key}_params"] == zoo.parameter_count(name, scale="smoke")
    assert claims["best_language_model"] in zoo.ZOO and zoo.ZOO[claims["best_language_model"]].dataset == "stdlib"
    assert claims["language_models_min_drop_last_quarter"] > 0  # the page: still falling over the last quarter
    spec = smoke.spec("zoo-loss")
    views = spec.get("hconcat") or spec.get("concat")
    assert len(views) == 2
    rows = lambda view: json.loads((smoke.path("zoo-loss") / view["layer"][0]["data"]["url"]).read_text())  # noqa: E731
    drawn = [{row["model"] for row in rows(view)} for view in views]
    assert drawn == [{n for n in zoo.ZOO if zoo.ZOO[n].dataset == "stdlib"}, {"induction-2l"}]
