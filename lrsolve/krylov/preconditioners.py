"""Preconditioners for CG, built once and applied many times.

Setup is split from application (as in lineax): building an IC(0) factor or an AMG
hierarchy is the expensive part, so a time-stepping loop builds a preconditioner once
and passes it as ``M`` to many solves.  Every preconditioner here approximates
``A^{-1}`` and is applied as ``M @ r`` (SciPy's convention).

* :class:`Jacobi` - ``diag(A)^{-1}``; any backend.
* :class:`IC0` - zero fill-in incomplete Cholesky, numba kernels, NumPy / CPU CSR only.
* :class:`AMG` - smoothed-aggregation AMG V-cycle through PyAMG, NumPy / CPU CSR only.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import backend as bk

__all__ = ["Preconditioner", "Jacobi", "IC0", "AMG", "make_preconditioner", "diagonal_of"]


class Preconditioner:
    """Base class: ``M @ r`` applies the preconditioner; ``setup_time`` records the build."""

    shape: tuple
    setup_time: float = 0.0
    backend = "numpy"

    def matvec(self, r):
        raise NotImplementedError

    def __matmul__(self, r):
        return self.matvec(r)

    def __call__(self, r):
        return self.matvec(r)


def diagonal_of(A: Any):
    """The diagonal of a dense array, sparse matrix (any backend) or lrsolve operator."""
    if hasattr(A, "diagonal") and not bk.is_torch(A):
        d = A.diagonal()
        return np.asarray(d) if sp.issparse(A) else d
    if bk.is_torch(A):
        torch = bk._torch()
        if A.layout == torch.strided:
            return torch.diagonal(A)
        coo = A.to_sparse_coo().coalesce()
        idx, vals = coo.indices(), coo.values()
        diag = torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)
        mask = idx[0] == idx[1]
        diag[idx[0][mask]] = vals[mask]
        return diag
    raise TypeError(f"cannot extract the diagonal of {type(A).__name__}; give a matrix or an "
                    "lrsolve operator")


class Jacobi(Preconditioner):
    """Diagonal (Jacobi) preconditioner ``M = diag(A)^{-1}``."""

    def __init__(self, A: Any):
        t0 = time.perf_counter()
        d = diagonal_of(A)
        dn = bk.to_numpy(d)
        if np.any(dn == 0) or not np.all(np.isfinite(dn)):
            raise ValueError("A has a zero or non-finite diagonal entry: Jacobi is undefined")
        self.inverse_diagonal = 1.0 / d
        self.shape = tuple(A.shape)
        self.backend = bk.backend_name(A)
        self.setup_time = time.perf_counter() - t0

    def matvec(self, r):
        return self.inverse_diagonal * r


def _to_scipy_csr(A: Any, name: str = "A") -> sp.csr_matrix:
    if sp.issparse(A):
        return sp.csr_matrix(A)
    if hasattr(A, "to_csr"):
        return sp.csr_matrix(A.to_csr(backend="numpy"))
    if isinstance(A, np.ndarray):
        return sp.csr_matrix(A)
    raise TypeError(f"{name} must be a NumPy/SciPy matrix or an lrsolve operator on the CPU for "
                    f"this preconditioner, got {type(A).__name__}")


def _numba():
    import numba
    return numba


_IC0_KERNELS = {}


def _ic0_kernels():
    if _IC0_KERNELS:
        return _IC0_KERNELS
    nb = _numba()

    @nb.njit(cache=True)
    def factor(indptr, indices, data, n):
        # In-place IC(0) on the lower triangle in CSR (column indices sorted per row):
        # L[i, j] = (A[i, j] - sum_k<j L[i, k] L[j, k]) / L[j, j] on the pattern of tril(A).
        diag_pos = np.empty(n, dtype=np.int64)
        for i in range(n):
            diag_pos[i] = -1
            for k in range(indptr[i], indptr[i + 1]):
                if indices[k] == i:
                    diag_pos[i] = k
        for i in range(n):
            if diag_pos[i] < 0:
                return -(i + 1)
            for kk in range(indptr[i], indptr[i + 1]):
                j = indices[kk]
                if j > i:
                    break
                s = data[kk]
                # sparse dot of row i and row j over columns < j
                a = indptr[i]
                bpos = indptr[j]
                while a < kk and bpos < diag_pos[j]:
                    ca = indices[a]
                    cb = indices[bpos]
                    if ca == cb:
                        s -= data[a] * data[bpos]
                        a += 1
                        bpos += 1
                    elif ca < cb:
                        a += 1
                    else:
                        bpos += 1
                if j < i:
                    data[kk] = s / data[diag_pos[j]]
                else:
                    if s <= 0.0:
                        return i + 1
                    data[kk] = np.sqrt(s)
        return 0

    @nb.njit(cache=True)
    def solve(indptr, indices, data, r, out):
        # Forward solve L y = r, then backward L^T z = y (L stored by rows).
        n = r.shape[0]
        for i in range(n):
            s = r[i]
            end = indptr[i + 1] - 1  # diagonal is last in the row
            for k in range(indptr[i], end):
                s -= data[k] * out[indices[k]]
            out[i] = s / data[end]
        for i in range(n - 1, -1, -1):
            end = indptr[i + 1] - 1
            out[i] = out[i] / data[end]
            yi = out[i]
            for k in range(indptr[i], end):
                out[indices[k]] -= data[k] * yi
        return out

    _IC0_KERNELS["factor"] = factor
    _IC0_KERNELS["solve"] = solve
    return _IC0_KERNELS


class IC0(Preconditioner):
    """Zero fill-in incomplete Cholesky ``A ~ L L^T`` (numba; NumPy / CPU CSR only).

    ``M @ r`` solves ``L L^T z = r``.  Raises ``ValueError`` when the factorisation meets a
    non-positive pivot (A not SPD, or IC(0) unstable for it).
    """

    def __init__(self, A: Any):
        t0 = time.perf_counter()
        A = _to_scipy_csr(A)
        if A.dtype.kind == "c":
            raise TypeError("IC0 supports real matrices only")
        L = sp.tril(A, format="csr").astype(np.float64)
        L.sort_indices()
        kernels = _ic0_kernels()
        status = kernels["factor"](L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data,
                                   L.shape[0])
        if status < 0:
            raise ValueError(f"A has no diagonal entry in row {-status - 1}: IC(0) undefined")
        if status > 0:
            raise ValueError(f"IC(0) met a non-positive pivot in row {status - 1}: A is not SPD "
                             "or IC(0) breaks down for it (try pcg-amg or a diagonal shift)")
        self.L = L
        self._indptr = L.indptr.astype(np.int64)
        self._indices = L.indices.astype(np.int64)
        self.shape = A.shape
        self.setup_time = time.perf_counter() - t0

    def matvec(self, r):
        if bk.backend_name(r) != "numpy":
            raise TypeError("IC0 runs on NumPy arrays only (a numba CPU kernel); use Jacobi or "
                            "AMG-free methods on torch/CuPy")
        out = np.empty(r.shape[0], dtype=np.float64)
        return _ic0_kernels()["solve"](self._indptr, self._indices, self.L.data,
                                       np.ascontiguousarray(r, dtype=np.float64), out).astype(r.dtype, copy=False)


class AMG(Preconditioner):
    """Smoothed-aggregation AMG (PyAMG) applied as one V-cycle per ``M @ r``.

    The hierarchy is built once; ``self.ml`` is PyAMG's multilevel solver.
    Extra keyword arguments go to :func:`pyamg.smoothed_aggregation_solver`.
    """

    def __init__(self, A: Any, cycle: str = "V", **kwargs):
        import pyamg
        t0 = time.perf_counter()
        A = _to_scipy_csr(A)
        self.ml = pyamg.smoothed_aggregation_solver(A, **kwargs)
        self._M = self.ml.aspreconditioner(cycle=cycle)
        self.shape = A.shape
        self.setup_time = time.perf_counter() - t0

    def matvec(self, r):
        if bk.backend_name(r) != "numpy":
            raise TypeError("AMG runs on NumPy arrays only (PyAMG is CPU-only)")
        return self._M @ r


_PRECONDITIONERS = {"jacobi": Jacobi, "ic0": IC0, "amg": AMG}


def make_preconditioner(name: str, A: Any, **kwargs) -> Preconditioner:
    """Build a preconditioner by name: ``"jacobi"``, ``"ic0"`` or ``"amg"``."""
    try:
        cls = _PRECONDITIONERS[name]
    except KeyError:
        raise ValueError(f"preconditioner must be one of {sorted(_PRECONDITIONERS)}, got {name!r}") from None
    return cls(A, **kwargs)
