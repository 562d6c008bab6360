"""A GMG hierarchy's level operators and transfers on batched torch tensors, differentiable.

:class:`TorchHierarchy` takes a built :class:`~lrsolve.multigrid.GMG` (any backend: the
tables of :mod:`lrsolve.multigrid.hierarchy` are NumPy) and puts, for a torch dtype and
device, every level's face weights, diagonal and active-cell mask, the restriction and
prolongation gather tables with the prolongation renormalisation ``pw``, and the
coarsest level's dense (pseudo-)inverse on that device.  Its methods apply them to
batched grid tensors of shape ``(k, n0, n1, n2)`` (the 3-D embedding of the level's grid,
leading axes of length 1 for 2-D grids) with out-of-place array operations only
(``index_select``, products, sums, slicing), so torch autograd differentiates through
them: the DCDM V-cycle network (:class:`lrsolve.dcdm.VCycleNet`) trains its smoothers
through these operators.

The same arithmetic is GMG's own torch / CuPy path: :func:`gather_axis`, :func:`restrict`
and :func:`prolong` act on the per-level dict of ``GMG._device_level``, and
:func:`apply_level` is :func:`lrsolve.operators.grid.sliced_apply` (the operator by
slicing).  On NumPy GMG runs fused numba kernels; the two agree to rounding (tested to
1e-12 in float64).

Examples
--------
>>> import numpy as np, torch
>>> import lrsolve as lr
>>> from lrsolve.multigrid.transfer import TorchHierarchy
>>> P = lr.problems.poisson(n=(24, 20), dim=2)
>>> H = TorchHierarchy(lr.multigrid.GMG(P.A, coarse_size=64), dtype=torch.float64)
>>> r = torch.randn(3, *H.shape3(0))
>>> H.restrict(0, r).shape, H.prolong(0, H.restrict(0, r)).shape
(torch.Size([3, 1, 12, 10]), torch.Size([3, 1, 24, 20]))
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend as bk
from ..operators.grid import sliced_apply

__all__ = ["TorchHierarchy", "gather_axis", "restrict", "prolong", "apply_level"]


def gather_axis(src, taps, ax: int):
    """``dst[.., K, ..] = sum_t W_t[K] * src[.., idx_t[K], ..]`` along grid axis ``ax`` of a
    batched ``(k, n0, n1, n2)`` array (torch or CuPy); ``taps`` is a list of
    ``(idx_t, W_t)`` pairs (one per nonzero column of a gather table)."""
    axis = ax + 1
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    out = None
    for idx, w in taps:
        if bk.is_torch(src):
            g = src.index_select(axis, idx)
        else:  # pragma: no cover - needs a GPU
            g = src.take(idx, axis=axis)
        term = w.reshape(shape) * g
        out = term if out is None else out + term
    return out


def restrict(data: dict, r):
    """``R r`` with ``R = P^T / 2^d`` (the mask weights ``pw`` first): fine ``(k, *shape3)``
    to the next coarser level."""
    src = r * data["pw"] if data["pw"] is not None else r
    for ax in (2, 1, 0):
        if data["restrict"][ax] is not None:
            src = gather_axis(src, data["restrict"][ax], ax)
    return src


def prolong(data: dict, e):
    """``P e``: coarse ``(k, *shape3)`` to the finer level (zero on its excluded cells)."""
    for ax in (0, 1, 2):
        if data["prolong"][ax] is not None:
            e = gather_axis(e, data["prolong"][ax], ax)
    if data["pw"] is not None:
        e = e * data["pw"]
    return e


def apply_level(data: dict, u):
    """``A_l u`` for ``u`` of shape ``(k, *shape3)``: the level's operator by slicing."""
    return sliced_apply(u, data)


class TorchHierarchy:
    """The levels of a :class:`~lrsolve.multigrid.GMG` as torch tensors (see the module
    docstring); everything it applies is differentiable.

    Parameters
    ----------
    gmg : GMG
        A built hierarchy (its operator may live on any backend).
    dtype : torch.dtype
        Floating dtype of the tensors (the data it is applied to must match).
    device : str or torch.device
        Where the tensors live.

    Attributes
    ----------
    levels : list of dict
        Per level, finest first: ``faces``, ``diag``, ``inv_diag``, ``active`` (1 on
        active cells, 0 on excluded ones), ``shape3`` and, except on the coarsest level,
        ``restrict`` / ``prolong`` (gather taps per axis or None) and ``pw``; the
        coarsest level also holds ``inverse`` (the dense (pseudo-)inverse, transposed
        for a right product).
    dim, grid_shapes
        The grid dimension and the (user-dimension) grid shape of every level.
    """

    def __init__(self, gmg: Any, *, dtype: Any = None, device: Any = "cpu"):
        import torch
        self.torch = torch
        self.dtype = torch.float64 if dtype is None else dtype
        self.device = torch.device(device)
        self.gmg = gmg
        self.dim = gmg.levels[0].op.dim
        # coarse levels are built on the 3-D embedding; report the user-dimension shapes
        self.grid_shapes = [tuple(lv.shape3[3 - self.dim:]) for lv in gmg.levels]
        self.singular = bool(gmg.levels[0].op.singular)
        self.levels = [self._level(l) for l in range(len(gmg.levels))]

    def _tensor(self, a):
        return self.torch.as_tensor(np.array(a, dtype=np.float64, copy=True),
                                    dtype=self.dtype, device=self.device)

    def _taps(self, table, n_src):
        if table is None:
            return None
        lo, W = table
        return [(self.torch.as_tensor(np.clip(lo + s, 0, n_src - 1), device=self.device),
                 self._tensor(W[:, s])) for s in range(W.shape[1]) if np.any(W[:, s] != 0)]

    def _level(self, l: int) -> dict:
        level = self.gmg.levels[l]
        op = level.op
        faces = []
        for f in op._f3:
            # keep broadcast faces small: collapse zero-stride axes to length 1
            faces.append(self._tensor(f[tuple(slice(0, 1) if st == 0 else slice(None)
                                              for st in f.strides)]))
        diag = op._diag3
        active = np.broadcast_to(np.asarray(op.active), op.grid_shape).reshape(level.shape3)
        data = {"faces": faces, "diag": self._tensor(diag), "inv_diag": self._tensor(1.0 / diag),
                "active": self._tensor(active.astype(np.float64)), "shape3": level.shape3}
        if l < len(self.gmg.levels) - 1:
            coarse = self.gmg.levels[l + 1].shape3
            data["restrict"] = [self._taps(level.restrict_tables[ax], level.shape3[ax])
                                for ax in range(3)]
            data["prolong"] = [self._taps(level.prolong_tables[ax], coarse[ax])
                               for ax in range(3)]
            data["pw"] = None if level.pw is None else self._tensor(level.pw)
        else:
            data["inverse"] = self._tensor(np.ascontiguousarray(self.gmg.coarse_inverse.T))
        return data

    # -- shapes ---------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of levels (the last one is solved directly)."""
        return len(self.levels)

    def shape3(self, l: int) -> tuple:
        """The 3-D embedded grid shape of level ``l``."""
        return tuple(self.levels[l]["shape3"])

    # -- operations (batched (k, n0, n1, n2) tensors) ----------------------------------------
    def apply(self, l: int, u):
        """``A_l u``."""
        return apply_level(self.levels[l], u)

    def residual(self, l: int, b, x):
        """``b - A_l x``."""
        return b - apply_level(self.levels[l], x)

    def restrict(self, l: int, r):
        """Level ``l`` to level ``l + 1``."""
        return restrict(self.levels[l], r)

    def prolong(self, l: int, e):
        """Level ``l + 1`` to level ``l``."""
        return prolong(self.levels[l], e)

    def coarse_solve(self, b):
        """The coarsest level's direct solve (minimum-norm for a singular level)."""
        data = self.levels[-1]
        k = b.shape[0]
        return (b.reshape(k, -1) @ data["inverse"]).reshape(b.shape)

    def jacobi(self, l: int, r, omega: float = 1.0):
        """``omega D_l^{-1} r`` (zero on excluded cells: their diagonal is 1 and r is 0)."""
        return omega * self.levels[l]["inv_diag"] * r
