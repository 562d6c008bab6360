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
from ..operators.base import Operator
from ..operators.convert import as_operator, host_csr

__all__ = ["Preconditioner", "Jacobi", "IC0", "AMG", "make_preconditioner", "diagonal_of"]


class Preconditioner(Operator):
    """Base class: ``M @ r`` applies the preconditioner (1-D or an ``(n, k)`` block);
    ``setup_time`` records the build; ``update(A_new)`` rebuilds for a new matrix."""

    setup_time: float = 0.0
    backend = "numpy"
    hermitian = True

    def _check(self, r, name: str = "r"):
        if getattr(r, "ndim", None) not in (1, 2) or r.shape[0] != self.shape[0]:
            raise ValueError(f"{name} must have shape ({self.shape[0]},) or ({self.shape[0]}, k) "
                             f"for this {type(self).__name__}, got "
                             f"{tuple(getattr(r, 'shape', ()))}")

    def _host(self, r, what: str):
        """``r`` as a NumPy view for a CPU kernel (torch CPU tensors shared, not copied) and
        a function that returns the result on ``r``'s backend."""
        name = bk.backend_name(r)
        if name == "numpy":
            return r, (lambda y: y)
        if name == "torch" and r.device.type == "cpu":
            torch = bk._torch()
            return r.detach().numpy(), torch.from_numpy
        raise TypeError(f"{what} runs on the CPU (host memory) and r is a {name} array on "
                        f"{bk.device_of(r)}; use pcg-jacobi or pcg-mg on the GPU")

    def update(self, A_new: Any) -> None:
        """Rebuild for a new matrix with the same options."""
        self.__init__(A_new, **getattr(self, "_options", {}))


def diagonal_of(A: Any):
    """The diagonal of anything :func:`~lrsolve.operators.as_operator` accepts that has entries."""
    return as_operator(A).diagonal()


class Jacobi(Preconditioner):
    """Diagonal (Jacobi) preconditioner ``M = diag(A)^{-1}`` (any backend and device)."""

    def __init__(self, A: Any):
        t0 = time.perf_counter()
        op = as_operator(A)
        if not op.has_entries:
            raise TypeError("Jacobi needs the diagonal of A and A is matrix-free: give a "
                            "matrix, a sparse matrix or a stencil operator")
        d = op.diagonal()
        dn = bk.to_numpy(d)
        if not np.all(np.isfinite(dn)):
            raise ValueError("A has a NaN or Inf diagonal entry: Jacobi is undefined")
        zero = np.flatnonzero(dn == 0)
        if zero.size:
            raise ValueError(f"A has a zero diagonal entry (row {int(zero[0])}): Jacobi "
                             "divides by it")
        self.inverse_diagonal = 1.0 / d
        self.shape = tuple(op.shape)
        self.backend = op.backend
        self.device = op.device
        self.dtype = op.dtype
        self.setup_time = time.perf_counter() - t0

    def matvec(self, r):
        self._check(r)
        d = self.inverse_diagonal
        return d * r if r.ndim == 1 else d[:, None] * r


def _to_scipy_csr(A: Any, name: str = "A", purpose: str = "this preconditioner") -> sp.csr_matrix:
    return host_csr(A, name=name, purpose=purpose)


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

    ``M @ r`` solves ``L L^T z = r`` (``r`` of shape ``(n,)`` or ``(n, k)``).  Raises
    ``ValueError`` when A holds NaN/Inf or the factorisation meets a non-positive pivot
    (A not SPD, or IC(0) unstable for it); ``TypeError`` for matrix-free or GPU operators.
    """

    def __init__(self, A: Any):
        t0 = time.perf_counter()
        A = _to_scipy_csr(A, purpose="IC(0)")
        if A.dtype.kind == "c":
            raise TypeError("IC0 supports real matrices only")
        if not np.all(np.isfinite(A.data)):
            raise ValueError("A contains NaN or Inf: IC(0) is undefined")
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
        self.dtype = np.dtype(np.float64)
        self.setup_time = time.perf_counter() - t0

    def matvec(self, r):
        self._check(r)
        r, back = self._host(r, "IC0 (a numba kernel)")
        if r.ndim == 2:
            return back(np.stack([self.matvec(r[:, j]) for j in range(r.shape[1])], axis=1))
        return back(self._apply1(r))

    def _apply1(self, r):
        out = np.empty(r.shape[0], dtype=np.float64)
        return _ic0_kernels()["solve"](self._indptr, self._indices, self.L.data,
                                       np.ascontiguousarray(r, dtype=np.float64),
                                       out).astype(r.dtype, copy=False)


_CYCLES = ("V", "W", "F", "AMLI")


class AMG(Preconditioner):
    """Smoothed-aggregation AMG (PyAMG) applied as one cycle per ``M @ r``.

    The hierarchy is built once; ``self.ml`` is PyAMG's multilevel solver.  PyAMG draws
    random vectors from NumPy's *global* generator during setup; the build here runs
    with that generator seeded by ``seed`` and restores the caller's state afterwards,
    so the same ``seed`` gives the same hierarchy bit for bit and global state is left
    alone.  Extra keyword arguments go to :func:`pyamg.smoothed_aggregation_solver`.
    """

    def __init__(self, A: Any, cycle: str = "V", seed: int = 0, **kwargs):
        import pyamg
        if cycle not in _CYCLES:
            raise ValueError(f"cycle must be one of {_CYCLES}, got {cycle!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        t0 = time.perf_counter()
        A = _to_scipy_csr(A, purpose="AMG (PyAMG)")
        if A.dtype.kind == "c":
            raise TypeError("AMG here supports real matrices only")
        if not np.all(np.isfinite(A.data)):
            raise ValueError("A contains NaN or Inf: AMG is undefined")
        zero = np.flatnonzero(A.diagonal() == 0)
        if zero.size:
            raise ValueError(f"A has a zero diagonal entry (row {int(zero[0])}): "
                             "smoothed-aggregation AMG needs a nonzero diagonal (Jacobi "
                             "smoothing divides by it)")
        state = np.random.get_state()
        try:
            np.random.seed(int(seed))
            self.ml = pyamg.smoothed_aggregation_solver(A, **kwargs)
        finally:
            np.random.set_state(state)
        self._M = self.ml.aspreconditioner(cycle=cycle)
        self._options = dict(cycle=cycle, seed=seed, **kwargs)
        self.shape = A.shape
        self.dtype = A.dtype
        self.setup_time = time.perf_counter() - t0

    def matvec(self, r):
        self._check(r)
        r, back = self._host(r, "AMG (PyAMG)")
        if r.ndim == 2:
            return back(np.stack([self._M @ r[:, j] for j in range(r.shape[1])], axis=1))
        return back(self._M @ r)


_PRECONDITIONERS = {"jacobi": Jacobi, "ic0": IC0, "amg": AMG}


def make_preconditioner(name: str, A: Any, **kwargs) -> Preconditioner:
    """Build a preconditioner by name: ``"jacobi"``, ``"ic0"`` or ``"amg"``."""
    try:
        cls = _PRECONDITIONERS[name]
    except KeyError:
        raise ValueError(f"preconditioner must be one of {sorted(_PRECONDITIONERS)}, got {name!r}") from None
    return cls(A, **kwargs)
