"""Build-time pictures of figures (explorer/pipeline/preview.py) and how pages show them."""

import altair as alt
import pandas as pd

from explorer import charts, jsonio, paths
from explorer.pipeline import preview


def test_both_palettes_define_every_token_the_page_uses():
    light, dark = preview.palette("light"), preview.palette("dark")
    assert set(light) == set(dark) and {"fig-ink", "fig-paper", "fig-s1", "fig-seq-0"} <= set(light)
    assert light["fig-ink"] != dark["fig-ink"] and dark["fig-paper"] == preview.SLATE_BACKGROUND
    assert all(not v.startswith("var(") for v in dark.values())


def test_a_preview_is_drawn_once_per_palette_with_its_colours(tmp_path):
    frame = pd.DataFrame({"x": [0, 1, 2], "y": [1, 0, 2]})
    chart = charts.Panel().finish(alt.Chart(frame).mark_point(color=charts.ACCENT).encode(x="x", y="y").properties(width=120, height=80), preview=True)
    spec = chart.to_dict()
    assert preview.wants_preview(spec)
    names = preview.write_previews(spec, tmp_path)
    assert names == ["preview-light.png", "preview-dark.png"]
    sizes = {preview.preview_size(tmp_path / n) for n in names}
    assert len(sizes) == 1 and all(120 <= w < 250 and 80 <= h < 200 for w, h in sizes)  # CSS px of the chart, axes included
    assert (tmp_path / names[0]).read_bytes() != (tmp_path / names[1]).read_bytes()  # each palette its own colours
    assert preview.resolve({"c": charts.ACCENT}, preview.palette("dark")) == {"c": preview.palette("dark")["fig-accent"]}


def test_pages_show_the_picture_until_the_figure_is_reached(tmp_path):
    from tests.test_site import _tiny_site

    entry = {"title": "Small <b>", "caption": "c", "model": "m", "claims": {}}
    result, site = _tiny_site(tmp_path, "# T\n\n{{ figure: fig-a }}\n", {"fig-a": entry}, {"fig-a": {"mark": "point"}})
    assert result.returncode == 0, result.stderr
    assert "explorer-preview" not in (site / "index.html").read_text()  # no pictures: an ordinary figure
    for fid in ("fig-a", "fig-b"):
        for scheme in preview.SCHEMES:
            (tmp_path / "docs" / "figures" / fid).mkdir(parents=True, exist_ok=True)
            (tmp_path / "docs" / "figures" / fid / f"preview-{scheme}.png").write_bytes((paths.FIGURES / "home-xor" / f"preview-{scheme}.png").read_bytes())
    result, site = _tiny_site(tmp_path, "# T\n\n{{ figure: fig-a }}\n\n{{ figure: fig-b }}\n", {"fig-a": entry, "fig-b": entry},
                              {"fig-a": {"mark": "point"}, "fig-b": {"mark": "point"}})
    page = (site / "index.html").read_text()
    assert "data-preview" in page and 'tabindex="0"' in page
    w, h = preview.preview_size(paths.FIGURES / "home-xor" / "preview-light.png")
    # the page's first picture loads at once (it is likely its largest paint); the others wait
    assert f'src="./figures/fig-a/preview-light.png" width="{w}" height="{h}" loading="eager" fetchpriority="high"' in page
    assert f'src="./figures/fig-b/preview-light.png" width="{w}" height="{h}" loading="lazy"' in page
    assert 'alt="Small &lt;b&gt; (a picture' in page
    assert jsonio.read_json(paths.FIGURES / "home-xor" / "spec.json")["usermeta"]["explorer"]["preview"] is True
