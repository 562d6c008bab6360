"""Numba kernel for evaluating a 3-D Chebyshev-Tucker function at scattered points (NumPy).

Points are processed in blocks of ``_BLOCK`` with the point index innermost, so the
Chebyshev recurrence, the factor accumulation and the core contraction are all
contiguous vector loops that LLVM turns into SIMD: per point about
``sum_k (n_k + 1) r_k + r_1 r_2 (r_3 + 2)`` fused multiply-adds and no temporaries
beyond a few ``r x block`` arrays that stay in cache.  The array-API path in
:mod:`lrsolve.tensors.chebtucker` (GEMMs) serves torch / CuPy.
"""
from __future__ import annotations

import numpy as np
import numba

_BLOCK = 128


@numba.njit(cache=True, fastmath=True, inline="always")
def _factor_block(x, F, phi, nb, t0, t1, t2):
    n1, r = F.shape
    for p in range(nb):
        t0[p] = 1.0
        t1[p] = x[p]
    for a in range(r):
        f0 = F[0, a]
        f1 = F[1, a] if n1 > 1 else 0.0
        for p in range(nb):
            phi[a, p] = f0 + f1 * t1[p]
    for j in range(2, n1):
        for p in range(nb):
            t2[p] = 2.0 * x[p] * t1[p] - t0[p]
        for a in range(r):
            fj = F[j, a]
            for p in range(nb):
                phi[a, p] += fj * t2[p]
        for p in range(nb):
            t0[p] = t1[p]
            t1[p] = t2[p]


@numba.njit(cache=True, fastmath=True)
def eval_tucker3(X, F1, F2, F3, G, out):
    """``out[i] = sum G[a,b,c] phi1_a(X[0,i]) phi2_b(X[1,i]) phi3_c(X[2,i])``; ``X`` in [-1, 1]."""
    m = X.shape[1]
    r1, r2, r3 = G.shape
    phi1 = np.empty((r1, _BLOCK))
    phi2 = np.empty((r2, _BLOCK))
    phi3 = np.empty((r3, _BLOCK))
    t0 = np.empty(_BLOCK)
    t1 = np.empty(_BLOCK)
    t2 = np.empty(_BLOCK)
    h = np.empty(_BLOCK)
    acc = np.empty(_BLOCK)
    for start in range(0, m, _BLOCK):
        nb = min(_BLOCK, m - start)
        _factor_block(X[0, start:start + nb], F1, phi1, nb, t0, t1, t2)
        _factor_block(X[1, start:start + nb], F2, phi2, nb, t0, t1, t2)
        _factor_block(X[2, start:start + nb], F3, phi3, nb, t0, t1, t2)
        for p in range(nb):
            acc[p] = 0.0
        for a in range(r1):
            for b in range(r2):
                for p in range(nb):
                    h[p] = 0.0
                for c in range(r3):
                    g = G[a, b, c]
                    for p in range(nb):
                        h[p] += g * phi3[c, p]
                for p in range(nb):
                    acc[p] += phi1[a, p] * phi2[b, p] * h[p]
        for p in range(nb):
            out[start + p] = acc[p]
