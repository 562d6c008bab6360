"""Batched per-row least-squares solvers for one AltMin half-step.

For a fixed factor ``F`` (``n_other x k``) every row ``j`` of the free factor solves

    min_x  sum_{t in Omega_j} (F[other_t] . x - b_t)^2  +  lam_j ||x||^2 ,

whose design ``A_j = F[Omega_j]`` is ``|Omega_j| x k``.  Rows come in padded chunks
(see :mod:`._observations`): ``A`` is a ``(B, L, k)`` view of a gathered ``(L, B, k)``
array, so every product below is one batched BLAS call over the chunk.

* ``exact``  - batched normal equations ``(A^T A + lam I) x = A^T b`` solved by LU:
  ``O(|Omega_j| k^2 + k^3)`` per row - the reference.
* ``sketch`` - the paper's high-accuracy regression solver (Gu, Song, Yin, Zhang 2024,
  Sec. 4; sketch-and-precondition as in Rokhlin-Tygert / Blendenpik): sketch the design
  ``S A_j`` (``s x k`` with ``s = O(k)``, :func:`lrsolve.sketch.make_sketch`), take the
  triangular factor of the sketch (Cholesky-QR: ``R^T R = (S A)^T (S A) + lam I``) as
  preconditioner, and run a few preconditioned CG steps on the normal equations from
  the warm start.  Cost ``O(nnz(S) k + s k^2 + k^3)`` for the preconditioner plus
  ``O(|Omega_j| k)`` per CG step.  Because ``A_j R^{-1}`` is well conditioned
  (``kappa = O(1)``), each step cuts the error by a constant factor whatever the
  conditioning of ``A_j``; the robust-AltMin analysis only needs each solve to be
  accurate *relative to the current error*, which ``inner_rtol`` controls.
"""
from __future__ import annotations

import numpy as np

from .. import backend as bk
from ..sketch import make_sketch

__all__ = ["Ops", "solve_chunk"]

#: relative ridge added to every row problem so that rows with fewer observations than
#: the rank (or none) stay well posed; ~1e-10 of the row's own scale, far below the
#: 1e-6 recovery accuracy we test (1e-12 of the row scale).
JITTER = 1e-12


class Ops:
    """The few array operations that differ between NumPy and torch."""

    def __init__(self, backend: str, dtype, device=None):
        self.torch = backend == "torch"
        self.dtype = dtype
        self.device = device
        if self.torch:
            import torch
            self.t = torch

    def swap(self, A):
        """View with the last two axes swapped."""
        return A.transpose(-1, -2) if self.torch else A.swapaxes(-1, -2)

    def outer_view(self, A_lbk):
        """(L, B, k) -> (B, L, k) view."""
        return A_lbk.permute(1, 0, 2) if self.torch else A_lbk.transpose(1, 0, 2)

    def eye(self, k):
        if self.torch:
            return self.t.eye(k, dtype=self.dtype, device=self.device)
        return np.eye(k, dtype=self.dtype)

    def inv(self, G):
        return self.t.linalg.inv(G) if self.torch else np.linalg.inv(G)

    def solve(self, G, rhs):
        if self.torch:
            return self.t.linalg.solve(G, rhs.unsqueeze(-1)).squeeze(-1)
        return np.linalg.solve(G, rhs[..., None])[..., 0]

    def mv(self, A, x):
        """Batched matrix-vector product ``A[b] @ x[b]``."""
        if self.torch:
            return (A @ x.unsqueeze(-1)).squeeze(-1)
        return (A @ x[..., None])[..., 0]

    def safe_div(self, num, den):
        """``num / den`` where ``den > 0``, else 0 (rows already solved exactly)."""
        if self.torch:
            ok = den > 0
            return self.t.where(ok, num / self.t.where(ok, den, self.t.ones_like(den)),
                                self.t.zeros_like(num))
        ok = den > 0
        return np.where(ok, num / np.where(ok, den, 1.0), 0.0)

    def any_gt(self, a, b) -> bool:
        return bool((a > b).any())

    def to_float(self, x) -> float:
        return float(x.item()) if self.torch else float(x)

    def sketch(self, kind, s, A_lbk, rng):
        """``S @ A`` for one ``s x L`` sketch applied to every row of the chunk."""
        L, B, k = A_lbk.shape
        sk = make_sketch(kind, int(s), int(L), seed=rng)
        flat = A_lbk.reshape(L, B * k)
        out = sk.apply(flat)
        if self.torch and not bk.is_torch(out):  # pragma: no cover - Sketch.apply returns like A
            out = bk.asarray(out, like=flat)
        return out.reshape(s, B, k)


def _regularisation(ops, F_rowsq, other, reg, floor, k):
    """Per-row ridge ``reg + JITTER * max(trace(A_j^T A_j) / k, floor)``, shape (B,).

    The jitter, relative to the row's own scale, keeps rows with fewer observations than
    ``k`` (or none) well posed without visibly biasing well-sampled rows.
    """
    scale = F_rowsq[other].sum(0) / k
    if ops.torch:
        return reg + JITTER * ops.t.clamp(scale, min=floor)
    return reg + JITTER * np.maximum(scale, floor)


def solve_chunk(ops: Ops, F_ext, F_rowsq, chunk, x0, *, solver: str, reg: float,
                floor: float, sketch: str = "countsketch", sketch_size: int = 0,
                inner_iters: int = 10, inner_rtol: float = 0.1, rng=None):
    """Solve the ridge least-squares problems of one chunk of rows.

    Parameters
    ----------
    ops : Ops
        Backend operations.
    F_ext : array, (n_other + 1, k)
        The fixed factor with an extra zero row that padding points at.
    F_rowsq : array, (n_other + 1,)
        Squared row norms of ``F_ext`` (for the per-row regularisation scale).
    chunk : Chunk
        Padded rows (see :class:`._observations.GroupLayout`).
    x0 : array, (B, k)
        Warm start (only used by the sketch solver).

    Returns
    -------
    x : array (B, k)
    residual_sq : float
        ``sum_j ||A_j x_j - b_j||^2`` over the chunk (the data misfit, no ridge term).
    iterations : int
        CG iterations (0 for the exact solver).
    """
    A_lbk = F_ext[chunk.other]                       # (L, B, k) gather: O(|Omega| k)
    A = ops.outer_view(A_lbk)                         # (B, L, k) strided view
    b = chunk.values                                  # (B, L)
    k = A.shape[-1]
    lam = _regularisation(ops, F_rowsq, chunk.other, reg, floor, k)
    eye = ops.eye(k)
    At = ops.swap(A)
    if solver == "exact":
        G = At @ A + lam[:, None, None] * eye
        x = ops.solve(G, ops.mv(At, b))
        d = b - ops.mv(A, x)
        return x, ops.to_float((d * d).sum()), 0

    L = chunk.length
    if L <= sketch_size:
        # a sketch would not be shorter than the design itself: factor the design
        SA = A
    else:
        SA = ops.outer_view(ops.sketch(sketch, sketch_size, A_lbk, rng))   # (B, s, k)
    Gs = ops.swap(SA) @ SA + lam[:, None, None] * eye
    P = ops.inv(Gs)                                   # (R^T R)^{-1}: O(k^2) per apply
    x = x0
    d = b - ops.mv(A, x)                              # data residual, kept by recursion
    r = ops.mv(At, d) - lam[:, None] * x              # minus the gradient
    z = ops.mv(P, r)
    p = z
    rz = (r * z).sum(-1)
    stop = (inner_rtol ** 2) * rz
    it = 0
    while it < inner_iters and ops.any_gt(rz, stop):
        q = ops.mv(A, p)
        Hp = ops.mv(At, q) + lam[:, None] * p
        alpha = ops.safe_div(rz, (p * Hp).sum(-1))
        x = x + alpha[:, None] * p
        d = d - alpha[:, None] * q
        r = r - alpha[:, None] * Hp
        z = ops.mv(P, r)
        rz_new = (r * z).sum(-1)
        beta = ops.safe_div(rz_new, rz)
        p = z + beta[:, None] * p
        rz = rz_new
        it += 1
    return x, ops.to_float((d * d).sum()), it
