"""Robust alternating minimisation for low-rank matrix completion.

Gu, Song, Yin, Zhang, "Low Rank Matrix Completion via Robust Alternating Minimization
in Nearly Linear Time", ICLR 2024 (arXiv 2302.11068).  The outer loop is the AltMin of
Jain, Netrapalli, Sanghavi (STOC 2013): initialise from the top-k singular subspace of
the rescaled observed matrix, clip large entries for incoherence, then alternate
least-squares updates of V (U fixed, orthonormal) and U (V fixed, orthonormal).  The
contribution of Gu et al. is that the per-row regressions may be solved *approximately*
by a sketching-based solver in ``O~(|Omega_j| k)`` time and AltMin still converges
linearly, giving ``O~(|Omega| k)`` per sweep.  Both the sketch solver and the exact
batched normal equations (the reference) live in :mod:`._rowsolve`.

Deviations from the analysed algorithm, all standard in practice: no sample splitting
(every sweep uses all observations), and the free factor is warm-started from the
previous iterate expressed in the new basis (free: ``X = U V^T`` is unchanged by the
re-orthonormalisation).  On the numba engine the sketch solver also keeps each row's
preconditioner across sweeps (:class:`PreconditionerStore`, ``reuse=True``): the solves
are still checked to ``inner_rtol`` every sweep, only the preconditioner is lagged.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from .. import backend as bk
from ..result import Result, Status
from ..seeding import as_generator
from ..sketch import SKETCHES, make_sketch
from ._observations import GroupLayout, validate_entries, validate_observations
from ._rowsolve import Ops, solve_chunk

__all__ = ["altmin", "predict", "CompletionResult"]

SOLVERS = ("sketch", "exact")


class CompletionResult(Result):
    """Outcome of :func:`altmin`: factors ``U``, ``V`` with ``M ~ U @ V.T`` (unpacks as ``U, V``).

    Attributes
    ----------
    U : array, (m, k)
    V : array, (n, k)
        Balanced factors on the backend and dtype of ``values``.
    status : Status
        ``CONVERGED`` (training residual <= ``rtol``), ``STAGNATION`` (a sweep lowered the
        residual by less than ``stall``: the noise level or rounding floor was reached -
        not a convergence to ``rtol``), ``MAXITER`` or ``NONFINITE``.
    iterations : int
        Sweeps done.
    history : dict of lists
        Per sweep: ``time`` (cumulative seconds, init included), ``train_rel_residual``,
        ``inner_iterations``; with ``test``: ``test_rmse``, ``test_rel_error``; with kept
        preconditioners: ``mean_inner_iterations``, ``refreshed_fraction``.
    train_rel_residual : float
        ``||P_Omega(U V^T - M)|| / ||P_Omega(M)||`` after the last sweep.
    stats : dict
        ``init_time``, ``solver``, ``sketch``, ``sketch_size``, ``rank``, ``reg``, ``mu``,
        ``clipped``, ``values_scale`` (the power of two the values were divided by).
    """

    _unpack = ("U", "V")

    def __init__(self, U, V, *, status, iterations, history, time, stats, detail="",
                 train_rel_residual=float("nan")):
        super().__init__(status=status, iterations=iterations, history=history, time=time,
                         detail=detail)
        self.U, self.V = U, V
        self.stats = stats
        self.train_rel_residual = float(train_rel_residual)

    @property
    def sweeps(self) -> int:
        return self.iterations

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"CompletionResult(status={self.status.value}, sweeps={self.iterations}, "
                f"train_rel_residual={self.train_rel_residual:.3e}, time={self.time:.3g}s)")


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_nonneg_float(value, name, positive=False):
    try:
        v = float(value)
    except Exception:
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return v


def _qr(ops, X):
    if ops.torch:
        return ops.t.linalg.qr(X)
    return np.linalg.qr(X)


def _sparse_torch(obs, transpose=False, scale=1.0):
    """The observed matrix (or its transpose) as a torch sparse CSR matrix times ``scale``
    (NumPy takes the CSR structure the group layouts already hold)."""
    import warnings
    import torch
    r, c = (obs.cols, obs.rows) if transpose else (obs.rows, obs.cols)
    shape = obs.shape[::-1] if transpose else obs.shape
    idx = torch.as_tensor(np.vstack([r, c]), device=obs.device)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on every build
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_coo_tensor(idx, obs.values * scale, shape,
                                       check_invariants=False).coalesce().to_sparse_csr()


def _top_subspace(ops, M, Mt, k, rng, power_iters=4):
    """Top-k left singular vectors of sparse ``M`` by randomized subspace iteration.

    Halko, Martinsson, Tropp (2011), Alg. 4.4; only ``M @ X`` and ``M.T @ X`` are used,
    so the cost is ``O(|Omega| (k + p))`` per pass.
    """
    n = Mt.shape[0]
    width = min(k + max(10, k // 2), min(M.shape))
    G = rng.standard_normal((n, width))
    G = bk.asarray(G, backend="torch" if ops.torch else "numpy", dtype=ops.dtype,
                   device=ops.device)
    Y = M @ G
    for _ in range(power_iters):
        Q, _ = _qr(ops, Y)
        Z, _ = _qr(ops, Mt @ Q)
        Y = M @ Z
    Q, _ = _qr(ops, Y)
    Bt = Mt @ Q                                     # (n, width) = (Q^T M)^T
    if ops.torch:
        Ub, _, _ = ops.t.linalg.svd(Bt.T, full_matrices=False)
    else:
        Ub, _, _ = np.linalg.svd(Bt.T, full_matrices=False)
    return Q @ Ub[:, :k]


def _clip(ops, U, mu):
    """JNS clipping: zero entries above ``2 mu sqrt(k/m)``, re-orthonormalise.

    With ``mu=None`` the incoherence is estimated robustly from the 99th percentile of
    the row norms (``||U_i|| <= mu sqrt(k/m)`` for an incoherent subspace), so only
    rows that stick out of the bulk - the ones heavy sampling of a row creates - are
    clipped.
    """
    m, k = U.shape
    rownorm = bk.to_numpy((U * U).sum(1)) ** 0.5
    if mu is None:
        mu = max(1.0, float(np.quantile(rownorm, 0.99)) * math.sqrt(m / k))
    threshold = 2.0 * mu * math.sqrt(k / m)
    big = abs(U) > threshold
    clipped = int(big.sum())
    if clipped:
        U = U * ~big if ops.torch else np.where(big, 0.0, U)
    Q, _ = _qr(ops, U)
    return Q, float(mu), clipped


def _use_kernel(ops, engine, solver, sketch, dtype):
    if engine == "batched" or ops.torch or np.dtype(dtype) != np.float64:
        return False
    return solver == "exact" or sketch == "countsketch"


class PreconditionerStore:
    """Per-row preconditioners kept across sweeps for one half-step (one layout).

    The design of row ``j`` is ``A_j = F[Omega_j]``; between sweeps the fixed factor ``F``
    changes by a change of basis (balancing, ``F_new ~ F_ref T``) plus a small change of
    its column space once AltMin is converging.  The factors ``C_j`` are therefore stored
    in the basis of a *reference* factor ``F_ref``: each sweep the fixed factor is
    written as ``F_tilde = F T^{-1}`` with ``T = F_ref^+ F`` (``O(n k^2)`` once, not per
    row), the rows solve for ``y = T x`` with design ``F_tilde[Omega_j] ~ A_ref`` and ridge
    metric ``T^{-T} T^{-1}``, and a stored ``C_j`` stays a good preconditioner as long as
    the column space moved little.  A row whose stale factor is not good enough (CG not
    at ``inner_rtol`` after ``stale_steps`` steps) rebuilds it from its cached design.
    Memory ``O(n_rows k^2)``.
    """

    #: re-reference (and refactor every row) when ``T`` is this ill-conditioned
    MAX_COND = 1e6

    def __init__(self, n_groups, k, stale_steps):
        self.C = np.empty((n_groups, k, k))                # valid where have > 0
        self.have = np.zeros(n_groups, dtype=np.uint8)
        self.fails = np.zeros(n_groups, dtype=np.int64)     # back-off state, see the kernel
        self.skip = np.zeros(n_groups, dtype=np.int64)
        self.stale_steps = int(stale_steps)
        self.Q = None
        self.R = None
        self.refreshed = []
        self.steps = []

    def basis(self, F):
        """``(F_tilde, T, T^{-1})`` for the fixed factor ``F``; re-references when needed."""
        k = F.shape[1]
        if self.Q is not None:
            T = np.linalg.solve(self.R, self.Q.T @ F)
            if np.linalg.cond(T) < self.MAX_COND:
                Tinv = np.linalg.inv(T)
                return np.ascontiguousarray(F @ Tinv), T, Tinv
        self.Q, self.R = np.linalg.qr(F)
        if not np.all(np.isfinite(self.R)) or np.linalg.cond(self.R) >= self.MAX_COND:
            self.Q = self.R = None                       # rank-deficient F: no reference
        self.have[:] = 0
        self.fails[:] = 0
        self.skip[:] = 0
        eye = np.eye(k)
        return np.ascontiguousarray(F), eye, eye


def _floor(F):
    """Mean squared entry of the fixed factor: the scale of the jitter on thin rows."""
    return float((F * F).sum()) / max(F.shape[0], 1) / F.shape[1]


def _half_step(ops, layout, F, X_ws, *, solver, reg, rng, sketch, sketch_size,
               inner_iters, inner_rtol, engine, store=None):
    """Solve every row problem of ``layout`` with the fixed factor ``F``."""
    k = F.shape[1]
    if _use_kernel(ops, engine, solver, sketch, F.dtype):
        from . import _kernels
        from ._rowsolve import JITTER
        F = np.ascontiguousarray(F)
        X = np.empty((layout.n_groups, k))
        if solver == "exact":
            res_sq = _kernels.exact_rows(F, layout.indptr, layout.other_sorted,
                                         layout.values_sorted, X, reg, JITTER, _floor(F))
            return X, res_sq, 0
        if store is not None:
            Ft, T, Tinv = store.basis(F)
            Y0 = np.ascontiguousarray(np.asarray(X_ws, dtype=np.float64) @ T.T)
            res_sq, iters, total, refreshed = _kernels.sketch_rows_reuse(
                Ft, layout.indptr, layout.other_sorted, layout.values_sorted,
                int(rng.integers(2**31 - 1)), Y0, X, reg,
                np.ascontiguousarray(Tinv.T @ Tinv), JITTER, _floor(Ft), int(sketch_size),
                int(inner_iters), float(inner_rtol), store.C, store.have, store.stale_steps,
                store.fails, store.skip)
            store.refreshed.append(int(refreshed))
            store.steps.append(int(total))
            return X @ Tinv.T, res_sq, iters
        # One CountSketch of all observations from the shared module; restricted to the
        # observations of row j it is an independent s x |Omega_j| CountSketch.
        nnz = layout.other_sorted.size
        sk = make_sketch("countsketch", int(sketch_size), max(int(nnz), 1), seed=rng)
        res_sq, iters = _kernels.sketch_rows(
            F, layout.indptr, layout.other_sorted, layout.values_sorted,
            np.asarray(sk.rows, dtype=np.int64), np.asarray(sk.signs, dtype=np.float64),
            np.ascontiguousarray(X_ws, dtype=np.float64), X, reg, JITTER, _floor(F),
            int(sketch_size), int(inner_iters), float(inner_rtol))
        return X, res_sq, iters
    if ops.torch:
        zero = ops.t.zeros((1, k), dtype=F.dtype, device=F.device)
        F_ext = ops.t.cat([F, zero], 0)
        X = ops.t.empty((layout.n_groups, k), dtype=F.dtype, device=F.device)
    else:
        F_ext = np.vstack([F, np.zeros((1, k), dtype=F.dtype)])
        X = np.empty((layout.n_groups, k), dtype=F.dtype)
    F_rowsq = (F_ext * F_ext).sum(1)
    floor = ops.to_float(F_rowsq.sum()) / max(F.shape[0], 1) / k
    res_sq, iters = 0.0, 0
    for chunk in layout.chunks:
        x, rs, it = solve_chunk(ops, F_ext, F_rowsq, chunk, X_ws[chunk.groups], solver=solver,
                                reg=reg, floor=floor, sketch=sketch, sketch_size=sketch_size,
                                inner_iters=inner_iters, inner_rtol=inner_rtol, rng=rng)
        X[chunk.groups] = x
        res_sq += rs
        iters = max(iters, it)
    return X, res_sq, iters


def _balance(ops, F, X):
    """Balanced factors of ``F X^T``: ``(Q_F W S^{1/2}, Q_X Z S^{1/2})``.

    ``F X^T`` is unchanged; the singular values are split evenly between the sides,
    which makes a ridge on each side a nuclear-norm penalty and keeps both factors
    equally conditioned.  ``O((m + n) k^2)``.
    """
    if not ops.torch:
        # Cholesky-QR: R from the k x k Gram (one BLAS-3 pass, ~3x cheaper than a
        # Householder QR of a tall n x k factor).  F X^T is preserved exactly whatever the
        # accuracy of R (F R^{-1} (R ...) cancels); fall back to QR if a Gram is singular.
        try:
            Rf = np.linalg.cholesky(F.T @ F).T
            Rx = np.linalg.cholesky(X.T @ X).T
        except np.linalg.LinAlgError:
            Rf = Rx = None
        if Rf is not None and np.all(np.isfinite(Rf)) and np.all(np.isfinite(Rx)):
            W, s, Zt = np.linalg.svd(Rf @ Rx.T)
            root = np.sqrt(s)
            import scipy.linalg as sla
            Mf = sla.solve_triangular(Rf, W * root, lower=False)
            Mx = sla.solve_triangular(Rx, Zt.T * root, lower=False)
            return F @ Mf, X @ Mx
    Qf, Rf = _qr(ops, F)
    Qx, Rx = _qr(ops, X)
    if ops.torch:
        W, s, Zt = ops.t.linalg.svd(Rf @ Rx.T)
        root = ops.t.sqrt(s)
    else:
        W, s, Zt = np.linalg.svd(Rf @ Rx.T)
        root = np.sqrt(s)
    return (Qf @ W) * root, (Qx @ Zt.T) * root


def predict(U, V, rows, cols):
    """Entries ``(U V^T)[rows[t], cols[t]]`` of a completed matrix.

    Parameters
    ----------
    U : array, (m, k)
    V : array, (n, k)
        Factors from :func:`altmin` (NumPy or torch).
    rows, cols : array of int, (T,)
        Coordinates to evaluate.

    Returns
    -------
    array, (T,)
        On the backend of ``U``; ``O(T k)`` work, done in blocks to bound memory.

    Examples
    --------
    >>> import numpy as np, lrsolve as lr
    >>> U = np.arange(6.0).reshape(3, 2); V = np.ones((4, 2))
    >>> lr.completion.predict(U, V, np.array([0, 2]), np.array([1, 3]))
    array([1., 9.])
    """
    bk.namespace(U, V)
    if getattr(U, "ndim", 0) != 2 or getattr(V, "ndim", 0) != 2 or U.shape[1] != V.shape[1]:
        raise ValueError(f"U and V must be 2-D with the same number of columns, got "
                         f"{tuple(getattr(U, 'shape', ()))} and {tuple(getattr(V, 'shape', ()))}")
    r = bk.to_numpy(rows)
    c = bk.to_numpy(cols)
    obs = validate_entries(r, c, np.zeros(np.shape(r)[0] if np.ndim(r) else 0),
                           (U.shape[0], V.shape[0]), name="predict", check_duplicates=False)
    torch_ = bk.is_torch(U)
    if torch_:
        import torch
        r_i = torch.as_tensor(obs.rows, device=U.device)
        c_i = torch.as_tensor(obs.cols, device=U.device)
        out = torch.empty(obs.nnz, dtype=U.dtype, device=U.device)
    else:
        r_i, c_i = obs.rows, obs.cols
        out = np.empty(obs.nnz, dtype=np.result_type(U.dtype, V.dtype))
    block = max(1, (1 << 20) // max(U.shape[1], 1))
    for start in range(0, obs.nnz, block):
        sl = slice(start, start + block)
        out[sl] = (U[r_i[sl]] * V[c_i[sl]]).sum(1)
    return out


def altmin(rows, cols=None, values=None, shape=None, *, rank=10, solver="sketch",
           maxiter=100, rtol=1e-9, reg=0.0, seed=0, test=None, sketch="countsketch",
           sketch_size=None, inner_maxiter=10, inner_rtol=0.1, mu=None, stall=1e-4,
           callback=None, engine="auto", reuse=True, stale_steps=None):
    r"""Complete a low-rank matrix from observed entries by robust alternating minimisation.

    Finds ``U`` (m x k) and ``V`` (n x k) with ``U V^T`` matching the observations
    ``M[rows[t], cols[t]] = values[t]``.  Initialisation: top-``rank`` singular subspace
    of ``(m n / |Omega|) P_Omega(M)`` (randomized subspace iteration), entries clipped for
    incoherence (Jain-Netrapalli-Sanghavi).  Each sweep solves, for every column, the
    least-squares problem over its observed entries with U fixed and orthonormal, then
    for every row with V fixed.  The row problems are batched over rows of similar
    observation count and solved either exactly (batched normal equations) or, as in
    Gu-Song-Yin-Zhang, by a sketch-preconditioned CG from the warm start.

    Parameters
    ----------
    rows, cols : array of int, (|Omega|,)
        Coordinates of the observed entries; or ``rows`` a ``scipy.sparse`` matrix whose
        stored entries (explicit zeros included) are the observations, with
        ``cols``/``values`` left out.
    values : array, (|Omega|,)
        Observed values (NumPy or torch; torch in gives torch out).
    shape : (int, int)
        ``(m, n)``.
    rank : int
        Target rank ``k``, ``1 <= k < min(m, n)``.
    solver : {"sketch", "exact"}
        Per-row least-squares solver.
    maxiter : int
        Maximum number of sweeps (one V-step plus one U-step each).
    rtol : float
        Stop when ``||P_Omega(U V^T - M)|| <= rtol ||P_Omega(M)||`` (``Status.CONVERGED``).
        The values are rescaled internally by a power of two when their norm is near the
        under- / overflow range, so tiny or huge data converge as the same data at unit
        scale would.
    reg : float
        Ridge: every row problem minimises ``||A_j x - b_j||^2 + reg ||x||^2``.  The fixed
        factor is kept *balanced* (``U = Q_U W S^{1/2}``, ``V = Q_V Z S^{1/2}`` from the SVD
        of the current ``U V^T``), so the sweeps minimise ``||P_Omega(U V^T - M)||^2 +
        reg (||U||^2 + ||V||^2)``, i.e. ``2 reg`` times the nuclear norm at the optimum
        (the softImpute-ALS objective).  ``0`` (the default) suits exact recovery and then
        the iterates equal the paper's orthonormal-factor ones (a least-squares solution
        does not depend on the basis of the fixed factor).  A relative ``1e-12`` jitter
        always keeps rows with fewer than ``rank`` observations (or none) well posed.
    seed : int or numpy.random.Generator
        Randomness of the initialisation and of the sketches.
    test : (rows, cols, values), optional
        Held-out entries; their RMSE and relative error are recorded every sweep.
    sketch : str
        Sketch family from :data:`lrsolve.sketch.SKETCHES` (``"countsketch"`` costs
        ``O(|Omega_j| k)`` per row).
    sketch_size : int, optional
        Rows ``s`` of the sketch a row's preconditioner is built from.  Default: with
        ``reuse`` (see below) no sketch - the kept factor is built from the row's design
        itself, since it is built about once per run; without reuse ``4 * rank``.  Rows
        with at most ``s`` observations are always factored directly.
    inner_maxiter : int
        Maximum preconditioned CG steps per row problem (sketch solver).
    inner_rtol : float
        CG stops once the preconditioned gradient norm of every row in a chunk fell by
        this factor from the warm start - the relative accuracy the robust analysis
        asks of each solve.
    mu : float, optional
        Incoherence used by the clipping step (``None``: estimated).
    stall : float
        Also stop when a sweep lowers the training residual by a relative amount less
        than ``stall`` (noisy data: the residual plateaus at the noise level); the result
        then has ``Status.STAGNATION`` - stopped, not converged to ``rtol``.
    callback : callable, optional
        ``callback(sweep, U, V)`` after every sweep, with the current ``U V^T`` estimate.
    reuse : bool
        Sketch solver on the numba engine: keep every row's preconditioner factor across
        sweeps (``O((m + n) k^2)`` memory) and rebuild it only when it went stale.  The
        fixed factor changes between sweeps mostly by a change of basis (balancing) plus a
        column-space change that dies out as AltMin converges; the stored factors are
        carried through the basis change by one global ``k x k`` transform
        (:class:`PreconditionerStore`), so a sweep then costs a fused gather + gradient
        pass and about one CG step per row - no Gram, no factorisation.  ``False``: the
        paper's solver as such, a fresh sketch and factor per row and sweep.
    stale_steps : int, optional
        A kept factor is rebuilt (and CG restarted from its iterate) when it has not met
        ``inner_rtol`` after the steps it needed when fresh plus ``stale_steps``; default
        0 for factors of the design, 1 for sketched ones.
    engine : {"auto", "numba", "batched"}
        How rows are batched.  ``"auto"``/``"numba"``: on NumPy float64 input the exact
        solver and the CountSketch solver run fused per-row numba kernels (the design of
        a row stays in cache through sketch, factorisation and every CG step); other
        sketches, torch and float32 use ``"batched"``: rows of similar count padded into
        ``(B, L, k)`` blocks and solved with batched BLAS calls.

    Returns
    -------
    CompletionResult
        ``res.U``, ``res.V`` (balanced factors, ``M ~ U @ V.T``, on the backend and dtype of
        ``values``; ``U, V = res`` unpacks them), ``res.status``, ``res.converged``,
        ``res.reason``, ``res.iterations`` (sweeps), ``res.time``, ``res.history``
        (per-sweep lists), ``res.train_rel_residual`` and ``res.stats``.  All-zero values
        give ``U = V = 0`` at once (``CONVERGED``).

    Raises
    ------
    ValueError
        Rank not below ``min(m, n)``, indices out of range, duplicate entries, NaN/Inf
        values, bad options.
    TypeError
        Mixed backends or non-integer indices.

    Examples
    --------
    >>> import numpy as np, lrsolve as lr
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 150))
    >>> rows, cols = np.nonzero(rng.random(X.shape) < 0.3)
    >>> res = lr.completion.altmin(rows, cols, X[rows, cols], X.shape, rank=3)
    >>> U, V = res
    >>> res.converged, bool(np.linalg.norm(U @ V.T - X) < 1e-6 * np.linalg.norm(X))
    (True, True)

    References
    ----------
    Y. Gu, Z. Song, J. Yin, L. Zhang, ICLR 2024, arXiv:2302.11068.
    P. Jain, P. Netrapalli, S. Sanghavi, "Low-rank matrix completion using alternating
    minimization", STOC 2013.
    """
    t_start = time.perf_counter()
    obs = validate_observations(rows, cols, values, shape)
    m, n = obs.shape
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise ValueError(f"rank must be an int, got {rank!r}")
    rank = int(rank)
    if not 1 <= rank < min(m, n):
        raise ValueError(f"rank must satisfy 1 <= rank < min(m, n) = {min(m, n)}, got {rank}")
    if obs.nnz == 0:
        raise ValueError("values: no observed entries")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if sketch not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {sketch!r}")
    maxiter = _check_positive_int(maxiter, "maxiter")
    rtol = _check_nonneg_float(rtol, "rtol")
    reg = _check_nonneg_float(reg, "reg")
    stall = _check_nonneg_float(stall, "stall")
    inner_iters = _check_positive_int(inner_maxiter, "inner_maxiter")
    inner_rtol = _check_nonneg_float(inner_rtol, "inner_rtol")
    if not isinstance(reuse, (bool, np.bool_)):
        raise ValueError(f"reuse must be True or False, got {reuse!r}")
    if stale_steps is not None:
        stale_steps = _check_positive_int(stale_steps, "stale_steps", minimum=0)
    default_sketch = sketch_size is None
    sketch_size = 4 * rank if default_sketch else _check_positive_int(sketch_size, "sketch_size")
    if sketch_size < rank:
        raise ValueError(f"sketch_size must be >= rank = {rank}, got {sketch_size}")
    if mu is not None:
        mu = _check_nonneg_float(mu, "mu", positive=True)
    if engine not in ("auto", "numba", "batched"):
        raise ValueError(f"engine must be 'auto', 'numba' or 'batched', got {engine!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    test_obs = None
    if test is not None:
        if not isinstance(test, (tuple, list)) or len(test) != 3:
            raise ValueError("test must be a tuple (rows, cols, values)")
        test_obs = validate_entries(*test, obs.shape, name="test", check_duplicates=False)
        bk.namespace(obs.values, test_obs.values)
        test_norm = bk.norm(test_obs.values)

    rng = as_generator(seed)
    # Squares of tiny (huge) values under- (over-)flow: the residual norms would read 0
    # (inf) and a sweep could "converge" at any error.  Work with the values divided by a
    # power of four s (exact), and return U, V times sqrt(s).
    values_scale = _power_of_four_scale(bk.norm(obs.values), obs.dtype)
    if values_scale != 1.0:
        obs = dataclasses.replace(obs, values=obs.values / values_scale)
        if test_obs is not None:
            test_obs = dataclasses.replace(test_obs, values=test_obs.values / values_scale)
            test_norm = test_norm / values_scale
    factor_scale = math.sqrt(values_scale)
    if bk.norm(obs.values) == 0.0:
        return _zero_result(obs, rank, t_start, solver, reg, values_scale)
    ops = Ops(obs.backend, obs.dtype, obs.device)
    # Layouts for the two half-steps, built once: V-step groups by column, U-step by row.
    by_col = GroupLayout(obs.cols, obs.rows, obs.values, n, m, rank, backend=obs.backend,
                         device=obs.device)
    by_row = GroupLayout(obs.rows, obs.cols, obs.values, m, n, rank, backend=obs.backend,
                         device=obs.device)
    values_norm = bk.norm(obs.values)

    # Initialisation: top-k subspace of the rescaled observed matrix, then clipping.
    scale = m * n / obs.nnz
    if obs.backend == "torch":
        M = _sparse_torch(obs, scale=scale)
        Mt = _sparse_torch(obs, transpose=True, scale=scale)
    else:   # the layouts already hold the CSR structure of M (by row) and M^T (by column)
        M = by_row.csr(scale)
        Mt = by_col.csr(scale)
    U0 = _top_subspace(ops, M, Mt, rank, rng)
    Uq, mu_used, clipped = _clip(ops, U0, mu)
    V_ws = Mt @ Uq                                   # (n, k): projection as warm start
    init_time = time.perf_counter() - t_start

    history = {"sweep": [], "time": [], "train_rel_residual": [], "inner_iterations": []}
    if test_obs is not None:
        history["test_rmse"] = []
        history["test_rel_error"] = []
    store_v = store_u = None
    if reuse and solver == "sketch" and _use_kernel(ops, engine, solver, sketch, obs.dtype):
        if default_sketch:
            # a kept factor is built about once per run, so its cost is amortised over
            # all sweeps and the most accurate one - the design's own - is the cheapest
            # overall (see docs/completion.md); ``sketch_size=`` asks for a sketch instead
            sketch_size = 0
        if stale_steps is None:
            # a factor of the design needs one step when fresh; a sketched one's step
            # count varies from row to row, so it gets one step of slack
            stale_steps = 0 if sketch_size == 0 else 1
        store_v = PreconditionerStore(n, rank, stale_steps)
        store_u = PreconditionerStore(m, rank, stale_steps)
        history["mean_inner_iterations"] = []
        history["refreshed_fraction"] = []
    kw = dict(solver=solver, reg=reg, rng=rng, sketch=sketch, sketch_size=sketch_size,
              inner_iters=inner_iters, inner_rtol=inner_rtol, engine=engine)
    status, detail = Status.MAXITER, "maxiter: the sweep limit `maxiter` was reached"
    previous = math.inf
    U_fixed = Uq
    sweep = 0
    for sweep in range(1, maxiter + 1):
        V, _, it_v = _half_step(ops, by_col, U_fixed, V_ws, store=store_v, **kw)
        U_ws, V_fixed = _balance(ops, U_fixed, V)     # same U V^T, balanced sides
        U, res_sq, it_u = _half_step(ops, by_row, V_fixed, U_ws, store=store_u, **kw)
        U_fixed, V_ws = _balance(ops, U, V_fixed)
        rel = math.sqrt(res_sq) / values_norm if values_norm > 0 else math.sqrt(res_sq)
        history["sweep"].append(sweep)
        history["time"].append(time.perf_counter() - t_start)
        history["train_rel_residual"].append(rel)
        history["inner_iterations"].append(max(it_v, it_u))
        if store_u is not None:
            history["mean_inner_iterations"].append(
                (store_v.steps[-1] + store_u.steps[-1]) / (n + m))
            history["refreshed_fraction"].append(
                (store_v.refreshed[-1] + store_u.refreshed[-1]) / (n + m))
        if test_obs is not None:
            pred = predict(U_fixed, V_ws, test_obs.rows, test_obs.cols)
            err = bk.norm(pred - test_obs.values)
            history["test_rmse"].append(
                err / math.sqrt(max(test_obs.nnz, 1)) * values_scale)
            history["test_rel_error"].append(err / test_norm if test_norm > 0 else err)
        if callback is not None:
            callback(sweep, U_fixed * factor_scale, V_ws * factor_scale)
        if not math.isfinite(rel):
            status, detail = Status.NONFINITE, "nonfinite: the training residual became NaN/Inf"
            break
        if rel <= rtol:
            status, detail = Status.CONVERGED, "converged: training residual <= rtol"
            break
        if previous < math.inf and rel > (1.0 - stall) * previous:
            status = Status.STAGNATION
            detail = ("stagnation: a sweep lowered the training residual by less than "
                      "`stall` (noise level or rounding floor reached) before rtol was met")
            break
        previous = min(previous, rel)

    stats = {"init_time": init_time, "solver": solver,
             "sketch": sketch if solver == "sketch" else None,
             "sketch_size": sketch_size if solver == "sketch" else None,
             "rank": rank, "reg": reg, "mu": mu_used, "clipped": clipped,
             "values_scale": values_scale}
    if factor_scale != 1.0:
        U_fixed, V_ws = U_fixed * factor_scale, V_ws * factor_scale
    return CompletionResult(U_fixed, V_ws, status=status, iterations=sweep, history=history,
                            time=time.perf_counter() - t_start, stats=stats, detail=detail,
                            train_rel_residual=history["train_rel_residual"][-1])


def _power_of_four_scale(norm: float, dtype) -> float:
    """A power of four ``s`` with ``norm / s`` near 1 when ``norm`` is near under- / overflow."""
    eps = float(np.finfo(np.float32).eps) if "float32" in str(dtype) else \
        float(np.finfo(np.float64).eps)
    low, high = (1e-100, 1e100) if eps < 1e-10 else (1e-15, 1e15)
    if not (norm > 0.0) or not math.isfinite(norm) or low <= norm <= high:
        return 1.0
    return 4.0 ** round(math.log(norm, 4))


def _zero_result(obs, rank, t_start, solver, reg, values_scale) -> CompletionResult:
    """All observed values are zero: ``U = V = 0`` is the exact (minimum-norm) answer."""
    m, n = obs.shape
    if obs.backend == "torch":
        import torch
        U = torch.zeros((m, rank), dtype=obs.values.dtype, device=obs.values.device)
        V = torch.zeros((n, rank), dtype=obs.values.dtype, device=obs.values.device)
    else:
        U = np.zeros((m, rank), dtype=obs.values.dtype)
        V = np.zeros((n, rank), dtype=obs.values.dtype)
    history = {"sweep": [], "time": [], "train_rel_residual": [], "inner_iterations": []}
    stats = {"init_time": 0.0, "solver": solver, "sketch": None, "sketch_size": None,
             "rank": rank, "reg": reg, "mu": None, "clipped": 0, "values_scale": values_scale}
    return CompletionResult(U, V, status=Status.CONVERGED, iterations=0, history=history,
                            time=time.perf_counter() - t_start, stats=stats,
                            detail="converged: every observed value is 0, so U V^T = 0 fits "
                                   "them exactly", train_rel_residual=0.0)
