"""Second round of lr.optimize: nonconvex globalisation, the Nyström inner solver, the
result contract and hardening (issue 16, issue 17 item 9)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import OptimizeResult

import lrsolve as lr
from lrsolve.optimize.kkt import KKTSystem, NystromPreconditioner, kkt_inertia
from lrsolve.problems import nlp
from lrsolve.result import Status

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


def _reduced_min(P, res):
    return lr.optimize.reduced_hessian_eigenvalues(P.problem, res.x, res.lam)[0]


# -- result contract ---------------------------------------------------------------------
def test_result_is_optimize_result_and_lrsolve_result():
    T = nlp.hs_problem("hs28")
    res = lr.optimize.sketch_newton(T.problem, T.x0)
    assert isinstance(res, OptimizeResult) and isinstance(res, lr.result.Result)
    assert res.status is Status.CONVERGED and res.converged and res.success and res.info == 0
    assert res["success"] is True and res.message == res.reason
    assert res.iterations == res.nit >= 1
    assert res.history == list(res.kkt_history) and res.history[-1] <= 1e-6
    assert res.time > 0


def test_maxiter_result_is_consistent():
    T = nlp.hs_problem("hs6")
    res = lr.optimize.sketch_newton(T.problem, T.x0, maxiter=2)
    assert res.status is Status.MAXITER and not res.converged and not res.success
    assert res.nit == 2 and res.info == 2 and res.reason


def test_tol_accepts_numpy_scalars_and_rejects_bool():
    T = nlp.hs_problem("hs28")
    res = lr.optimize.sketch_newton(T.problem, T.x0, tol=np.float32(1e-6))
    assert res.converged and res.kkt <= 1e-6
    with pytest.raises(ValueError, match="tol"):
        lr.optimize.sketch_newton(T.problem, T.x0, tol=True)
    with pytest.raises(ValueError, match="tol"):
        lr.optimize.sketch_newton(T.problem, T.x0, tol=np.float64(np.nan))
    with pytest.raises(ValueError, match="maxiter"):
        lr.optimize.sketch_newton(T.problem, T.x0, maxiter=2.5)


def test_max_inner_is_a_deprecated_alias():
    T = nlp.hs_problem("hs28")
    with pytest.warns(DeprecationWarning, match="inner_maxiter"):
        res = lr.optimize.sketch_newton(T.problem, T.x0, max_inner=5000)
    assert res.converged


# -- hardening: failed results, never an exception from inside SciPy ----------------------
def _sum_constraint(n):
    return (lambda x: np.array([x.sum() - 1.0]), lambda x: np.ones((1, n)))


@pytest.mark.parametrize("inner", ["sketch", "direct", "gmres"])
def test_overflowing_objective_gives_failed_result(inner):
    # Hessian entries ~1e132: the sketch Gram matrix overflows to Inf (used to raise a
    # ValueError from inside scipy.linalg.lstsq).
    c, jac = _sum_constraint(3)
    P = lr.optimize.Problem(lambda x: np.sum(np.exp(10 * x)), lambda x: 10 * np.exp(10 * x),
                            c, jac, hess_lagrangian=lambda x, lam: np.diag(100 * np.exp(10 * x)))
    res = lr.optimize.sketch_newton(P, np.array([30.0, -30.0, 0.0]), inner=inner, maxiter=50)
    assert isinstance(res.status, Status) and res.reason
    if not res.converged:
        assert res.status in (Status.NONFINITE, Status.FAILED, Status.LINESEARCH, Status.MAXITER)
    else:  # a converged claim must be true
        assert res.kkt <= 1e-6


@pytest.mark.parametrize("inner", ["sketch", "direct"])
def test_kinked_objective_gives_failed_result(inner):
    P = lr.optimize.Problem(lambda x: np.sum(np.abs(x)), np.sign,
                            lambda x: np.array([x[0] - 2 * x[1] - 1.0]),
                            lambda x: np.array([[1.0, -2.0, 0.0]]),
                            hess_lagrangian=lambda x, lam: np.zeros((3, 3)))
    res = lr.optimize.sketch_newton(P, np.array([0.3, 0.2, 0.1]), inner=inner, maxiter=50,
                                    inner_maxiter=2000)
    assert not res.converged and res.status in (Status.FAILED, Status.LINESEARCH,
                                                Status.MAXITER)
    assert res.reason and np.all(np.isfinite(res.x))


def test_nan_hessian_mid_run_is_nonfinite_result():
    c, jac = _sum_constraint(3)

    def hess(x, lam):
        return np.full((3, 3), np.nan) if x[0] < 2.5 else 2 * np.eye(3)
    P = lr.optimize.Problem(lambda x: x @ x, lambda x: 2 * x, c, jac, hess_lagrangian=hess)
    res = lr.optimize.sketch_newton(P, np.array([3.0, 0.0, 0.0]))
    assert res.status is Status.NONFINITE and not res.success and "NaN" in res.reason


# -- inertia and curvature -----------------------------------------------------------------
def test_kkt_inertia_counts_reduced_hessian_signs():
    rng = np.random.default_rng(0)
    n, m = 8, 3
    G = rng.standard_normal((m, n))
    Z = np.linalg.svd(G)[2][m:].T                    # orthonormal null space
    for negatives in (0, 1, 3):
        evals = np.r_[-np.arange(1, negatives + 1), np.arange(1, n - m - negatives + 1)]
        H = Z @ np.diag(evals.astype(float)) @ Z.T + 5 * G.T @ G
        K = np.block([[H, G.T], [G, np.zeros((m, m))]])
        # Gould: inertia(K) = inertia(ZᵀHZ) + (m, m, 0).
        assert kkt_inertia(K) == (n - m - negatives + m, negatives + m, 0)


def test_nystrom_preconditioner_clusters_a_decaying_spectrum():
    rng = np.random.default_rng(1)
    size = 300
    Q = np.linalg.qr(rng.standard_normal((size, size)))[0]
    evals = 1e-4 + 1.0 / np.arange(1, size + 1) ** 2     # cond 1e4, fast decay
    M = (Q * evals) @ Q.T
    pre = NystromPreconditioner(lambda X: M @ X, size, 40, rng=rng)
    assert pre.negative is None
    Pinv = np.column_stack([pre.apply(e) for e in np.eye(size)])
    L = np.linalg.cholesky(0.5 * (Pinv + Pinv.T))
    ev = np.linalg.eigvalsh(L.T @ M @ L)
    assert ev[-1] / ev[0] < 0.05 * (evals.max() / evals.min())   # >= 20x better conditioned


def test_nystrom_sketch_detects_negative_curvature():
    rng = np.random.default_rng(2)
    # A negative eigenvalue that dominates its share of the sketch (weaker ones are left
    # to the CG curvature test)
    M = np.diag(np.r_[-100.0, np.ones(49)])
    pre = NystromPreconditioner(lambda X: M @ X, 50, 10, rng=rng)
    assert pre.negative is not None and pre.negative[1] < 0
    d = pre.negative[0]
    assert d @ M @ d < 0


def test_rayleigh_quotient_reaches_the_minimiser_from_several_starts():
    P = nlp.rayleigh_quotient(30, seed=1)
    for x0 in nlp.random_starts(P, 3, seed=0):
        res = lr.optimize.sketch_newton(P.problem, x0, inner="direct")
        assert res.converged and res.kkt <= 1e-6
        assert abs(res.fun - P.fopt) <= 1e-6
        assert _reduced_min(P, res) >= 0


@pytest.mark.parametrize("modification", ["paper", "inertia"])
def test_saddle_start_escapes_by_negative_curvature(modification):
    # Start exactly at the second eigenvector: a KKT point (KKT ~ 1e-15) that is a saddle.
    # Without the negative-curvature step the run stops there at iteration 0.
    P = nlp.rayleigh_quotient(12, seed=3)
    A = P.problem.hess_lagrangian(P.x0, np.zeros(1)) / 2
    evals, V = np.linalg.eigh(A)
    res = lr.optimize.sketch_newton(P.problem, V[:, 1], modification=modification)
    assert res.converged and res.nit >= 1 and res.negative_curvature_steps >= 1
    assert abs(res.fun - evals[0]) <= 1e-6 and _reduced_min(P, res) >= 0


def test_inertia_modification_fewer_newton_steps_on_rayleigh():
    P = nlp.rayleigh_quotient(30, seed=0)
    paper = lr.optimize.sketch_newton(P.problem, P.x0, inner="direct", modification="paper")
    inertia = lr.optimize.sketch_newton(P.problem, P.x0, inner="direct",
                                        modification="inertia")
    assert paper.converged and inertia.converged
    assert inertia.hessian_modifications >= 1
    assert inertia.nit < paper.nit          # measured 7 against 16
    assert _reduced_min(P, inertia) >= 0


def test_sphere_quadratic_local_minimiser():
    P = nlp.sphere_quadratic(30, seed=0)
    res = lr.optimize.sketch_newton(P.problem, P.x0)
    assert res.converged and _reduced_min(P, res) >= -1e-6
    assert res.fun >= P.fopt - 1e-6     # never below the global minimum


# -- Nyström null-space inner solver -------------------------------------------------------
def test_nystrom_inner_solver_on_pde_control_matches_direct():
    T = nlp.pde_control(12)
    direct = lr.optimize.exact_newton(T.problem, T.x0, tol=1e-8)
    ny = lr.optimize.sketch_newton(T.problem, T.x0, inner="nystrom", tol=1e-8)
    assert ny.converged and ny.kkt <= 1e-8
    assert np.linalg.norm(ny.x - direct.x) <= 1e-6 * max(1.0, np.linalg.norm(direct.x))


def test_nystrom_inner_meets_the_accuracy_condition_exactly():
    T = nlp.semilinear_control(8)
    P = T.problem
    x = T.x0 + 0.3
    g, c, J = P.grad(x), P.c(x), P.jac(x)
    lam = np.zeros(c.size)
    K = KKTSystem(P.hess_lagrangian(x, lam), J)
    b = -np.concatenate([P.lagrangian_gradient(x, lam, g, J), c])
    tol = 1e-3 * np.linalg.norm(b)
    z, r, its, ok = lr.optimize.nullspace_nystrom_solve(K, b, np.zeros(b.size), b.copy(), tol,
                                                        basis=P.basis, rank=10,
                                                        rng=np.random.default_rng(0))
    assert ok and its >= 1
    true_r = b - K.explicit() @ z
    assert np.linalg.norm(true_r) <= tol
    assert np.linalg.norm(true_r - r) <= 1e-10 * np.linalg.norm(b)


def test_nystrom_needs_a_basis_for_sparse_jacobians():
    T = nlp.pde_control(6)
    P = T.problem
    Q = lr.optimize.Problem(P.f, P.grad, P.c, P.jac, hess_lagrangian=P.hess_lagrangian)
    with pytest.raises(ValueError, match="basis"):
        lr.optimize.sketch_newton(Q, T.x0, inner="nystrom")
    with pytest.raises(ValueError, match="basis"):
        lr.optimize.Problem(P.f, P.grad, P.c, P.jac, basis=[0, 0, 1])


def test_nystrom_inner_on_semilinear_control():
    T = nlp.semilinear_control(8)
    ny = lr.optimize.sketch_newton(T.problem, T.x0, inner="nystrom")
    ex = lr.optimize.exact_newton(T.problem, T.x0)
    assert ny.converged and ex.converged
    assert abs(ny.fun - ex.fun) <= 1e-6 * abs(ex.fun)
    assert lr.optimize.reduced_hessian_eigenvalues(T.problem, ny.x, ny.lam)[0] >= 0


# -- the nonconvex set ---------------------------------------------------------------------
def test_nonconvex_set_contents():
    probs = nlp.nonconvex_test_set(sizes=(10,), pde_sizes=(6,))
    names = [P.name for P in probs]
    assert "rayleigh-10" in names and "sphere-quadratic-10" in names
    assert "semilinear-control-6" in names and "hs6" in names
    P = nlp.sphere_quadratic(10)
    # the secular-equation minimiser is a KKT point with a PSD reduced Hessian
    lam = np.linalg.lstsq(P.problem.jac(P.xopt).T, -P.problem.grad(P.xopt), rcond=None)[0]
    assert np.linalg.norm(P.problem.lagrangian_gradient(P.xopt, lam)) <= 1e-8
    assert lr.optimize.reduced_hessian_eigenvalues(P.problem, P.xopt, lam)[0] >= -1e-10


@pytest.mark.slow
def test_nonconvex_set_95_percent_local_minimisers():
    from lrsolve.bench.optimize import _second_order, nonconvex_success
    runs = ok = 0
    for P in nlp.nonconvex_test_set(sizes=(10, 30), pde_sizes=(8,)):
        for x0 in nlp.random_starts(P, 3, seed=0):
            # The sketch-preconditioned inner solver: sketch-and-project itself cannot
            # solve the semilinear PDE's KKT systems (see docs/optimize.md).
            res = lr.optimize.sketch_newton(P.problem, x0, seed=0, inner="nystrom")
            kkt, lmin = _second_order(P.problem, np.asarray(res.x), np.asarray(res.lam))
            runs += 1
            ok += res.converged and nonconvex_success(res.kkt, lmin, 1e-6)
    assert ok >= 0.95 * runs


def test_large_problem_path_detects_negative_curvature_in_the_inner_solver():
    # dense_limit=0 switches the dense inertia/eigenvalue checks off, as for a large
    # problem: the Nyström CG meets negative curvature and the shift is raised past it.
    P = nlp.rayleigh_quotient(30, seed=0)
    for x0 in nlp.random_starts(P, 2, seed=0):
        res = lr.optimize.sketch_newton(P.problem, x0, inner="nystrom", dense_limit=0)
        assert res.converged and res.hessian_modifications >= 1
        assert abs(res.fun - P.fopt) <= 1e-6 and _reduced_min(P, res) >= 0
        assert res.nit <= 20               # measured 7 and 11
