"""Companion notebooks: rerun an article's experiment at smoke scale and draw its figure, offline.

Every article has a notebook beside it (`docs/<section>/<article>.notebook.py`, a jupytext percent
script) that a reader opens in Jupyter (or runs cell by cell in an editor). It uses this module:

    from explorer import notebook

    fig = notebook.figure("zoo-loss")    # the producer, run through explorer.pipeline at smoke scale
    fig                                  # drawn in the notebook with the site's own Vega bundle
    fig.claims                           # the numbers the article quotes, as this run measured them
    notebook.show(chart)                 # any Altair chart (or Vega-Lite dict), drawn the same way
    print(notebook.source("zoo-loss"))   # the producer's code

`figure` builds into `tests/smoke-figures/` like the tests do, so a figure the tests (or an earlier
run) already built at that scale is read back instead of recomputed, and trained models come from
`.cache/` as they do for `make figures`.

A chart is drawn as HTML that needs nothing from outside: a static SVG picture (made here by the
pinned vl-convert), which a small script replaces by the interactive chart once it has loaded the
site's Vega bundle (`docs/assets/vendor/vega-bundle.js`, written by `python -m explorer vendor`):
from the site itself when the HTML sits in one of its pages, from Jupyter's `files/` route when the
notebook runs under Jupyter started at or above the checkout. Where neither works (an editor's
notebook view), the picture stays. Colour tokens (`var(--fig-ink)`, explorer.charts) are resolved to
the site's light palette, since a notebook has no page stylesheet to read them from.
"""

from __future__ import annotations

import base64
import contextlib
import html
import inspect
import itertools
import json
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer import jsonio, paths

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto in a kernel without ipywidgets: text bars

STYLESHEET = paths.DOCS / "assets" / "stylesheets" / "figures.css"
BUNDLE = paths.VENDOR / "vega-bundle.js"
TOKEN = re.compile(r"var\(--(fig-[a-z0-9-]+)\)")
_ids = itertools.count()


class NotebookError(RuntimeError):
    """A figure could not be built or read back; the message says why in one line."""


def palette() -> dict[str, str]:
    """The light palette's token values (`fig-ink` -> `#1f2328`), read from the site's stylesheet."""
    text = STYLESHEET.read_text()
    block = text[text.index(":root"):]
    block = block[:block.index("}")]
    return dict(re.findall(r"--(fig-[a-z0-9-]+):\s*([^;]+);", block))


def resolve_tokens(node: Any, values: dict[str, str] | None = None) -> Any:
    """A copy of a spec with every var(--fig-...) token replaced by its light-palette value."""
    values = palette() if values is None else values
    if isinstance(node, str):
        return TOKEN.sub(lambda m: values.get(m.group(1), "#888888").strip(), node) if "var(--fig-" in node else node
    if isinstance(node, list):
        return [resolve_tokens(v, values) for v in node]
    if isinstance(node, dict):
        return {k: resolve_tokens(v, values) for k, v in node.items()}
    return node


def vega_config(values: dict[str, str] | None = None) -> dict[str, Any]:
    """The look of the site's figures (docs/assets/javascripts/explorer/theme.js), light palette."""
    v = palette() if values is None else values
    ink, muted, rule = v["fig-ink"], v["fig-muted"], v["fig-rule"]
    return {
        "background": "#ffffff",
        "view": {"stroke": rule},
        "axis": {"labelColor": muted, "titleColor": ink, "domainColor": muted, "tickColor": muted, "gridColor": rule,
                 "labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal"},
        "legend": {"labelColor": ink, "titleColor": ink, "labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal"},
        "header": {"labelColor": ink, "titleColor": ink, "labelFontSize": 12, "titleFontSize": 13, "titleFontWeight": "normal"},
        "title": {"color": ink, "subtitleColor": muted, "fontSize": 13, "fontWeight": "normal", "anchor": "start"},
        "text": {"color": ink, "fontSize": 11},
        "mark": {"color": v["fig-s1"]},
        "rule": {"color": muted},
        "range": {"category": [v[f"fig-s{i}"] for i in range(1, 11)]},
    }


def _spec_of(chart: Any) -> dict[str, Any]:
    from explorer.pipeline.spec import spec_of

    return spec_of(chart)


def _defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """The value each control starts at: data controls' defaults and parameters' initial values."""
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    state: dict[str, Any] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for param in node.get("params") or []:
                if isinstance(param, dict) and "name" in param and "value" in param:
                    state.setdefault(param["name"], param["value"])
            for key, value in node.items():
                if key != "usermeta":
                    visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(spec)
    for control in meta.get("controls") or []:
        state[control["name"]] = control.get("default", control["options"][0])
    return state


def _patched(spec: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Apply the JSON-pointer patches of the chosen data controls (docs/assets/javascripts/explorer/controls.js)."""
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    for control in meta.get("controls") or []:
        for pointer, value in ((control.get("patches") or {}).get(str(state.get(control["name"]))) or {}).items():
            keys = pointer.split("/")[1:]
            node = spec
            for key in keys[:-1]:
                node = node[int(key)] if isinstance(node, list) else node[key]
            node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
    return spec


def inline(spec: dict[str, Any], folder: Path | None = None) -> dict[str, Any]:
    """A self-contained copy of a spec: data files (`data/x.json`) and the file a data control
    starts on (`usermeta.explorer.source`) inlined from `folder`, patches of the default choices
    applied, and `usermeta` dropped."""
    spec = json.loads(jsonio.dumps(spec))
    meta = (spec.get("usermeta") or {}).get("explorer") or {}
    state = _defaults(spec)
    spec = _patched(spec, state)
    datasets = dict(spec.get("datasets") or {})
    if folder is not None:
        source = meta.get("source")
        if source:
            url = re.sub(r"\{(\w+)\}", lambda m: str(state[m.group(1)]).lower() if isinstance(state[m.group(1)], bool) else str(state[m.group(1)]), source["url"])
            payload = jsonio.read_json(folder / url)
            for name in source["datasets"]:
                datasets[name] = payload.get(name) or []

        def rewrite(node: Any) -> Any:
            if isinstance(node, dict):
                url = node.get("url")
                if isinstance(url, str) and not re.match(r"^([a-z]+:)?//", url) and (folder / url).is_file():
                    name = Path(url).stem
                    datasets.setdefault(name, jsonio.read_json(folder / url))
                    return {"name": name, **{k: v for k, v in node.items() if k != "url"}}
                return {k: rewrite(v) for k, v in node.items()}
            if isinstance(node, list):
                return [rewrite(v) for v in node]
            return node

        spec = rewrite(spec)
    spec.pop("usermeta", None)
    if datasets:
        spec["datasets"] = datasets
    return spec


@dataclass
class Chart:
    """A chart ready to draw in a notebook: `_repr_html_` is the static picture plus the script that
    makes it interactive with the local Vega bundle."""

    spec: dict[str, Any]  # self-contained Vega-Lite, tokens resolved
    title: str = ""

    def svg(self) -> str:
        import vl_convert

        from explorer.pipeline.spec import vega_lite_version

        return vl_convert.vegalite_to_svg(self.spec, vl_version=vega_lite_version(self.spec), config=vega_config())

    def html(self, bundle: Path | None = None, cwd: Path | None = None) -> str:
        bundle = Path(bundle or BUNDLE).resolve()
        cwd = Path(cwd or os.getcwd()).resolve()
        relative = Path(os.path.relpath(bundle, cwd)).as_posix()
        uid = f"explorer-nb-{os.getpid()}-{next(_ids)}"
        picture = base64.b64encode(self.svg().encode()).decode()
        spec = json.dumps(self.spec, separators=(",", ":")).replace("</", "<\\/")
        options = json.dumps({"actions": False, "renderer": "svg", "config": vega_config()})
        label = html.escape(self.title or "chart", quote=True)
        return (
            f'<div class="explorer-notebook-chart" id="{uid}">'
            f'<img class="explorer-notebook-chart__picture" alt="{label}" src="data:image/svg+xml;base64,{picture}">'
            f'<div class="explorer-notebook-chart__view"></div>'
            f'<script type="application/json" class="explorer-notebook-chart__spec">{spec}</script></div>'
            f"<script>{_LOADER.replace('__ID__', uid).replace('__BUNDLE__', json.dumps(relative)).replace('__OPTIONS__', options)}</script>"
        )

    def _repr_html_(self) -> str:
        return self.html()


# Runs where the HTML lands: a page of the site (the bundle beside the site's figures.css) or
# Jupyter (its files/ route, the notebook's folder taken from the address). Scripts are loaded
# one after the other until vegaEmbed exists; an AMD loader, if any, is hidden meanwhile so the
# bundle sets the global. Without a bundle the static picture stays, with no error.
_LOADER = r"""(function () {
  var root = document.getElementById("__ID__");
  if (!root || root.dataset.drawn) return;
  root.dataset.drawn = "pending";
  var spec = JSON.parse(root.querySelector(".explorer-notebook-chart__spec").textContent);
  var urls = [];
  var css = document.querySelector('link[href*="assets/stylesheets/figures.css"]');
  if (css) urls.push(new URL("../vendor/vega-bundle.js", css.href).href);
  var m = location.pathname.match(/^(.*?\/)(?:lab\/(?:workspaces\/[^\/]+\/)?tree|notebooks|tree|doc\/tree)\/(.*)$/);
  if (m) {
    var parts = decodeURIComponent(m[2]).split("/").slice(0, -1).concat(__BUNDLE__.split("/")), path = [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i] === "..") { if (!path.length) { path = null; break; } path.pop(); }
      else if (parts[i] && parts[i] !== ".") path.push(parts[i]);
    }
    if (path) urls.push(m[1] + "files/" + path.map(encodeURIComponent).join("/"));
  }
  function draw() {
    window.vegaEmbed(root.querySelector(".explorer-notebook-chart__view"), spec, __OPTIONS__).then(function () {
      root.querySelector(".explorer-notebook-chart__picture").hidden = true;
      root.dataset.drawn = "true";
    }).catch(function (e) { root.dataset.drawn = "failed"; console.warn("explorer chart:", e); });
  }
  function next() {
    if (window.vegaEmbed) return draw();
    var url = urls.shift();
    if (!url) { root.dataset.drawn = "picture"; return; }
    var amd = window.define, script = document.createElement("script");
    window.define = undefined;
    script.src = url;
    script.onload = function () { window.define = amd; next(); };
    script.onerror = function () { window.define = amd; script.remove(); next(); };
    document.head.appendChild(script);
  }
  next();
})();"""


def show(chart: Any, folder: Path | None = None, title: str = "") -> Chart:
    """An Altair chart or Vega-Lite dict, made self-contained and ready to draw (the cell's value)."""
    return Chart(resolve_tokens(inline(_spec_of(chart), folder)), title)


@dataclass
class Figure:
    """One figure as the pipeline built it: its spec, the claims its producer recorded, its folder."""

    id: str
    folder: Path
    spec: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    caption: str = ""
    status: str = ""

    def chart(self) -> Chart:
        return show(self.spec, self.folder, self.title)

    def _repr_html_(self) -> str:
        caption = f"<p><strong>{html.escape(self.title)}</strong> {html.escape(self.caption)}</p>"
        return caption + self.chart().html()


@contextlib.contextmanager
def _from_checkout():
    """Run as `make figures` does, from the checkout with it on sys.path: a producer that hands work to
    worker processes (joblib) has them import build_figures.<article> by name, from there."""
    before, root = os.getcwd(), str(paths.REPO)
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)
        if added and root in sys.path:
            sys.path.remove(root)


def figure(figure_id: str, scale: str = "smoke", force: bool = False) -> Figure:
    """Build one figure through explorer.pipeline (the producer gets a FigureContext at `scale`) into
    the scale's own folder, `tests/smoke-figures/` for smoke, and read it back. A figure already up
    to date there is not rebuilt; `scale="full"` writes into docs/figures/, as `make figures` does."""
    from explorer.pipeline import build as pipeline

    out = pipeline.default_out(scale)
    with _from_checkout():
        [outcome] = [o for o in pipeline.build([figure_id], scale=scale, out=out, force=force, progress=False) if o.id == figure_id]
    if outcome.status not in ("built", "fresh"):
        raise NotebookError(f"{figure_id}: {outcome.status}: {outcome.message}")
    entry = pipeline.read_manifest(out)[figure_id]
    folder = out / figure_id
    return Figure(figure_id, folder, jsonio.read_json(folder / "spec.json"), entry.get("claims", {}),
                  entry.get("title", ""), entry.get("caption", ""), outcome.status)


def producer(figure_id: str):
    """The function registered for `figure_id` (its module in build_figures/ imported once)."""
    from explorer.pipeline.index import scan
    from explorer.pipeline import registry

    info = scan().figures.get(figure_id)
    if info is None:
        from explorer.errors import UnknownName

        raise UnknownName("figure id", figure_id, scan().figures)
    registry.import_module(paths.BUILD_FIGURES / f"{info.article}.py")
    return registry._REGISTRY[figure_id].producer


def source(figure_id: str) -> str:
    """The producer's source code, to read what the experiment does."""
    return inspect.getsource(producer(figure_id))


def execute(path: Path, timeout: int = 600, out: Path | None = None):
    """Run every cell of a notebook (a jupytext percent script or .ipynb) in a fresh kernel, in the
    notebook's own folder; raise on the first cell that fails. Needs the tools of `make tools`
    (jupytext, nbclient, ipykernel) on the path: `PYTHONPATH=.tools python -m explorer.notebook PATH`.
    The kernel is this Python (the venv's), so the notebook imports what `make setup` installed."""
    import jupytext
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = jupytext.read(path)
    env = _kernel_env()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    if out is not None:
        jupytext.write(nb, out, fmt="ipynb")
    return nb


TOOLS = paths.REPO / ".tools"


def _kernel_env() -> dict[str, str]:
    """The kernel's environment: this one, with the tools of `make tools` (ipykernel) on the path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TOOLS), os.environ.get("PYTHONPATH", "")]))}


def executed_name(path: Path) -> str:
    """docs/x/article.notebook.py -> article.ipynb, the executed copy's file name."""
    return Path(path).name.removesuffix(".py").removesuffix(".notebook") + ".ipynb"


def execute_in_one_kernel(notebooks: list[Path], timeout: int = 600, out: Path | None = None) -> dict[Path, tuple[bool, str, float]]:
    """Run several notebooks one after another in one kernel, which imports torch once instead of once
    per notebook (seconds each): before each, `%reset -f` empties the namespace, so a notebook that
    leans on a name another defined still fails, and the kernel moves into the notebook's folder.
    After a failure the kernel restarts. Returns {path: (ran, error message, seconds)}."""
    import time

    import jupytext
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    env = _kernel_env()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(paths.REPO))
    results: dict[Path, tuple[bool, str, float]] = {}
    try:
        for path in notebooks:
            started = time.perf_counter()
            path = Path(path).resolve()
            nb = jupytext.read(path)
            nb.cells.insert(0, nbformat.v4.new_code_cell(f"%reset -f\nimport os as _os\n_os.chdir({str(path.parent)!r})\ndel _os"))
            client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3", allow_errors=False,
                                    resources={"metadata": {"path": str(path.parent)}})
            try:
                client.execute()
                results[path] = (True, "", time.perf_counter() - started)
            except Exception as exc:  # CellExecutionError carries the cell and its traceback
                results[path] = (False, str(exc), time.perf_counter() - started)
                km.restart_kernel(now=True)
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
            nb.cells.pop(0)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                jupytext.write(nb, out / executed_name(path), fmt="ipynb")
    finally:
        km.shutdown_kernel(now=True)
    return results


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m explorer.notebook", description=execute.__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write each executed notebook (with outputs) into this folder")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    parser.add_argument("--one-kernel", action="store_true", help="run them all in one kernel, reset between notebooks (what the tests do)")
    parser.add_argument("--report", type=Path, help="write {notebook: [ran, error, seconds]} as JSON here")
    args = parser.parse_args(argv)
    if args.one_kernel:
        results = execute_in_one_kernel(args.notebooks, args.timeout, args.out)
    else:
        results = {}
        for path in args.notebooks:
            started = time.perf_counter()
            target = args.out / executed_name(path) if args.out else None
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
            try:
                execute(path, args.timeout, target)
                results[Path(path).resolve()] = (True, "", time.perf_counter() - started)
            except Exception as exc:  # CellExecutionError carries the cell and its traceback
                results[Path(path).resolve()] = (False, str(exc), time.perf_counter() - started)
    for path, (ran, error, seconds) in results.items():
        if ran:
            print(f"ran {paths.display(path)} in {seconds:.1f} s")
        else:
            print(f"failed {paths.display(path)}: {error}", file=sys.stderr)
    if args.report is not None:
        args.report.write_text(json.dumps({str(p): list(r) for p, r in results.items()}))
    return 0 if all(ran for ran, _, _ in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
