"""The flagship's pieces: the bigger corpus, its split, and the plain-to-TransformerLens conversion."""

import numpy as np
import pytest
import torch

from explorer.data import code_corpus
from explorer.models import flagship
from explorer.models.reference import PlainTransformer

TINY = dict(flagship.ARCH, n_ctx=16, d_model=32, n_heads=4, d_head=8)


def _plain(seed: int = 0) -> PlainTransformer:
    torch.manual_seed(seed)
    model = PlainTransformer(TINY)
    with torch.no_grad():  # every layer-norm weight and bias away from 1 and 0, so each term is exercised
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def test_the_lens_model_computes_what_the_plain_model_computes():
    plain = _plain()
    lens = flagship.lens_model(plain.state_dict(), TINY)
    tokens = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(plain(tokens), lens(tokens), atol=1e-5)


def test_the_heads_the_hooks_see_are_the_plain_model_heads():
    """Head h of the plain model is features h*d_head:(h+1)*d_head; the bridge must split them the same way."""
    plain = _plain(2)
    lens = flagship.lens_model(plain.state_dict(), TINY)
    tokens = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(3))
    _, cache = lens.run_with_cache(tokens)
    block = plain.blocks[0]
    x = plain.embed(tokens) + plain.pos(torch.arange(16))
    q, k, _ = block.qkv(block.ln1(x)).split(32, dim=-1)  # (1, pos, d_model)
    head = 2
    qh, kh = q[0, :, head * 8 : (head + 1) * 8], k[0, :, head * 8 : (head + 1) * 8]  # (pos, d_head)
    scores = (qh @ kh.T / 8**0.5).masked_fill(torch.ones(16, 16, dtype=torch.bool).triu(1), float("-inf"))
    assert torch.allclose(cache["blocks.0.attn.hook_pattern"][0, head], scores.softmax(-1), atol=1e-5)


def test_encode_reads_utf8_bytes():
    assert flagship.encode("aé").tolist() == [97, 0xC3, 0xA9]
    assert all(32 <= b < 127 for b in flagship.PRINTABLE) and len(flagship.PRINTABLE) == 95


def test_the_split_is_by_file_name_and_machine_independent():
    files = code_corpus.source_files()
    assert len(files) > 1000 and [f.name for f in files] == sorted(f.name for f in files)
    assert all(f.name.startswith(("stdlib/", "site-packages/")) for f in files)
    assert not any(f.name.split("/")[1] in code_corpus.SKIP_PACKAGES for f in files if f.name.startswith("site-packages/"))
    heldout = code_corpus.split_files("heldout")
    share = len(heldout) / len(files)
    assert 0.03 < share < 0.07  # HELDOUT_SHARE, up to the luck of the hash
    assert not {f.name for f in heldout} & {f.name for f in code_corpus.split_files("train")}
    # the rule is a function of the name alone: a file keeps its side wherever it is installed
    assert code_corpus.SourceFile("stdlib/json/decoder.py", files[0].path).heldout == any(f.name == "stdlib/json/decoder.py" for f in heldout)


def test_corpus_bytes_are_the_files_in_order():
    first = code_corpus.split_files("heldout")[0]
    data = code_corpus.corpus_bytes("heldout", 1000)
    assert data.dtype == np.uint8 and len(data) == min(1000, len(data))
    expected = (first.path.read_bytes() + code_corpus.FILE_SEPARATOR)[:1000]
    assert bytes(data[: len(expected)]) == expected


def test_unknown_split_is_named():
    with pytest.raises(Exception, match="corpus split"):
        code_corpus.split_files("validation")


@pytest.mark.slow
def test_the_film_shows_induction_heads_forming_on_text_in_every_seed(smoke_claims):
    claims = smoke_claims("flagship-film")
    assert claims["seeds"] == 3
    # against three nulls: uniform attention, the untrained model, and a second half that does not repeat
    assert claims["induction_final_min"] > 5 * claims["chance_induction"]
    assert claims["induction_final_min"] > 3 * claims["induction_untrained_max"]
    assert claims["induction_final_min"] > 3 * claims["induction_control_max"]
    assert claims["induction_heads_in_layer_1"] == 3 and claims["previous_token_heads_in_layer_0"] == 3
    assert claims["heldout_loss_final_max"] < claims["heldout_loss_start_min"] - 2  # nats per byte, from ln 256 = 5.5
    assert claims["icl_final_max"] < claims["icl_start_min"]  # later bytes get easier than they were


@pytest.mark.slow
def test_todays_detectors_agree_with_the_film_measured_in_training(smoke_claims):
    """The film is stored data; rescoring the stored final weights with the current code must give it back."""
    claims = smoke_claims("flagship-film")
    assert claims["rescored_induction_final_s0"] == pytest.approx(claims["film_induction_final_s0"], abs=2e-3)
    assert claims["rescored_heldout_loss_final_s0"] == pytest.approx(claims["film_heldout_loss_final_s0"], abs=2e-3)


def test_the_corpus_figure_counts_the_corpus(smoke_claims):
    claims = smoke_claims("flagship-corpus")
    assert claims["train_mbytes"] > 100 and 0 < claims["heldout_mbytes"] < 0.1 * claims["train_mbytes"]
    assert 0.03 < claims["heldout_share_files"] < 0.07 and 0 < claims["stdlib_share"] < 1
