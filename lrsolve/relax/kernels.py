"""Numba kernels for lexicographic SOR / SSOR on CPU CSR matrices (NumPy backend only).

Every kernel takes the raw CSR arrays (``indptr``, ``indices``, ``data``, column indices
sorted within each row) and the diagonal ``diag`` (nonzero, checked by the caller).

* :func:`sor_sweep` - one forward SOR sweep in place, nothing else; this is what the
  "a sweep costs about one mat-vec" benchmark times.
* :func:`sor_solve` - the whole SOR loop.  The residual of the current iterate is fused
  into the next sweep (one pass over the matrix per iteration instead of two): during
  sweep ``k+1`` row ``i`` already computes ``s_i = b_i - sum_{j<i} a_ij x^{k+1}_j -
  sum_{j>=i} a_ij x^k_j``, and ``r^k_i = s_i + sum_{j<i} a_ij (x^{k+1}_j - x^k_j)``
  only needs the update ``delta`` already in cache.  The residual therefore lags one
  sweep; when ``x^k`` passes the test the last sweep is undone (``x -= delta``), so the
  reported iteration count is that of the iterate returned, as in the reference code.
* :func:`ssor_apply` - ``z = M^{-1} r`` for the SSOR preconditioner
  ``M = (D + w L) D^{-1} (D + w U) / (w (2 - w))``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["kernels"]

_KERNELS: dict = {}


def kernels() -> dict:
    """Compile (once, cached on disk) and return the numba kernels by name."""
    if _KERNELS:
        return _KERNELS
    import numba as nb

    @nb.njit(cache=True)
    def sor_sweep(indptr, indices, data, wdinv, b, x):
        # wdinv = omega / diag: a multiply instead of a divide on the critical path.  The
        # term in x[i-1], written by the previous row, is subtracted last so the other
        # products need not wait for it (the sweep is a serial recurrence through x).
        n = b.shape[0]
        for i in range(n):
            s = b[i]
            late = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j == i - 1:
                    late = data[p] * x[j]
                else:
                    s -= data[p] * x[j]
            x[i] += wdinv[i] * (s - late)

    @nb.njit(cache=True)
    def sor_solve(indptr, indices, data, wdinv, b, x, tol, maxiter, residuals):
        # Returns (iterations, status): status 0 converged, 1 maxiter, 2 non-finite.
        # residuals[k] receives ||b - A x^k|| for k = 0..iterations.
        n = b.shape[0]
        delta = np.zeros(n)
        k = 0
        while True:
            rr = 0.0
            for i in range(n):
                s = b[i]
                corr = 0.0
                late = 0.0
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    a = data[p]
                    if j == i - 1:
                        late = a * x[j]
                        corr += a * delta[j]
                    else:
                        s -= a * x[j]
                        if j < i:
                            corr += a * delta[j]
                s -= late
                r_old = s + corr
                rr += r_old * r_old
                d = wdinv[i] * s
                delta[i] = d
                x[i] += d
            rnorm = np.sqrt(rr)
            residuals[k] = rnorm
            status = -1
            if rnorm <= tol:
                status = 0
            elif not np.isfinite(rnorm):
                status = 2
            elif k >= maxiter:
                status = 1
            if status >= 0:
                for i in range(n):
                    x[i] -= delta[i]
                return k, status
            k += 1

    @nb.njit(cache=True)
    def ssor_apply(indptr, indices, data, diag, omega, r, z):
        # Forward: (D + w L) y = r; then y <- D y; backward: (D + w U) z = y; z *= w (2 - w).
        n = r.shape[0]
        for i in range(n):
            s = r[i]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j >= i:
                    break
                s -= omega * data[p] * z[j]
            z[i] = s / diag[i]
        for i in range(n):
            z[i] *= diag[i]
        for i in range(n - 1, -1, -1):
            s = z[i]
            for p in range(indptr[i + 1] - 1, indptr[i] - 1, -1):
                j = indices[p]
                if j <= i:
                    break
                s -= omega * data[p] * z[j]
            z[i] = s / diag[i]
        scale = omega * (2.0 - omega)
        for i in range(n):
            z[i] *= scale
        return z

    @nb.njit(cache=True)
    def jacobi_row_bound(indptr, indices, data, diag):
        # max_i sum_{j != i} |a_ij| / |a_ii|: a Gershgorin bound on the Jacobi spectral radius.
        n = diag.shape[0]
        best = 0.0
        for i in range(n):
            s = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                if indices[p] != i:
                    s += abs(data[p])
            v = s / abs(diag[i])
            if v > best:
                best = v
        return best

    _KERNELS.update(sor_sweep=sor_sweep, sor_solve=sor_solve, ssor_apply=ssor_apply,
                    jacobi_row_bound=jacobi_row_bound)
    return _KERNELS
