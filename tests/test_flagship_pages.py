"""The flagship on the interpretability pages: its byte tokenizer, its prompts, and the stories its figures tell.

The flagship is a stored model, so its smoke-scale figures read the same weights as the published
ones; these tests assert the directions the pages state (fewer rows, same story)."""

import pytest
import torch

from explorer.models import flagship
from explorer.models.reference import PlainTransformer
from explorer.techniques import prompts

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_byte_tokenizer_maps_each_byte_to_its_value_and_back():
    tok = flagship.byte_tokenizer()
    text = "def f(x):\n\treturn 'héllo' \x00✓"
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert len(tok.get_vocab()) == 256 and tok.all_special_ids == [0]  # byte 0 stands in for the unknown token


def test_the_flagship_loads_twice_with_no_start_token_and_printable_probes():
    """The bridge writes special tokens into the tokenizer it gets: a shared one broke the second load,
    and an added end-of-text token got id 256, past the model's embedding."""
    for _ in range(2):
        model = flagship.load()
        assert prompts.start_tokens(model) == []
        assert prompts.sampling_vocab(model) == list(flagship.PRINTABLE)
        ids = prompts.prompt_tokens(model, prompts.FLAGSHIP, "code")
        assert ids.max() < 256 and ids.shape[1] == len(prompts.TEXT_PROMPTS["code"].encode())


def test_the_lens_mapping_carries_mlps():
    """The GELU flagship (explorer/longruns/flagship_gelu.py) reads through the same mapping."""
    arch = dict(flagship.ARCH, n_ctx=16, d_model=32, n_heads=4, d_head=8, attn_only=False, d_mlp=64)
    torch.manual_seed(0)
    plain = PlainTransformer(arch).eval()
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.2 * torch.randn_like(p))
    assert flagship.arch_of(plain.state_dict())["d_mlp"] == 64 and not flagship.arch_of(plain.state_dict())["attn_only"]
    lens = flagship.lens_model(plain.state_dict(), arch)
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(plain(tokens), lens(tokens), atol=1e-5)


def test_the_head_wiki_finds_the_flagships_induction_and_previous_token_heads(smoke_claims):
    claims = smoke_claims("heads-wiki")
    assert claims["flagship_bytes_2l_induction_head"].startswith("L1")
    assert claims["flagship_bytes_2l_induction_max"] > 10 * claims["flagship_bytes_2l_induction_null_max"]
    assert claims["flagship_bytes_2l_previous_token_head"].startswith("L0")
    assert claims["flagship_bytes_2l_previous_token_max"] > 5 * claims["flagship_bytes_2l_previous_token_null_max"]
    assert claims["flagship_bytes_2l_induction_max"] > 3 * claims["text_models_best_induction"]  # the zoo's BPE models stay apart


def test_the_lens_and_dla_put_the_flagships_copy_in_layer_1(smoke_claims):
    lens = smoke_claims("residual-logit-lens")
    assert lens["flagship_bytes_2l_top1_final"] > lens["flagship_bytes_2l_top1_commonest"] > lens["flagship_bytes_2l_top1_embed"]
    assert lens["flagship_bytes_2l_repeat_p_before_last_block"] < lens["flagship_bytes_2l_repeat_chance"] < lens["flagship_bytes_2l_repeat_p_final"]
    dla = smoke_claims("residual-dla")
    assert dla["flagship_bytes_2l_repeat_top_component"] == smoke_claims("heads-wiki")["flagship_bytes_2l_induction_head"]
    assert dla["flagship_bytes_2l_repeat_top_push"] > 3 * max(dla["flagship_bytes_2l_repeat_top_push_first_copy"], dla["flagship_bytes_2l_repeat_layer0_max_abs_push"])


def test_one_head_carries_a_renamed_variable_in_every_seed(smoke_claims):
    claims = smoke_claims("patching-identifier")
    assert claims["rows"] == 24 and claims["pairs"] == 12
    assert claims["top1_clean_min"] > 0.9 and claims["top1_corrupted_min"] > 0.9  # chance: 1 in 95
    assert claims["clean_logit_diff_min"] > 2 and abs(claims["untrained_logit_diff"]) < 0.1
    assert claims["seeds_same_top_head"] == 3 and claims["seeds_top_head_is_induction_head"] == 3
    assert claims["top_head_recovered_min"] > 0.8 and claims["runner_up_recovered_max"] < 0.2
    assert claims["after_l0_renamed_max_min"] > 0.3 and abs(claims["after_l0_last"]) < 0.05


def test_patching_and_ablation_single_out_the_flagships_induction_head(smoke_claims):
    heads = smoke_claims("patching-heads")
    assert heads["flagship_bytes_2l_top_head"] == smoke_claims("heads-wiki")["flagship_bytes_2l_induction_head"]
    assert heads["flagship_bytes_2l_top_head_recovered"] > 0.8
    ablation = smoke_claims("patching-ablation")
    # the story at both scales: layer-0 previous-token heads cost most in absolute terms (zero ablation),
    # the induction head costs most for its size (its cost over its null), and well past that null
    assert ablation["flagship_bytes_2l_zero_top_head"].startswith("L0")
    assert ablation["flagship_bytes_2l_zero_top_head_previous"] > 0.3
    assert ablation["flagship_bytes_2l_mean_top_ratio_head"] == heads["flagship_bytes_2l_top_head"]
    assert ablation["flagship_bytes_2l_mean_top_induction_head"] == heads["flagship_bytes_2l_top_head"]
    assert ablation["flagship_bytes_2l_mean_top_induction_head_increase"] > 2 * ablation["flagship_bytes_2l_mean_top_induction_head_null_p95"]
    assert ablation["flagship_bytes_2l_zero_top_increase"] < 2 * ablation["flagship_bytes_2l_zero_top_null_p95"]


def test_the_gelu_flagship_forms_the_same_heads_at_a_lower_loss(smoke_claims):
    claims = smoke_claims("flagship-gelu")
    assert claims["gelu_induction_head"].startswith("L1") and claims["gelu_previous_token_head"].startswith("L0")
    assert claims["gelu_induction_final"] > 10 * claims["gelu_induction_untrained"]
    assert claims["gelu_heldout_loss_final"] < claims["attn_only_heldout_loss_best"]
    assert claims["gelu_window_start_mbytes"] < claims["gelu_window_end_mbytes"]
    # today's detectors on the stored weights give the number the training film recorded
    assert claims["gelu_rescored_induction_final"] == pytest.approx(claims["gelu_induction_final"], abs=0.02)
