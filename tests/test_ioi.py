"""The IOI article: its sentences, its measurements, the stories its figures tell, and the GPT-2 path."""

import importlib
import sys

import pytest
import torch

from explorer import paths
from explorer.data import ioi as ioi_data
from explorer.techniques import ioi

import tiny_models

pytestmark = pytest.mark.usefixtures("one_thread")


def producer():
    sys.path.insert(0, str(paths.REPO / "build_figures"))
    return importlib.import_module("ioi")


def test_sentences_follow_the_abba_and_baba_patterns():
    s = ioi_data.sample(8, torch.Generator().manual_seed(0), templates=(ioi_data.TEMPLATES[0],))
    for words, io, sub, c, order in zip(s.words, s.io, s.s, s.corrupt_s2, s.order, strict=True):
        assert len({io, sub, c}) == 3
        assert words.count(sub) == 2 and words.count(io) == 1 and c not in words
        assert (words.index(io) < words.index(sub)) == (order == "ABBA")
    for words, corrupted, sub, c in zip(s.words, s.prompts(corrupted=True), s.s, s.corrupt_s2, strict=True):
        assert corrupted.count(sub) == 1 and corrupted.count(c) == 1 and len(corrupted) == len(words)
    assert len(set(ioi_data.vocabulary())) == len(ioi_data.vocabulary())


def test_a_word_the_tokenizer_splits_is_named():
    class Splitter:
        def encode(self, text, add_special_tokens=False):
            return [1, 2] if "Mary" in text else [3]

    with pytest.raises(ValueError, match="IOI word ' Mary' is 2 tokens for this tokenizer, not one"):
        ioi_data.encode(Splitter(), [["When", "Mary"]], leading_space=True)


def test_head_patching_by_role_matches_a_hand_patched_run():
    """The role patching puts the corrupted head output at one position, and only there."""
    f = producer()
    model = f.our_model(0)
    batch = f.batches(model, 4, False)[0]
    left = ioi.patch_heads_by_role(model, batch, roles=("END",))["END"]
    layer, head = divmod(int((1 - left).abs().argmax()), model.cfg.n_heads)
    _, corrupted = model.run_with_cache(batch.corrupted)
    _, clean = model.run_with_cache(batch.clean)
    z = clean[f"blocks.{layer}.attn.hook_z"].clone()
    z[:, batch.positions["END"], head] = corrupted[f"blocks.{layer}.attn.hook_z"][:, batch.positions["END"], head]
    logits = model.run_with_hooks(batch.clean, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", lambda act, hook: z)])
    by_hand = ioi.logit_diff(logits, batch).mean() / ioi.logit_diff(model(batch.clean), batch).mean()
    assert left[layer, head].item() == pytest.approx(by_hand.item(), abs=1e-4)


def test_the_circuit_does_the_task_and_random_heads_do_not(smoke_claims):
    claims = smoke_claims("ioi-circuit")
    assert claims["io_over_s_min"] > 0.95 and claims["logit_diff_min"] > 3  # chance: 0.5 and 0
    assert abs(claims["untrained_logit_diff"]) < 0.5 and abs(claims["corrupted_logit_diff"]) < 0.5
    assert claims["faithfulness_min"] > 0.8
    assert claims["random_faithfulness_mean_max"] < 0.5 < claims["faithfulness_min"]
    assert abs(claims["nothing_faithfulness"]) < 0.2
    assert claims["suppressors_alone_faithfulness_min"] > 0.5  # the one head that does most of it
    assert claims["gpt2_heads"] == 26 and claims["gpt2_classes"] == 7


def test_the_circuit_is_small_acts_at_the_end_and_suppresses_the_subject(smoke_claims):
    claims = smoke_claims("ioi-heads")
    assert claims["circuit_heads_max"] <= 6 and claims["circuit_heads_at_end"] == claims["circuit_heads"]
    assert claims["s_suppressors_min"] >= 1
    assert claims["suppressor_attention_s2_min"] > 0.5 and claims["suppressor_dla_share_min"] > 0.3
    assert claims["top_s2_loss_max"] < 0.2  # nothing at S2 matters: no duplicate-token heads
    assert claims["suppressor_attention_s2_abc_min"] > 0.5  # ... and S2's place is found with no repeat in it
    assert claims["name_movers_min"] == 0 < claims["name_movers_max"]  # "in some runs only"


def _tiny_gpt2(root):
    """A random GPT-2-architecture checkpoint in the hub cache's layout, whose tokenizer reads every IOI word as one token."""
    tiny_models.gpt2_in_hub_cache(root, [*ioi_data.vocabulary(), "<|endoftext|>"], unk="<pad>", eos="<|endoftext|>")


def test_the_ioi_figures_run_on_gpt2_from_the_local_cache(tmp_path, monkeypatch):
    from explorer.pipeline import build as pipeline

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _tiny_gpt2(tmp_path / "hub")
    outcomes = pipeline.build(["ioi-heads", "ioi-circuit"], scale="smoke", out=tmp_path / "out", model="gpt2", progress=False)
    assert [o.status for o in outcomes] == ["built", "built"], [o.message for o in outcomes]
    import json

    claims = json.loads((tmp_path / "out" / "models" / "gpt2" / "ioi-circuit" / "claims.json").read_text())  # beside, not over
    claims = claims.get("claims", claims)
    assert claims["gpt2_heads"] == 26 and "logit_diff" in claims and "logit_diff_min" not in claims  # one model, no seed range


def test_a_template_that_opens_on_a_name_keeps_only_names_gpt2_reads_as_one_token_there():
    """GPT-2 reads " Karen" as one token but "Karen", opening a sentence, as two: the template that
    starts with a name must not draw it (the full-size GPT-2 stand-in failed on exactly that)."""
    from types import SimpleNamespace

    from build_figures.ioi import single_token_names
    from explorer.data import ioi as ioi_data

    split = ioi_data.NAMES[0]
    model = SimpleNamespace(tokenizer=SimpleNamespace(
        encode=lambda text, add_special_tokens=False: [1, 2] if text == split else [1]))
    opening = next(t for t, template in enumerate(ioi_data.TEMPLATES) if template.startswith("{"))
    inside = next(t for t, template in enumerate(ioi_data.TEMPLATES) if not template.startswith("{"))
    assert split not in single_token_names(model, True, opening)
    assert split in single_token_names(model, True, inside)
    words = SimpleNamespace(tokenizer=SimpleNamespace(encode=lambda text, add_special_tokens=False: [1]))
    assert single_token_names(words, False, opening) == list(ioi_data.NAMES)  # our word-level tokenizer: every name, as before
