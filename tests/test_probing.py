"""Probing with control tasks: exact labels from Python's tokenizer, the control task and the probes on
known data, and the article's claims at smoke scale (by direction, against chance, the control task
and untrained models)."""

import numpy as np
import pytest

from explorer.data import code_labels as cl
from explorer.techniques import linear_probes as lp

SOURCE = '''import os

def f(x, y=[1, (2)]):
    """doc
    string"""
    s = f"a{x}b"  # note
    return x + f(y)
'''


def by_text(tokens):
    return {t.text: t for t in tokens}


def test_tokens_carry_exact_kinds_depths_and_keywords():
    tokens = cl.tokens_of(SOURCE)
    kinds = [t.kind for t in tokens]
    assert kinds.count("COMMENT") == 1 and kinds.count("STRING") == 2  # the docstring and the f-string, one token each
    fstring = next(t for t in tokens if t.text.startswith('f"'))
    assert fstring.text == 'f"a{x}b"' and SOURCE[fstring.start:fstring.end] == fstring.text
    depths = [(t.text, t.depth) for t in tokens if t.start >= SOURCE.index("def")][:16]
    assert depths == [("def", 0), ("f", 0), ("(", 0), ("x", 1), (",", 1), ("y", 1), ("=", 1), ("[", 1), ("1", 2),
                      (",", 2), ("(", 2), ("2", 3), (")", 2), ("]", 1), (")", 0), (":", 0)]
    words = by_text(tokens)
    assert words["def"].is_keyword and words["return"].is_keyword and not words["os"].is_keyword
    for tok in tokens:
        assert SOURCE[tok.start:tok.end] == tok.text
    owner = cl.token_at(tokens, len(SOURCE))
    assert owner[SOURCE.index("os")] == owner[SOURCE.index("os") + 1] != -1 and owner[SOURCE.index("os") - 1] == -1


def test_unreadable_files_are_skipped():
    assert cl.tokens_of("def f(:\n") is None
    assert cl.tokens_of("x = (1,\n") is None


def test_windows_start_outside_brackets_and_strings_and_label_seen_names_within_themselves():
    tokens = cl.tokens_of(SOURCE)
    starts = cl.window_starts(SOURCE, tokens)
    inside_docstring = SOURCE.index("    string")
    assert inside_docstring not in starts and SOURCE.index("def") in starts and SOURCE.index("    s =") in starts
    windows = list(cl.windows(SOURCE, 0, 40, tokens))
    assert all(w.start in starts and len(w.text) <= 40 for w in windows)
    last = windows[-1]
    assert last.text.startswith("    s =") and "return x" in last.text
    seen = dict(zip([t.text for t in last.tokens], last.labels("seen")))
    assert seen["x"] == 0 and seen["return"] is None  # x is new in this window, whatever came before it
    whole = next(cl.windows(SOURCE, 0, len(SOURCE), tokens))
    labels = [(t.text, s) for t, s in zip(whole.tokens, whole.labels("seen")) if s is not None]
    assert labels[:4] == [("os", 0), ("f", 0), ("x", 0), ("y", 0)] and ("x", 1) in labels and ("f", 1) in labels
    assert whole.labels("depth").count(2) == 5  # 1 , ( 2 ) : depth 2 and more, clipped at 2
    with pytest.raises(Exception, match="label task"):
        whole.labels("nope")


def test_last_piece_follows_the_offset_mapping():
    offsets = [(0, 3), (4, 5), (5, 6), (10, 14)]
    assert cl.last_piece(offsets, 2) == 0 and cl.last_piece(offsets, 5) == 2 and cl.last_piece(offsets, 13) == 3
    assert cl.last_piece(offsets, 7) is None


def test_the_control_task_gives_each_word_type_one_label_from_the_task_distribution():
    rng = np.random.default_rng(0)
    types = [f"w{i}" for i in rng.integers(0, 400, 20_000)]
    labels = rng.choice(3, size=20_000, p=[0.6, 0.3, 0.1])
    train = rng.random(20_000) < 0.7
    control = lp.control_labels(types, labels, train, 3, seed=1)
    label_of = {}
    for t, c in zip(types, control):
        assert label_of.setdefault(t, c) == c  # one label per type, train and test alike
    shares = np.bincount(list(label_of.values()), minlength=3) / len(label_of)
    np.testing.assert_allclose(shares, [0.6, 0.3, 0.1], atol=0.07)
    perm = rng.permutation(len(types))  # the draw depends on the types, not on the order the tokens come in
    shuffled = lp.control_labels([types[i] for i in perm], labels[perm], train[perm], 3, seed=1)
    np.testing.assert_array_equal(shuffled, control[perm])
    assert (control != lp.control_labels(types, labels, train, 3, seed=2)).mean() > 0.3


def test_the_split_is_by_file():
    files = np.repeat(np.arange(12), 50)
    train = lp.split_by_file(files, seed=0)
    assert not set(files[train]) & set(files[~train]) and len(set(files[~train])) == 3
    assert (lp.split_by_file(files, seed=1) != train).any()
    with pytest.raises(ValueError):
        lp.split_by_file(np.zeros(5, dtype=int), seed=0)
    assert lp.majority_accuracy(np.array([0, 1, 1]), np.array([1, 1, 0, 0])) == 0.5


def test_probes_read_what_is_there_and_memorise_only_what_they_saw():
    rng = np.random.default_rng(0)
    n, d = 3000, 20
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.1 * rng.normal(size=n) > 0).astype(int)
    train = np.arange(n) < 2000
    for kind in lp.PROBES:
        assert lp.fit(kind, X, y, train, seed=0).test_accuracy > 0.9
    X[:, 0] *= 10  # the label's direction is now the top principal direction: a rank-1 probe reads it
    assert lp.fit("linear", X, y, train, seed=0, rank=1).test_accuracy > 0.9
    assert lp.fit("linear", X[:, 1:], y, train, seed=0).test_accuracy < 0.6
    # word types as one-hot rows, test types never seen in training: the control is memorised, not generalised
    types = np.arange(n) % 300
    onehot = np.eye(300)[types]
    control = lp.control_labels([str(t) for t in types], y, train, 2, seed=0)
    seen_types = types < 200
    result = lp.fit("linear", onehot, control, seen_types, seed=0)
    assert result.train_accuracy > 0.95 and result.test_accuracy < 0.75
    assert lp.selectivity(0.9, 0.7) == pytest.approx(0.2)


# --------------------------------------------------------------------------- the article's claims, at smoke scale


def test_keywords_need_the_whole_word_a_byte_does_not_say_it(smoke_claims):
    c = smoke_claims("probing-layers")
    chance = c["chance_keyword"]
    assert c["flagship_linear_keyword_L0_acc"] < chance + 0.06  # one byte: near chance
    assert c["flagship_linear_keyword_L2_acc_min"] > chance + 0.15  # after attention: the word
    assert c["minilm_linear_keyword_L0_acc_min"] > chance + 0.15  # a word piece is the word
    assert c["flagship_untrained_linear_keyword_L2_acc"] < c["flagship_linear_keyword_L2_acc"] - 0.15
    assert c["flagship_linear_keyword_L2_sel_min"] > 0.05


def test_seen_names_are_read_after_attention_not_from_the_word(smoke_claims):
    c = smoke_claims("probing-layers")
    chance = c["chance_seen"]
    assert c["flagship_linear_seen_L0_acc"] < chance + 0.05
    assert c["flagship_linear_seen_L2_acc"] > max(chance + 0.03, c["flagship_linear_seen_L0_acc"] + 0.08)
    assert c["flagship_linear_seen_L2_sel_min"] > 0.03 > c["flagship_linear_seen_L0_sel"]
    assert c["flagship_untrained_linear_seen_L2_acc"] < c["flagship_linear_seen_L2_acc"] - 0.08
    assert c["minilm_untrained_linear_seen_L4_acc"] < c["minilm_linear_seen_L4_acc"] - 0.08
    middle = max(c[f"minilm_linear_seen_L{layer}_acc"] for layer in (2, 3, 4, 5))
    assert middle > c["minilm_linear_seen_L0_acc"] + 0.1 and middle > c["minilm_linear_seen_L6_acc"]
    assert 2 <= c["minilm_linear_seen_best_layer"] <= 5


def test_depth_is_memorised_at_the_embeddings_and_read_in_the_middle(smoke_claims):
    c = smoke_claims("probing-layers")
    assert c["minilm_linear_depth_L0_sel"] < 0  # the control task beats the task: word identity, not depth
    others = min(c[f"minilm_linear_{task}_L3_sel"] for task in ("token_type", "keyword", "seen"))
    assert c["minilm_linear_depth_L3_sel"] < others - 0.03  # in the middle: the least selective label
    assert c["flagship_linear_depth_L2_sel"] > c["flagship_linear_depth_L0_sel"] + 0.05
    assert c["flagship_linear_depth_L2_acc_min"] > c["chance_depth"] + 0.05
    assert max(c[f"minilm_linear_depth_L{layer}_acc"] for layer in (2, 3, 4)) > c["minilm_linear_depth_L0_acc"] + 0.05
    for layer in (0, 3):  # an untrained MiniLM reads depth no better than it memorises word types
        assert c[f"minilm_untrained_linear_depth_L{layer}_sel"] < 0
    assert c["minilm_untrained_linear_depth_L3_acc"] < c["minilm_linear_depth_L3_acc"] - 0.08


def test_token_types_are_read_even_from_untrained_models(smoke_claims):
    c = smoke_claims("probing-layers")
    chance = c["chance_token_type"]
    for model in ("flagship", "minilm"):
        assert c[f"{model}_untrained_linear_token_type_L0_acc_min"] > chance + 0.3  # the null reads it too
        assert c[f"{model}_linear_token_type_L0_acc"] > c[f"{model}_untrained_linear_token_type_L0_acc"]
        assert c[f"{model}_linear_token_type_L0_control"] > c["control_chance_token_type"] + 0.05  # memorised types


def test_mlp_probes_memorise_more_than_linear_ones(smoke_claims):
    c = smoke_claims("probing-layers")
    assert c["points"] == 4 * (3 + 7)
    assert c["mlp_control_higher"] > 0.7 * c["points"]
    assert c["mlp_less_selective"] > 0.6 * c["points"]
    assert c["mlp_control_gain_mean"] > c["mlp_acc_gain_mean"] > -0.01


def test_low_rank_probes_memorise_less(smoke_claims):
    c = smoke_claims("probing-rank")
    assert c["minilm_width"] == 384 and c["flagship_width"] == 128
    for model in ("flagship", "minilm"):
        assert c[f"{model}_token_type_k1_control"] < c[f"{model}_token_type_kfull_control"] - 0.05
        assert c[f"{model}_seen_k1_sel"] < c[f"{model}_seen_kfull_sel"] - 0.08  # seen needs many directions
        assert c[f"{model}_seen_k1_acc"] < c[f"{model}_seen_kfull_acc"]
    assert c["minilm_token_type_k2_sel"] > c["minilm_token_type_kfull_sel"]


def test_example_tokens_figure(smoke, smoke_claims):
    c = smoke_claims("probing-tokens")
    assert c["example_windows"] == 3
    assert c["accuracy_keyword"] > 0.85
    payload = __import__("json").loads((smoke.path("probing-tokens") / "examples" / "w0.json").read_text())
    assert "".join(t["t"] for t in payload["tokens"]) and {r["task"] for r in payload["rows"]} == set(cl.TASKS)
