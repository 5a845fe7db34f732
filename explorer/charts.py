"""Shared chart patterns for producers, so every figure looks and behaves alike.

- Colours that follow the page's light/dark palette: `INK`, `MUTED`, `ACCENT`, `SERIES`, and
  scales `sequential`, `diverging`, `series_scale`. They are CSS custom properties
  (`var(--fig-ink)`) that the page resolves before drawing; their values live in
  docs/assets/stylesheets/figures.css.
- One control panel per figure: `Panel` collects sliders (over training steps, with real step
  labels and a play button), selects and data controls, and writes the `usermeta.explorer` block
  the page script reads (docs/assets/javascripts/explorer/).
- `hover_rule`: a vertical rule that follows the pointer with a tooltip listing every series.
- Layout: views placed side by side (`alt.hconcat`) and wrapped facets (`facet=..., columns=n`)
  wrap onto new rows on narrow screens; a row x column facet cannot wrap, so prefer a wrapped
  facet or a concat of small charts for grids that grow with the model.

Example::

    panel = charts.Panel()
    step = panel.steps("step", steps)                     # slider showing "step 1,000", play button
    lines = charts.hover_rule(alt.Chart(frame), x="step", series="split", y="loss", names=["train", "test"])
    return panel.finish(alt.layer(lines, charts.now_rule(step)))
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt


def _token(name: str) -> str:
    return f"var(--fig-{name})"


INK = _token("ink")  # text and primary marks
MUTED = _token("muted")  # secondary text, reference lines
FAINT = _token("faint")  # de-emphasised marks (unselected, background series)
RULE = _token("rule")  # grid lines, cell borders
PAPER = _token("paper")  # the page background
ACCENT = _token("accent")  # the thing to look at: the current step, the chosen head
ACCENT_2 = _token("accent-2")
POS, NEG, ZERO = _token("pos"), _token("neg"), _token("zero")
SEQUENTIAL = (_token("seq-0"), _token("seq-1"), _token("seq-2"))
SEQ_FLIP = _token("seq-flip")  # the point of the sequential scale (0-1) past which text on it is paper, not ink
SERIES = tuple(_token(f"s{i}") for i in range(1, 11))

# Type sizes in CSS px: nothing under 10, so figures stay legible on a phone at their own size.
LABEL_SIZE = 11
SMALL_SIZE = 10


def sequential(domain: Sequence[float] = (0.0, 1.0), **scale: Any) -> alt.Scale:
    """One hue from a tinted zero to full strength: zero stays visible against the page (and
    against masked cells, which are not drawn)."""
    lo, hi = float(domain[0]), float(domain[-1])
    return alt.Scale(domain=[lo, (lo + hi) / 2, hi], range=list(SEQUENTIAL), interpolate="hcl", **scale)


def diverging(limit: float, **scale: Any) -> alt.Scale:
    """Negative blue, zero neutral (not white: it must not glow on the dark page), positive red."""
    limit = float(limit) or 1.0
    return alt.Scale(domain=[-limit, 0.0, limit], range=[NEG, ZERO, POS], interpolate="hcl", **scale)


def ink_on(field: str, domain: Sequence[float] = (0.0, 1.0)) -> dict:
    """Text colour for labels drawn on cells coloured by `sequential(domain)`: ink on the pale end,
    paper on the strong end, the switch placed per palette (SEQ_FLIP) so both contrast."""
    lo, hi = float(domain[0]), float(domain[-1])
    test = f"(datum[{field!r}] - {lo}) / {hi - lo or 1.0} > toNumber('{SEQ_FLIP}')"
    return alt.condition(test, alt.value(PAPER), alt.value(INK))


def series_scale(names: Sequence[str], colors: Sequence[str] | None = None) -> alt.Scale:
    """Categorical colours for named series, the same name always getting the same colour."""
    colors = list(colors) if colors else list(SERIES)
    return alt.Scale(domain=list(names), range=colors[: len(names)])


def step_labels(steps: Sequence[int], prefix: str = "") -> list[str]:
    return [f"{prefix}{int(s):,}" for s in steps]


@dataclass
class Panel:
    """The controls of one figure, drawn by the page as one panel above the chart.

    Signal controls (`slider`, `steps`, `select`, `radio`, `checkbox`) are Vega-Lite parameters; the
    panel replaces their default widgets, adds real labels, play buttons and URL state. Data
    controls (`data`) choose a file to load (`source`).
    """

    params: list[alt.Parameter] = field(default_factory=list)
    param_meta: dict[str, dict] = field(default_factory=dict)
    controls: list[dict] = field(default_factory=list)
    source_spec: dict | None = None

    def slider(self, name: str, values: Sequence[Any], *, label: str, labels: Sequence[str] | None = None,
               value: Any = None, play: bool = False, group: str = "", by: str = "",
               choices: dict[Any, dict] | None = None) -> alt.Parameter:
        """A slider over `values` (the signal takes the value itself); `labels` are what the reader sees.

        A slider whose range depends on a data control (positions of the chosen prompt) names that
        control in `by` and gives, per choice, {"options": [...], "labels": [...], "value": ...};
        choosing another file then bounds the slider by it and resets it to that choice's value.
        `values` is then the union of the choices' options (what a try link may name).
        """
        values = list(values)
        param = alt.param(name=name, value=values[-1] if value is None else value)
        meta: dict[str, Any] = {"label": label, "options": values, "kind": "slider", "play": play}
        if labels is not None:
            meta["labels"] = [str(x) for x in labels]
        if group:
            meta["group"] = group
        if by:
            if not choices:
                raise ValueError(f"slider {name!r}: `by={by!r}` needs `choices`")
            meta["by"] = by
            meta["choices"] = {str(k): {key: (list(v) if key != "value" else v) for key, v in choice.items()}
                               for k, choice in choices.items()}
        return self._add(param, meta)

    def steps(self, name: str, steps: Sequence[int], *, index: bool = False, label: str = "Training step",
              value: Any = None, play: bool = True, group: str = "") -> alt.Parameter:
        """A training-time slider: shows the step, plays through the checkpoints.

        With `index=True` the signal is the checkpoint's index (0, 1, ...) and the label its step.
        """
        steps = [int(s) for s in steps]
        values = list(range(len(steps))) if index else steps
        return self.slider(name, values, label=label, labels=step_labels(steps), value=value, play=play, group=group)

    def range(self, name: str, *, lo: float, hi: float, step: float, value: float, label: str,
              percent: bool = False, group: str = "") -> alt.Parameter:
        """A continuous slider (a temperature, a threshold)."""
        param = alt.param(name=name, value=value, bind=alt.binding_range(min=lo, max=hi, step=step, name=label))
        return self._add(param, {"label": label, "group": group, **({"format": "percent"} if percent else {})})

    def select(self, name: str, options: Sequence[Any], *, label: str, labels: Sequence[str] | None = None,
               value: Any = None, radio: bool = False, group: str = "") -> alt.Parameter:
        options = list(options)
        binding = (alt.binding_radio if radio else alt.binding_select)(
            options=options, name=label, **({"labels": [str(x) for x in labels]} if labels is not None else {}))
        param = alt.param(name=name, value=options[0] if value is None else value, bind=binding)
        return self._add(param, {"label": label, "group": group})

    def checkbox(self, name: str, *, label: str, value: bool = False, group: str = "") -> alt.Parameter:
        param = alt.param(name=name, value=value, bind=alt.binding_checkbox(name=label))
        return self._add(param, {"label": label, "group": group})

    def data(self, name: str, options: Sequence[Any], *, label: str, labels: Sequence[str] | None = None,
             default: Any = None, fresh: bool = False, group: str = "",
             patches: dict[Any, dict[str, Any]] | None = None) -> None:
        """A choice of data file; `fresh=True` redraws the view (clicked selections go back to defaults).

        `patches` ({choice: {"/json/pointer": value}}, needs `fresh`) edits the spec for a choice before
        it is drawn: a model with 12 heads per layer gets 12 narrower thumbnail columns.
        """
        if patches and not fresh:
            raise ValueError(f"data control {name!r}: patches apply when the view is redrawn, so they need fresh=True")
        options = list(options)
        control: dict[str, Any] = {"name": name, "label": label, "options": options,
                                   "default": options[0] if default is None else default}
        if labels is not None:
            control["labels"] = [str(x) for x in labels]
        if fresh:
            control["fresh"] = True
        if group:
            control["group"] = group
        if patches:
            control["patches"] = {str(k): v for k, v in patches.items() if v}
        self.controls.append(control)

    def source(self, url: str, datasets: Sequence[str], code: str | None = None) -> None:
        """Where data controls load from: `url` is a template over their names ("runs/{dataset}.json")."""
        self.source_spec = {"url": url, "datasets": list(datasets), **({"code": code} if code else {})}

    def _add(self, param: alt.Parameter, meta: dict) -> alt.Parameter:
        self.params.append(param)
        self.param_meta[param.name] = {k: v for k, v in meta.items() if v not in ("", None)}
        return param

    def usermeta(self, **extra: Any) -> dict:
        block: dict[str, Any] = {}
        if self.controls:
            block["controls"] = self.controls
        if self.source_spec:
            block["source"] = self.source_spec
        if self.param_meta:
            block["params"] = self.param_meta
        block.update(extra)
        return {"explorer": block}

    def finish(self, chart: alt.TopLevelMixin, **extra: Any) -> alt.TopLevelMixin | dict:
        """Attach the parameters (at the top level) and the panel's metadata to the chart.

        Altair cannot lift parameters into some compositions (a concat that holds a facet); for
        those the result is the finished spec as a dict, which producers may return as well.
        """
        if self.params:
            try:
                chart = chart.add_params(*self.params)
            except (AttributeError, TypeError):
                spec = chart.to_dict()
                spec["params"] = spec.get("params", []) + [p.param.to_dict() for p in self.params]
                spec["usermeta"] = self.usermeta(**extra)
                return spec
        return chart.properties(usermeta=self.usermeta(**extra))


TEXT_VIEW_KEYS = {"tokens", "field", "position", "label", "hover", "default", "color", "details"}


def text_view(tokens: str, **spec: Any) -> dict:
    """The `usermeta.explorer.text` block: the text a model reads, drawn under the chart as text.

    `tokens` names a Vega dataset with one row per token (fields `t` and `p` unless `field` and
    `position` say otherwise). Optional: `label`, `hover` (a signal the hovered position is written
    to), `color` (colour every token by a number, e.g. the hovered token's attention row) and
    `details` (a table for the hovered token). The keys are described in
    docs/assets/javascripts/explorer/textview.js; pass the block to `Panel.finish(chart, text=...)`.
    """
    unknown = set(spec) - TEXT_VIEW_KEYS
    if unknown:
        raise ValueError(f"text_view: unknown keys {sorted(unknown)}; known: {sorted(TEXT_VIEW_KEYS)}")
    return {"tokens": tokens, **{k: v for k, v in spec.items() if v is not None}}


def hover_rule(base: alt.Chart, *, x: str, series: str, y: str, names: Sequence[str], fmt: str = ".3g",
               x_title: str | None = None, x_format: str = ",", name: str | None = None) -> alt.LayerChart:
    """An invisible layer over line charts: the nearest x gets a rule and one tooltip with every series.

    `base` is the long-form data (one row per x and series) that the lines draw; series names must
    not contain colons (they become tooltip fields). Give each hover rule of a figure its own `name`
    when a figure has several: Altair merges unnamed selections of the same shape into one, which
    then follows the pointer over one view only.
    """
    names = list(names)
    nearest = alt.selection_point(nearest=True, on="pointerover", fields=[x], empty=False, clear="pointerout",
                                  **({"name": name} if name else {}))
    tips = [alt.Tooltip(f"{x}:Q", title=x_title or x, format=x_format)]
    tips += [alt.Tooltip(f"{name}:Q", format=fmt) for name in names]
    return (
        base.transform_pivot(series, value=y, groupby=[x])
        .mark_rule(color=MUTED, strokeWidth=1)
        .encode(x=f"{x}:Q", opacity=alt.condition(nearest, alt.value(0.7), alt.value(0)), tooltip=tips)
        .add_params(nearest)
    )


def now_rule(param: alt.Parameter, *, field_type: str = "quantitative", color: str = ACCENT) -> alt.Chart:
    """A vertical rule at a slider's current value (the step shown elsewhere in the figure)."""
    return (
        alt.Chart(alt.Data(values=[{}]))
        .mark_rule(color=color, strokeDash=[4, 3], strokeWidth=1.5)
        .encode(x=alt.datum(alt.expr(param.name), type=field_type))
    )
