"""The operator protocol: :class:`Operator`, and the generic wrappers ``Shifted``, ``Diagonal``.

An :class:`Operator` is a square linear map acting on flat vectors (shape ``(n,)``) and on
blocks of ``k`` vectors as columns (shape ``(n, k)``), on one backend and device:

* ``shape``, ``dtype``, ``backend`` (``"numpy"``, ``"torch"``, ``"cupy"``), ``device``;
* ``matvec(x)`` / ``A @ x`` and ``rmatvec(x)`` (``A^H x``);
* ``diagonal()`` and ``to_csr(backend=None, device=None)`` where the entries are known
  (``has_entries``); an operator without entries raises ``TypeError`` saying so;
* optional grid metadata: ``grid_shape``, ``dim``, ``spacing``, ``bc``, ``mask``.

This module imports nothing above ``lrsolve.backend``; :func:`lrsolve.operators.as_operator`
turns every accepted input kind into an Operator.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend as bk

__all__ = ["Operator", "LinearOperatorBase", "Shifted", "Diagonal"]


class Operator:
    """A square linear operator on one backend.

    Subclasses set ``shape``, ``dtype``, ``backend`` (and ``device``) and implement
    ``matvec`` for 1-D and ``(n, k)`` inputs; the defaults below cover the rest.
    """

    shape: tuple
    dtype: Any = np.float64
    backend: str = "numpy"
    device: Any = "cpu"
    #: True when ``diagonal()`` and ``to_csr()`` are available (stored or known entries).
    has_entries: bool = False
    #: True / False when known; None when unknown.
    hermitian: bool | None = None
    # Optional grid metadata, set only by grid operators (``hasattr`` tells):
    # grid_shape, dim, spacing, bc, mask.

    def matvec(self, x):
        raise NotImplementedError

    def rmatvec(self, x):
        """``A^H x``; the default holds for Hermitian operators only."""
        if self.hermitian:
            return self.matvec(x)
        raise TypeError(f"{type(self).__name__} does not provide A^H x (rmatvec)")

    def diagonal(self):
        raise TypeError(f"{type(self).__name__} has no accessible entries: its diagonal is "
                        "unknown (give a matrix, a sparse matrix or a stencil operator)")

    def to_csr(self, backend: str | None = None, device=None):
        raise TypeError(f"{type(self).__name__} has no accessible entries and cannot be "
                        "assembled as CSR (give a matrix, a sparse matrix or a stencil operator)")

    def __matmul__(self, x):
        return self.matvec(x)

    def __call__(self, x):
        return self.matvec(x)

    def _columns(self, x, fn):
        """Apply a 1-D ``fn`` column by column to an ``(n, k)`` block (the generic fallback)."""
        xp = bk.namespace(x)
        return xp.stack([fn(x[:, j]) for j in range(x.shape[1])], axis=1)

    def aslinearoperator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` view (NumPy backend)."""
        from scipy.sparse.linalg import LinearOperator
        return LinearOperator(self.shape, matvec=lambda v: self.matvec(np.asarray(v).reshape(-1)),
                              matmat=lambda V: self.matvec(np.asarray(V)),
                              dtype=self.dtype)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, "
                f"backend={self.backend!r})")


#: The name used before the operator protocol (kept as an alias).
LinearOperatorBase = Operator


class Shifted(Operator):
    """``A + c I`` for anything :func:`~lrsolve.operators.as_operator` accepts."""

    def __init__(self, A: Any, c: float):
        from .convert import as_operator
        c = float(c)
        if not np.isfinite(c):
            raise ValueError(f"c must be finite, got {c}")
        self.base = as_operator(A)
        self.A = A
        self.c = c
        self.shape = self.base.shape
        self.dtype = self.base.dtype
        self.backend = self.base.backend
        self.device = self.base.device
        self.has_entries = self.base.has_entries
        self.hermitian = self.base.hermitian
        for attr in ("grid_shape", "dim", "spacing", "bc", "mask"):
            if hasattr(self.base, attr):
                setattr(self, attr, getattr(self.base, attr))

    def matvec(self, x):
        return self.base.matvec(x) + self.c * x

    def rmatvec(self, x):
        return self.base.rmatvec(x) + self.c * x

    def diagonal(self):
        return self.base.diagonal() + self.c

    def to_csr(self, backend=None, device=None):
        import scipy.sparse as sp
        from .convert import csr_to_backend
        base = self.base.to_csr(backend="numpy")
        return csr_to_backend((base + self.c * sp.identity(self.shape[0], format="csr")).tocsr(),
                              backend or self.backend, device)


class Diagonal(Operator):
    """A diagonal operator ``diag(d)`` on the backend of ``d``."""

    has_entries = True
    hermitian = None

    def __init__(self, d: Any):
        if getattr(d, "ndim", None) != 1:
            raise ValueError("d must be a 1-D array")
        bk.check_finite(d, "d")
        self.d = d
        self.shape = (d.shape[0], d.shape[0])
        self.dtype = d.dtype
        self.backend = bk.backend_name(d)
        self.device = bk.device_of(d)
        self.hermitian = not _is_complex(d)

    def matvec(self, x):
        return self.d * x if x.ndim == 1 else self.d[:, None] * x

    def rmatvec(self, x):
        d = self.d.conj() if _is_complex(self.d) else self.d
        return d * x if x.ndim == 1 else d[:, None] * x

    def diagonal(self):
        return self.d

    def to_csr(self, backend=None, device=None):
        import scipy.sparse as sp
        from .convert import csr_to_backend
        return csr_to_backend(sp.diags(bk.to_numpy(self.d), format="csr"),
                              backend or self.backend, device)


def _is_complex(x) -> bool:
    if bk.is_torch(x):
        return x.is_complex()
    return np.dtype(x.dtype).kind == "c"
