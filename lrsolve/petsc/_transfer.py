"""Grid transfers shared by ``pcg-mg`` (PCMG on a DMDA hierarchy) and :class:`MultigridPC`.

Coarsening halves each axis: an odd ``n = 2 nc + 1`` keeps the odd fine points (nested
vertex grids, linear interpolation 1/2-1-1/2); an even ``n`` pairs points (cell-centred
linear interpolation 3/4-1/4).  Outside the grid is the zero Dirichlet boundary.  The
transfers are tensor products of these 1-D operators.
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["coarse_size", "prolongation_1d", "prolongation_rows", "local_prolongation"]


def coarse_size(n: int) -> int:
    # Odd n = 2 nc + 1: the coarse points coincide with the odd fine points (nested);
    # even n: cell-centred pairs.
    return (n - 1) // 2 if n % 2 else n // 2


def prolongation_1d(n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Columns and weights (n, 2) of linear interpolation from the coarse grid of ``n``."""
    nc = coarse_size(n)
    i = np.arange(n)
    cols = np.zeros((n, 2), dtype=np.int64)
    w = np.zeros((n, 2))
    if n % 2:
        odd = i % 2 == 1
        cols[odd, 0] = (i[odd] - 1) // 2
        w[odd, 0] = 1.0
        even = ~odd
        cols[even, 0] = i[even] // 2 - 1
        cols[even, 1] = i[even] // 2
        w[even, 0] = 0.5
        w[even, 1] = 0.5
    else:
        j = i // 2
        cols[:, 0] = j
        w[:, 0] = 0.75
        cols[:, 1] = np.where(i % 2 == 0, j - 1, j + 1)
        w[:, 1] = 0.25
    bad = (cols < 0) | (cols >= nc)
    w[bad] = 0.0
    cols[bad] = 0
    return cols, w, nc


def prolongation_rows(fine_shape: tuple, starts: tuple, stops: tuple):
    """Rows of the tensor-product prolongation for the fine box ``[starts, stops)``.

    Returns ``(rows, cols, weights, coarse_shape)``: ``rows`` index the box's points in C
    order, ``cols`` are coarse points in lrsolve's (natural) flat numbering.
    """
    per_axis = [prolongation_1d(n) for n in fine_shape]
    coarse_shape = tuple(p[2] for p in per_axis)
    grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(s, e) for s, e in zip(starts, stops)],
                                                 indexing="ij")]
    count = grids[0].shape[0]
    box_rows = np.arange(count)
    rows, cols, vals = [], [], []
    for combo in itertools.product(range(2), repeat=len(fine_shape)):
        weight = np.ones(count)
        coarse_index = []
        for axis, k in enumerate(combo):
            c, w, _ = per_axis[axis]
            weight = weight * w[grids[axis], k]
            coarse_index.append(c[grids[axis], k])
        keep = weight != 0
        rows.append(box_rows[keep])
        cols.append(np.ravel_multi_index(tuple(ci[keep] for ci in coarse_index), coarse_shape))
        vals.append(weight[keep])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), coarse_shape


def local_prolongation(fine_shape: tuple):
    """The tensor-product prolongation of a whole (serial) box as scipy CSR, and the coarse shape."""
    import scipy.sparse as sp
    rows, cols, vals, coarse_shape = prolongation_rows(fine_shape, (0,) * len(fine_shape),
                                                       tuple(fine_shape))
    P = sp.csr_matrix((vals, (rows, cols)),
                      shape=(int(np.prod(fine_shape)), int(np.prod(coarse_shape))))
    P.sum_duplicates()
    return P, coarse_shape
