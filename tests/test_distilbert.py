"""DistilBERT through TransformerLens's BERT adapter: the renamed copy computes what DistilBERT computes."""

import torch
from transformers import DistilBertConfig, DistilBertForMaskedLM

import tiny_models
from explorer.models import distilbert


def tiny_distilbert(vocab: int = 40) -> DistilBertForMaskedLM:
    torch.manual_seed(0)
    model = DistilBertForMaskedLM(DistilBertConfig(n_layers=2, dim=32, n_heads=2, hidden_dim=64, max_position_embeddings=160,
                                                   vocab_size=vocab, attn_implementation="eager")).eval()
    with torch.no_grad():  # layer norms and biases away from their initial values, so a misplaced one shows
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(0.3 * torch.randn(param.shape))
    return model


def test_the_bert_copy_computes_distilberts_logits_and_attention():
    distil = tiny_distilbert()
    bert = distilbert.as_bert(distil)
    ids = torch.randint(0, 40, (3, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = bert(ids, output_attentions=True), distil(ids, output_attentions=True)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_a_distilbert_snapshot_boots_as_a_bridge_with_its_attention_hooks(tmp_path):
    from explorer.models import hub

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(35))]
    distil = tiny_distilbert()
    tiny_models.distilbert_in_hub_cache(tmp_path, distil, words)
    snapshot = next((tmp_path / "models--distilbert--distilbert-base-uncased" / "snapshots").iterdir())
    assert distilbert.is_distilbert(snapshot)
    bridge = distilbert.load(snapshot)
    ids = torch.randint(5, 40, (2, 9), generator=torch.Generator().manual_seed(2))
    _, cache = bridge.run_with_cache(ids)
    with torch.no_grad():
        expected = distil(ids, output_attentions=True).attentions
    for layer in range(2):
        torch.testing.assert_close(cache[f"blocks.{layer}.attn.hook_pattern"], expected[layer], atol=1e-6, rtol=1e-5)
    assert bridge.tokenizer.cls_token == "[CLS]" and "distilbert-base-uncased" in hub.ENCODERS
