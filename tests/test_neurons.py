"""The neuron browser: the dashboard helpers on known data, every neuron file against the activations it
came from, and the article's claims at smoke scale, each against its null (random directions of the
neuron space, random positions of the text, random unit vectors for the SAE alignment)."""

import json
import math

import numpy as np
import pytest
import torch

from explorer.techniques import dashboard


def test_byte_line_keeps_the_line_marks_the_cut_and_merges_bytes_the_unit_is_off_on():
    row = list(b"x = 1\n    return foo(bar)\nz")
    at = row.index(ord("f"))
    values = np.zeros(len(row))
    values[at], values[at + 1] = 2.0, 0.5
    out = dashboard.byte_line(row, values, at, "#1", before=7, after=3)
    assert out[0] == {"t": "#1", "c": "#1"}
    text = "".join(t["t"] for t in out[1:])
    assert text == "…return foo(…\n"  # six bytes back (cut), three on (cut), never across the newline
    assert [t.get("w") for t in out if "w" in t] == [2.0, 0.5]
    assert out[1]["t"] == "…return " and "w" not in out[1]  # the bytes it is off on, as one span


def test_byte_line_stops_at_the_line_ends():
    row = list(b"a\nbc\nd")
    values = np.array([0, 0, 1.0, 0, 0, 0])
    out = dashboard.byte_line(row, values, 2, "#1", before=20, after=20)
    assert "".join(t["t"] for t in out[1:]) == "bc\n"


def test_sample_tokens_takes_the_top_then_each_band_without_repeats():
    column = np.r_[np.zeros(50), np.arange(1, 101, dtype=float)]  # 100 positive activations
    picks = dashboard.sample_tokens(column, top=5, per_band=3, generator=np.random.default_rng(0))
    labels = [label for label, _ in picks]
    assert labels[:5] == ["#1", "#2", "#3", "#4", "#5"] and [t for _, t in picks[:5]] == [149, 148, 147, 146, 145]
    assert labels[5:] == ["p90+"] * 3 + ["p50-90"] * 3 + ["p0-50"] * 3
    chosen = [t for _, t in picks]
    assert len(set(chosen)) == len(chosen) and all(column[t] > 0 for t in chosen)
    lower = [t for label, t in picks if label == "p0-50"]
    assert all(column[t] <= 50 for t in lower)


def test_histogram_counts_every_activation_negative_ones_too():
    column = np.array([-0.17, -0.1, 0.0, 0.5, 2.0])
    hist = dashboard.histogram(column, bins=4)
    assert sum(b["n"] for b in hist) == 5 and hist[0]["x0"] == -0.17 and hist[-1]["x1"] == 2.0


def test_the_nulls_match_their_closed_forms():
    # 20 draws from 256 equally likely bytes: E[distinct] = 256 (1 - (255/256)^20)
    tokens = torch.arange(256).repeat(40)
    expected = 256 * (1 - (255 / 256) ** 20)
    assert dashboard.random_token_distinct(tokens, 20, 4000, seed=0) == pytest.approx(expected, abs=0.05)
    assert dashboard.random_token_distinct(torch.zeros(100, dtype=torch.long), 20, 50, seed=0) == 1.0
    cos = dashboard.random_unit_max_cosine(512, 4000, seed=0)
    assert float(cos.median()) == pytest.approx(math.sqrt(2 * math.log(512) / 512), rel=0.25)
    assert float(dashboard.random_unit_max_cosine(1, 10, seed=0).min()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- smoke scale


def test_neurons_are_more_token_specific_than_random_directions_and_sae_latents_more_still(smoke_claims):
    c = smoke_claims("neurons-basis")
    for layer in (0, 1):
        neurons, random, latents = (c[f"l{layer}_neuron_distinct_median"], c[f"l{layer}_random_distinct_median_min"],
                                    c[f"l{layer}_sae_distinct_median_max"])
        assert neurons < random < c["token_null_distinct"], layer  # the basis is privileged; random positions score most
        assert latents < neurons, layer
        assert c[f"l{layer}_neuron_specific_share"] > 1.5 * c[f"l{layer}_random_specific_share_max"], layer
        assert c[f"l{layer}_sae_specific_share_min"] > c[f"l{layer}_neuron_specific_share"], layer
        assert c[f"l{layer}_live_neurons"] == c["neurons_per_layer"] == 512


def test_sae_latents_lean_on_single_neurons_more_than_chance_but_are_mostly_mixtures(smoke_claims):
    c = smoke_claims("neurons-basis")
    for layer in (0, 1):
        assert c[f"l{layer}_sae_max_cos_median_min"] > c[f"l{layer}_random_max_cos_median"] + 0.05, layer
        assert c[f"l{layer}_sae_max_cos_median_max"] < 0.7, layer
        assert 0.5 < c[f"l{layer}_sae_variance_explained_min"] < 1, layer


def test_every_neuron_file_starts_at_its_top_activation_and_names_real_latents(smoke, smoke_claims):
    c = smoke_claims("neurons-browser")
    spec = smoke.spec("neurons-browser")
    control = spec["usermeta"]["explorer"]["controls"][0]
    files = sorted((smoke.path("neurons-browser") / "neurons").glob("*.json"), key=lambda p: int(p.stem))
    assert [int(p.stem) for p in files] == control["options"] and len(files) == c["shown"]
    assert control["default"] in control["options"]
    for path in files[:: max(1, len(files) // 8)]:
        payload = json.loads(path.read_text())
        tokens = payload["tokens"]
        assert tokens[0]["t"] == "#1" and max(t.get("w", 0) for t in tokens[:40]) == 1.0
        assert all(0 < t["w"] <= 1 for t in tokens if "w" in t)
        assert [t["p"] for t in tokens] == list(range(len(tokens)))
        assert len(payload["logits"]) == 16 and len(payload["latents"]) == c["aligned_top"]
        weights = [row["v"] for row in payload["latents"]]
        assert weights == sorted(weights, reverse=True) and all(0 <= w <= 1 for w in weights)
        assert sum(b["n"] for b in payload["hist"]) > 0


def test_a_neuron_file_shows_the_bytes_where_that_neuron_is_largest(smoke):
    """Recompute one neuron's activations from the model and check the file's #1 context is its argmax."""
    from explorer.techniques import neurons

    files = sorted((smoke.path("neurons-browser") / "neurons").glob("*.json"), key=lambda p: int(p.stem))
    g = int(files[-1].stem)
    layer, n = divmod(g, neurons.D_MLP)
    column = neurons.eval_acts("smoke", layer)[:, n]
    data = neurons.rows("smoke")[neurons.eval_mask("smoke")].reshape(-1)
    top = int(column.argmax())
    tokens = json.loads(files[-1].read_text())["tokens"]
    end = next((i for i, t in enumerate(tokens[1:], 1) if "c" in t), len(tokens))  # the #1 context
    assert dashboard.byte_text(int(data[top])) in [t["t"] for t in tokens[:end] if t.get("w") == 1.0]
