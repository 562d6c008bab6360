"""Matrix-free finite-difference operators for -div(a grad u) (+ c u) on a uniform grid.

Cell-centred 5-point (2D) / 7-point (3D) stencil with zero Dirichlet boundary on the
unit box, ``n`` interior points per axis and ``h = 1/(n+1)``.  The coefficient ``a`` is
sampled at the grid points; the value on the face between two neighbours is their
arithmetic mean, and on a boundary face the value of the adjacent interior point.

``A @ x`` acts on flat vectors of length ``n**dim`` (C order) on the backend of ``x``:
NumPy goes through fused numba kernels (one pass over memory, which is why the
stencil beats a CSR mat-vec), torch and CuPy through array slicing on their device.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import backend as bk
from .base import Operator
from .convert import csr_to_backend

__all__ = ["PoissonStencil", "poisson_operator"]


_KERNELS: dict = {}


def _kernels():
    if _KERNELS:
        return _KERNELS
    import numba as nb

    @nb.njit(cache=True, fastmath=False)
    def const2d(u, out, n0, n1, diag, off):
        for i in range(n0):
            for j in range(n1):
                s = diag * u[i, j]
                if i > 0:
                    s -= off * u[i - 1, j]
                if i < n0 - 1:
                    s -= off * u[i + 1, j]
                if j > 0:
                    s -= off * u[i, j - 1]
                if j < n1 - 1:
                    s -= off * u[i, j + 1]
                out[i, j] = s

    @nb.njit(cache=True)
    def const3d(u, out, n0, n1, n2, diag, off):
        for i in range(n0):
            for j in range(n1):
                for k in range(n2):
                    s = diag * u[i, j, k]
                    if i > 0:
                        s -= off * u[i - 1, j, k]
                    if i < n0 - 1:
                        s -= off * u[i + 1, j, k]
                    if j > 0:
                        s -= off * u[i, j - 1, k]
                    if j < n1 - 1:
                        s -= off * u[i, j + 1, k]
                    if k > 0:
                        s -= off * u[i, j, k - 1]
                    if k < n2 - 1:
                        s -= off * u[i, j, k + 1]
                    out[i, j, k] = s

    @nb.njit(cache=True)
    def var2d(u, out, k0, k1, scale, shift):
        n0, n1 = u.shape
        for i in range(n0):
            for j in range(n1):
                c = u[i, j]
                s = (k0[i, j] + k0[i + 1, j] + k1[i, j] + k1[i, j + 1]) * c
                if i > 0:
                    s -= k0[i, j] * u[i - 1, j]
                if i < n0 - 1:
                    s -= k0[i + 1, j] * u[i + 1, j]
                if j > 0:
                    s -= k1[i, j] * u[i, j - 1]
                if j < n1 - 1:
                    s -= k1[i, j + 1] * u[i, j + 1]
                out[i, j] = scale * s + shift * c

    @nb.njit(cache=True)
    def var3d(u, out, k0, k1, k2, scale, shift):
        n0, n1, n2 = u.shape
        for i in range(n0):
            for j in range(n1):
                for k in range(n2):
                    c = u[i, j, k]
                    s = (k0[i, j, k] + k0[i + 1, j, k] + k1[i, j, k] + k1[i, j + 1, k]
                         + k2[i, j, k] + k2[i, j, k + 1]) * c
                    if i > 0:
                        s -= k0[i, j, k] * u[i - 1, j, k]
                    if i < n0 - 1:
                        s -= k0[i + 1, j, k] * u[i + 1, j, k]
                    if j > 0:
                        s -= k1[i, j, k] * u[i, j - 1, k]
                    if j < n1 - 1:
                        s -= k1[i, j + 1, k] * u[i, j + 1, k]
                    if k > 0:
                        s -= k2[i, j, k] * u[i, j, k - 1]
                    if k < n2 - 1:
                        s -= k2[i, j, k + 1] * u[i, j, k + 1]
                    out[i, j, k] = scale * s + shift * c

    # Batched kernels: u has shape grid + (k,), the k right-hand sides contiguous, so the
    # inner loop over k vectorises and the stencil data are read once for all columns.
    # Fused block product and per-column p^T A p (one pass over p and q instead of two):
    # partial sums per grid row i, reduced serially in i - deterministic for any thread count.
    @nb.njit(cache=True, parallel=True)
    def bvar2d_dot(u, out, k0, k1, shift):
        n0, n1, nk = u.shape
        part = np.zeros((n0, nk))
        for i in nb.prange(n0):
            for j in range(n1):
                a_w = k0[i, j]
                a_e = k0[i + 1, j]
                a_s = k1[i, j]
                a_n = k1[i, j + 1]
                dsum = a_w + a_e + a_s + a_n + shift
                for c in range(nk):
                    uc = u[i, j, c]
                    s = dsum * uc
                    if i > 0:
                        s -= a_w * u[i - 1, j, c]
                    if i < n0 - 1:
                        s -= a_e * u[i + 1, j, c]
                    if j > 0:
                        s -= a_s * u[i, j - 1, c]
                    if j < n1 - 1:
                        s -= a_n * u[i, j + 1, c]
                    out[i, j, c] = s
                    part[i, c] += uc * s
        res = np.zeros(nk)
        for i in range(n0):
            for c in range(nk):
                res[c] += part[i, c]
        return res

    @nb.njit(cache=True, parallel=True)
    def bvar3d_dot(u, out, k0, k1, k2, shift):
        n0, n1, n2, nk = u.shape
        part = np.zeros((n0, nk))
        for i in nb.prange(n0):
            for j in range(n1):
                for k in range(n2):
                    a0 = k0[i, j, k]
                    a1 = k0[i + 1, j, k]
                    b0 = k1[i, j, k]
                    b1 = k1[i, j + 1, k]
                    c0 = k2[i, j, k]
                    c1 = k2[i, j, k + 1]
                    dsum = a0 + a1 + b0 + b1 + c0 + c1 + shift
                    for c in range(nk):
                        uc = u[i, j, k, c]
                        s = dsum * uc
                        if i > 0:
                            s -= a0 * u[i - 1, j, k, c]
                        if i < n0 - 1:
                            s -= a1 * u[i + 1, j, k, c]
                        if j > 0:
                            s -= b0 * u[i, j - 1, k, c]
                        if j < n1 - 1:
                            s -= b1 * u[i, j + 1, k, c]
                        if k > 0:
                            s -= c0 * u[i, j, k - 1, c]
                        if k < n2 - 1:
                            s -= c1 * u[i, j, k + 1, c]
                        out[i, j, k, c] = s
                        part[i, c] += uc * s
        res = np.zeros(nk)
        for i in range(n0):
            for c in range(nk):
                res[c] += part[i, c]
        return res

    _KERNELS.update(const2d=const2d, const3d=const3d, var2d=var2d, var3d=var3d,
                    bvar2d_dot=bvar2d_dot, bvar3d_dot=bvar3d_dot)
    return _KERNELS


def _face_coefficients(a: np.ndarray) -> list[np.ndarray]:
    """Face values of a point-sampled coefficient: one array per axis, n+1 along that axis."""
    faces = []
    for axis in range(a.ndim):
        padded = np.concatenate([np.take(a, [0], axis=axis), a, np.take(a, [-1], axis=axis)],
                                axis=axis)
        lo = np.take(padded, np.arange(0, a.shape[axis] + 1), axis=axis)
        hi = np.take(padded, np.arange(1, a.shape[axis] + 2), axis=axis)
        faces.append(0.5 * (lo + hi))
    return faces


class PoissonStencil(Operator):
    """The operator ``-div(a grad u) + shift * u`` on ``(n,)*dim`` interior points.

    Parameters
    ----------
    n : int
        Interior points per axis (``h = 1/(n+1)``).
    dim : int
        1, 2 or 3.
    coefficient : None, float or array of shape ``(n,)*dim``
        The diffusion coefficient ``a`` (1 when None); must be positive.
    shift : float
        ``c`` in ``A + c I``.
    scaled : bool
        Divide the stencil by ``h**2`` (True, approximating the PDE) or keep the integer
        stencil ``2*dim, -1`` (False; the "graph Laplacian" used by SOR literature).
    backend, device, dtype
        Where the operator's data (face coefficients) live; ``A @ x`` needs ``x`` there.
    """

    def __init__(self, n: int, dim: int = 2, coefficient: Any = None, shift: float = 0.0,
                 scaled: bool = True, backend: str = "numpy", device=None, dtype=np.float64):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        shift = float(shift)
        if not np.isfinite(shift):
            raise ValueError(f"shift must be finite, got {shift}")
        if backend not in ("numpy", "torch", "cupy"):
            raise ValueError(f"backend must be 'numpy', 'torch' or 'cupy', got {backend!r}")
        self.n = int(n)
        self.dim = int(dim)
        self.grid_shape = (self.n,) * self.dim
        N = self.n ** self.dim
        self.shape = (N, N)
        self.h = 1.0 / (self.n + 1)
        self.scaled = bool(scaled)
        self.scale = 1.0 / self.h ** 2 if scaled else 1.0
        self.shift_value = shift
        self.backend = backend
        self.device = device if device is not None else "cpu"
        self.dtype = bk.float_dtype(dtype)   # a NumPy or a backend (torch) dtype
        # The torch tensor itself (not a copy), so lrsolve.autodiff can send gradients to it.
        self.coefficient_tensor = coefficient if bk.is_torch(coefficient) else None
        if coefficient is None or np.isscalar(coefficient):
            value = 1.0 if coefficient is None else float(coefficient)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"coefficient must be a positive finite number, got {coefficient!r}")
            self.constant = value
            self.coefficient = None
            faces_np = None
        else:
            a = bk.to_numpy(coefficient).astype(np.float64)
            if a.shape != self.grid_shape:
                raise ValueError(f"coefficient must have shape {self.grid_shape} (the grid), got "
                                 f"{a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError("coefficient contains NaN or Inf")
            if np.any(a <= 0):
                raise ValueError("coefficient must be positive everywhere")
            self.constant = None
            self.coefficient = a
            faces_np = _face_coefficients(a)
        self._faces_np = faces_np
        self._faces = None if faces_np is None else [
            self._to_backend(f * self.scale) for f in faces_np]

    # -- backend helpers ------------------------------------------------------------
    def _to_backend(self, arr: np.ndarray):
        return bk.asarray(np.ascontiguousarray(arr, dtype=self.dtype), backend=self.backend,
                          device=self.device)

    def shifted(self, c: float) -> "PoissonStencil":
        """The same operator with ``shift`` replaced by ``shift + c``."""
        return PoissonStencil(self.n, self.dim, self.coefficient if self.coefficient is not None
                              else self.constant, self.shift_value + float(c), self.scaled,
                              self.backend, self.device, self.dtype)

    # -- products ---------------------------------------------------------------------
    has_entries = True
    hermitian = True

    def matvec(self, x):
        if bk.backend_name(x) != self.backend:
            raise TypeError(f"x is a {bk.backend_name(x)} array but this operator was built for "
                            f"backend={self.backend!r}; build it with backend="
                            f"{bk.backend_name(x)!r} or convert x")
        if x.ndim not in (1, 2) or x.shape[0] != self.shape[1]:
            raise ValueError(f"x must have shape ({self.shape[1]},) or ({self.shape[1]}, k), "
                             f"got {tuple(x.shape)}")
        if self.backend == "numpy" and self.dim in (2, 3) and x.dtype.kind == "f":
            if x.ndim == 2:
                return self._matvec_numba_block(x)
            return self._matvec_numba(x)
        return self._matvec_sliced(x)

    def rmatvec(self, x):
        return self.matvec(x)

    def _block_faces(self, dtype):
        cache = getattr(self, "_bfaces", None)
        if cache is not None and cache[0] == dtype:
            return cache[1]
        if self._faces_np is None:
            faces = []
            for axis in range(self.dim):
                fshape = list(self.grid_shape)
                fshape[axis] += 1
                faces.append(np.full(fshape, self.constant * self.scale, dtype=dtype))
        else:
            faces = [np.ascontiguousarray(f * self.scale, dtype=dtype) for f in self._faces_np]
        self._bfaces = (dtype, faces)
        return faces

    def block_matvec_dot(self, x: np.ndarray, out: np.ndarray):
        """``out[:] = A @ x`` for a C-contiguous NumPy block ``(N, k)``, returning the
        per-column ``x^T A x`` (float64), in one pass; None when no fused kernel applies."""
        if not (self.backend == "numpy" and self.dim in (2, 3) and isinstance(x, np.ndarray)
                and x.ndim == 2 and x.dtype.kind == "f" and x.flags.c_contiguous
                and out.flags.c_contiguous and out.dtype == x.dtype):
            return None
        kernels = _kernels()
        k = x.shape[1]
        u = x.reshape(self.grid_shape + (k,))
        o = out.reshape(self.grid_shape + (k,))
        faces = self._block_faces(u.dtype)
        if self.dim == 2:
            return kernels["bvar2d_dot"](u, o, faces[0], faces[1], self.shift_value)
        return kernels["bvar3d_dot"](u, o, faces[0], faces[1], faces[2], self.shift_value)

    def _matvec_numba_block(self, x: np.ndarray) -> np.ndarray:
        kernels = _kernels()
        k = x.shape[1]
        u = np.ascontiguousarray(x).reshape(self.grid_shape + (k,))
        out = np.empty_like(u)
        faces = self._block_faces(u.dtype)
        # the fused kernel also returns the per-column x^T A x, unused here
        if self.dim == 2:
            kernels["bvar2d_dot"](u, out, faces[0], faces[1], self.shift_value)
        else:
            kernels["bvar3d_dot"](u, out, faces[0], faces[1], faces[2], self.shift_value)
        return out.reshape(x.shape)

    def _matvec_numba(self, x: np.ndarray) -> np.ndarray:
        kernels = _kernels()
        u = np.ascontiguousarray(x).reshape(self.grid_shape)
        out = np.empty_like(u)
        if self._faces is None:
            off = self.constant * self.scale
            diag = 2 * self.dim * off + self.shift_value
            if self.dim == 2:
                kernels["const2d"](u, out, self.n, self.n, diag, off)
            else:
                kernels["const3d"](u, out, self.n, self.n, self.n, diag, off)
        else:
            faces = self._faces
            if faces[0].dtype != u.dtype:
                faces = [f.astype(u.dtype) for f in faces]
            if self.dim == 2:
                kernels["var2d"](u, out, faces[0], faces[1], 1.0, self.shift_value)
            else:
                kernels["var3d"](u, out, faces[0], faces[1], faces[2], 1.0, self.shift_value)
        return out.reshape(-1)

    def _matvec_sliced(self, x):
        """Vectorised slicing through the array namespace (torch, CuPy, 1-D)."""
        xp = bk.namespace(x)
        block = x.ndim == 2
        gshape = self.grid_shape + ((x.shape[1],) if block else ())
        u = xp.reshape(x, gshape)
        out = self.shift_value * u if self.shift_value else xp.zeros_like(u)
        for axis in range(self.dim):
            n = self.n
            zero_shape = list(gshape)
            zero_shape[axis] = 1
            zeros = xp.zeros(tuple(zero_shape), dtype=u.dtype, device=_xp_device(u))
            padded = xp.concat([zeros, u, zeros], axis=axis)
            lo = _take_range(padded, 0, n + 1, axis)
            hi = _take_range(padded, 1, n + 2, axis)
            grad = hi - lo  # n+1 faces along axis
            if self._faces is None:
                flux = (self.constant * self.scale) * grad
            else:
                face = self._faces[axis]
                face = face if face.dtype == grad.dtype else xp.astype(face, grad.dtype)
                flux = (face[..., None] if block else face) * grad
            out = out + (_take_range(flux, 0, n, axis) - _take_range(flux, 1, n + 1, axis))
        return xp.reshape(out, tuple(x.shape))

    # -- structure ----------------------------------------------------------------------
    def diagonal(self):
        """The diagonal of A, on the operator's backend."""
        if self._faces_np is None:
            d = np.full(self.shape[0], 2 * self.dim * self.constant * self.scale + self.shift_value)
        else:
            d = np.zeros(self.grid_shape)
            for axis, face in enumerate(self._faces_np):
                d += _np_range(face, 0, self.n, axis) + _np_range(face, 1, self.n + 1, axis)
            d = d.reshape(-1) * self.scale + self.shift_value
        return self._to_backend(d)

    def to_csr(self, backend: str | None = None, device=None):
        """Assemble the same operator as CSR on ``backend`` (default: the operator's own).

        NumPy -> ``scipy.sparse.csr_matrix``, torch -> ``torch.sparse_csr_tensor``,
        CuPy -> ``cupyx.scipy.sparse.csr_matrix``.
        """
        n, dim = self.n, self.dim
        # Index arithmetic: point i couples to its neighbour i+e_axis through the face
        # between them with weight -w_face; the diagonal is the sum of a point's face
        # weights.  No sparse products, O(N) work and memory.
        shape = (n,) * dim
        idx = np.arange(n ** dim, dtype=np.int64).reshape(shape)
        diag = np.zeros(shape)
        rows, cols, vals = [], [], []
        for axis in range(dim):
            if self._faces_np is None:
                fshape = list(shape)
                fshape[axis] = n + 1
                w = np.full(fshape, float(self.constant))
            else:
                w = self._faces_np[axis]
            diag += _take_range(w, 0, n, axis) + _take_range(w, 1, n + 1, axis)
            inner = -_take_range(w, 1, n, axis).reshape(-1)
            lo = _take_range(idx, 0, n - 1, axis).reshape(-1)
            hi = _take_range(idx, 1, n, axis).reshape(-1)
            rows += [lo, hi]
            cols += [hi, lo]
            vals += [inner, inner]
        rows.append(idx.reshape(-1))
        cols.append(idx.reshape(-1))
        vals.append(diag.reshape(-1))
        data = self.scale * np.concatenate(vals)
        nd = n ** dim
        data[-nd:] += self.shift_value
        A = sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(nd, nd))
        A.sort_indices()
        A = A.astype(self.dtype)
        return _csr_to_backend(A, backend or self.backend, device if device is not None else self.device)


def _xp_device(u):
    return u.device if hasattr(u, "device") and not isinstance(u, np.ndarray) else None


def _take_range(a, start, stop, axis):
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(start, stop)
    return a[tuple(idx)]


_np_range = _take_range


_csr_to_backend = csr_to_backend  # the one converter lives in operators/convert.py


def poisson_operator(n: int, dim: int = 2, coefficient: Any = None, shift: float = 0.0,
                     scaled: bool = True, backend: str = "numpy", device=None,
                     dtype=np.float64) -> PoissonStencil:
    """Build the matrix-free :class:`PoissonStencil` (see its parameters)."""
    return PoissonStencil(n, dim, coefficient, shift, scaled, backend, device, dtype)
