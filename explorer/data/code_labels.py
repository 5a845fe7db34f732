"""Exact labels for Python source, from Python's own `tokenize` (and `ast` to check that a file parses).

Every label here is computed, not annotated: a probe's target is as exact as the tokenizer that
made it. A file is one string; each lexical token (`CodeToken`) carries its character span, its
class and the number of brackets open around it, and `token_at` maps every character offset onto
the token that covers it, so labels can be moved onto any model's units: the flagship's bytes (the
files used are ASCII, so a character is a byte) or MiniLM's word pieces (through the fast
tokenizer's offset mapping).

The label tasks (`TASKS`), one example per token:

- `token_type`: NAME, OP, STRING, NUMBER or COMMENT (an f-string is one STRING, as before 3.12);
- `keyword`: among NAME tokens, a Python keyword (`keyword.iskeyword`) or an identifier;
- `depth`: brackets open around the token, 0, 1 or 2+ (a bracket itself counts at the outer level);
- `seen`: among identifiers, whether the same name already occurred earlier in the window of text
  the model reads (the model sees nothing before its window, so "earlier" means inside it).

The first two are functions of the token's text; the last two are not: the same word can be at
any depth, and seen or new. That difference is what a control task (Hewitt & Liang 2019) exposes.
"""

import ast
import io
import keyword
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from explorer.errors import check_choice

KINDS = ("NAME", "OP", "STRING", "NUMBER", "COMMENT")
OPENING, CLOSING = "([{", ")]}"
TASKS = {
    "token_type": KINDS,
    "keyword": ("identifier", "keyword"),
    "depth": ("0", "1", "2+"),
    "seen": ("new name", "seen earlier"),
}
TASK_LABELS = {
    "token_type": "token type",
    "keyword": "keyword or identifier",
    "depth": "bracket depth",
    "seen": "name seen earlier",
}


@dataclass(frozen=True)
class CodeToken:
    start: int  # character offset of the first character
    end: int  # one past the last character
    kind: str  # one of KINDS
    text: str
    depth: int  # brackets open around the token (a bracket itself: the depth outside it)

    @property
    def is_keyword(self) -> bool:
        return self.kind == "NAME" and keyword.iskeyword(self.text)


def line_offsets(source: str) -> list[int]:
    """Character offset of the start of each line (1-based rows, as tokenize counts them, at index row - 1)."""
    starts, offset = [], 0
    for line in source.splitlines(keepends=True):
        starts.append(offset)
        offset += len(line)
    starts.append(offset)
    return starts


def tokens_of(source: str) -> list[CodeToken] | None:
    """The tokens of one file, or None when `tokenize` or `ast` cannot read it."""
    try:
        ast.parse(source)
        raw = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError, ValueError):
        return None
    lines = line_offsets(source)

    def offset(row_col: tuple[int, int]) -> int:
        return lines[row_col[0] - 1] + row_col[1]

    out: list[CodeToken] = []
    depth = 0
    fstring_start, fstring_nesting = None, 0
    for tok in raw:
        name = tokenize.tok_name[tok.type]
        if name == "FSTRING_START":  # Python 3.12+: an f-string is split into parts; keep it one STRING
            fstring_nesting += 1
            if fstring_nesting == 1:
                fstring_start = offset(tok.start)
            continue
        if fstring_nesting:
            if name == "FSTRING_END":
                fstring_nesting -= 1
                if fstring_nesting == 0:
                    start, end = fstring_start, offset(tok.end)
                    out.append(CodeToken(start, end, "STRING", source[start:end], depth))
            continue
        if name not in KINDS:
            continue
        start, end = offset(tok.start), offset(tok.end)
        here = depth
        if name == "OP" and tok.string in OPENING:
            depth += 1
        elif name == "OP" and tok.string in CLOSING:
            depth = max(depth - 1, 0)
            here = depth
        out.append(CodeToken(start, end, name, tok.string, here))
    return out


def token_at(tokens: Sequence[CodeToken], length: int) -> list[int]:
    """For every character offset of a text of `length` characters, the index of the token covering it (-1: none)."""
    owner = [-1] * length
    for i, tok in enumerate(tokens):
        for c in range(tok.start, min(tok.end, length)):
            owner[c] = i
    return owner


def window_starts(source: str, tokens: Sequence[CodeToken]) -> list[int]:
    """Line starts where a model may begin reading: outside every bracket and every multi-line token."""
    inside = [False] * (len(source) + 1)
    for tok in tokens:
        for c in range(tok.start + 1, tok.end):  # inside a token (a multi-line string)
            inside[c] = True
    depth_open = [0] * (len(source) + 1)  # +1 at an opening bracket, -1 after its closing one
    for tok in tokens:
        if tok.kind == "OP" and tok.text in OPENING:
            depth_open[tok.start] += 1
        elif tok.kind == "OP" and tok.text in CLOSING:
            depth_open[tok.end] -= 1
    starts, depth = [], 0
    line_start = True
    for c in range(len(source)):
        depth += depth_open[c]
        if line_start and depth == 0 and not inside[c]:
            starts.append(c)
        line_start = source[c] == "\n"
    return starts


@dataclass(frozen=True)
class Window:
    """A stretch of one file that a model reads, and the tokens that lie wholly inside it."""

    file: int  # index of the file in the list it came from
    start: int
    text: str
    tokens: tuple[CodeToken, ...]  # offsets relative to `start`

    def seen_earlier(self) -> list[bool | None]:
        """Per token: for an identifier, whether the same name occurred as an identifier earlier in this window; else None."""
        seen: set[str] = set()
        out: list[bool | None] = []
        for tok in self.tokens:
            if tok.kind == "NAME" and not tok.is_keyword:
                out.append(tok.text in seen)
                seen.add(tok.text)
            else:
                out.append(None)
        return out

    def labels(self, task: str) -> list[int | None]:
        """Per token, its class index in TASKS[task], or None when the task does not label it."""
        check_choice("label task", task, tuple(TASKS))
        if task == "token_type":
            return [KINDS.index(t.kind) for t in self.tokens]
        if task == "keyword":
            return [int(t.is_keyword) if t.kind == "NAME" else None for t in self.tokens]
        if task == "depth":
            return [min(t.depth, 2) for t in self.tokens]
        return [None if s is None else int(s) for s in self.seen_earlier()]


def windows(source: str, file: int, size: int, tokens: Sequence[CodeToken] | None = None) -> Iterator[Window]:
    """Non-overlapping windows of at most `size` characters, each starting at a `window_starts` line start."""
    tokens = tokens_of(source) if tokens is None else tokens
    if tokens is None:
        return
    starts = window_starts(source, tokens)
    begin = 0
    for s in starts:
        if s < begin:
            continue
        end = min(s + size, len(source))
        inside = tuple(CodeToken(t.start - s, t.end - s, t.kind, t.text, t.depth)
                       for t in tokens if t.start >= s and t.end <= end)
        if inside:
            yield Window(file, s, source[s:end], inside)
        begin = end


def last_piece(offsets: Sequence[tuple[int, int]], char: int) -> int | None:
    """The index of the word piece whose character span (a fast tokenizer's offset mapping) holds `char`."""
    for i, (a, b) in enumerate(offsets):
        if a <= char < b:
            return i
    return None
