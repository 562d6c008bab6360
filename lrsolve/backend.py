"""Array backends: the namespace, device and dtype of the inputs, and conversions.

lrsolve has no global "current backend": the arrays a caller passes decide.  NumPy,
CuPy and torch (CPU or CUDA) are supported through ``array_api_compat``; sparse
matrices are ``scipy.sparse`` (NumPy), ``cupyx.scipy.sparse`` (CuPy) and torch sparse
CSR tensors.  Everything a solver needs to stay on the caller's backend lives here:

* :func:`namespace` - the array namespace of several inputs, or a ``TypeError`` when
  they mix backends (a torch matrix with a NumPy vector, say);
* :func:`backend_name`, :func:`device_of`, :func:`to_numpy`, :func:`asarray`;
* :func:`inner`, :func:`norm` - reductions returning Python scalars (the norm computed
  without overflow or underflow, as LAPACK's ``nrm2`` does).

Operator kinds (dense, sparse, LinearOperator, callables, stencils) are known in one
place only: :func:`lrsolve.operators.as_operator`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import array_api_compat

__all__ = [
    "namespace", "backend_name", "device_of", "to_numpy", "asarray",
    "inner", "norm", "is_sparse", "is_torch", "is_cupy", "check_finite",
    "real_dtype", "zeros_like", "copy", "float_dtype",
]


def is_torch(x: Any) -> bool:
    """True for a torch tensor (dense or sparse)."""
    mod = type(x).__module__
    return mod.startswith("torch")


def is_cupy(x: Any) -> bool:
    """True for a CuPy array or a cupyx sparse matrix."""
    mod = type(x).__module__
    return mod.startswith("cupy") or mod.startswith("cupyx")


def is_sparse(A: Any) -> bool:
    """True for a scipy.sparse matrix/array, a cupyx sparse matrix or a torch sparse tensor."""
    if is_torch(A):
        return A.layout != _torch().strided
    if is_cupy(A):
        return type(A).__module__.startswith("cupyx")
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return sp.issparse(A)


def _torch():
    import torch
    return torch


def backend_name(x: Any) -> str:
    """``"numpy"``, ``"torch"`` or ``"cupy"`` for an array, sparse matrix or operator.

    An lrsolve operator reports the backend it was built for (``operator.backend``);
    a ``scipy.sparse.linalg.LinearOperator`` counts as NumPy.
    """
    if is_torch(x):
        return "torch"
    if is_cupy(x):
        return "cupy"
    b = getattr(x, "backend", None)
    if isinstance(b, str) and b in ("numpy", "torch", "cupy"):
        return b
    return "numpy"


def namespace(*arrays: Any):
    """The array-API namespace shared by ``arrays`` (``None`` entries ignored).

    Raises
    ------
    TypeError
        If the inputs come from different backends (e.g. a torch matrix with a NumPy
        right-hand side): lrsolve never copies silently between them.
    """
    names = {}
    for i, a in enumerate(arrays):
        if a is None or isinstance(a, (int, float, complex)):
            continue
        names.setdefault(backend_name(a), i)
    if len(names) > 1:
        raise TypeError(
            "inputs mix array backends "
            + ", ".join(f"argument {i} is {name}" for name, i in names.items())
            + "; convert them to one backend first (lrsolve.backend.asarray(x, like=b))"
        )
    name = next(iter(names), "numpy")
    if name == "torch":
        import array_api_compat.torch as xp
        return xp
    if name == "cupy":
        import array_api_compat.cupy as xp  # pragma: no cover - needs a GPU
        return xp
    import array_api_compat.numpy as xp
    return xp


def device_of(x: Any):
    """The device of an array (``"cpu"`` for NumPy and scipy.sparse)."""
    if is_torch(x):
        return x.device
    if is_cupy(x):  # pragma: no cover - needs a GPU
        return getattr(x, "device", None)
    dev = getattr(x, "device", None)
    if dev is not None and not isinstance(x, np.ndarray):
        return dev
    return "cpu"


def to_numpy(x: Any) -> np.ndarray:
    """Copy any supported array (or sparse matrix, densified) to a NumPy array on the host."""
    if x is None:
        return None
    if is_torch(x):
        t = x.detach()
        if t.layout != _torch().strided:
            t = t.to_dense()
        return t.cpu().numpy()
    if is_cupy(x):  # pragma: no cover - needs a GPU
        if hasattr(x, "toarray"):
            return x.toarray().get()
        return x.get()
    if hasattr(x, "toarray") and not isinstance(x, np.ndarray):
        return x.toarray()
    return np.asarray(x)


def asarray(x: Any, like: Any = None, *, backend: str | None = None, device=None, dtype=None):
    """Convert ``x`` to the backend (and device, and by default dtype) of ``like``.

    ``backend`` names a backend explicitly (``"numpy"``, ``"torch"``, ``"cupy"``) when
    there is no array to imitate.  ``dtype`` may be a NumPy dtype or a backend dtype.
    """
    if like is not None:
        backend = backend_name(like)
        if device is None:
            device = device_of(like)
        if dtype is None and hasattr(like, "dtype"):
            dtype = like.dtype
    backend = backend or "numpy"
    if backend not in ("numpy", "torch", "cupy"):
        raise ValueError(f"backend must be 'numpy', 'torch' or 'cupy', got {backend!r}")
    if backend == "numpy":
        out = to_numpy(x) if not isinstance(x, np.ndarray) else x
        if dtype is not None:
            out = out.astype(_numpy_dtype(dtype), copy=False)
        return np.asarray(out)
    if backend == "torch":
        torch = _torch()
        tdtype = _torch_dtype(dtype) if dtype is not None else None
        if is_torch(x):
            return x.to(device=device if device is not None else x.device, dtype=tdtype or x.dtype)
        arr = to_numpy(x)
        t = torch.from_numpy(np.ascontiguousarray(arr))
        return t.to(device=device if device is not None else "cpu", dtype=tdtype or t.dtype)
    import cupy  # pragma: no cover - needs a GPU
    with cupy.cuda.Device(getattr(device, "id", device) if device not in (None, "cpu") else 0):
        return cupy.asarray(x if is_cupy(x) else to_numpy(x), dtype=_numpy_dtype(dtype) if dtype is not None else None)


def _numpy_dtype(dtype) -> np.dtype:
    if is_torch(dtype) or "torch" in str(type(dtype)):
        torch = _torch()
        return torch.empty((), dtype=dtype).numpy().dtype
    return np.dtype(dtype)


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` (NumPy or torch) as a floating NumPy dtype, else ``TypeError`` naming
    ``name``."""
    try:
        out = _numpy_dtype(dtype)
    except TypeError:
        out = None
    if out is None or not np.issubdtype(out, np.floating):
        raise TypeError(f"{name} must be a floating dtype, got {dtype!r}")
    return out


def _torch_dtype(dtype):
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype


def real_dtype(x: Any):
    """The real floating dtype matching ``x.dtype`` (float64 for complex128, ...)."""
    if is_torch(x):
        torch = _torch()
        return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(x.dtype, x.dtype)
    dt = np.dtype(x.dtype)
    return np.finfo(dt).dtype if dt.kind in "fc" else np.dtype(np.float64)


def eps_of(x: Any) -> float:
    """Machine epsilon of an array's dtype (of its real part for complex dtypes)."""
    if is_torch(x):
        return _torch().finfo(x.dtype).eps
    return float(np.finfo(x.dtype).eps)


def zeros_like(x: Any):
    """Zeros of the shape, dtype and device of ``x`` on its own backend."""
    if is_torch(x):
        return _torch().zeros_like(x)
    if is_cupy(x):  # pragma: no cover - needs a GPU
        import cupy
        return cupy.zeros_like(x)
    return np.zeros_like(x)


def copy(x: Any):
    """A copy of ``x`` on its own backend."""
    if is_torch(x):
        return x.clone()
    return x.copy()


def inner(a: Any, b: Any):
    """``sum(conj(a) * b)`` as a Python scalar (complex only when the inputs are)."""
    if is_torch(a):
        torch = _torch()
        val = torch.vdot(a, b) if a.is_complex() else torch.dot(a, b)
        return val.item()
    if is_cupy(a):  # pragma: no cover
        import cupy
        return cupy.vdot(a, b).item()
    return np.vdot(a, b).item()


def _plain_norm(a: Any, axis=None):
    if is_torch(a):
        return _torch().linalg.vector_norm(a, dim=axis)
    if is_cupy(a):  # pragma: no cover
        import cupy
        return cupy.linalg.norm(a, axis=axis)
    with np.errstate(over="ignore", under="ignore"):
        return np.linalg.norm(a, axis=axis)


def _amax(a: Any, axis=None):
    if is_torch(a):
        t = a.abs()
        return t.amax() if axis is None else t.amax(dim=axis)
    if is_cupy(a):  # pragma: no cover
        import cupy
        return cupy.abs(a).max(axis=axis)
    return np.abs(a).max(axis=axis) if np.size(a) else np.zeros(() if axis is None else
                                                                 a.shape[1 - axis])


# A sum of squares is safe while every |a_i| lies in [2^-480, 2^480] (float64), resp.
# [2^-60, 2^60] (float32): no square over/underflows beyond what rounding hides.
def _safe_range(a) -> tuple[float, float]:
    if is_torch(a):
        fi = _torch().finfo(a.dtype)
        eps, tiny, big = fi.eps, fi.tiny, fi.max
    else:
        fi = np.finfo(np.dtype(a.dtype) if np.dtype(a.dtype).kind in "fc" else np.float64)
        eps, tiny, big = float(fi.eps), float(fi.tiny), float(fi.max)
    return math.sqrt(tiny / eps), math.sqrt(big) * eps


def norm(a: Any) -> float:
    """Euclidean norm as a Python float, without overflow or underflow.

    The plain sum of squares is used when it is safe (the common case costs one pass);
    otherwise the vector is scaled by its largest entry first, so ``b * 1e-170`` and
    ``b * 1e160`` get their true norms (1e-170 ||b||, 1e160 ||b||).
    """
    val = float(_plain_norm(a))
    lo, hi = _safe_range(a)
    if lo <= val <= hi or not math.isfinite(val) and not _all_finite(a):
        return val
    m = float(_amax(a))
    if m == 0.0 or not math.isfinite(m):
        return val if m == 0.0 else m
    return m * float(_plain_norm(a / m))


def column_norms(a: Any) -> np.ndarray:
    """Euclidean norms of the columns of an ``(n, k)`` block as a float64 NumPy array,
    without overflow or underflow."""
    vals = np.asarray(to_numpy(_plain_norm(a, axis=0)), dtype=np.float64).reshape(-1)
    lo, hi = _safe_range(a)
    bad = ~((vals >= lo) & (vals <= hi))
    if bad.any():
        for j in np.flatnonzero(bad):
            vals[j] = norm(a[:, int(j)])
    return vals


def _all_finite(a) -> bool:
    if is_torch(a):
        return bool(_torch().isfinite(a).all().item())
    if is_cupy(a):  # pragma: no cover
        import cupy
        return bool(cupy.isfinite(a).all().item())
    return bool(np.isfinite(a).all())


def check_finite(x: Any, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``x`` holds NaN or Inf.

    Sparse matrices are checked on their stored values; operators without
    stored values are not checked.
    """
    vals = x
    if is_torch(x):
        torch = _torch()
        if x.layout != torch.strided:
            vals = x.values() if x.layout == torch.sparse_coo else x.values()
        ok = bool(torch.isfinite(vals).all().item()) if vals.numel() else True
    elif is_cupy(x):  # pragma: no cover
        import cupy
        vals = x.data if hasattr(x, "indptr") else x
        ok = bool(cupy.isfinite(vals).all().item())
    else:
        if hasattr(x, "tocsr") and hasattr(x, "data"):
            vals = x.data
        elif not isinstance(x, np.ndarray):
            try:
                vals = np.asarray(x)
            except Exception:
                return
            if vals.dtype == object:
                return
        ok = bool(np.isfinite(vals).all()) if np.size(vals) else True
    if not ok:
        raise ValueError(f"{name} contains NaN or Inf")


def finite_scalar(value: float) -> bool:
    return math.isfinite(value.real if isinstance(value, complex) else value)


def torch_device(device: Any):
    """``device`` as a ``torch.device`` (None passes), or ``ValueError`` naming what is missing
    (no CUDA in this build or on this machine, a device index out of range, no MPS)."""
    if device is None:
        return None
    torch = _torch()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                         f"{device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available in this torch build / on "
                         "this machine; use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r}: MPS is not available; use device='cpu'")
    return dev

