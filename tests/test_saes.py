"""Sparse autoencoders on real models: the SAE and its metrics on known data (checked against scikit-learn and
the toy SAE), the dashboards' contexts, and the article's claims at smoke scale, each against its null (the SAE
at initialisation, PCA at the same L0, random directions, an SAE on an untrained model)."""

import json

import numpy as np
import pytest
import torch

from explorer.models import toy_sae
from explorer.techniques import sae


def sparse_data(n: int = 6000, d: int = 8, features: int = 16, p: float = 0.06, seed: int = 0):
    """Inputs that are sums of a few of `features` unit directions in d dimensions (superposed: features > d)."""
    g = torch.Generator().manual_seed(seed)
    directions = sae.unit_columns(torch.randn(d, features, generator=g))  # (d, features)
    present = torch.rand(n, features, generator=g) < p
    x = (present * torch.rand(n, features, generator=g)) @ directions.T  # (n, d)
    return x, directions


def test_explained_variance_and_loss_recovered_are_zero_for_the_null_and_one_for_the_real_thing():
    x = torch.randn(500, 6)
    assert sae.explained_variance(x, x) == pytest.approx(1.0)
    assert sae.explained_variance(x, x.mean(0).expand_as(x)) == pytest.approx(0.0, abs=1e-6)
    assert sae.loss_recovered(clean=1.5, replaced=1.5, zero=4.0) == pytest.approx(1.0)
    assert sae.loss_recovered(clean=1.5, replaced=4.0, zero=4.0) == pytest.approx(0.0)
    assert sae.loss_recovered(clean=1.5, replaced=2.75, zero=4.0) == pytest.approx(0.5)


def test_pca_reconstruction_matches_scikit_learn():
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(1)
    train, test = torch.randn(400, 10, generator=g) @ torch.randn(10, 10, generator=g), torch.randn(50, 10, generator=g)
    for k in (1, 3, 10):
        pca = PCA(n_components=k).fit(train.double().numpy())
        expected = pca.inverse_transform(pca.transform(test.double().numpy()))
        np.testing.assert_allclose(sae.pca_reconstruction(train.double(), test.double(), k).numpy(), expected, atol=1e-8)


def test_metrics_agree_with_the_toy_sae_on_the_same_parameters():
    x, _ = sparse_data()
    model = sae.init(x, 24, seed=0)
    model.scale = 1.0  # the toy SAE has no normalisation
    params = {"W_enc": model.W_enc, "b_enc": model.b_enc - 0.5, "W_dec": model.W_dec, "b_dec": model.b_dec}
    model.b_enc = params["b_enc"]
    ours, toys = sae.metrics(model, x), toy_sae.metrics(params, x)
    for key in ("l0", "variance_explained", "dead_fraction"):
        assert ours[key] == pytest.approx(toys[key], rel=1e-5, abs=1e-6)


def test_a_trained_sae_finds_superposed_directions_that_pca_cannot():
    x, directions = sparse_data()
    model = sae.train(x[:5000], 0, n_latents=32, l1=2.0, steps=600, batch=256, lr=1e-2)
    torch.testing.assert_close(model.W_dec.norm(dim=0), torch.ones(32))
    test = x[5000:]
    m = sae.metrics(model, test)
    best = (directions.T @ model.W_dec).max(-1).values  # each true direction's best cosine with a decoder column
    random = (directions.T @ sae.unit_columns(torch.randn(8, 32, generator=torch.Generator().manual_seed(2)))).max(-1).values
    assert (best > 0.9).float().mean() > 0.8  # most of the 16 directions, 2x more than dimensions, are found
    assert best.mean() > random.mean() + 0.2
    assert m["l0"] < 3 and m["dead_fraction"] < 0.25  # about one feature is present per input
    pca = sae.explained_variance(test, sae.pca_reconstruction(x[:5000], test, max(1, round(m["l0"]))))
    assert m["variance_explained"] > pca + 0.1 > sae.metrics(sae.init(x, 32, 0), test)["variance_explained"]
    assert model.losses[-1] < model.losses[0]


def test_distinct_top_tokens_counts_token_ids_among_positive_top_activations():
    acts = torch.tensor([[5.0, 1.0, 0.0], [4.0, 2.0, 0.0], [3.0, 3.0, 0.0], [0.0, 4.0, 1.0]])  # (tokens, latents)
    ids = torch.tensor([7, 7, 8, 9])
    assert sae.distinct_top_tokens(acts, ids, top=2).tolist() == [1, 2, 1]  # latent 2: only one positive token
    assert sae.distinct_top_tokens(acts, ids, top=4).tolist() == [2, 3, 1]


def test_contexts_stay_on_their_line_and_carry_text_as_data():
    from build_figures.saes import context

    pieces = list("ab\ncd<script>x\nyz")
    values = np.zeros(len(pieces))
    values[pieces.index("<")] = 2.0
    out = context("flagship", pieces, [""] * len(pieces), values, pieces.index("<"), "#1")
    text = "".join(t["t"] for t in out[1:])
    assert out[0] == {"t": "#1", "c": "#1"} and text == "cd<script>x\n"  # the line and its newline, no more
    assert [t for t in out if "w" in t] == [{"t": "<", "w": 2.0}]
    long = list("0123456789" * 5)
    cut = context("flagship", long, [""] * len(long), np.zeros(len(long)), 25, "#2")
    assert [t["t"] for t in cut] == ["#2", "…" + "".join(long[5:34]) + "…\n"]  # bytes it is off on form one span
    values = np.zeros(len(long))
    values[[24, 25]] = [1.0, 3.0]
    cut = context("flagship", long, [""] * len(long), values, 25, "#2")
    assert [t["t"] for t in cut] == ["#2", "…" + "".join(long[5:24]), "4", "5", "".join(long[26:34]) + "…\n"]
    assert [t.get("w") for t in cut] == [None, None, 1.0, 3.0, None]
    # word pieces carry the whitespace before them; a newline in a gap ends the line
    words, gaps = ["def", "f", "(", "x", ")", "return"], ["", " ", "", "", "", "\n    "]
    out = context("minilm", words, gaps, np.ones(6), 1, "#3")
    assert [t["t"] for t in out] == ["#3", "def", " f", "(", "x", ")", "\n"]
    out = context("minilm", ["x", "return", "y"], ["", "\n    ", " "], np.ones(3), 1, "#4")
    assert [t["t"] for t in out] == ["#4", "    ", "return", " y", "\n"]  # the indentation is no word piece's
    assert "w" not in out[1] and out[2]["w"] == 1.0


# --------------------------------------------------------------------------- the article's claims, at smoke scale


def test_the_saes_reconstruct_far_better_than_pca_at_the_same_sparsity(smoke_claims):
    c = smoke_claims("saes-metrics")
    for model in ("flagship", "minilm"):
        assert c[f"{model}_variance_explained_min"] > c[f"{model}_pca_variance_explained_max"] + 0.05
        assert c[f"{model}_pca_variance_explained_min"] > c[f"{model}_init_variance_explained_max"]
        assert c[f"{model}_l0_max"] < c[f"{model}_d_model"] / 4 < c[f"{model}_init_l0_min"]  # sparse; the init fires on half
        assert c[f"{model}_pca_k"] == pytest.approx(c[f"{model}_l0"], abs=0.5)
        assert c[f"{model}_dead_fraction_max"] < 0.05
        assert c[f"{model}_dense_fraction_max"] < 0.2 < c[f"{model}_init_dense_fraction_min"]
    assert c["minilm_l0"] > c["flagship_l0"]  # the same penalty leaves MiniLM's wider stream more latents
    assert 1.5 < c["flagship_init_gain_min"] and c["flagship_init_gain_max"] < 2.5  # the untrained SAE: about twice too long
    assert 0.5 < c["minilm_init_gain_min"] and c["minilm_init_gain_max"] < 1.5  # 768 / (2 x 384): about the right length


def test_the_flagship_loses_little_loss_through_its_sae_and_more_through_the_nulls(smoke_claims):
    c = smoke_claims("saes-metrics")
    assert c["flagship_ce_clean_max"] < c["flagship_ce_sae_min"] < c["flagship_ce_init_min"]
    assert c["flagship_ce_init_max"] < c["flagship_ce_zero_min"] and c["flagship_ce_pca_max"] < c["flagship_ce_zero_min"]
    assert c["flagship_sae_loss_recovered_min"] > c["flagship_init_loss_recovered_max"] + 0.1
    assert c["flagship_sae_loss_recovered_min"] > c["flagship_pca_loss_recovered_max"] + 0.1
    assert c["flagship_init_loss_recovered_min"] > 0.3  # an untrained SAE, a rough rescaling, already recovers a lot


def test_latents_are_more_token_specific_than_random_directions_and_untrained_models(smoke_claims):
    c = smoke_claims("saes-features")
    for model in ("flagship", "minilm"):
        assert c[f"{model}_distinct_median_max"] < c[f"{model}_random_distinct_median_min"]
        assert c[f"{model}_distinct_median"] < c[f"{model}_untrained_distinct_median"]
        assert c[f"{model}_single_token_share_min"] > 2 * c[f"{model}_random_single_token_share_max"]
        assert c[f"{model}_untrained_variance_explained"] > 0.5  # the null SAEs did train
        assert c[f"{model}_median_density"] < 0.1
    assert c["flagship_single_token_share_min"] > c["flagship_untrained_single_token_share"] + 0.03
    assert abs(c["minilm_single_token_share"] - c["minilm_untrained_single_token_share"]) < 0.05  # about the same


def test_minilm_latents_lie_nearer_its_embeddings_than_random_directions_the_flagship_s_push_no_harder(smoke_claims):
    minilm, flagship = smoke_claims("saes-dashboard-minilm"), smoke_claims("saes-dashboard-flagship")
    assert minilm["top_effect_median_min"] > minilm["random_top_effect_median_max"] + 0.05
    assert abs(flagship["top_effect_median"] - flagship["random_top_effect_median"]) < 0.15 * flagship["random_top_effect_median"]


@pytest.mark.parametrize("model", ["flagship", "minilm"])
def test_every_dashboard_file_shows_its_latent_top_activation_first(smoke, smoke_claims, model):
    fid = f"saes-dashboard-{model}"
    c = smoke_claims(fid)
    assert c["live"] > 0.9 * c["latents"] and c["shown"] == min(c["live"], 40)
    spec = smoke.spec(fid)
    options = spec["usermeta"]["explorer"]["controls"][0]["options"]
    files = sorted((smoke.path(fid) / "features").glob("*.json"))
    assert len(files) == len(options) == c["shown"]
    for path in files[:10]:
        payload = json.loads(path.read_text())
        tokens = payload["tokens"]
        assert tokens[0]["t"] == "#1" and max(t.get("w", 0) for t in tokens[:40]) == 1.0  # its top activation
        assert all(0 < t["w"] <= 1 for t in tokens if "w" in t)
        labels = [t["t"] for t in tokens if "c" in t]
        assert labels[0] == "#1" and set(labels) <= {*(f"#{i}" for i in range(1, 9)), "p90+", "p50-90", "p0-50"}
        assert [t["p"] for t in tokens] == list(range(len(tokens)))
        assert sum(b["n"] for b in payload["hist"]) > 0 and len(payload["logits"]) == 16
