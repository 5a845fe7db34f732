"""Indirect-object identification: a small attention-only model trained on IOI sentences, and its circuit.

The model (3 layers, 4 heads, attention only) is trained here, over three seeds, on sentences from
explorer/data/ioi.py with next-token prediction on every word; the last word of each is the
indirect object. The circuit is then found with the measurements of explorer/techniques/ioi.py and
set beside GPT-2 small's published one. With `MODEL=gpt2` (weights in the local cache) the same
producers measure GPT-2 on the same templates, read with its own tokenizer.
"""

import altair as alt
import pandas as pd
import torch

from explorer import artifacts, charts
from explorer.data import ioi as ioi_data
from explorer.ensemble import claim_over_seeds
from explorer.longruns import ioi as run
from explorer.models import training
from explorer.pipeline import FigureContext, figure
from explorer.techniques import ioi, patching, probes, prompts

SEEDS = run.SEEDS
OURS = "ioi-3l: 3-layer attention-only transformer trained on IOI sentences (explorer/longruns/ioi.py, stored weights), seeds 0-2"
SIZES = {"full": dict(eval_prompts=48, random_sets=40, templates=8), "smoke": dict(eval_prompts=12, random_sets=10, templates=4)}  # smoke: the first four templates
THRESHOLD = 0.1  # a head is in the circuit when taking its output from the ABC run moves the logit difference by a tenth
# GPT-2 small's circuit (Wang et al. 2022, as ARENA and ACDC list it): 26 heads in 7 classes
GPT2_CIRCUIT = {
    "name mover": [(9, 9), (10, 0), (9, 6)],
    "backup name mover": [(10, 10), (10, 6), (10, 2), (10, 1), (11, 2), (9, 7), (9, 0), (11, 9)],
    "negative name mover": [(10, 7), (11, 10)],
    "S-inhibition": [(7, 3), (7, 9), (8, 6), (8, 10)],
    "induction": [(5, 5), (5, 8), (5, 9), (6, 9)],
    "duplicate token": [(0, 1), (0, 10), (3, 0)],
    "previous token": [(2, 2), (4, 11)],
}
# Ours has one more: a head at END that attends to S2 and writes against S itself, straight into the
# logits (Wang et al.'s S-inhibition heads attend to S2 too, but act through the name movers' queries).
CLASSES = (*GPT2_CIRCUIT, "S suppressor")
SUPPRESSOR_DLA = 0.25  # ... an END head attending to S2 whose direct push is at least this share of the logit difference


def stored(seed: int) -> artifacts.Artifact:
    """A stored training run (literal names, so the figures hash each one's provenance)."""
    return {0: lambda: artifacts.load("ioi-3l-s0"), 1: lambda: artifacts.load("ioi-3l-s1"), 2: lambda: artifacts.load("ioi-3l-s2")}[seed]()


def our_model(seed: int, step: int | None = None, device=None):
    """A stored IOI model (or one of its checkpoints) as a TransformerBridge with its word-level tokenizer."""
    stored_run = stored(seed)
    weights = stored_run.weights if step is None else stored_run.checkpoints[step]
    model = training.build_bridge(run.ARCH, tokenizer=ioi_data.tokenizer(), device=device)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model.eval()


def batches(model, n: int, hub: bool, templates: int = len(ioi_data.TEMPLATES)) -> list[ioi.Batch]:
    """One batch per template and order (ABBA, BABA), `n` prompts each, on held-out draws (a generator
    apart from training's): within a batch every role sits at one position."""
    return [one_batch(model, n, hub, t, o, single_token_names(model, hub, t)) for t in range(templates) for o in range(len(ioi_data.ORDERS))]


def single_token_names(model, hub: bool, template: int) -> list[str]:
    """The names that are one token wherever template `template` puts them: with GPT-2's leading space
    (" Karen"), and also without it when the template opens on a name (GPT-2 reads "Karen" as two)."""
    def one_token(text: str) -> bool:
        return len(model.tokenizer.encode(text, add_special_tokens=False)) == 1

    opens_on_name = ioi_data.TEMPLATES[template].startswith("{")
    return [name for name in ioi_data.NAMES if one_token((" " if hub else "") + name) and (not (hub and opens_on_name) or one_token(name))]


def one_batch(model, n: int, hub: bool, t: int, o: int, names: list[str]) -> ioi.Batch:
    s = ioi_data.sample(n, torch.Generator().manual_seed(10_000 + 2 * t + o), names=names, templates=(ioi_data.TEMPLATES[t],),
                        orders=(ioi_data.ORDERS[o],))  # fmt: skip
    start = prompts.start_tokens(model) if hub else []  # GPT-2 reads its end-of-text token first
    clean = ioi_data.encode(model.tokenizer, s.prompts(), leading_space=hub)
    corrupted = ioi_data.encode(model.tokenizer, s.prompts(corrupted=True), leading_space=hub)
    words = s.words[0]
    s1 = words.index(s.s[0])
    positions = {"IO": words.index(s.io[0]), "S1": s1, "S1+1": s1 + 1, "S2": max(i for i, w in enumerate(words) if w == s.s[0]), "END": len(words) - 1}
    if any(row.index(io) != positions["IO"] or row.index(sub) != positions["S1"] for row, io, sub in zip(s.words, s.io, s.s, strict=True)):
        raise ValueError(f"IOI template {t}, {ioi_data.ORDERS[o]}: names sit at different positions in different prompts")
    prefix = torch.tensor([start] * n, dtype=torch.long).reshape(n, len(start))
    return ioi.Batch(torch.cat([prefix, clean], 1), torch.cat([prefix, corrupted], 1), name_ids(model, s.io, hub), name_ids(model, s.s, hub),
                     {k: v + len(start) for k, v in positions.items()}, t)  # fmt: skip


def name_ids(model, names: list[str], hub: bool) -> torch.Tensor:
    """Each name's token id (GPT-2 style with a leading space for hub models)."""
    return torch.tensor([model.tokenizer.encode((" " if hub else "") + x, add_special_tokens=False)[0] for x in names])


def mean_over(batches_: list[ioi.Batch], fn) -> torch.Tensor | dict:
    """The mean of `fn(batch)` over the template batches (tensors, floats, or dicts of them)."""
    values = [fn(b) for b in batches_]
    if isinstance(values[0], dict):
        return {k: sum(v[k] for v in values) / len(values) for k in values[0]}
    return sum(values) / len(values)


def classify(row: dict, logit_diff: float) -> str | None:
    """A head's IOI class from where its output matters, where it looks and what it writes (None: not in the circuit)."""
    effects = {role: 1.0 - row[f"left_{role}"] for role in ("END", "S2", "S1+1")}  # share of the logit difference lost
    role = max(effects, key=lambda r: abs(effects[r]))
    if abs(effects[role]) < THRESHOLD:
        return None
    if role == "END":
        if row["dla"] < 0:
            return "negative name mover"
        if row["END->IO"] > row["END->S2"]:
            return "name mover"
        return "S suppressor" if row["dla"] >= SUPPRESSOR_DLA * logit_diff else "S-inhibition"
    if role == "S2":
        return "duplicate token" if row["S2->S1"] >= row["S2->S1+1"] else "induction"
    return "previous token"


IOI_CPU_WORK = 4e13  # parameters x tokens x passes a CPU takes on (GPT-2 small's full analysis: about 7e14, hours here)


def affordable(ctx: FigureContext, model) -> None:
    """TooCostly (the figure is skipped, with one line) when patching every head at every role over
    every template batch would take hours on this CPU; a GPU runs it."""
    size = SIZES[ctx.scale]
    passes = 2 * size["templates"] * (len(("END", "S2", "S1+1")) * model.cfg.n_layers * model.cfg.n_heads + size["random_sets"] + 8)
    work = probes.parameter_count(model) * size["eval_prompts"] * PROMPT_TOKENS * passes
    if str(ctx.device) == "cpu" and work > IOI_CPU_WORK:
        raise patching.TooCostly(
            f"{ctx.model}: patching each of its {model.cfg.n_layers * model.cfg.n_heads} heads at three positions over "
            f"{2 * size['templates']} template batches of {size['eval_prompts']} prompts is {passes} forward passes: hours on this CPU, "
            "minutes on a GPU (make figures runs on one when there is one)")


PROMPT_TOKENS = 16  # about the length of an IOI prompt in tokens


def analyse(model, scale: str, hub: bool, seed: int = 0) -> dict:
    """Every measurement of one model: behaviour, head table with classes, and circuit faithfulness."""
    size = SIZES[scale]
    data = batches(model, size["eval_prompts"], hub, size["templates"])
    result = mean_over(data, lambda b: ioi.behaviour(model, b))
    attention = mean_over(data, lambda b: ioi.attention_roles(model, b))
    on_abc = mean_over(data, lambda b: ioi.attention_roles(model, b, corrupted=True))["END->S2"]  # S2's slot holding a fresh name
    dla = mean_over(data, lambda b: ioi.head_dla(model, b))
    left = mean_over(data, lambda b: ioi.patch_heads_by_role(model, b))
    rows = []
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            row = {"layer": layer, "head": head, "label": f"L{layer}H{head}", "dla": float(dla[layer, head]),
                   **{f"left_{r}": float(v[layer, head]) for r, v in left.items()}, **{k: float(v[layer, head]) for k, v in attention.items()}}  # fmt: skip
            row["END->S2 (ABC)"] = float(on_abc[layer, head])
            row["class"] = classify(row, result["logit_diff"])
            rows.append(row)
    table = pd.DataFrame(rows)
    circuit = [(r["layer"], r["head"]) for r in rows if r["class"] is not None]
    full = result["logit_diff"]
    means = {id(b): ioi.abc_means(model, b) for b in data}
    kept = mean_over(data, lambda b: ioi.circuit_logit_diff(model, b, circuit, means[id(b)]))
    nothing = mean_over(data, lambda b: ioi.circuit_logit_diff(model, b, [], means[id(b)]))
    suppressors = [(r["layer"], r["head"]) for r in rows if r["class"] == "S suppressor"]
    alone = mean_over(data, lambda b: ioi.circuit_logit_diff(model, b, suppressors, means[id(b)])) if suppressors else 0.0
    everyone = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    generator = torch.Generator().manual_seed(seed)
    random_sets = []
    for _ in range(size["random_sets"]):
        pick = torch.randperm(len(everyone), generator=generator)[: len(circuit)].tolist()
        random_sets.append(mean_over(data, lambda b, pick=pick: ioi.circuit_logit_diff(model, b, [everyone[i] for i in pick], means[id(b)])) / full)
    randoms = torch.tensor(random_sets)
    return {**result, "table": table, "circuit": circuit, "faithfulness": kept / full, "nothing": nothing / full, "suppressors_alone": alone / full,
            "random_mean": randoms.mean().item(), "random_p95": torch.quantile(randoms, 0.95).item(), "n_heads": len(everyone),
            "names": len(data[0].io), "prompts": sum(len(b.io) for b in data)}  # fmt: skip


def runs_of(ctx: FigureContext) -> dict[str, dict]:
    """Our three seeds (analysed once per build, shared by both figures), or the hub model asked for."""
    prompts.decoder_only(ctx.model, "indirect-object identification is a next-token task")
    key = (ctx.scale, ctx.model)
    if key not in _ANALYSED:
        if ctx.model == OURS:
            _ANALYSED[key] = {}
            for s in SEEDS:
                untrained = our_model(s, step=0, device=ctx.device)
                _ANALYSED[key][f"seed {s}"] = {**analyse(our_model(s, device=ctx.device), ctx.scale, False, s),
                                               "untrained": mean_over(batches(untrained, 4, False), lambda b: ioi.behaviour(untrained, b))["logit_diff"]}  # fmt: skip
        else:
            model = prompts.load(ctx, ctx.model)
            affordable(ctx, model)
            _ANALYSED[key] = {ctx.model: analyse(model, ctx.scale, True)}
    return _ANALYSED[key]


_ANALYSED: dict[tuple[str, str], dict] = {}
SHORT = {"S suppressor": "SS", "name mover": "NM", "backup name mover": "BNM", "negative name mover": "NNM", "S-inhibition": "SI", "induction": "IND",
         "duplicate token": "DT", "previous token": "PT"}  # fmt: skip


def claim_runs(ctx: FigureContext, runs: dict[str, dict], key: str, fn) -> None:
    """One claim over our seeds (mean and range), or the hub model's single value."""
    values = {int(name.split()[-1]) if name.startswith("seed") else 0: float(fn(r)) for name, r in runs.items()}
    if len(values) > 1:
        claim_over_seeds(ctx, key, values)
    else:
        ctx.claim(key, next(iter(values.values())))


@figure(
    "ioi-heads",
    title="Which heads answer 'gave a drink to ...': the IOI circuit of a model trained on IOI sentences",
    caption=(
        "Every head of the chosen run (columns: head, rows: layer). Left: the share of the logit difference (IO minus S "
        "at the last word) lost when the head's output at END, at S2 or at the word after S1 is taken from the corrupted "
        "run, in which the repeated name is a third name (ABC); negative: the model does better without it. Right: the "
        "head's direct push on IO - S at END (logits). Cell text: the class the head is given (SS S suppressor: attends "
        "to S2 and pushes S down itself; NM name mover, NNM negative name mover, SI S-inhibition, IND induction, DT duplicate token, PT previous token; blank: outside the "
        "circuit). Hover a head for its attention between the roles. Mean over 8 templates."
    ),
    model=OURS,
    model_option=True,
)
def ioi_heads(ctx: FigureContext) -> alt.Chart:
    runs = runs_of(ctx)
    long = []
    for name, r in runs.items():
        for row in r["table"].to_dict("records"):
            base = {"run": name, "layer": row["layer"], "head": row["head"], "label": row["label"], "cls": SHORT.get(row["class"], ""),
                    "class": row["class"] or "outside", **{k: round(row[k], 3) for k in ("END->IO", "END->S2", "S2->S1", "S2->S1+1", "S1+1->S1")}}  # fmt: skip
            for i, (measure, value) in enumerate((("lost, output at END", 1 - row["left_END"]), ("lost, output at S2", 1 - row["left_S2"]),
                                                  ("lost, output after S1", 1 - row["left_S1+1"]))):  # fmt: skip
                long.append({**base, "measure": measure, "m": i, "v": round(value, 3)})
            long.append({**base, "measure": "direct push on IO - S", "m": 3, "v": round(row["dla"], 3)})
    data = pd.DataFrame(long)
    first = next(iter(runs.values()))
    claim_runs(ctx, runs, "circuit_heads", lambda r: len(r["circuit"]))
    at_end = ("name mover", "negative name mover", "S-inhibition", "S suppressor")  # the classes whose output matters at END
    claim_runs(ctx, runs, "circuit_heads_at_end", lambda r: int(r["table"]["class"].isin(at_end).sum()))
    claim_runs(ctx, runs, "name_movers", lambda r: int((r["table"]["class"] == "name mover").sum()))
    claim_runs(ctx, runs, "s_inhibition", lambda r: int((r["table"]["class"] == "S-inhibition").sum()))
    claim_runs(ctx, runs, "s_suppressors", lambda r: int((r["table"]["class"] == "S suppressor").sum()))
    suppressors = lambda r: r["table"][r["table"]["class"] == "S suppressor"]  # noqa: E731
    claim_runs(ctx, runs, "suppressor_attention_s2", lambda r: float(suppressors(r)["END->S2"].mean()) if len(suppressors(r)) else 0.0)
    claim_runs(ctx, runs, "suppressor_attention_s2_abc", lambda r: float(suppressors(r)["END->S2 (ABC)"].mean()) if len(suppressors(r)) else 0.0)
    claim_runs(ctx, runs, "suppressor_dla_share", lambda r: float(suppressors(r).dla.sum() / r["logit_diff"]) if len(suppressors(r)) else 0.0)
    claim_runs(ctx, runs, "suppressor_end_loss", lambda r: float((1 - suppressors(r).left_END).max()) if len(suppressors(r)) else 0.0)
    claim_runs(ctx, runs, "s2_heads", lambda r: int(r["table"]["class"].isin(["duplicate token", "induction"]).sum()))
    claim_runs(ctx, runs, "top_dla", lambda r: float(r["table"].dla.max()))
    claim_runs(ctx, runs, "top_end_loss", lambda r: float((1 - r["table"].left_END).max()))
    claim_runs(ctx, runs, "top_s2_loss", lambda r: float((1 - r["table"].left_S2).max()))
    claim_runs(ctx, runs, "name_mover_attention_io", lambda r: float(r["table"][r["table"]["class"] == "name mover"]["END->IO"].mean())
               if (r["table"]["class"] == "name mover").any() else 0.0)  # fmt: skip
    claim_runs(ctx, runs, "name_movers_in_last_layer", lambda r: int(((r["table"]["class"] == "name mover") & (r["table"].layer == r["table"].layer.max())).sum()))
    ctx.claim("heads", first["n_heads"])
    ctx.claim("runs", len(runs))

    panel = charts.Panel()
    run_pick = panel.select("run", list(runs), label="Run", value=list(runs)[0])
    base = alt.Chart(data).transform_filter(alt.datum.run == run_pick).encode(
        x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)), y=alt.Y("layer:O", title="layer"))
    tips = [alt.Tooltip("label:N", title="head"), alt.Tooltip("class:N"), alt.Tooltip("measure:N"), alt.Tooltip("v:Q", title="value", format=".2f"),
            *[alt.Tooltip(f"{k}:Q", title=f"attention {k}", format=".2f") for k in ("END->IO", "END->S2", "S2->S1", "S2->S1+1", "S1+1->S1")]]  # fmt: skip
    cells = base.mark_rect().encode(color=alt.Color("v:Q", scale=charts.diverging(1.0, clamp=True), title="value"), tooltip=tips)
    text = base.mark_text(fontSize=charts.SMALL_SIZE).encode(text="cls:N", color=charts.ink_on("v"))
    chart = (alt.layer(cells, text).properties(width=alt.Step(40), height=alt.Step(28))
             .facet(facet=alt.Facet("measure:N", title=None, sort=alt.EncodingSortField("m", op="min"),
                                    header=alt.Header(labelFontSize=charts.LABEL_SIZE)), columns=4, spacing=14))  # fmt: skip
    return panel.finish(chart)


@figure(
    "ioi-circuit",
    title="How much of the answer the found circuit carries alone, and its shape beside GPT-2 small's",
    caption=(
        "Left: the logit difference IO - S as a share of the full model's, when every head outside a set is "
        "mean-ablated (its output replaced by its mean over the ABC run, position by position): the found circuit, "
        "random sets of as many heads (mean and 95th percentile), and no head at all. One point per run. Right: heads "
        "per class in the found circuits (mean over runs) beside the 26 heads in 7 classes that Wang et al. (2022) "
        "found in GPT-2 small (which has no S-suppressor class)."
    ),
    model=OURS,
    model_option=True,
)
def ioi_circuit(ctx: FigureContext) -> alt.Chart:
    runs = runs_of(ctx)
    claim_runs(ctx, runs, "logit_diff", lambda r: r["logit_diff"])
    claim_runs(ctx, runs, "io_over_s", lambda r: r["io_over_s"])
    claim_runs(ctx, runs, "io_top1", lambda r: r["io_top1"])
    claim_runs(ctx, runs, "corrupted_logit_diff", lambda r: r["corrupted_logit_diff"])
    claim_runs(ctx, runs, "faithfulness", lambda r: r["faithfulness"])
    claim_runs(ctx, runs, "random_faithfulness_mean", lambda r: r["random_mean"])
    claim_runs(ctx, runs, "random_faithfulness_p95", lambda r: r["random_p95"])
    claim_runs(ctx, runs, "nothing_faithfulness", lambda r: r["nothing"])
    claim_runs(ctx, runs, "suppressors_alone_faithfulness", lambda r: r["suppressors_alone"])
    claim_runs(ctx, runs, "circuit_share_of_heads", lambda r: len(r["circuit"]) / r["n_heads"])
    if all("untrained" in r for r in runs.values()):
        claim_runs(ctx, runs, "untrained_logit_diff", lambda r: r["untrained"])
    first = next(iter(runs.values()))
    ctx.claim("prompts", first["prompts"])
    ctx.claim("templates", len(ioi_data.TEMPLATES))
    ctx.claim("gpt2_heads", sum(len(v) for v in GPT2_CIRCUIT.values()))
    ctx.claim("gpt2_classes", len(GPT2_CIRCUIT))
    ctx.claim("gpt2_share_of_heads", sum(len(v) for v in GPT2_CIRCUIT.values()) / 144)
    ctx.claim("classes_found", sum(any((r["table"]["class"] == c).any() for r in runs.values()) for c in CLASSES))
    ctx.claim("gpt2_classes_found", sum(any((r["table"]["class"] == c).any() for r in runs.values()) for c in GPT2_CIRCUIT))

    bars = []
    for name, r in runs.items():
        for label, value in (("full model", 1.0), ("found circuit", r["faithfulness"]), ("random sets (mean)", r["random_mean"]),
                             ("random sets (95th pct)", r["random_p95"]), ("no head", r["nothing"])):  # fmt: skip
            bars.append({"run": name, "set": label, "share": round(value, 3)})
    sets = ["full model", "found circuit", "random sets (mean)", "random sets (95th pct)", "no head"]
    points = alt.Chart(pd.DataFrame(bars)).mark_point(filled=True, size=80).encode(
        y=alt.Y("set:N", sort=sets, title=None), x=alt.X("share:Q", title="share of the full model's logit difference"),
        color=alt.Color("run:N", scale=charts.series_scale(list(runs)), title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["run:N", "set:N", alt.Tooltip("share:Q", format=".2f")],
    ).properties(width=300, height=alt.Step(30), title="Faithfulness")
    counts = []
    for cls in CLASSES:
        ours = sum(int((r["table"]["class"] == cls).sum()) for r in runs.values()) / len(runs)
        counts.append({"class": cls, "model": "found here (mean over runs)", "heads": round(ours, 2)})
        counts.append({"class": cls, "model": "GPT-2 small (Wang et al.)", "heads": len(GPT2_CIRCUIT.get(cls, []))})
    models_ = ["found here (mean over runs)", "GPT-2 small (Wang et al.)"]
    shape = alt.Chart(pd.DataFrame(counts)).mark_bar().encode(
        y=alt.Y("class:N", sort=list(CLASSES), title=None), yOffset=alt.YOffset("model:N", sort=models_),
        x=alt.X("heads:Q", title="heads in the class"),
        color=alt.Color("model:N", scale=charts.series_scale(models_), title=None, legend=alt.Legend(orient="bottom", direction="vertical")),
        tooltip=["class:N", "model:N", alt.Tooltip("heads:Q", format=".2f")],
    ).properties(width=260, height=alt.Step(14), title="Circuit shape")
    return alt.hconcat(points, shape, spacing=30).resolve_scale(color="independent")
