"""Fused per-row numba kernels for the NumPy backend (CountSketch and exact solvers).

The batched NumPy path (:mod:`._rowsolve`) streams the whole gathered design of a chunk
through memory once per CG step, so on a CPU it is bound by memory bandwidth, not by
the ``O(|Omega_j| k)`` flops the sketch solver needs.  Here one row at a time is
gathered into a scratch buffer that stays in L1/L2 cache, and the CountSketch, the
Cholesky-QR preconditioner and every CG step run on it in place; each CG step reads the
design once (``q = A p`` and ``A^T q`` fused in one loop).

Per row ``j`` with ``L = |Omega_j|`` observations and rank ``k``:

* ``sketch_rows`` - ``O(L k)`` gather + CountSketch, ``O(s k^2 + k^3)`` preconditioner,
  ``O(L k)`` per CG step;
* ``exact_rows``  - ``O(L k^2)`` Gram (BLAS through ``np.dot``) + ``O(k^3)`` Cholesky.
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
    for i in range(k - 1, -1, -1):
        acc = z[i]
        for t in range(i + 1, k):
            acc -= C[t, i] * z[t]
        z[i] = acc / C[i, i]


@njit(cache=True, fastmath=True)
def _gather(Ft, indptr, other, values, j, buf, b):
    """Design of row j, transposed and contiguous (k x L): the CG loops run over long
    contiguous l; ``Ft`` is the fixed factor transposed (k x n) so each gather reads
    one contiguous row of it."""
    start = indptr[j]
    L = indptr[j + 1] - start
    k = Ft.shape[0]
    At = buf[:k * L].reshape((k, L))
    trace = 0.0
    for t in range(k):
        for l in range(L):
            v = Ft[t, other[start + l]]
            At[t, l] = v
            trace += v * v
    for l in range(L):
        b[l] = values[start + l]
    return At, L, trace


@njit(cache=True, fastmath=True)
def _gather_sketch(Ft, indptr, other, values, j, buf, b, bucket, sign, SAt):
    """:func:`_gather` fused with the CountSketch ``SAt = (S A)^T``: one read of F."""
    start = indptr[j]
    L = indptr[j + 1] - start
    k = Ft.shape[0]
    At = buf[:k * L].reshape((k, L))
    SAt[:, :] = 0.0
    trace = 0.0
    for t in range(k):
        for l in range(L):
            v = Ft[t, other[start + l]]
            At[t, l] = v
            trace += v * v
            SAt[t, bucket[start + l]] += sign[start + l] * v
    for l in range(L):
        b[l] = values[start + l]
    return At, L, trace


@njit(cache=True, fastmath=True)
def _matvec(At, L, p, q):
    """q[:L] = A p with A = At.T (BLAS gemv: ~1.5x our own loops)."""
    q[:L] = np.dot(p, At)


@njit(cache=True, fastmath=True)
def _rmatvec(At, L, q, out, lam, p):
    """out = A^T q + lam p."""
    out[:] = np.dot(At, q[:L]) + lam * p


@njit(cache=True, fastmath=True)
def sketch_rows(F, indptr, other, values, bucket, sign, X0, X, reg, jitter, floor, s,
                inner_iters, inner_rtol):
    """CountSketch-preconditioned CG for every row; returns (residual_sq, max_iters)."""
    G = indptr.shape[0] - 1
    k = F.shape[1]
    Ft = np.ascontiguousarray(F.T)
    Lmax = 1
    for j in range(G):
        Lmax = max(Lmax, indptr[j + 1] - indptr[j])
    buf = np.empty(k * Lmax)
    b = np.empty(Lmax)
    d = np.empty(Lmax)
    q = np.empty(Lmax)
    SAt = np.empty((k, s))
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
            At, L, trace = _gather(Ft, indptr, other, values, j, buf, b)
            Gs = np.dot(At, At.T)
        else:
            At, L, trace = _gather_sketch(Ft, indptr, other, values, j, buf, b, bucket,
                                          sign, SAt)
            Gs = np.dot(SAt, SAt.T)
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
        _chol_solve(C, r, z)
        rz = 0.0
        for t in range(k):
            p[t] = z[t]
            rz += r[t] * z[t]
        stop = inner_rtol * inner_rtol * rz
        it = 0
        while it < inner_iters and rz > stop and rz > 0.0:
            _matvec(At, L, p, q)
            _rmatvec(At, L, q, Hp, lam, p)        # Hp = (A^T A + lam I) p
            pHp = 0.0
            for t in range(k):
                pHp += p[t] * Hp[t]
            if pHp <= 0.0:
                break
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
    Ft = np.ascontiguousarray(F.T)
    Lmax = 1
    for j in range(G):
        Lmax = max(Lmax, indptr[j + 1] - indptr[j])
    buf = np.empty(k * Lmax)
    b = np.empty(Lmax)
    q = np.empty(Lmax)
    rhs = np.empty(k)
    x = np.empty(k)
    zero = np.zeros(k)
    res_sq = 0.0
    for j in range(G):
        At, L, trace = _gather(Ft, indptr, other, values, j, buf, b)
        lam = reg + jitter * max(trace / k, floor)
        Gm = np.dot(At, At.T)
        for t in range(k):
            Gm[t, t] += lam
        _rmatvec(At, L, b, rhs, 0.0, zero)
        C = np.linalg.cholesky(Gm)
        _chol_solve(C, rhs, x)
        for t in range(k):
            X[j, t] = x[t]
        _matvec(At, L, x, q)
        for l in range(L):
            res_sq += (b[l] - q[l]) ** 2
    return res_sq
