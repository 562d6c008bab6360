"""``as_operator``: the one place in lrsolve that knows which kinds of operator exist.

Accepted inputs, and what they become:

============================================  =======================  =========  ==========
input                                         Operator                 entries    batched
============================================  =======================  =========  ==========
NumPy / CuPy / torch dense 2-D array          :class:`DenseOperator`   yes        ``A @ X``
scipy.sparse matrix or array (any format)     :class:`SparseOperator`  yes        SpMM
torch sparse CSR / COO (CPU, CUDA)            :class:`SparseOperator`  yes        SpMM
cupyx.scipy.sparse matrix                     :class:`SparseOperator`  yes        SpMM
scipy ``LinearOperator`` / object with        :class:`FunctionOperator` no        ``matmat``
``shape`` and ``matvec``
callable ``x -> A x`` with ``shape=``         :class:`FunctionOperator` no        per column
an lrsolve :class:`Operator`                  itself                   its own    its own
============================================  =======================  =========  ==========

Methods that need entries (IC(0), AMG, lexicographic SOR) call :func:`host_csr`, which
raises a ``TypeError`` that says why when the operator has none or lives on a GPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import backend as bk
from .base import Operator

__all__ = ["as_operator", "DenseOperator", "SparseOperator", "FunctionOperator",
           "csr_to_backend", "host_csr", "is_operator_like"]


def _torch():
    import torch
    return torch


def _complex_dtype(dtype) -> bool:
    if "torch" in str(type(dtype)):
        return dtype.is_complex
    return np.dtype(dtype).kind == "c"


class DenseOperator(Operator):
    """A dense matrix of NumPy, CuPy or torch (CPU or CUDA)."""

    has_entries = True

    def __init__(self, A: Any):
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D, got shape {tuple(A.shape)}")
        self.A = A
        self.shape = tuple(int(s) for s in A.shape)
        self.dtype = A.dtype
        self.backend = bk.backend_name(A)
        self.device = bk.device_of(A)

    def matvec(self, x):
        return self.A @ x

    def rmatvec(self, x):
        At = self.A.conj().T if _complex_dtype(self.dtype) else self.A.T
        return At @ x

    def diagonal(self):
        if bk.is_torch(self.A):
            return _torch().diagonal(self.A)
        return self.A.diagonal()

    def to_csr(self, backend=None, device=None):
        return csr_to_backend(sp.csr_matrix(bk.to_numpy(self.A)), backend or self.backend,
                              device if device is not None else
                              (self.device if (backend or self.backend) == self.backend else None))


class SparseOperator(Operator):
    """A sparse matrix: scipy.sparse (kept as CSR), torch CSR/COO (kept as CSR), cupyx."""

    has_entries = True

    def __init__(self, A: Any):
        self.backend = bk.backend_name(A)
        if self.backend == "torch":
            torch = _torch()
            if A.layout == torch.sparse_coo:
                A = A.coalesce().to_sparse_csr()
            elif A.layout != torch.sparse_csr:
                raise TypeError(f"A is a torch tensor with layout {A.layout}: give a dense, CSR "
                                "or COO tensor")
            self.device = A.device
        elif self.backend == "cupy":  # pragma: no cover - needs a GPU
            A = A.tocsr() if A.format != "csr" else A
            self.device = getattr(A.data, "device", None)
        else:
            A = A if A.format == "csr" else A.tocsr()
            self.device = "cpu"
        self.A = A
        self.shape = tuple(int(s) for s in A.shape)
        self.dtype = A.dtype

    def matvec(self, x):
        if self.backend == "torch" and x.ndim == 1:
            return (self.A @ x.reshape(-1, 1)).reshape(-1)
        return self.A @ x

    def rmatvec(self, x):
        if self.backend == "torch":
            At = self.A.to_sparse_coo().transpose(0, 1)
            if self.A.is_complex():
                At = At.conj()
            At = At.coalesce().to_sparse_csr()
            if x.ndim == 1:
                return (At @ x.reshape(-1, 1)).reshape(-1)
            return At @ x
        At = self.A.conj().T if _complex_dtype(self.dtype) else self.A.T
        return At @ x

    def csr_parts(self):
        """``(indptr, indices, data)`` on the operator's backend and device."""
        if self.backend == "torch":
            return self.A.crow_indices(), self.A.col_indices(), self.A.values()
        return self.A.indptr, self.A.indices, self.A.data

    def diagonal(self):
        if self.backend == "torch":
            torch = _torch()
            crow, col, val = self.csr_parts()
            n = self.shape[0]
            rows = torch.repeat_interleave(torch.arange(n, device=crow.device),
                                           crow[1:] - crow[:-1])
            diag = torch.zeros(n, dtype=val.dtype, device=val.device)
            on = rows == col
            diag.index_add_(0, rows[on], val[on].detach())
            return diag
        d = self.A.diagonal()
        return np.asarray(d) if self.backend == "numpy" else d

    def to_csr(self, backend=None, device=None):
        backend = backend or self.backend
        if backend == self.backend and device is None:
            return self.A
        if self.backend == "numpy":
            host = self.A
        elif self.backend == "torch":
            crow, col, val = self.csr_parts()
            host = sp.csr_matrix((val.detach().cpu().numpy(), col.cpu().numpy(),
                                  crow.cpu().numpy()), shape=self.shape)
        else:  # pragma: no cover - needs a GPU
            host = self.A.get()
        return csr_to_backend(host, backend, device)


class FunctionOperator(Operator):
    """A matrix-free operator from ``matvec`` (and optionally ``rmatvec``/``matmat``)."""

    def __init__(self, matvec, shape, dtype=None, *, rmatvec=None, matmat=None, backend=None,
                 device=None, hermitian=None, source=None):
        self._matvec = matvec
        self._rmatvec = rmatvec
        self._matmat = matmat
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(np.float64) if dtype is None else dtype
        self.backend = backend or "numpy"
        self.device = device if device is not None else "cpu"
        self.hermitian = hermitian
        self.source = source

    def matvec(self, x):
        if x.ndim == 2:
            if self._matmat is not None:
                return self._matmat(x)
            return self._columns(x, self._apply1)
        return self._apply1(x)

    def _apply1(self, x):
        y = self._matvec(x)
        return y.reshape(-1) if getattr(y, "ndim", 1) > 1 else y

    def rmatvec(self, x):
        if self._rmatvec is None:
            return super().rmatvec(x)
        if x.ndim == 2:
            return self._columns(x, self._rmatvec)
        y = self._rmatvec(x)
        return y.reshape(-1) if getattr(y, "ndim", 1) > 1 else y


def is_operator_like(A: Any) -> bool:
    """Whether :func:`as_operator` accepts ``A`` (without building anything)."""
    try:
        _kind(A)
        return True
    except TypeError:
        return False


def _kind(A: Any) -> str:
    if isinstance(A, Operator):
        return "operator"
    if bk.is_torch(A):
        return "dense" if A.layout == _torch().strided else "sparse"
    if bk.is_cupy(A):  # pragma: no cover - needs a GPU
        return "sparse" if type(A).__module__.startswith("cupyx") else "dense"
    if sp.issparse(A):
        return "sparse"
    if isinstance(A, np.ndarray):
        return "dense"
    if isinstance(A, (list, tuple)):
        return "list"
    if hasattr(A, "shape") and (hasattr(A, "matvec") or hasattr(A, "__matmul__")):
        return "linop"
    if callable(A):
        return "callable"
    raise TypeError(f"A of type {type(A).__name__} is not an operator: give an array, a sparse "
                    "matrix (scipy, torch, cupyx), a LinearOperator, an lrsolve operator or a "
                    "callable with shape=")


def as_operator(A: Any, *, shape: tuple | None = None, dtype=None, name: str = "A",
                hermitian: bool | None = None) -> Operator:
    """Turn any operator kind lrsolve accepts into an :class:`Operator`.

    Parameters
    ----------
    A : array, sparse matrix, LinearOperator, lrsolve operator or callable
        See the module table.
    shape : tuple, optional
        Required for a bare callable ``x -> A x``.
    dtype : optional
        The dtype of a callable's output (float64 by default).
    name : str
        The argument name used in error messages.
    hermitian : bool, optional
        Declare a matrix-free operator Hermitian (so ``rmatvec`` = ``matvec``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from lrsolve.operators import as_operator
    >>> op = as_operator(sp.diags([1.0, 2.0, 3.0]))
    >>> op.shape, op.backend, op.has_entries
    ((3, 3), 'numpy', True)
    >>> op @ np.ones(3)
    array([1., 2., 3.])
    """
    try:
        kind = _kind(A)
    except TypeError as exc:
        raise TypeError(str(exc).replace("A of type", f"{name} of type", 1)) from None
    if kind == "operator":
        return A
    if kind == "list":
        A = np.asarray(A)
        kind = "dense"
    if kind == "dense":
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {tuple(A.shape)}")
        if bk.is_torch(A) or bk.is_cupy(A):
            pass
        elif A.dtype == object or not np.issubdtype(A.dtype, np.number):
            raise TypeError(f"{name} must hold numbers, got dtype {A.dtype}")
        return DenseOperator(A)
    if kind == "sparse":
        return SparseOperator(A)
    if kind == "linop":
        shp = tuple(int(s) for s in A.shape)
        mv = A.matvec if hasattr(A, "matvec") else (lambda x: A @ x)
        rmv = getattr(A, "rmatvec", None)
        mm = getattr(A, "matmat", None)
        dt = getattr(A, "dtype", None)
        return FunctionOperator(mv, shp, dt if dt is not None else dtype, rmatvec=rmv, matmat=mm,
                                backend=bk.backend_name(A), hermitian=hermitian, source=A)
    # a bare callable
    shp = shape if shape is not None else getattr(A, "shape", None)
    if shp is None:
        raise TypeError(f"{name} is a callable without a shape: pass shape=(n, n) "
                        "(lr.as_operator(f, shape=(n, n)))")
    return FunctionOperator(A, shp, dtype, hermitian=hermitian, source=A)


def csr_to_backend(A: sp.csr_matrix, backend: str, device=None):
    """A SciPy CSR matrix on ``backend``: scipy, torch ``sparse_csr_tensor`` or cupyx."""
    if backend == "numpy":
        return A
    if backend == "torch":
        torch = _torch()
        import warnings
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            return torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                           torch.from_numpy(A.indices.astype(np.int64)),
                                           torch.from_numpy(np.ascontiguousarray(A.data)),
                                           size=A.shape,
                                           device=device if device is not None else "cpu",
                                           check_invariants=False)
    if backend == "cupy":  # pragma: no cover - needs a GPU
        import cupyx.scipy.sparse as csp
        return csp.csr_matrix(A)
    raise ValueError(f"backend must be 'numpy', 'torch' or 'cupy', got {backend!r}")


def host_csr(A: Any, name: str = "A", purpose: str = "this method") -> sp.csr_matrix:
    """The entries of ``A`` as a SciPy CSR matrix on the host, for CPU-only kernels.

    Raises ``TypeError`` that names ``purpose`` when ``A`` has no accessible entries
    (a matrix-free operator) or lives on a GPU (no silent device-to-host copies).
    """
    op = as_operator(A, name=name)
    if op.backend == "cupy" or (op.backend == "torch" and getattr(op.device, "type", "cpu")
                                != "cpu"):
        raise TypeError(f"{purpose} runs on the CPU (numba/PyAMG kernels) and {name} lives on "
                        f"{op.device}: use a GPU-capable method (cg, pcg-jacobi, pcg-mg, dcdm) "
                        "or move the matrix to the CPU yourself")
    if not op.has_entries:
        raise TypeError(f"{purpose} needs the matrix entries and {name} "
                        f"({type(op.source if isinstance(op, FunctionOperator) else op).__name__}) "
                        "is matrix-free: give a matrix, a sparse matrix or a stencil operator")
    M = op.to_csr(backend="numpy")
    M = M if isinstance(M, sp.csr_matrix) else sp.csr_matrix(M)
    return M
