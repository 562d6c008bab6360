"""Low-rank matrix completion by robust alternating minimisation (Gu, Song, Yin, Zhang 2024).

``U, V, info = lrsolve.completion.altmin(rows, cols, values, shape, rank=10,
solver="sketch")`` completes a matrix from observed entries; ``predict(U, V, rows,
cols)`` evaluates ``U V^T`` at coordinates.  See ``docs/completion.md``.
"""
from ._altmin import SOLVERS, altmin, predict

__all__ = ["altmin", "predict", "SOLVERS"]
