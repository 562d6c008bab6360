"""Low-rank matrix completion by robust alternating minimisation (Gu, Song, Yin, Zhang 2024).

``res = lrsolve.completion.altmin(rows, cols, values, shape, rank=10, solver="sketch")``
completes a matrix from observed entries and returns a :class:`CompletionResult`
(``U, V = res``; ``res.status``, ``res.converged``, ``res.history``); ``predict(U, V,
rows, cols)`` evaluates ``U V^T`` at coordinates.  See ``docs/completion.md``.
"""
from ._altmin import SOLVERS, CompletionResult, altmin, predict

__all__ = ["altmin", "predict", "CompletionResult", "SOLVERS"]
