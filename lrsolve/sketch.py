"""Sketching operators shared by optimize/ and completion/.

A sketch ``S`` of size ``s x m`` maps an ``m``-row matrix to ``s`` rows while (in
expectation, or with high probability for an oblivious subspace embedding) keeping
the geometry of its column space.  Families:

* ``"gaussian"``     - dense i.i.d. N(0, 1/s) entries;
* ``"countsketch"``  - one nonzero (+-1) per column: ``S A`` costs ``O(nnz(A))``;
* ``"sparse-sign"``  - ``zeta`` nonzeros (+-1/sqrt(zeta)) per column;
* ``"srht"``         - subsampled randomized Hadamard (DCT-II here, real and fast);
* ``"rows"``         - uniform row sampling (rescaled), the randomized-Kaczmarz sketch.

All take a ``numpy.random.Generator`` (or seed) and act on NumPy arrays, scipy.sparse
matrices and torch tensors (via :meth:`Sketch.apply`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from . import backend as bk
from .seeding import as_generator

__all__ = ["Sketch", "make_sketch", "SKETCHES", "as_generator"]

SKETCHES = ("gaussian", "countsketch", "sparse-sign", "srht", "rows")


class Sketch:
    """An ``s x m`` sketching operator.

    ``matrix`` is a dense ``ndarray`` (gaussian) or a ``scipy.sparse.csr_matrix``
    (countsketch, sparse-sign, rows; for countsketch it is built on first use, so a
    kernel that only needs the buckets pays ``O(m)``); ``srht`` keeps its signs and
    sampled rows and applies a DCT.  ``rows``/``signs``: for ``srht`` the sampled rows
    and the diagonal signs; for ``countsketch`` the bucket and sign of each of the ``m``
    columns; for ``rows`` the sampled rows.

    :meth:`apply` works on NumPy, scipy.sparse and torch inputs; on torch the gaussian
    and countsketch families run natively (on the input's device), the others go
    through NumPy.
    """

    def __init__(self, kind: str, s: int, m: int, matrix: Any = None,
                 signs: np.ndarray | None = None, rows: np.ndarray | None = None):
        self.kind, self.s, self.m = kind, int(s), int(m)
        self._matrix = matrix
        self.signs, self.rows = signs, rows

    def __repr__(self):
        return f"Sketch(kind={self.kind!r}, s={self.s}, m={self.m})"

    @property
    def matrix(self):
        if self._matrix is None and self.kind == "countsketch":
            self._matrix = sp.csr_matrix((self.signs, (self.rows, np.arange(self.m))),
                                         shape=(self.s, self.m))
        return self._matrix

    @property
    def shape(self):
        return (self.s, self.m)

    def apply(self, A: Any):
        """``S @ A`` for a vector or matrix ``A`` with ``m`` rows (NumPy, scipy.sparse, torch)."""
        if A.shape[0] != self.m:
            raise ValueError(f"A has {A.shape[0]} rows but the sketch expects m={self.m}")
        if bk.is_torch(A):
            return self._apply_torch(A)
        if self.kind == "srht":
            from scipy.fft import dct
            dense = A.toarray() if sp.issparse(A) else np.asarray(A)
            mixed = dct(self.signs.reshape((-1,) + (1,) * (dense.ndim - 1)) * dense,
                        type=2, norm="ortho", axis=0)
            return mixed[self.rows] * np.sqrt(self.m / self.s)
        out = self.matrix @ A
        return out.toarray() if sp.issparse(out) else out

    def _apply_torch(self, A):
        torch = bk._torch()
        if A.layout != torch.strided:
            A = A.to_dense()
        if self.kind == "countsketch":
            idx = torch.as_tensor(self.rows, device=A.device)
            sign = torch.as_tensor(self.signs, dtype=A.dtype, device=A.device)
            sign = sign.reshape((-1,) + (1,) * (A.ndim - 1))
            out = torch.zeros((self.s,) + tuple(A.shape[1:]), dtype=A.dtype, device=A.device)
            return out.index_add_(0, idx, sign * A)
        if self.kind == "gaussian":
            return torch.as_tensor(self.matrix, dtype=A.dtype, device=A.device) @ A
        return bk.asarray(self.apply(bk.to_numpy(A)), like=A)

    __matmul__ = apply

    def todense(self) -> np.ndarray:
        """The sketch as a dense ``s x m`` array (for tests and small problems)."""
        return self.apply(np.eye(self.m))


def make_sketch(kind: str, s: int, m: int, seed=None, *, zeta: int = 8) -> Sketch:
    """Build an ``s x m`` sketch of the given ``kind`` (one of :data:`SKETCHES`).

    ``E[S^T S] = I`` for every family, so sketched normal equations are unbiased.
    """
    if kind not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {kind!r}")
    if not isinstance(s, (int, np.integer)) or s < 1:
        raise ValueError(f"sketch size s must be a positive int, got {s!r}")
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be a positive int, got {m!r}")
    rng = as_generator(seed)
    if kind == "gaussian":
        return Sketch(kind, s, m, matrix=rng.standard_normal((s, m)) / np.sqrt(s))
    if kind in ("countsketch", "sparse-sign"):
        nnz_per_col = 1 if kind == "countsketch" else max(1, min(int(zeta), s))
        # Rows drawn independently per slot: a collision adds two independent signs,
        # which keeps E[S^T S] = I.
        rows = rng.integers(0, s, size=m * nnz_per_col)
        vals = rng.choice(np.array([-1.0, 1.0]), size=m * nnz_per_col) / np.sqrt(nnz_per_col)
        if nnz_per_col == 1:
            # CountSketch: the bucket and sign of each column; kernels apply it segment
            # by segment, and the sparse matrix is built only if asked for.
            return Sketch(kind, s, m, rows=rows, signs=vals)
        cols = np.repeat(np.arange(m), nnz_per_col)
        return Sketch(kind, s, m, matrix=sp.csr_matrix((vals, (rows, cols)), shape=(s, m)))
    if kind == "rows":
        picked = rng.choice(m, size=s, replace=s > m)
        vals = np.full(s, np.sqrt(m / s))
        return Sketch(kind, s, m, matrix=sp.csr_matrix((vals, (np.arange(s), picked)),
                                                       shape=(s, m)), rows=picked)
    # srht
    if s > m:
        raise ValueError(f"an SRHT sketch needs s <= m, got s={s}, m={m}")
    signs = rng.choice(np.array([-1.0, 1.0]), size=m)
    picked = np.sort(rng.choice(m, size=s, replace=False))
    return Sketch(kind, s, m, signs=signs, rows=picked)
