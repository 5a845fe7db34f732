"""The inputs the transformer articles probe language models with, and how their tokens are shown.

Three kinds of prompt: Python code that repeats its identifiers, prose as found in docstrings, and
repeated random tokens (the standard probe for induction). Tokens are shown with their whitespace
made visible, since in code a space, a newline and an indent are tokens that matter.
"""

import torch
from jaxtyping import Int

from explorer.errors import check_choice

VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "⏎", "\t": "→"})

TEXT_PROMPTS = {
    "code": (
        "def scale_points(points, factor):\n"
        "    scaled = []\n"
        "    for point in points:\n"
        "        scaled.append(point * factor)\n"
        "    return scaled\n"
    ),
    "prose": (
        '    """Return the first line of the file, or an empty string if the file is empty.\n\n'
        "    The file is read lazily: only the first line is loaded.\n"
        '    """\n'
    ),
}
PROMPT_KINDS = ("code", "prose", "repeat")


def visible(text: str) -> str:
    """'·' for a space, '⏎' for a newline, '→' for a tab."""
    return text.translate(VISIBLE_WHITESPACE)


def random_repeat(
    n_batch: int, half: int, vocab: Int[torch.Tensor, "vocab"], generator: torch.Generator, prefix: list[int]
) -> Int[torch.Tensor, "batch pos"]:
    """prefix + r + r, r drawn uniformly from `vocab`: after the first copy, every token is predictable."""
    first = vocab[torch.randint(len(vocab), (n_batch, half), generator=generator)]  # (batch, half)
    head = torch.tensor(prefix, dtype=first.dtype).expand(n_batch, len(prefix))
    return torch.cat([head, first, first], dim=1)


def check_prompt(kind: str) -> None:
    check_choice("prompt", kind, PROMPT_KINDS)
