"""Relaxation methods and their online tuning: SOR / SSOR kernels, bandit learners, BanditSOR.

* :func:`sor` - successive over-relaxation (numba lexicographic sweeps on CPU CSR,
  red-black sweeps for stencil operators on NumPy / torch / CuPy);
  ``lr.solve(A, b, method="sor", omega=...)``.
* :class:`SSOR`, :func:`ssor_cg` - the SSOR preconditioner and SSOR-preconditioned CG;
  ``lr.solve(A, b, method="ssor-cg", omega=...)``.
* :func:`adaptive_sor` - Hageman & Young's adaptive SOR (omega learned inside a solve).
* :mod:`~lrsolve.relax.learners` - Tsallis-INF, Exp3, ChebCB (Khodak et al., "Learning to
  Relax", ICLR 2024) and the structure-exploiting :class:`YoungLearner` / :class:`UnimodalUCB`.
* :class:`BanditSOR` - the tuner a simulation loop calls, with atomic save / load.
"""
from __future__ import annotations

from typing import Any

from .learners import (ChebCB, Exp3, HagemanYoung, Learner, TsallisINF, UnimodalUCB,
                       YoungLearner, default_omegas, make_learner, LEARNERS)
from .sor import SSOR, adaptive_sor, check_omega, jacobi_bound, sor, ssor_cg
from .theory import jacobi_radius_from_rate, sor_rate, young_omega
from .tuner import BanditSOR, DEFAULT_LEARNER

__all__ = ["sor", "SSOR", "ssor_cg", "adaptive_sor", "BanditSOR", "DEFAULT_LEARNER",
           "Learner", "TsallisINF", "Exp3", "ChebCB", "YoungLearner", "UnimodalUCB",
           "HagemanYoung", "make_learner", "LEARNERS", "default_omegas", "young_omega",
           "sor_rate", "jacobi_radius_from_rate", "jacobi_bound", "check_omega"]


def _solve_sor(A: Any, b: Any, *, rtol: float, atol: float, maxiter, x0, omega: float = 1.5,
               **opts):
    """``lr.solve(..., method="sor")``: :func:`sor` with options ``omega``, ``ordering``."""
    ordering = opts.pop("ordering", "auto")
    if opts:
        raise TypeError(f"unexpected options for method 'sor': {sorted(opts)}")
    return sor(A, b, omega=omega, x0=x0, rtol=rtol, atol=atol, maxiter=maxiter,
               ordering=ordering)


def _solve_ssor_cg(A: Any, b: Any, *, rtol: float, atol: float, maxiter, x0,
                   omega: float = 1.0, **opts):
    """``lr.solve(..., method="ssor-cg")``: :func:`ssor_cg` with ``omega``, ``M``, ``callback``."""
    M = opts.pop("M", None)
    callback = opts.pop("callback", None)
    ordering = opts.pop("ordering", "auto")
    if opts:
        raise TypeError(f"unexpected options for method 'ssor-cg': {sorted(opts)}")
    return ssor_cg(A, b, omega=omega, x0=x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M,
                   callback=callback, ordering=ordering)
