"""Head detectors: checked against TransformerLens's scores and on hand-made attention patterns."""

import pytest
import torch
from transformer_lens.head_detector import compute_head_attention_similarity_score
from transformer_lens.model_bridge import TransformerBridge
import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)

from explorer import paths
from explorer.errors import UnknownName
from explorer.techniques import heads, probes


@pytest.fixture(scope="module")
def tiny_model():
    cfg = dict(n_layers=2, d_model=32, n_ctx=64, d_head=8, n_heads=4, d_vocab=50, attn_only=True, normalization_type="LN", seed=0)
    return TransformerBridge.boot_native(cfg).eval()


def test_scores_match_transformer_lens_up_to_the_rows_with_a_target(tiny_model):
    tokens = probes.repeated_random_tokens(1, 10, range(50), torch.Generator().manual_seed(1), prefix=[0])
    _, cache = tiny_model.run_with_cache(tokens)
    patterns = cache["blocks.1.attn.hook_pattern"][0]  # (head, q, k)
    for kind in ("previous_token", "duplicate_token", "induction"):
        detection = heads.detection_pattern(kind, tokens[0])
        ours = heads.attention_scores(patterns, detection)
        share = (detection.sum(-1) > 0).float().mean()  # TransformerLens averages over every row
        for h in range(patterns.shape[0]):
            theirs = compute_head_attention_similarity_score(
                patterns[h], detection, exclude_bos=False, exclude_current_token=False, error_measure="mul"
            )
            assert ours[h].item() * share.item() == pytest.approx(theirs, abs=1e-5), (kind, h)


def test_perfect_heads_score_one_and_others_less():
    tokens = torch.tensor([0, 5, 6, 7, 5, 6, 7])
    n = len(tokens)
    previous = torch.zeros(n, n)
    previous[0, 0] = 1
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1
    induction = torch.eye(n)
    induction[4:, :] = 0
    induction[torch.arange(4, n), torch.arange(2, n - 2)] = 1  # each 2nd-copy token looks at the token after its 1st copy
    first = torch.zeros(n, n)
    first[:, 0] = 1
    patterns = torch.stack([previous, induction, first])
    scores = {kind: heads.attention_scores(patterns, heads.detection_pattern(kind, tokens)) for kind in heads.HEAD_KINDS}
    assert scores["previous_token"].tolist() == pytest.approx([1.0, 0.0, 1 / 6])
    assert scores["induction"].tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert scores["first_token"].tolist() == pytest.approx([1 / 6, 0.0, 1.0])
    assert scores["duplicate_token"].max() < 1.0


def test_head_scores_table_has_one_row_per_head(tiny_model):
    tokens = probes.repeated_random_tokens(2, 8, range(1, 50), torch.Generator().manual_seed(0), prefix=[0])
    table = heads.head_scores(tiny_model, tokens)
    assert list(table.columns) == ["layer", "head", *heads.HEAD_KINDS]
    assert len(table) == 8
    assert table[list(heads.HEAD_KINDS)].to_numpy().min() >= 0.0
    assert table[list(heads.HEAD_KINDS)].to_numpy().max() <= 1.0


@pytest.mark.parametrize("rows_per_pass", [None, 2])
def test_head_scores_scored_layer_by_layer_equal_scores_of_the_cached_patterns(tiny_model, monkeypatch, rows_per_pass):
    """head_scores scores each layer's pattern as the forward pass makes it, in chunks of rows (GPT-2
    cannot hold every layer's patterns, nor the logits, for a probe batch); the table is the one
    the cached patterns give."""
    tokens = probes.repeated_random_tokens(3, 8, range(1, 50), torch.Generator().manual_seed(3), prefix=[0])
    if rows_per_pass:
        monkeypatch.setattr(heads, "LOGIT_BYTES", rows_per_pass * tokens.shape[1] * 50 * 4)
        assert len(heads.row_chunks(tiny_model, tokens)) == 2
    table = heads.head_scores(tiny_model, tokens)
    _, cache = tiny_model.run_with_cache(tokens)
    for kind in heads.HEAD_KINDS:
        for layer in range(2):
            patterns = cache[f"blocks.{layer}.attn.hook_pattern"]  # (batch, head, q, k)
            per_row = torch.stack([heads.attention_scores(patterns[b], heads.detection_pattern(kind, tokens[b])) for b in range(3)])
            expected = per_row.nanmean(0)
            got = torch.tensor(table[table.layer == layer].sort_values("head")[kind].to_numpy())
            torch.testing.assert_close(got, expected, equal_nan=True)


def test_no_target_gives_nan():
    patterns = torch.ones(2, 3, 3).tril() / torch.arange(1, 4).view(3, 1)
    assert heads.attention_scores(patterns, torch.zeros(3, 3)).isnan().all()


def test_unknown_kind_is_named():
    with pytest.raises(UnknownName, match="unknown head kind 'copy'.*induction"):
        heads.detection_pattern("copy", torch.tensor([1, 2, 3]))


def test_head_wiki_finds_the_induction_head_in_the_second_layer(smoke_claims):
    claims = smoke_claims("heads-wiki")
    assert claims["induction_2l_induction_head"].startswith("L1")
    assert claims["induction_2l_induction_heads_over_half"] >= 2 and claims["induction_2l_induction_heads_over_half_in_layer_0"] == 0
    one_layer_best = max(claims["attn_only_1l_induction_max"], claims["gelu_1l_induction_max"])
    assert claims["induction_2l_induction_max"] > one_layer_best + 0.1
    # ... and well above the best head of its untrained counterparts (the null the page quotes)
    assert claims["induction_2l_induction_max"] > 3 * claims["induction_2l_induction_null_max"]
    assert claims["induction_2l_induction_heads_over_null"] >= 1


def test_transformer_lens_scores_the_induction_head_lower_than_we_do(smoke_claims):
    """detect_head also divides by the first copy's rows, which have nothing to find."""
    claims = smoke_claims("heads-wiki")
    ours, theirs = claims["induction_2l_induction_max"], claims["induction_2l_induction_head_tl"]
    assert 0.3 * ours < theirs < 0.7 * ours


def test_viewer_has_a_file_per_model_and_prompt(smoke, smoke_claims):
    # the flagship, five zoo code models and MiniLM, three prompts each; induction-2l, one
    assert smoke_claims("heads-viewer")["runs"] == 7 * 3 + 1
    spec = smoke.spec("heads-viewer")
    control = spec["usermeta"]["explorer"]["controls"][0]
    for run in control["options"]:
        assert (smoke.path("heads-viewer") / "attn" / f"{run}.json").exists()


def test_minilm_in_the_wiki_beats_its_untrained_architecture(smoke_claims):
    """MiniLM sits in the wiki beside the models trained here, against three random initialisations
    of its own architecture: its previous-token head is near perfect, the untrained best near uniform."""
    claims = smoke_claims("heads-wiki")
    assert claims["all_MiniLM_L6_v2_previous_token_head"].startswith("L0")
    assert claims["all_MiniLM_L6_v2_previous_token_max"] > 0.9 > 20 * claims["all_MiniLM_L6_v2_previous_token_null_max"]
    assert claims["all_MiniLM_L6_v2_duplicate_token_max"] > 10 * claims["all_MiniLM_L6_v2_duplicate_token_null_max"]
    assert claims["all_MiniLM_L6_v2_first_token_max"] > 0.5 > 10 * claims["all_MiniLM_L6_v2_first_token_null_max"]
    # it is no induction model: its best induction score stays near the null
    assert claims["all_MiniLM_L6_v2_induction_max"] < 5 * claims["all_MiniLM_L6_v2_induction_null_max"]


def test_viewer_lays_minilm_out_as_12_columns_of_whole_rows(smoke):
    """An encoder's rows are whole (it sees later tokens), and its 12 heads per layer get 12 smaller
    thumbnail columns, set by the run's patch, while the flagship's 4 keep the spec's own layout."""
    import json

    payload = json.loads((smoke.path("heads-viewer") / "attn" / "all-MiniLM-L6-v2--code.json").read_text())
    n = len(payload["tokens"])
    assert payload["tokens"][0]["t"] == "[CLS]" and payload["tokens"][-1]["t"] == "[SEP]"
    assert all(len(r["w"]) == n for r in payload["attn"])
    assert {(r["l"], r["h"]) for r in payload["attn"]} == {(l, h) for l in range(6) for h in range(12)}
    spec = smoke.spec("heads-viewer")
    control = spec["usermeta"]["explorer"]["controls"][0]
    patch = control["patches"]["all-MiniLM-L6-v2--code"]
    assert patch["/hconcat/0/columns"] == 12 and 12 * patch["/hconcat/0/spec/width"] <= spec["hconcat"][0]["columns"] * spec["hconcat"][0]["spec"]["width"]
    assert "flagship-bytes-2l--code" not in control["patches"] and spec["hconcat"][0]["columns"] == 4


def test_unprintable_token_text_is_escaped():
    from explorer.techniques.prompts import printable

    assert printable("a\x13b") == "a\\x13b"
    assert printable("x·⏎") == "x·⏎"


def test_code_models_score_at_chance_for_induction(smoke_claims):
    """The page states that the code models' best induction score is at the untrained null."""
    claims = smoke_claims("heads-wiki")
    assert claims["text_models_best_induction"] < claims["induction_2l_induction_max"] / 3
    assert claims["text_models_best_induction"] < 1.5 * claims["text_models_null_best_induction"]
    for kind in ("induction", "previous_token"):  # an untrained null is no detector's perfect score
        assert 0.0 < claims[f"text_models_null_best_{kind}"] < 0.5


def test_viewer_stores_zero_weights_and_draws_them(smoke):
    """Zero weights are drawn (tinted), masked keys are not: the page tells them apart."""
    import json

    payload = json.loads((smoke.path("heads-viewer") / "attn" / "induction-2l--repeat.json").read_text())
    rows = payload["attn"]
    assert all(len(r["w"]) == r["q"] + 1 for r in rows)  # keys up to the query, none after
    assert any(0 in r["w"] for r in rows)
    assert "pct > 0" not in json.dumps(smoke.spec("heads-viewer"))


def test_a_prompt_the_model_cannot_read_is_named():
    from explorer.techniques.prompts import prompt_tokens

    with pytest.raises(UnknownName, match="unknown prompt 'code'; known: repeat"):
        prompt_tokens(None, "induction-2l", "code")


def test_minilm_has_real_heads_of_every_encoder_kind_but_sep(smoke_claims):
    """The pretrained model's structure, against uniform attention (the same at smoke scale: fewer sentences)."""
    claims = smoke_claims("heads-minilm")
    assert claims["heads"] == 72 and claims["sentences"] >= 3
    assert claims["previous_best"] > 0.9 > 10 * claims["previous_chance"]
    assert claims["next_best"] > 5 * claims["next_chance"]
    assert claims["duplicate_best"] > 5 * claims["duplicate_chance"]
    assert claims["cls_heads_over_half"] >= 10 and claims["sep_best"] < 3 * claims["sep_chance"]
    assert claims["previous_best_head"].startswith("L0")


def test_minilm_targets_mark_where_each_kind_looks():
    import sys

    sys.path.insert(0, str(paths.BUILD_FIGURES))
    from attention_heads import minilm_targets

    masks = minilm_targets([101, 7, 8, 7, 102])  # [CLS] a b a [SEP]
    assert masks["previous"][2, 1] == 1 and masks["previous"][0].sum() == 0
    assert masks["next"][3, 4] == 1 and masks["next"][4].sum() == 0
    assert masks["duplicate"][1, 3] == 1 and masks["duplicate"][3, 1] == 1 and masks["duplicate"][1, 1] == 0
    assert masks["duplicate"][2].sum() == 0
    assert masks["cls"][:, 0].sum() == 5 and masks["sep"][:, 4].sum() == 5


def test_library_induction_scores_are_the_same_in_chunks_of_rows(tiny_model, monkeypatch):
    tokens = probes.repeated_random_tokens(3, 8, range(1, 50), torch.Generator().manual_seed(4), prefix=[0])
    whole = probes.library_induction_scores(tiny_model, tokens)
    monkeypatch.setattr(heads, "LOGIT_BYTES", tokens.shape[1] * 50 * 4)  # one row per pass
    torch.testing.assert_close(probes.library_induction_scores(tiny_model, tokens), whole)
    assert whole.shape == (2, 4) and whole.max() > 0


def test_thumbnails_keep_each_block_of_positions_by_its_strongest_weight():
    """The viewer's thumbnails pool a long prompt into blocks: a sharp previous-token diagonal stays
    at full strength (a mean would fade it), and blocks holding only masked keys are not drawn."""
    from build_figures.attention_heads import pooled

    n = 10
    previous = torch.zeros(1, n, n, dtype=torch.int32)
    previous[0, 0, 0] = 100
    previous[0, torch.arange(1, n), torch.arange(n - 1)] = 100
    grid = pooled(previous, causal=True, cells=4)  # blocks of 3 positions: 4 a side, the last one short
    assert grid.shape == (1, 4, 4)
    assert grid[0].diagonal().tolist() == [100, 100, 100, 0]  # the last block is position 9 alone: it looks at 8
    assert grid[0, 3, 2] == 100
    assert (grid[0][torch.ones(4, 4, dtype=torch.bool).triu(1)] == -1).all()  # above the diagonal: keys after every query of the block
    assert grid[0, 2, 0] == 0 and grid[0, 1, 0] == 100  # position 3 looks at 2, in block (1, 0)
    whole = pooled(previous, causal=False, cells=4)
    assert (whole >= 0).all()  # an encoder's blocks are all drawn
    assert torch.equal(pooled(previous, causal=True, cells=24)[0], previous[0].masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -1))
