"""LoRA: the adapter against the plain matrix it stands for, merging, what each method leaves
trainable, and the article's claims at smoke scale, against full fine-tuning and the Gaussian null."""

import pytest
import torch
from torch import nn

from explorer.models.digits import make_mlp
from explorer.models.flagship_config import ARCH
from explorer.models.reference import PlainTransformer
from explorer.techniques import lora


def test_an_adapter_starts_as_its_base_layer_and_adds_a_rank_r_update():
    torch.manual_seed(0)
    base = nn.Linear(12, 9)
    adapter = lora.LoRALinear(base, rank=2, alpha=4.0, blocks=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 12)
    torch.testing.assert_close(adapter(x), base(x))  # B starts at zero
    assert lora.trainable(adapter) == 3 * 2 * 12 + 9 * 2 and not any(p.requires_grad for p in base.parameters())
    with torch.no_grad():
        adapter.B.normal_()
    # the merged matmul and the factored adapter path agree, and the update is W + (alpha / r) B A block by block
    torch.testing.assert_close(adapter(x), adapter.forward_factored(x))
    expected = torch.cat([2.0 * adapter.B[k] @ adapter.A[k] for k in range(3)])  # (9, 12): alpha / r = 2
    torch.testing.assert_close(adapter.delta(), expected)
    for k in range(3):  # each block of three output rows has rank 2 at most
        assert torch.linalg.matrix_rank(adapter.delta()[3 * k : 3 * k + 3]) <= 2
    with pytest.raises(ValueError, match="9 output rows do not split into 2 blocks"):
        lora.LoRALinear(base, rank=1, alpha=1.0, blocks=2)


def test_a_merged_flagship_computes_what_the_adapted_one_does():
    torch.manual_seed(0)
    weights = PlainTransformer(ARCH).state_dict()
    model = lora.prepare_flagship(weights, ARCH, "lora", rank=4, alpha=16.0, seed=0)
    assert lora.trainable(model) == ARCH["n_layers"] * 4 * 4 * 2 * ARCH["d_model"]  # W_Q, W_K, W_V, W_O: r (in + out) each
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, lora.LoRALinear):
                module.B.normal_(std=0.05)
    merged = PlainTransformer(ARCH)
    merged.load_state_dict(lora.merged_state(model))
    tokens = torch.randint(0, ARCH["d_vocab"], (2, 16))
    torch.testing.assert_close(merged(tokens), model(tokens), atol=1e-5, rtol=1e-5)
    delta = lora.merged_state(model)["blocks.0.qkv.weight"] - weights["blocks.0.qkv.weight"]
    for part in delta.split(ARCH["d_model"]):  # W_Q, W_K, W_V: one rank-4 update each
        assert torch.linalg.matrix_rank(part) == 4


def test_each_method_trains_only_what_it_says():
    weights = PlainTransformer(ARCH).state_dict()
    last = lora.prepare_flagship(weights, ARCH, "last", 0, 0.0, 0)
    trained = {n for n, p in last.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith((f"blocks.{ARCH['n_layers'] - 1}.", "ln_final.", "unembed.")) for n in trained)
    full = lora.prepare_flagship(weights, ARCH, "full", 0, 0.0, 0)
    assert lora.trainable(full) == sum(p.numel() for p in full.parameters())
    with pytest.raises(ValueError, match="unknown fine-tuning method 'adapters'"):
        lora.prepare_flagship(weights, ARCH, "adapters", 1, 1.0, 0)


def test_digits_lora_caps_the_rank_at_each_layer_and_learns_the_rotated_task():
    torch.manual_seed(0)
    model = make_mlp((16,))
    x = torch.rand(200, 64)
    y = torch.randint(0, 10, (200,))
    result = lora.fine_tune_digits(model, (x, y, x, y), dict(method="lora", rank=32, alpha=16, lr=1e-2, steps=5, batch=16, seed=0))
    assert result["trainable"] == 16 * (64 + 16) + 10 * (16 + 10)  # fc1 at rank 16 (its smaller side), out at rank 10
    assert set(result["scores"]) == {"target", "original", "tuning"}
    assert torch.equal(lora.rotate(lora.rotate(lora.rotate(lora.rotate(x)))), x)  # four quarter turns


# --------------------------------------------------------------------------- the article's claims (smoke scale)


def test_a_lora_update_has_rank_r_at_most_and_full_fine_tuning_uses_far_more(smoke_claims):
    c = smoke_claims("lora-rank")
    for r in (1, 2, 4, 8, 16):
        assert c[f"lora{r}_rank_max"] <= r and c[f"lora{r}_r90_max"] <= r
    assert c["full_r90_min_min"] > 16  # every attention matrix's full update: more directions than the largest LoRA rank
    assert c["full_r90_median_max"] < c["null_r90"]  # but fewer than a Gaussian matrix of the same size
    assert c["full_top8_median_max"] > c["null_top8"]  # and more concentrated at the top
    assert c["full_top8_median_max"] < 0.75  # a rank-8 adapter could hold at most this share of it


def test_lora_learns_less_than_full_fine_tuning_and_more_with_rank(smoke_claims):
    c = smoke_claims("lora-tradeoff")
    assert c["full_gain_min"] > 0  # fine-tuning on sympy lowers the held-out sympy loss
    for r in (1, 2, 4, 8, 16):
        assert c[f"lora{r}_learns_less_seeds"] == c["seeds"] == 3, r  # the flagship: every rank, every seed
    assert c["lora1_gain"] < c["lora16_gain"] and c["d_lora1_target"] < c["d_lora16_target"]
    assert c["d_lora1_learns_less_seeds"] == 3  # the digits: rank 1 learns less than full fine-tuning in every seed
    assert c["d_base_target_max"] < 2 * c["chance"] and c["d_full_target_min"] > 0.8  # rotated digits: from chance to learned


def test_lora_does_not_forget_less_than_full_fine_tuning_on_the_flagship(smoke_claims):
    """The article's finding, against LoRA's usual promise: full fine-tuning on sympy lowers the loss on
    the other code too, and every LoRA rank raises it relative to full fine-tuning in every seed."""
    c = smoke_claims("lora-tradeoff")
    assert c["full_forget_max"] < 0
    for r in (1, 2, 4, 8, 16):
        assert c[f"lora{r}_forgets_less_seeds"] == 0, r
    assert c["last_forget_min"] > c["full_forget_max"]


def test_every_method_forgets_much_of_the_upright_digits(smoke_claims):
    c = smoke_claims("lora-tradeoff")
    assert c["d_base_original_min"] > 0.9
    for key in ("full", "last", "lora1", "lora2", "lora4", "lora8", "lora16"):
        assert c[f"d_{key}_forget_min"] > 0.4, key
