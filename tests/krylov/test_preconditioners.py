"""Preconditioners: built once, reused; IC(0) and AMG cut iterations; failures are clear."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import lrsolve as lr
from lrsolve.krylov import AMG, IC0, Jacobi


def test_ic0_exact_on_tridiagonal():
    n = 100
    A = sp.diags([-1, 2.5, -1], [-1, 0, 1], shape=(n, n), format="csr")
    b = np.arange(n, dtype=float)
    r = lr.solve(A, b, method="pcg-ic0", rtol=1e-12)
    assert r.converged and r.iterations <= 2


def test_ic0_factor_matches_dense_on_pattern(rng):
    A = lr.problems.poisson(10, 2, format="csr").A
    M = IC0(A)
    L = M.L.toarray()
    # L L^T agrees with A on the sparsity pattern of A (the defining property of IC(0)).
    LLt = L @ L.T
    mask = A.toarray() != 0
    np.testing.assert_allclose(LLt[mask], A.toarray()[mask], rtol=1e-12, atol=1e-9)


def test_preconditioners_reduce_iterations():
    P = lr.problems.poisson(96, 2, format="csr", rhs="random")
    plain = lr.solve(P.A, P.b, method="cg", rtol=1e-8)
    ic = lr.solve(P.A, P.b, method="pcg-ic0", rtol=1e-8)
    amg = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-8)
    assert plain.converged and ic.converged and amg.converged
    assert ic.iterations < 0.45 * plain.iterations
    assert amg.iterations <= 12
    for r in (ic, amg):
        assert np.linalg.norm(P.b - P.A @ r.x) <= 1e-8 * np.linalg.norm(P.b)


def test_built_preconditioner_reused_across_solves(rng):
    A = lr.problems.poisson(64, 2, format="csr").A
    M = AMG(A)
    setup = M.setup_time
    for _ in range(3):
        b = rng.standard_normal(A.shape[0])
        r = lr.solve(A, b, method="pcg-amg", M=M, rtol=1e-8)
        assert r.converged and r.iterations <= 12
        assert r.stats["setup_time"] == 0.0
    assert M.setup_time == setup


def test_jacobi_on_torch_stencil():
    pytest.importorskip("torch")
    coef = np.exp(np.random.default_rng(0).standard_normal((32, 32)))
    P = lr.problems.poisson(32, 2, coefficient=coef, backend="torch")
    r = lr.solve(P.A, P.b, method="pcg-jacobi", rtol=1e-8)
    plain = lr.solve(P.A, P.b, method="cg", rtol=1e-8)
    assert r.converged and r.iterations < plain.iterations


def test_ic0_rejects_non_spd():
    A = sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="pivot"):
        IC0(A)


def test_jacobi_zero_diagonal():
    with pytest.raises(ValueError, match="diagonal"):
        Jacobi(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 2.0]])))


def test_unknown_preconditioner():
    with pytest.raises(ValueError, match="preconditioner"):
        lr.krylov.make_preconditioner("ilu99", np.eye(3))
