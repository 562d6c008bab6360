"""SolveResult: the outcome of every linear solve in lrsolve.

``info`` keeps SciPy's meaning (0 converged, > 0 the iteration count reached without
convergence, < 0 breakdown or illegal input); ``reason`` says in words why the solve
stopped and what to try next.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SolveResult", "REASONS"]

REASONS = {
    "converged": "converged: ||b - A x|| <= max(rtol * ||b||, atol)",
    "maxiter": "maximum number of iterations reached without convergence - try increasing "
               "maxiter, loosening rtol, or a preconditioner (method='pcg-amg')",
    "breakdown": "breakdown: p^H A p <= 0, so A (or the preconditioner M) is not "
                 "Hermitian positive definite - CG needs an SPD system; try a method for "
                 "indefinite systems",
    "stagnation": "stagnation: the true residual stopped decreasing before the tolerance "
                  "was met (rounding floor of this precision) - loosen rtol or use float64",
    "zero_rhs": "converged: b = 0, so x = 0",
    "nonfinite": "the iteration produced NaN/Inf and was stopped; the last finite iterate "
                 "is returned",
}


@dataclass
class SolveResult:
    """Outcome of a linear solve ``A x = b``.

    Attributes
    ----------
    x : array
        The solution, on the backend, device and dtype of ``b``.
    converged : bool
        Whether ``||b - A x|| <= max(rtol ||b||, atol)`` holds for the returned ``x``.
    iterations : int
        Iterations performed.
    residuals : list of float
        Residual 2-norms ``||r_k||``, starting with the initial one.
    info : int
        SciPy's convention: 0 converged, > 0 iterations done without convergence,
        < 0 breakdown.
    reason : str
        Why the solve stopped, with a hint of what to try.
    time : float
        Wall-clock seconds of the solve (setup of a preconditioner excluded when it was
        built beforehand).
    method : str
        The method that produced the result.
    stats : dict
        Method-specific extras (matvec counts, omega used, ...).
    """

    x: Any
    converged: bool
    iterations: int
    residuals: list = field(default_factory=list)
    info: int = 0
    reason: str = ""
    time: float = 0.0
    method: str = ""
    stats: dict = field(default_factory=dict)

    @property
    def relative_residual(self) -> float:
        """Last residual norm divided by the first (``nan`` when unknown)."""
        if not self.residuals or self.residuals[0] == 0:
            return float("nan") if not self.residuals else 0.0
        return self.residuals[-1] / self.residuals[0]

    def __iter__(self):
        # Lets ``x, info = lr.solve(...)`` work the SciPy way.
        return iter((self.x, self.info))

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        res = f"{self.residuals[-1]:.3e}" if self.residuals else "n/a"
        return (f"SolveResult(method={self.method!r}, converged={self.converged}, "
                f"iterations={self.iterations}, info={self.info}, residual={res}, "
                f"time={self.time:.3g}s, reason={self.reason!r})")
