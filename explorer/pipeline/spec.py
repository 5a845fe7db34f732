"""Post-processing of Vega-Lite specs: data goes to files, the page loads it by URL."""

import re
from typing import Any


def externalize_datasets(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """Move Altair's top-level `datasets` out of the spec and point every reference at data/<name>.json.

    Named data sources with no inline values (fed by page scripts, e.g. the playground) are left alone.
    """
    spec = dict(spec)
    datasets = spec.pop("datasets", {}) or {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("name"), str) and node["name"] in datasets and "values" not in node:
                rest = {k: v for k, v in node.items() if k != "name"}
                return {"url": f"data/{node['name']}.json", **rest}
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return rewrite(spec), datasets


class SpecError(Exception):
    """A producer's result is not a chart, or its spec does not compile to Vega."""


def spec_of(chart: Any) -> dict[str, Any]:
    """The Vega-Lite spec of what a producer returned: an Altair chart (or a spec dict)."""
    if isinstance(chart, dict):
        return chart
    import altair as alt

    if not isinstance(chart, alt.TopLevelMixin):
        raise SpecError(f"the producer returned {type(chart).__name__}, not an Altair chart")
    return chart.to_dict()


def vega_lite_version(spec: dict[str, Any]) -> str:
    """The "major.minor" Vega-Lite version a spec declares in `$schema` (Altair's own when absent)."""
    import vl_convert

    schema = spec.get("$schema")
    if schema is None:
        import altair as alt

        schema = alt.SCHEMA_URL
    match = re.search(r"/vega-lite/v(\d+)\.(\d+)", str(schema))
    known = vl_convert.get_vegalite_versions()
    version = f"{match.group(1)}.{match.group(2)}" if match else None
    if version not in known:
        raise SpecError(f"$schema {schema!r} is not a Vega-Lite version vl-convert can compile (known: {', '.join(known)})")
    return version


def check_compiles(spec: dict[str, Any]) -> None:
    """Compile the spec to Vega with the pinned vl-convert; SpecError with the compiler's first line if it fails."""
    import vl_convert

    version = vega_lite_version(spec)
    try:
        vl_convert.vegalite_to_vega(spec, vl_version=version)
    except Exception as exc:  # vl-convert raises ValueError with the JavaScript error and its stack
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if not line.startswith("Vega-Lite to Vega conversion failed")), lines[0] if lines else type(exc).__name__)
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise SpecError(f"the spec does not compile to Vega (Vega-Lite {version}): {detail}") from exc
