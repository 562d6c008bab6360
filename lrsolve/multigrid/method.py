"""The solver methods ``"mg"`` (multigrid cycles) and ``"pcg-mg"`` (CG + one cycle).

Both follow the method protocol of :mod:`lrsolve.solvers`: the hierarchy is built in
``__init__`` (timed by :class:`lrsolve.Solver`), ``solve(system)`` runs on a validated
system, ``update(A_new)`` re-coarsens the new coefficients on the kept structure
(:meth:`GMG.update`).  Options: those of :class:`~lrsolve.multigrid.GMG` (``cycle``,
``smoother``, ``presmooth``, ``postsmooth``, ``coarse_size``, ``max_levels``, ``omega``,
``chebyshev_ratio``, ``threads``, ``interpolation``, ``cuda_graph``) or ``M=`` a GMG built
by the caller.

A floating region (pure Neumann, or enclosed by solid cells) makes ``A`` singular: the
right-hand side must be orthogonal to the constants on that region.  Both methods check
it and raise ``ValueError`` with the size of the mismatch when it is larger than
``rtol / 10`` (no solver could reach the tolerance); the solution returned has zero mean
on every floating region.
"""
from __future__ import annotations

import math
import time
from typing import Any

from .. import backend as bk
from ..krylov.cg import pcg
from ..result import SolveResult, Status
from ..linsys import Method
from .gmg import GMG

__all__ = ["MGMethod", "PCGMGMethod", "check_compatible"]

_GMG_OPTIONS = ("cycle", "smoother", "presmooth", "postsmooth", "coarse_size", "max_levels",
                "omega", "chebyshev_ratio", "threads", "interpolation", "cuda_graph")


def check_compatible(op, b, rtol: float) -> None:
    """``ValueError`` when ``b`` has a null-space component no solver can remove."""
    if not getattr(op, "singular", False):
        return
    mismatch = op.null_incompatibility(b)
    if mismatch > max(0.1 * float(rtol), 1e-13):
        raise ValueError(
            f"b is incompatible with the pure-Neumann (floating) system: its component along "
            f"the constants of the floating regions is {mismatch:.3e} of ||b||, above rtol/10; "
            "subtract the mean of b on each floating region (A.project_null(b)) or add a "
            "Dirichlet side")


class _MGBase(Method):
    supports_batch = True
    extra_options = _GMG_OPTIONS + ("M",)

    def __init__(self, A, *, M: Any = None, **gmg_options):
        unknown = sorted(set(gmg_options) - set(_GMG_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected options for method {self.name!r}: {unknown}")
        self.A = A
        self.options = dict(M=M, **gmg_options)
        self.user_M = M is not None
        if M is not None and not isinstance(M, GMG):
            raise TypeError(f"M must be a lrsolve.multigrid.GMG for method {self.name!r}, got "
                            f"{type(M).__name__} (use method='cg' with M= for other "
                            "preconditioners)")
        self.gmg = M if M is not None else GMG(A, **gmg_options)
        self.preconditioner = self.gmg

    def update(self, A) -> None:
        self.A = A
        self.gmg.update(A)

    @property
    def grid(self):
        return self.gmg.A


class PCGMGMethod(_MGBase):
    """CG preconditioned by one multigrid cycle (``method="pcg-mg"``)."""

    name = "pcg-mg"

    def solve(self, system, *, callback=None) -> SolveResult:
        check_compatible(self.grid, system.b, system.rtol)
        res = pcg(system, M=self.gmg, callback=callback)
        if self.grid.singular and res.x is not None:
            res.x = self.grid.project_null(res.x)
        res.stats["levels"] = len(self.gmg.levels)
        res.stats["work_per_cycle"] = self.gmg.work_per_cycle()
        res.stats["cuda_graph"] = bool(self.gmg._graphs)
        res.stats["cuda_graph_info"] = dict(self.gmg.graph_info)
        if self.gmg.graph_error:
            res.stats["cuda_graph_error"] = self.gmg.graph_error
        return res


class MGMethod(_MGBase):
    """Multigrid cycles as the solver (``method="mg"``): ``x <- x + M (b - A x)``.

    Stops on the true residual ``||b - A x|| <= max(rtol ||b||, atol)``; ``MAXITER`` after
    ``maxiter`` cycles, ``STAGNATION`` when three cycles in a row reduce
    the residual by less than 10 %, ``NONFINITE`` on NaN/Inf (the last finite iterate is
    returned).
    """

    name = "mg"
    supports_batch = False

    def solve(self, system, *, callback=None) -> SolveResult:
        t0 = time.perf_counter()
        b = system.b
        check_compatible(self.grid, b, system.rtol)
        maxiter = int(system.maxiter) if system.maxiter is not None else 100
        tol = float(system.tol)
        if system.bnorm == 0.0:
            return SolveResult(x=bk.zeros_like(b), status=Status.CONVERGED, iterations=0,
                               residuals=[0.0], time=time.perf_counter() - t0, method="mg")
        A = system.matvec
        x = bk.zeros_like(b) if system.x0 is None else bk.copy(system.x0)
        r = bk.copy(b) if system.x0 is None else b - A(x)
        rnorm = bk.norm(r)
        residuals = [rnorm]
        status = Status.MAXITER
        slow = 0
        it = 0
        while True:
            if rnorm <= tol:
                status = Status.CONVERGED
                break
            if it >= maxiter:
                break
            x_new = x + self.gmg.matvec(r)
            r_new = b - A(x_new)
            new_norm = bk.norm(r_new)
            it += 1
            if not math.isfinite(new_norm):
                status = Status.NONFINITE
                residuals.append(new_norm)
                break
            slow = slow + 1 if new_norm > 0.9 * rnorm else 0
            x, r, rnorm = x_new, r_new, new_norm
            residuals.append(rnorm)
            if callback is not None:
                callback(x)
            if slow >= 3:
                status = Status.STAGNATION
                break
        if self.grid.singular:
            x = self.grid.project_null(x)
        work = self.gmg.work_per_cycle() + 1.0
        return SolveResult(x=x, status=status, iterations=it, residuals=residuals,
                           time=time.perf_counter() - t0, method="mg",
                           stats={"levels": len(self.gmg.levels), "work_per_cycle": work,
                                  "matvecs": it + (0 if system.x0 is None else 1)})
