"""The inputs the transformer articles probe language models with, and how their tokens are shown.

Three kinds of prompt: Python code that repeats its identifiers, prose as found in docstrings, and
repeated random tokens (the standard probe for induction). Works for the zoo (explorer.models.ZOO)
and for hub models such as gpt2: text is encoded with the model's own tokenizer, preceded by the
end-of-text token when the tokenizer has one (the zoo joins training files with it, GPT-2 uses it
as BOS). The synthetic-task model `induction-2l` reads no text, only its own symbols.
"""

import torch
from jaxtyping import Int

from explorer import models
from explorer.data import corpus
from explorer.errors import ModelUnavailable, check_choice
from explorer.models import flagship
from explorer.models.tokenizer import token_strings as visible_token_strings
from explorer.techniques import probes
from explorer.techniques.probes import repeated_random_tokens

TEXT_PROMPTS = {
    "code": (
        "def scale_points(points, factor):\n"
        "    scaled = []\n"
        "    for point in points:\n"
        "        scaled.append(point * factor)\n"
        "    return scaled\n"
    ),
    "prose": (
        '    """Return the first line of the file, or an empty string if the file is empty.\n'
        "\n"
        "    The file is read lazily: only the first line is loaded.\n"
        '    """\n'
    ),
}
PROMPT_KINDS = ("code", "prose", "repeat")
REPEAT_HALF = 16  # random tokens per copy in the "repeat" prompt


FLAGSHIP = flagship.MODEL_NAME  # the byte-level flagship (models/flagship-bytes-2l-s0), first in every model list
MINILM = "all-MiniLM-L6-v2"  # the pretrained encoder (explorer.models.minilm): on the head pages, after the zoo


def zoo_or(ctx_model: str, default_label: str) -> list[str]:
    """The flagship and every zoo model for the published figure, or just the model asked for with `--model`."""
    return [FLAGSHIP, *models.ZOO] if ctx_model == default_label else [ctx_model]


def is_encoder(name: str) -> bool:
    """MiniLM and the hub's encoders (DistilBERT): they read both ways and were trained on [CLS] ... [SEP]."""
    from explorer.models import hub

    return name == MINILM or name in hub.ENCODERS


def decoder_only(name: str, why: str) -> None:
    """ModelUnavailable (the figure is skipped, with this line) when `name` is an encoder."""
    if is_encoder(name):
        raise ModelUnavailable(f"{name} is an encoder (it reads both ways and predicts no next token): {why}")


def reads_text(name: str) -> bool:
    return name not in models.ZOO or models.ZOO[name].dataset != "induction"


_HUB_LOADED: dict[tuple[str, str], object] = {}  # the hub model of this run, booted once: (name, device) -> bridge


def load(ctx, name: str):
    """The stored flagship, a zoo model at the figure's scale, or a hub model (ModelUnavailable when not cached).
    The flagship is the same stored model at every scale: it is never trained by `make figures`.

    A hub model is booted once per process and shared by every figure and prompt of the run (GPT-2
    takes seconds and a gigabyte to boot); callers must leave it as they found it (hooks are only
    added through run_with_hooks, which removes them)."""
    if name == FLAGSHIP:
        return flagship.load(device=ctx.device)
    if name == MINILM:
        from explorer.models.minilm import load_minilm

        return load_minilm(str(ctx.device))
    if name in models.ZOO:
        return models.load(name, scale=ctx.scale, device=ctx.device)
    key = (name, str(ctx.device))
    if key not in _HUB_LOADED:
        _HUB_LOADED.clear()  # one hub model in memory at a time
        _HUB_LOADED[key] = models.load(name, scale=ctx.scale, device=ctx.device)
        probes.FROZEN.add(_HUB_LOADED[key])  # its head scores may be kept for the run
    return _HUB_LOADED[key]


def prompt_kinds(name: str) -> list[str]:
    return list(PROMPT_KINDS) if reads_text(name) else ["repeat"]


def start_tokens(model) -> list[int]:
    """[end-of-text id] when the vocabulary really has that token, else [] (the bridge maps a missing
    one onto an ordinary symbol, as for induction-2l, which never sees a start token in training)."""
    tok = model.tokenizer
    eos = getattr(tok, "eos_token_id", None)
    return [eos] if eos is not None and tok.convert_ids_to_tokens(eos) == tok.eos_token else []


def prompt_tokens(model, name: str, kind: str, seed: int = 0) -> Int[torch.Tensor, "1 pos"]:
    """One prompt of the given kind, as token ids on the model's device (cut to the context length)."""
    check_choice("prompt", kind, prompt_kinds(name))
    if is_encoder(name):
        return minilm_prompt_tokens(model, kind, seed)
    start = start_tokens(model)
    if kind == "repeat":
        generator = torch.Generator().manual_seed(seed)
        half = min(REPEAT_HALF, (model.cfg.n_ctx - len(start)) // 2)
        ids = repeated_random_tokens(1, half, sampling_vocab(model), generator, start)
    else:
        ids = torch.tensor([start + model.tokenizer.encode(TEXT_PROMPTS[kind], add_special_tokens=False)])
    return ids[:, : model.cfg.n_ctx].to(model.cfg.device)


def minilm_prompt_tokens(bridge, kind: str, seed: int = 0) -> Int[torch.Tensor, "1 pos"]:
    """The same prompts for an encoder (MiniLM, DistilBERT), framed [CLS] ... [SEP] as every input it was trained on."""
    from explorer.models import minilm

    if kind == "repeat":
        body = repeated_random_tokens(1, REPEAT_HALF, minilm.sampling_vocab(bridge), torch.Generator().manual_seed(seed))
    else:
        body = torch.tensor([bridge.tokenizer.encode(TEXT_PROMPTS[kind], add_special_tokens=False)])
    return minilm.framed(bridge, body).to(bridge.cfg.device)


def sampling_vocab(model) -> list[int]:
    """Token ids to draw random sequences from: the whole vocabulary except special tokens (for the
    byte-level flagship: printable ASCII, as its training film's probe; other bytes are not text)."""
    if getattr(model.tokenizer, "byte_level_flagship", False):
        return list(flagship.PRINTABLE)
    special = set(getattr(model.tokenizer, "all_special_ids", []) or [])
    return [i for i in range(model.cfg.d_vocab) if i not in special]


def token_strings(model, ids) -> list[str]:
    """Each token on its own, whitespace made visible (· space, ⏎ newline, → tab).

    A byte-level token that is only part of a character decodes to '�'; it is shown by id instead.
    Other unprintable characters (control bytes) are written as escapes such as \\x13."""
    ids = [int(i) for i in ids]
    texts = visible_token_strings(model.tokenizer, ids)
    return [f"#{i}" if "\ufffd" in text else printable(text) for i, text in zip(ids, texts)]


def printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def heldout_tokens(ctx, model, name: str, n: int, length: int) -> Int[torch.Tensor, "n length"]:
    """`n` rows of text the model was not trained on: the zoo's held-out split, or for a hub model
    the held-out standard-library files in its own tokenizer."""
    if name == FLAGSHIP:
        rows = flagship.heldout_rows(n, length)
    elif name in models.ZOO:
        rows = models.heldout_tokens(name, n, scale=ctx.scale)[:, :length]
    else:
        ids = torch.tensor(model.tokenizer.encode(corpus.corpus_text("heldout")[: 400 * n * length], add_special_tokens=False))
        starts = torch.linspace(0, len(ids) - length - 1, n).long()
        rows = torch.stack([ids[s : s + length] for s in starts.tolist()])
    return rows.long().to(model.cfg.device)
