"""Post-processing of Vega-Lite specs: data goes to files, the page loads it by URL."""

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
