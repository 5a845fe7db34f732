"""The shared chart helpers (explorer/charts.py): what each writes into the spec, and how it draws.

Drawing is checked by rendering the spec with vl-convert (Vega itself), not by reading the dict
the helper wrote, so a helper is judged by what the reader would see.
"""

import re

import altair as alt
import pandas as pd
import vl_convert as vlc

from explorer import charts


def test_a_slider_starts_at_its_last_value_unless_told_and_shows_its_labels():
    panel = charts.Panel()
    plain = panel.slider("s", [1, 2, 3], label="S")
    chosen = panel.slider("t", ["a", "b"], label="T", labels=["first", "second"], value="a", play=True, group="g")
    assert plain.param.value == 3 and chosen.param.value == "a"
    meta = panel.usermeta()["explorer"]["params"]
    assert meta["s"] == {"label": "S", "options": [1, 2, 3], "kind": "slider", "play": False}
    assert meta["t"] == {"label": "T", "options": ["a", "b"], "kind": "slider", "play": True, "labels": ["first", "second"], "group": "g"}


def test_training_step_sliders_take_steps_or_indices_and_label_them_with_commas():
    panel = charts.Panel()
    by_step = panel.steps("step", [0, 1000, 25000])
    by_index = panel.steps("ckpt", [0, 1000, 25000], index=True)
    meta = panel.usermeta()["explorer"]["params"]
    assert meta["step"]["options"] == [0, 1000, 25000] and by_step.param.value == 25000
    assert meta["ckpt"]["options"] == [0, 1, 2] and by_index.param.value == 2
    assert meta["step"]["labels"] == meta["ckpt"]["labels"] == ["0", "1,000", "25,000"]
    assert charts.step_labels([1234567], prefix="step ") == ["step 1,234,567"]


def test_colour_scales_put_their_middle_halfway_and_negative_values_in_the_negative_colour():
    assert charts.sequential((2, 6)).to_dict()["domain"] == [2.0, 4.0, 6.0]
    assert charts.sequential((-1, 0)).to_dict()["domain"] == [-1.0, -0.5, 0.0]
    diverging = charts.diverging(2).to_dict()
    assert diverging["domain"] == [-2.0, 0.0, 2.0] and diverging["range"] == [charts.NEG, charts.ZERO, charts.POS]
    assert charts.diverging(0).to_dict()["domain"] == [-1.0, 0.0, 1.0]  # a zero limit still draws


def test_the_hover_rule_is_invisible_until_the_pointer_is_over_the_chart():
    frame = pd.DataFrame({"step": [0, 0, 10, 10, 20, 20], "split": ["train", "test"] * 3, "loss": [1.0, 1.1, 0.5, 0.7, 0.2, 0.6]})
    base = alt.Chart(frame)
    lines = base.mark_line(color="black").encode(x="step:Q", y="loss:Q", detail="split:N")
    rule = charts.hover_rule(base, x="step", series="split", y="loss", names=["train", "test"], name="hover")
    svg = vlc.vegalite_to_svg(alt.layer(lines, rule).properties(width=200, height=100).to_dict())
    rules = re.findall(r'<line[^>]*aria-roledescription="rule mark"[^>]*>', svg)
    assert len(rules) == 3  # one per step, each carrying the tooltip of every series
    assert "step: 10; train: 0.500; test: 0.700" in rules[1]
    assert all('opacity="0"' in r for r in rules), rules
