"""`make figures MODEL=name`: a run on another model lands beside the published figures, never over them,
and the site offers it as a model switch. End to end on random-init stand-ins in a temporary Hugging Face
cache: GPT-2's architecture and Pythia's (GPT-NeoX), few layers, a word-level tokenizer that reads every
probe word."""

import hashlib
import html
import json
import os
import shutil
import subprocess
import sys

import pytest

import tiny_models
from test_distilbert import tiny_distilbert
from explorer import jsonio, paths
from explorer.data import ioi as ioi_data
from explorer.pipeline import build as pipeline
from explorer.pipeline.registry import discover
from test_browser import Tab, serve

MODEL_AWARE = sorted(fid for fid, f in discover().items() if f.model_option)
HUB_MODELS = ("gpt2", "pythia-70m")
ENCODER = "distilbert-base-uncased"
HEAD_FIGURES = ("heads-viewer", "heads-wiki")  # the figures an encoder gets; the others say why not


def _digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory):
    """The published model-aware figures copied into a scratch output folder, then a --model gpt2 run into it."""
    tmp = tmp_path_factory.mktemp("hub")
    words = [*ioi_data.vocabulary(), *(f"w{i}" for i in range(32)), "<|endoftext|>"]
    tiny_models.gpt2_in_hub_cache(tmp / "hub", words, unk="<pad>", eos="<|endoftext|>")
    tiny_models.pythia_in_hub_cache(tmp / "hub", words, unk="<pad>", eos="<|endoftext|>")
    encoder_words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(95))]
    tiny_models.distilbert_in_hub_cache(tmp / "hub", tiny_distilbert(len(encoder_words)), encoder_words)
    out = tmp / "figures"
    out.mkdir()
    manifest = jsonio.read_json(paths.FIGURES / "manifest.json")["figures"]
    jsonio.write_json(out / "manifest.json", {"figures": {fid: manifest[fid] for fid in MODEL_AWARE}})
    for fid in MODEL_AWARE:
        shutil.copytree(paths.FIGURES / fid, out / fid)
    before = _digests(out)
    env = {"HF_HUB_CACHE": str(tmp / "hub"), "HF_HUB_OFFLINE": "1"}
    results = [subprocess.run([sys.executable, "-m", "explorer", "figures", "--quiet", "--model", model, "--out", str(out)],
                              cwd=paths.REPO, capture_output=True, text=True, env={**os.environ, **env}) for model in (*HUB_MODELS, ENCODER)]
    return out, before, results


def test_default_output_of_a_model_run_is_a_folder_of_its_own():
    assert pipeline.default_out("full", "gpt2") == paths.FIGURES / "models" / "gpt2"
    assert pipeline.default_out("full") == paths.FIGURES


@pytest.mark.parametrize("index", range(len(HUB_MODELS)), ids=HUB_MODELS)
def test_every_model_aware_figure_builds_on_the_stand_in(hub_run, index):
    out, _, results = hub_run
    model = HUB_MODELS[index]
    assert results[index].returncode == 0, results[index].stdout + results[index].stderr
    manifest = jsonio.read_json(out / "models" / model / "manifest.json")["figures"]
    assert sorted(manifest) == MODEL_AWARE
    assert all(entry["model"] == model for entry in manifest.values())


def test_an_encoder_gets_the_head_figures_and_one_line_for_each_of_the_others(hub_run):
    out, _, results = hub_run
    result = results[len(HUB_MODELS)]
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = jsonio.read_json(out / "models" / ENCODER / "manifest.json")["figures"]
    assert sorted(manifest) == sorted(HEAD_FIGURES)
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == len(MODEL_AWARE) - len(HEAD_FIGURES), result.stdout
    assert all(f"{ENCODER} is an encoder" in line for line in skipped), skipped


def test_the_published_figures_are_left_byte_identical(hub_run):
    out, before, _ = hub_run
    after = {k: v for k, v in _digests(out).items() if not k.startswith("models/")}
    assert after == before


def test_the_site_offers_the_model_switch_and_still_builds_strictly(hub_run, tmp_path):
    out, _, _ = hub_run
    docs = tmp_path / "docs"
    shutil.copytree(out, docs / "figures")
    (docs / "index.md").write_text("# T\n\n{{ figure: patching-resid }}\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\ndocs_dir: docs\nmarkdown_extensions: [explorer.site.shortcodes]\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(tmp_path / "site")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "site" / "index.html").read_text()
    attribute = page.split("data-models='", 1)[1].split("'", 1)[0]
    choices = json.loads(html.unescape(attribute))
    assert [c["label"] for c in choices] == ["the published models", "gpt2", "pythia-70m"]
    assert choices[1]["base"] == "./figures/models/gpt2/patching-resid/" and choices[1]["model"] == "gpt2"
    assert (tmp_path / "site" / "figures" / "models" / "gpt2" / "patching-resid" / "spec.json").exists()


def test_check_leaves_model_runs_alone(hub_run):
    """The published figures are still fresh after the run (their specs and manifest untouched), and the
    model run's own folder is not a figure `--check` knows."""
    out, _, _ = hub_run
    assert pipeline.check(MODEL_AWARE, out) == []


SWITCH_PAGE = """# T

{{ figure: heads-wiki }}

Best: {{ claim: heads-wiki:model_induction_head }} of {{ claim: heads-wiki:model }} at
{{ claim: heads-wiki:model_induction_max:.2f }}; the flagship's own: {{ claim: heads-wiki:flagship_bytes_2l_induction_max:.2f }}.
"""


@pytest.fixture(scope="module")
def switch_site(hub_run, tmp_path_factory):
    """A strict site with the run's figures, a heads-wiki page and claims about its model, served."""
    out, _, _ = hub_run
    root = tmp_path_factory.mktemp("switch")
    docs = root / "docs"
    shutil.copytree(out, docs / "figures")
    shutil.copytree(paths.DOCS / "assets", docs / "assets")
    (docs / "index.md").write_text(SWITCH_PAGE)
    config = root / "mkdocs.yml"
    config.write_text(
        "site_name: t\ndocs_dir: docs\ntheme: {name: material, font: false}\n"
        "markdown_extensions: [explorer.site.shortcodes]\n"
        "extra_css: [assets/stylesheets/figures.css]\n"
        "extra_javascript: [{path: assets/javascripts/explorer/figures.js, type: module}]\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(root / "site")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    server, url = serve(root / "site")
    yield out, root / "site", url
    server.shutdown()


def _claim_spans(page_html: str) -> dict[str, dict]:
    spans = {}
    for chunk in page_html.split('<span class="explorer-claim" data-claim="')[1:]:
        claim, rest = chunk.split('"', 1)
        alt = rest.split("data-alt='", 1)[1].split("'", 1)[0] if rest.startswith(" data-alt='") else None
        spans[html.unescape(claim)] = json.loads(html.unescape(alt)) if alt else {}
    return spans


def test_model_independent_claims_carry_each_runs_value_and_others_do_not(switch_site):
    out, site, _ = switch_site
    spans = _claim_spans((site / "index.html").read_text())
    for model in HUB_MODELS + (ENCODER,):
        claims = jsonio.read_json(out / "models" / model / "manifest.json")["figures"]["heads-wiki"]["claims"]
        assert spans["heads-wiki:model"][model] == model == claims["model"]
        assert spans["heads-wiki:model_induction_head"][model] == claims[f"{model.replace('-', '_')}_induction_head"]
        assert spans["heads-wiki:model_induction_max"][model] == format(claims["model_induction_max"], ".2f")
    assert spans["heads-wiki:flagship_bytes_2l_induction_max"] == {}  # names the flagship: never swapped


def test_switching_the_model_swaps_the_numbers_of_the_text_and_back(browser, switch_site):
    out, _, url = switch_site
    claims = jsonio.read_json(out / "models" / "gpt2" / "manifest.json")["figures"]["heads-wiki"]["claims"]
    tab = Tab(browser, url)
    try:
        tab.page.goto(url)
        tab.wait_for_figures()
        head = tab.page.locator('.explorer-claim[data-claim="heads-wiki:model_induction_head"]')
        flagship = tab.page.locator('.explorer-claim[data-claim="heads-wiki:flagship_bytes_2l_induction_max"]')
        published = head.text_content(), flagship.text_content()
        select = tab.page.locator("select[id^='explorer-model-heads-wiki']")
        select.select_option(label="gpt2")
        tab.wait_for_figures()
        assert head.text_content() == claims["model_induction_head"]
        assert "explorer-claim--switched" in head.get_attribute("class")
        assert tab.page.locator('.explorer-claim[data-claim="heads-wiki:model"]').text_content() == "gpt2"
        assert flagship.text_content() == published[1] and "explorer-claim--published-only" in flagship.get_attribute("class")
        assert "gpt2" in tab.page.locator(".explorer-figure__model-note").text_content()
        tab.page.locator("select[id^='explorer-model-heads-wiki']").select_option(label="the published models")
        tab.wait_for_figures()
        assert (head.text_content(), flagship.text_content()) == published
        assert "--" not in head.get_attribute("class") and "--" not in flagship.get_attribute("class")
        assert not tab.problems, tab.problems
    finally:
        tab.close()
