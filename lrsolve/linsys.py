"""One validation path for every linear solver (SciPy's ``make_system`` in spirit).

:func:`make_system` checks ``A``, ``b``, ``x0`` and the tolerances once, finds the
backend, and returns a :class:`LinearSystem` that solvers use without re-checking.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import backend as bk

__all__ = ["LinearSystem", "make_system", "check_tolerances", "as_operator_function"]


@dataclass
class LinearSystem:
    """A validated system: ``A`` as a matvec, ``b``, ``x0``, its namespace and sizes."""

    A: Any
    matvec: Callable
    b: Any
    x0: Any
    xp: Any
    n: int
    backend: str
    dtype: Any
    bnorm: float


def check_tolerances(rtol: float, atol: float, maxiter: int | None) -> None:
    """Raise ``ValueError`` naming the argument for a negative or NaN rtol/atol or maxiter < 0."""
    for name, val in (("rtol", rtol), ("atol", atol)):
        try:
            fval = float(val)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real number, got {val!r}") from None
        if not (fval >= 0.0) or fval == float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    if maxiter is not None:
        if not isinstance(maxiter, (int, np.integer)) or isinstance(maxiter, bool):
            raise TypeError(f"maxiter must be an int or None, got {maxiter!r}")
        if maxiter < 0:
            raise ValueError(f"maxiter must be >= 0, got {maxiter}")


def _shape_of(A: Any):
    shape = getattr(A, "shape", None)
    if shape is None:
        return None
    return tuple(int(s) for s in shape)


def as_operator_function(A: Any, name: str = "A") -> Callable:
    """A function ``x -> A @ x`` for any operator lrsolve accepts."""
    if isinstance(A, np.ndarray) or bk.is_torch(A) or bk.is_cupy(A):
        return lambda x: bk.matvec(A, x)
    import scipy.sparse as sp
    if sp.issparse(A):
        A_csr = A if A.format in ("csr", "csc") else A.tocsr()
        return lambda x: A_csr @ x
    if hasattr(A, "matvec") or hasattr(A, "__matmul__"):
        return lambda x: bk.matvec(A, x)
    if callable(A):
        return A
    raise TypeError(f"{name} of type {type(A).__name__} is not an operator: give an array, a "
                    "sparse matrix, a LinearOperator, an lrsolve operator or a callable")


def make_system(A: Any, b: Any, x0: Any = None, *, rtol: float = 1e-5, atol: float = 0.0,
                maxiter: int | None = None, check_A: bool = True) -> LinearSystem:
    """Validate a linear system once and return it ready for a solver.

    Checks: ``b`` is a 1-D (or ``(n, 1)``) floating or complex array without NaN/Inf;
    ``A`` is square of matching size, finite where it stores values; ``x0`` matches;
    ``A``, ``b`` and ``x0`` share one backend (else ``TypeError``); tolerances are sane.
    Integer ``b`` is promoted to float64 (as SciPy does).
    """
    if b is None:
        raise TypeError("b must be an array, got None")
    if isinstance(b, (list, tuple)):
        b = np.asarray(b)
    if not hasattr(b, "shape"):
        raise TypeError(f"b must be an array, got {type(b).__name__}")
    check_tolerances(rtol, atol, maxiter)
    xp = bk.namespace(A if not callable(A) or hasattr(A, "shape") else None, b, x0)
    name = bk.backend_name(b)
    if b.ndim == 2 and b.shape[1] == 1:
        b = b.reshape(-1)
    if b.ndim != 1:
        raise ValueError(f"b must be a vector of shape (n,) or (n, 1), got shape {tuple(b.shape)}")
    if not _is_inexact(b):  # integer b is promoted to float64, as SciPy does
        b = bk.asarray(b, backend=name, device=bk.device_of(b), dtype=np.float64)
    n = int(b.shape[0])
    shape = _shape_of(A)
    if shape is None and not callable(A):
        raise TypeError(f"A of type {type(A).__name__} is not an operator")
    if shape is not None:
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"A must be square, got shape {shape}")
        if shape[0] != n:
            raise ValueError(f"A has shape {shape} but b has length {n}")
    # Stored values are checked; a matrix-free operator has none to check.
    if check_A and (isinstance(A, np.ndarray) or bk.is_sparse(A) or bk.is_torch(A)
                    or bk.is_cupy(A)):
        bk.check_finite(A, "A")
    bk.check_finite(b, "b")
    if x0 is not None:
        if isinstance(x0, (list, tuple)):
            x0 = np.asarray(x0)
        x0 = x0.reshape(-1) if getattr(x0, "ndim", 1) == 2 and x0.shape[1] == 1 else x0
        if tuple(x0.shape) != (n,):
            raise ValueError(f"x0 must have shape ({n},) like b, got {tuple(x0.shape)}")
        bk.check_finite(x0, "x0")
        x0 = bk.asarray(x0, like=b) if _dtype_differs(x0, b) else x0
    return LinearSystem(A=A, matvec=as_operator_function(A), b=b, x0=x0, xp=xp, n=n,
                        backend=name, dtype=b.dtype, bnorm=bk.norm(b))


def _is_inexact(x) -> bool:
    if bk.is_torch(x):
        return x.is_floating_point() or x.is_complex()
    return np.dtype(x.dtype).kind in "fc"


def _dtype_differs(x, b) -> bool:
    return x.dtype != b.dtype
