"""Numba kernel for evaluating a 3-D Chebyshev-Tucker function at scattered points (NumPy).

Points are processed in blocks of ``_BLOCK``.  Per block and axis, the Chebyshev
recurrence fills ``T[j, p] = T_j(x_p)`` (a contiguous vector loop), one small GEMM gives
the factor values ``phi = F^T T`` (``r x block``), a second GEMM contracts the core with
the third axis (``H = G_(12),3 @ phi3``), and a fused loop finishes
``sum_ab phi1[a] phi2[b] H[ab]``.  Everything stays in cache, the heavy parts run in
BLAS, and there are no temporaries of size ``m``.  The array-API path in
:mod:`lrsolve.tensors.chebtucker` (GEMMs over chunks) serves torch / CuPy.
"""
from __future__ import annotations

import numpy as np
import numba

_BLOCK = 128


@numba.njit(cache=True, fastmath=True)
def _chebyshev_rows(x, T, nb):
    n1 = T.shape[0]
    for p in range(nb):
        T[0, p] = 1.0
    if n1 > 1:
        for p in range(nb):
            T[1, p] = x[p]
    for j in range(2, n1):
        for p in range(nb):
            T[j, p] = 2.0 * x[p] * T[j - 1, p] - T[j - 2, p]


@numba.njit(cache=True, fastmath=True)
def eval_tucker3(X, F1t, F2t, F3t, G2, out):
    """``out[i] = sum G[a,b,c] phi1_a phi2_b phi3_c`` at reference coordinates ``X[:, i]``.

    ``Fkt`` are the transposed coefficient factors (``r_k x (n_k + 1)``, C-contiguous);
    ``G2`` is the core reshaped to ``(r1 r2, r3)``.
    """
    m = X.shape[1]
    r1 = F1t.shape[0]
    r2 = F2t.shape[0]
    T1 = np.zeros((F1t.shape[1], _BLOCK))
    T2 = np.zeros((F2t.shape[1], _BLOCK))
    T3 = np.zeros((F3t.shape[1], _BLOCK))
    acc = np.empty(_BLOCK)
    for start in range(0, m, _BLOCK):
        nb = min(_BLOCK, m - start)
        _chebyshev_rows(X[0, start:start + nb], T1, nb)
        _chebyshev_rows(X[1, start:start + nb], T2, nb)
        _chebyshev_rows(X[2, start:start + nb], T3, nb)
        phi1 = np.dot(F1t, T1)
        phi2 = np.dot(F2t, T2)
        H = np.dot(G2, np.dot(F3t, T3))
        for p in range(nb):
            acc[p] = 0.0
        for a in range(r1):
            for b in range(r2):
                row = a * r2 + b
                for p in range(nb):
                    acc[p] += phi1[a, p] * phi2[b, p] * H[row, p]
        for p in range(nb):
            out[start + p] = acc[p]
