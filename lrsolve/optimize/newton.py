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
Default constants follow the reference (η1 = 1, η2 = 0.1, δ = 0.1, ξ_B = 0.1,
β = 0.1, ν = 1.5).
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import OptimizeResult

from .. import backend as bk
from ..sketch import SKETCHES, as_generator
from .kkt import INNER_SOLVERS, SOLVERS, KKTSystem
from .problem import Problem, matvec, rmatvec

__all__ = ["sketch_newton", "exact_newton", "ACCURACY_RULES"]

ACCURACY_RULES = ("adaptive", "sharpen", "theory")


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
                  accuracy: str = "adaptive", maxiter: int = 200, max_inner: int | None = None,
                  lam0=None, eta1: float = 1.0, eta2: float = 0.1, delta: float = 0.1,
                  xi_B: float = 0.1, beta: float = 0.1, nu: float = 1.5,
                  dense_limit: int = 1000, callback=None) -> OptimizeResult:
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
        Stop when the KKT residual ``‖(∇ₓL, c)‖_2 <= tol``.
    seed : int, Generator or None
        Randomness of the sketches.
    inner : str
        ``"sketch"`` (default, the paper's randomized iterative sketching solver),
        ``"gmres"`` (ILU-preconditioned GMRES under the same accuracy condition) or
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
    max_inner : int, optional
        Budget of inner steps per Newton iteration, over all penalty-update rounds
        (default ``max(20000, 20 N)``); a capped solve is still used if it passes the
        descent test, otherwise the result fails with ``status=4``.
    lam0 : array_like (m,), optional
        Starting multipliers (default: least-squares estimate ``argmin ‖∇f + Jᵀlam‖``).
    eta1, eta2, delta, xi_B, beta, nu : float
        Penalty parameters of the merit, accuracy factor, minimum reduced-Hessian
        eigenvalue after modification, Armijo constant and update factor.
    dense_limit : int
        Up to ``n + m`` this size, ``λ_min(G Gᵀ)`` and the reduced Hessian are checked
        exactly (dense QR / eigendecomposition); beyond it the modification is
        triggered only when the descent test fails with the penalties at their limits.
    callback : callable, optional
        ``callback(x, lam, kkt)`` after every iteration.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``lam`` (also ``multipliers``), ``fun``, ``success``, ``status`` (0
        converged, 1 iteration limit, 2 line search / descent failure, 3 non-finite
        values, 4 inner solver failure), ``message``, ``nit``, ``kkt`` (final),
        ``kkt_history``, ``inner_iterations`` (total), ``inner_history`` (per Newton
        step), ``alpha_history``, ``eta1``, ``eta2``, ``nfev``, ``njev``, ``time``.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.nlp.hs_problem("hs28")
    >>> res = lr.optimize.sketch_newton(P.problem, P.x0, sketch="gaussian", seed=0)
    >>> res.success, bool(abs(res.fun - P.fopt) < 1e-8)
    (True, True)
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
    if not (isinstance(tol, (int, float)) and tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if not (isinstance(maxiter, (int, np.integer)) and maxiter >= 0):
        raise ValueError(f"maxiter must be a non-negative int, got {maxiter!r}")
    if block_size is not None and (not isinstance(block_size, (int, np.integer)) or block_size < 1):
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    for label, value in (("eta1", eta1), ("eta2", eta2), ("delta", delta), ("xi_B", xi_B)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{label} must be positive, got {value!r}")
    if not 0 < beta < 0.5:
        raise ValueError(f"beta must lie in (0, 1/2), got {beta!r}")
    if not nu > 1:
        raise ValueError(f"nu must exceed 1, got {nu!r}")
    rng = as_generator(seed)
    n = x.size
    ev = _Evaluator(problem, n)
    # Shapes and finiteness at x0 are the caller's responsibility: raise here, clearly.
    f, g, c, J = ev.point(x)
    m = c.size
    if not math.isfinite(f):
        raise ValueError(f"f(x0) is not finite ({f}); choose a starting point where f is defined")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(c)) and _all_finite(J)):
        raise ValueError("grad(x0), c(x0) or jac(x0) contains NaN or Inf")
    if m == 0:
        raise ValueError("c(x0) is empty: sketch_newton is for equality-constrained problems")
    if lam0 is None:
        lam = _least_squares_multipliers(J, g)
    else:
        lam = _as_vector(lam0, "lam0", m)
        if not np.all(np.isfinite(lam)):
            raise ValueError("lam0 contains NaN or Inf")
    N = n + m
    max_inner = int(max_inner or max(20000, 20 * N))
    solve = SOLVERS[inner]
    solve_kwargs = {"maxiter": max_inner}
    if inner == "sketch":
        solve_kwargs.update(kind=sketch, block_size=block_size, rng=rng)
    elif inner == "gmres":
        solve_kwargs["cache"] = {}

    kkt_history, inner_history, alpha_history = [], [], []
    status, message = 1, "maximum number of Newton iterations reached"
    gL = problem.lagrangian_gradient(x, lam, g, J)
    k = 0
    modified_steps = 0
    inner_total = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        try:
            while True:
                kkt = float(math.sqrt(gL @ gL + c @ c))
                kkt_history.append(kkt)
                if not math.isfinite(kkt):
                    raise _Failure(3, f"non-finite KKT residual at iteration {k}")
                if kkt <= tol:
                    status, message = 0, f"KKT residual {kkt:.2e} <= tol {tol:.1e}"
                    break
                if k >= maxiter:
                    status = 1
                    message = (f"maximum number of Newton iterations ({maxiter}) reached; "
                               f"KKT residual {kkt:.2e} > tol {tol:.1e}")
                    break
                H = problem.hess_lagrangian(x, lam) if problem.hess_lagrangian is not None else None
                ev.nhev += 1
                if H is not None and not _all_finite(H):
                    raise _Failure(3, f"the Lagrangian Hessian has NaN/Inf at iteration {k}")
                hessp = None if H is not None else (lambda v, x=x, lam=lam: problem.hessp(x, lam, v))
                HgL = matvec(H, gL) if H is not None else hessp(gL)
                checks = _curvature_checks(H, hessp, J, n, m, dense_limit)
                shift = 0.0
                if checks is not None and checks["reduced_min"] < 1e-6:
                    # The reference's shift t = ξ_B + ‖H‖_F: the reduced Hessian of
                    # H + tI then has eigenvalues >= ξ_B.  The smallest such shift,
                    # ξ_B - λ_min(ZᵀHZ), leaves near-zero curvature along Z and gives
                    # huge null-space steps that the merit rejects (HS6: 35 vs 9 steps).
                    shift = xi_B + checks["Hfro"]
                b = -np.concatenate([gL, c])
                bnorm = kkt
                z = np.zeros(N)
                r = b.copy()
                inner_total = 0
                dual_reg = 0.0
                if checks is not None and checks["xi_G"] <= 1e-10 * max(1.0, checks["Gnorm"] ** 2):
                    # Rank-deficient Jacobian (e.g. HS61 at its standard start): the KKT
                    # matrix is singular; regularise the (2,2) block instead of failing.
                    dual_reg = 1e-4 * max(1.0, checks["Hnorm"])
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
                    solve_kwargs["maxiter"] = max(1, max_inner - inner_total)
                    z, r, its, reached = solve(K, b, z, r, tol_inner, **solve_kwargs)
                    inner_total += its
                    if not np.all(np.isfinite(z)):
                        raise _Failure(4, f"inner solver produced NaN/Inf at iteration {k}")
                    grad_merit = np.concatenate([gL + eta2 * HgL + eta1 * rmatvec(J, c),
                                                 c + eta2 * matvec(J, gL)])
                    slope = float(grad_merit @ z)
                    if slope <= -0.5 * eta2 * bnorm ** 2:
                        break
                    budget_spent = not reached and inner_total >= max_inner
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
                            raise _Failure(4, f"inner {inner} solver did not meet the accuracy "
                                              f"condition at iteration {k} (residual "
                                              f"{np.linalg.norm(r):.2e} > {tol_inner:.2e} after "
                                              f"{inner_total} steps, max_inner={max_inner}); "
                                              "the KKT system may be singular or too "
                                              "ill-conditioned for this sketch - try inner='gmres' "
                                              "or 'direct', or a larger block_size")
                        raise _Failure(2, f"no descent direction for the merit at iteration {k} "
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
                dx, dlam = z[:n], z[n:]
                merit0 = f + lam @ c + 0.5 * eta1 * (c @ c) + 0.5 * eta2 * (gL @ gL)
                alpha = 1.0
                accepted = None
                # 34 halvings: a step below ~6e-11 of the Newton step makes no progress
                # (and, for NaN regions, would re-evaluate the current point forever).
                for _ in range(35):
                    xt, lamt = x + alpha * dx, lam + alpha * dlam
                    try:
                        ft, gt, ct, Jt = ev.point(xt)
                    except (FloatingPointError, ZeroDivisionError, OverflowError):
                        ft = math.nan
                    if math.isfinite(ft) and np.all(np.isfinite(gt)) and np.all(np.isfinite(ct)) \
                            and _all_finite(Jt):
                        gLt = problem.lagrangian_gradient(xt, lamt, gt, Jt)
                        merit = ft + lamt @ ct + 0.5 * eta1 * (ct @ ct) + 0.5 * eta2 * (gLt @ gLt)
                        # Near x* the predicted decrease β α slope ~ η2 KKT² falls below
                        # the rounding of the merit itself; allow that rounding (as
                        # IPOPT's line search does) so the iteration does not stall.
                        roundoff = 10 * np.finfo(float).eps * abs(merit0)
                        if math.isfinite(merit) and merit <= merit0 + beta * alpha * slope + roundoff:
                            accepted = (xt, lamt, ft, gt, ct, Jt, gLt)
                            break
                    alpha *= 0.5
                if accepted is None:
                    raise _Failure(2, f"line search on the merit failed at iteration {k} "
                                      f"(step below {alpha * 2:.1e}; f or c may be NaN near x)")
                x, lam, f, g, c, J, gL = accepted
                alpha_history.append(alpha)
                inner_history.append(inner_total)
                k += 1
                if callback is not None:
                    callback(x, lam, float(math.sqrt(gL @ gL + c @ c)))
        except _Failure as fail:
            status, message = fail.args
            inner_history.append(inner_total)
        except (np.linalg.LinAlgError, FloatingPointError) as exc:
            status, message = 4, f"linear algebra failure at iteration {k}: {exc}"
    kkt = kkt_history[-1] if kkt_history else math.nan
    if bk.is_torch(x0):
        x = bk.asarray(x, like=x0)
        lam = bk.asarray(lam, like=x0)
    return OptimizeResult(
        x=x, lam=lam, multipliers=lam, fun=f, success=status == 0, status=status,
        message=message, nit=k, kkt=kkt, kkt_history=np.array(kkt_history),
        inner_iterations=int(sum(inner_history)), inner_history=np.array(inner_history, dtype=int),
        alpha_history=np.array(alpha_history), eta1=eta1, eta2=eta2,
        hessian_modifications=int(modified_steps), nfev=ev.nfev, njev=ev.njev, nhev=ev.nhev,
        constr_violation=float(np.linalg.norm(c)), inner=inner,
        sketch=sketch if inner == "sketch" else None, time=time.perf_counter() - start)


def exact_newton(problem: Problem, x0, tol: float = 1e-6, **kwargs) -> OptimizeResult:
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
    if rank < n:
        Q = sla.qr(Jd.T, mode="full", pivoting=True)[0]
        Z = Q[:, rank:]
        reduced_min = float(np.linalg.eigvalsh(Z.T @ Hd @ Z)[0])
    else:
        reduced_min = math.inf
    return {"xi_G": xi_G, "Gnorm": float(svals[0]) if svals.size else 0.0,
            "Hnorm": float(np.linalg.norm(Hd, 2)), "Hfro": float(np.linalg.norm(Hd)),
            "reduced_min": reduced_min}


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
