"""SOR / SSOR kernels: agreement with a plain reference, orderings, backends, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

import lrsolve as lr
from lrsolve import backend as bk
from lrsolve.relax import SSOR, adaptive_sor, sor, ssor_cg
from lrsolve.relax.theory import jacobi_radius_from_rate, sor_rate, young_omega


def reference_sor(A, b, omega, sweeps, x0=None):
    """Textbook SOR: x <- x + (D/omega + L)^{-1} (b - A x), dense."""
    A = np.asarray(A)
    M = np.diag(np.diag(A)) / omega + np.tril(A, -1)
    x = np.zeros_like(b) if x0 is None else x0.copy()
    for _ in range(sweeps):
        x = x + sla.solve_triangular(M, b - A @ x, lower=True)
    return x


@pytest.fixture
def small_spd(rng):
    from tests.conftest import random_spd
    return random_spd(30, rng, cond=50.0)


@pytest.mark.parametrize("omega", [0.4, 1.0, 1.3, 1.9])
def test_sor_matches_reference_sweep_by_sweep(small_spd, rng, omega):
    b = rng.standard_normal(30)
    x0 = rng.standard_normal(30)
    for sweeps in (1, 7, 25):
        r = sor(small_spd, b, omega=omega, x0=x0, rtol=0.0, maxiter=sweeps)
        assert r.iterations == sweeps and not r.converged
        ref = reference_sor(small_spd, b, omega, sweeps, x0)
        assert np.max(np.abs(r.x - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))
        # the fused, one-sweep-lagged residual is the true residual of the returned x
        assert abs(r.residuals[-1] - np.linalg.norm(b - small_spd @ r.x)) <= 1e-10


def test_sor_matches_reference_on_poisson_and_counts_iterations():
    P = lr.problems.poisson(n=6, dim=2, seed=3)
    A = P.A.to_csr().toarray()
    r = sor(P.A, P.b, omega=1.5, rtol=1e-10)
    assert r.converged
    ref = reference_sor(A, P.b, 1.5, r.iterations)
    assert np.max(np.abs(r.x - ref)) <= 1e-12 * np.max(np.abs(ref))
    # the reference needs exactly as many sweeps to pass the same test
    prev = reference_sor(A, P.b, 1.5, r.iterations - 1)
    assert np.linalg.norm(P.b - A @ prev) > 1e-10 * np.linalg.norm(P.b)


@pytest.mark.parametrize("omega", [0.2, 0.7, 1.0, 1.5, 1.95])
def test_sor_converges_on_spd_for_omega_in_open_interval(omega):
    rng = np.random.default_rng(1)
    B = sp.random(80, 80, density=0.05, random_state=rng)
    A = sp.csr_matrix(B @ B.T + 0.5 * sp.identity(80))
    b = rng.standard_normal(80)
    r = sor(A, b, omega=omega, rtol=1e-9, maxiter=50000)
    assert r.converged
    assert np.linalg.norm(b - A @ r.x) <= 1e-9 * np.linalg.norm(b)


def test_red_black_and_lexicographic_agree(backend):
    A_np = lr.operators.poisson_operator(14, 2, shift=0.05, scaled=False)
    rng = np.random.default_rng(0)
    b_np = rng.standard_normal(14 * 14)
    lex = sor(A_np, b_np, omega=1.6, rtol=1e-12)
    A = lr.operators.poisson_operator(14, 2, shift=0.05, scaled=False, backend=backend)
    b = bk.asarray(b_np, backend=backend)
    rb = sor(A, b, omega=1.6, rtol=1e-12, ordering="red-black")
    assert lex.converged and rb.converged
    assert bk.backend_name(rb.x) == backend
    x_rb = bk.to_numpy(rb.x)
    assert np.linalg.norm(x_rb - lex.x) <= 1e-10 * np.linalg.norm(lex.x)
    # Young's theory holds for both orderings: same asymptotic speed, similar counts
    assert abs(rb.iterations - lex.iterations) <= 0.25 * lex.iterations


def test_red_black_3d_matches_direct_solve():
    A = lr.operators.poisson_operator(6, 3, scaled=True)
    b = np.random.default_rng(2).standard_normal(216)
    r = sor(A, b, omega=1.5, rtol=1e-11, ordering="red-black")
    x = sp.linalg.spsolve(A.to_csr().tocsc(), b)
    assert r.converged and np.linalg.norm(r.x - x) <= 1e-9 * np.linalg.norm(x)


@pytest.mark.parametrize("omega", [0.0, 2.0, -0.5, 2.5, float("nan")])
def test_omega_outside_open_interval_is_value_error(omega):
    P = lr.problems.poisson(n=4, dim=2)
    with pytest.raises(ValueError, match="omega"):
        sor(P.A, P.b, omega=omega)
    with pytest.raises(ValueError, match="omega"):
        lr.solve(P.A, P.b, method="ssor-cg", omega=omega)
    with pytest.raises(ValueError, match="omega"):
        lr.solve(P.A, P.b, method="sor", omega=omega)


def test_zero_diagonal_is_value_error():
    A = sp.csr_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="zero diagonal"):
        sor(A, np.ones(3), omega=1.0)
    with pytest.raises(ValueError, match="zero diagonal"):
        SSOR(A, 1.0)


def test_non_convergence_is_a_result_not_an_exception():
    P = lr.problems.poisson(n=20, dim=2, seed=0)
    r = sor(P.A, P.b, omega=1.0, rtol=1e-12, maxiter=5)
    assert not r.converged and r.info == 5 and r.iterations == 5
    assert np.all(np.isfinite(r.x))


def test_solve_entry_points_and_zero_rhs():
    P = lr.problems.poisson(n=16, dim=2, seed=0)
    r = lr.solve(P.A, P.b, method="sor", omega=1.7, rtol=1e-8)
    assert r.method == "sor" and r.converged and r.stats["omega"] == 1.7
    r0 = sor(P.A, np.zeros(256))
    assert r0.converged and r0.iterations == 0 and not np.any(r0.x)
    with pytest.raises(TypeError, match="bogus"):
        lr.solve(P.A, P.b, method="sor", bogus=1)


def test_ssor_preconditioner_matches_dense_formula(rng):
    from tests.conftest import random_spd
    A = random_spd(25, rng, cond=30.0)
    omega = 1.3
    D = np.diag(np.diag(A))
    L = np.tril(A, -1)
    Mmat = (D + omega * L) @ np.linalg.inv(D) @ (D + omega * L.T) / (omega * (2 - omega))
    r = rng.standard_normal(25)
    z = SSOR(A, omega) @ r
    assert np.max(np.abs(z - np.linalg.solve(Mmat, r))) <= 1e-12 * np.max(np.abs(z))


def test_ssor_cg_beats_cg_and_red_black_ssor_runs_on_torch():
    P = lr.problems.poisson(n=48, dim=2, seed=0)
    plain = lr.solve(P.A, P.b, method="cg", rtol=1e-8)
    pre = lr.solve(P.A, P.b, method="ssor-cg", omega=1.8, rtol=1e-8)
    assert pre.converged and pre.iterations < 0.5 * plain.iterations
    torch = pytest.importorskip("torch")
    A_t = lr.operators.poisson_operator(48, 2, backend="torch")
    b_t = torch.from_numpy(P.b)
    rt = ssor_cg(A_t, b_t, omega=1.8, rtol=1e-8)
    assert rt.converged and rt.stats["ordering"] == "red-black"
    # Red-black SSOR is a much weaker preconditioner than lexicographic SSOR (a known
    # effect of the ordering: it loses the O(1/h) condition-number gain), but still helps.
    assert rt.iterations < plain.iterations
    x = bk.to_numpy(rt.x)
    assert np.linalg.norm(P.b - P.A @ x) <= 1e-8 * np.linalg.norm(P.b) * 1.0001


def test_red_black_ssor_matches_dense_formula_in_red_black_order(backend):
    n, omega = 5, 1.4
    A_op = lr.operators.poisson_operator(n, 2, shift=0.3, scaled=False, backend=backend)
    A = lr.operators.poisson_operator(n, 2, shift=0.3, scaled=False).to_csr().toarray()
    red = (np.indices((n, n)).sum(axis=0) % 2 == 0).reshape(-1)
    perm = np.concatenate([np.flatnonzero(red), np.flatnonzero(~red)])
    Ap = A[np.ix_(perm, perm)]
    D, L = np.diag(np.diag(Ap)), np.tril(Ap, -1)
    Mmat = (D + omega * L) @ np.linalg.inv(D) @ (D + omega * L.T) / (omega * (2 - omega))
    r = np.random.default_rng(0).standard_normal(n * n)
    z_ref = np.empty(n * n)
    z_ref[perm] = np.linalg.solve(Mmat, r[perm])
    z = bk.to_numpy(SSOR(A_op, omega, ordering="red-black") @ bk.asarray(r, backend=backend))
    assert np.max(np.abs(z - z_ref)) <= 1e-12 * np.max(np.abs(z_ref))


def test_young_theory_matches_dense_spectral_radius():
    n = 8
    A = lr.operators.poisson_operator(n, 2, scaled=False).to_csr().toarray()
    D = np.diag(np.diag(A))
    L = np.tril(A, -1)
    mu = max(abs(np.linalg.eigvals(np.eye(n * n) - np.linalg.solve(D, A))))
    assert abs(mu - np.cos(np.pi / (n + 1))) < 1e-12
    assert abs(lr.relax.jacobi_bound(lr.operators.poisson_operator(n, 2, scaled=False))
               * np.cos(np.pi / (n + 1)) - mu) < 1e-12
    for omega in (1.0, 1.3, young_omega(mu), 1.8):
        G = np.eye(n * n) - np.linalg.solve(D / omega + L, A)
        rho = max(abs(np.linalg.eigvals(G)))
        assert abs(rho - float(sor_rate(omega, mu))) < 2e-3
    for omega in (1.0, 1.2, 1.4):
        assert abs(jacobi_radius_from_rate(float(sor_rate(omega, mu)), omega) - mu) < 1e-10


def test_adaptive_sor_finds_young_omega():
    P = lr.problems.poisson(n=32, dim=2, seed=0)
    r = adaptive_sor(P.A, P.b, rtol=1e-10)
    opt = young_omega(np.cos(np.pi / 33))
    assert r.converged and abs(r.stats["omega"] - opt) < 0.03
    # the first estimate comes from a short Gauss-Seidel phase: from below, roughly
    assert np.cos(np.pi / 33) - 0.03 < r.stats["mu_estimates"][0] <= np.cos(np.pi / 33) + 1e-3
    gs = sor(P.A, P.b, omega=1.0, rtol=1e-10)
    assert r.iterations < 0.2 * gs.iterations


def test_torch_cpu_csr_runs_lexicographic_without_copy_back_to_numpy():
    torch = pytest.importorskip("torch")
    A_np = lr.operators.poisson_operator(12, 2, shift=0.1, scaled=False)
    A_t = A_np.to_csr(backend="torch")
    b_np = np.random.default_rng(0).standard_normal(144)
    b_t = torch.from_numpy(b_np)
    r = sor(A_t, b_t, omega=1.6, rtol=1e-10)
    ref = sor(A_np, b_np, omega=1.6, rtol=1e-10)
    assert isinstance(r.x, torch.Tensor) and r.stats["ordering"] == "lexicographic"
    assert r.iterations == ref.iterations
    assert np.max(np.abs(r.x.numpy() - ref.x)) <= 1e-13
    rc = ssor_cg(A_t, b_t, omega=1.6, rtol=1e-10)
    assert isinstance(rc.x, torch.Tensor) and rc.converged and rc.stats["ordering"] == "lexicographic"


@pytest.mark.parametrize("dim, scaled, shift", [(2, False, -0.1), (2, True, 3.0), (3, True, 0.0)])
def test_cached_stencil_assembly_equals_to_csr(dim, scaled, shift):
    from lrsolve.relax.sor import csr_parts
    A = lr.operators.poisson_operator(5, dim, coefficient=0.7, shift=shift, scaled=scaled)
    parts = csr_parts(A)
    ref = A.to_csr()
    assert abs(parts.matrix - ref).max() == 0.0
    assert np.array_equal(parts.diag, ref.diagonal())
    assert lr.relax.jacobi_bound(A) == pytest.approx(
        np.max((abs(ref).sum(axis=1).A1 - abs(ref.diagonal())) / abs(ref.diagonal())))
