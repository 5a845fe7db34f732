"""Write docs/contributing/reference.md, the contributor's API reference, from the docstrings.

`python -m explorer reference` rewrites the page; `--check` (and a test) fail when the committed
page no longer matches the code, so the page is regenerated with the change that made it stale.
The site build stays a plain MkDocs build: no plugin, nothing read at build time.
"""

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer import paths

PAGE = paths.DOCS / "contributing" / "reference.md"

# (section title, module, names; None = every public function and class the module defines)
SECTIONS: list[tuple[str, str, list[str] | None]] = [
    ("Figures", "explorer.pipeline", ["figure", "FigureContext"]),
    ("Model cache", "explorer.cache", ["cached"]),
    ("Long runs", "explorer.artifacts", ["long_run", "Trained", "load", "Artifact", "train"]),
    ("Shared chart helpers", "explorer.charts", None),
]

INTRO = """# Reference

The functions a producer calls, from their docstrings. This page is generated: edit the
docstrings and run `python -m explorer reference` (a test fails when the page is out of date).
"""


def render() -> str:
    parts = [INTRO]
    for title, module_name, names in SECTIONS:
        parts.append(f"## {title}\n")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            parts.append(f"`{module_name}` cannot be imported here ({exc}).\n")
            continue
        source = paths.display(Path(inspect.getsourcefile(module)))
        doc = inspect.getdoc(module) if names is None else None
        parts.append(f"From `{source}`.\n")
        if doc:
            parts.append(_text(doc) + "\n")
        for name in names or _public(module):
            parts.append(_entry(name, getattr(module, name)))
    return _escape("\n".join(parts)).rstrip() + "\n"


def _public(module: Any) -> list[str]:
    """Public functions and classes defined in the module, in source order."""
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            found.append((inspect.getsourcelines(obj)[1], name))
    return [name for _, name in sorted(found)]


def _entry(name: str, obj: Any) -> str:
    kind = "class" if inspect.isclass(obj) else "function"
    lines = [f"### `{name}`\n", "```python", f"{'class ' if kind == 'class' else ''}{name}{_signature(obj)}", "```\n"]
    doc = inspect.getdoc(obj)
    if doc and not (kind == "class" and doc.startswith(f"{name}(")):  # dataclasses without a docstring
        lines.append(_text(doc) + "\n")
    if kind == "class":
        for member, value in _members(obj):
            lines.append(f"- `{member}`{_member_signature(value)}: {_first_paragraph(value)}")
        lines.append("")
    return "\n".join(lines)


def _signature(obj: Callable) -> str:
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    text = re.sub(r"'((?:[a-z_]+\.)+\w+|[A-Z]\w*)'", r"\1", text)  # forward references: 'torch.device' -> torch.device
    text = re.sub(r"\b(?:collections\.abc|typing|pathlib|types|altair\.vegalite\.v6\.(?:schema\.core|api)|explorer(?:\.\w+)+)\.(?=\w)", "", text)
    return text.replace("NoneType", "None").replace("~T", "T")


def _members(cls: type) -> list[tuple[str, Any]]:
    found = []
    for member, value in vars(cls).items():
        if member.startswith("_"):
            continue
        if isinstance(value, property) or inspect.isfunction(value):
            if inspect.getdoc(value):
                found.append((member, value))
    return found


def _member_signature(value: Any) -> str:
    if isinstance(value, property):
        return ""
    signature = _signature(value)
    return signature.replace("(self, ", "(", 1).replace("(self)", "()", 1)


def _first_paragraph(value: Any) -> str:
    doc = inspect.getdoc(value.fget if isinstance(value, property) else value) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _text(doc: str) -> str:
    """A docstring as Markdown: `Example::` blocks become fenced code."""
    out, lines, i = [], doc.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and i + 1 < len(lines):
            out.append(line.rstrip()[:-1])
            block, i = [], i + 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            out += ["", "```python", *_trim(block), "```", ""]
            continue
        if line.startswith("    ") and (not out or not out[-1].strip()):  # an indented block after a blank line
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            out += ["```python", *_trim(block), "```", ""]
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip()


def _trim(block: list[str]) -> list[str]:
    while block and not block[0].strip():
        block.pop(0)
    while block and not block[-1].strip():
        block.pop()
    return block


def _escape(markdown: str) -> str:
    """Shortcodes quoted in docstrings are shown, not expanded, by the shortcode extension."""
    return markdown.replace("\\{{", "{{").replace("{{", "\\{{")


def main(check: bool = False) -> int:
    text = render()
    current = PAGE.read_text() if PAGE.exists() else ""
    if check:
        if current != text:
            print(f"{paths.display(PAGE)} is out of date: run `python -m explorer reference`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        PAGE.write_text(text)
    print(paths.display(PAGE))
    return 0
