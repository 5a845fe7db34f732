"""Checks on a figure's spec.json shared by the article tests: palette tokens and training-step sliders."""

import re

COLOUR_KEYS = {"color", "fill", "stroke", "labelColor", "titleColor", "domainColor", "tickColor", "gridColor"}
CHANNELS = ("color", "fill", "stroke")
LITERAL = re.compile(r"^(#[0-9a-fA-F]{3,8}|rgba?\(.*\)|hsla?\(.*\)|[a-z]+)$")
NOT_COLOURS = {"none", "transparent", "currentcolor"}


def literal_colours(node, path: str = "") -> list[str]:
    """What in a Vega-Lite spec does not follow the page's palette: colours written as hex codes,
    rgb() or names instead of palette tokens (var(--fig-...)), named colour schemes, colour
    encodings left to Vega's default scheme, and marks left to Vega's default colour."""
    found = []
    if isinstance(node, dict):
        if "mark" in node:
            found += _unit_defaults(node, path)
        for key, value in node.items():
            where = f"{path}.{key}"
            if key == "resolve":
                continue
            if key in COLOUR_KEYS and isinstance(value, str) and LITERAL.match(value) and value.lower() not in NOT_COLOURS:
                found.append(f"{where} = {value}")
            elif key == "scheme":
                found.append(f"{where} = {value}")
            elif key == "range" and isinstance(value, list):
                found += [f"{where} = {v}" for v in value if isinstance(v, str) and LITERAL.match(v)]
            else:
                found += literal_colours(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += literal_colours(value, f"{path}[{i}]")
    return found


def _unit_defaults(unit: dict, path: str) -> list[str]:
    mark = unit["mark"] if isinstance(unit["mark"], dict) else {"type": unit["mark"]}
    encoding = unit.get("encoding", {})
    found = []
    for channel in CHANNELS:
        enc = encoding.get(channel)
        if isinstance(enc, dict) and "field" in enc and not (enc.get("scale") or {}).get("range"):
            found.append(f"{path}.encoding.{channel}: field {enc['field']!r} on Vega's default colour scheme")
    if not any(mark.get(k) for k in CHANNELS) and not any(c in encoding for c in CHANNELS):
        found.append(f"{path}.mark ({mark.get('type')}): Vega's default colour")
    return found


def step_slider(spec: dict, name: str) -> dict:
    """The panel entry of a training-step slider (explorer.charts.Panel.steps)."""
    return spec["usermeta"]["explorer"]["params"][name]
