"""The claims policy (docs/contributing/conventions.md, "Claims a skeptic accepts"), checked on the
real pages: a mean over seeds is shown with its range, and a trained figure quoted without seeds is
quoted on a page that says it is one training run."""

import re

from explorer import jsonio, paths
from test_site import _tiny_site

CLAIM = re.compile(r"\{\{\s*claim:\s*([a-z0-9-]+):([A-Za-z0-9_]+)")
ONE_RUN = re.compile(r"one seed|one training run|single training run|one run each", re.I)
# Figures whose quoted numbers do not come from a training run, and why. A new figure belongs here only
# if that is true of every number it records.
NOT_FROM_TRAINING = {
    "attention-heads": "the pretrained all-MiniLM-L6-v2 (one fixed set of weights, nothing trained here)",
    "heads-minilm": "the pretrained all-MiniLM-L6-v2 (one fixed set of weights, nothing trained here)",
    "attention-kv-cache": "arithmetic on published model shapes",
    "attention-positional-encodings": "closed-form encodings",
    "landscapes-optimizers": "optimizers on closed-form two-parameter surfaces, from fixed starts",
    "saliency-numpy": "the gap between two implementations of one map on one network, float32 rounding",
    "flagship-corpus": "the corpus itself: bytes and files of the installed source",
}
SWEEPS = {"induction-sweep": "counts of runs out of a balanced sweep, with Wilson intervals"}


def _quoted(manifest: dict) -> dict[str, set[str]]:
    """{figure id: pages quoting one of its measured numbers (floats; not a count, a setting or a name)}."""
    found: dict[str, set[str]] = {}
    for page in sorted(paths.DOCS.rglob("*.md")):
        if "contributing" in page.parts:  # pages that document the shortcodes quote made-up ids
            continue
        for fid, key in CLAIM.findall(page.read_text()):
            if isinstance(manifest[fid]["claims"].get(key), float):
                found.setdefault(fid, set()).add(str(page.relative_to(paths.DOCS)))
    return found


COLLECTIONS = ("index.md", "research/log.md", "research/open-problems.md")  # each item has its own subject


def _over_seeds(claims: dict) -> bool:
    """Claims over seeds (explorer.ensemble), ranges over runs (key_lo, key_hi), or a stated seed count."""
    return (any(k.endswith("_seeds") and isinstance(v, dict) for k, v in claims.items()) or claims.get("seeds", 0) >= 3
            or any(k.endswith("_lo") and k[:-3] + "_hi" in claims for k in claims))


def _says_one_run(page: str, fid: str) -> bool:
    """An article says it once; a collection page says it in each paragraph or list item that quotes the figure."""
    text = (paths.DOCS / page).read_text()
    if page not in COLLECTIONS:
        return bool(ONE_RUN.search(text))
    items = re.split(r"\n\s*\n|\n(?=- )", text)
    return all(ONE_RUN.search(item) for item in items if re.search(r"\{\{\s*claim:\s*" + re.escape(fid) + ":", item))


def test_every_trained_figure_is_quoted_over_seeds_or_as_one_run():
    manifest = jsonio.read_json(paths.FIGURES / "manifest.json")["figures"]
    quoted = _quoted(manifest)
    assert len(quoted) > 20
    offenders = []
    for fid, pages in sorted(quoted.items()):
        if fid in NOT_FROM_TRAINING or fid in SWEEPS or _over_seeds(manifest[fid]["claims"]):
            continue
        offenders += [f"{page} quotes {fid} (one training run) without saying so" for page in sorted(pages)
                      if not _says_one_run(page, fid)]
    assert not offenders, "\n".join(offenders)


def test_the_exemptions_are_real_figures_without_seeds():
    """An exemption for a figure that is gone, or that now has seeds, is a stale promise."""
    manifest = jsonio.read_json(paths.FIGURES / "manifest.json")["figures"]
    for fid in NOT_FROM_TRAINING:
        assert fid in manifest and not _over_seeds(manifest[fid]["claims"]), fid
    for fid in SWEEPS:
        assert any(k.endswith("_lo") or k.endswith("_hi") or "wilson" in k for k in manifest[fid]["claims"]), fid


SEEDED = {"fig-a": {"title": "t", "caption": "c", "model": "m", "claims": {
    "acc": 0.9123, "acc_min": 0.88, "acc_max": 0.95, "acc_seeds": {"0": 0.88, "1": 0.9069, "2": 0.95},
    "gap": -0.02, "gap_min": -0.04, "gap_max": 0.01, "gap_seeds": {"0": -0.04, "1": -0.03, "2": 0.01},
    "one": 0.5, "one_min": 0.5, "one_max": 0.5, "one_seeds": {"0": 0.5, "1": 0.5, "2": 0.5}, "plain": 7}}}


def test_a_mean_quoted_alone_is_shown_with_its_range(tmp_path):
    page = ("# T\n\nAccuracy {{ claim: fig-a:acc:.1% }}, gap {{ claim: fig-a:gap:.2f }}, flat {{ claim: fig-a:one:.1f }}, "
            "count {{ claim: fig-a:plain }}.\n\nAgain {{ claim: fig-a:acc:.2f }} ({{ claim: fig-a:acc_min:.2f }} to "
            "{{ claim: fig-a:acc_max:.2f }}).\n\n| a | b |\n|---|---|\n| {{ claim: fig-a:acc:.0% }} | x |\n"
            "| {{ claim: fig-a:acc_min:.0% }}–{{ claim: fig-a:acc_max:.0% }} | y |\n")
    result, site = _tiny_site(tmp_path, page, SEEDED)
    assert result.returncode == 0, result.stderr
    text = re.sub(r"<[^>]+>", "", (site / "index.html").read_text())
    assert "Accuracy 91.2% [88.0%–95.0% over 3 seeds]" in text
    assert "gap -0.02 [-0.04 to 0.01 over 3 seeds]" in text  # a dash between negatives misreads
    assert "flat 0.5 [0.5 on all 3 seeds]" in text
    assert "count 7." in text  # not a claim over seeds
    assert "Again 0.91 (0.88 to 0.95)" in text  # the paragraph quotes the range itself: nothing added
    assert "91% [88%–95% over 3 seeds]" in text  # a table row is its own unit: the next row's range is not its
