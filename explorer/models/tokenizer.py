"""Tokenizers for the zoo: a byte-level BPE trained on the standard-library corpus, and a word-level
vocabulary `t0 … t{n-1}` for the synthetic induction task.

Both are Hugging Face `tokenizers` objects wrapped as `PreTrainedTokenizerFast`, which is what
TransformerBridge expects (`bridge.to_str_tokens`, `bridge.to_string`).
"""

from functools import cache
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from explorer.cache import cached
from explorer.data import corpus

END_OF_FILE = "<|endoftext|>"
VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "⏎", "\t": "→", "\r": "␍"})


def train_bpe(text_files: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE (GPT-2 style), so every byte of source code is representable."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_FILE],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text_files, trainer=trainer)
    return tok


@cache
def corpus_tokens(vocab_size: int, max_files: int | None = None) -> dict[str, Any]:
    """The trained tokenizer (JSON) and both corpus splits as token ids, cached.

    Files are joined with the end-of-file token, so a model learns where one module stops.
    """
    config = {"vocab_size": vocab_size, "max_files": max_files, "corpus": corpus.fingerprint()}

    def build() -> dict[str, Any]:
        splits = {s: [p.read_text(encoding="utf-8", errors="replace") for p in corpus.split_files(s)][:max_files] for s in corpus.SPLITS}
        tok = train_bpe(splits["train"], vocab_size)
        eof = tok.token_to_id(END_OF_FILE)
        ids = {}
        for split, texts in splits.items():
            flat: list[int] = []
            for enc in tok.encode_batch(texts):
                flat.extend(enc.ids)
                flat.append(eof)
            ids[split] = torch.tensor(flat, dtype=torch.int16 if vocab_size < 2**15 else torch.int32)
        return {"tokenizer_json": tok.to_str(), "train": ids["train"], "heldout": ids["heldout"]}

    return cached("stdlib-bpe", config, build, code=[corpus, train_bpe])


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=END_OF_FILE if tok.token_to_id(END_OF_FILE) is not None else None)


@cache
def bpe_tokenizer(vocab_size: int, max_files: int | None = None) -> PreTrainedTokenizerFast:
    return wrap(Tokenizer.from_str(corpus_tokens(vocab_size, max_files)["tokenizer_json"]))


@cache
def symbol_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """Word-level tokenizer for the synthetic task: token i is written `t{i}`, separated by spaces."""
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab_size)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0")


def visible(text: str) -> str:
    """Make whitespace in a token visible: space ·, newline ⏎, tab →."""
    return text.translate(VISIBLE_WHITESPACE)


def token_strings(tokenizer: PreTrainedTokenizerFast, ids) -> list[str]:
    """Each token id decoded on its own, with whitespace made visible (for drawing as text)."""
    return [visible(tokenizer.decode([int(i)])) for i in ids]
