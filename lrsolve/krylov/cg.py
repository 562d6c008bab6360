"""Conjugate gradients and preconditioned CG with SciPy's conventions.

``cg(A, b, x0=None, *, rtol=1e-5, atol=0., maxiter=None, M=None, callback=None)``
is a drop-in for :func:`scipy.sparse.linalg.cg`: same options and defaults
(``maxiter = 10 n``), real symmetric and complex Hermitian systems, ``x0="Mb"``,
``callback(xk)`` after every iteration, ``x0`` never overwritten, and ``info`` = 0 on
convergence, the iteration count when ``maxiter`` is reached, < 0 on breakdown.

Beyond SciPy:

* the stopping test ``||b - A x|| <= max(rtol ||b||, atol)`` is confirmed on the *true*
  residual before convergence is claimed, by the shared :class:`~lrsolve.krylov.monitor.Monitor`
  (float32 recursions drift; a solver that trusts them can claim a convergence it does
  not have); in single precision the recursive residual is replaced by the true one
  every ``refresh_every`` iterations, and an unattainable ``rtol`` stops as
  ``STAGNATION`` instead of running to ``maxiter``;
* ``b`` whose norm under- or overflows (``1e-170 b``) is solved scaled, exactly;
* a non-positive curvature ``p^H A p <= 0`` (A not SPD) stops the loop with ``info < 0``
  and the last finite iterate, never NaN;
* ``b`` of shape ``(n, k)`` solves ``k`` systems at once (:func:`pcg_block`): one
  matrix-block product per iteration, each column with its own convergence;
* NumPy, CuPy and torch inputs run on their own backend and device.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from .. import backend as bk
from . import _fused
from .monitor import Monitor, curvature_status, eps_of
from ..linsys import LinearSystem, make_system
from ..operators.convert import SparseOperator
from ..result import SolveResult, Status, ZERO_RHS

__all__ = ["cg", "pcg", "pcg_block", "cg_result"]


def _apply(M):
    if M is None:
        return None
    if hasattr(M, "matvec"):
        return M.matvec
    return M


def pcg(system: LinearSystem, *, rtol: float | None = None, atol: float | None = None,
        maxiter: int | None = None, M: Any = None, callback: Callable | None = None,
        refresh_every: int | None = None) -> SolveResult:
    """Preconditioned CG on a validated :class:`~lrsolve.linsys.LinearSystem`.

    The threshold and ``maxiter`` come from the system (``rtol``/``atol``/``maxiter``
    given here override them, for callers that reuse one system).  ``M`` defaults to
    ``system.M``.  ``refresh_every`` (replace the recursive residual by ``b - A x`` every
    so many iterations) defaults to off in double precision - a replacement perturbs the
    local orthogonality of CG and costs iterations on ill-conditioned systems (measured:
    232 vs 226 on a variable-coefficient Poisson problem) - and to 50 in single or half
    precision, where the recursion drifts.
    """
    if system.batched:
        return pcg_block(system, M=M, callback=callback, refresh_every=refresh_every)
    t0 = time.perf_counter()
    A, b = system.matvec, system.b
    Mf = _apply(M if M is not None else system.M)
    maxiter = system.maxiter if maxiter is None else int(maxiter)
    tol = system.tol
    if rtol is not None or atol is not None:
        tol = max((system.rtol if rtol is None else float(rtol)) * system.bnorm,
                  system.atol if atol is None else float(atol))
    if refresh_every is None:
        refresh_every = 0 if eps_of(b) < 1e-10 else 50
    bnorm = system.bnorm
    method = "cg" if Mf is None else "pcg"
    if bnorm == 0.0:
        return SolveResult(x=bk.zeros_like(b), status=Status.CONVERGED, iterations=0,
                           residuals=[0.0], detail=ZERO_RHS, time=time.perf_counter() - t0,
                           method=method, stats={"matvecs": 0})
    floor = math.sqrt(eps_of(b)) * bnorm
    monitor = Monitor(tol, floor=floor)
    best_noise, x_best = math.inf, None
    low = system.low_precision
    if system.x0 is None:
        x = bk.zeros_like(b)
        r = bk.copy(b)
        matvecs = 0
    else:
        x = bk.copy(system.x0)
        r = b - A(x)
        matvecs = 1
    rnorm = bk.norm(r)
    residuals = [rnorm]
    p = None
    rho_prev = 1.0
    rr = None  # cached r^H r, reused as rho when there is no preconditioner
    # NumPy real vectors take fused numba kernels (see _fused.py); a SciPy CSR matrix
    # additionally gets its mat-vec fused with p^T q into a preallocated buffer.
    fused = _fused.kernels() if _fused.usable(b, x) else None
    _dot = _np_dot if fused is not None else bk.inner
    csr = _fused_csr(system.A, b) if fused is not None else None
    q = np.empty_like(b) if csr is not None else None
    status = Status.MAXITER
    it = 0
    while True:
        if monitor.claims(rnorm):
            r_true = b - A(x)
            matvecs += 1
            true_norm = bk.norm(r_true)
            if low:  # judge the answer as returned, in float64
                precise = system.precise_residual_norm(x)
                true_norm = true_norm if precise is None else max(true_norm, precise)
            verdict = monitor.confirm(true_norm)
            residuals[-1] = true_norm
            if verdict is not None:
                status = verdict
                break
            r, rr, rnorm = r_true, None, true_norm
        if it >= maxiter:
            break
        if Mf is None:
            z = r
            rho = rr if rr is not None else _real(_dot(r, r))
        else:
            z = Mf(r)
            rho = _dot(r, z)
            verdict = curvature_status(rho)
            if verdict is not None:
                status = verdict
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
        verdict = curvature_status(pq)
        if verdict is not None:
            status = verdict
            break
        alpha = rho / pq
        it += 1
        refresh = bool(refresh_every) and it % refresh_every == 0
        if fused is not None and not refresh:
            rr = fused["update"](x, r, p, q, alpha)
        else:
            x += alpha * p
            r -= alpha * q
            rr = _real(_dot(r, r))
            if refresh:
                recursive = math.sqrt(rr) if rr >= 0.0 else math.nan
                r = b - A(x)
                matvecs += 1
                rr = _real(_dot(r, r))
                verdict = monitor.refreshed(math.sqrt(max(rr, 0.0)), recursive)
                if verdict is Status.STAGNATION:
                    rho_prev = rho
                    residuals.append(math.sqrt(max(rr, 0.0)))
                    if callback is not None:
                        callback(x)
                    status = verdict
                    break
        rho_prev = rho
        rnorm = math.sqrt(rr) if rr >= 0.0 else math.nan
        if rr < 1e-200 * (bnorm * bnorm) and rr > 0.0:
            rnorm = bk.norm(r)  # the squared sum underflowed: recompute scaled
        residuals.append(rnorm)
        if callback is not None:
            callback(x)
        # Rounding-noise guard: below sqrt(eps)||b|| the recursion may be iterating on
        # rounding noise; keep the best iterate seen there (a copy each time the residual
        # halves) and stop as STAGNATION with it when the residual then blows up.
        if rnorm <= floor:
            if rnorm < 0.5 * best_noise:
                best_noise, x_best = rnorm, bk.copy(x)
        elif x_best is not None and (rnorm > 1e3 * best_noise or not math.isfinite(rnorm)):
            x = x_best
            residuals.append(bk.norm(b - A(x)))
            matvecs += 1
            status = Status.STAGNATION
            break
        if not math.isfinite(rnorm):
            x -= alpha * p  # back to the last finite iterate
            status = Status.NONFINITE
            break
    return SolveResult(x=x, status=status, iterations=it, residuals=residuals,
                       time=time.perf_counter() - t0, method=method,
                       stats={"matvecs": matvecs})


def _fused_csr(op, b):
    """A SciPy CSR matrix whose dtype matches ``b`` (the fused mat-vec needs that), else None."""
    if isinstance(op, SparseOperator) and op.backend == "numpy" and op.A.dtype == b.dtype:
        return op.A
    return None


def _np_dot(a, b) -> float:
    return float(np.dot(a, b))


def _real(v) -> float:
    return v.real if isinstance(v, complex) else float(v)


# -- block CG -----------------------------------------------------------------------------

def _col_dots(a, b):
    """Per-column ``sum(conj(a) * b)`` as a NumPy array (complex when the inputs are)."""
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "c":
            return np.einsum("ij,ij->j", a.conj(), b)
        return np.einsum("ij,ij->j", a, b)
    if bk.is_torch(a):
        val = (a.conj() * b).sum(dim=0) if a.is_complex() else (a * b).sum(dim=0)
        return val.detach().cpu().numpy()
    val = (a.conj() * b).sum(axis=0)  # pragma: no cover - CuPy
    return bk.to_numpy(val)


def _as_backend(vec: np.ndarray, like):
    return bk.asarray(vec, like=like) if not isinstance(like, np.ndarray) else \
        vec.astype(like.dtype, copy=False)


def pcg_block(system: LinearSystem, *, M: Any = None, callback: Callable | None = None,
              refresh_every: int | None = None) -> SolveResult:
    """CG for ``k`` right-hand sides at once (``system.b`` of shape ``(n, k)``).

    Each column runs its own CG recurrence (its own ``alpha``, ``beta``, threshold and
    monitor); all columns share one ``A @ P`` per iteration (SpMM, a batched stencil or
    dense GEMM), which reads the matrix once for all ``k``.  A column that has stopped is
    frozen (its step is zero).  ``x`` has shape ``(n, k)``; ``status`` is the worst column
    status, ``iterations`` the largest column count, ``residuals`` the largest column
    residual per iteration, and ``stats["columns"]`` per-column ``status``,
    ``iterations`` and ``residual``.
    """
    t0 = time.perf_counter()
    A, b = system.matvec, system.b
    Mf = _apply(M if M is not None else system.M)
    k = system.k
    maxiter = system.maxiter
    tol = np.asarray(system.tol, dtype=np.float64)
    if refresh_every is None:
        refresh_every = 0 if eps_of(b) < 1e-10 else 50
    method = "cg" if Mf is None else "pcg"
    sq = math.sqrt(eps_of(b))
    monitors = [Monitor(t, floor=sq * bn) for t, bn in zip(tol, np.asarray(system.bnorm))]
    status = [None] * k
    its = np.zeros(k, dtype=np.int64)
    zero = np.asarray(system.bnorm) == 0.0
    for j in np.flatnonzero(zero):
        status[j] = Status.CONVERGED
    x = bk.zeros_like(b) if system.x0 is None else bk.copy(system.x0)
    if system.x0 is None:
        r = bk.copy(b)
        matvecs = 0
    else:
        r = b - A(x)
        matvecs = 1
    if zero.any():  # b_j = 0: x_j = 0 and nothing to do
        x[:, np.flatnonzero(zero)] = 0
        r[:, np.flatnonzero(zero)] = 0
    fused = _fused.block_kernels() if _fused.block_usable(b) else None
    csr = _fused_csr(system.A, b) if fused is not None else None
    fused_op = getattr(system.A, "block_matvec_dot", None) if fused is not None else None
    q_buf = np.empty_like(b) if (csr is not None or fused_op is not None) else None
    rn = bk.column_norms(r)
    history = [float(rn.max())]
    p = None
    rho_prev = np.ones(k)
    rr_cache = None
    it = 0
    while True:
        active = np.array([s is None for s in status])
        claim = active & (rn <= tol)
        if claim.any():
            r_true = b - A(x)
            matvecs += 1
            tn = bk.column_norms(r_true)
            if system.low_precision:
                for j in np.flatnonzero(claim):
                    sub = system.column(j)
                    precise = sub.precise_residual_norm(x[:, j])
                    if precise is not None:
                        tn[j] = max(tn[j], precise)
            for j in np.flatnonzero(claim):
                verdict = monitors[j].confirm(float(tn[j]))
                if verdict is not None:
                    status[j] = verdict
                    rn[j] = tn[j]
            idx = np.flatnonzero(claim & np.array([s is None for s in status]))
            if idx.size:  # not confirmed: continue from the true residual
                r[:, idx] = r_true[:, idx]
                rn[idx] = tn[idx]
                rr_cache = None
            active = np.array([s is None for s in status])
        if not active.any() or it >= maxiter:
            break
        z = r if Mf is None else Mf(r)
        if Mf is None and rr_cache is not None:
            rho = rr_cache  # r^T r from the last update pass: one pass over r saved
        else:
            rho = fused["dot"](r, z) if fused is not None else _col_dots(r, z)
        rho_r = rho.real if np.iscomplexobj(rho) else rho
        bad = active & ~(rho_r > 0.0)
        for j in np.flatnonzero(bad):
            status[j] = curvature_status(rho[j])
        active &= ~bad
        if not active.any():
            break
        rho_safe = np.where(active, rho, 1.0)
        beta = np.where(active, rho_safe / rho_prev, 0.0)
        if p is None:
            p = bk.copy(z)
        elif fused is not None:
            fused["direction"](p, z, beta.astype(np.float64))
        else:
            p *= _as_backend(beta, p)
            p += z
        pq = None
        if csr is not None:
            pq = fused["csr_spmm_dot"](csr.indptr, csr.indices, csr.data, p, q_buf)
            q = q_buf
        elif fused_op is not None:
            pq = fused_op(p, q_buf)
            q = q_buf
        if pq is None:
            q = A(p)
            pq = fused["dot"](p, q) if fused is not None else _col_dots(p, q)
        matvecs += 1
        pq_r = pq.real if np.iscomplexobj(pq) else pq
        bad = active & ~(pq_r > 0.0)
        for j in np.flatnonzero(bad):
            status[j] = curvature_status(pq[j])
        active &= ~bad
        alpha = np.where(active, rho_safe / np.where(active, pq, 1.0), 0.0)
        it += 1
        its[active] += 1
        refresh = bool(refresh_every) and it % refresh_every == 0
        if fused is not None and not refresh:
            rr = fused["update"](x, r, p, q, alpha.astype(np.float64))
            rr_cache = rr
        else:
            rr_cache = None
            a_b = _as_backend(alpha, p)
            x += a_b * p
            r -= a_b * q
            rr = np.abs(_col_dots(r, r))
            if refresh:
                recursive = np.sqrt(rr)
                r = b - A(x)
                matvecs += 1
                rr = np.abs(_col_dots(r, r))
                for j in np.flatnonzero(active):
                    verdict = monitors[j].refreshed(math.sqrt(rr[j]), float(recursive[j]))
                    if verdict is Status.STAGNATION:
                        status[j] = verdict
        rho_prev = np.where(active, rho_safe, rho_prev)
        rn = np.where(active, np.sqrt(np.maximum(np.real(rr), 0.0)), rn)
        history.append(float(np.max(rn)))
        if callback is not None:
            callback(x)
        nonfinite = ~np.isfinite(rn) & active
        if nonfinite.any():
            for j in np.flatnonzero(nonfinite):
                status[j] = Status.NONFINITE
            cols = np.flatnonzero(nonfinite)
            x[:, cols] -= _as_backend(alpha[cols], p) * p[:, cols]
    for j in range(k):
        if status[j] is None:
            status[j] = Status.MAXITER
    order = [Status.NONFINITE, Status.BREAKDOWN, Status.MAXITER, Status.STAGNATION,
             Status.CONVERGED]
    worst = min(status, key=order.index)
    cols = [{"status": status[j], "iterations": int(its[j]), "residual": float(rn[j]),
             "converged": status[j] is Status.CONVERGED} for j in range(k)]
    return SolveResult(x=x, status=worst, iterations=int(its.max()), residuals=history,
                       time=time.perf_counter() - t0, method=method,
                       stats={"matvecs": matvecs, "columns": cols, "batch": k})


def cg_result(A: Any, b: Any, x0: Any = None, *, rtol: float = 1e-5, atol: float = 0.0,
              maxiter: int | None = None, M: Any = None, callback: Callable | None = None,
              refresh_every: int | None = None, allow_batch: bool = True) -> SolveResult:
    """CG returning a full :class:`~lrsolve.result.SolveResult` (``b`` may be ``(n, k)``)."""
    system = make_system(A, b, x0, M=M, rtol=rtol, atol=atol, maxiter=maxiter,
                         allow_batch=allow_batch, rescale=True)
    res = pcg(system, callback=callback, refresh_every=refresh_every)
    return system.finish(res)


def cg(A: Any, b: Any, x0: Any = None, *, rtol: float = 1e-5, atol: float = 0.0,
       maxiter: int | None = None, M: Any = None, callback: Callable | None = None):
    """Solve ``A x = b`` for Hermitian positive definite ``A`` by (preconditioned) CG.

    A drop-in for :func:`scipy.sparse.linalg.cg`.

    Parameters
    ----------
    A : array, sparse matrix, LinearOperator or lrsolve operator, shape (n, n)
        Real symmetric or complex Hermitian positive definite; anything
        :func:`lrsolve.as_operator` accepts.
    b : array, shape (n,) or (n, 1)
        Right-hand side: NumPy, CuPy or torch; the answer comes back on its backend
        (complex when ``A`` is complex).
    x0 : array or "Mb", optional
        Starting guess (zeros by default; ``"Mb"`` starts from ``M @ b``).  Never modified.
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol * ||b||, atol)``.  As SciPy, ``atol=None`` or a
        negative ``atol`` raises ``ValueError``.
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
        (``p^H A p <= 0``: A not positive definite) or non-finite values.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, lrsolve as lr
    >>> A = sp.diags([-1, 2, -1], [-1, 0, 1], shape=(50, 50), format="csr")
    >>> x, info = lr.cg(A, np.ones(50), rtol=1e-10)
    >>> info, bool(np.linalg.norm(A @ x - 1) < 1e-8)
    (0, True)
    """
    res = cg_result(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback,
                    allow_batch=False)
    return res.x, res.info
