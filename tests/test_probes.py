"""The canonical probe set and the one head scorer, against explicit loops and TransformerLens's own score."""

import pytest
import torch
from transformer_lens.head_detector import compute_head_attention_similarity_score, get_induction_head_detection_pattern
from explorer.techniques import heads, probes
import tiny_models


@pytest.fixture(scope="module")
def tiny():
    return tiny_models.tiny()


def test_repeated_rows_repeat_distinct_tokens_after_the_prefix():
    rows = probes.repeated_random_tokens(5, 9, range(3, 30), torch.Generator().manual_seed(0), prefix=[1])
    assert rows.shape == (5, 1 + 2 * 9)
    assert (rows[:, 0] == 1).all()
    assert torch.equal(rows[:, 1:10], rows[:, 10:])
    for row in rows[:, 1:10].tolist():
        assert len(set(row)) == 9 and all(3 <= t < 30 for t in row)
    again = probes.repeated_random_tokens(5, 9, range(3, 30), torch.Generator().manual_seed(0), prefix=[1])
    assert torch.equal(rows, again)
    with pytest.raises(ValueError, match="distinct"):
        probes.repeated_random_tokens(1, 31, range(30), torch.Generator())


@pytest.mark.parametrize("n_ctx, prefix, half", [(64, 0, 24), (32, 0, 12), (128, 1, 48), (1024, 1, probes.MAX_HALF), (10, 1, 3), (9, 4, 2)])
def test_repeat_length_is_three_eighths_of_the_context_and_fits(n_ctx, prefix, half):
    assert probes.repeat_length(n_ctx, prefix) == half
    assert prefix + 2 * probes.repeat_length(n_ctx, prefix) <= max(n_ctx, prefix + 4)


def slow_scores(patterns: torch.Tensor, rows: torch.Tensor, prefix: int, half: int, text: bool) -> dict[str, torch.Tensor]:
    """The four scores by their definitions, one query at a time (patterns: batch, head, q, k)."""
    batch, n_heads, n, _ = patterns.shape
    out = {}
    if text:
        out["previous_token"] = torch.tensor([[sum(patterns[b, h, q, q - 1].item() for q in range(1, n)) / (n - 1)
                                               for h in range(n_heads)] for b in range(batch)]).mean(0)
        out["first_token"] = torch.tensor([[sum(patterns[b, h, q, 0].item() for q in range(1, n)) / (n - 1)
                                            for h in range(n_heads)] for b in range(batch)]).mean(0)
    else:
        second = range(prefix + half, prefix + 2 * half)
        out["induction"] = torch.tensor([[sum(patterns[b, h, q, q - half + 1].item() for q in second) / half
                                          for h in range(n_heads)] for b in range(batch)]).mean(0)
        out["duplicate_token"] = torch.tensor([[sum(patterns[b, h, q, q - half].item() for q in second) / half
                                                for h in range(n_heads)] for b in range(batch)]).mean(0)
    return out


def test_head_scores_match_their_definitions_query_by_query(tiny):
    half, prefix = 9, 1
    repeated = probes.repeated_random_tokens(3, half, range(2, 50), torch.Generator().manual_seed(1), prefix=[0])
    text = torch.randint(2, 50, (2, 30), generator=torch.Generator().manual_seed(2))
    probe = probes.ProbeSet("tiny", repeated, prefix, half, text)
    table = probes.head_scores(tiny, probe)
    for tokens, is_text in ((text, True), (repeated, False)):
        _, cache = tiny.run_with_cache(tokens)
        for layer in range(2):
            expected = slow_scores(cache[f"blocks.{layer}.attn.hook_pattern"], tokens, prefix, half, is_text)
            for kind, values in expected.items():
                ours = probes.score_grid(table, kind)[layer]
                assert torch.allclose(ours, values, atol=1e-5), (kind, layer, ours, values)


def test_transformer_lens_score_is_ours_times_the_share_of_rows_with_a_target(tiny):
    half = 8
    repeated = probes.repeated_random_tokens(4, half, range(1, 50), torch.Generator().manual_seed(3), prefix=[0])
    probe = probes.ProbeSet("tiny", repeated, 1, half, repeated)
    ours = probes.score_grid(heads.head_scores(tiny, repeated, ["induction"]), "induction")
    theirs = probes.library_induction_scores(tiny, repeated)
    assert torch.allclose(theirs, ours * half / repeated.shape[1], atol=1e-5)
    _, cache = tiny.run_with_cache(repeated[:1])  # and one head by hand, with the library's own functions
    direct = compute_head_attention_similarity_score(cache["blocks.1.attn.hook_pattern"][0, 2], get_induction_head_detection_pattern(repeated[:1]),
                                                     exclude_bos=False, exclude_current_token=False, error_measure="mul")
    assert probes.library_induction_scores(tiny, repeated[:1])[1, 2].item() == pytest.approx(direct, abs=1e-6)
    assert probes.uniform_induction_score(probe) > 0


def test_uniform_attention_scores_the_chance_level():
    half, prefix, n = 6, 1, 13
    uniform = torch.ones(n, n).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None]  # (head, q, k)
    tokens = probes.repeated_random_tokens(1, half, range(1, 40), torch.Generator().manual_seed(0), prefix=[0])[0]
    probe = probes.ProbeSet("x", tokens[None], prefix, half, tokens[None])
    induction = heads.attention_scores(uniform, heads.detection_pattern("induction", tokens))
    assert induction.item() == pytest.approx(probes.uniform_induction_score(probe), abs=1e-6)
    previous = heads.attention_scores(uniform, heads.detection_pattern("previous_token", tokens))
    assert previous.item() == pytest.approx(probes.uniform_previous_token_score(n), abs=1e-6)


def test_every_page_shows_the_same_score_for_the_same_head(smoke_claims):
    """Regression: the induction page, patching page and head wiki each built their own probe (0.82, 0.77, 0.69)."""
    film = smoke_claims("induction-film")
    wiki = smoke_claims("heads-wiki")
    patch = smoke_claims("patching-heads")
    assert wiki["induction_2l_induction_head"] == film["induction_head"]
    assert wiki["induction_2l_induction_max"] == pytest.approx(film["induction_score"], abs=1e-6)
    assert wiki["induction_2l_previous_token_max"] == pytest.approx(film["previous_token_score"], abs=1e-6)
    if patch["induction_2l_top_head"] == film["induction_head"]:
        assert patch["induction_2l_top_head_induction"] == pytest.approx(film["induction_score"], abs=1e-6)
    assert smoke_claims("induction-repeat-length")["top_head_canonical"] == pytest.approx(film["top_induction"], abs=1e-3)
