"""The build's compiled first views (explorer/site/compiled.py): fresh, keyed as the page keys them,
and drawn exactly as the page's own compile draws them."""

import json

import pytest

from explorer import paths
from explorer.site import compiled
from test_browser import Tab

PUBLISHED = sorted(compiled.spec_dirs(paths.FIGURES))


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (-0.0, "0"), (0.1, "0.1"), (1e-05, "0.00001"), (1.5e-07, "1.5e-7"), (1e-07, "1e-7"), (123.456, "123.456"),
    (1e21, "1e+21"), (1e20, "100000000000000000000"), (2.5e22, "2.5e+22"), (-3.25, "-3.25"), (7, "7"), (True, "true"),
])  # fmt: skip
def test_numbers_are_written_as_javascript_writes_them(value, text):
    assert compiled.canonical(value) == text


def test_the_canonical_string_sorts_keys_and_keeps_text_as_json():
    assert compiled.canonical({"b": [1.0, None, "x\n\"y\""], "a": {"é": False}}) == '{"a":{"é":false},"b":[1,null,"x\\n\\"y\\""]}'


def test_the_first_view_is_the_default_state_unbound_and_wrappable():
    spec = {
        "usermeta": {"explorer": {
            "controls": [{"name": "model", "options": ["a", "b"], "default": "b", "patches": {"b": {"/hconcat/0/width": 99}}}],
            "params": {"step": {"by": "model", "choices": {"b": {"options": [10, 20], "value": 20}}}},
        }},
        "params": [{"name": "step", "value": 0, "bind": {"input": "range", "min": 0, "max": 30}},
                   {"name": "pick", "select": "point"}, {"name": "free", "value": 3}],
        "hconcat": [{"mark": "point", "width": 10}, {"mark": "line"}],
    }  # fmt: skip
    view = compiled.first_view(spec)
    assert view["params"][0] == {"name": "step", "value": 20}  # the choice's value, no input binding
    assert view["params"][2] == {"name": "free", "value": 3}  # a parameter with no control is left alone
    assert "hconcat" not in view and view["columns"] == 2 and view["concat"][0]["width"] == 99
    assert spec["params"][0]["bind"] and spec["hconcat"][0]["width"] == 10  # the published spec is untouched


def test_a_key_changes_with_any_value_of_the_view():
    view = {"mark": "point", "params": [{"name": "step", "value": 1}]}
    other = json.loads(json.dumps(view))
    other["params"][0]["value"] = 2
    assert compiled.view_key(view) != compiled.view_key(other)
    assert compiled.view_key(view) == compiled.view_key(json.loads(json.dumps(view)))


@pytest.mark.parametrize("folder", PUBLISHED, ids=lambda p: p.relative_to(paths.FIGURES).as_posix())
def test_every_published_figure_has_a_fresh_compiled_first_view(folder):
    assert compiled.is_fresh(folder), f"{folder.name}: spec.vg.json is missing or older than spec.json: run `make figures`"
    recorded = json.loads((folder / compiled.COMPILED).read_text())
    spec = json.loads((folder / "spec.json").read_text())
    for layout in ("wide", "narrow"):
        assert recorded[layout]["key"] == compiled.view_key(compiled.first_view(spec, narrow=layout == "narrow"))


def test_data_the_spec_holds_is_referenced_not_copied():
    spec = {"datasets": {"d": [{"a": 1}]}, "layer": [{"data": {"values": [{"b": 2}, {"b": 3}]}, "mark": "point"}]}
    known = compiled.inline_values(spec)
    assert known == {compiled.canonical([{"a": 1}]): "/datasets/d", compiled.canonical([{"b": 2}, {"b": 3}]): "/layer/0/data/values"}
    vega = {"data": [{"name": "source_0", "values": [{"b": 2}, {"b": 3}]}], "marks": [{"type": "group", "data": [{"name": "x", "values": [{"c": 1}]}]}]}
    compiled._values_by_reference(vega, known)
    assert vega["data"][0]["values"] == {"$ref": "/layer/0/data/values"}
    assert vega["marks"][0]["data"][0]["values"] == [{"c": 1}]  # not in the spec: kept


def test_a_spec_that_does_not_compile_keeps_no_compiled_copy_and_the_others_go_on(tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "spec.json").write_text(json.dumps({"$schema": "https://vega.github.io/schema/vega-lite/v6.4.1.json", "mark": "point",
                                                "data": {"values": [{"a": 1}]}, "encoding": {"x": {"field": "a", "type": "quantitative"}}}))
    (bad / "spec.json").write_text('{"$schema": "https://vega.github.io/schema/vega-lite/v6.4.1.json", "mark": {"type": "nope"}}')
    (bad / compiled.COMPILED).write_text("{}")
    assert compiled.refresh(tmp_path) == ["good"]
    assert not (bad / compiled.COMPILED).exists()
    assert "bad: no compiled first view" in capsys.readouterr().out
    assert compiled.refresh(tmp_path) == []  # up to date: nothing rewritten


TRICKY = [{"a": [1.0, 0.1, 1e-07, 1e21, 2.5e22, -0.0, 123456.789]}, {"z": "é\u2028\t\"\\", "b": None, "a": [True, False]},
          {"n": {"deep": [{"x": 3}]}, "": "empty key", "10": "ten", "9": "nine"}, "text", 12]


def test_the_page_keys_a_view_exactly_as_the_build_does(browser, site_url):
    tab = Tab(browser, site_url)
    try:
        tab.page.goto(site_url + "models/zoo/")
        tab.page.wait_for_function("() => window.explorer && window.explorer.viewKey")
        for value in TRICKY:
            assert tab.page.evaluate("(v) => window.explorer.viewKey(v)", value) == compiled.view_key(value), value
        theme = site_url + "assets/javascripts/explorer/theme.js"
        for narrow in (False, True):
            js = tab.page.evaluate("async ([url, narrow]) => (await import(url)).configTemplate({ narrow })", [theme, narrow])
            assert js == compiled.config_template(narrow), "theme.js configTemplate and compiled.config_template differ"
        room = tab.page.evaluate("async (url) => (await import(url)).ROOM", theme)
        assert room == compiled.ROOM
    finally:
        tab.close()


SVG = """() => [...window.explorerFigures.values()].map((r) => [r.id, r.compiledHit,
    (r.chart.querySelector('svg') || r.chart).outerHTML])"""


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("path", ["curriculum/backprop/", "interpretability/attention_heads/", "techniques/saliency/"])
def test_a_compiled_first_view_draws_what_the_page_compiler_draws(browser, site_url, path, dark):
    drawings = []
    for use in (True, False):
        tab = Tab(browser, site_url, dark=dark)
        try:
            if not use:
                tab.page.add_init_script("window.explorerCompiled = false")
            tab.page.goto(site_url + path)
            tab.wait_for_figures()
            drawings.append(tab.page.evaluate(SVG))
            assert not tab.problems, tab.problems
        finally:
            tab.close()
    (fast, slow) = drawings
    assert [hit for _, hit, _ in fast] == [True] * len(fast) and not any(hit for _, hit, _ in slow)
    for (fid, _, a), (_, _, b) in zip(fast, slow, strict=True):
        assert a == b, f"{fid}: the compiled first view draws differently"
