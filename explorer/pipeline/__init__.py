"""The figure pipeline: producers in build_figures/ register figures; `explorer figures` builds them.

A producer is a function decorated with `@figure(...)` that takes a FigureContext and returns an
Altair chart. The pipeline seeds, times, hashes and writes it; producers never touch paths.
"""

from explorer.pipeline.context import FigureContext
from explorer.pipeline.registry import Figure, figure

__all__ = ["Figure", "FigureContext", "figure"]
