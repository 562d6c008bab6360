"""Fused NumPy kernels for CG (numba): fewer passes over memory than separate BLAS-1 calls.

A CG step on NumPy otherwise makes ~8 passes over its vectors (matvec, dot, two axpys
with temporaries, norm, dot, scale, add).  These kernels fold the mat-vec with ``p^T q``
and the two updates with ``r^T r``, which is what lets CG on CSR beat SciPy's loop on
the same matrix.  Real float32/float64 only; complex inputs take the generic path.
"""
from __future__ import annotations

import numpy as np

_K: dict = {}


def kernels():
    if _K:
        return _K
    import numba as nb

    @nb.njit(cache=True)
    def csr_matvec_dot(indptr, indices, data, p, out):
        total = 0.0
        for i in range(out.shape[0]):
            s = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                s += data[k] * p[indices[k]]
            out[i] = s
            total += p[i] * s
        return total

    @nb.njit(cache=True, fastmath=True)  # reassociation lets the reduction vectorise
    def dot(a, b):
        total = 0.0
        for i in range(a.shape[0]):
            total += a[i] * b[i]
        return total

    @nb.njit(cache=True, fastmath=True)
    def update(x, r, p, q, alpha):
        # x += alpha p; r -= alpha q; return r^T r
        total = 0.0
        for i in range(x.shape[0]):
            x[i] += alpha * p[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            total += ri * ri
        return total

    @nb.njit(cache=True)
    def direction(p, z, beta):
        # p = z + beta p
        for i in range(p.shape[0]):
            p[i] = z[i] + beta * p[i]

    _K.update(csr_matvec_dot=csr_matvec_dot, dot=dot, update=update, direction=direction)
    return _K


def csr_matvec_dot(A, p, q) -> float:
    """``q[:] = A @ p`` for a SciPy CSR matrix, into the preallocated ``q``; returns ``p^T q``.

    SciPy's compiled CSR kernel writes into ``q`` (it measured ~20% faster than a numba
    CSR loop here); the fused numba dot follows.  Falls back to ``A @ p`` when SciPy's
    private kernel module is not importable.
    """
    if _csr_matvec is not None:
        q.fill(0.0)
        _csr_matvec(A.shape[0], A.shape[1], A.indptr, A.indices, A.data, p, q)
    else:  # pragma: no cover - other SciPy layouts
        q[:] = A @ p
    return float(np.dot(p, q))


try:  # SciPy's compiled sparse kernels (private, stable across 1.x)
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover
    _csr_matvec = None


def usable(b, x0) -> bool:
    """Whether the fused path applies: NumPy, real float32/float64, contiguous."""
    ok = isinstance(b, np.ndarray) and b.dtype in (np.float64, np.float32) and b.flags.c_contiguous
    if x0 is not None:
        ok = ok and isinstance(x0, np.ndarray) and x0.dtype == b.dtype
    return ok
