"""Mutation run for `make bench`: would the unit tests notice a plausible bug in the core code?

Each `Mutant` names a file, an exact snippet of it, the snippet's replacement and the bug that
plants (an off-by-one offset, a wrong sign, a dropped layer norm, the wrong averaging axis, a
skipped hash input, an unescaped HTML sink, ...), and the unit tests that should catch it.
`run()` copies the working tree (tracked files and untracked files git does not ignore, never
the checkout itself) into a temporary folder per worker, plants one mutant at a time, runs that
mutant's tests (stopping at the first failure) and restores the file. A mutant is killed when a test
fails that passes on the unmutated copy (checked once per test, only for tests that fail under some
mutant; one that already fails is left out and the mutant run again), or when its run exceeds the
time limit (reported as such); it survives when every test passes. A mutant whose snippet is no
longer in its file is reported stale and not scored: update it with the code.

Only fast unit tests run: tests that use the smoke-scale figure builds or the built site are
deselected, and browser tests run only for mutants of the page script
(docs/assets/javascripts/explorer/), whose sinks only a browser can exercise.

Each worker is one long-lived Python process that imports torch, TransformerLens and the rest
once and runs pytest in-process, dropping the copy's own modules before every run so that the
mutated source is what gets imported (bytecode caching is off: a same-size edit within one
second would otherwise reuse the unmutated .pyc), and emptying its cache folder of everything but
the trained models (linked from the checkout's), so no source index computed by other code answers.

    python -m explorer.mutants                 # all mutants, two workers; prints score and survivors
    python -m explorer.mutants --only ID ...   # a few (ids from --list)
    python -m explorer.mutants --without-tests tests/test_oracles.py ...   # as if those files did not exist
"""

import argparse
import json
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from explorer import paths

GOAL = 0.9  # share of mutants the unit tests must kill
JOBS = 2  # workers (copies of the checkout) at most: the machine is shared
TIMEOUT_S = 300  # per mutant; a run that exceeds it counts as killed (the bug made a test hang), and is reported as such
SLOW_FIXTURES = frozenset({"smoke", "smoke_claims", "built_site", "site_url"})  # smoke-scale builds, the whole site
JS = "docs/assets/javascripts/explorer/"


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # repo-relative
    original: str  # an exact snippet that occurs once in the file
    replacement: str
    bug: str  # one line: the bug this plants
    tests: tuple[str, ...]  # test files or node ids, fastest killers first

    @property
    def browser(self) -> bool:
        return self.file.startswith(JS)


def _m(id: str, file: str, original: str, replacement: str, bug: str, *tests: str) -> Mutant:
    return Mutant(id, file, original, replacement, bug, tests)


# Test selections per area: fast, in-process unit tests (the end-to-end builds of test_pipeline.py
# run a subprocess each, 15-60 s on a shared machine, and are left out); slow ones are deselected.
_FAULTS = tuple(f"tests/test_faults.py::{name}" for name in (
    "test_a_producer_calling_sys_exit_fails_its_figure_only", "test_only_an_id_whose_module_cannot_import_shows_the_import_error",
    "test_a_result_that_is_not_a_chart_fails_its_figure", "test_a_failing_producer_names_a_log_with_its_traceback",
    "test_manifest_is_byte_identical_when_no_figure_changed", "test_full_disk_while_writing_the_manifest_keeps_the_old_figure_and_entry",
    "test_read_only_output_is_one_line_and_a_no_op_still_works", "test_temp_files_of_a_killed_run_are_removed_and_ignored_by_git",
    "test_a_manifest_entry_whose_folder_is_missing_is_stale_and_rebuilt", "test_a_damaged_manifest_is_one_line_and_every_figure_is_rebuilt"))
_PIPELINE = tuple(f"tests/test_pipeline.py::{name}" for name in (
    "test_json_is_canonical", "test_cache_rebuilds_corrupt_entries", "test_a_planted_cache_file_with_a_matching_checksum_runs_no_code",
    "test_an_unreadable_checksum_file_is_named_and_the_entry_rebuilt", "test_cache_temp_files_of_a_killed_run_are_removed",
    "test_every_cached_result_type_round_trips", "test_the_cache_refuses_what_is_not_data", "test_cache_keys_hash_the_import_closure_of_the_code",
    "test_figure_metadata_read_from_the_source_matches_what_registers"))
T_STALE = ("tests/test_staleness.py", "tests/test_artifacts.py", *_PIPELINE, *_FAULTS)
T_JSON = T_CACHE = ("tests/test_staleness.py", *_PIPELINE, *_FAULTS)
T_HOOKS = ("tests/test_escaping.py", "tests/test_site.py")


def _oracles(*names: str, file: str = "tests/test_oracles.py") -> tuple[str, ...]:
    return tuple(f"{file}::test_{name}" for name in names)


CIRCUITS = "tests/test_oracles_circuits.py"
T_HEADS = (*_oracles("our_explicit_targets_are_transformer_lens_detection_patterns", "attention_scores_equal_an_explicit_loop_over_rows_with_targets",
                     "first_token_pattern_leaves_out_query_zero", "head_scores_table_is_each_heads_explicit_score_averaged_over_sequences_with_targets"),
           *_oracles("the_second_copy_is_where_the_first_repeats", "chance_levels_are_the_scores_of_uniform_causal_attention",
                     "repeated_half_loss_is_the_mean_over_the_predictable_second_copy", "composition_score_is_the_frobenius_formula_on_random_matrices",
                     file=CIRCUITS),
           "tests/test_heads.py", "tests/test_probes.py", "tests/test_induction.py")
T_LENS = (*_oracles("logit_lens_is_the_final_layer_norm_and_unembedding_written_out",
                    "direct_logit_attribution_terms_add_up_with_layer_norm_weight_and_bias"), "tests/test_lens.py")
T_PATCH = (*_oracles("logit_difference_and_recovered_fraction_on_hand_built_logits"),
           *_oracles("mean_ablation_pools_the_batch_and_every_position", "ablation_hooks_replace_the_named_heads_only",
                     "the_random_direction_null_pushes_exactly_as_far_as_the_ablation", file=CIRCUITS),
           "tests/test_patching.py")
T_SALIENCY = (*_oracles("integrated_gradients_of_a_linear_score_is_input_minus_baseline_times_weight",
                        "integrated_gradients_uses_the_steps_it_is_asked_for", "refinement_stops_at_its_step_cap",
                        "completeness_gap_is_relative_to_the_score_change", "deletion_curve_equals_removing_the_top_pixels_by_hand"),
              "tests/test_saliency.py")
T_MLP = (*_oracles("batched_group_training_matches_one_plain_loop_per_run"), "tests/test_backprop.py")
T_CHARTS = ("tests/test_charts.py",)
T_PAGE = ("tests/test_escaping.py", "tests/test_browser.py::test_text_views_show_tokens_from_data_as_text",
          "tests/test_browser.py::test_labels_from_data_are_shown_as_text")

P_HASH, P_BUILD, P_JSON, P_CACHE = "explorer/pipeline/hashing.py", "explorer/pipeline/build.py", "explorer/jsonio.py", "explorer/cache.py"
P_HOOKS, P_HEADS, P_PROBES, P_IND = "explorer/site/shortcodes.py", "explorer/techniques/heads.py", "explorer/techniques/probes.py", "explorer/techniques/induction.py"
P_LENS, P_PATCH, P_SAL, P_MLP, P_CHARTS = ("explorer/techniques/lens.py", "explorer/techniques/patching.py", "explorer/techniques/saliency.py",
                                           "explorer/models/mlp.py", "explorer/charts.py")
P_CONTROLS, P_FIGURES, P_TEXT = JS + "controls.js", JS + "figures.js", JS + "textview.js"

MUTANTS: tuple[Mutant, ...] = (
    # --- input hashes and staleness -------------------------------------------------------------
    _m("hash-skips-inputs", P_HASH, "files = list(closure) + [paths.REPO / p for p in inputs]", "files = list(closure)",
       "a figure's declared `inputs` files are not hashed: editing its data file leaves it fresh", *T_STALE),
    _m("hash-skips-scale", P_HASH, 'f"{FORMAT_VERSION}|{figure_id}|{scale}|{seed}|{model}"', 'f"{FORMAT_VERSION}|{figure_id}|{seed}|{model}"',
       "the scale is not hashed: a smoke build and a full build share a hash", *T_STALE),
    _m("hash-skips-model", P_HASH, 'f"{FORMAT_VERSION}|{figure_id}|{scale}|{seed}|{model}"', 'f"{FORMAT_VERSION}|{figure_id}|{scale}|{seed}"',
       "the model is not hashed: `--model other` looks fresh", *T_STALE),
    _m("hash-from-import-module", P_HASH, "found.add(sub if module_file(sub) is not None else mod)", "found.add(mod)",
       "`from explorer.techniques import heads` is followed to the package, not the module: heads.py is not an input", *T_STALE),
    _m("hash-relative-import-off-by-one", P_HASH, 'base = package.split(".")[: len(package.split(".")) - node.level + 1]',
       'base = package.split(".")[: len(package.split(".")) - node.level]', "a relative import resolves one package too high", *T_STALE),
    _m("hash-skips-parent-init", P_HASH, "parents.update(f for f in map(module_file, parent_packages) if f is not None and not _excluded(f, not_inputs))",
       "parents.update(())", "a package's __init__.py (which runs on import) is not an input", *T_STALE),
    _m("hash-stale-closure-memo", P_HASH, "if all(_stat_key(f) == s for f, s in zip(closure, stats)):",
       "if any(_stat_key(f) == s for f, s in zip(closure, stats)):", "a remembered closure is reused after one of its files gained an import", *T_STALE),
    _m("hash-skips-artifact-provenance", P_HASH, 'h.update(file_digest(provenance) if provenance.exists() else b"missing")', 'h.update(b"missing")',
       "retraining a long-run artifact does not make its figures stale", *T_STALE),
    _m("hash-skips-file-names", P_HASH, "h = hashlib.sha256(salt.encode())\n    for file in files:\n        h.update(display(file).encode())\n",
       "h = hashlib.sha256(salt.encode())\n    for file in files:\n", "a code digest hashes contents only: moving code to another module keeps the key", *T_STALE),
    _m("build-ignores-tampered-spec", P_BUILD, 'fresh = entry.get("input_hash") == digest and _file_sha256(out / fig.id / "spec.json") == entry.get("spec_sha256")',
       'fresh = entry.get("input_hash") == digest', "a published spec edited by hand still counts as fresh", *T_STALE),
    _m("build-ignores-force", P_BUILD, "planned.append(Planned(fig, effective, digest, force or not fresh))",
       "planned.append(Planned(fig, effective, digest, not fresh))", "`--force` rebuilds nothing that is fresh", *T_STALE),
    _m("build-model-for-every-figure", P_BUILD, "return model if (model is not None and fig.model_option) else fig.model",
       "return model if model is not None else fig.model", "`--model` is applied to figures that do not take a model", *T_STALE),
    _m("build-publish-drops-entry-change", P_BUILD, "if same_files and old is not None and _stable(old) == _stable(entry):",
       "if same_files and old is not None:", "a new caption with unchanged files never reaches the manifest", *T_STALE),
    _m("build-check-misses-orphans", P_BUILD, 'stale += [f"{fid} (no producer)" for fid in manifest if fid not in found.figures]', "stale += []",
       "`--check` does not report a published figure whose producer is gone", *T_STALE),
    # --- JSON and the model cache --------------------------------------------------------------
    _m("json-decimal-places", P_JSON, 'return float(f"{obj:.{digits}g}") if obj != 0 else 0.0', "return round(obj, digits)",
       "floats are rounded to 4 decimal places, not 4 significant digits (1e-5 becomes 0)", *T_JSON),
    _m("json-keeps-nan", P_JSON, "return None  # JSON has no NaN/inf", "return obj  # JSON has no NaN/inf", "NaN is kept, and dumps() raises", *T_JSON),
    _m("json-unsorted-keys", P_JSON, "sort_keys=True", "sort_keys=False", "keys keep insertion order: the same data gives other bytes", *T_JSON),
    _m("json-significant-digits", P_JSON, "def significant(values: Any, digits: int = 3)", "def significant(values: Any, digits: int = 4)",
       "significant() keeps four digits, not the three its docstring promises", *T_JSON),
    _m("json-cleans-live-writers", P_JSON, "stale = not pid_alive(int(match.group(1)))", "stale = pid_alive(int(match.group(1)))",
       "clean_temp removes the temp files of running writers and keeps those of dead ones", *T_JSON),
    _m("json-pid-zero-alive", P_JSON, "if pid <= 0:", "if pid < 0:", "pid 0 (a name with no pid) counts as a live process", *T_JSON),
    _m("cache-config-rounded", P_CACHE, "h.update(jsonio.dumps(dict(config), digits=12).encode())", "h.update(jsonio.dumps(dict(config)).encode())",
       "cache keys round the config to 4 digits: lr 1e-3 and 1.00004e-3 share a model", *T_CACHE),
    _m("cache-default-code-dropped", P_CACHE, "code = list(code) or [build]", "code = list(code)",
       "with no `code`, the key ignores the file that defines `build`", *T_CACHE),
    _m("cache-checksum-unchecked", P_CACHE, "if expected != hashlib.sha256(blob).hexdigest():", "if not expected:",
       "a cache entry whose bytes do not match its checksum is used", *T_CACHE),
    _m("cache-tuple-as-list", P_CACHE, 'return tuple(_decode(v, tensors) for v in node["__tuple__"])', 'return [_decode(v, tensors) for v in node["__tuple__"]]',
       "a cached tuple comes back as a list", *T_CACHE),
    # --- the site hook's HTML ------------------------------------------------------------------
    _m("hooks-title-unescaped", P_HOOKS, '<figcaption><strong>{esc(entry["title"])}.</strong>', '<figcaption><strong>{entry["title"]}.</strong>',
       "the figure title is written as HTML", *T_HOOKS),
    _m("hooks-aria-label-unescaped", P_HOOKS, 'aria-label="{esc(entry["title"])}"', 'aria-label="{entry["title"]}"',
       "the title in the chart's aria-label attribute is unescaped (a quote ends the attribute)", *T_HOOKS),
    _m("hooks-model-unescaped", P_HOOKS, '<span class="explorer-figure__model">{esc(entry["model"])}</span>', '<span class="explorer-figure__model">{entry["model"]}</span>', "the model name is written as HTML", *T_HOOKS),
    _m("hooks-data-names-unescaped", P_HOOKS, "download>{esc(n)}</a>' for n in data_files", "download>{n}</a>' for n in data_files",
       "data file names are written as HTML", *T_HOOKS),
    _m("hooks-claim-unescaped", P_HOOKS, "{html.escape(text)}</span>'", "{text}</span>'", "a quoted claim (a string from data) is written as HTML", *T_HOOKS),
    _m("hooks-try-text-unescaped", P_HOOKS, "'>{html.escape(text)}</a>\")", "'>{text}</a>\")", "a try link's text is written as HTML", *T_HOOKS),
    _m("hooks-try-state-unescaped", P_HOOKS, "data-state='{html.escape(json.dumps(state), quote=True)}'", "data-state='{json.dumps(state)}'",
       "a try link's state goes into a single-quoted attribute unescaped", *T_HOOKS),
    _m("hooks-provenance-unescaped", P_HOOKS, "<br>{esc(e[\"title\"])}</td><td>{esc(e[\"model\"])}</td>", "<br>{e[\"title\"]}</td><td>{e[\"model\"]}</td>",
       "the provenance table writes titles and models as HTML", *T_HOOKS),
    _m("hooks-claim-format-dropped", P_HOOKS, "text = _formatted(value, fmt)", "text = str(value)",
       "a claim's format spec is ignored", *T_HOOKS),
    _m("hooks-try-range-lower-bound", P_HOOKS, 'if not (control["min"] <= number <= control["max"]):', 'if not (control["min"] < number <= control["max"]):',
       "a try link to a range slider's minimum is refused (off by one at the bound)", *T_HOOKS),
    _m("hooks-try-float-text", P_HOOKS, "if isinstance(value, float) and value.is_integer():", "if False:",
       "a try link compares 2 with the option 2.0 as '2.0' (JavaScript writes '2')", *T_HOOKS),
    # --- head detectors and probes -------------------------------------------------------------
    _m("heads-sum-over-queries", P_HEADS, "mass = (patterns * detection).sum(-1)  # (head, q)", "mass = (patterns * detection).sum(-2)  # (head, q)",
       "attention mass summed over queries instead of keys (wrong axis)", *T_HEADS),
    _m("heads-average-every-row", P_HEADS, "return mass[:, rows].mean(-1).cpu()", "return mass.mean(-1).cpu()",
       "the score averages every query row, empty ones included (TransformerLens's averaging)", *T_HEADS),
    _m("heads-first-token-off-by-one", P_HEADS, "pattern[1:, 0] = 1.0", "pattern[:, 0] = 1.0",
       "the first-token pattern includes query 0, which can only look at itself", *T_HEADS),
    _m("heads-batch-mean-not-nanmean", P_HEADS, "columns[kind] = per_seq.nanmean(0).numpy()", "columns[kind] = per_seq.mean(0).numpy()",
       "a sequence with nothing to find makes the head's batch score NaN", *T_HEADS),
    _m("heads-head-major-order", P_HEADS, "flat = patterns.flatten(1, 2)  # (batch, layer*head, q, k)",
       "flat = patterns.transpose(1, 2).flatten(1, 2)  # (batch, layer*head, q, k)", "scores are filed under the wrong (layer, head)", *T_HEADS),
    _m("probes-second-copy-off-by-one", P_PROBES, "return slice(self.prefix + self.half, self.prefix + 2 * self.half)",
       "return slice(self.prefix + self.half + 1, self.prefix + 2 * self.half)", "the second copy starts one position late", *T_HEADS),
    _m("probes-chance-off-by-one", P_PROBES, "queries = torch.arange(probe.second_copy.start, probe.second_copy.stop, dtype=torch.float64)\n    return (1.0 / (queries + 1)).mean().item()",
       "queries = torch.arange(probe.second_copy.start, probe.second_copy.stop, dtype=torch.float64)\n    return (1.0 / queries).mean().item()",
       "the uniform-attention chance level counts one key too few", *T_HEADS),
    _m("induction-second-copy-loss-off-by-one", P_IND, "return loss_by_pos[second_copy_start:].mean().item()", "return loss_by_pos[second_copy_start + 1 :].mean().item()",
       "the repeated-half loss skips the first predictable token", *T_HEADS),
    _m("induction-composition-transpose", P_IND, "return (ov @ qk.transpose(-1, -2)).norm(dim=(-2, -1))", "return (ov @ qk).norm(dim=(-2, -1))",
       "K-composition multiplies W_OV by W_QK instead of its transpose", *T_HEADS),
    # --- logit lens and direct logit attribution -----------------------------------------------
    _m("lens-drops-final-ln", P_LENS, "model.unembed(model.ln_final(cache[name]))", "model.unembed(cache[name])",
       "the logit lens unembeds the raw residual stream (final layer norm dropped)", *T_LENS),
    _m("dla-drops-ln-weight", P_LENS, "        normed = normed * weight\n", "        normed = normed\n",
       "DLA leaves out the final layer norm's scale (its weight)", *T_LENS),
    _m("dla-drops-ln-bias", P_LENS, 'constant = constant + torch.einsum("d,dbp->bp", bias, directions)', "constant = constant",
       "DLA's constant leaves out the final layer norm's bias", *T_LENS),
    _m("dla-drops-attn-bias", P_LENS, 'parts.append(cache[f"blocks.{layer}.hook_attn_out"] - heads_by_layer[layer].sum(0))',
       'parts.append(torch.zeros_like(cache[f"blocks.{layer}.hook_attn_out"]))', "DLA's attention-bias term (b_O) is dropped", *T_LENS),
    # --- patching and ablation -----------------------------------------------------------------
    _m("patching-logit-diff-sign", P_PATCH, "return (last[rows, clean_answers] - last[rows, corrupt_answers]).mean()",
       "return (last[rows, corrupt_answers] - last[rows, clean_answers]).mean()", "the logit difference has the wrong sign", *T_PATCH),
    _m("patching-logit-diff-position", P_PATCH, "last = logits[:, -1]  # (batch, vocab)", "last = logits[:, -2]  # (batch, vocab)",
       "the metric reads the second-to-last position", *T_PATCH),
    _m("patching-recovered-fraction", P_PATCH, "return lambda logits: (metric(logits) - corrupt_value) / (clean_value - corrupt_value)",
       "return lambda logits: metric(logits) / clean_value", "the recovered fraction is not anchored at the corrupted run", *T_PATCH),
    _m("patching-mean-ablation-axis", P_PATCH, "out.append(ref.mean(dim=(0, 1), keepdim=True).expand(shape))", "out.append(ref.mean(dim=0, keepdim=True).expand(shape))",
       "mean ablation averages over the batch only, not over positions (wrong axis)", *T_PATCH),
    _m("patching-null-push-unnormalised", P_PATCH, "push = (noise / noise.norm(dim=-1, keepdim=True) * delta.norm(dim=-1, keepdim=True)).flatten(0, 1)",
       "push = (noise * delta.norm(dim=-1, keepdim=True)).flatten(0, 1)", "the random-direction null pushes by the wrong distance", *T_PATCH),
    # --- saliency ------------------------------------------------------------------------------
    _m("ig-ignores-baseline", P_SAL, "baselines=make_baseline(baseline, x)", "baselines=torch.zeros_like(x)",
       "integrated gradients always starts from black", *T_SALIENCY),
    _m("ig-ignores-steps", P_SAL, "n_steps=steps,", "n_steps=50,", "integrated gradients uses Captum's default 50 steps whatever it is asked", *T_SALIENCY),
    _m("ig-refines-the-wrong-images", P_SAL, "todo = todo[gap > tolerance]", "todo = todo[gap < tolerance]",
       "refinement redoes the images that already meet the tolerance", *T_SALIENCY),
    _m("ig-step-cap-exceeded", P_SAL, "while tolerance is not None and len(todo) and n_steps < max_steps:",
       "while tolerance is not None and len(todo) and n_steps <= max_steps:", "refinement doubles past its step cap", *T_SALIENCY),
    _m("deletion-off-by-one", P_SAL, "kept = rank >= round(k * pixels / steps)", "kept = rank > round(k * pixels / steps)",
       "the deletion curve removes one pixel too many at every step", *T_SALIENCY),
    _m("completeness-gap-unnormalised", P_SAL, "return (maps.flatten(1).sum(1) - change).abs() / change.abs()",
       "return (maps.flatten(1).sum(1) - change).abs()", "the completeness gap is absolute, not relative to the score change", *T_SALIENCY),
    # --- the hand-written MLP ------------------------------------------------------------------
    _m("mlp-mse-delta-factor", P_MLP, "delta = 2 * (p - y[..., None].to(p.dtype)) * p * (1 - p)", "delta = (p - y[..., None].to(p.dtype)) * p * (1 - p)",
       "the squared-error output delta drops its factor 2", *T_MLP),
    _m("mlp-tanh-slope", P_MLP, '"tanh": lambda: 1 - a**2', '"tanh": lambda: 1 - a', "tanh's slope is 1 - a instead of 1 - a²", *T_MLP),
    _m("mlp-bias-input-zero", P_MLP, "a_in = torch.cat([values[i], torch.ones_like(values[i][..., :1])], dim=-1)",
       "a_in = torch.cat([values[i], torch.zeros_like(values[i][..., :1])], dim=-1)", "bias gradients are zero (the bias input is 0)", *T_MLP),
    _m("mlp-accuracy-wrong-class", P_MLP, "torch.softmax(logits, dim=-1)[..., 1])", "torch.softmax(logits, dim=-1)[..., 0])",
       "a softmax model's accuracy reads the probability of class 0", *T_MLP),
    _m("mlp-l1-l2-swapped", P_MLP, "w[..., :-1].abs(), w[..., :-1] ** 2)", "w[..., :-1] ** 2, w[..., :-1].abs())", "L1 runs get the L2 penalty and back", *T_MLP),
    _m("mlp-penalises-biases", P_MLP, "w[..., :-1].abs(), w[..., :-1] ** 2)", "w.abs(), w ** 2)", "the weight penalty also shrinks the biases", *T_MLP),
    _m("mlp-sigmoid-output-mask", P_MLP, "out_mask[is_mse[:, 0], 1] = 0", "out_mask[is_mse[:, 0], 0] = 0",
       "a sigmoid model's one output row is masked instead of the unused one", *T_MLP),
    # --- shared chart helpers ------------------------------------------------------------------
    _m("charts-slider-default-first", P_CHARTS, "param = alt.param(name=name, value=values[-1] if value is None else value)",
       "param = alt.param(name=name, value=values[0] if value is None else value)", "a slider starts at its first value, not its last", *T_CHARTS),
    _m("charts-steps-index-swapped", P_CHARTS, "values = list(range(len(steps))) if index else steps", "values = steps if index else list(range(len(steps)))",
       "`index=True` gives step values and `index=False` indices", *T_CHARTS),
    _m("charts-sequential-midpoint", P_CHARTS, "domain=[lo, (lo + hi) / 2, hi]", "domain=[lo, hi / 2, hi]",
       "the sequential scale's middle colour sits at hi/2, not halfway (wrong when lo != 0)", *T_CHARTS),
    _m("charts-diverging-sign", P_CHARTS, "domain=[-limit, 0.0, limit], range=[NEG, ZERO, POS]", "domain=[-limit, 0.0, limit], range=[POS, ZERO, NEG]",
       "the diverging scale draws positive values in the negative colour", *T_CHARTS),
    _m("charts-step-labels-no-commas", P_CHARTS, 'return [f"{prefix}{int(s):,}" for s in steps]', 'return [f"{prefix}{int(s)}" for s in steps]',
       "training steps are labelled 10000, not 10,000", *T_CHARTS),
    _m("charts-hover-rule-empty", P_CHARTS, 'fields=[x], empty=False, clear="pointerout"', 'fields=[x], clear="pointerout"',
       "the hover rule shows at every x before the pointer is over the chart", *T_CHARTS),
    # --- the page script's sinks (browser tests) ------------------------------------------------
    _m("js-control-label-html", P_CONTROLS, "  label.textContent = control.label;\n  el.appendChild(label);", "  label.innerHTML = control.label;\n  el.appendChild(label);",
       "a control's label is set as HTML", *T_PAGE),
    _m("js-select-option-html", P_CONTROLS, "item.textContent = control.labels ? String(control.labels[i]) : String(option);",
       "item.innerHTML = control.labels ? String(control.labels[i]) : String(option);", "a select's option labels are set as HTML", *T_PAGE),
    _m("js-group-title-html", P_CONTROLS, "title.textContent = control.group;", "title.innerHTML = control.group;", "a control group's title is set as HTML", *T_PAGE),
    _m("js-slider-readout-html", P_CONTROLS, "readout.textContent = labelOf(control, v);", "readout.innerHTML = labelOf(control, v);",
       "a slider's readout (its value's label) is set as HTML", *T_PAGE),
    _m("js-radio-label-html", P_CONTROLS, 'label.append(input, " ", control.labels ? String(control.labels[i]) : String(option));',
       'label.append(input); label.insertAdjacentHTML("beforeend", " " + (control.labels ? String(control.labels[i]) : String(option)));',
       "a radio button's label is inserted as HTML", *T_PAGE),
    _m("js-error-message-html", P_FIGURES, "message.textContent = `This figure could not be drawn: ${error.message}`;",
       "message.innerHTML = `This figure could not be drawn: ${error.message}`;", "a figure's error message is set as HTML", *T_PAGE),
    _m("js-code-box-html", P_FIGURES, "el.textContent = code; // text, never HTML", "el.innerHTML = code;", "the code box is filled as HTML", *T_PAGE),
    _m("js-token-html", P_TEXT, 'span.textContent = shown || "∅"; // text, never HTML', 'span.innerHTML = shown || "∅";', "text-view tokens are set as HTML", *T_PAGE),
    _m("js-detail-cell-html", P_TEXT, "tr.insertCell().textContent = column.token ? visible(value) : format(value, column.format);",
       "tr.insertCell().innerHTML = column.token ? visible(value) : format(value, column.format);", "text-view detail cells are set as HTML", *T_PAGE),
)


# ------------------------------------------------------------------------------------------------
# Running


@dataclass
class Result:
    mutant: Mutant
    status: str  # killed, survived, timeout (killed), stale (snippet not found), no tests
    seconds: float = 0.0
    by: str = ""  # the first failing test
    ran: int = 0  # tests run

    @property
    def killed(self) -> bool:
        return self.status in ("killed", "timeout")


@dataclass
class Report:
    results: list[Result]
    seconds: float
    baseline_failures: list[str] = field(default_factory=list)

    @property
    def scored(self) -> list[Result]:
        return [r for r in self.results if r.status != "stale"]

    @property
    def score(self) -> float:
        scored = self.scored
        return sum(r.killed for r in scored) / len(scored) if scored else 0.0

    def line(self) -> str:
        scored = self.scored
        killed = sum(r.killed for r in scored)
        survivors = [r.mutant.id for r in scored if not r.killed]
        stale = [r.mutant.id for r in self.results if r.status == "stale"]
        timeouts = sum(r.status == "timeout" for r in scored)
        return (f"mutation score: {killed}/{len(scored)} planted bugs killed by the unit tests ({self.score:.0%}; goal >= {GOAL:.0%})"
                f"{f', {timeouts} of them by a time-out' if timeouts else ''}"
                f"{'' if self.score >= GOAL else '  UNDER GOAL'} in {self.seconds:.0f} s"
                + (f"; survivors: {', '.join(survivors)}" if survivors else "")
                + (f"; stale (snippet not in the file): {', '.join(stale)}" if stale else "")
                + (f"; tests failing without any mutant (left out): {', '.join(self.baseline_failures)}" if self.baseline_failures else ""))


def checkout_files(repo: Path = paths.REPO) -> list[str]:
    """The working tree as git sees it: tracked files plus untracked files it does not ignore."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo, capture_output=True, check=True)
    return [name for name in out.stdout.decode().split("\0") if name and (repo / name).is_file()]


def copy_checkout(dest: Path, skip: Sequence[str] = (), repo: Path = paths.REPO) -> Path:
    """Copy the working tree to `dest` (files, not links: mutants are written into the copy)."""
    skipped = set(skip)
    for name in checkout_files(repo):
        if name in skipped or name.startswith("docs/figures/") and name.count("/") > 3:
            continue  # published figure data (files under docs/figures/<id>/<folder>/): no unit test reads it, and it is most of the bytes
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)
    vendor = repo / "docs" / "assets" / "vendor"  # git-ignored, made at setup: the browser tests need Vega
    if vendor.is_dir():
        shutil.copytree(vendor, dest / "docs" / "assets" / "vendor", dirs_exist_ok=True)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)  # tests ask git what it ignores
    return dest


def link_model_cache(cache: Path, repo_cache: Path = paths.CACHE) -> Path:
    """A cache folder whose entries are links to the checkout's trained models (read, never written:
    an entry a mutant keys differently is written beside them, into this folder only)."""
    models = repo_cache / "models"
    for entry in models.glob("*/*") if models.is_dir() else ():
        if entry.is_file() and not entry.name.endswith(".tmp"):
            target = cache / "models" / entry.parent.name / entry.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(entry)
    return cache


class Worker:
    """One pytest-running process in one copy of the checkout."""

    def __init__(self, root: Path, cache: Path, log: Path):
        self.root, self.cache, self.log = root, cache, log
        self.proc: subprocess.Popen | None = None
        self.read_fd = -1

    def start(self) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "EXPLORER_CACHE": str(self.cache), "MUTANT_FD": str(write_fd),
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(self.root)}
        env.pop("EXPLORER_PRODUCERS", None)
        env.pop("EXPLORER_MODELS", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "explorer.mutants", "--worker"], cwd=self.root, env=env, stdin=subprocess.PIPE,
                                         stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        self.read_fd = read_fd
        self.buffer = b""

    def ask(self, job: dict, timeout_s: float) -> dict | None:
        """Send one pytest run; its result, or None when it did not finish in time (the worker is then restarted)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:  # it died before reading
            self.stop()
            return {"failed": [f"<worker crashed: {self.log_tail()}>"], "ran": 0, "collect_errors": []}
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.read_fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.stop()
                    return None
                chunk = os.read(self.read_fd, 65536)
                if not chunk:  # the worker died (a mutant that crashes the interpreter)
                    self.stop()
                    return {"failed": [f"<worker crashed: {self.log_tail()}>"], "ran": 0, "collect_errors": []}
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1][:200] if lines else "no output"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the worker and the processes its tests started
            self.proc.wait()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1
        self.proc = None


def _pytest_args(tests: Sequence[str], deselect: Sequence[str], stop_at_first: bool) -> list[str]:
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--tb=line", "-W", "ignore::DeprecationWarning"]
    if stop_at_first:
        args.append("-x")
    for node in deselect:
        args += ["--deselect", node]
    return args + list(tests)


def _file_of(test: str) -> str:
    return test.split("::", 1)[0]


def run(mutants: Sequence[Mutant] = MUTANTS, jobs: int = JOBS, without_tests: Sequence[str] = (), timeout_s: float = TIMEOUT_S,
        progress: Callable[[str], None] | None = None) -> Report:
    """Plant each mutant in a copy of the working tree and run its unit tests; see the module docstring."""
    start = time.perf_counter()
    say = progress or (lambda _: None)
    jobs = max(1, min(jobs, JOBS))
    results: list[Result] = []
    baseline = Baseline()
    with tempfile.TemporaryDirectory(prefix="explorer-mutants-") as tmp:
        tmp = Path(tmp)
        workers = []
        for i in range(jobs):
            root = copy_checkout(tmp / f"copy{i}", skip=without_tests)
            workers.append(Worker(root, link_model_cache(tmp / f"cache{i}"), tmp / f"worker{i}.log"))
        selection = {m.id: [t for t in m.tests if _exists(workers[0].root, t)] for m in mutants}
        todo: queue.Queue = queue.Queue()
        for m in mutants:
            todo.put(m)

        def serve(worker: Worker) -> None:
            while True:
                try:
                    mutant = todo.get_nowait()
                except queue.Empty:
                    return
                result = _run_one(worker, mutant, selection[mutant.id], baseline, timeout_s)
                results.append(result)
                say(f"  {result.status:8} {mutant.id:40} {result.seconds:5.1f} s  {result.by}")

        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for w in workers:
                w.stop()
    order = {m.id: i for i, m in enumerate(mutants)}
    results.sort(key=lambda r: order[r.mutant.id])
    return Report(results, time.perf_counter() - start, sorted(baseline.failing))


def _exists(root: Path, test: str) -> bool:
    """Whether a selected test file (or `file::test_function`) is in the copy."""
    file, _, name = test.partition("::")
    path = root / file
    return path.is_file() and (not name or f"def {name.split('[')[0]}(" in path.read_text())


class Baseline:
    """Which tests pass on the unmutated copy, learnt only for the tests that fail under a mutant
    (each is run once, alone, without the mutant: a test that already fails kills nothing)."""

    def __init__(self):
        self.passing: set[str] = set()
        self.failing: set[str] = set()
        self.lock = threading.Lock()

    def fails(self, worker: Worker, test: str, timeout_s: float) -> bool:
        with self.lock:
            if test in self.passing or test in self.failing:
                return test in self.failing
        file = _file_of(test)
        args = _pytest_args([test], [], False) + (["--collect-only"] if test == file else [])
        answer = worker.ask({"args": args, "browser": True}, timeout_s)
        failed = answer is None or bool(answer["failed"] or answer["collect_errors"]) or (test != file and answer["ran"] == 0)
        with self.lock:
            (self.failing if failed else self.passing).add(test)
        return failed


def _run_one(worker: Worker, mutant: Mutant, tests: list[str], baseline: Baseline, timeout_s: float) -> Result:
    path = worker.root / mutant.file
    source = path.read_text() if path.is_file() else ""
    if source.count(mutant.original) != 1:
        return Result(mutant, "stale", by=f"the snippet occurs {source.count(mutant.original)} times in {mutant.file}")
    start = time.perf_counter()
    while True:
        broken = {f for f in baseline.failing if "::" not in f}
        chosen = [t for t in tests if _file_of(t) not in broken]
        if not chosen:
            return Result(mutant, "survived", time.perf_counter() - start, "no test to run")
        deselect = sorted(f for f in baseline.failing if "::" in f)
        path.write_text(source.replace(mutant.original, mutant.replacement))
        try:
            answer = worker.ask({"args": _pytest_args(chosen, deselect, True), "browser": mutant.browser}, timeout_s)
        finally:
            path.write_text(source)
        if answer is None:
            return Result(mutant, "timeout", time.perf_counter() - start, f"no answer in {timeout_s:.0f} s")
        culprits = [f for f in answer["collect_errors"] + answer["failed"] if f not in baseline.failing]
        if not culprits:
            status = "survived" if answer["ran"] else "no tests"
            return Result(mutant, status, time.perf_counter() - start, "", answer["ran"])
        first = culprits[0]
        if first.startswith("<") or not baseline.fails(worker, first, timeout_s):
            return Result(mutant, "killed", time.perf_counter() - start, first, answer["ran"])
        # that test fails without the mutant too: run the mutant again without it


# ------------------------------------------------------------------------------------------------
# The worker: pytest in-process, the copy's modules dropped before each run


class _Collector:
    """A pytest plugin: leaves out slow and (unless asked) browser tests; records failures."""

    def __init__(self, browser: bool):
        self.browser = browser
        self.failed: list[str] = []
        self.collect_errors: list[str] = []
        self.ran = 0

    def pytest_collection_modifyitems(self, config, items):
        keep, drop = [], []
        for item in items:
            slow = SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("slow")
            skip_browser = item.get_closest_marker("browser") and not self.browser
            (drop if slow or skip_browser else keep).append(item)
        items[:] = keep
        if drop:
            config.hook.pytest_deselected(items=drop)

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append(report.nodeid)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and not report.failed:
            self.ran += 1
        if report.failed and report.nodeid not in self.failed:
            self.failed.append(report.nodeid)


def _drop_local_modules(root: Path) -> None:
    prefix = str(root) + os.sep
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if name != "__main__" and (file.startswith(prefix) or name == "conftest"):
            del sys.modules[name]


def _fresh_cache(cache: Path) -> None:
    """Every run starts from a cache that holds trained models only: a source or figure index left
    by an earlier run (computed by other code) would answer for the mutated code."""
    for entry in cache.iterdir() if cache.is_dir() else ():
        if entry.name != "models":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _worker() -> int:
    import pytest

    root = Path.cwd().resolve()
    sys.dont_write_bytecode = True
    channel = os.fdopen(int(os.environ["MUTANT_FD"]), "w")
    import torch  # noqa: F401  (imported once, for every run)

    torch.set_num_threads(1)
    cache = paths.CACHE
    for line in sys.stdin:
        job = json.loads(line)
        _drop_local_modules(root)
        _fresh_cache(cache)
        collector = _Collector(job["browser"])
        try:
            pytest.main(job["args"], plugins=[collector])
        except BaseException as exc:  # noqa: BLE001 - a mutant may break pytest itself: that is a kill
            collector.failed.append(f"<pytest raised {type(exc).__name__}>")
        channel.write(json.dumps({"failed": collector.failed, "collect_errors": collector.collect_errors, "ran": collector.ran}) + "\n")
        channel.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"workers (at most {JOBS})")
    parser.add_argument("--without-tests", nargs="+", default=[], metavar="FILE", help="leave these test files out of the copies")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per mutant")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed run stops its workers and removes its copies
    chosen = list(MUTANTS)
    if args.only:
        known = {m.id: m for m in MUTANTS}
        unknown = [i for i in args.only if i not in known]
        if unknown:
            parser.error(f"unknown mutant {', '.join(unknown)}; see --list")
        chosen = [known[i] for i in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.id:40} {m.file:44} {m.bug}")
        return 0
    report = run(chosen, args.jobs, args.without_tests, args.timeout, progress=lambda s: print(s, flush=True))
    print(report.line())
    return 0 if report.score >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
