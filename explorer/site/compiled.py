"""Figures compiled to Vega ahead of time: the page skips the Vega-Lite compiler for a figure's first view.

Compiling Vega-Lite in the browser is about half of the time a figure takes to draw. Most readers
first see a figure as it opens: its default control values, on a screen wide enough for the wide
layout, or a phone's. For that view the build writes `spec.vg.json` beside each `spec.json`: the Vega
specs the page would compile for a wide and a narrow room, with the palette's tokens (`var(--fig-ink)`) and the room-dependent limits
(theme.js `ROOM`) left as placeholders that the page fills in. The page uses it only when the
Vega-Lite spec it is about to draw hashes to the recorded `key`, so any other view, a change to
the page scripts that this copy has not followed, or a stale file falls back to compiling, never
to a wrong picture. The browser tests check that every published figure's first view hits.

This module mirrors, for the first view only, what figures.js does before it compiles:
controls.js (`describeControls`, `narrow`, `patched`, `unbound`), layout.js (`wrappable`) and
theme.js (`configTemplate`).
"""

import copy
import decimal
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from explorer import jsonio

COMPILED = "spec.vg.json"
ROOM = {"less40": 987640, "less10": 987610}
FONT = {"label": 11, "title": 12, "header": 12, "heading": 13, "mark": 11}
FORMAT = 2
_MISSING = object()  # a parameter with no value: JavaScript's undefined, which JSON leaves out


# --- controls.js ------------------------------------------------------------------------------


def for_each_param(node: Any, fn: Callable[[dict], None]) -> None:
    if isinstance(node, list):
        for v in node:
            for_each_param(v, fn)
    elif isinstance(node, dict):
        params = node.get("params")
        if isinstance(params, list):
            for p in params:
                if isinstance(p, dict) and p.get("name") and not p.get("select"):
                    fn(p)
        for key, value in node.items():
            if key != "params":
                for_each_param(value, fn)


def _bound_input(param: dict) -> dict | None:
    bind = param.get("bind")
    return bind if isinstance(bind, dict) and bind.get("input") else None


def first_state(spec: dict) -> tuple[dict[str, Any], set[str]]:
    """The control values a figure opens with, and which of them are signals (the spec's parameters)."""
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    state: dict[str, Any] = {}
    for c in meta.get("controls") or []:
        state[c["name"]] = c["default"] if "default" in c else c["options"][0]
    extra = meta.get("params") or {}
    signals: list[tuple[dict, dict]] = []
    seen = set(state)

    def visit(param: dict) -> None:
        if param["name"] in seen:
            return
        more = extra.get(param["name"])
        if not _bound_input(param) and not more:
            return
        seen.add(param["name"])
        signals.append((param, more or {}))

    for_each_param(spec, visit)
    for param, more in signals:
        value = param.get("value", _MISSING)
        if more.get("by") and more.get("choices"):  # controls.js `narrow`
            options = more.get("options") or (_bound_input(param) or {}).get("options")
            picked = more["choices"].get(_js_string(state.get(more["by"]))) or {}
            options = picked.get("options") or options
            value = picked["value"] if "value" in picked else (options[0] if options else value)
        state[param["name"]] = value
    return state, {p["name"] for p, _ in signals}


def patched(spec: dict, state: dict) -> dict:
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    out = None
    for c in meta.get("controls") or []:
        edits = (c.get("patches") or {}).get(_js_string(state[c["name"]]))
        if not edits:
            continue
        out = out or copy.deepcopy(spec)
        for pointer, value in edits.items():
            keys = pointer.split("/")[1:]
            node: Any = out
            for key in keys[:-1]:
                node = node[int(key)] if isinstance(node, list) else (node or {}).get(key)
            if isinstance(node, list):
                node[int(keys[-1])] = value
            elif isinstance(node, dict):
                node[keys[-1]] = value
    return out or spec


def unbound(spec: dict, signal_state: dict) -> dict:
    out = copy.deepcopy(spec)

    def visit(param: dict) -> None:
        if _bound_input(param):
            del param["bind"]
        if param["name"] in signal_state:
            if signal_state[param["name"]] is _MISSING:
                param.pop("value", None)
            else:
                param["value"] = signal_state[param["name"]]

    for_each_param(out, visit)
    return out


# --- layout.js ---------------------------------------------------------------------------------


def wrappable(spec: dict) -> dict:
    out = copy.deepcopy(spec)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, dict):
            if isinstance(node.get("hconcat"), list):
                items = list(node.items())
                node.clear()
                for k, v in items:  # same key order as JavaScript's (concat appended, hconcat deleted)
                    if k != "hconcat":
                        node[k] = v
                node["concat"] = dict(items)["hconcat"]
                node["columns"] = len(node["concat"])
            for v in list(node.values()):
                walk(v)

    walk(out)
    return out


def narrow_legends(spec: dict) -> dict:
    """layout.js `narrowLegends`: side legends move below their views (in place)."""

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, dict):
            legend = node.get("legend")
            if isinstance(legend, dict) and legend.get("orient") in ("left", "right"):
                node["legend"] = {**legend, "orient": "bottom", "direction": "horizontal"}
            for v in list(node.values()):
                walk(v)

    walk(spec)
    return spec


def first_view(spec: dict, narrow: bool = False) -> dict:
    """The Vega-Lite spec figures.js draws first (before its layout passes), on a wide or a narrow screen."""
    state, signals = first_state(spec)
    view = wrappable(unbound(patched(spec, state), {k: v for k, v in state.items() if k in signals}))
    return narrow_legends(view) if narrow else view


# --- theme.js -----------------------------------------------------------------------------------


def config_template(narrow: bool = False) -> dict:
    ink, muted, rule, font = "var(--fig-ink)", "var(--fig-muted)", "var(--fig-rule)", "var(--fig-font)"
    axis = {
        "labelColor": muted, "titleColor": ink, "domainColor": muted, "tickColor": muted, "gridColor": rule,
        "labelFontSize": FONT["label"], "titleFontSize": FONT["title"], "titleFontWeight": "normal", "labelFont": font,
        "titleFont": font, "labelLimit": 120 if narrow else 180, "titleLimit": ROOM["less40"],
    }  # fmt: skip
    legend = {
        "labelColor": ink, "titleColor": ink, "labelFontSize": FONT["label"], "titleFontSize": FONT["title"],
        "titleFontWeight": "normal", "labelFont": font, "titleFont": font, "labelLimit": 140 if narrow else 220,
        "titleLimit": ROOM["less40"], **({"orient": "bottom", "direction": "horizontal", "columns": 2} if narrow else {}),
    }  # fmt: skip
    return {
        "background": None,
        "font": font,
        "view": {"stroke": rule},
        "axis": axis,
        "legend": legend,
        "header": {"labelColor": ink, "titleColor": ink, "labelFontSize": FONT["header"], "titleFontSize": FONT["heading"],
                   "labelFont": font, "titleFont": font, "titleFontWeight": "normal", "labelLimit": 140 if narrow else 240},
        "title": {"color": ink, "subtitleColor": muted, "fontSize": FONT["heading"], "subtitleFontSize": FONT["label"],
                  "fontWeight": "normal", "font": font, "anchor": "start", "limit": ROOM["less10"]},
        "text": {"color": ink, "fontSize": FONT["mark"], "font": font},
        "mark": {"color": "var(--fig-s1)"},
        "rule": {"color": muted},
        "range": {"category": [f"var(--fig-s{i})" for i in range(1, 11)]},
        "style": {"guide-label": {"fill": muted}, "guide-title": {"fill": ink}, "group-title": {"fill": ink}},
    }  # fmt: skip


# --- the key: the same string and hash as figures.js `viewKey` ------------------------------------


def _js_number(x: float | int) -> str:
    """A number as JavaScript's String(x) writes it (Python writes 1.0, 1e-05; JavaScript 1, 0.00001)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    sign, digits, exp = decimal.Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    n = len(digits) + exp  # value = 0.ds x 10^n
    k = len(ds)
    if k <= n <= 21:
        body = ds + "0" * (n - k)
    elif 0 < n <= 21:
        body = ds[:n] + "." + ds[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + ds
    else:
        e = n - 1
        body = ds[0] + ("." + ds[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return ("-" if sign else "") + body


def _js_string(value: Any) -> str:
    """String(value) in JavaScript, for the values a control can take."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _js_number(value)
    return str(value)


def canonical(node: Any) -> str:
    """JSON with sorted keys and JavaScript's number format: the string both sides hash."""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (int, float)):
        return _js_number(node)
    if isinstance(node, str):
        return json.dumps(node, ensure_ascii=False)
    if isinstance(node, list):
        return "[" + ",".join(canonical(v) for v in node) + "]"
    if isinstance(node, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(node[k]) for k in sorted(node)) + "}"
    raise TypeError(f"not JSON: {type(node).__name__}")


def view_key(view: dict) -> str:
    """FNV-1a over the canonical string's UTF-16 code units, twice (64 bits), as hex: figures.js `viewKey`."""
    units = canonical(view).encode("utf-16-le")
    a, b = 0x811C9DC5, 0x9747B28C
    for i in range(0, len(units), 2):
        u = units[i] | (units[i + 1] << 8)
        a = ((a ^ u) * 0x01000193) & 0xFFFFFFFF
        b = ((b ^ u) * 0x01000193) & 0xFFFFFFFF
    return f"{a:08x}{b:08x}"


# --- compile and write ----------------------------------------------------------------------------


def inline_values(spec: Any, pointer: str = "") -> dict[str, str]:
    """canonical(values) -> JSON pointer, for every inline `values` array and named dataset of a spec."""
    found: dict[str, str] = {}
    if isinstance(spec, dict):
        for key, value in spec.items():
            here = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            if isinstance(value, list) and (key == "values" or pointer == "/datasets") and value:
                found.setdefault(canonical(value), here)
            else:
                found.update({k: v for k, v in inline_values(value, here).items() if k not in found})
    elif isinstance(spec, list):
        for i, value in enumerate(spec):
            found.update({k: v for k, v in inline_values(value, f"{pointer}/{i}").items() if k not in found})
    return found


def _values_by_reference(vega: dict, known: dict[str, str]) -> None:
    """Data the published spec already holds is written as {"$ref": pointer into spec.json}: the page
    fetched spec.json anyway, so the compiled file need not carry it twice (figures.js `fromRefs`)."""

    def visit(node: dict) -> None:
        for entry in node.get("data") or []:
            values = entry.get("values")
            if isinstance(values, list) and values and canonical(values) in known:
                entry["values"] = {"$ref": known[canonical(values)]}
        for mark in node.get("marks") or []:
            if mark.get("type") == "group":
                visit(mark)

    visit(vega)


def compile_first_view(spec: dict) -> dict[str, Any]:
    """{format, wide: {key, vega}, narrow: {key, vega}}: the first view compiled with the token config."""
    import vl_convert

    from explorer.pipeline.spec import vega_lite_version

    known = inline_values(spec)
    out: dict[str, Any] = {"format": FORMAT}
    for layout in ("wide", "narrow"):
        view = first_view(spec, narrow=layout == "narrow")
        work = copy.deepcopy(view)
        work.pop("usermeta", None)
        vega = vl_convert.vegalite_to_vega(work, vl_version=vega_lite_version(spec), config=config_template(narrow=layout == "narrow"))
        _values_by_reference(vega, known)
        out[layout] = {"key": view_key(view), "vega": vega}
    return out


def spec_dirs(figures: Path) -> Iterator[Path]:
    """Every folder under `figures` that holds a published spec.json (models/<name>/<id>/ too)."""
    for spec in sorted(figures.rglob("spec.json")):
        if ".staging" not in spec.parts and not any(p.endswith(".old") for p in spec.parts):
            yield spec.parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_fresh(folder: Path) -> bool:
    target = folder / COMPILED
    if not target.exists():
        return False
    try:
        recorded = json.loads(target.read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("format") == FORMAT and recorded.get("spec_sha256") == _sha256(folder / "spec.json")


def write_compiled(folder: Path) -> bool:
    """Write folder/spec.vg.json if it is missing or older than spec.json; True if it was written."""
    if is_fresh(folder):
        return False
    spec_file = folder / "spec.json"
    try:
        spec = json.loads(spec_file.read_text())
    except ValueError as exc:
        raise ValueError(f"{spec_file}: line {exc.lineno}: not JSON ({exc.msg})") from exc  # type: ignore[attr-defined]
    out = {**compile_first_view(spec), "spec_sha256": _sha256(spec_file)}
    jsonio.write_atomic(folder / COMPILED, json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
    return True


def refresh(figures: Path) -> list[str]:
    """Bring every figure's compiled first view up to date; the folders written, relative to `figures`.

    A figure whose spec cannot be compiled keeps no compiled copy (the page compiles it itself)
    and is reported on one line; the others go on."""
    written = []
    for folder in spec_dirs(figures):
        try:
            if write_compiled(folder):
                written.append(folder.relative_to(figures).as_posix())
        except Exception as exc:  # one bad figure never stops the others
            (folder / COMPILED).unlink(missing_ok=True)
            print(f"{folder.relative_to(figures).as_posix()}: no compiled first view ({str(exc).splitlines()[0][:200]})")
    return written
