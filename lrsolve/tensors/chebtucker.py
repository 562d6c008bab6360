"""The mesh-free hybrid Chebyshev-Tucker format (Benner, Khoromskij, Khoromskaia, Sun 2025).

A function of ``d`` variables (``d`` = 2 or 3, usually 3) on a box is kept as

    f(x) ~ sum_{a,b,c} G[a,b,c] phi1_a(x1) phi2_b(x2) phi3_c(x3),
    phik_a(t) = sum_j F_k[j, a] T_j(t mapped to [-1, 1]),

i.e. the Chebyshev coefficient tensor ``C = G x_1 F_1 x_2 F_2 x_3 F_3`` in Tucker form: a
small core and, per axis, ``r_k`` univariate Chebyshev series (the columns of ``F_k``).
Built by sampling on the 2nd-kind tensor grid, DCT-I, and a truncated (ST-)HOSVD of the
coefficient tensor (see :mod:`lrsolve.tensors.tucker`), optionally refined by HOOI; or
from a canonical (CP) coefficient tensor by the reduced HOSVD (:meth:`ChebTucker.from_cp`).

Evaluation at ``m`` points costs ``O(m (sum_k n_k r_k + r_1 r_2 r_3))``: each factor set is
evaluated by the Chebyshev-Vandermonde matrix of the point's coordinate times ``F_k``
(one GEMM), and the core is contracted with the three ``m x r_k`` results.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .. import backend as B
from .chebyshev import (adaptive_coeffs, chebder, chebvander, chebyshev_points, check_domain,
                        integral_weights, to_reference, vals2coeffs, _decay_info, _degrees)
from .tucker import hosvd, hooi, mode_product, tucker_to_full, _check_rtol, _eps

__all__ = ["ChebTucker", "sample_on_grid"]

_CHUNK = 8192


def sample_on_grid(f: Callable, domain, degrees, *, backend: str = "numpy", device=None,
                   dtype=np.float64, name: str = "f"):
    """Values of ``f(x, y, z)`` on the tensor grid of 2nd-kind Chebyshev points.

    ``f`` receives one coordinate array per axis (broadcastable open-mesh arrays on the
    requested backend) and must return values broadcastable to the grid.  NaN or Inf in
    the result raise ``ValueError`` naming the offending point.
    """
    box = check_domain(domain)
    grids = [chebyshev_points(n, box[k]) for k, n in enumerate(degrees)]
    d = len(grids)
    mesh = []
    for k, g in enumerate(grids):
        shape = [1] * d
        shape[k] = g.size
        mesh.append(B.asarray(g.reshape(shape), backend=backend, device=device, dtype=dtype))
    try:
        values = f(*mesh)
    except TypeError as exc:
        raise TypeError(f"{name} must be a callable f(x, y, z) taking one coordinate array "
                        f"per axis: {exc}") from exc
    full_shape = tuple(g.size for g in grids)
    if not hasattr(values, "shape"):
        _reject_complex(np.asarray(values), name)
        values = B.asarray(np.asarray(values, dtype=float), backend=backend, device=device,
                           dtype=dtype)
    _reject_complex(values, name)
    xp = B.namespace(values)
    values = xp.broadcast_to(B.asarray(values, like=mesh[0]), full_shape)
    finite = B.to_numpy(xp.isfinite(values))
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        point = tuple(float(g[i]) for g, i in zip(grids, bad))
        raise ValueError(f"{name} returned NaN or Inf at {point}; give a function that is "
                         "finite on the whole domain (fill removable singularities, or use "
                         "the range-separated long-range part of a singular kernel)")
    if B.is_torch(values):
        return values.contiguous()
    return xp.asarray(values, copy=True) if not isinstance(values, np.ndarray) else \
        np.ascontiguousarray(values)


def _reject_complex(values, name: str) -> None:
    """``TypeError`` for complex values: casting them to real would drop the imaginary part."""
    dtype = getattr(values, "dtype", None)
    is_complex = (values.is_complex() if B.is_torch(values) else
                  dtype is not None and np.dtype(dtype).kind == "c")
    if is_complex:
        raise TypeError(f"{name} returned complex values (dtype {dtype}); the Chebyshev-Tucker "
                        "format here is real - interpolate the real and imaginary parts "
                        "separately")


class ChebTucker:
    """A function on a box in Chebyshev-Tucker form: core ``G`` and coefficient factors ``F_k``.

    Parameters
    ----------
    core : array, shape ``(r_1, ..., r_d)``
    factors : list of arrays, ``F_k`` of shape ``(n_k + 1, r_k)``
        Chebyshev coefficients (degree ``n_k``) of the ``r_k`` univariate factor functions.
    domain : sequence of (low, high)

    Attributes
    ----------
    ranks : tuple of int
    degrees : tuple of int
    nbytes : int
        Storage of core and factors.
    info : dict
        How it was built (ranks, error bound, times, decay rates, ...).

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda x, y, z: np.exp(-(x**2 + y**2 + z**2))
    >>> ct = ChebTucker.from_function(f, domain=[(-1, 1)] * 3, degree=32, rtol=1e-10)
    >>> ct.ranks
    (1, 1, 1)
    >>> pts = np.array([[0.1, 0.2, 0.3]])
    >>> bool(abs(ct(pts)[0] - np.exp(-0.14)) < 1e-10)
    True
    """

    def __init__(self, core, factors, domain):
        factors = list(factors)
        d = len(factors)
        if core.ndim != d:
            raise ValueError(f"core has {core.ndim} dimensions but {d} factors were given")
        B.namespace(core, *factors)   # TypeError on a backend mix
        for k, F in enumerate(factors):
            if F.ndim != 2 or F.shape[1] != core.shape[k]:
                raise ValueError(f"factors[{k}] must have shape (degree+1, {core.shape[k]}), "
                                 f"got {tuple(F.shape)}")
        self.core = core
        self.factors = factors
        self.domain = check_domain(domain, d)
        self.info: dict = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_function(cls, f: Callable, domain=((-1.0, 1.0),) * 3, degree=64,
                      rtol: float = 1e-8, *, ranks=None, method: str = "hosvd",
                      svd: str = "auto", max_degree: int = 256, backend: str = "numpy",
                      device=None, dtype=np.float64, seed=0):
        """Interpolate ``f`` on the Chebyshev grid and Tucker-compress its coefficients.

        Parameters
        ----------
        f : callable
            ``f(x, y, z)`` with one (broadcastable) coordinate array per axis, on
            ``backend``.  Must be finite on the box.
        domain : sequence of (low, high)
            The box, one interval per variable (2 or 3 of them).
        degree : int, sequence of int, or None
            Chebyshev degree per axis (``degree + 1`` points).  None: adaptive - doubled from
            16 until the coefficient tails fall below ``rtol`` (at most ``max_degree``),
            then chopped per axis.
        rtol : float
            Relative tolerance of the Tucker truncation (``||C - C_hat||_F <= rtol ||C||_F``
            for the coefficient tensor ``C``) and of the adaptive degree.
        ranks : int or sequence, optional
            Fixed Tucker ranks instead of ``rtol`` (each at most ``degree + 1``).
        method : {"hosvd", "hooi"}
            ST-HOSVD, or ST-HOSVD followed by HOOI refinement at the same ranks.
        svd : {"auto", "gram", "randomized", "svd"}
            Mode-factor algorithm (see :func:`lrsolve.tensors.hosvd`).
        backend, device, dtype
            Where the samples, core and factors live (``"numpy"`` or ``"torch"``, ...).

        Raises
        ------
        ValueError
            Degenerate box, NaN/Inf from ``f``, ranks above ``degree + 1``, bad ``rtol``.
        """
        start = time.perf_counter()
        box = check_domain(domain)
        d = box.shape[0]
        if d not in (2, 3):
            raise ValueError(f"domain must have 2 or 3 intervals for ChebTucker, got {d} "
                             "(use lrsolve.tensors.Chebyshev in 1-D)")
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        rtol = _check_rtol(rtol, dtype)
        if method not in ("hosvd", "hooi"):
            raise ValueError(f"method must be 'hosvd' or 'hooi', got {method!r}")
        if degree is None:
            if backend != "numpy":
                raise ValueError("degree=None (adaptive) samples with NumPy; give an integer "
                                 "degree for backend=" + repr(backend))
            C, info = adaptive_coeffs(f, box, rtol, max_degree=max_degree, name="f")
            C = B.asarray(C, backend=backend, device=device, dtype=dtype)
        else:
            degrees = _degrees(degree, d)
            values = sample_on_grid(f, box, degrees, backend=backend, device=device,
                                    dtype=dtype)
            C = vals2coeffs(values)
            info = {"samples": int(np.prod([n + 1 for n in degrees]))}
        t_sample = time.perf_counter() - start
        ct = cls.from_coeffs(C, box, rtol=rtol, ranks=ranks, method=method, svd=svd,
                             seed=seed)
        info.update(ct.info)
        info["time_sample"] = t_sample
        info["time"] = time.perf_counter() - start
        ct.info = info
        return ct

    @classmethod
    def from_coeffs(cls, C, domain, rtol: float = 1e-8, *, ranks=None, method: str = "hosvd",
                    svd: str = "auto", seed=0):
        """Tucker-compress a full Chebyshev coefficient tensor ``C`` (``C[j,k,l]`` multiplies
        ``T_j T_k T_l``)."""
        box = check_domain(domain, C.ndim)
        if ranks is not None:
            rk = (ranks,) * C.ndim if isinstance(ranks, (int, np.integer)) else tuple(ranks)
            if len(rk) != C.ndim:
                raise ValueError(f"ranks has {len(rk)} entries for {C.ndim} axes")
            for k, (r, s) in enumerate(zip(rk, C.shape)):
                if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 1:
                    raise ValueError(f"ranks[{k}] must be a positive integer, got {r!r}")
                if r > s:
                    raise ValueError(f"ranks[{k}] = {r} is larger than degree + 1 = {s} on axis "
                                     f"{k}: a Tucker rank cannot exceed the number of Chebyshev "
                                     "coefficients; raise the degree or lower the rank")
            ranks = tuple(int(r) for r in rk)
        start = time.perf_counter()
        G, factors, info = hosvd(C, ranks, rtol, svd=svd, seed=seed)
        if method == "hooi":
            G, factors, info2 = hooi(C, info["ranks"], factors, svd=svd, seed=seed)
            info["hooi_iterations"] = info2["iterations"]
        ct = cls(G, factors, box)
        ct.info = {"ranks": ct.ranks, "error_bound": info["error_bound"], "rtol": rtol,
                   "time_tucker": time.perf_counter() - start, "method": method,
                   "coeff_norm": info["norm"]} | {k: v for k, v in info.items()
                                                  if k == "hooi_iterations"}
        ct.info.update(_decay_info(B.to_numpy(C), rtol))
        return ct

    @classmethod
    def from_cp(cls, weights, factors, domain, rtol: float = 1e-8, *, rank_cap=None):
        """From a canonical (CP) coefficient tensor ``sum_r w_r F_1[:, r] o F_2[:, r] o F_3[:, r]``.

        The reduced HOSVD (RHOSVD) of Khoromskij & Khoromskaia: each factor matrix (columns
        scaled by ``|w_r|^(1/d)``) is truncated by its own SVD - no full tensor is formed -
        the CP terms are projected onto those bases to give a small core, and that core is
        recompressed by an exact HOSVD at ``rtol`` relative to its norm.  The first stage
        keeps singular values down to ``1e-2 rtol`` (relative), so its error stays well below
        the final tolerance in practice; check it on points when it matters.

        Parameters
        ----------
        weights : array (R,)
        factors : list of arrays ``(n_k + 1, R)``
            Chebyshev coefficients of the univariate CP factors on each axis.
        domain : sequence of (low, high)
        rtol : float
        rank_cap : int, optional
            Upper bound on the first-stage ranks (memory / time guard).
        """
        start = time.perf_counter()
        rtol = _check_rtol(rtol)
        factors = [np.asarray(B.to_numpy(F), dtype=float) for F in factors]
        weights = np.asarray(B.to_numpy(weights), dtype=float).reshape(-1)
        d = len(factors)
        box = check_domain(domain, d)
        R = weights.size
        for k, F in enumerate(factors):
            if F.ndim != 2 or F.shape[1] != R:
                raise ValueError(f"factors[{k}] must have shape (degree+1, {R}), got {F.shape}")
            B.check_finite(F, f"factors[{k}]")
        B.check_finite(weights, "weights")
        scale = np.abs(weights) ** (1.0 / d)
        bases, projected = [], []
        for k, F in enumerate(factors):
            M = F * scale
            # left singular vectors of the wide M from the small triangular factor of M^T
            # (QR is backward stable, unlike a Gram matrix, and skips the long V factor)
            Rk = np.linalg.qr(M.T, mode="r") if M.shape[1] > M.shape[0] else M.T
            U, s, _ = np.linalg.svd(Rk.T, full_matrices=False)
            tail = np.sqrt(np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]]))
            keep = int(np.nonzero(tail <= 1e-2 * rtol * tail[0])[0][0]) if s.size else 0
            keep = max(1, keep if rank_cap is None else min(keep, int(rank_cap)))
            bases.append(U[:, :keep])
            projected.append(U[:, :keep].T @ M)
        signs = np.sign(weights)
        core = _cp_to_full(signs, projected)
        G, Us, info = hosvd(core, None, rtol, svd="gram")
        ct = cls(G, [Bk @ Uk for Bk, Uk in zip(bases, Us)], box)
        ct.info = {"ranks": ct.ranks, "stage1_ranks": tuple(b.shape[1] for b in bases),
                   "cp_rank": R, "error_bound": info["error_bound"], "rtol": rtol,
                   "time": time.perf_counter() - start}
        return ct

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return len(self.factors)

    @property
    def ranks(self) -> tuple:
        return tuple(int(s) for s in self.core.shape)

    @property
    def degrees(self) -> tuple:
        return tuple(int(F.shape[0]) - 1 for F in self.factors)

    @property
    def nbytes(self) -> int:
        return int(sum(_nbytes(a) for a in [self.core, *self.factors]))

    def __repr__(self) -> str:
        return (f"ChebTucker(dim={self.dim}, degrees={self.degrees}, ranks={self.ranks}, "
                f"nbytes={self.nbytes}, domain={self.domain.tolist()})")

    # ------------------------------------------------------------------ evaluation
    def factor_values(self, axis: int, t):
        """The ``r_k`` factor functions of ``axis`` at coordinates ``t``: shape ``(len(t), r_k)``."""
        x = to_reference(t, self.domain[axis])
        return chebvander(x, self.degrees[axis]) @ self.factors[axis]

    def __call__(self, points, *, chunk: int = _CHUNK):
        """Values at ``points`` of shape ``(m, d)``; returns shape ``(m,)`` on the format's backend.

        Points outside the box are extrapolated (no error), as Chebyshev series allow.
        """
        xp = B.namespace(self.core, points)
        if not hasattr(points, "shape"):
            points = B.asarray(np.asarray(points, dtype=float), like=self.core)
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(f"points must have shape (m, {self.dim}), got {tuple(points.shape)}")
        points = B.asarray(points, like=self.core)
        m = points.shape[0]
        if isinstance(self.core, np.ndarray):
            return self._eval_numpy(points)
        out = xp.empty((m,), dtype=self.core.dtype, **_dev(self.core))
        for lo in range(0, m, chunk):
            hi = min(lo + chunk, m)
            out[lo:hi] = self._eval_chunk(points[lo:hi], xp)
        return out

    def _eval_numpy(self, points):
        from ._kernels import eval_tucker3
        dtype = self.core.dtype
        X = np.empty((3, points.shape[0]), dtype=dtype)
        for k in range(self.dim):
            X[k] = to_reference(points[:, k], self.domain[k])
        factors = [np.ascontiguousarray(F, dtype=dtype) for F in self.factors]
        core = np.ascontiguousarray(self.core, dtype=dtype)
        if self.dim == 2:
            # a constant third factor (degree 0, rank 1) reuses the 3-D kernel
            X[2] = 0.0
            factors.append(np.ones((1, 1), dtype=dtype))
            core = core[:, :, None]
        out = np.empty(points.shape[0], dtype=dtype)
        r = core.shape
        eval_tucker3(X, *(np.ascontiguousarray(F.T) for F in factors),
                     np.ascontiguousarray(core.reshape(r[0] * r[1], r[2])), out)
        return out

    def _eval_chunk(self, pts, xp):
        c = pts.shape[0]
        phis = [self.factor_values(k, pts[:, k]) for k in range(self.dim)]
        r = self.ranks
        # one GEMM contracts the last axis with the core: H[p, (a, b)] = sum_c G[a,b,c] phi3[p,c]
        H = phis[-1] @ xp.reshape(self.core, (-1, r[-1])).T
        if self.dim == 2:
            return xp.sum(phis[0] * H, axis=1)
        P12 = xp.reshape(phis[0][:, :, None] * phis[1][:, None, :], (c, -1))
        return xp.sum(P12 * H, axis=1)

    def grid(self, *axes):
        """Values on the tensor grid ``axes[0] x axes[1] x ...`` (1-D coordinate arrays)."""
        if len(axes) != self.dim:
            raise ValueError(f"grid needs {self.dim} coordinate arrays, got {len(axes)}")
        phis = [self.factor_values(k, B.asarray(a, like=self.core)) for k, a in enumerate(axes)]
        return tucker_to_full(self.core, phis)

    def coefficients(self):
        """The full Chebyshev coefficient tensor (``prod(n_k + 1)`` numbers)."""
        return tucker_to_full(self.core, self.factors)

    # ------------------------------------------------------------------ calculus
    def integrate(self) -> float:
        """Integral over the box: ``core x_k (w_k^T F_k)`` with ``w_k`` = integrals of ``T_j``."""
        out = self.core
        for k in range(self.dim - 1, -1, -1):
            w = B.asarray(integral_weights(self.degrees[k], self.domain[k]), like=self.core)
            v = w @ self.factors[k]
            out = B.namespace(out).tensordot(out, v, axes=([k], [0]))
        return float(out)

    def diff(self, axis: int) -> "ChebTucker":
        """Partial derivative along ``axis`` (differentiates that axis's factor series)."""
        if not isinstance(axis, (int, np.integer)) or not 0 <= axis < self.dim:
            raise ValueError(f"axis must be in 0..{self.dim - 1}, got {axis!r}")
        factors = list(self.factors)
        factors[axis] = chebder(factors[axis], self.domain[axis], axis=0)
        return ChebTucker(self.core, factors, self.domain)

    # ------------------------------------------------------------------ algebra
    def _check_compatible(self, other):
        if not isinstance(other, ChebTucker):
            return NotImplemented
        if other.dim != self.dim or not np.allclose(other.domain, self.domain, rtol=1e-14,
                                                     atol=0):
            raise ValueError("ChebTucker operands must live on the same domain "
                             f"({self.domain.tolist()} vs {other.domain.tolist()})")
        B.namespace(self.core, other.core)
        return True

    def add(self, other: "ChebTucker", rtol: float | None = 1e-14) -> "ChebTucker":
        """``self + other``: block-diagonal core, concatenated (zero-padded) factors, then
        recompressed to ``rtol`` (relative; None keeps the summed ranks)."""
        if self._check_compatible(other) is NotImplemented:
            raise TypeError(f"can only add a ChebTucker, got {type(other).__name__}")
        xp = B.namespace(self.core)
        deg = [max(a, b) for a, b in zip(self.degrees, other.degrees)]
        factors = [xp.concat([_pad_rows(F1, n + 1, xp), _pad_rows(F2, n + 1, xp)], axis=1)
                   for F1, F2, n in zip(self.factors, other.factors, deg)]
        r1, r2 = self.ranks, other.ranks
        core = xp.zeros(tuple(a + b for a, b in zip(r1, r2)), dtype=self.core.dtype,
                        **_dev(self.core))
        core[tuple(slice(0, a) for a in r1)] = self.core
        core[tuple(slice(a, a + b) for a, b in zip(r1, r2))] = other.core
        out = ChebTucker(core, factors, self.domain)
        if rtol is None:
            return out
        # relative to the operands, so that a - a truncates to (numerically) nothing
        reference = self.coefficient_norm() + other.coefficient_norm()
        return out.recompress(rtol, reference_norm=reference)

    def coefficient_norm(self) -> float:
        """Frobenius norm of the Chebyshev coefficient tensor (without forming it)."""
        xp = B.namespace(self.core)
        core = self.core
        for k, F in enumerate(self.factors):
            core = mode_product(core, xp.linalg.qr(F)[1], k)
        return B.norm(xp.reshape(core, (-1,)))

    def recompress(self, rtol: float = 1e-12, *, reference_norm: float | None = None
                   ) -> "ChebTucker":
        """Re-orthogonalise the factors (QR) and truncate the small core by HOSVD.

        The discarded part is at most ``rtol * reference_norm`` in the coefficient
        Frobenius norm (``reference_norm`` defaults to this function's own norm).
        """
        rtol = _check_rtol(rtol)
        xp = B.namespace(self.core)
        core = self.core
        Qs = []
        for k, F in enumerate(self.factors):
            Q, Rk = xp.linalg.qr(F)
            Qs.append(Q)
            core = mode_product(core, Rk, k)
        own = B.norm(xp.reshape(core, (-1,)))
        eff = rtol if reference_norm is None or own == 0 else rtol * reference_norm / own
        # a tolerance relative to a larger reference may fall below this core's rounding
        # floor; keep everything the precision can resolve instead of refusing
        eff = max(eff, _eps(core.dtype))
        if eff >= 1.0:
            G, Us, info = hosvd(core, (1,) * self.dim, svd="gram")
        else:
            G, Us, info = hosvd(core, None, eff, svd="gram")
        out = ChebTucker(G, [Q @ U for Q, U in zip(Qs, Us)], self.domain)
        out.info = {"ranks": out.ranks, "error_bound": info["error_bound"]}
        return out

    def scale(self, alpha: float) -> "ChebTucker":
        """``alpha * self`` (scales the core)."""
        return ChebTucker(self.core * float(alpha), list(self.factors), self.domain)

    def __add__(self, other):
        if not isinstance(other, ChebTucker):
            return NotImplemented
        return self.add(other)

    def __sub__(self, other):
        if not isinstance(other, ChebTucker):
            return NotImplemented
        return self.add(other.scale(-1.0))

    def __mul__(self, alpha):
        if isinstance(alpha, (int, float, np.floating, np.integer)) and not isinstance(alpha, bool):
            return self.scale(alpha)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, alpha):
        if isinstance(alpha, (int, float, np.floating, np.integer)) and not isinstance(alpha, bool):
            return self.scale(1.0 / alpha)
        return NotImplemented

    def __neg__(self):
        return self.scale(-1.0)


def _pad_rows(F, rows, xp):
    if F.shape[0] == rows:
        return F
    pad = xp.zeros((rows - F.shape[0], F.shape[1]), dtype=F.dtype, **_dev(F))
    return xp.concat([F, pad], axis=0)


def _cp_to_full(weights, factors):
    """``sum_r w_r a_r o b_r o c_r`` for small factor heights (the projected RHOSVD core)."""
    d = len(factors)
    R = weights.size
    if d == 2:
        return (factors[0] * weights) @ factors[1].T
    A, Bf, Cf = factors
    out = np.zeros((A.shape[0], Bf.shape[0] * Cf.shape[0]))
    # chunk the Khatri-Rao product so memory stays bounded for CP ranks in the 1e4-1e5 range
    step = max(1, 2_000_000 // max(1, Bf.shape[0] * Cf.shape[0]))
    for lo in range(0, R, step):
        hi = min(R, lo + step)
        kr = (Bf[:, None, lo:hi] * Cf[None, :, lo:hi]).reshape(-1, hi - lo)
        out += (A[:, lo:hi] * weights[lo:hi]) @ kr.T
    return out.reshape(A.shape[0], Bf.shape[0], Cf.shape[0])


def _nbytes(a) -> int:
    if B.is_torch(a):
        return a.element_size() * a.nelement()
    return int(a.nbytes)


def _dev(x):
    return {"device": x.device} if B.is_torch(x) else {}
