"""Steering vectors: the hooks, directions, probes, metrics and tokenize readings on known data, the
sentence embedding against sentence-transformers itself, and the article's claims at smoke scale (by
direction and ordering against their nulls: random directions of the same norm, coefficient 0, the
untrained flagship)."""

import numpy as np
import pytest
import torch

import tiny_models
from explorer.techniques import steering as st

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_hook_adds_the_vector_at_every_position_and_zero_changes_nothing():
    model = tiny_models.tiny()
    tokens = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(0))
    name = "blocks.1.hook_resid_pre"
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    v = torch.randn(32, generator=torch.Generator().manual_seed(1))
    seen = {}

    def record(activation, hook=None):
        seen["x"] = activation.detach().clone()
        return activation

    steered = st.logits_with(model, tokens, [st.add_hook(name, 2.0 * v), (name, record)])
    torch.testing.assert_close(seen["x"], cache[name] + 2.0 * v)
    plain = st.logits_with(model, tokens)
    assert st.kl_from(plain, steered) > 1e-3
    zero = st.logits_with(model, tokens, [st.add_hook(name, 0.0 * v)])
    torch.testing.assert_close(zero, plain)
    assert st.kl_from(plain, zero) == pytest.approx(0.0, abs=1e-9)
    # added before any block, the push reaches the logits through attention too
    assert not torch.equal(st.logits_with(model, tokens, [st.add_hook("blocks.0.hook_resid_pre", v)]), plain)


def test_generation_is_greedy_or_seeded():
    model = tiny_models.tiny()
    prompts = torch.randint(0, 50, (4, 6), generator=torch.Generator().manual_seed(0))
    greedy = st.generate(model, prompts, 5)
    first = st.logits_with(model, prompts)[:, -1].argmax(-1)
    torch.testing.assert_close(greedy[:, 0], first)
    a, b = st.generate(model, prompts, 8, seed=3), st.generate(model, prompts, 8, seed=3)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, st.generate(model, prompts, 8, seed=4)) and a.shape == (4, 8)


def test_kl_and_next_token_probability_match_torch():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    expected = torch.nn.functional.kl_div(b.log_softmax(-1), a.log_softmax(-1), log_target=True, reduction="none").sum(-1).mean()
    assert st.kl_from(a, b) == pytest.approx(float(expected), rel=1e-5)
    assert st.kl_from(a, a) == pytest.approx(0.0, abs=1e-12) and st.kl_from(a, b) > 0
    torch.testing.assert_close(st.next_byte_probability(a, 3), a[:, -1].softmax(-1)[:, 3])


def test_directions_random_nulls_and_cosine():
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    d = st.contrastive_direction(x, torch.tensor([True, True, False, False]), torch.tensor([False, False, True, True]))
    torch.testing.assert_close(d, torch.tensor([2.0, -3.0]))
    with pytest.raises(ValueError):
        st.contrastive_direction(x, torch.zeros(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool))
    r = st.random_directions(128, 6, 2.5, seed=0)
    torch.testing.assert_close(r.norm(dim=1), torch.full((6,), 2.5))
    torch.testing.assert_close(r, st.random_directions(128, 6, 2.5, seed=0))
    assert not torch.equal(r, st.random_directions(128, 6, 2.5, seed=1))
    assert max(abs(st.cosine(r[0], r[k])) for k in range(1, 6)) < 0.35  # nearly orthogonal in 128 dimensions
    assert st.cosine([1, 0], [3, 0]) == pytest.approx(1.0) and st.cosine([1, 0], [0, 2]) == pytest.approx(0.0)


def test_the_probe_direction_is_in_the_activations_own_basis():
    rng = np.random.default_rng(0)
    n = 4000
    X = rng.normal(size=(n, 6)) * np.array([10.0, 1, 1, 1, 1, 0.1])  # very different scales per coordinate
    y = (X[:, 0] / 10 + X[:, 5] / 0.1 > 0).astype(int)  # the label reads both, equally in standard units
    train = np.arange(n) < 3000
    w, acc = st.probe_direction(X, y, train, seed=0)
    assert acc > 0.95
    # in the raw basis the small coordinate needs the big weight: w ∝ (1/10, 0, 0, 0, 0, 1/0.1)
    assert w[5] / w[0] == pytest.approx(100.0, rel=0.3) and np.abs(w[1:5]).max() < 0.05 * abs(w[5])
    # w · x is the probe's own logit up to a constant
    from explorer.techniques import linear_probes as lp

    probe = lp.make_probe("linear", 0).fit(X[train], y[train])
    np.testing.assert_allclose(X @ w - probe.decision_function(X), (X @ w - probe.decision_function(X))[0], atol=1e-6)


def test_tokenize_reads_comments_in_generated_text():
    inside = st.token_chars("x = 1  # note\ns = '# no'\n")
    text = "x = 1  # note\ns = '# no'\n"
    assert "".join(c for c, f in zip(text, inside) if f) == "# note"
    assert st.comment_share("x = 1\n", "# all of it") == 1.0
    assert st.comment_share("f(a,\n", "  b)  # after") == pytest.approx(len("# after") / len("  b)  # after"))
    assert st.comment_share("x = (\n", "1, 2  # open bracket at the end") > 0.5  # unfinished code: tokens before the error
    assert st.comment_share("x = 1\n", "y = 2\n") == 0.0 and st.comment_share("x", "") == 0.0


def test_retrieval_ranks_and_steered_embeddings():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    docs = torch.tensor([[1.0, 0.1], [0.2, 1.0], [0.0, 1.0]])
    assert st.retrieval_ranks(q, docs).tolist() == [1, 2, 3]  # query 1 prefers document 2; query 2 prefers both others
    assert st.top_documents(q, docs).tolist() == [0, 2, 1]
    e = st.steer_embeddings(torch.nn.functional.normalize(q, dim=-1), torch.tensor([0.0, 1.0]), 10.0)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    assert (e[:, 1] > 0.99).all()


def test_mean_pooling_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from build_figures.steering import minilm_embed
    from explorer.models.minilm import model_dir

    texts = ("Return the sum of two numbers.", "def add(a, b):\n    return a + b\n")
    reference = SentenceTransformer(str(model_dir()), device="cpu").encode(list(texts), convert_to_tensor=True)
    torch.testing.assert_close(minilm_embed(texts), reference.float(), atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- the article's claims, at smoke scale


def test_the_direction_raises_hash_at_line_starts_and_random_ones_do_not(smoke_claims):
    c = smoke_claims("steering-dose")
    for h in range(3):
        base = c[f"steer_L{h}_c0_p"]
        assert c[f"steer_L{h}_c4_p"] > base + 0.1
        assert c[f"steer_L{h}_c4_p_min"] > c[f"random_L{h}_c4_p_max"]
        assert c[f"random_L{h}_c4_p"] < base  # a random push of the same size lowers it
        assert c[f"steer_L{h}_gain_min"] > max(0, c[f"random_L{h}_gain_max"])  # every run gains, more than any random push
        assert c[f"probe_L{h}_c4_p"] > base + 0.1  # the probe's direction steers too
    ps = [c[f"steer_L1_c{k}_p"] for k in ("0", "0p5", "1", "2", "4", "8")]
    assert all(a < b for a, b in zip(ps, ps[1:]))  # a dose-response: more coefficient, more #
    assert c["steer_L2_c4_kl"] < c["random_L2_c4_kl"]  # at the last stream, cheaper than a random push
    assert c["steer_L0_c4_kl"] > c["random_L0_c4_kl"]  # on the embeddings, dearer
    assert c["probe_L1_c4_kl"] > c["steer_L1_c4_kl"]  # the probe's direction moves more, and costs more
    for h in range(3):  # the untrained model: nothing to steer
        assert c[f"untrained_L{h}_c8_p"] - c[f"untrained_L{h}_c0_p"] < 0.05 * (c[f"steer_L{h}_c8_p"] - c[f"steer_L{h}_c0_p"])
    assert c["baseline_p_untrained"] < 2 * c["uniform"] < c["steer_L0_c0_p"]


def test_the_direction_is_close_to_the_probe_and_late_streams_are_cheaper(smoke_claims):
    c = smoke_claims("steering-layers")
    for h in range(3):
        assert c[f"cos_L{h}_min"] > c[f"cos_random_L{h}_max"] + 0.1
        assert c[f"probe_acc_L{h}"] > c[f"probe_chance_L{h}"]
    assert c["most_efficient_layer"] == 2
    assert c["efficiency_L2"] > c["efficiency_L0"]


def test_steered_samples_are_comments(smoke_claims):
    c = smoke_claims("steering-samples")
    assert c["steer_c4_share_min"] > c["steer_c0_share"] + 0.3
    assert c["steer_c8_share"] > c["random_c8_share"] + 0.5
    assert c["random_c4_share"] <= c["steer_c0_share"] + 0.05


def test_steering_minilm_moves_rankings_more_than_a_random_push(smoke_claims):
    c = smoke_claims("steering-minilm")
    assert c["steer_queries_a0_mrr"] > 5 * c["chance_mrr"]
    assert c["steer_spread_min"] > c["random_spread_max"]  # documents spread wider along the direction
    assert c["steer_queries_a4_moved"] > c["random_queries_a4_moved"]
    assert c["steer_queries_a4_mrr"] < c["random_queries_a4_mrr"]
    assert c["steer_queries_am4_mrr"] < c["steer_queries_a0_mrr"] and c["steer_queries_am4_moved"] > c["random_queries_am4_moved"]
    assert c["steer_queries_a0_moved"] == 0.0 and c["steer_queries_a4_moved"] > 0.1
    # one vector added to every document adds the same q · v to each of a query's scores: little moves
    assert c["steer_documents_a4_moved"] < 0.5 * c["steer_queries_a4_moved"]


def test_an_sae_feature_points_along_the_direction_and_fires_in_comments(smoke_claims):
    c = smoke_claims("steering-sae")
    assert c["top_cos_min"] > max(c["init_top_cos_max"], c["random_top_cos_max"]) + 0.1
    assert c["feature_comment_share_min"] > c["comment_base_rate"] + 0.05
    assert c["feature_p"] > c["unsteered_p"] and c["direction_p"] > c["feature_p"]
