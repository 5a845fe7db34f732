"""The flagship's shape and names, apart from any code, so its training runs' key holds only what trains it."""

from typing import Any

ARCH: dict[str, Any] = dict(
    n_layers=2, d_model=128, n_heads=4, d_head=32, d_mlp=None, n_ctx=256, d_vocab=256, attn_only=True,
    act_fn="gelu", normalization_type="LN", positional_embedding_type="standard", init_mode="gpt2",
)  # fmt: skip
SEEDS = (0, 1, 2)
PRINTABLE = tuple(range(32, 127))  # the probe's random characters: printable ASCII, as in the issue that measured it


def name(seed: int) -> str:
    """The long run (models/<name>/) of one seed."""
    return f"flagship-bytes-2l-s{seed}"
