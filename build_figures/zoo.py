"""The model zoo in one figure: every model's loss over training, side by side, with its recipe and
size as claims (the page's comparison table quotes them)."""

import math

import altair as alt
import pandas as pd

from explorer import charts, models
from explorer.models import zoo
from explorer.pipeline import FigureContext, figure

CURVES = {"heldout_loss": "held-out", "train_loss": "train (running mean)"}
DATASETS = {"stdlib": "Python standard library (the language models)", "induction": "repeated random tokens (induction-2l)"}


def key_of(name: str) -> str:
    return name.replace("-", "_")


def record_card(ctx: FigureContext, name: str, run, cfg: dict) -> None:
    """The model card's numbers, as claims `<model>_<field>`."""
    arch, train = cfg["arch"], cfg["train"]
    key = key_of(name)
    for field in ("n_layers", "d_model", "n_heads", "d_head", "n_ctx", "d_vocab"):
        ctx.claim(f"{key}_{field}", arch[field])
    ctx.claim(f"{key}_d_mlp", arch["d_mlp"] or 0)
    ctx.claim(f"{key}_steps", train["steps"])
    ctx.claim(f"{key}_batch", train["batch"])
    ctx.claim(f"{key}_lr", train["lr"])
    ctx.claim(f"{key}_params", sum(v.numel() for v in run.state_dict.values()))
    ctx.claim(f"{key}_tokens_seen", run.tokens_seen)
    ctx.claim(f"{key}_heldout_loss", run.heldout_loss)
    ctx.claim(f"{key}_initial_heldout_loss", run.history[0]["heldout_loss"])
    ctx.claim(f"{key}_uniform_loss", math.log(arch["d_vocab"]))  # the loss of a uniform guess
    late = min(run.history, key=lambda h: abs(h["step"] - 0.75 * train["steps"]))
    ctx.claim(f"{key}_heldout_drop_last_quarter", late["heldout_loss"] - run.heldout_loss)  # > 0: still falling


def history_rows(name: str, run, dataset: str) -> list[dict]:
    return [
        {"model": name, "dataset": dataset, "tokens": h["tokens"], "step": h["step"], "curve": label, "loss": round(h[key], 4)}
        for h in run.history
        for key, label in CURVES.items()
        if h[key] == h[key]  # the train loss of step 0 is undefined (nothing trained yet)
    ]


@figure(
    "zoo-loss",
    title="Training of every zoo model",
    caption=(
        "Next-token loss over training, one line per model. Left: the five language models, trained on "
        "the Python standard library's source (held-out loss on files they never saw). Right: induction-2l, "
        "trained on random tokens that repeat with a random period (held-out loss on fresh rows); its loss "
        "is not comparable with the others'. The dashed line is the loss of a uniform guess over the "
        "vocabulary. The training curve is the running mean between evaluations. One seed per model."
    ),
    model="every model of the zoo (explorer.models.ZOO), trained by explorer/models/zoo.py",
)
def zoo_loss(ctx: FigureContext) -> alt.Chart:
    rows, uniform = [], {}
    for name in zoo.ZOO:
        run = models.training_run(name, scale=ctx.scale, device=ctx.device)
        cfg = zoo.config(name, ctx.scale)
        record_card(ctx, name, run, cfg)
        dataset = zoo.ZOO[name].dataset
        rows += history_rows(name, run, dataset)
        uniform[dataset] = math.log(cfg["arch"]["d_vocab"])
    lm = [name for name in zoo.ZOO if zoo.ZOO[name].dataset == "stdlib"]
    runs = {name: models.training_run(name, scale=ctx.scale, device=ctx.device) for name in lm}
    ctx.claim("best_language_model", min(lm, key=lambda name: runs[name].heldout_loss))
    drops = [ctx.claims[f"{key_of(n)}_heldout_drop_last_quarter"] for n in lm]
    ctx.claim("language_models_min_drop_last_quarter", min(drops))
    ctx.claim("language_models_max_drop_last_quarter", max(drops))

    frame = pd.DataFrame(rows)
    panel = charts.Panel()
    curve = panel.select("curve", list(CURVES.values()), label="Loss", radio=True)
    colours = charts.series_scale(list(zoo.ZOO))
    views = [loss_view(frame, dataset, [n for n in zoo.ZOO if zoo.ZOO[n].dataset == dataset], colours, uniform[dataset], curve)
             for dataset in DATASETS if dataset in uniform]
    return panel.finish(alt.hconcat(*views).resolve_scale(y="independent"))


def loss_view(frame: pd.DataFrame, dataset: str, names: list[str], colours: alt.Scale, uniform: float,
              curve: alt.Parameter) -> alt.LayerChart:
    data = frame[frame.dataset == dataset]
    base = alt.Chart(data).transform_filter(alt.datum.curve == curve)
    lines = base.mark_line(point=alt.OverlayMarkDef(size=14)).encode(
        x=alt.X("tokens:Q", title="tokens trained on", axis=alt.Axis(format="~s")),
        y=alt.Y("loss:Q", title="cross-entropy (nats/token)", scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", scale=colours, title="model", legend=alt.Legend(orient="bottom", columns=3)),
        tooltip=["model:N", "step:Q", alt.Tooltip("tokens:Q", format=","), "curve:N", alt.Tooltip("loss:Q", format=".3f")],
    )
    hover = charts.hover_rule(base, x="tokens", series="model", y="loss", names=names, x_title="tokens", name=f"near_{dataset}")
    chance = (
        alt.Chart(pd.DataFrame({"loss": [round(uniform, 4)], "label": ["uniform guess"], "tokens": [int(data.tokens.max())]}))
        .mark_rule(color=charts.MUTED, strokeDash=[4, 3])
        .encode(y="loss:Q", tooltip=[alt.Tooltip("label:N", title="line"), alt.Tooltip("loss:Q", format=".3f")])
    )
    width = 420 if dataset == "stdlib" else 260
    label = chance.mark_text(align="right", dy=-7, color=charts.MUTED, fontSize=charts.SMALL_SIZE).encode(
        x="tokens:Q", text="label:N")
    return alt.layer(lines, hover, chance, label).properties(width=width, height=260, title=DATASETS[dataset])
