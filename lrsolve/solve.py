"""``lr.solve``: one entry point for every linear-solver method, returning a SolveResult.

Methods that live in method packages (``sor`` and ``ssor-cg`` in relax/, ``dcdm`` in
dcdm/) are imported on first use, so ``import lrsolve`` stays light.
"""
from __future__ import annotations

import importlib
import time
from typing import Any

from .krylov.cg import cg_result
from .krylov.preconditioners import Preconditioner, make_preconditioner

__all__ = ["solve", "METHODS"]

# method name -> (module, function); the function takes (A, b, *, rtol, atol, maxiter, x0, **options)
# and returns a SolveResult.
METHODS = {
    "cg": None,
    "pcg-jacobi": "jacobi",
    "pcg-ic0": "ic0",
    "pcg-amg": "amg",
    "sor": ("lrsolve.relax", "_solve_sor"),
    "ssor-cg": ("lrsolve.relax", "_solve_ssor_cg"),
    "dcdm": ("lrsolve.dcdm", "_solve_dcdm"),
}


def solve(A: Any, b: Any, method: str = "cg", rtol: float = 1e-6, atol: float = 0.0,
          maxiter: int | None = None, x0: Any = None, **options):
    """Solve ``A x = b`` by ``method`` and return a :class:`~lrsolve.result.SolveResult`.

    Parameters
    ----------
    A, b, x0
        As for :func:`lrsolve.cg`: any backend, ``A`` a matrix, sparse matrix,
        LinearOperator or lrsolve operator.
    method : str
        One of ``"cg"``, ``"pcg-jacobi"``, ``"pcg-ic0"``, ``"pcg-amg"``, ``"sor"``,
        ``"ssor-cg"``, ``"dcdm"``.
    rtol, atol, maxiter
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)``; at most ``maxiter`` iterations.
    **options
        Method options: ``M`` (a built preconditioner to reuse across solves, for the
        ``pcg-*`` methods), ``callback``, ``omega`` (sor, ssor-cg), ``model`` (dcdm), ...

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=32, dim=2)
    >>> r = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-8)
    >>> r.converged, r.iterations < 15
    (True, True)
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    target = METHODS[method]
    if target is None or isinstance(target, str):
        M = options.pop("M", None)
        callback = options.pop("callback", None)
        refresh_every = options.pop("refresh_every", None)
        if options:
            raise TypeError(f"unexpected options for method {method!r}: {sorted(options)}")
        setup_time = 0.0
        if isinstance(target, str) and M is None:
            t0 = time.perf_counter()
            M = make_preconditioner(target, A)
            setup_time = time.perf_counter() - t0
        res = cg_result(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback,
                        refresh_every=refresh_every)
        res.method = method
        res.stats["setup_time"] = setup_time if not isinstance(M, Preconditioner) or setup_time \
            else 0.0
        return res
    module, func = target
    fn = getattr(importlib.import_module(module), func)
    return fn(A, b, rtol=rtol, atol=atol, maxiter=maxiter, x0=x0, **options)
