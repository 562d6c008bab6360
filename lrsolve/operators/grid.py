"""Grid operators: ``-div(k grad u) (+ c u)`` on rectangular 1-D/2-D/3-D cell grids.

:class:`GridOperator` is the general member of the stencil family:

* a rectangular grid ``(nx, ny[, nz])`` with a spacing per axis (isotropic
  ``h = 1/(max(n)+1)`` by default, which on a cube is the unit box of
  :class:`~lrsolve.operators.PoissonStencil`);
* a coefficient ``k`` per cell (> 0); the value on the face between two cells is the
  harmonic mean of theirs, the series conductance of the two half cells, so jumps of
  many orders of magnitude are represented exactly (an arithmetic mean would let a
  thin insulating layer leak);
* a Dirichlet (u = 0 one spacing beyond the last cell, as in the point grid of
  ``PoissonStencil``) or Neumann (zero flux) condition per side: ``bc="dirichlet"``,
  ``"neumann"`` or ``{"x-": ..., "x+": ..., "y-": ..., ...}``;
* a cell ``mask`` (True = solid): solid cells are excluded and their faces closed, a
  Neumann wall - the pressure-projection operator of a fluid simulation on a MAC grid.

The operator acts on vectors over *all* cells of the grid (C order), so that vectors
stay grid arrays on every backend; the row of an excluded cell is the identity, and a
right-hand side that is zero there gives a solution that is zero there.  A connected
region of active cells that touches no Dirichlet face ("floating") makes the system
singular with the constants on that region as its null space.  Solvers handle it by
projection: ``b`` must be orthogonal to the null space (checked, with the size of the
mismatch reported) and the returned solution has zero mean on each floating region
(``project_null``).

``A @ x`` takes ``x`` of shape ``(N,)`` or ``(N, k)``.  NumPy runs fused numba kernels
(see ``_grid_kernels.py``); torch and CuPy run array slicing on their device.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import backend as bk
from .base import LinearOperatorBase

__all__ = ["GridOperator", "as_grid_operator", "SIDES", "parse_bc"]

SIDES = ("x-", "x+", "y-", "y+", "z-", "z+")
_BC_KINDS = ("dirichlet", "neumann")


def parse_bc(bc: Any, dim: int) -> dict:
    """``{"x-": "dirichlet", ...}`` for the ``2 * dim`` sides from a string or a dict."""
    sides = SIDES[:2 * dim]
    if isinstance(bc, str):
        if bc not in _BC_KINDS:
            raise ValueError(f"bc must be 'dirichlet', 'neumann' or a dict of sides, got {bc!r}")
        return {s: bc for s in sides}
    if isinstance(bc, dict):
        unknown = sorted(set(bc) - set(sides))
        if unknown:
            raise ValueError(f"bc has unknown sides {unknown}; a {dim}-D grid has sides "
                             f"{list(sides)}")
        out = {}
        for s in sides:
            kind = bc.get(s, "dirichlet")
            if kind not in _BC_KINDS:
                raise ValueError(f"bc[{s!r}] must be 'dirichlet' or 'neumann', got {kind!r}")
            out[s] = kind
        return out
    raise TypeError(f"bc must be a string or a dict of sides, got {type(bc).__name__}")


def _embed(shape: tuple) -> tuple:
    """The 3-D shape of a grid: leading axes of length 1 for 1-D and 2-D grids."""
    return (1,) * (3 - len(shape)) + tuple(shape)


def _zeros_view(shape: tuple) -> np.ndarray:
    return np.broadcast_to(np.zeros(1), shape)


class GridOperator(LinearOperatorBase):
    """``-div(k grad u) + shift * u`` on a rectangular cell grid (see the module docstring).

    Parameters
    ----------
    grid_shape : int or tuple of int
        Cells per axis, 1 to 3 axes.
    spacing : None, float or tuple of float
        Cell size per axis; default isotropic ``1 / (max(grid_shape) + 1)``.
    coefficient : None, float or array of ``grid_shape``
        Cell-wise diffusion coefficient ``k > 0`` (1 when None).
    mask : None or bool array of ``grid_shape``
        True marks a solid (excluded) cell; its faces become Neumann walls.
    bc : str or dict
        ``"dirichlet"``, ``"neumann"`` or a condition per side ``"x-"``, ``"x+"``, ...
        (missing sides are Dirichlet).
    shift : float
        ``c >= 0`` in ``A + c I`` (on the active cells).
    backend, device, dtype
        Where ``A @ x`` runs; ``x`` must be on that backend.
    threads : int, optional
        numba threads of the NumPy kernels (default 1, see ``_grid_kernels.DEFAULT_THREADS``).
    """

    has_entries = True
    hermitian = True

    def __init__(self, grid_shape: Any, *, spacing: Any = None, coefficient: Any = None,
                 mask: Any = None, bc: Any = "dirichlet", shift: float = 0.0,
                 backend: str = "numpy", device=None, dtype=np.float64,
                 threads: int | None = None):
        self.threads = threads
        shape = _check_shape(grid_shape)
        dim = len(shape)
        if backend not in ("numpy", "torch", "cupy"):
            raise ValueError(f"backend must be 'numpy', 'torch' or 'cupy', got {backend!r}")
        self.bc = parse_bc(bc, dim)
        if spacing is None:
            spacing = (1.0 / (max(shape) + 1),) * dim
        elif np.isscalar(spacing):
            spacing = (float(spacing),) * dim
        spacing = tuple(float(h) for h in spacing)
        if len(spacing) != dim or not all(np.isfinite(h) and h > 0 for h in spacing):
            raise ValueError(f"spacing must be a positive number or one per axis ({dim}), got "
                             f"{spacing!r}")
        shift = float(shift)
        if not (np.isfinite(shift) and shift >= 0):
            raise ValueError(f"shift must be a finite number >= 0, got {shift}")
        k = _check_coefficient(coefficient, shape)
        solid = _check_mask(mask, shape)
        faces = []
        for axis in range(dim):
            w = 1.0 / spacing[axis] ** 2
            lo_bc = self.bc[SIDES[2 * axis]] == "dirichlet"
            hi_bc = self.bc[SIDES[2 * axis + 1]] == "dirichlet"
            if np.isscalar(k) and solid is None:
                vec = np.full(shape[axis] + 1, k * w)
                vec[0] *= lo_bc
                vec[-1] *= hi_bc
                vshape = [1] * dim
                vshape[axis] = shape[axis] + 1
                fshape = list(shape)
                fshape[axis] += 1
                faces.append(np.broadcast_to(vec.reshape(vshape), tuple(fshape)))
                continue
            kk = np.broadcast_to(np.float64(k), shape) if np.isscalar(k) else k
            if solid is not None:
                kk = np.where(solid, 0.0, kk)
            lo = np.take(kk, range(0, shape[axis] - 1), axis=axis)
            hi = np.take(kk, range(1, shape[axis]), axis=axis)
            with np.errstate(invalid="ignore", divide="ignore"):
                inner = np.where((lo > 0) & (hi > 0), 2.0 * lo * hi / (lo + hi), 0.0)
            first = np.take(kk, [0], axis=axis) * lo_bc
            last = np.take(kk, [shape[axis] - 1], axis=axis) * hi_bc
            faces.append(np.concatenate([first, inner, last], axis=axis) * w)
        self._init_from_faces(shape, faces, spacing, shift, solid, backend, device, dtype)
        self.coefficient = k
        self.mask = solid

    def to(self, backend: str | None = None, *, device=None, dtype=None) -> "GridOperator":
        """The same operator with ``A @ x`` on another backend / device / dtype (the face
        weights, mask and shift are shared, not recomputed): build on the host, solve on
        a GPU with ``A.to("torch", device="cuda")``.

        >>> import numpy as np, lrsolve as lr
        >>> A = lr.problems.poisson(n=(6, 5), dim=2, mask=np.eye(6, 5, dtype=bool)).A
        >>> T = A.to("torch")
        >>> x = np.arange(30.0)
        >>> bool(np.allclose(T @ lr.backend.asarray(x, backend="torch"), A @ x))
        True
        """
        backend = self.backend if backend is None else backend
        if backend not in ("numpy", "torch", "cupy"):
            raise ValueError(f"backend must be 'numpy', 'torch' or 'cupy', got {backend!r}")
        if device is None and backend == self.backend:
            device = self.device
        op = GridOperator.from_faces(
            self.grid_shape, list(self.faces), spacing=self.spacing, bc=self.bc,
            shift=self.shift_value, mask=self.mask, backend=backend, device=device,
            dtype=self.dtype if dtype is None else dtype)
        op.coefficient = self.coefficient
        op.threads = self.threads
        return op

    # -- construction from face weights (also used for coarse multigrid levels) -------
    @classmethod
    def from_faces(cls, grid_shape: tuple, faces: list, *, spacing: tuple, bc: dict,
                   shift: Any = 0.0, mask: Any = None, backend: str = "numpy", device=None,
                   dtype=np.float64) -> "GridOperator":
        """An operator given directly by its face weights (one array per axis, with
        ``n + 1`` entries along that axis; boundary faces > 0 are Dirichlet)."""
        op = cls.__new__(cls)
        op.threads = None
        op.bc = dict(bc)
        op._init_from_faces(tuple(grid_shape), list(faces), tuple(spacing), shift, mask,
                            backend, device, dtype)
        op.coefficient = None
        op.mask = mask
        return op

    def _init_from_faces(self, shape, faces, spacing, shift, solid, backend, device, dtype):
        dim = len(shape)
        self.grid_shape = tuple(int(s) for s in shape)
        self.dim = dim
        self.spacing = tuple(spacing)
        self.backend = backend
        self.device = device if device is not None else "cpu"
        self.dtype = bk.float_dtype(dtype)   # a NumPy or a backend (torch) dtype
        N = int(np.prod(shape))
        self.shape = (N, N)
        self.shape3 = _embed(self.grid_shape)
        self.faces = faces  # user-dimension face arrays (possibly broadcast views)
        f3 = [_zeros_view(tuple(s + (1 if a == ax else 0) for a, s in enumerate(self.shape3)))
              for ax in range(3)]
        for axis in range(dim):
            f3[3 - dim + axis] = faces[axis].reshape(_embed(faces[axis].shape))
        self._f3 = f3
        scalar_shift = np.isscalar(shift) or np.ndim(shift) == 0
        vectors = _face_vectors(f3)
        if vectors is not None and solid is None and scalar_shift:
            # uniform layout: the diagonal is the sum over the axes of each axis's face sum,
            # so every cell has an open face when the smallest such sums add up to > 0
            # (an embedded axis of a 2D grid contributes zeros)
            sums = [v[:-1] + v[1:] for v in vectors]
            if sum(float(s.min()) for s in sums) > 0 or float(shift) > 0:
                self.shift_value = float(shift)
                self.active = np.broadcast_to(True, self.grid_shape)
                self.unknowns = N
                self._extra3 = _zeros_view(self.shape3) if not shift else \
                    np.broadcast_to(float(shift), self.shape3)
                self._diag_cache = None
                self.kernel_args = (*vectors, float(shift))
                self._floating = None
                self._cache = {}
                return
        face_sum = np.zeros(self.shape3)
        for ax in range(3):
            n = self.shape3[ax]
            face_sum = face_sum + _range(f3[ax], 0, n, ax) + _range(f3[ax], 1, n + 1, ax)
        active = face_sum > 0
        if solid is not None:
            active &= ~solid.reshape(self.shape3)
        self.active = active.reshape(self.grid_shape)
        self.unknowns = int(active.sum())
        if self.unknowns == 0:
            raise ValueError("the grid has no unknowns: every cell is solid or has no open face "
                             "(check mask)")
        if scalar_shift:
            self.shift_value = float(shift)
            shift3 = np.where(active, float(shift), 0.0) if shift else None
        else:
            shift3 = np.where(active, np.asarray(shift, dtype=np.float64).reshape(self.shape3),
                              0.0)
            self.shift_value = shift3
        extra = (~active).astype(np.float64)
        if shift3 is not None:
            extra = extra + shift3
        self._extra3 = extra
        self._diag_cache = np.ascontiguousarray(face_sum + extra)
        self.kernel_args = (*(np.ascontiguousarray(f, dtype=np.float64) for f in f3),
                            self._diag_cache)
        self._floating = None
        self._cache = {}

    @property
    def _diag3(self) -> np.ndarray:
        """The diagonal as a grid array (built on first use in the uniform layout)."""
        if self._diag_cache is None:
            d = np.zeros(self.shape3)
            for ax in range(3):
                n = self.shape3[ax]
                f = self._f3[ax]
                d = d + _range(f, 0, n, ax) + _range(f, 1, n + 1, ax)
            self._diag_cache = d + self._extra3
        return self._diag_cache

    # -- products -------------------------------------------------------------------
    def matvec(self, x):
        if bk.backend_name(x) != self.backend:
            raise TypeError(f"x is a {bk.backend_name(x)} array but this operator was built for "
                            f"backend={self.backend!r}; build it with backend="
                            f"{bk.backend_name(x)!r} or convert x")
        N = self.shape[0]
        if x.ndim not in (1, 2) or x.shape[0] != N:
            raise ValueError(f"x must have shape ({N},) or ({N}, k), got {tuple(x.shape)}")
        if self.backend == "numpy":
            from ._grid_kernels import DEFAULT_THREADS, kernels, numba_threads
            mv = kernels()["matvec"]
            f0, f1, f2, dg = self.kernel_args
            with numba_threads(self.threads or DEFAULT_THREADS):
                if x.ndim == 1:
                    u = np.ascontiguousarray(x).reshape(self.shape3)
                    out = np.empty_like(u)
                    mv(u, out, f0, f1, f2, dg)
                    return out.reshape(-1)
                out = np.empty(x.shape, dtype=x.dtype)
                for j in range(x.shape[1]):
                    u = np.ascontiguousarray(x[:, j]).reshape(self.shape3)
                    col = np.empty_like(u)
                    mv(u, col, f0, f1, f2, dg)
                    out[:, j] = col.reshape(-1)
                return out
        data = self.device_data(x.dtype, bk.device_of(x))
        if x.ndim == 1:
            return sliced_apply(x.reshape(self.shape3), data).reshape(-1)
        u = x.T.reshape((x.shape[1],) + self.shape3)
        return sliced_apply(u, data).reshape(x.shape[1], -1).T

    def rmatvec(self, x):
        return self.matvec(x)

    __matmul__ = matvec

    def device_data(self, dtype, device) -> dict:
        """Face weights and diagonal on this operator's backend (cached per dtype/device)."""
        key = (str(dtype), str(device))
        if key not in self._cache:
            conv = lambda a: bk.asarray(np.array(a, dtype=np.float64, copy=True),
                                        backend=self.backend, device=device, dtype=dtype)
            # keep broadcast faces small: collapse zero-stride axes to length 1
            compact = [f[tuple(slice(0, 1) if st == 0 else slice(None) for st in f.strides)]
                       for f in self._f3]
            faces = [conv(c) for c in compact]
            if self._diag_cache is None and self.kernel_args[0].ndim == 1:
                # uniform layout: sum the face vectors on the device (the same additions,
                # in the same order, as _diag3) instead of building the grid-sized
                # diagonal on the host and copying it over
                d = None
                for ax, c in enumerate(compact):
                    f = bk.asarray(np.array(c, dtype=np.float64, copy=True),
                                   backend=self.backend, device=device, dtype=np.float64)
                    n = self.shape3[ax]
                    # a constant face array was collapsed to length 1 along its axis too
                    lo, hi = (f, f) if f.shape[ax] == 1 else (_range(f, 0, n, ax),
                                                               _range(f, 1, n + 1, ax))
                    d = lo if d is None else d + lo
                    d = d + hi
                d = d + float(self.shift_value)
                if tuple(d.shape) != self.shape3:   # materialise on the device
                    d = bk.namespace(d).broadcast_to(d, self.shape3) * 1.0
                diag = bk.asarray(d, backend=self.backend, device=device, dtype=dtype)
                inv_diag = bk.asarray(1.0 / d, backend=self.backend, device=device, dtype=dtype)
            else:
                diag, inv_diag = conv(self._diag3), conv(1.0 / self._diag3)
            self._cache[key] = {"faces": faces, "diag": diag, "inv_diag": inv_diag}
        return self._cache[key]

    # -- structure ----------------------------------------------------------------------
    def diagonal(self):
        """The diagonal of A (1 on excluded cells), on the operator's backend."""
        return bk.asarray(self._diag3.reshape(-1).astype(self.dtype), backend=self.backend,
                          device=self.device)

    def to_csr(self, backend: str | None = None, device=None):
        """The same operator assembled as CSR: ``scipy.sparse.csr_matrix`` (NumPy),
        ``torch.sparse_csr_tensor`` (torch) or ``cupyx.scipy.sparse.csr_matrix`` (CuPy)."""
        from .stencil import _csr_to_backend
        shape3 = self.shape3
        idx = np.arange(self.shape[0], dtype=np.int64).reshape(shape3)
        rows, cols, vals = [], [], []
        for ax in range(3):
            n = shape3[ax]
            if n < 2:
                continue
            w = np.ascontiguousarray(_range(self._f3[ax], 1, n, ax)).reshape(-1)
            lo = _range(idx, 0, n - 1, ax).reshape(-1)
            hi = _range(idx, 1, n, ax).reshape(-1)
            keep = w != 0
            rows += [lo[keep], hi[keep]]
            cols += [hi[keep], lo[keep]]
            vals += [-w[keep], -w[keep]]
        rows.append(idx.reshape(-1))
        cols.append(idx.reshape(-1))
        vals.append(self._diag3.reshape(-1))
        A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=self.shape)
        A.sum_duplicates()
        A.sort_indices()
        return _csr_to_backend(A.astype(self.dtype), backend or self.backend,
                               device if device is not None else self.device)

    # -- null space of floating regions ---------------------------------------------------
    def floating_components(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, sizes)``: a label ``1..m`` per cell of each floating region (active
        cells connected through open faces that touch no Dirichlet face), 0 elsewhere;
        ``sizes[c-1]`` is the number of cells of region ``c``."""
        if self._floating is None and self.unknowns == self.shape[0] and any(
                float(np.max(_range(self._f3[ax], side, side + 1, ax))) > 0
                for ax in range(3) for side in (0, self.shape3[ax])):
            # every cell active: one connected region; it floats only
            # when no boundary face is Dirichlet
            self._floating = (np.zeros(self.shape[0], dtype=np.int64), np.zeros(0, np.int64))
        if self._floating is None:
            from scipy import ndimage
            labels, count = ndimage.label(self.active.reshape(self.shape3),
                                          structure=ndimage.generate_binary_structure(3, 1))
            touches = np.zeros(count + 1, dtype=bool)
            for ax in range(3):
                n = self.shape3[ax]
                f = self._f3[ax]
                for face, cell in ((0, 0), (n, n - 1)):
                    w = np.broadcast_to(_range(f, face, face + 1, ax),
                                        _range(labels, cell, cell + 1, ax).shape)
                    lab = _range(labels, cell, cell + 1, ax)
                    touches[np.unique(lab[w > 0])] = True
            if self._extra3.strides != (0, 0, 0) or float(self._extra3.max()) > 0:
                # a shift makes a region non-singular too
                sh = (self._extra3 > 0) & (labels > 0)
                touches[np.unique(labels[sh])] = True
            touches[0] = True
            floating = np.flatnonzero(~touches)
            relabel = np.zeros(count + 1, dtype=np.int64)
            relabel[floating] = np.arange(1, floating.size + 1)
            lab = relabel[labels].reshape(-1)
            sizes = np.bincount(lab, minlength=floating.size + 1)[1:]
            self._floating = (lab, sizes)
        return self._floating

    @property
    def singular(self) -> bool:
        """True when some region is floating (pure Neumann): constants there are a null space."""
        return self.floating_components()[1].size > 0

    def null_incompatibility(self, b) -> float:
        """``||P b|| / ||b||`` for the projection ``P`` onto the null space (0 for a
        nonsingular operator): the relative residual no solver can go below."""
        labels, sizes = self.floating_components()
        if sizes.size == 0:
            return 0.0
        bn = bk.to_numpy(b).astype(np.float64)
        bnorm = np.linalg.norm(bn)
        if bnorm == 0:
            return 0.0
        cols = bn.reshape(bn.shape[0], -1)
        worst = 0.0
        for j in range(cols.shape[1]):
            sums = np.bincount(labels, weights=cols[:, j], minlength=sizes.size + 1)[1:]
            worst = max(worst, float(np.sqrt(np.sum(sums ** 2 / sizes))) /
                        max(np.linalg.norm(cols[:, j]), np.finfo(float).tiny))
        return worst

    def _project_by_reductions(self, x, lab, sizes):
        """``project_null`` for a torch vector by one dot product per floating region
        (the indicator vectors cached per dtype and device)."""
        key = ("indicators", str(x.dtype), str(x.device))
        if key not in self._cache:
            self._cache[key] = [((lab == c + 1).to(x.dtype), 1.0 / float(sizes[c]))
                                for c in range(sizes.size)]
        for ind, inv_size in self._cache[key]:
            x = x - (bk._torch().dot(ind, x) * inv_size) * ind
        return x

    def project_null(self, x):
        """``x`` minus its mean on each floating region (in place where possible; returned)."""
        labels, sizes = self.floating_components()
        if sizes.size == 0:
            return x
        key = ("labels", bk.backend_name(x), str(bk.device_of(x)))
        if key not in self._cache:
            self._cache[key] = bk.asarray(labels, backend=bk.backend_name(x),
                                          device=bk.device_of(x))
        lab = self._cache[key]
        if x.ndim == 2:
            for j in range(x.shape[1]):
                x[:, j] = self.project_null(x[:, j])
            return x
        if bk.is_torch(x):
            torch = bk._torch()
            if x.device.type != "cpu" and sizes.size <= 4:
                # a few regions on a GPU: reductions (an index_add_ into a handful of sums
                # serialises millions of atomic adds on one address)
                return self._project_by_reductions(x, lab, sizes)
            # 1 / region size, 0 for the non-floating label 0: cached on the device, so
            # that no host-to-device copy happens here (a recorded CUDA graph allows none)
            ckey = ("inv_sizes", str(x.dtype), str(x.device))
            if ckey not in self._cache:
                self._cache[ckey] = torch.as_tensor(np.concatenate([[0.0], 1.0 / sizes]),
                                                    dtype=x.dtype, device=x.device)
            sums = torch.zeros(sizes.size + 1, dtype=x.dtype, device=x.device)
            sums.index_add_(0, lab, x)
            return x - (sums * self._cache[ckey])[lab]
        xp = bk.namespace(x)
        if bk.is_cupy(x):  # pragma: no cover - needs a GPU
            import cupy
            sums = cupy.bincount(lab, weights=x, minlength=sizes.size + 1)
        else:
            sums = np.bincount(lab, weights=x, minlength=sizes.size + 1)
        means = sums / xp.asarray(np.concatenate([[1.0], sizes]))
        means[0] = 0
        x -= means[lab].astype(x.dtype)
        return x


def sliced_apply(u, data):
    """``A u`` for ``u`` of shape ``(..., n0, n1, n2)`` by slicing (torch or CuPy)."""
    f0, f1, f2 = data["faces"]
    out = data["diag"] * u
    n0, n1, n2 = u.shape[-3:]
    if n0 > 1:
        w = f0[1:-1] if f0.shape[0] > 1 else f0
        out[..., 1:, :, :] -= w * u[..., :-1, :, :]
        out[..., :-1, :, :] -= w * u[..., 1:, :, :]
    if n1 > 1:
        w = f1[:, 1:-1] if f1.shape[1] > 1 else f1
        out[..., :, 1:, :] -= w * u[..., :, :-1, :]
        out[..., :, :-1, :] -= w * u[..., :, 1:, :]
    if n2 > 1:
        w = f2[:, :, 1:-1] if f2.shape[2] > 1 else f2
        out[..., :, :, 1:] -= w * u[..., :, :, :-1]
        out[..., :, :, :-1] -= w * u[..., :, :, 1:]
    return out


def _face_vectors(f3):
    """The 1-D face vectors when every face array is constant across its cross-section
    (a broadcast view), else None."""
    vectors = []
    for ax, f in enumerate(f3):
        if any(st for a, st in enumerate(f.strides) if a != ax and f.shape[a] > 1):
            return None
        idx = tuple(slice(None) if a == ax else 0 for a in range(3))
        vectors.append(np.ascontiguousarray(f[idx], dtype=np.float64))
    return vectors


def _range(a, start, stop, axis):
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(start, stop)
    return a[tuple(idx)]


def _check_shape(grid_shape) -> tuple:
    if isinstance(grid_shape, (int, np.integer)) and not isinstance(grid_shape, bool):
        grid_shape = (int(grid_shape),)
    try:
        shape = tuple(grid_shape)
    except TypeError:
        raise TypeError(f"grid_shape must be an int or a tuple of ints, got {grid_shape!r}") \
            from None
    if not 1 <= len(shape) <= 3 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
            for s in shape):
        raise ValueError(f"grid_shape must have 1 to 3 positive int entries, got {grid_shape!r}")
    return tuple(int(s) for s in shape)


def _check_coefficient(coefficient, shape):
    if coefficient is None:
        return 1.0
    if np.isscalar(coefficient) or np.ndim(coefficient) == 0:
        value = float(coefficient)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"coefficient must be a positive finite number, got {coefficient!r}")
        return value
    k = bk.to_numpy(coefficient).astype(np.float64)
    if k.shape != shape:
        raise ValueError(f"coefficient must have the grid shape {shape}, got {k.shape}")
    bad = ~np.isfinite(k)
    if bad.any():
        raise ValueError(f"coefficient contains NaN or Inf ({int(bad.sum())} cells)")
    if np.any(k <= 0):
        raise ValueError(f"coefficient must be > 0 in every cell; {int((k <= 0).sum())} cells "
                         f"are <= 0 (min {k.min():.3g})")
    return k


def _check_mask(mask, shape):
    if mask is None:
        return None
    m = bk.to_numpy(mask)
    if m.shape != shape:
        raise ValueError(f"mask must have the grid shape {shape}, got {m.shape}")
    if m.dtype != bool:
        raise TypeError(f"mask must be a boolean array (True = solid), got dtype {m.dtype}")
    if m.all():
        raise ValueError("mask leaves no unknowns: every cell is solid")
    return m.copy() if m.any() else None


def as_grid_operator(A: Any) -> GridOperator:
    """A :class:`GridOperator` for ``A`` (a GridOperator, or a :class:`PoissonStencil`,
    converted with its face values); ``TypeError`` for operators without a grid."""
    if isinstance(A, GridOperator):
        return A
    from .stencil import PoissonStencil
    if isinstance(A, PoissonStencil):
        key = "_grid_operator"
        cached = A.__dict__.get(key)
        if cached is not None:
            return cached
        shape = A.grid_shape
        if A._faces_np is None:
            faces = []
            for axis in range(A.dim):
                fshape = list(shape)
                fshape[axis] += 1
                faces.append(np.broadcast_to(np.float64(A.constant * A.scale), tuple(fshape)))
        else:
            faces = [f * A.scale for f in A._faces_np]
        op = GridOperator.from_faces(shape, faces, spacing=(A.h,) * A.dim,
                                     bc=parse_bc("dirichlet", A.dim), shift=A.shift_value,
                                     backend=A.backend, device=A.device, dtype=A.dtype)
        A.__dict__[key] = op
        return op
    inner = getattr(A, "operator", None) or getattr(A, "A", None)
    if inner is not None and inner is not A and hasattr(inner, "grid_shape"):
        return as_grid_operator(inner)
    raise TypeError(f"geometric multigrid needs a grid operator (lrsolve.operators.GridOperator "
                    f"or PoissonStencil, e.g. lr.problems.poisson(...).A); got "
                    f"{type(A).__name__} - use method='pcg-amg' for a matrix without a grid")
