"""Validation of observed entries and the padded, row-grouped layout the solvers use.

Every AltMin half-step solves one small least-squares problem per row (or column) of
the matrix, over that row's observed entries.  Rows have different numbers of
observations, so we sort the rows by their count and cut them into *chunks* of rows
with similar counts.  Inside a chunk every row is padded to the chunk's longest count
``L`` with a pointer to an all-zero factor row, which turns the ragged problems into
dense batched arrays ``(L, B, k)``: NumPy / torch then do all rows of a chunk with
one batched ``matmul`` instead of a Python loop per row.  The padding waste is bounded
by cutting a chunk whenever the count grows by more than :data:`PAD_GROWTH`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import backend as bk

__all__ = ["Observations", "validate_observations", "validate_entries", "GroupLayout"]

#: a chunk is cut when a row's count exceeds ``PAD_GROWTH * first + 8``: padding waste <= ~25 %
PAD_GROWTH = 1.25
#: elements (B * L * k) of the gathered design of one chunk; a few MB keeps Python
#: overhead per chunk small against the work while bounding memory
CHUNK_ELEMENTS = 1 << 20


@dataclass
class Observations:
    """Validated observed entries ``M[rows[t], cols[t]] = values[t]`` on one backend."""

    rows: np.ndarray          # int64 host copies (used to build layouts)
    cols: np.ndarray
    values: object            # backend array (numpy or torch), floating
    shape: tuple
    backend: str
    device: object
    dtype: object

    @property
    def nnz(self) -> int:
        return int(self.rows.size)


def _as_index(x, name: str, size: int) -> np.ndarray:
    arr = bk.to_numpy(x)
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        bad = arr[(arr < 0) | (arr >= size)][0]
        raise ValueError(f"{name} holds index {bad} outside [0, {size}) for shape dimension {size}")
    return arr


def _check_shape(shape) -> tuple:
    import operator
    try:
        m, n = (operator.index(s) for s in shape)   # no silent truncation of 60.7 to 60
    except Exception:
        raise ValueError(f"shape must be a pair of positive ints (m, n), got {shape!r}") from None
    if m < 1 or n < 1:
        raise ValueError(f"shape must be a pair of positive ints (m, n), got {shape!r}")
    return (m, n)


def validate_entries(rows, cols, values, shape, *, name: str = "observations",
                     check_duplicates: bool = True) -> Observations:
    """Check coordinates and values; return them as :class:`Observations`.

    Raises ``ValueError`` naming the argument for out-of-range indices, mismatched
    lengths, NaN/Inf values and (when ``check_duplicates``) repeated ``(row, col)``
    pairs; ``TypeError`` for mixed backends or non-integer indices.
    """
    if values is None:
        raise ValueError(f"{name}: values must be given with rows and cols")
    bk.namespace(rows, cols, values)  # TypeError on a backend mix
    m, n = _check_shape(shape)
    r = _as_index(rows, "rows" if name == "observations" else f"{name} rows", m)
    c = _as_index(cols, "cols" if name == "observations" else f"{name} cols", n)
    vname = "values" if name == "observations" else f"{name} values"
    if getattr(values, "ndim", 1) != 1:
        raise ValueError(f"{vname} must be 1-D, got shape {tuple(values.shape)}")
    if not (r.size == c.size == values.shape[0]):
        raise ValueError(f"rows, cols and values of {name} must have the same length, got "
                         f"{r.size}, {c.size}, {values.shape[0]}")
    backend = bk.backend_name(values)
    if backend == "numpy":
        values = np.asarray(values)
        if values.dtype.kind not in "f":
            if values.dtype.kind == "c":
                raise TypeError(f"{vname} must be real, got dtype {values.dtype}")
            values = values.astype(np.float64)
    else:
        import torch
        if values.is_complex():
            raise TypeError(f"{vname} must be real, got dtype {values.dtype}")
        if not values.is_floating_point():
            values = values.to(torch.float64)
    bk.check_finite(values, vname)
    if check_duplicates and r.size:
        key = r * n + c
        uniq, counts = np.unique(key, return_counts=True)
        if uniq.size != key.size:
            k0 = uniq[counts > 1][0]
            raise ValueError(f"{name} hold duplicate entries: ({k0 // n}, {k0 % n}) is given "
                             f"{counts[counts > 1][0]} times ({int((counts > 1).sum())} repeated "
                             "pairs in all); combine them (e.g. average) before calling")
    return Observations(r, c, values, (m, n), backend, bk.device_of(values), values.dtype)


def validate_observations(rows, cols=None, values=None, shape=None) -> Observations:
    """Accept ``(rows, cols, values, shape)`` or a scipy.sparse matrix in ``rows``.

    Every stored entry of a sparse matrix is an observation, explicit zeros included.
    """
    if sp.issparse(rows):
        if cols is not None or values is not None:
            raise ValueError("give either a scipy.sparse matrix of observations or "
                             "(rows, cols, values, shape), not both")
        M = rows
        if shape is not None and _check_shape(shape) != M.shape:
            raise ValueError(f"shape {shape!r} does not match the sparse matrix's {M.shape}")
        coo = M.tocoo()  # keeps duplicates (does not sum them) so they can be reported
        return validate_entries(coo.row, coo.col, coo.data, M.shape)
    if bk.is_torch(rows) and bk.is_sparse(rows):
        raise TypeError("torch sparse tensors are not accepted as observations: pass "
                        "(rows, cols, values, shape) tensors")
    if cols is None or values is None or shape is None:
        raise ValueError("altmin needs rows, cols, values and shape (or a scipy.sparse matrix)")
    return validate_entries(rows, cols, values, shape)


@dataclass
class Chunk:
    """Rows ``groups`` (B,) padded to length L: ``other`` (L, B) indexes the fixed factor
    (the padding points at an extra zero row), ``values`` (B, L) holds the observations
    (0 on padding), ``counts`` (B,) the true counts."""

    groups: object
    other: object
    values: object
    counts: object
    length: int


class GroupLayout:
    """Observations grouped by one index (rows for the U-step, columns for the V-step).

    Built once per call to :func:`altmin`; each half-step walks ``chunks``.
    """

    def __init__(self, group: np.ndarray, other: np.ndarray, values, n_groups: int,
                 n_other: int, rank: int, *, backend: str, device=None):
        self.n_groups = n_groups
        self.n_other = n_other
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=n_groups)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.counts = counts
        by_count = np.argsort(counts, kind="stable")
        # CSR view of the same grouping for the fused per-row kernels (NumPy backend)
        self.indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.other_sorted = other[order].astype(np.int64, copy=False)
        if backend == "torch":
            import torch
            perm = torch.as_tensor(order, device=values.device)
            values_sorted = values[perm]
        else:
            values_sorted = np.asarray(values)[order]
            self.values_sorted = np.ascontiguousarray(values_sorted, dtype=np.float64)
        self._starts, self._by_count = starts, by_count
        self._values_sorted_backend = values_sorted
        self._rank, self._backend, self._values = rank, backend, values
        self._chunks = None

    @property
    def chunks(self):
        """Padded chunks for the batched engine, built on first use (the fused numba
        kernels of the NumPy path only need the CSR view)."""
        if self._chunks is None:
            self._chunks = self._build_chunks()
        return self._chunks

    def _build_chunks(self):
        counts, starts, by_count = self.counts, self._starts, self._by_count
        other_sorted, values_sorted = self.other_sorted, self._values_sorted_backend
        rank, backend, values, n_other = self._rank, self._backend, self._values, self.n_other
        budget = max(CHUNK_ELEMENTS // max(rank, 1), 1)
        chunks = []
        i = 0
        G = self.n_groups
        while i < G:
            first = counts[by_count[i]]
            j = i + 1
            # rows sorted by count: grow the chunk while padding and memory stay bounded
            while j < G:
                L = counts[by_count[j]]
                if L > PAD_GROWTH * first + 8 or (j - i + 1) * max(L, 1) > budget:
                    break
                j += 1
            g = by_count[i:j]
            L = int(counts[g].max()) if g.size else 0
            L = max(L, 1)
            ar = np.arange(L)
            valid = ar[None, :] < counts[g][:, None]                      # (B, L)
            pos = np.where(valid, starts[g][:, None] + ar[None, :], 0)
            other_pad = np.where(valid, other_sorted[np.minimum(pos, other_sorted.size - 1)]
                                 if other_sorted.size else 0, n_other)
            if backend == "torch":
                import torch
                pos_t = torch.as_tensor(pos, device=values.device)
                valid_t = torch.as_tensor(valid, device=values.device)
                vals = values_sorted[pos_t] if values_sorted.numel() else \
                    torch.zeros(pos.shape, dtype=values.dtype, device=values.device)
                vals = torch.where(valid_t, vals, torch.zeros((), dtype=values.dtype,
                                                              device=values.device))
                chunk = Chunk(torch.as_tensor(g, device=values.device),
                              torch.as_tensor(np.ascontiguousarray(other_pad.T), device=values.device),
                              vals.contiguous(), torch.as_tensor(counts[g], device=values.device),
                              L)
            else:
                vals = np.where(valid, values_sorted[pos] if values_sorted.size else 0.0, 0.0)
                chunk = Chunk(g, np.ascontiguousarray(other_pad.T), vals.astype(values.dtype),
                              counts[g], L)
            chunks.append(chunk)
            i = j
        return chunks

    def csr(self, scale=1.0):
        """``scale`` times the observed matrix grouped by this layout's index, as a
        ``scipy.sparse.csr_matrix`` (n_groups x n_other) sharing the sorted structure
        (NumPy backend)."""
        return sp.csr_matrix((self._values_sorted_backend * scale, self.other_sorted, self.indptr),
                             shape=(self.n_groups, self.n_other))
