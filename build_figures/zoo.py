"""Model cards of the zoo: one loss-curve figure per model, with its recipe and size as claims."""

import altair as alt
import pandas as pd

from explorer import models
from explorer.models import zoo
from explorer.pipeline import FigureContext, figure

CURVES = {"train_loss": "train (running mean)", "heldout_loss": "held-out"}


def loss_curves(ctx: FigureContext, name: str) -> alt.Chart:
    run = models.training_run(name, scale=ctx.scale, device=ctx.device)
    cfg = zoo.config(name, ctx.scale)
    arch, train = cfg["arch"], cfg["train"]
    for key in ("n_layers", "d_model", "n_heads", "d_head", "n_ctx", "d_vocab"):
        ctx.claim(key, arch[key])
    ctx.claim("d_mlp", arch["d_mlp"] or 0)
    ctx.claim("steps", train["steps"])
    ctx.claim("batch", train["batch"])
    ctx.claim("lr", train["lr"])
    ctx.claim("params", sum(v.numel() for v in run.state_dict.values()))
    ctx.claim("tokens_seen", run.tokens_seen)
    ctx.claim("heldout_loss", run.heldout_loss)
    ctx.claim("initial_heldout_loss", run.history[0]["heldout_loss"])

    rows = [
        {"tokens": h["tokens"], "step": h["step"], "curve": label, "loss": round(h[key], 4)}
        for h in run.history
        for key, label in CURVES.items()
        if h[key] == h[key]  # the train loss of step 0 is undefined (nothing trained yet)
    ]
    show = alt.param(name="curves", value="both", bind=alt.binding_radio(options=["both", *CURVES.values()], name="Show "))
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("tokens:Q", title="tokens trained on"),
            y=alt.Y("loss:Q", title="cross-entropy (nats/token)", scale=alt.Scale(zero=False)),
            color=alt.Color("curve:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["step:Q", "tokens:Q", "curve:N", alt.Tooltip("loss:Q", format=".3f")],
        )
        .transform_filter((show == "both") | (alt.datum.curve == show))
        .add_params(show)
        .properties(width="container", height=240)
    )


def _register(name: str) -> None:
    entry = zoo.ZOO[name]
    data = "the Python standard library's source (held-out loss on files it never saw)" if entry.dataset == "stdlib" else (
        "the synthetic task of random tokens repeating with a random period (held-out loss on fresh rows)"
    )

    @figure(
        f"zoo-{name}-loss",
        title=f"Training of {name}",
        caption=f"Next-token loss of {name} over training on {data}; the training curve is the running mean between evaluations.",
        model=f"{name} (explorer zoo, trained by explorer/models/zoo.py)",
    )
    def producer(ctx: FigureContext) -> alt.Chart:
        return loss_curves(ctx, name)


for _name in zoo.ZOO:
    _register(_name)
