"""Sketch-based Newton with the exact augmented Lagrangian (AdaSketch-Newton).

Hong, Na, Mahoney & Kolar, "Constrained Optimization via Exact Augmented Lagrangian and
Randomized Iterative Sketching", ICML 2023 (arXiv 2305.18379).  For
``min f(x) s.t. c(x) = 0`` each iteration

1. forms the Newton–KKT system at ``(x, lam)``, with the Hessian modified
   (``B = ∇²ₓL + t I``) when the reduced Hessian is not positive definite;
2. solves it *inexactly* by randomized iterative sketching until the adaptive accuracy
   condition ``‖r‖ <= θ_k δ_k ‖(∇ₓL, c)‖`` holds (or, with ``accuracy="theory"``, the
   paper's bound divided by ``‖K‖ ψ_k``);
3. checks that the step is a descent direction of the exact augmented Lagrangian::

       L_{η1,η2}(x, lam) = f + lamᵀc + (η1/2)‖c‖² + (η2/2)‖∇ₓL‖²,
       ∇ₓ L_η = ∇ₓL + η2 ∇²ₓL ∇ₓL + η1 Gᵀc,     ∇_lam L_η = c + η2 G ∇ₓL,

   i.e. ``∇L_ηᵀ dz <= -(η2/2)‖(∇ₓL, c)‖²``; if not, raises ``η1 <- ν² η1``, lowers
   ``η2 <- η2/ν`` and tightens ``δ <- δ/ν⁴``, and continues the same inner solve;
4. backtracks (Armijo, factor 1/2) on the merit and steps in ``(x, lam)`` jointly.

Unlike the reference code the merit gradient uses ``∇²ₓL`` (not ``∇²f``), the inner
residual is updated incrementally, and Jacobians may be sparse or matrix-free.

For nonconvex problems (second round): an inertia-correcting shift counted by LDLᵀ
(``modification="inertia"``), negative curvature found by the ``nystrom`` inner solver
on large problems, negative-curvature steps out of saddle KKT points, and a
least-squares safeguard for the multipliers; none of these fires while the reduced
Hessian stays positive definite, so on convex problems the iteration is the paper's.
The result is a :class:`NewtonResult` (an ``OptimizeResult`` and an lrsolve ``Result``).
Default constants follow the reference (η1 = 1, η2 = 0.1, δ = 0.1, ξ_B = 0.1,
β = 0.1, ν = 1.5).
"""
from __future__ import annotations

import math
import numbers
import time
import warnings

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import OptimizeResult

from .. import backend as bk
from ..result import Result, Status
from ..sketch import SKETCHES, as_generator
from .kkt import INNER_SOLVERS, SOLVERS, KKTSystem, kkt_inertia
from .problem import Problem, matvec, rmatvec

__all__ = ["sketch_newton", "exact_newton", "NewtonResult", "ACCURACY_RULES", "MODIFICATIONS",
           "reduced_hessian_eigenvalues"]

ACCURACY_RULES = ("adaptive", "sharpen", "theory")
MODIFICATIONS = ("paper", "inertia")
# The integer codes of the first version, kept as ``res.status_code``.
_CODES = {Status.CONVERGED: 0, Status.MAXITER: 1, Status.LINESEARCH: 2, Status.NONFINITE: 3,
          Status.FAILED: 4, Status.BREAKDOWN: 4, Status.STAGNATION: 2, Status.INVALID: 4}


class NewtonResult(OptimizeResult, Result):
    """The result of :func:`sketch_newton`: a ``scipy.optimize.OptimizeResult`` (a dict
    with attribute access: ``x``, ``fun``, ``success``, ``nit``, ``message``, ...) that is
    also an :class:`lrsolve.result.Result`: ``converged``, ``status`` (a
    :class:`~lrsolve.result.Status`), ``reason``, ``info``, ``iterations`` (= ``nit``),
    ``history`` (the KKT residual at every iterate, = ``kkt_history``) and ``time``.

    ``success`` always equals ``converged`` and ``message`` equals ``reason``.
    """

    def __init__(self, *, status, iterations, history, time, detail="", **fields):
        OptimizeResult.__init__(self, **fields)
        Result.__init__(self, status=status, iterations=iterations, history=history,
                        time=time, detail=detail)
        self["success"] = self.converged
        self["message"] = self.reason
        self["nit"] = self.iterations
        self["status_code"] = _CODES[self.status]


class _Failure(Exception):
    """Internal: stop the outer loop with a reason."""


def _dense(A):
    if isinstance(A, np.ndarray):
        return A
    if sp.issparse(A):
        return A.toarray()
    return None


def _all_finite(A) -> bool:
    if sp.issparse(A):
        return bool(np.all(np.isfinite(A.data)))
    if isinstance(A, np.ndarray):
        return bool(np.all(np.isfinite(A)))
    return True  # an operator: checked through its products


def _as_vector(value, label: str, size: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.size == max(arr.shape) else arr
    if arr.ndim != 1:
        raise ValueError(f"{label} must be a 1-D vector, got shape {np.shape(value)}")
    if size is not None and arr.size != size:
        raise ValueError(f"{label} has length {arr.size}, expected {size}")
    return arr


class _Evaluator:
    """Calls the problem's functions at one point, counts them and checks shapes."""

    def __init__(self, problem: Problem, n: int, m: int | None = None):
        self.problem = problem
        self.n = n
        self.m = m
        self.nfev = 0
        self.njev = 0
        self.nhev = 0

    def point(self, x):
        """(f, grad, c, J) at x, validated."""
        P = self.problem
        f = float(np.asarray(P.f(x), dtype=float).reshape(()))
        g = _as_vector(P.grad(x), "grad(x)", self.n)
        c = _as_vector(P.c(x), "c(x)", self.m)
        if self.m is None:
            self.m = c.size
        J = P.jac(x)
        if not (isinstance(J, (np.ndarray, spla.LinearOperator)) or sp.issparse(J)):
            J = np.asarray(J, dtype=float)
        if isinstance(J, np.ndarray):
            J = np.asarray(J, dtype=float)
            if J.ndim == 1 and self.m == 1:
                J = J.reshape(1, -1)
        if tuple(J.shape) != (self.m, self.n):
            raise ValueError(f"jac(x) has shape {tuple(J.shape)} but c(x) has length {self.m} "
                             f"and x has length {self.n}: the Jacobian must be (m, n) = "
                             f"({self.m}, {self.n})")
        self.nfev += 1
        self.njev += 1
        return f, g, c, J


def sketch_newton(problem: Problem, x0, sketch: str = "gaussian", tol: float = 1e-6, seed=0,
                  *, inner: str = "sketch", block_size: int | None = None,
                  accuracy: str = "adaptive", maxiter: int = 200,
                  inner_maxiter: int | None = None, modification: str = "paper",
                  lam0=None, eta1: float = 1.0, eta2: float = 0.1, delta: float = 0.1,
                  xi_B: float = 0.1, beta: float = 0.1, nu: float = 1.5,
                  dense_limit: int = 1000, nystrom_rank: int = 20, callback=None,
                  max_inner: int | None = None) -> NewtonResult:
    """Solve ``min f(x) s.t. c(x) = 0`` by AdaSketch-Newton.

    Parameters
    ----------
    problem : Problem
        The objective, constraints and derivatives (see :class:`Problem`).
    x0 : array_like (n,)
        Starting point; must be finite.
    sketch : str
        Sketch family for the inner solver: ``"gaussian"``, ``"countsketch"``,
        ``"sparse-sign"``, ``"srht"`` or ``"rows"`` (randomized block Kaczmarz).
    tol : float
        Stop when the KKT residual ``‖(∇ₓL, c)‖_2 <= tol`` (an absolute tolerance on the
        first-order conditions; any positive real, NumPy scalars included).
    seed : int, Generator or None
        Randomness of the sketches.
    inner : str
        ``"sketch"`` (default, the paper's randomized iterative sketching solver),
        ``"nystrom"`` (null-space CG with a randomized Nyström preconditioner of the
        reduced Hessian; needs ``Problem(basis=...)`` or a dense Jacobian), ``"gmres"``
        (ILU-preconditioned GMRES) - all under the same accuracy condition - or
        ``"direct"`` (exact Newton, the reference variant).
    block_size : int, optional
        Rows per sketch (default ``min(16, N - 1)`` for ``N = n + m``; the paper
        used vector sketches, ``block_size=1``).
    accuracy : str
        ``"adaptive"`` (``‖r‖ <= δ_k ‖b‖``, locally linear), ``"sharpen"``
        (``‖r‖ <= δ_k min(1, ‖b‖) ‖b‖``: the accuracy sharpens with the KKT residual,
        locally superlinear) or ``"theory"`` (the paper's bound
        ``‖r‖ <= δ_k ‖b‖ / (‖K‖ ψ_k)`` with
        ``ψ = 20 max(‖B‖², 1) / (min(ξ_G, 1) min(ξ_B, 1))`` and
        ``δ_k <= (1/2 - β) η2 / ((1 + η1 + η2) Υ² ψ²)``, floored at 1e-6 as in the
        reference code; near-exact solves, needs the dense checks below).
    maxiter : int
        Outer (Newton) iterations.
    inner_maxiter : int, optional
        Budget of inner steps per Newton iteration, over all penalty-update rounds
        (default ``max(20000, 20 N)``); a capped solve is still used if it passes the
        descent test, otherwise the result fails with ``Status.FAILED``.
    modification : str
        The Hessian shift ``B = ∇²ₓL + δI`` where the reduced Hessian ``Zᵀ∇²ₓL Z`` is not
        positive definite (on convex problems it always is, and no shift is made):
        ``"paper"`` (default) - the reference rule ``δ = ξ_B + ‖∇²ₓL‖_F``;
        ``"inertia"`` - IPOPT-style inertia correction: the first ``δ`` of ``ξ_B,
        ×100, ×8, ...`` (``δ_last/3`` first after a shifted step) for which the LDLᵀ
        factorisation of ``K(δ/2)`` has inertia ``(n, m, 0)``, i.e.
        ``Zᵀ(∇²ₓL + δI)Z >= δ/2`` (dense problems up to ``dense_limit``).  In both modes:
        beyond ``dense_limit`` the ``nystrom`` inner solver detects negative curvature
        (in its sketch or a CG direction) and the shift is raised past it
        (``δ <- max(8δ, 1e-4, -2 pᵀBp/pᵀp)``); at a KKT point whose reduced Hessian has
        a negative eigenvalue (a saddle, dense check) a negative-curvature step is taken
        instead of stopping; a failed line search tries the negative-curvature
        direction, then restarts the multipliers from their least-squares estimate;
        multipliers that jump by more than 1e4x are reset to that estimate.
    lam0 : array_like (m,), optional
        Starting multipliers (default: least-squares estimate ``argmin ‖∇f + Jᵀlam‖``).
    eta1, eta2, delta, xi_B, beta, nu : float
        Penalty parameters of the merit, accuracy factor, minimum reduced-Hessian
        eigenvalue after the paper's modification, Armijo constant and update factor.
    dense_limit : int
        Up to ``n + m`` this size, ``λ_min(G Gᵀ)``, the inertia of ``K`` and the reduced
        Hessian are checked exactly (dense LDLᵀ / eigendecomposition); beyond it the
        modification is triggered by negative curvature found by the inner solver, or
        when the descent test fails with the penalties at their limits.
    nystrom_rank : int
        Sketch size (rank) of the Nyström preconditioner of ``inner="nystrom"``.
    callback : callable, optional
        ``callback(x, lam, kkt)`` after every iteration.
    max_inner : int, optional
        Deprecated name of ``inner_maxiter``.

    Returns
    -------
    NewtonResult
        A ``scipy.optimize.OptimizeResult`` and an :class:`lrsolve.result.Result`:
        ``x``, ``lam`` (also ``multipliers``), ``fun``, ``success`` (= ``converged``),
        ``status`` (:class:`~lrsolve.result.Status`: ``CONVERGED``, ``MAXITER``,
        ``LINESEARCH`` (line search / descent failure), ``NONFINITE`` (overflow, NaN),
        ``FAILED`` (inner solver or linear algebra failure)), ``status_code`` (the old
        integers 0-4), ``reason`` (= ``message``), ``nit`` (= ``iterations``), ``kkt``
        (final), ``kkt_history`` (= ``history``), ``inner_iterations`` (total),
        ``inner_history`` (per Newton step), ``alpha_history``, ``eta1``, ``eta2``,
        ``hessian_modifications``, ``negative_curvature_steps``, ``multiplier_resets``,
        ``nfev``, ``njev``, ``time``.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.nlp.hs_problem("hs28")
    >>> res = lr.optimize.sketch_newton(P.problem, P.x0, sketch="gaussian", seed=0)
    >>> res.success, res.status, bool(abs(res.fun - P.fopt) < 1e-8)
    (True, <Status.CONVERGED: 'converged'>, True)
    """
    start = time.perf_counter()
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an lrsolve.optimize.Problem, got {type(problem).__name__}")
    # The iteration runs in float64 NumPy; a torch x0 gets x and lam back as torch.
    x = np.array(bk.to_numpy(x0), dtype=float, copy=True)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x0 must be a non-empty 1-D vector, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or Inf")
    if inner not in INNER_SOLVERS:
        raise ValueError(f"inner must be one of {INNER_SOLVERS}, got {inner!r}")
    if inner == "sketch" and sketch not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {sketch!r}")
    if accuracy not in ACCURACY_RULES:
        raise ValueError(f"accuracy must be one of {ACCURACY_RULES}, got {accuracy!r}")
    if modification not in MODIFICATIONS:
        raise ValueError(f"modification must be one of {MODIFICATIONS}, got {modification!r}")
    tol = _positive_real(tol, "tol")
    if max_inner is not None:
        if inner_maxiter is not None:
            raise TypeError("give inner_maxiter only (max_inner is its deprecated name)")
        warnings.warn("max_inner is deprecated; use inner_maxiter", DeprecationWarning,
                      stacklevel=2)
        inner_maxiter = max_inner
    maxiter = _count(maxiter, "maxiter", minimum=0)
    if inner_maxiter is not None:
        inner_maxiter = _count(inner_maxiter, "inner_maxiter", minimum=1)
    if block_size is not None:
        block_size = _count(block_size, "block_size", minimum=1)
    nystrom_rank = _count(nystrom_rank, "nystrom_rank", minimum=1)
    dense_limit = _count(dense_limit, "dense_limit", minimum=0)
    eta1, eta2, delta, xi_B = (_positive_real(v, label) for v, label in
                               ((eta1, "eta1"), (eta2, "eta2"), (delta, "delta"), (xi_B, "xi_B")))
    beta, nu = _positive_real(beta, "beta"), _positive_real(nu, "nu")
    if not 0 < beta < 0.5:
        raise ValueError(f"beta must lie in (0, 1/2), got {beta!r}")
    if not nu > 1:
        raise ValueError(f"nu must exceed 1, got {nu!r}")
    rng = as_generator(seed)
    n = x.size
    ev = _Evaluator(problem, n)
    # Shapes and finiteness at x0 are the caller's responsibility: raise here, clearly.
    with np.errstate(all="ignore"):
        f, g, c, J = ev.point(x)
    m = c.size
    if not math.isfinite(f):
        raise ValueError(f"f(x0) is not finite ({f}); choose a starting point where f is defined")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(c)) and _all_finite(J)):
        raise ValueError("grad(x0), c(x0) or jac(x0) contains NaN or Inf")
    if m == 0:
        raise ValueError("c(x0) is empty: sketch_newton is for equality-constrained problems")
    basis = problem.basis
    if inner == "nystrom":
        if basis is None and isinstance(J, np.ndarray):
            # Dense Jacobian: the basis from QR with column pivoting.
            basis = np.sort(sla.qr(J, mode="r", pivoting=True)[1][:m])
        elif basis is None:
            raise ValueError("inner='nystrom' needs Problem(basis=...) for a sparse or "
                             "matrix-free Jacobian (the m variables of a nonsingular "
                             "square block of G, e.g. the PDE state)")
        if basis.size != m or basis.min() < 0 or basis.max() >= n:
            raise ValueError(f"problem.basis must hold m={m} indices in [0, {n})")
    if lam0 is None:
        lam = _least_squares_multipliers(J, g)
    else:
        lam = _as_vector(lam0, "lam0", m)
        if not np.all(np.isfinite(lam)):
            raise ValueError("lam0 contains NaN or Inf")
    N = n + m
    inner_maxiter = int(inner_maxiter or max(20000, 20 * N))
    solve = SOLVERS[inner]
    solve_kwargs = {"maxiter": inner_maxiter}
    if inner == "sketch":
        solve_kwargs.update(kind=sketch, block_size=block_size, rng=rng)
    elif inner == "gmres":
        solve_kwargs["cache"] = {}
    elif inner == "nystrom":
        solve_kwargs.update(cache={}, basis=basis, rank=nystrom_rank, rng=rng)
    inertia_mode = modification == "inertia"

    kkt_history, inner_history, alpha_history = [], [], []
    status, message = Status.MAXITER, "maximum number of Newton iterations reached"
    gL = problem.lagrangian_gradient(x, lam, g, J)
    k = 0
    modified_steps = 0
    nc_steps = 0
    lam_resets = 0
    inner_total = 0
    last_shift = 0.0
    lam_reset_tried = False
    lam_norm_prev = float(np.linalg.norm(lam))
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore",
                                                divide="ignore"):
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        try:
            while True:
                kkt = float(math.sqrt(gL @ gL + c @ c))
                kkt_history.append(kkt)
                if not math.isfinite(kkt):
                    raise _Failure(Status.NONFINITE, f"non-finite KKT residual at iteration {k}")
                H = None
                if kkt <= tol:
                    if k >= maxiter:
                        status, message = Status.CONVERGED, f"KKT residual {kkt:.2e} <= tol {tol:.1e}"
                        break
                    # A KKT point: a local minimiser only if the reduced Hessian is PSD.
                    # Where it is not (a saddle), step along negative curvature.
                    H = _hessian(problem, x, lam, ev)
                    escaped = _saddle_escape(problem, ev, x, lam, f, c, gL, H, J, n, m,
                                             dense_limit, eta1, eta2, beta)
                    if escaped is None:
                        status, message = Status.CONVERGED, f"KKT residual {kkt:.2e} <= tol {tol:.1e}"
                        break
                    x, lam, f, g, c, J, gL = escaped
                    nc_steps += 1
                    alpha_history.append(1.0)
                    inner_history.append(0)
                    k += 1
                    continue
                if k >= maxiter:
                    status = Status.MAXITER
                    message = (f"maximum number of Newton iterations ({maxiter}) reached; "
                               f"KKT residual {kkt:.2e} > tol {tol:.1e}")
                    break
                H = _hessian(problem, x, lam, ev)
                hessp = None if H is not None else (lambda v, x=x, lam=lam: problem.hessp(x, lam, v))
                HgL = matvec(H, gL) if H is not None else hessp(gL)
                if not np.all(np.isfinite(HgL)):
                    raise _Failure(Status.NONFINITE, f"the Lagrangian Hessian product is not "
                                                     f"finite at iteration {k}")
                checks = _curvature_checks(H, hessp, J, n, m, dense_limit)
                dual_reg = 0.0
                if checks is not None and checks["xi_G"] <= 1e-10 * max(1.0, checks["Gnorm"] ** 2):
                    # Rank-deficient Jacobian (e.g. HS61 at its standard start): the KKT
                    # matrix is singular; regularise the (2,2) block instead of failing.
                    dual_reg = 1e-4 * max(1.0, checks["Hnorm"])
                shift = 0.0
                nc_direction = None
                if checks is not None and checks["reduced_min"] < 1e-6:
                    if inertia_mode:
                        shift = _inertia_shift(checks, dual_reg, last_shift,
                                               xi_B + checks["Hfro"], first=xi_B)
                        nc_direction = checks["nc_direction"]
                    else:
                        # The reference's shift t = ξ_B + ‖H‖_F: the reduced Hessian of
                        # H + tI then has eigenvalues >= ξ_B.
                        shift = xi_B + checks["Hfro"]
                b = -np.concatenate([gL, c])
                bnorm = kkt
                z = np.zeros(N)
                r = b.copy()
                inner_total = 0
                K = KKTSystem(H, J, shift, hessp, dual_reg)
                consts = None
                if accuracy == "theory":
                    consts = _theory_constants(K, H, hessp, J, checks, xi_B, n, rng)
                    delta = max(1e-6, min(delta, _delta_trial(consts, beta, eta1, eta2)))
                forced_modification = False
                while True:
                    theta = min(1.0, bnorm) if accuracy == "sharpen" else 1.0
                    tol_inner = theta * delta * bnorm
                    if consts is not None:
                        tol_inner /= consts["Knorm"] * consts["psi"]
                    solve_kwargs["maxiter"] = max(1, inner_maxiter - inner_total)
                    z, r, its, reached = solve(K, b, z, r, tol_inner, **solve_kwargs)
                    inner_total += its
                    if K.negative_curvature is not None:
                        # The inner solver met negative curvature on the tangent space:
                        # raise the shift past it and solve again (large problems).
                        if nc_direction is None:
                            nc_direction = K.negative_curvature["direction"]
                        shift = max(8.0 * shift, 1e-4, -2.0 * K.negative_curvature["curvature"])
                        if shift > 1e40:
                            raise _Failure(Status.FAILED, "Hessian shift exceeded 1e40 "
                                                          f"at iteration {k}")
                        K = KKTSystem(H, J, shift, hessp, dual_reg)
                        z, r = np.zeros(N), b.copy()
                        continue
                    if not np.all(np.isfinite(z)):
                        raise _Failure(Status.FAILED, f"inner solver produced NaN/Inf at iteration {k}")
                    grad_merit = np.concatenate([gL + eta2 * HgL + eta1 * rmatvec(J, c),
                                                 c + eta2 * matvec(J, gL)])
                    slope = float(grad_merit @ z)
                    if slope <= -0.5 * eta2 * bnorm ** 2:
                        break
                    budget_spent = not reached and inner_total >= inner_maxiter
                    if eta1 > 1e8 or eta2 < 1e-8 or budget_spent:
                        if not budget_spent and not forced_modification and checks is None:
                            # Without a reduced-Hessian check, a persistent lack of descent
                            # is the sign of negative curvature: modify and solve again.
                            forced_modification = True
                            shift = xi_B + K.norm_estimate(seed=k)
                            K = KKTSystem(H, J, shift, hessp, dual_reg)
                            z, r = np.zeros(N), b.copy()
                            continue
                        if slope < 0 and reached:
                            break  # as the reference: accept; Armijo will judge it
                        if not reached:
                            raise _Failure(Status.FAILED,
                                           f"inner {inner} solver did not meet the accuracy "
                                           f"condition at iteration {k} (residual "
                                           f"{np.linalg.norm(r):.2e} > {tol_inner:.2e} after "
                                           f"{inner_total} steps, inner_maxiter={inner_maxiter}); "
                                           "the KKT system may be singular or too "
                                           "ill-conditioned for this sketch - try "
                                           "inner='nystrom', 'gmres' or 'direct', or a larger "
                                           "block_size")
                        raise _Failure(Status.LINESEARCH,
                                       f"no descent direction for the merit at iteration {k} "
                                       f"(penalties at their limits, slope {slope:.2e})")
                    # Not a descent direction (or the inner solve was capped before meeting
                    # the accuracy condition): update the penalties and tighten δ, then
                    # continue the same inner solve from where it stopped.  The limits on
                    # η1, η2 bound the number of such rounds (about 23 from the defaults).
                    eta1 *= nu ** 2
                    eta2 /= nu
                    delta = delta / nu ** 4
                    if consts is not None:
                        delta = max(1e-6, min(delta, _delta_trial(consts, beta, eta1, eta2)))
                    delta = max(delta, 1e-14)
                modified_steps += shift > 0
                last_shift = shift
                dx, dlam = z[:n], z[n:]
                merit0 = f + lam @ c + 0.5 * eta1 * (c @ c) + 0.5 * eta2 * (gL @ gL)
                accepted, alpha = _line_search(problem, ev, x, lam, dx, dlam, merit0, slope,
                                               eta1, eta2, beta)
                if accepted is None and nc_direction is not None:
                    # The Newton step failed: try the negative-curvature direction.
                    escaped = _curvature_step(problem, ev, x, lam, f, c, gL, H, hessp, J,
                                              nc_direction, eta1, eta2, beta)
                    if escaped is not None:
                        accepted, alpha = escaped, 1.0
                        nc_steps += 1
                if accepted is None and not lam_reset_tried:
                    # Multiplier safeguard: restart λ from its least-squares estimate.
                    lam_reset_tried = True
                    lam = _least_squares_multipliers(J, g)
                    gL = problem.lagrangian_gradient(x, lam, g, J)
                    lam_resets += 1
                    inner_history.append(inner_total)
                    alpha_history.append(0.0)
                    k += 1
                    continue
                if accepted is None:
                    raise _Failure(Status.LINESEARCH,
                                   f"line search on the merit failed at iteration {k} "
                                   f"(step below {alpha * 2:.1e}; f or c may be NaN or "
                                   "overflow near x)")
                x, lam, f, g, c, J, gL = accepted
                lam_reset_tried = False
                lam_norm = float(np.linalg.norm(lam))
                if lam_norm > 1e4 * (1.0 + lam_norm_prev) or not math.isfinite(lam_norm):
                    # Multiplier safeguard: a jump far beyond the least-squares estimate
                    # (a step through a nearly singular KKT matrix) is replaced by it.
                    lam_ls = _least_squares_multipliers(J, g)
                    if not lam_norm <= 1e4 * (1.0 + np.linalg.norm(lam_ls)):
                        lam = lam_ls
                        gL = problem.lagrangian_gradient(x, lam, g, J)
                        lam_resets += 1
                lam_norm_prev = float(np.linalg.norm(lam))
                alpha_history.append(alpha)
                inner_history.append(inner_total)
                k += 1
                if callback is not None:
                    callback(x, lam, float(math.sqrt(gL @ gL + c @ c)))
        except _Failure as fail:
            status, message = fail.args
            inner_history.append(inner_total)
        except (np.linalg.LinAlgError, FloatingPointError, OverflowError, ZeroDivisionError,
                ValueError, RuntimeError) as exc:
            # Overflowing or kinked functions can make LAPACK / SuperLU reject their
            # input: a failed result with the reason, never an exception.
            status = Status.NONFINITE if "finite" in str(exc) else Status.FAILED
            message = f"linear algebra failure at iteration {k}: {type(exc).__name__}: {exc}"
            inner_history.append(inner_total)
    kkt = kkt_history[-1] if kkt_history else math.nan
    if bk.is_torch(x0):
        x = bk.asarray(x, like=x0)
        lam = bk.asarray(lam, like=x0)
    return NewtonResult(
        status=status, iterations=k, history=[float(v) for v in kkt_history],
        time=time.perf_counter() - start, detail=message,
        x=x, lam=lam, multipliers=lam, fun=f, kkt=kkt, kkt_history=np.array(kkt_history),
        inner_iterations=int(sum(inner_history)), inner_history=np.array(inner_history, dtype=int),
        alpha_history=np.array(alpha_history), eta1=eta1, eta2=eta2,
        hessian_modifications=int(modified_steps), negative_curvature_steps=int(nc_steps),
        multiplier_resets=int(lam_resets), nfev=ev.nfev, njev=ev.njev, nhev=ev.nhev,
        constr_violation=float(np.linalg.norm(c)) if np.all(np.isfinite(c)) else math.inf,
        inner=inner, sketch=sketch if inner == "sketch" else None, modification=modification)


def _positive_real(value, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{label} must be a positive number, got {value!r}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{label} must be a positive number, got {value!r}")
    return value


def _count(value, label: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{label} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _hessian(problem, x, lam, ev):
    if problem.hess_lagrangian is None:
        return None
    H = problem.hess_lagrangian(x, lam)
    ev.nhev += 1
    if not _all_finite(H):
        raise _Failure(Status.NONFINITE, "the Lagrangian Hessian has NaN/Inf")
    return H


def _merit_at(problem, ev, xt, lamt, eta1, eta2):
    """(merit, point) at a trial point, or (nan, None) outside the domain."""
    try:
        ft, gt, ct, Jt = ev.point(xt)
    except (FloatingPointError, ZeroDivisionError, OverflowError):
        return math.nan, None
    if not (math.isfinite(ft) and np.all(np.isfinite(gt)) and np.all(np.isfinite(ct))
            and _all_finite(Jt)):
        return math.nan, None
    if lamt is None:
        lamt = _least_squares_multipliers(Jt, gt)
    gLt = problem.lagrangian_gradient(xt, lamt, gt, Jt)
    merit = ft + lamt @ ct + 0.5 * eta1 * (ct @ ct) + 0.5 * eta2 * (gLt @ gLt)
    return float(merit), (xt, lamt, ft, gt, ct, Jt, gLt)


def _line_search(problem, ev, x, lam, dx, dlam, merit0, slope, eta1, eta2, beta):
    """Armijo backtracking (halving) on the merit along ``(dx, dlam)``."""
    alpha = 1.0
    # 34 halvings: a step below ~6e-11 of the Newton step makes no progress
    # (and, for NaN regions, would re-evaluate the current point forever).
    for _ in range(35):
        merit, point = _merit_at(problem, ev, x + alpha * dx, lam + alpha * dlam, eta1, eta2)
        # Near x* the predicted decrease β α slope ~ η2 KKT² falls below the rounding of
        # the merit itself; allow that rounding (as IPOPT's line search does) so the
        # iteration does not stall.
        roundoff = 10 * np.finfo(float).eps * abs(merit0)
        if math.isfinite(merit) and merit <= merit0 + beta * alpha * slope + roundoff:
            return point, alpha
        alpha *= 0.5
    return None, alpha


def _curvature_step(problem, ev, x, lam, f, c, gL, H, hessp, J, d, eta1, eta2, beta):
    """A step along a unit negative-curvature direction ``d`` (in null(G)) that lowers
    the merit by a second-order Armijo amount; multipliers re-estimated at the new point."""
    Hd = matvec(H, d) if H is not None else hessp(d)
    curvature = float(d @ Hd)
    if not curvature < 0:
        return None
    # Sign: downhill to first order for the merit's x-gradient (any sign at a KKT point).
    HgL = matvec(H, gL) if H is not None else hessp(gL)
    gx = gL + eta2 * HgL + eta1 * rmatvec(J, c)
    if float(gx @ d) > 0:
        d = -d
    merit0 = f + lam @ c + 0.5 * eta1 * (c @ c) + 0.5 * eta2 * (gL @ gL)
    scale = max(1.0, float(np.linalg.norm(x))) * min(1.0, 2.0 * abs(curvature))
    step = scale
    for _ in range(30):
        merit, point = _merit_at(problem, ev, x + step * d, None, eta1, eta2)
        if math.isfinite(merit) and merit <= merit0 - 0.5 * beta * step ** 2 * abs(curvature):
            return point
        step *= 0.5
    return None


def _saddle_escape(problem, ev, x, lam, f, c, gL, H, J, n, m, dense_limit, eta1, eta2, beta):
    """At a KKT point: ``None`` if the reduced Hessian is positive semidefinite (a local
    minimiser, to the dense check), else the point after a negative-curvature step."""
    hessp = None if H is not None else (lambda v: problem.hessp(x, lam, v))
    checks = _curvature_checks(H, hessp, J, n, m, dense_limit)
    if checks is None or checks["nc_direction"] is None:
        return None
    if checks["reduced_min"] >= -1e-8 * max(1.0, checks["Hnorm"]):
        return None
    return _curvature_step(problem, ev, x, lam, f, c, gL, H, hessp, J, checks["nc_direction"],
                           eta1, eta2, beta)


def _inertia_shift(checks, dual_reg, last_shift, fallback, first=1e-4):
    """IPOPT's inertia correction (Wächter & Biegler 2006, Algorithm IC) with a margin:
    the first ``δ`` of ``δ_last/3`` (or ``first`` = ξ_B; IPOPT starts at 1e-4), then ×8
    (×100 from a fresh start), for which ``K(δ/2)`` has inertia ``(n, m, 0)`` (LDLᵀ
    count), so that ``Zᵀ(H + δI)Z >= δ/2``.  Starting at 1e-4 gave the same Newton
    steps on the Rayleigh quotients but nearly singular shifted KKT matrices, on which
    the sketching solver needed 20x more inner steps (61,670 against 2,682 at n = 30)."""
    Hd, Jd = checks["H"], checks["J"]
    n, m = Hd.shape[0], Jd.shape[0]
    growth = 8.0 if last_shift > 0 else 100.0
    shift = max(first, last_shift / 3.0) if last_shift > 0 else first
    C = -dual_reg * np.eye(m) if dual_reg else np.zeros((m, m))
    while shift <= 1e40:
        # Inertia of K(δ/2) correct  <=>  Zᵀ(H + δI)Z >= δ/2: a margin that keeps the
        # shifted KKT matrix away from singular (the minimal δ leaves it nearly
        # singular, and the sketching inner solver then needs 10-20x more steps).
        K = np.block([[Hd + 0.5 * shift * np.eye(n), Jd.T], [Jd, C]])
        pos, neg, zero = kkt_inertia(K)
        if pos == n and neg == m and zero == 0:
            return shift
        shift *= growth
    # Badly scaled (e.g. overflowing) Hessians: fall back to the paper's shift.
    return fallback


def reduced_hessian_eigenvalues(problem: Problem, x, lam) -> np.ndarray:
    """Eigenvalues of ``Zᵀ∇²ₓL(x, lam) Z`` on the null space of the Jacobian (dense; for
    checking second-order optimality: a KKT point with all of them ``>= 0`` is a local
    minimiser candidate, one with a negative eigenvalue is a saddle)."""
    x = np.asarray(bk.to_numpy(x), dtype=float)
    lam = np.asarray(bk.to_numpy(lam), dtype=float)
    n = x.size
    Jd = _dense(problem.jac(x))
    if Jd is None:
        Jop = problem.jac(x)
        Jd = np.column_stack([matvec(Jop, e) for e in np.eye(n)])
    Jd = np.atleast_2d(Jd)
    H = problem.hess_lagrangian(x, lam) if problem.hess_lagrangian is not None else None
    Hd = _dense(H) if H is not None else None
    if Hd is None:
        Hd = np.column_stack([problem.hessp(x, lam, e) if H is None else matvec(H, e)
                              for e in np.eye(n)])
    Hd = 0.5 * (Hd + Hd.T)
    Z = sla.null_space(Jd)
    if Z.shape[1] == 0:
        return np.zeros(0)
    return np.linalg.eigvalsh(Z.T @ Hd @ Z)


def exact_newton(problem: Problem, x0, tol: float = 1e-6, **kwargs) -> NewtonResult:
    """The exact-solve variant: :func:`sketch_newton` with ``inner="direct"``.

    Same merit, penalty updates, Hessian modification and line search; the KKT system
    is solved by LU, so it is the reference the sketched iterates are compared with.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.nlp.hs_problem("hs6")
    >>> res = lr.optimize.exact_newton(P.problem, P.x0)
    >>> res.success
    True
    """
    kwargs.setdefault("seed", 0)
    return sketch_newton(problem, x0, tol=tol, inner="direct", **kwargs)


def _least_squares_multipliers(J, g):
    """``argmin_lam ‖g + Jᵀ lam‖``: the multiplier estimate at a starting point."""
    m = J.shape[0]
    try:
        if isinstance(J, np.ndarray) or (sp.issparse(J) and J.shape[1] <= 500):
            lam = sla.lstsq(_dense(J).T, -g, cond=1e-10)[0]
        else:
            JT = spla.LinearOperator((J.shape[1], m), matvec=lambda v: rmatvec(J, v),
                                     rmatvec=lambda v: matvec(J, v), dtype=float)
            lam = spla.lsqr(JT, -g, atol=1e-10, btol=1e-10, iter_lim=200)[0]
    except (np.linalg.LinAlgError, ValueError):
        lam = np.zeros(m)
    return lam if np.all(np.isfinite(lam)) else np.zeros(m)


def _curvature_checks(H, hessp, J, n, m, dense_limit):
    """``λ_min(G Gᵀ)``, ``‖G‖``, ``‖H‖`` and the smallest eigenvalue of the reduced Hessian
    ``ZᵀHZ`` for small problems (``None`` when too large or matrix-free)."""
    if n + m > dense_limit or (not isinstance(J, np.ndarray) and n + m > 300):
        return None  # sparse / operator Jacobians: the O((n+m)^3) check would dominate
    Jd = _dense(J)
    if Jd is None:
        return None
    if H is not None:
        Hd = _dense(H)
        if Hd is None:
            return None
    elif n <= 300:
        Hd = np.column_stack([hessp(e) for e in np.eye(n)])
    else:
        return None
    Hd = 0.5 * (Hd + Hd.T)
    svals = np.linalg.svd(Jd, compute_uv=False)
    xi_G = float(svals[-1] ** 2) if m <= n else 0.0
    # Null space of G from a full QR of Gᵀ: the last n - rank columns.
    rank = int(np.sum(svals > 1e-10 * max(svals[0], 1e-300))) if svals.size else 0
    nc_direction = None
    if rank < n:
        Q = sla.qr(Jd.T, mode="full", pivoting=True)[0]
        Z = Q[:, rank:]
        evals, evecs = np.linalg.eigh(Z.T @ Hd @ Z)
        reduced_min = float(evals[0])
        if reduced_min < 0:
            nc_direction = Z @ evecs[:, 0]
    else:
        reduced_min = math.inf
    return {"xi_G": xi_G, "Gnorm": float(svals[0]) if svals.size else 0.0,
            "Hnorm": float(np.linalg.norm(Hd, 2)), "Hfro": float(np.linalg.norm(Hd)),
            "reduced_min": reduced_min, "nc_direction": nc_direction, "H": Hd, "J": Jd}


def _theory_constants(K, H, hessp, J, checks, xi_B, n, rng):
    """ψ, Υ and ‖K‖ of the paper's accuracy condition (estimates when no dense check)."""
    if checks is None:
        Hnorm = KKTSystem(H, J, 0.0, hessp).norm_estimate(seed=1)
        checks = {"xi_G": 1.0, "Gnorm": 1.0, "Hnorm": Hnorm}
    Bnorm = checks["Hnorm"] + K.shift
    psi = 20.0 * max(Bnorm ** 2, 1.0) / (min(max(checks["xi_G"], 1e-16), 1.0) * min(xi_B, 1.0))
    upsilon = max(checks["Gnorm"], checks["Hnorm"], 1.0)
    return {"psi": psi, "upsilon": upsilon, "Knorm": max(K.norm_estimate(), 1e-300)}


def _delta_trial(consts, beta, eta1, eta2):
    return (0.5 - beta) * eta2 / ((1 + eta1 + eta2) * consts["upsilon"] ** 2 * consts["psi"] ** 2)
