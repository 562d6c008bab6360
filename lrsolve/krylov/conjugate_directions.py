"""The conjugate-direction loop with a pluggable direction generator.

Each step asks a generator for a direction ``q = g(r)`` from the current residual,
A-orthogonalises it against the last ``window`` directions, and takes an exact line
search along it::

    p = q - sum_j (q^T A p_j / p_j^T A p_j) p_j        (j over the window, twice)
    alpha = p^T r / p^T A p
    x += alpha p,  r -= alpha A p                       (one mat-vec per step)

With the identity generator and any ``window >= 1`` this *is* conjugate gradients (the
one-term recurrence is the special case where ``r`` is already A-orthogonal to all but
the last direction), so the loop reproduces CG's iterates; with a fixed SPD ``M`` it is
PCG, and with a nonlinear generator (the DCDM network) it is a flexible, truncated
conjugate-direction method.  The stored products ``A p_j`` make the orthogonalisation
free of extra mat-vecs.

As in :mod:`lrsolve.krylov.cg`: the recursive residual is replaced by ``b - A x`` every
``refresh_every`` steps, convergence ``||b - A x|| <= max(rtol ||b||, atol)`` is
confirmed on the true residual, a stalled true residual stops with ``"stagnation"``, and
a non-positive curvature stops with ``info < 0``.  A generator that returns a zero,
non-finite or fully dependent direction is replaced for that step by the residual
itself (counted in ``stats["fallbacks"]``), and so is every step after the residual has
stalled for ``stall_steps`` steps (``stats["stall_restarts"]``): a bad network degrades
to CG-like steps instead of NaN or a hang.
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Callable

from .. import backend as bk
from ..linsys import LinearSystem, make_system
from ..result import SolveResult, Status, ZERO_RHS
from .monitor import Monitor, curvature_status

__all__ = ["conjugate_directions", "conjugate_directions_system", "identity_direction"]


def identity_direction(r):
    """The identity generator ``r -> r``: the loop then reproduces CG."""
    return r


def _finite(v: float) -> bool:
    return math.isfinite(v)


def conjugate_directions_system(system: LinearSystem, direction: Callable | None = None, *,
                                rtol: float | None = None, atol: float | None = None,
                                maxiter: int | None = None,
                                window: int = 2, refresh_every: int | None = None,
                                callback: Callable | None = None, stall_steps: int = 20,
                                method: str = "conjugate-directions") -> SolveResult:
    """The loop on a validated :class:`~lrsolve.linsys.LinearSystem` (see the module doc).

    ``stall_steps`` (0 disables) sets the stall guard.  ``stats`` holds ``matvecs``,
    ``direction_calls``, ``fallbacks``, ``stall_restarts`` and ``max_a_cosine``:
    the largest ``|p_k^T A p_j| / sqrt(p_k^T A p_k  p_j^T A p_j)`` over every step and the
    ``window`` directions kept (the A-orthogonality actually achieved).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"window must be an int >= 0, got {window!r}")
    if refresh_every is not None and (isinstance(refresh_every, bool)
                                      or not isinstance(refresh_every, int) or refresh_every < 0):
        raise ValueError(f"refresh_every must be an int >= 0 or None, got {refresh_every!r}")
    t0 = time.perf_counter()
    A, b = system.matvec, system.b
    generate = direction if direction is not None else identity_direction
    if system.batched:
        raise ValueError("conjugate directions take one right-hand side; for a block b of "
                         "shape (n, k) use method='cg'/'pcg-*' or solve column by column")
    maxiter = system.maxiter if maxiter is None else int(maxiter)
    if refresh_every is None:
        refresh_every = 50 if bk.eps_of(b) < 1e-10 else 10
    tol = system.tol
    if rtol is not None or atol is not None:
        tol = max((system.rtol if rtol is None else float(rtol)) * system.bnorm,
                  system.atol if atol is None else float(atol))
    monitor = Monitor(tol, floor=math.sqrt(bk.eps_of(b)) * system.bnorm)
    if system.bnorm == 0.0:
        return SolveResult(x=bk.zeros_like(b), status=Status.CONVERGED, iterations=0,
                           residuals=[0.0], detail=ZERO_RHS, time=time.perf_counter() - t0,
                           method=method, stats={"matvecs": 0, "direction_calls": 0,
                                                 "fallbacks": 0, "stall_restarts": 0,
                                                 "max_a_cosine": 0.0})
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
    kept: deque = deque(maxlen=window) if window > 0 else deque(maxlen=1)
    dot = bk.inner
    calls = fallbacks = stall_restarts = 0
    max_cos = 0.0
    status = Status.MAXITER
    it = 0
    while True:
        if monitor.claims(rnorm):
            r_true = b - A(x)
            matvecs += 1
            true_norm = bk.norm(r_true)
            if system.low_precision:  # judge the answer as returned, in float64
                precise = system.precise_residual_norm(x)
                true_norm = true_norm if precise is None else max(true_norm, precise)
            residuals[-1] = true_norm
            verdict = monitor.confirm(true_norm)
            if verdict is not None:
                status = verdict
                break
            r, rnorm = r_true, true_norm
        if it >= maxiter:
            break
        # Stall guard: when the best residual has not dropped 10 % over `stall_steps`
        # steps, this step takes the residual itself (a generator that has stopped
        # helping - an untrained network, say - then degrades to CG-like steps).
        stalled = (stall_steps and len(residuals) > stall_steps
                   and min(residuals[-stall_steps:]) > 0.9 * min(residuals[:-stall_steps]))
        if stalled:
            q = None
            stall_restarts += 1
        else:
            calls += 1
            q = generate(r)
        p = _orthogonalise(q, kept, window, dot) if _usable(q, dot) else None
        if p is None:
            # The generator gave nothing usable: take the residual for this step.
            fallbacks += 0 if stalled else 1
            p = _orthogonalise(r, kept, window, dot)
        Ap = A(p)
        matvecs += 1
        pAp_raw = dot(p, Ap)
        pAp = float(pAp_raw.real) if isinstance(pAp_raw, complex) else float(pAp_raw)
        verdict = curvature_status(pAp)
        if verdict is not None:
            status = verdict
            break
        for p_j, Ap_j, pAp_j in kept:
            c = abs(dot(p, Ap_j)) / (math.sqrt(pAp) * math.sqrt(pAp_j))
            max_cos = max(max_cos, c)
        alpha = dot(p, r) / pAp
        it += 1
        x += alpha * p
        if refresh_every and it % refresh_every == 0:
            recursive = bk.norm(r - alpha * Ap)
            r = b - A(x)
            matvecs += 1
            verdict = monitor.refreshed(bk.norm(r), recursive)
            if verdict is Status.STAGNATION:
                residuals.append(bk.norm(r))
                status = verdict
                break
        else:
            r -= alpha * Ap
        if window > 0:
            kept.append((p, Ap, pAp))
        rnorm = bk.norm(r)
        residuals.append(rnorm)
        if callback is not None:
            callback(x)
        if not _finite(rnorm):
            x -= alpha * p
            status = Status.NONFINITE
            break
    return SolveResult(x=x, status=status, iterations=it, residuals=residuals,
                       time=time.perf_counter() - t0, method=method,
                       stats={"matvecs": matvecs, "direction_calls": calls,
                              "fallbacks": fallbacks, "stall_restarts": stall_restarts,
                              "max_a_cosine": max_cos, "window": window})


def _usable(q, dot) -> bool:
    if q is None:
        return False
    qq = dot(q, q)
    qq = qq.real if isinstance(qq, complex) else qq
    return _finite(qq) and qq > 0.0


def _orthogonalise(q, kept, window: int, dot):
    """``q`` A-orthogonalised against the kept directions (two Gram-Schmidt passes).

    Returns None when nothing independent is left (``||p|| <= 1e-12 ||q||``).
    """
    if not kept:
        return bk.copy(q)
    qnorm = math.sqrt(abs(dot(q, q)))
    p = bk.copy(q)
    # Two modified Gram-Schmidt passes: "twice is enough" keeps the window A-orthogonal to
    # rounding level even when the generator's output is nearly in the span of the window.
    for _ in range(2):
        for p_j, Ap_j, pAp_j in kept:
            p -= (dot(Ap_j, p) / pAp_j) * p_j
    pnorm = math.sqrt(abs(dot(p, p)))
    if not (pnorm > 1e-12 * qnorm):
        return None
    return p


def conjugate_directions(A: Any, b: Any, direction: Callable | None = None, x0: Any = None, *,
                         rtol: float = 1e-5, atol: float = 0.0, maxiter: int | None = None,
                         window: int = 2, refresh_every: int | None = None,
                         callback: Callable | None = None) -> SolveResult:
    """Solve SPD ``A x = b`` by conjugate directions from a direction generator.

    Parameters
    ----------
    A, b, x0
        As for :func:`lrsolve.cg` (any backend).
    direction : callable, optional
        ``q = direction(r)``, an array on the backend of ``r`` (any scale); the identity
        when None, which reproduces CG.
    rtol, atol, maxiter
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)``; ``maxiter`` defaults to ``10 n``.
    window : int
        Directions kept for the A-orthogonalisation (2 in DCDM; 0 is steepest-descent-like
        line search along the raw directions).
    refresh_every : int, optional
        Recompute ``r = b - A x`` every so many steps (50 in double, 10 in single).
    callback : callable, optional
        ``callback(xk)`` after every step.

    Returns
    -------
    SolveResult
        ``stats`` has ``matvecs``, ``direction_calls``, ``fallbacks``, ``max_a_cosine``.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=16, dim=2)
    >>> res = conjugate_directions(P.A, P.b, rtol=1e-8)
    >>> res.iterations == lr.solve(P.A, P.b, method="cg", rtol=1e-8).iterations
    True
    """
    system = make_system(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, rescale=True)
    if direction is not None and not callable(direction):
        raise TypeError(f"direction must be callable r -> q, got {type(direction).__name__}")
    res = conjugate_directions_system(system, direction, window=window,
                                      refresh_every=refresh_every, callback=callback)
    return system.finish(res)
