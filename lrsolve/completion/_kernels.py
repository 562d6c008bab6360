"""Fused per-row numba kernels for the NumPy backend (CountSketch and exact solvers).

The batched NumPy path (:mod:`._rowsolve`) streams the whole gathered design of a chunk
through memory once per CG step, so on a CPU it is bound by memory bandwidth, not by
the ``O(|Omega_j| k)`` flops the sketch solver needs.  Here one row at a time is
gathered (row-major: whole contiguous rows of the fixed factor) into a scratch buffer
that stays in L1/L2 cache, fused with the first pass the solver needs (``A^T b``, or the
residual and gradient at the warm start), and everything else runs on it in place.

Per row ``j`` with ``L = |Omega_j|`` observations and rank ``k``:

* ``exact_rows``  - ``O(L k)`` gather with ``A^T b``, ``O(L k^2)`` Gram (BLAS) +
  ``O(k^3)`` Cholesky, one BLAS-2 pass for the residual;
* ``sketch_rows`` - the paper's solver as such: ``O(L k)`` gather + CountSketch,
  ``O(s k^2 + k^3)`` preconditioner, ``O(L k)`` per CG step;
* ``sketch_rows_reuse`` - the same preconditioned CG with each row's factor kept across
  sweeps: a sweep with a good kept factor is one fused gather + gradient pass plus one
  fused ``A p`` / ``A^T q`` pass per CG step (about one step), no Gram and no
  factorisation.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["sketch_rows", "exact_rows"]


@njit(cache=True, fastmath=True)
def _chol_solve(C, r, z):
    """z = (C C^T)^{-1} r for lower-triangular C (forward then back substitution)."""
    k = r.shape[0]
    for i in range(k):
        acc = r[i]
        for t in range(i):
            acc -= C[i, t] * z[t]
        z[i] = acc / C[i, i]
    for i in range(k - 1, -1, -1):            # back substitution by rows of C (contiguous)
        zi = z[i] / C[i, i]
        z[i] = zi
        for t in range(i):
            z[t] -= zi * C[i, t]


@njit(cache=True, fastmath=True)
def _gather(F, indptr, other, values, j, buf, b):
    """Design of row j, row-major and contiguous (L x k): row ``l`` is the contiguous row
    ``F[other_l]`` (a gather of whole rows is ~7x faster than filling a transposed
    ``k x L`` buffer column by column, which scatters over ``k`` rows of ``F^T``)."""
    start = indptr[j]
    L = indptr[j + 1] - start
    k = F.shape[1]
    A = buf[:k * L].reshape((L, k))
    trace = 0.0
    for l in range(L):
        o = other[start + l]
        for t in range(k):
            v = F[o, t]
            A[l, t] = v
            trace += v * v
        b[l] = values[start + l]
    return A, L, trace


@njit(cache=True, fastmath=True)
def _gather_residual(F, indptr, other, values, j, buf, x, d, r):
    """:func:`_gather` fused with the residual and the gradient at ``x``: ``d = b - A x``
    and ``r = A^T d``, while each gathered row is still in registers (saves a BLAS-2
    pass pair over the design; ``x = 0`` gives ``d = b``, ``r = A^T b``)."""
    start = indptr[j]
    L = indptr[j + 1] - start
    k = F.shape[1]
    A = buf[:k * L].reshape((L, k))
    for t in range(k):
        r[t] = 0.0
    trace = 0.0
    for l in range(L):
        o = other[start + l]
        acc = 0.0
        for t in range(k):
            v = F[o, t]
            A[l, t] = v
            acc += v * x[t]
            trace += v * v
        dl = values[start + l] - acc
        d[l] = dl
        for t in range(k):
            r[t] += dl * A[l, t]
    return A, L, trace


@njit(cache=True, fastmath=True)
def _gather_rhs(F, indptr, other, values, j, buf, b, rhs):
    """:func:`_gather` fused with ``rhs = A^T b`` (the exact solver's right-hand side)."""
    start = indptr[j]
    L = indptr[j + 1] - start
    k = F.shape[1]
    A = buf[:k * L].reshape((L, k))
    for t in range(k):
        rhs[t] = 0.0
    trace = 0.0
    for l in range(L):
        o = other[start + l]
        bl = values[start + l]
        b[l] = bl
        for t in range(k):
            v = F[o, t]
            A[l, t] = v
            trace += v * v
            rhs[t] += bl * v
    return A, L, trace


@njit(cache=True, fastmath=True)
def _gather_sketch(F, indptr, other, values, j, buf, b, bucket, sign, SA):
    """:func:`_gather` fused with the CountSketch ``SA = S A``: one read of F."""
    start = indptr[j]
    L = indptr[j + 1] - start
    k = F.shape[1]
    A = buf[:k * L].reshape((L, k))
    SA[:, :] = 0.0
    trace = 0.0
    for l in range(L):
        o = other[start + l]
        row = bucket[start + l]
        sg = sign[start + l]
        for t in range(k):
            v = F[o, t]
            A[l, t] = v
            trace += v * v
            SA[row, t] += sg * v
        b[l] = values[start + l]
    return A, L, trace


@njit(cache=True, fastmath=True)
def _matvec(A, L, p, q):
    """q[:L] = A p (BLAS gemv: ~1.5x our own loops)."""
    q[:L] = np.dot(A, p)


@njit(cache=True, fastmath=True)
def _rmatvec(A, L, q, out, lam, p):
    """out = A^T q + lam p."""
    out[:] = np.dot(A.T, q[:L]) + lam * p


@njit(cache=True, fastmath=True)
def _pass_pair(A, L, p, q, Hp):
    """``q = A p`` and ``Hp = A^T q`` in one pass over the cached design, four rows at a
    time (the four dot products share the loads of ``p``, the update of ``Hp`` is
    amortised over four rows): ~2x two BLAS gemv calls at k = 20, ~1.3x at k = 40."""
    k = A.shape[1]
    for t in range(k):
        Hp[t] = 0.0
    l = 0
    while l + 4 <= L:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for t in range(k):
            pt = p[t]
            s0 += A[l, t] * pt
            s1 += A[l + 1, t] * pt
            s2 += A[l + 2, t] * pt
            s3 += A[l + 3, t] * pt
        q[l] = s0
        q[l + 1] = s1
        q[l + 2] = s2
        q[l + 3] = s3
        for t in range(k):
            Hp[t] += s0 * A[l, t] + s1 * A[l + 1, t] + s2 * A[l + 2, t] + s3 * A[l + 3, t]
        l += 4
    while l < L:
        s0 = 0.0
        for t in range(k):
            s0 += A[l, t] * p[t]
        q[l] = s0
        for t in range(k):
            Hp[t] += s0 * A[l, t]
        l += 1


@njit(cache=True, fastmath=True)
def _pcg_start(C, r, z, p):
    """Start (or restart) preconditioned CG: ``z = M^{-1} r``, ``p = z``; returns ``r^T z``."""
    _chol_solve(C, r, z)
    rz = 0.0
    for t in range(r.shape[0]):
        p[t] = z[t]
        rz += r[t] * z[t]
    return rz


@njit(cache=True, fastmath=True)
def _pcg_update(C, p, Hp, q, x, r, d, z, rz, L):
    """One preconditioned CG update given ``Hp = H p`` and ``q = A p``.

    Moves ``x`` along ``p``, updates the gradient residual ``r``, the data residual
    ``d`` and the search direction ``p`` in place; returns the new ``r^T z`` (or -1.0
    when ``p^T H p <= 0``, a breakdown the caller stops on).
    """
    k = x.shape[0]
    pHp = 0.0
    for t in range(k):
        pHp += p[t] * Hp[t]
    if pHp <= 0.0:
        return -1.0
    alpha = rz / pHp
    for t in range(k):
        x[t] += alpha * p[t]
        r[t] -= alpha * Hp[t]
    for l in range(L):
        d[l] -= alpha * q[l]
    _chol_solve(C, r, z)
    rz_new = 0.0
    for t in range(k):
        rz_new += r[t] * z[t]
    beta = rz_new / rz
    for t in range(k):
        p[t] = z[t] + beta * p[t]
    return rz_new


@njit(cache=True, fastmath=True)
def sketch_rows(F, indptr, other, values, bucket, sign, X0, X, reg, jitter, floor, s,
                inner_iters, inner_rtol):
    """CountSketch-preconditioned CG for every row; returns (residual_sq, max_iters)."""
    G = indptr.shape[0] - 1
    k = F.shape[1]
    Lmax = 1
    for j in range(G):
        Lmax = max(Lmax, indptr[j + 1] - indptr[j])
    buf = np.empty(k * Lmax)
    b = np.empty(Lmax)
    d = np.empty(Lmax)
    q = np.empty(Lmax)
    SA = np.empty((s, k))
    x = np.empty(k)
    r = np.empty(k)
    z = np.empty(k)
    p = np.empty(k)
    Hp = np.empty(k)
    res_sq = 0.0
    max_it = 0
    for j in range(G):
        if indptr[j + 1] - indptr[j] <= s:
            # the sketch would not be shorter than the design: factor the design itself
            At, L, trace = _gather(F, indptr, other, values, j, buf, b)
            Gs = np.dot(At.T, At)
        else:
            At, L, trace = _gather_sketch(F, indptr, other, values, j, buf, b, bucket,
                                          sign, SA)
            Gs = np.dot(SA.T, SA)
        lam = reg + jitter * max(trace / k, floor)
        for t in range(k):
            Gs[t, t] += lam
        C = np.linalg.cholesky(Gs)
        for t in range(k):
            x[t] = X0[j, t]
        _matvec(At, L, x, q)
        for l in range(L):
            d[l] = b[l] - q[l]
        _rmatvec(At, L, d, r, -lam, x)            # r = A^T (b - A x) - lam x
        rz = _pcg_start(C, r, z, p)
        stop = inner_rtol * inner_rtol * rz
        it = 0
        while it < inner_iters and rz > stop and rz > 0.0:
            _pass_pair(At, L, p, q, Hp)           # Hp = (A^T A + lam I) p
            for t in range(k):
                Hp[t] += lam * p[t]
            rz_new = _pcg_update(C, p, Hp, q, x, r, d, z, rz, L)
            if rz_new < 0.0:
                break
            rz = rz_new
            it += 1
        for t in range(k):
            X[j, t] = x[t]
        for l in range(L):
            res_sq += d[l] * d[l]
        max_it = max(max_it, it)
    return res_sq, max_it


@njit(cache=True, fastmath=True)
def exact_rows(F, indptr, other, values, X, reg, jitter, floor):
    """Normal equations per row, Gram by BLAS on the cached design; returns residual_sq."""
    G = indptr.shape[0] - 1
    k = F.shape[1]
    Lmax = 1
    for j in range(G):
        Lmax = max(Lmax, indptr[j + 1] - indptr[j])
    buf = np.empty(k * Lmax)
    b = np.empty(Lmax)
    q = np.empty(Lmax)
    rhs = np.empty(k)
    x = np.empty(k)
    res_sq = 0.0
    for j in range(G):
        At, L, trace = _gather_rhs(F, indptr, other, values, j, buf, b, rhs)
        lam = reg + jitter * max(trace / k, floor)       # b = values, rhs = A^T b
        Gm = np.dot(At.T, At)
        for t in range(k):
            Gm[t, t] += lam
        C = np.linalg.cholesky(Gm)
        _chol_solve(C, rhs, x)
        for t in range(k):
            X[j, t] = x[t]
        _matvec(At, L, x, q)
        for l in range(L):
            res_sq += (b[l] - q[l]) ** 2
    return res_sq


@njit(cache=True, fastmath=True)
def _sketch_of(A, L, s, SA):
    """``SA = S A`` for a fresh ``s x L`` CountSketch drawn here (numba's generator,
    seeded by the caller): a bucket and a sign for each of the ``L`` observations."""
    k = A.shape[1]
    SA[:, :] = 0.0
    for l in range(L):
        row = np.random.randint(0, s)
        sg = 1.0 if np.random.random() < 0.5 else -1.0
        for t in range(k):
            SA[row, t] += sg * A[l, t]


@njit(cache=True, fastmath=True)
def _factor(Gs, lam, Mr, C):
    """C = chol(Gs + lam Mr), in place into C (an explicit inverse would make each apply
    ~3x cheaper but costs ~5x a Cholesky to form; most factors are applied only a few
    dozen times)."""
    k = Gs.shape[0]
    for a in range(k):
        for c in range(k):
            Gs[a, c] += lam * Mr[a, c]
    C[:, :] = np.linalg.cholesky(Gs)


@njit(cache=True, fastmath=True)
def _build(A, L, s, lam, Mr, SA, C):
    """Preconditioner factor of one row into ``C``: ``chol(A^T A + lam Mr)`` from the
    design itself when ``s == 0`` or ``L <= s``, else from a fresh CountSketch ``S A``."""
    if s == 0 or L <= s:
        Gs = np.dot(A.T, A)
    else:
        _sketch_of(A, L, s, SA)
        Gs = np.dot(SA.T, SA)
    _factor(Gs, lam, Mr, C)


@njit(cache=True, fastmath=True)
def sketch_rows_reuse(F, indptr, other, values, seed, X0, X, reg, Mr, jitter,
                      floor, s, inner_iters, inner_rtol, Cst, have, stale_steps, fails, skip):
    """Preconditioned CG per row with the preconditioner of every row kept across sweeps.

    Row problem ``min ||A x - b||^2 + lam x^T Mr x`` (``Mr`` is the ridge metric of the
    basis the caller expresses the fixed factor in).  ``Cst[j]`` holds the Cholesky
    factor of the preconditioner of row ``j`` built in an earlier sweep; ``have[j]`` is 0 when
    there is none, else ``1 +`` the CG steps the factor needed when it was fresh.  It is
    (re)built - from a CountSketch of ``s`` rows of the cached design, or from the design
    itself when ``s == 0`` or ``|Omega_j| <= s`` - when missing, or when CG with the
    stale factor has not reached ``inner_rtol`` after the steps it needed fresh plus
    ``stale_steps``; CG then restarts from its current iterate with the fresh factor.
    A sweep with good stale factors costs one fused gather + gradient pass plus one pair
    of BLAS-2 passes per CG step over the cached design: no Gram, no factorisation.

    Back-off: where the column space keeps moving (slow, noisy problems) a kept factor
    would fail every sweep and cost a wasted step on top of the rebuild.  A row whose
    kept factor failed ``fails[j]`` sweeps in a row therefore builds its factor up front
    for the next ``2^(fails[j] - 1) - 1`` sweeps (``skip[j]`` counts them down; at most
    15) before it tries a kept factor again, so such a row costs about what the exact
    solver does instead of more.  A single failure (normal in the second sweep, while
    the column space still moves from the initialisation) does not back off.

    A row's CountSketch is drawn only when its factor is built (``seed`` seeds numba's
    generator), so a sweep with stale factors draws nothing.

    Returns ``(residual_sq, max_steps, total_steps, refreshed)``.
    """
    # Inside njit this seeds numba's own generator (per thread), not NumPy's global state:
    # a caller's np.random stream is untouched (tests/test_hardening_completion.py).
    np.random.seed(seed)
    G = indptr.shape[0] - 1
    k = F.shape[1]
    Lmax = 1
    for j in range(G):
        Lmax = max(Lmax, indptr[j + 1] - indptr[j])
    buf = np.empty(k * Lmax)
    d = np.empty(Lmax)
    q = np.empty(Lmax)
    SA = np.empty((max(s, 1), k))
    x = np.empty(k)
    r = np.empty(k)
    r0 = np.empty(k)
    z = np.empty(k)
    p = np.empty(k)
    Hp = np.empty(k)
    res_sq = 0.0
    max_it = 0
    total_it = 0
    refreshed = 0
    for j in range(G):
        for t in range(k):
            x[t] = X0[j, t]
        At, L, trace = _gather_residual(F, indptr, other, values, j, buf, x, d, r)
        lam = reg + jitter * max(trace / k, floor)
        C = Cst[j]
        fresh = have[j] == 0
        if skip[j] > 0:
            skip[j] -= 1
            fresh = True
        if fresh:
            _build(At, L, s, lam, Mr, SA, C)
            refreshed += 1
        kept = not fresh
        failed = False
        budget = inner_iters if fresh else int(have[j]) - 1 + stale_steps
        r -= lam * np.dot(Mr, x)                           # minus the gradient
        r0[:] = r
        rz = _pcg_start(C, r, z, p)
        stop = inner_rtol * inner_rtol * rz
        it = 0
        it_fresh = 0
        if fresh and (s == 0 or L <= s) and rz > 0.0:
            # a fresh factor of the design itself is the exact Hessian: one exact step
            for t in range(k):
                x[t] += z[t]
            _matvec(At, L, z, q)
            for l in range(L):
                d[l] -= q[l]
            it = 1
            it_fresh = 1
            rz = 0.0
        while it < inner_iters and rz > stop and rz > 0.0:
            if not fresh and it >= budget:
                # the stale factor is no longer good enough: rebuild it from the cached
                # design and restart CG from the current iterate
                _build(At, L, s, lam, Mr, SA, C)
                fresh = True
                failed = True
                refreshed += 1
                it_fresh = 0
                _chol_solve(C, r0, z)
                rz0 = 0.0
                for t in range(k):
                    rz0 += r0[t] * z[t]
                stop = inner_rtol * inner_rtol * rz0
                rz = _pcg_start(C, r, z, p)
                if rz <= stop:
                    break
            _pass_pair(At, L, p, q, Hp)
            Hp += lam * np.dot(Mr, p)
            rz_new = _pcg_update(C, p, Hp, q, x, r, d, z, rz, L)
            if rz_new < 0.0:
                break
            rz = rz_new
            it += 1
            it_fresh += 1
        if fresh:
            have[j] = 1 + min(max(it_fresh, 1), 250)
        if kept:
            if failed:
                fails[j] = min(fails[j] + 1, 5)
                skip[j] = (1 << (fails[j] - 1)) - 1
            else:
                fails[j] = 0
        for t in range(k):
            X[j, t] = x[t]
        for l in range(L):
            res_sq += d[l] * d[l]
        max_it = max(max_it, it)
        total_it += it
    return res_sq, max_it, total_it, refreshed

