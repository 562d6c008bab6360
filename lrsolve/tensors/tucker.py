"""Tucker decomposition: truncated (sequential) HOSVD and HOOI, on any array backend.

``T ~ G x_1 U_1 x_2 U_2 ... x_d U_d`` with orthonormal factor matrices ``U_k`` (``n_k x r_k``)
and a core ``G`` (``r_1 x ... x r_d``).  Everything is written against the array namespace
of the input (NumPy, torch, CuPy via :mod:`lrsolve.backend`), so a torch tensor on a GPU
is decomposed on that GPU and the factors come back on it.

Mode factors (``svd=``):

* ``"gram"`` - eigen-decomposition of the mode Gram matrix ``A A^T`` (``n_k x n_k``);
  cheap when ``n_k`` is much smaller than the other dimensions.  The Gram matrix only
  resolves singular values above ``sqrt(eps) ||A||``, so for tighter tolerances the tail
  is measured on the projected rows ``U^T A`` instead (no cancellation), which keeps the
  truncation rule exact down to rounding level;
* ``"randomized"`` - adaptive randomized range finder (Gaussian test matrix, block
  growth until the directly measured residual meets the tolerance); for large modes;
* ``"svd"`` - the full thin SVD of the unfolding (the naive reference, used by benchmarks);
* ``"auto"`` - ``"gram"`` when the Gram eigenvalues can decide the truncation (fixed
  ranks on modes up to 512, or tolerances above ~``sqrt(1e3 n eps)``); otherwise
  ``"randomized"`` (``"svd"`` for tiny unfoldings).

Truncation to a relative tolerance follows the HOSVD bound: each mode may discard
``rtol ||T|| / sqrt(d)`` (Frobenius), so ``||T - T_hat|| <= rtol ||T||``.  With
``sequential=True`` (the default; ST-HOSVD) each mode is computed on the tensor already
projected onto the previous factors, so only the first mode touches the full tensor.
"""
from __future__ import annotations

import math
import numbers
import time

import numpy as np

from .. import backend as B
from ..result import Result, Status
from ..seeding import as_generator

__all__ = ["tucker", "TuckerResult", "hosvd", "hooi", "tucker_to_full", "mode_product",
           "unfold", "tucker_error"]


class TuckerResult(Result):
    """Outcome of :func:`tucker`: ``T ~ core x_1 factors[0] ... x_d factors[d-1]``.

    Unpacks as ``G, factors = tucker(...)``.

    Attributes
    ----------
    core : array, shape ``ranks``
    factors : list of arrays, ``(n_k, r_k)`` with orthonormal columns
    ranks : tuple of int
    error_bound : float
        Relative Frobenius bound from the truncated HOSVD's discarded energy
        (``<= rtol`` when the ranks were chosen by ``rtol``); rounding adds about
        ``eps`` of the working precision on top.
    error : float or None
        HOOI's relative error estimate (``None`` for ``method="hosvd"``).
    status : Status
        ``CONVERGED`` (HOSVD, or HOOI whose core norm settled), ``MAXITER`` (HOOI ran
        ``maxiter`` sweeps without settling).
    iterations : int
        HOOI sweeps (0 for HOSVD); ``history`` the relative error after each sweep.
    stats : dict
        Everything else measured (``svd``, ``norm``, ``method``, ``time_hosvd``, ...).
    """

    _unpack = ("core", "factors")

    def __init__(self, core, factors, *, status, iterations, history, time, ranks,
                 error_bound, error=None, stats=None):
        super().__init__(status=status, iterations=iterations, history=history, time=time)
        self.core, self.factors = core, list(factors)
        self.ranks = tuple(int(r) for r in ranks)
        self.error_bound = float(error_bound)
        self.error = None if error is None else float(error)
        self.stats = {} if stats is None else stats

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"TuckerResult(ranks={self.ranks}, error_bound={self.error_bound:.3g}, "
                f"status={self.status.value}, iterations={self.iterations})")

_SVD_METHODS = ("auto", "gram", "randomized", "svd")


def unfold(T, mode: int):
    """Mode-``mode`` unfolding ``n_mode x prod(other dims)`` (other axes in their order)."""
    xp = B.namespace(T)
    return xp.reshape(xp.moveaxis(T, mode, 0), (T.shape[mode], -1))


def _fold(M, mode: int, shape):
    xp = B.namespace(M)
    rest = tuple(s for k, s in enumerate(shape) if k != mode)
    return xp.moveaxis(xp.reshape(M, (M.shape[0],) + rest), 0, mode)


def mode_product(T, M, mode: int):
    """``T x_mode M``: multiply mode ``mode`` of ``T`` by the matrix ``M`` (``p x n_mode``).

    Examples
    --------
    >>> T = np.ones((2, 3, 4))
    >>> mode_product(T, np.ones((5, 3)), 1).shape
    (2, 5, 4)
    """
    xp = B.namespace(T, M)
    return xp.moveaxis(xp.tensordot(M, T, axes=([1], [mode])), 0, mode)


def tucker_to_full(G, factors):
    """The full tensor ``G x_1 U_1 ... x_d U_d``.

    Examples
    --------
    >>> G = np.ones((1, 1)); U = [np.ones((2, 1)), np.ones((3, 1))]
    >>> tucker_to_full(G, U)
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """
    out = G
    for k, U in enumerate(factors):
        out = mode_product(out, U, k)
    return out


def tucker_error(T, G, factors) -> float:
    """Relative Frobenius error ``||T - full(G, factors)|| / ||T||`` (forms the full tensor)."""
    xp = B.namespace(T)
    diff = T - tucker_to_full(G, factors)
    nt = float(xp.linalg.vector_norm(xp.reshape(T, (-1,))))
    nd = float(xp.linalg.vector_norm(xp.reshape(diff, (-1,))))
    return nd / nt if nt > 0 else nd


def _fro(A) -> float:
    return B.norm(B.namespace(A).reshape(A, (-1,)))


def _truncation_rank(tail_sq, tol_abs: float) -> int:
    """Smallest ``r >= 1`` whose discarded energy ``sum_{i >= r} tail_sq[i]`` is ``<= tol^2``.

    ``tail_sq`` holds per-direction energies in decreasing-importance order.
    """
    energies = np.asarray(tail_sq, dtype=float)
    # tails[r] = energy discarded when keeping r directions; tails[n] = 0
    tails = np.concatenate([np.cumsum(energies[::-1])[::-1], [0.0]])
    ok = np.nonzero(tails <= tol_abs ** 2)[0]
    return max(1, int(ok[0]))


def _row_energy(Bm):
    xp = B.namespace(Bm)
    return B.to_numpy(xp.sum(Bm * Bm, axis=1)).astype(float)


def _gram_eigh(A):
    """Eigenvectors of ``A A^T`` in decreasing eigenvalue order and the clipped eigenvalues."""
    xp = B.namespace(A)
    evals, evecs = xp.linalg.eigh(A @ A.T)
    evecs = xp.flip(evecs, axis=1)
    lam = np.clip(B.to_numpy(xp.flip(evals, axis=0)).astype(float), 0.0, None)
    return evecs, lam


def _gram_basis(A, tol_abs, levels=3):
    """Orthogonal basis ``U`` (all ``n`` columns) and rows ``U^T A``, ordered by energy.

    The Gram matrix resolves eigenvalues only down to ~``n eps ||A||^2``.  The rows of
    ``U^T A`` beyond that level are exact numbers but span the small-singular-value
    subspace in a scrambled basis; when that block still carries energy above the
    tolerance it is rotated again by its own (now well-scaled) Gram matrix.
    """
    xp = B.namespace(A)
    n = A.shape[0]
    evecs, lam = _gram_eigh(A)
    rows = evecs.T @ A
    noise = 1e3 * n * np.finfo(float).eps * (lam[0] if lam.size else 0.0)
    p = int(np.count_nonzero(lam > noise))
    energy = _row_energy(rows)
    if levels > 1 and 0 < p < n and float(energy[p:].sum()) > 1e-4 * tol_abs ** 2:
        U2, rows2, _ = _gram_basis(rows[p:], tol_abs, levels - 1)
        evecs = xp.concat([evecs[:, :p], evecs[:, p:] @ U2], axis=1)
        rows = xp.concat([rows[:p], rows2], axis=0)
        energy = _row_energy(rows)
    order = np.argsort(-energy, kind="stable")
    if np.any(order != np.arange(n)):
        idx = B.asarray(order, like=evecs, dtype=np.int64)
        evecs, rows, energy = evecs[:, idx], rows[idx], energy[order]
    return evecs, rows, energy


def _factor_gram(A, rank, tol_abs):
    """Leading left singular vectors of ``A`` via ``eigh(A A^T)``; returns ``(U, U^T A, tail)``."""
    n = A.shape[0]
    if rank is not None:
        evecs, lam = _gram_eigh(A)
        U = evecs[:, :rank]
        return U, U.T @ A, math.sqrt(float(lam[rank:].sum()))
    evecs, lam = _gram_eigh(A)
    total = float(lam.sum())
    # The Gram eigenvalues carry absolute errors ~ n eps ||A||^2: trust their tail sums
    # only when the tolerance is far above that; otherwise measure the tail on U^T A.
    if tol_abs ** 2 > 1e3 * n * np.finfo(float).eps * max(total, 1e-300):
        r = _truncation_rank(lam, tol_abs)
        U = evecs[:, :r]
        return U, U.T @ A, math.sqrt(float(lam[r:].sum()))
    U, rows, energy = _gram_basis(A, tol_abs)
    r = _truncation_rank(energy, tol_abs)
    return U[:, :r], rows[:r], math.sqrt(float(energy[r:].sum()))


def _factor_svd(A, rank, tol_abs):
    xp = B.namespace(A)
    U, s, Vh = xp.linalg.svd(A, full_matrices=False)
    s_np = B.to_numpy(s).astype(float)
    r = rank if rank is not None else _truncation_rank(s_np ** 2, tol_abs)
    return U[:, :r], s[:r, None] * Vh[:r], math.sqrt(float((s_np[r:] ** 2).sum()))


def _factor_randomized(A, rank, tol_abs, rng, oversample=10, power=1):
    """Adaptive randomized range finder with a directly measured residual."""
    xp = B.namespace(A)
    n, m = A.shape
    p = min(n, m, (rank + oversample) if rank is not None else 16)
    while True:
        omega = B.asarray(rng.standard_normal((m, p)), like=A)
        Y = A @ omega
        for _ in range(power):
            Y, _ = xp.linalg.qr(Y)
            Y = A @ (A.T @ Y)
        Q, _ = xp.linalg.qr(Y)
        Bm = Q.T @ A
        resid = _fro(A - Q @ Bm)
        Ub, s, Vh = xp.linalg.svd(Bm, full_matrices=False)
        s_np = B.to_numpy(s).astype(float)
        if rank is not None:
            r = min(rank, s_np.size)
            break
        tail_sq = np.concatenate([s_np ** 2, [resid ** 2]])
        r = _truncation_rank(tail_sq, tol_abs)
        # accept when the kept directions do not need the unseen residual part
        if r <= s_np.size and resid <= tol_abs or p >= min(n, m):
            r = min(r, s_np.size)
            break
        p = min(n, m, 2 * p)
    U = Q @ Ub[:, :r]
    tail = math.sqrt(float((s_np[r:] ** 2).sum()) + resid ** 2)
    return U, s[:r, None] * Vh[:r], tail


def _gram_resolves(A, tol_abs) -> bool:
    """Whether the Gram eigenvalues of ``A`` can decide a truncation at ``tol_abs``.

    Their absolute errors are ~``n eps ||A||^2``; below that the tail sums are noise.
    """
    n = A.shape[0]
    return tol_abs ** 2 > 1e3 * n * np.finfo(float).eps * _fro(A) ** 2


def _mode_factor(A, rank, tol_abs, method, rng):
    n, m = A.shape
    if method == "auto":
        if rank is not None:
            method = "randomized" if (n > 512 and rank < n // 4) else "gram"
        elif _gram_resolves(A, tol_abs):
            method = "gram"
        else:
            # below sqrt(eps): the range finder measures its residual directly, which is
            # cheaper than the two-level Gram rotation and as exact
            method = "randomized" if min(n, m) > 24 else "svd"
    if method == "gram":
        return _factor_gram(A, rank, tol_abs)
    if method == "svd":
        return _factor_svd(A, rank, tol_abs)
    return _factor_randomized(A, rank, tol_abs, rng)


def _check_tensor(T, name="T"):
    if not hasattr(T, "shape") or not hasattr(T, "dtype"):
        raise TypeError(f"{name} must be an array (NumPy, torch or CuPy), got {type(T).__name__}")
    if len(T.shape) < 2:
        raise ValueError(f"{name} must have at least 2 dimensions, got shape {tuple(T.shape)}")
    if B.is_torch(T):
        if not T.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {T.dtype}")
    elif np.dtype(T.dtype).kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {T.dtype}")
    B.check_finite(T, name)


def _check_ranks(ranks, shape, name="ranks"):
    if ranks is None:
        return None
    if isinstance(ranks, (int, np.integer)) and not isinstance(ranks, bool):
        ranks = (int(ranks),) * len(shape)
    ranks = tuple(ranks)
    if len(ranks) != len(shape):
        raise ValueError(f"{name} has {len(ranks)} entries for a tensor with {len(shape)} modes")
    for k, (r, n) in enumerate(zip(ranks, shape)):
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
            raise TypeError(f"{name}[{k}] must be an integer, got {r!r}")
        if r < 1:
            raise ValueError(f"{name}[{k}] must be >= 1, got {r}")
        if r > n:
            raise ValueError(f"{name}[{k}] = {r} exceeds the mode size {n}")
    return tuple(int(r) for r in ranks)


def _eps(dtype=None) -> float:
    """Machine epsilon of a NumPy / torch floating dtype (float64 when unknown)."""
    text = str(dtype)
    if "float32" in text or "complex64" in text:
        return float(np.finfo(np.float32).eps)
    if "float16" in text or "bfloat16" in text:
        return float(np.finfo(np.float16).eps)
    return float(np.finfo(np.float64).eps)


def _check_rtol(rtol, dtype=None, name: str = "rtol", attainable: bool = True):
    """``rtol`` as a float in ``[eps(dtype), 1)``; ``ValueError`` naming what is attainable.

    A relative accuracy below the working precision's epsilon cannot be certified (the
    rounding of the data alone is that large), so it is refused rather than reported as
    met with an error bound of 0.
    """
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (0 < rtol < 1):
        raise ValueError(f"{name} must be a number in (0, 1), got {rtol!r}")
    floor = _eps(dtype)
    if attainable and float(rtol) < floor:
        raise ValueError(f"{name}={float(rtol):g} is below what {_dtype_name(dtype)} can "
                         f"attain: its rounding alone is about eps = {floor:.3g} relative; "
                         f"use {name} >= {floor:.3g}")
    return float(rtol)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "") if dtype is not None else "float64"


def hosvd(T, ranks=None, rtol: float = 1e-8, *, svd: str = "auto", sequential: bool = True,
          seed=0):
    """Truncated HOSVD of ``T`` to fixed ``ranks`` or to a relative tolerance.

    Parameters
    ----------
    T : array, d >= 2 dimensions
        NumPy, torch or CuPy; results on the same backend and device.
    ranks : int or sequence of int, optional
        Fixed multilinear ranks; when given, ``rtol`` is ignored.
    rtol : float
        Relative Frobenius tolerance: ``||T - T_hat|| <= rtol ||T||`` (each mode discards
        at most ``rtol ||T|| / sqrt(d)``).
    svd : {"auto", "gram", "randomized", "svd"}
        How each mode factor is found (module docstring).
    sequential : bool
        ST-HOSVD (project after each mode) - same bound, much less work.
    seed : int or numpy.random.Generator
        For the randomized range finder.

    Returns
    -------
    G, factors, info
        ``info``: ``ranks``, ``error_bound`` (relative, from the discarded energies),
        ``time``, ``svd``.

    Examples
    --------
    >>> x = np.linspace(0, 1, 20)
    >>> T = np.add.outer(np.add.outer(x, x), x)          # x + y + z: ranks 2
    >>> G, U, info = hosvd(T, rtol=1e-10)
    >>> info["ranks"]
    (2, 2, 2)
    """
    _check_tensor(T)
    shape = tuple(T.shape)
    ranks = _check_ranks(ranks, shape)
    # with fixed ranks rtol is not used, so only its type and range are checked
    rtol = _check_rtol(rtol, T.dtype, attainable=ranks is None)
    if svd not in _SVD_METHODS:
        raise ValueError(f"svd must be one of {_SVD_METHODS}, got {svd!r}")
    rng = as_generator(seed)
    start = time.perf_counter()
    d = len(shape)
    norm_t = _fro(T)
    tol_abs = rtol * norm_t / math.sqrt(d)
    factors, tails = [], []
    work = T
    for k in range(d):
        A = unfold(work if sequential else T, k)
        U, Bm, tail = _mode_factor(A, None if ranks is None else ranks[k], tol_abs, svd, rng)
        factors.append(U)
        tails.append(tail)
        if sequential:
            work = _fold(Bm, k, work.shape)
    if sequential:
        G = work
    else:
        G = T
        for k, U in enumerate(factors):
            G = mode_product(G, U.T, k)
    bound = math.sqrt(sum(t * t for t in tails)) / norm_t if norm_t > 0 else 0.0
    info = {"ranks": tuple(int(U.shape[1]) for U in factors), "error_bound": bound,
            "time": time.perf_counter() - start, "svd": svd, "sequential": sequential,
            "norm": norm_t}
    return G, factors, info


def hooi(T, ranks, factors=None, *, maxiter: int = 50, rtol: float = 1e-10, svd: str = "auto",
         seed=0):
    """Higher-order orthogonal iteration (Tucker-ALS) at fixed ``ranks``.

    Starts from ``factors`` (default: the truncated HOSVD) and, mode by mode, replaces
    ``U_k`` by the leading left singular vectors of ``T`` projected on all other factors,
    until the core norm changes by less than ``rtol`` (relative).

    Returns
    -------
    G, factors, info
        ``info``: ``ranks``, ``iterations``, ``converged``, ``error`` (relative, from
        ``||T||^2 - ||G||^2``; accurate to about ``sqrt(eps)``), ``history``, ``time``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T = np.einsum("ia,ja,ka->ijk", *(rng.standard_normal((8, 2)) for _ in range(3)))
    >>> G, U, info = hooi(T, (2, 2, 2))
    >>> info["error"] < 1e-6
    True
    """
    _check_tensor(T)
    shape = tuple(T.shape)
    ranks = _check_ranks(ranks, shape)
    if ranks is None:
        raise ValueError("ranks must be given for hooi (use tucker(T, rtol=...) to choose them)")
    if isinstance(maxiter, bool) or not (isinstance(maxiter, (int, np.integer)) and maxiter >= 0):
        raise ValueError(f"maxiter must be a non-negative integer, got {maxiter!r}")
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (0 <= rtol < 1):
        raise ValueError(f"rtol must be a number in [0, 1), got {rtol!r}")
    start = time.perf_counter()
    xp = B.namespace(T)
    if factors is None:
        _, factors, _ = hosvd(T, ranks, svd=svd, seed=seed)
    else:
        factors = list(factors)
        if len(factors) != len(shape):
            raise ValueError(f"factors has {len(factors)} matrices for {len(shape)} modes")
        for k, (U, n, r) in enumerate(zip(factors, shape, ranks)):
            if tuple(U.shape) != (n, r):
                raise ValueError(f"factors[{k}] has shape {tuple(U.shape)}, expected {(n, r)}")
    factors = list(factors)
    norm_t = _fro(T)
    d = len(shape)
    history = []
    converged = False
    prev = None
    it = 0
    G = None
    for it in range(1, maxiter + 1):
        for k in range(d):
            Y = T
            for j in range(d):
                if j != k:
                    Y = mode_product(Y, factors[j].T, j)
            Yk = unfold(Y, k)
            U, s, _ = xp.linalg.svd(Yk, full_matrices=False)
            factors[k] = U[:, :ranks[k]]
        G = mode_product(Y, factors[d - 1].T, d - 1)
        gnorm = _fro(G)
        err = math.sqrt(max(norm_t ** 2 - gnorm ** 2, 0.0)) / norm_t if norm_t > 0 else 0.0
        history.append(err)
        if prev is not None and abs(gnorm - prev) <= rtol * max(gnorm, 1e-300):
            converged = True
            break
        prev = gnorm
    if G is None:
        G = T
        for k, U in enumerate(factors):
            G = mode_product(G, U.T, k)
        gnorm = _fro(G)
        history.append(math.sqrt(max(norm_t ** 2 - gnorm ** 2, 0.0)) / max(norm_t, 1e-300))
    info = {"ranks": ranks, "iterations": it, "converged": converged, "error": history[-1],
            "history": history, "time": time.perf_counter() - start}
    return G, factors, info


def tucker(T, ranks=None, *, rtol: float = 1e-8, method: str = "hooi", svd: str = "auto",
           maxiter: int = 50, seed=0) -> TuckerResult:
    """Tucker decomposition ``T ~ G x_1 U_1 ... x_d U_d`` to given ranks or a relative tolerance.

    Parameters
    ----------
    T : array (NumPy, torch or CuPy), d >= 2 dimensions, real floating point
    ranks : int or sequence of int, optional
        Multilinear ranks.  If None, they are chosen by the truncated HOSVD so that
        ``||T - T_hat|| <= rtol ||T||``; HOOI then refines the factors at those ranks (it
        never increases the error).
    rtol : float
        Relative Frobenius tolerance (used when ``ranks`` is None), at least the machine
        epsilon of ``T``'s dtype (a smaller one cannot be certified and is refused).
    method : {"hooi", "hosvd"}
        ``"hosvd"``: sequentially truncated HOSVD only; ``"hooi"``: plus ALS refinement.
    svd : {"auto", "gram", "randomized", "svd"}
        Mode-factor algorithm (see :func:`hosvd`).
    maxiter : int
        HOOI sweeps.
    seed : int or numpy.random.Generator

    Returns
    -------
    TuckerResult
        ``G, factors = tucker(...)`` unpacks it; ``.core``, ``.factors``, ``.ranks``,
        ``.error_bound``, ``.error``, ``.status``, ``.iterations``, ``.time``, ``.stats``.

    Raises
    ------
    ValueError
        Unknown ``method``, ``rtol`` outside ``[eps, 1)``, ranks < 1 or larger than a mode,
        NaN/Inf in ``T``.
    TypeError
        Complex or integer ``T``.

    Examples
    --------
    >>> x = np.linspace(-1, 1, 30)
    >>> T = np.exp(-np.add.outer(np.add.outer(x**2, x**2), x**2))   # rank (1, 1, 1)
    >>> G, factors = tucker(T, rtol=1e-10, method="hosvd")
    >>> G.shape
    (1, 1, 1)
    >>> tucker(T, rtol=1e-10).ranks
    (1, 1, 1)
    """
    if method not in ("hooi", "hosvd"):
        raise ValueError(f"method must be 'hooi' or 'hosvd', got {method!r}")
    start = time.perf_counter()
    G, factors, info = hosvd(T, ranks, rtol, svd=svd, seed=seed)
    stats = {"method": method, "svd": svd, "norm": info["norm"], "time_hosvd": info["time"]}
    status, iterations, history, error = Status.CONVERGED, 0, [], None
    if method == "hooi" and maxiter > 0:
        G, factors, info2 = hooi(T, info["ranks"], factors, maxiter=maxiter, svd=svd, seed=seed)
        status = Status.CONVERGED if info2["converged"] else Status.MAXITER
        iterations, history, error = info2["iterations"], info2["history"], info2["error"]
    return TuckerResult(G, factors, status=status, iterations=iterations, history=history,
                        time=time.perf_counter() - start, ranks=info["ranks"],
                        error_bound=info["error_bound"], error=error, stats=stats)
