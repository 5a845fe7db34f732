"""The flagship's recipe with MLPs: a byte-level 2-layer transformer with GELU MLPs (d_mlp 512) on Python source.

Issue 10 asks for a model with MLPs beside the attention-only flagship (the representation articles
need MLP neurons). Same corpus, batches, optimiser and film as explorer/longruns/flagship.py, whose
training function this reuses; only the architecture and the thread count differ. One seed: at
about 13k bytes/s on one thread (the MLPs triple the work per byte) a run takes about 55 minutes
here. Train it with `make models NAME=flagship-bytes-gelu-2l-s0`.
"""

from explorer import artifacts
from explorer.longruns import flagship as attn_only
from explorer.models import flagship_config

ARCH = dict(flagship_config.ARCH, attn_only=False, d_mlp=512)
SEED = 0
NAME = f"flagship-bytes-gelu-2l-s{SEED}"

artifacts.long_run(NAME, config=dict(attn_only.CONFIG, arch=ARCH, threads=1, seed=SEED), code=(attn_only.train, __file__),
                   description=f"flagship byte-level 2-layer transformer with GELU MLPs on Python source, seed {SEED}")(attn_only.train)  # fmt: skip
