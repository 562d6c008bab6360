"""Base class and generic wrappers for lrsolve linear operators."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend as bk

__all__ = ["LinearOperatorBase", "Shifted", "Diagonal"]


class LinearOperatorBase:
    """A square linear operator acting on flat vectors through ``A @ x`` / ``A.matvec(x)``.

    Subclasses set ``shape``, ``dtype``, ``backend`` and implement ``matvec``.
    """

    shape: tuple
    dtype: Any = np.float64
    backend: str = "numpy"

    def matvec(self, x):
        raise NotImplementedError

    def __matmul__(self, x):
        if getattr(x, "ndim", 1) == 2:
            xp = bk.namespace(x)
            return xp.stack([self.matvec(x[:, j]) for j in range(x.shape[1])], axis=1)
        return self.matvec(x)

    def __call__(self, x):
        return self.matvec(x)

    def aslinearoperator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` view (NumPy backend)."""
        from scipy.sparse.linalg import LinearOperator
        return LinearOperator(self.shape, matvec=lambda v: self.matvec(np.asarray(v).reshape(-1)),
                              dtype=self.dtype)


class Shifted(LinearOperatorBase):
    """``A + c I`` for any operator ``A`` (matrix, sparse matrix or lrsolve operator)."""

    def __init__(self, A: Any, c: float):
        if not np.isfinite(float(c)):
            raise ValueError(f"c must be finite, got {c}")
        self.A = A
        self.c = float(c)
        self.shape = tuple(A.shape)
        self.dtype = getattr(A, "dtype", np.float64)
        self.backend = bk.backend_name(A)
        for attr in ("grid_shape", "dim"):
            if hasattr(A, attr):
                setattr(self, attr, getattr(A, attr))

    def matvec(self, x):
        return bk.matvec(self.A, x) + self.c * x

    def diagonal(self):
        from ..krylov.preconditioners import diagonal_of
        return diagonal_of(self.A) + self.c

    def to_csr(self, backend=None, device=None):
        if hasattr(self.A, "to_csr"):
            base = self.A.to_csr(backend="numpy")
        else:
            import scipy.sparse as sp
            base = sp.csr_matrix(bk.to_numpy(self.A))
        import scipy.sparse as sp
        from .stencil import _csr_to_backend
        return _csr_to_backend((base + self.c * sp.identity(self.shape[0])).tocsr(),
                               backend or self.backend, device)


class Diagonal(LinearOperatorBase):
    """A diagonal operator ``diag(d)`` on the backend of ``d``."""

    def __init__(self, d: Any):
        if getattr(d, "ndim", None) != 1:
            raise ValueError("d must be a 1-D array")
        bk.check_finite(d, "d")
        self.d = d
        self.shape = (d.shape[0], d.shape[0])
        self.dtype = d.dtype
        self.backend = bk.backend_name(d)

    def matvec(self, x):
        return self.d * x

    def diagonal(self):
        return self.d
