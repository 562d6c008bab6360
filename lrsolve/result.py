"""Results: the :class:`Status` enum, the common :class:`Result` base and :class:`SolveResult`.

Every family returns a result derived from :class:`Result`, so a caller can always ask
``res.converged``, ``res.status``, ``res.reason``, ``res.iterations``, ``res.history`` and
``res.time``, whatever the method.  The stop status is an enum; ``converged``, ``info``
and ``reason`` are *derived* from it:

* ``info`` keeps SciPy's meaning: 0 converged, > 0 the iteration count reached without
  convergence (``MAXITER``, ``STAGNATION``), < 0 breakdown, non-finite values or illegal
  input;
* ``reason`` is a sentence saying why the solve stopped and what to try next (the
  status's standard sentence, or a more specific one a method gives as ``detail``).

A result still unpacks the old way where that helps: ``x, info = lr.solve(...)``,
``U, V = lr.completion.altmin(...)``.
"""
from __future__ import annotations

import enum
from typing import Any

__all__ = ["Status", "Result", "SolveResult", "REASONS"]


class Status(enum.Enum):
    """Why an iterative method stopped."""

    CONVERGED = "converged"
    MAXITER = "maxiter"
    BREAKDOWN = "breakdown"
    STAGNATION = "stagnation"
    NONFINITE = "nonfinite"
    LINESEARCH = "linesearch"
    INVALID = "invalid"
    FAILED = "failed"

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value

    @property
    def ok(self) -> bool:
        return self is Status.CONVERGED


REASONS = {
    Status.CONVERGED: "converged: ||b - A x|| <= max(rtol * ||b||, atol)",
    Status.MAXITER: "maximum number of iterations reached without convergence - try "
                    "increasing maxiter, loosening rtol, or a preconditioner "
                    "(method='pcg-amg' or 'pcg-mg')",
    Status.BREAKDOWN: "breakdown: p^H A p <= 0, so A (or the preconditioner M) is not "
                      "Hermitian positive definite - CG needs an SPD system; try a method "
                      "for indefinite systems",
    Status.STAGNATION: "stagnation: the true residual stopped decreasing before the "
                       "tolerance was met (rounding floor of this precision) - loosen rtol "
                       "or use float64",
    Status.NONFINITE: "the iteration produced NaN/Inf and was stopped; the last finite "
                      "iterate is returned",
    Status.LINESEARCH: "the line search failed to make progress",
    Status.INVALID: "illegal input",
    Status.FAILED: "the method failed",
}
# Sentences for special cases that share a status.
ZERO_RHS = "converged: b = 0, so x = 0"
# Legacy string keys (kept so older call sites and user code keep working).
for _key, _st in (("converged", Status.CONVERGED), ("maxiter", Status.MAXITER),
                  ("breakdown", Status.BREAKDOWN), ("stagnation", Status.STAGNATION),
                  ("nonfinite", Status.NONFINITE)):
    REASONS[_key] = REASONS[_st]
REASONS["zero_rhs"] = ZERO_RHS


def as_status(value: Any) -> Status:
    """A :class:`Status` from a member or its string value."""
    if isinstance(value, Status):
        return value
    try:
        return Status(str(value))
    except ValueError:
        raise ValueError(f"status must be one of {[s.value for s in Status]}, got {value!r}") \
            from None


class Result:
    """The base every family's result derives from.

    Attributes
    ----------
    status : Status
        Why the method stopped.
    iterations : int
        Iterations (outer iterations, sweeps, Newton steps) performed.
    history : list
        Per-iteration record (residual norms for linear solvers; a method documents
        what its entries are).
    time : float
        Wall-clock seconds of the run (setup of a reused object excluded).
    detail : str
        A method-specific sentence that replaces the status's standard ``reason``.

    ``converged``, ``info`` and ``reason`` are derived from ``status``.
    """

    _unpack: tuple = ()

    def __init__(self, *, status: Any, iterations: int = 0, history: list | None = None,
                 time: float = 0.0, detail: str = ""):
        self.status = as_status(status)
        self.iterations = int(iterations)
        self.history = [] if history is None else history
        self.time = float(time)
        self.detail = detail

    @property
    def converged(self) -> bool:
        """True exactly when ``status is Status.CONVERGED``."""
        return self.status is Status.CONVERGED

    @property
    def success(self) -> bool:
        """Alias of :attr:`converged` (SciPy's optimize naming)."""
        return self.converged

    @property
    def info(self) -> int:
        """SciPy's integer: 0 converged, > 0 iterations done without convergence, < 0 failure."""
        if self.status is Status.CONVERGED:
            return 0
        if self.status in (Status.MAXITER, Status.STAGNATION, Status.LINESEARCH):
            return max(self.iterations, 1)
        return -1

    @property
    def reason(self) -> str:
        """Why the method stopped, in words."""
        return self.detail or REASONS[self.status]

    def __iter__(self):
        return iter(tuple(getattr(self, name) for name in self._unpack))

    def __len__(self) -> int:
        return len(self._unpack)

    def __getitem__(self, i):
        return tuple(self)[i]

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"{type(self).__name__}(status={self.status.value}, iterations="
                f"{self.iterations}, time={self.time:.3g}s, reason={self.reason!r})")


class SolveResult(Result):
    """Outcome of a linear solve ``A x = b`` (unpacks as ``x, info``).

    Attributes
    ----------
    x : array
        The solution, on the backend, device and dtype of ``b``; shape ``(n, k)`` for a
        batch of ``k`` right-hand sides.
    status, converged, info, reason, iterations, time
        See :class:`Result`.  For a batch: ``status`` is the worst column status,
        ``iterations`` the largest column count; ``stats["columns"]`` holds per-column
        ``status``, ``iterations`` and ``residual``.
    residuals : list of float
        Residual 2-norms ``||r_k||``, starting with the initial one (= ``history``).
    method : str
        The method that produced the result.
    stats : dict
        Method-specific extras (matvec counts, omega used, setup time, ...).
    """

    _unpack = ("x", "info")

    def __init__(self, x: Any = None, converged: bool | None = None, iterations: int = 0,
                 residuals: list | None = None, info: int | None = None, reason: str = "",
                 time: float = 0.0, method: str = "", stats: dict | None = None, *,
                 status: Any = None, detail: str = ""):
        if status is None:
            # Legacy form: converged / info / reason given; map them onto a status.
            status = _status_from_legacy(converged, info, reason)
        st = as_status(status)
        if not detail and reason and reason != REASONS.get(st):
            detail = reason
        super().__init__(status=st, iterations=iterations,
                         history=[] if residuals is None else residuals, time=time,
                         detail=detail)
        self.x = x
        self.method = method
        self.stats = {} if stats is None else stats

    @property
    def residuals(self) -> list:
        return self.history

    @residuals.setter
    def residuals(self, value: list) -> None:
        self.history = value

    @property
    def relative_residual(self) -> float:
        """Last residual norm divided by the first (``nan`` when unknown)."""
        if not self.residuals or self.residuals[0] == 0:
            return float("nan") if not self.residuals else 0.0
        return self.residuals[-1] / self.residuals[0]

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        res = f"{self.residuals[-1]:.3e}" if self.residuals else "n/a"
        return (f"SolveResult(method={self.method!r}, status={self.status.value}, "
                f"iterations={self.iterations}, info={self.info}, residual={res}, "
                f"time={self.time:.3g}s, reason={self.reason!r})")


def _status_from_legacy(converged, info, reason: str) -> Status:
    if converged:
        return Status.CONVERGED
    for st in Status:
        if reason and reason == REASONS[st]:
            return st
    if info is not None and info < 0:
        return Status.BREAKDOWN
    return Status.MAXITER
