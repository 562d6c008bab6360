"""The one stopping monitor shared by CG, conjugate directions, SOR/SSOR and multigrid.

A loop asks the monitor three questions:

* :meth:`Monitor.claims` - does the (possibly recursive, drifting) residual norm claim
  convergence?  If so the loop computes the *true* residual ``b - A x`` and asks
* :meth:`Monitor.confirm` - ``CONVERGED`` when the true residual meets the threshold;
  ``STAGNATION`` when two confirmations in a row failed without halving the best true
  residual (the rounding floor of the precision); ``None`` to go on;
* :meth:`Monitor.refreshed` - after a periodic replacement of the recursive residual by
  the true one: ``STAGNATION`` when the true residual is already below
  ``sqrt(eps) ||b||`` (the region where rounding, not the method, limits it) and has
  not improved by 10 % over two refreshes in a row (an unattainable ``rtol`` in float32
  then stops in a few hundred iterations instead of ``maxiter``).

:func:`curvature_status` maps a curvature ``p^H A p`` to ``BREAKDOWN`` (<= 0) or
``NONFINITE`` (NaN/Inf).  Every verdict is a :class:`~lrsolve.result.Status`.
"""
from __future__ import annotations

import math

from ..backend import eps_of
from ..result import Status

__all__ = ["Monitor", "curvature_status", "eps_of"]


def curvature_status(value) -> Status | None:
    """``None`` for a positive real curvature, else ``BREAKDOWN`` or ``NONFINITE``."""
    v = value.real if isinstance(value, complex) else float(value)
    if v > 0.0:
        return None
    return Status.BREAKDOWN if math.isfinite(v) else Status.NONFINITE


class Monitor:
    """Stopping decisions for one right-hand side with threshold ``tol``."""

    __slots__ = ("tol", "failed", "best_true", "refresh_stalls", "best_refresh", "floor")

    def __init__(self, tol: float, floor: float = 0.0):
        self.tol = float(tol)
        self.floor = float(floor)
        self.failed = 0
        self.best_true = math.inf
        self.refresh_stalls = 0
        self.best_refresh = math.inf

    def claims(self, rnorm: float) -> bool:
        return rnorm <= self.tol

    def confirm(self, true_norm: float) -> Status | None:
        if true_norm <= self.tol:
            return Status.CONVERGED
        if not math.isfinite(true_norm):
            return Status.NONFINITE
        self.failed = self.failed + 1 if true_norm > 0.5 * self.best_true else 0
        self.best_true = min(self.best_true, true_norm)
        if self.failed >= 2:
            return Status.STAGNATION
        return None

    def refreshed(self, true_norm: float, recursive_norm: float) -> Status | None:
        if true_norm <= self.tol:
            return Status.CONVERGED
        if not math.isfinite(true_norm):
            return Status.NONFINITE
        if true_norm <= self.floor and true_norm > 0.9 * self.best_refresh:
            self.refresh_stalls += 1
        else:
            self.refresh_stalls = 0
        self.best_refresh = min(self.best_refresh, true_norm)
        if self.refresh_stalls >= 2:
            return Status.STAGNATION
        return None
