"""One validation path for every linear solver (SciPy's ``make_system`` in spirit).

:func:`make_system` checks ``A``, ``M``, ``b``, ``x0`` and the tolerances once, turns ``A``
and ``M`` into :class:`~lrsolve.operators.Operator` s, finds the backend, resolves
``maxiter`` and the stopping threshold, and returns a :class:`LinearSystem` that solvers
use without re-checking.

Scaling: when ``||b||`` is so small or so large that squares of its entries under- or
overflow (``b * 1e-170``, ``b * 1e160`` in float64), ``make_system(..., rescale=True)``
solves the equivalent system ``A (x/s) = b/s`` with ``s`` a power of two (exact), and
:meth:`LinearSystem.finish` scales the answer and residual history back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import backend as bk
from .operators.base import Operator
from .operators.convert import DenseOperator, SparseOperator, as_operator

if TYPE_CHECKING:  # pragma: no cover
    from .result import SolveResult

__all__ = ["LinearSystem", "Method", "make_system", "check_tolerances", "resolve_maxiter"]


@dataclass
class LinearSystem:
    """A validated system ``A x = b`` (``b`` of shape ``(n,)`` or ``(n, k)``).

    ``b``, ``x0`` and ``atol`` are stored divided by ``scale``; ``tol`` is the stopping
    threshold ``max(rtol ||b||, atol)`` in those units (a float, or one per column).
    """

    A: Operator
    b: Any
    x0: Any
    xp: Any
    n: int
    backend: str
    dtype: Any
    bnorm: Any
    M: Operator | None = None
    k: int | None = None
    rtol: float = 1e-6
    atol: float = 0.0
    tol: Any = 0.0
    maxiter: int = 0
    scale: float = 1.0
    source: Any = None
    device: Any = "cpu"
    extra: dict = field(default_factory=dict)

    def matvec(self, x):
        """``A @ x`` (1-D or a block)."""
        return self.A.matvec(x)

    @property
    def batched(self) -> bool:
        return self.k is not None

    def column(self, j: int) -> "LinearSystem":
        """Column ``j`` of a batched system as a single-right-hand-side system."""
        from dataclasses import replace
        return replace(self, b=self.b[:, j], x0=None if self.x0 is None else self.x0[:, j],
                       k=None, bnorm=float(self.bnorm[j]), tol=float(self.tol[j]))

    @property
    def low_precision(self) -> bool:
        return bk.eps_of(self.b) > 1e-10

    def precise_residual_norm(self, x) -> float | None:
        """``||b - A x||`` evaluated in float64 for a low-precision system (None when the
        operator cannot be applied in float64), so that a claimed convergence holds for
        the answer as it is, not only in its own rounding."""
        import warnings
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x64 = _upcast(x)
                b64 = _upcast(self.b)
                A = self.A
                if isinstance(A, (DenseOperator, SparseOperator)) and bk.is_torch(A.A):
                    A64 = self.extra.get("A64")
                    if A64 is None:
                        A64 = self.extra["A64"] = A.A.to(bk._torch().float64) \
                            if not A.A.is_complex() else A.A.to(bk._torch().complex128)
                    y = A64 @ x64 if x64.ndim == 2 or A64.layout == bk._torch().strided \
                        else (A64 @ x64.reshape(-1, 1)).reshape(-1)
                else:
                    y = A.matvec(x64)
                if getattr(y, "dtype", None) is None or bk.eps_of(y) > 1e-10:
                    return None
                return bk.norm(b64 - y)
        except (TypeError, RuntimeError, ValueError):
            return None

    def finish(self, result):
        """Undo the scaling on a result: ``x *= scale``, residuals ``*= scale``."""
        if self.scale != 1.0:
            result.x = result.x * self.scale
            result.residuals = [r * self.scale for r in result.residuals]
            cols = result.stats.get("columns")
            if cols:
                for c in cols:
                    c["residual"] = c["residual"] * self.scale
            result.stats["rescaled_by"] = self.scale
        return result


def _real_number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if value is None or (isinstance(value, str) and value == "legacy"):
        raise ValueError(f"{name}={value!r} is not supported; if set, {name} must be a real, "
                         "non-negative number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a real, non-negative number, got {value!r}") from None
    except TypeError:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None


def check_tolerances(rtol: float, atol: float, maxiter: int | None) -> tuple[float, float]:
    """Validate ``rtol``, ``atol``, ``maxiter``; return ``(rtol, atol)`` as floats.

    As SciPy: ``atol=None`` / ``"legacy"`` / negative raise ``ValueError``; a non-number
    raises ``TypeError`` (a string ``ValueError``).  Stricter than SciPy: a negative,
    NaN or infinite ``rtol`` and a NaN ``atol`` are refused (SciPy would silently run to
    ``maxiter``).  NumPy scalars are accepted.
    """
    out = []
    for name, val in (("rtol", rtol), ("atol", atol)):
        f = _real_number(val, name)
        if not (f >= 0.0) or f == math.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
        out.append(f)
    if maxiter is not None:
        if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)):
            raise TypeError(f"maxiter must be an int or None, got {maxiter!r}")
        if maxiter < 0:
            raise ValueError(f"maxiter must be >= 0, got {maxiter}")
    return out[0], out[1]


def resolve_maxiter(maxiter: int | None, n: int, default_factor: int = 10) -> int:
    """``maxiter`` or SciPy's default ``10 n``."""
    return default_factor * n if maxiter is None else int(maxiter)


def _is_inexact(x) -> bool:
    if bk.is_torch(x):
        return x.is_floating_point() or x.is_complex()
    return np.dtype(x.dtype).kind in "fc"


def _is_complex_dtype(dtype) -> bool:
    if "torch" in str(type(dtype)):
        return dtype.is_complex
    try:
        return np.dtype(dtype).kind == "c"
    except TypeError:
        return False


def _promote(b, A: Operator):
    """``b`` in the dtype the solution needs: complex when A is, float64 for integers."""
    name = bk.backend_name(b)
    if not _is_inexact(b):
        b = bk.asarray(b, backend=name, device=bk.device_of(b), dtype=np.float64)
    if _is_complex_dtype(A.dtype) and not _is_complex_dtype(b.dtype):
        if bk.is_torch(b):
            torch = bk._torch()
            cdt = torch.complex64 if b.dtype == torch.float32 else torch.complex128
            b = b.to(cdt)
        else:
            b = b.astype(np.result_type(b.dtype, np.complex64))
    return b


def _safe_bounds(b) -> tuple[float, float]:
    eps = bk.eps_of(b)
    return (1e-100, 1e100) if eps < 1e-10 else (1e-15, 1e15)


def make_system(A: Any, b: Any, x0: Any = None, *, M: Any = None, rtol: float = 1e-6,
                atol: float = 0.0, maxiter: int | None = None, check_A: bool = True,
                allow_batch: bool = False, rescale: bool = False,
                name: str = "A") -> LinearSystem:
    """Validate a linear system once and return it ready for a solver.

    Checks: ``b`` is a 1-D (or ``(n, 1)``; with ``allow_batch`` also ``(n, k)``) array
    without NaN/Inf; ``A`` is square of matching size, finite where it stores values;
    ``M`` matches; ``x0`` matches (``x0="Mb"`` starts from ``M @ b``); ``A``, ``b``, ``x0``
    and ``M`` share one backend (else ``TypeError``); tolerances are sane.  Integer ``b``
    is promoted to float64 and real ``b`` to complex when ``A`` is complex (as SciPy does).
    """
    if b is None:
        raise TypeError("b must be an array, got None")
    if isinstance(b, (list, tuple)):
        b = np.asarray(b)
    if not hasattr(b, "shape") or not hasattr(b, "dtype"):
        raise TypeError(f"b must be an array, got {type(b).__name__}")
    rtol, atol = check_tolerances(rtol, atol, maxiter)
    op = as_operator(A, name=name)
    if len(op.shape) != 2 or op.shape[0] != op.shape[1]:
        raise ValueError(f"{name} must be square, got shape {op.shape}")
    # One backend for everything (a LinearOperator or callable counts as its inputs' kind).
    bk.namespace(op if not _matrix_free(op) else None, b,
                 x0 if not isinstance(x0, str) else None)
    xp = bk.namespace(b)
    backend = bk.backend_name(b)
    k = None
    if b.ndim == 2 and b.shape[1] == 1 and not allow_batch:
        b = b.reshape(-1)
    if b.ndim == 2 and allow_batch:
        k = int(b.shape[1])
        if k == 0:
            raise ValueError("b has no columns (shape (n, 0))")
    elif b.ndim != 1:
        raise ValueError(f"b must be a vector of shape (n,) or (n, 1)"
                         f"{' or a block (n, k)' if allow_batch else ''}, got shape "
                         f"{tuple(b.shape)}")
    n = int(b.shape[0])
    if op.shape[0] != n:
        raise ValueError(f"{name} has shape {op.shape} but b has {n} rows")
    if bk.is_torch(b) and b.is_complex() and not _is_complex_dtype(op.dtype) \
            and not _matrix_free(op):
        raise TypeError("b is complex but A is real: give A a complex dtype "
                        "(A.to(torch.complex128)) or solve the real and imaginary parts")
    b = _promote(b, op)
    if check_A and isinstance(op, (DenseOperator, SparseOperator)):
        bk.check_finite(op.A, name)
    bk.check_finite(b, "b")
    Mop = None
    if M is not None:
        Mop = as_operator(M, name="M")
        if tuple(Mop.shape) != (n, n):
            raise ValueError(f"M must have shape ({n}, {n}) like A, got {tuple(Mop.shape)}")
        if not _matrix_free(Mop):
            bk.namespace(Mop, b)
    if isinstance(x0, str):
        if x0 != "Mb":
            raise ValueError(f"x0 must be an array, None or 'Mb', got {x0!r}")
        x0 = Mop.matvec(b) if Mop is not None else bk.copy(b)
    elif x0 is not None:
        if isinstance(x0, (list, tuple)):
            x0 = np.asarray(x0)
        if k is None and getattr(x0, "ndim", 1) == 2 and x0.shape[1] == 1:
            x0 = x0.reshape(-1)
        if tuple(x0.shape) != tuple(b.shape):
            raise ValueError(f"x0 must have shape {tuple(b.shape)} like b, got "
                             f"{tuple(x0.shape)}")
        bk.check_finite(x0, "x0")
        x0 = bk.asarray(x0, like=b) if x0.dtype != b.dtype else bk.copy(x0)
    if k is None:
        bnorm = bk.norm(b)
    else:
        bnorm = bk.column_norms(b)
    scale = 1.0
    if rescale:
        ref = float(np.max(bnorm)) if k is not None else bnorm
        lo, hi = _safe_bounds(b)
        if ref > 0.0 and not (lo <= ref <= hi):
            scale = 2.0 ** round(math.log2(ref))
            b = b / scale
            x0 = None if x0 is None else x0 / scale
            bnorm = bnorm / scale
            atol = atol / scale
    tol = np.maximum(rtol * bnorm, atol) if k is not None else max(rtol * bnorm, atol)
    return LinearSystem(A=op, b=b, x0=x0, xp=xp, n=n, backend=backend, dtype=b.dtype,
                        bnorm=bnorm, M=Mop, k=k, rtol=rtol, atol=atol, tol=tol,
                        maxiter=resolve_maxiter(maxiter, n), scale=scale, source=A,
                        device=bk.device_of(b))


def _upcast(x):
    if bk.is_torch(x):
        torch = bk._torch()
        return x.to(torch.complex128 if x.is_complex() else torch.float64)
    return x.astype(np.complex128 if np.dtype(x.dtype).kind == "c" else np.float64)


def _matrix_free(op: Operator) -> bool:
    """An operator whose backend is decided by its inputs (LinearOperator, callable)."""
    from .operators.convert import FunctionOperator
    return isinstance(op, FunctionOperator)


class Method:
    """The protocol every registered method follows.

    Class attributes
    ----------------
    name : str
        The registry name.
    supports_batch : bool
        Whether ``solve`` takes ``b`` of shape ``(n, k)`` itself; otherwise
        :class:`Solver` solves the columns one by one.
    needs_entries : bool
        Whether setup reads matrix entries (IC(0), AMG, SOR): matrix-free operators are
        refused with a ``TypeError`` that says so.

    Subclasses implement ``__init__(self, A, **options)`` (setup; ``A`` an Operator),
    ``solve(self, system, *, callback=None) -> SolveResult`` and optionally
    ``update(self, A)`` (default: setup again) and ``preconditioner`` (for ``x0="Mb"``).
    """

    name: str = ""
    supports_batch: bool = False
    needs_entries: bool = False
    preconditioner: Any = None

    def __init__(self, A: Operator, **options):
        self.A = A
        self.options = options

    def solve(self, system, *, callback: Callable | None = None) -> SolveResult:
        raise NotImplementedError

    def update(self, A: Operator) -> None:
        type(self).__init__(self, A, **self.options)

    def after_solve(self, result: SolveResult) -> None:
        """Hook: called with each result (rebuild policies watch iteration counts)."""
