"""Indirect-object sentences (Wang et al. 2022), from templates and word lists written here.

"When Mary and John went to the store, John gave a drink to" -> " Mary". The two names of the
first clause are the indirect object (IO) and the subject (S); the subject comes back in the
second clause (S2), and the model must name the one that did not. ABBA puts IO first, BABA puts S
first. The corrupted ("ABC") version replaces S2 with a third name, so nothing tells IO from S.

Sentences are built as word lists, so one word is one token for the site's IOI model, and GPT-2's
BPE reads every name here as one token (" Mary"); `encode` checks that for the tokenizer it gets.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

NAMES = (
    "Mary", "John", "Alice", "Bob", "Sarah", "James", "Emma", "David", "Laura", "Paul", "Anna", "Mark", "Kate",
    "Peter", "Lisa", "Tom", "Rachel", "Daniel", "Susan", "Michael", "Jessica", "Eric", "Amy", "Kevin", "Linda",
    "Steven", "Karen", "Brian", "Helen", "Jason", "Emily", "Adam", "Sophie", "Ryan", "Grace", "Jack", "Julia",
    "Sam", "Claire", "Henry",
)  # fmt: skip
PLACES = ("store", "garden", "school", "hospital", "station", "restaurant", "office", "park", "house", "library", "market", "beach")
OBJECTS = ("drink", "book", "ring", "bone", "kiss", "letter", "basketball", "computer", "snack", "necklace", "bag", "gift")
TEMPLATES = (  # {A} {B}: the first clause's names; {C}: the second clause's subject; the IO comes next
    "When {A} and {B} went to the {PLACE} , {C} gave a {OBJECT} to",
    "After {A} and {B} went to the {PLACE} , {C} gave a {OBJECT} to",
    "Then , {A} and {B} had a long argument . Afterwards {C} said to",
    "While {A} and {B} were working at the {PLACE} , {C} gave a {OBJECT} to",
    "Friends {A} and {B} found a {OBJECT} at the {PLACE} . {C} gave it to",
    "When {A} and {B} got a {OBJECT} at the {PLACE} , {C} decided to give it to",
    "The {PLACE} {A} and {B} went to had a {OBJECT} . {C} gave it to",
    "{A} and {B} went to the {PLACE} . {C} handed a {OBJECT} to",
)
ORDERS = ("ABBA", "BABA")


@dataclass(frozen=True)
class Sentences:
    """A batch of IOI prompts as words, with the names that matter."""

    words: list[list[str]]  # each prompt, word by word (no answer)
    io: list[str]
    s: list[str]
    corrupt_s2: list[str]  # the third name of the ABC corruption
    template: list[int]
    order: list[str]

    def prompts(self, corrupted: bool = False) -> list[list[str]]:
        """The prompts; corrupted: S2 replaced by the third name (the ABC distribution)."""
        if not corrupted:
            return self.words
        out = []
        for words, s, c in zip(self.words, self.s, self.corrupt_s2, strict=True):
            last = max(i for i, w in enumerate(words) if w == s)  # S2
            out.append([c if i == last else w for i, w in enumerate(words)])
        return out


def sample(n: int, generator: torch.Generator, names=NAMES, templates=TEMPLATES, orders=ORDERS) -> Sentences:
    """`n` prompts, alternating through `orders` (half ABBA and half BABA by default), with three distinct
    names each, drawn with `generator`."""
    words, ios, ss, cs, ts, drawn = [], [], [], [], [], []
    for i in range(n):
        a, b, c = (names[j] for j in torch.randperm(len(names), generator=generator)[:3].tolist())  # a: IO, b: S, c: the ABC name
        t = int(torch.randint(len(templates), (1,), generator=generator))
        place = PLACES[int(torch.randint(len(PLACES), (1,), generator=generator))]
        thing = OBJECTS[int(torch.randint(len(OBJECTS), (1,), generator=generator))]
        order = orders[i % len(orders)]
        first, second = (a, b) if order == "ABBA" else (b, a)
        words.append(templates[t].format(A=first, B=second, C=b, PLACE=place, OBJECT=thing).split())
        ios.append(a), ss.append(b), cs.append(c), ts.append(t), drawn.append(order)
    return Sentences(words, ios, ss, cs, ts, drawn)


def vocabulary() -> list[str]:
    """Every word a template can produce (names, places, objects, template words), in a fixed order."""
    words = {w for t in TEMPLATES for w in t.split() if not w.startswith("{")}
    return ["<pad>", *sorted(words), *PLACES, *OBJECTS, *NAMES]


def word_positions(words: list[str], name: str) -> list[int]:
    return [i for i, w in enumerate(words) if w == name]


def encode(tokenizer, sentences: list[list[str]], leading_space: bool) -> Int[Tensor, "batch pos"]:
    """Token ids of each prompt, one token per word (ValueError naming the first word that is not one
    token). leading_space: GPT-2 style, where " Mary" is the token; otherwise words are the tokens.
    Prompts of one batch must be equally long in tokens, so a batch holds one template."""
    rows = []
    for words in sentences:
        row = []
        for i, word in enumerate(words):
            text = (" " + word) if (leading_space and i > 0) else word
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) != 1:
                raise ValueError(f"IOI word {text!r} is {len(ids)} tokens for this tokenizer, not one")
            row.append(ids[0])
        rows.append(row)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"IOI prompts of one batch must have one length; got {sorted(lengths)}")
    return torch.tensor(rows)


def tokenizer():
    """A word-level tokenizer over `vocabulary()` (id = index), for the site's IOI model; a fresh one each
    call, since TransformerBridge writes its special tokens into the tokenizer it is given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocabulary())}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<pad>")
