"""Conjugate gradients and preconditioned CG with SciPy's conventions.

``cg(A, b, x0=None, *, rtol=1e-5, atol=0., maxiter=None, M=None, callback=None)``
is a drop-in for :func:`scipy.sparse.linalg.cg`: same options and defaults
(``maxiter = 10 n``), ``callback(xk)`` after every iteration, and ``info`` = 0 on
convergence, the iteration count when ``maxiter`` is reached, < 0 on breakdown.

Beyond SciPy:

* the stopping test ``||b - A x|| <= max(rtol ||b||, atol)`` is confirmed on the *true*
  residual before convergence is claimed (float32 recursions drift, and a solver that
  only trusts them can claim a convergence it does not have - a known CuPy bug); in
  single precision the recursive residual is also replaced by the true one every
  ``refresh_every`` iterations;
* a non-positive curvature ``p^H A p <= 0`` (A not SPD) stops the loop with ``info < 0``
  and the last finite iterate, never NaN;
* NumPy, CuPy and torch inputs run on their own backend and device.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from .. import backend as bk
from . import _fused
from ..linsys import make_system, LinearSystem
from ..result import SolveResult, REASONS

__all__ = ["cg", "pcg", "cg_result"]


def _as_preconditioner(M: Any, system: LinearSystem) -> Callable | None:
    """A function ``r -> M r`` for a matrix, LinearOperator, callable or lrsolve preconditioner."""
    if M is None:
        return None
    if hasattr(M, "shape") and getattr(M, "shape", None) is not None:
        shape = tuple(M.shape)
        if len(shape) != 2 or shape[0] != system.n or shape[1] != system.n:
            raise ValueError(f"M must have shape ({system.n}, {system.n}), got {shape}")
    bk.namespace(M if hasattr(M, "shape") else None, system.b)
    from ..linsys import as_operator_function
    return as_operator_function(M, "M")


def pcg(system: LinearSystem, *, rtol: float, atol: float, maxiter: int | None,
        M: Callable | None = None, callback: Callable | None = None,
        refresh_every: int | None = None) -> SolveResult:
    """Preconditioned CG on a validated :class:`~lrsolve.linsys.LinearSystem`.

    ``refresh_every`` (replace the recursive residual by ``b - A x`` every so many
    iterations) defaults to off in double precision - a replacement perturbs the local
    orthogonality of CG and costs iterations on ill-conditioned systems (measured: 232 vs
    226 on a variable-coefficient Poisson problem) - and to 50 in single or half precision,
    where the recursion drifts.  Convergence is always confirmed on the true residual.
    """
    t0 = time.perf_counter()
    A, b = system.matvec, system.b
    n = system.n
    if maxiter is None:
        maxiter = 10 * n
    if refresh_every is None:
        refresh_every = 0 if _eps(b) < 1e-10 else 50
    bnorm = system.bnorm
    tol = max(float(rtol) * bnorm, float(atol))
    if system.x0 is None:
        x = bk.zeros_like(b)
        r = bk.copy(b)
    else:
        x = bk.copy(system.x0)
        r = b - A(x)
    rnorm = bk.norm(r)
    residuals = [rnorm]
    if bnorm == 0.0:
        return SolveResult(x=bk.zeros_like(b), converged=True, iterations=0, residuals=[0.0],
                           info=0, reason=REASONS["zero_rhs"], time=time.perf_counter() - t0,
                           method="cg")
    # Stagnation guard: the true residual cannot drop below ~ eps * ||A|| ||x||; when a
    # confirmed true residual fails the test twice in a row without halving, stop.
    failed_confirmations = 0
    best_true = math.inf
    p = None
    rho_prev = 1.0
    rr = None  # cached r^H r, reused as rho when there is no preconditioner
    # NumPy real vectors take fused numba kernels (see _fused.py); a SciPy CSR matrix
    # additionally gets its mat-vec fused with p^T q into a preallocated buffer.
    fused = _fused.kernels() if _fused.usable(b, system.x0) else None
    _dot = _np_dot if fused is not None else bk.inner
    csr = _fused_csr(system.A, b) if fused is not None else None
    q = np.empty_like(b) if csr is not None else None
    status = "maxiter"
    it = 0
    matvecs = 0 if system.x0 is None else 1
    while True:
        if rnorm <= tol:
            # Confirm on the true residual before claiming convergence.
            r_true = b - A(x)
            matvecs += 1
            true_norm = bk.norm(r_true)
            if true_norm <= tol:
                residuals[-1] = true_norm
                status = "converged"
                break
            if true_norm > 0.5 * best_true:
                failed_confirmations += 1
            else:
                failed_confirmations = 0
            best_true = min(best_true, true_norm)
            if failed_confirmations >= 2:
                residuals[-1] = true_norm
                status = "stagnation"
                break
            r = r_true
            rr = None
            rnorm = true_norm
            residuals[-1] = true_norm
        if it >= maxiter:
            break
        if M is None:
            z = r
            rho = rr if rr is not None else _dot(r, r)
        else:
            z = M(r)
            rho = _dot(r, z)
            if not (_real(rho) > 0.0):
                status = "breakdown" if math.isfinite(_real(rho)) else "nonfinite"
                break
        if p is None:
            p = bk.copy(z)
        elif fused is not None:
            fused["direction"](p, z, rho / rho_prev)
        else:
            p *= rho / rho_prev
            p += z
        if csr is not None:
            pq = _fused.csr_matvec_dot(csr, p, q)
        else:
            q = A(p)
            pq = _dot(p, q)
        matvecs += 1
        if not (_real(pq) > 0.0):
            status = "breakdown" if math.isfinite(_real(pq)) else "nonfinite"
            break
        alpha = rho / pq
        it += 1
        refresh = bool(refresh_every) and it % refresh_every == 0
        if fused is not None and not refresh:
            rr = fused["update"](x, r, p, q, alpha)
        else:
            x += alpha * p
            if refresh:
                r = b - A(x)
                matvecs += 1
            else:
                r -= alpha * q
            rr = _real(_dot(r, r))
        rho_prev = rho
        rnorm = math.sqrt(rr) if rr >= 0.0 else math.nan
        residuals.append(rnorm)
        if callback is not None:
            callback(x)
        if not math.isfinite(rnorm):
            x -= alpha * p  # back to the last finite iterate
            status = "nonfinite"
            break
    converged = status == "converged"
    if converged:
        info = 0
    elif status in ("maxiter", "stagnation"):
        info = max(it, 1)
    else:
        info = -1
    return SolveResult(x=x, converged=converged, iterations=it, residuals=residuals, info=info,
                       reason=REASONS[status], time=time.perf_counter() - t0,
                       method="cg" if M is None else "pcg", stats={"matvecs": matvecs})


def _fused_csr(A, b):
    """A SciPy CSR matrix whose dtype matches ``b`` (the fused mat-vec needs that), else None."""
    if sp.issparse(A) and A.format == "csr" and A.dtype == b.dtype:
        return A
    return None


def _np_dot(a, b) -> float:
    return float(np.dot(a, b))


def _real(v) -> float:
    return v.real if isinstance(v, complex) else float(v)


def _eps(b) -> float:
    import numpy as np
    if bk.is_torch(b):
        return bk._torch().finfo(b.dtype).eps
    return float(np.finfo(b.dtype).eps)


def cg_result(A: Any, b: Any, x0: Any = None, *, rtol: float = 1e-5, atol: float = 0.0,
              maxiter: int | None = None, M: Any = None, callback: Callable | None = None,
              refresh_every: int | None = None) -> SolveResult:
    """CG returning a full :class:`~lrsolve.result.SolveResult`."""
    system = make_system(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter)
    M_apply = _as_preconditioner(M, system)
    return pcg(system, rtol=rtol, atol=atol, maxiter=maxiter, M=M_apply, callback=callback,
               refresh_every=refresh_every)


def cg(A: Any, b: Any, x0: Any = None, *, rtol: float = 1e-5, atol: float = 0.0,
       maxiter: int | None = None, M: Any = None, callback: Callable | None = None):
    """Solve ``A x = b`` for Hermitian positive definite ``A`` by (preconditioned) CG.

    A drop-in for :func:`scipy.sparse.linalg.cg`.

    Parameters
    ----------
    A : array, sparse matrix, LinearOperator or lrsolve operator, shape (n, n)
        Real symmetric or complex Hermitian positive definite.
    b : array, shape (n,) or (n, 1)
        Right-hand side: NumPy, CuPy or torch; the answer comes back on its backend.
    x0 : array, optional
        Starting guess (zeros by default).
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol * ||b||, atol)``.
    maxiter : int, optional
        Maximum iterations, ``10 * n`` by default.
    M : array, sparse matrix, LinearOperator, callable or lrsolve preconditioner, optional
        Approximates ``A^{-1}``; applied as ``M @ r``.
    callback : callable, optional
        ``callback(xk)`` after every iteration.

    Returns
    -------
    x : array
        The approximate solution.
    info : int
        0 converged; > 0 not converged after ``info`` iterations; < 0 breakdown
        (``p^H A p <= 0``: A not positive definite).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, lrsolve as lr
    >>> A = sp.diags([-1, 2, -1], [-1, 0, 1], shape=(50, 50), format="csr")
    >>> x, info = lr.cg(A, np.ones(50), rtol=1e-10)
    >>> info, bool(np.linalg.norm(A @ x - 1) < 1e-8)
    (0, True)
    """
    res = cg_result(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback)
    return res.x, res.info
