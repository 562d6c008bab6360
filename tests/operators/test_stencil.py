"""Stencil operators: agree with CSR assembly, with a direct formula, across backends."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import lrsolve as lr
from lrsolve import backend as bk
from lrsolve.operators import Diagonal, PoissonStencil, Shifted


def _reference_laplacian(n, dim):
    """Textbook (2*dim, -1) stencil by Kronecker sums, scaled by 1/h^2."""
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    I = sp.identity(n)
    if dim == 2:
        L = sp.kron(T, I) + sp.kron(I, T)
    else:
        L = sp.kron(sp.kron(T, I), I) + sp.kron(sp.kron(I, T), I) + sp.kron(sp.kron(I, I), T)
    return (L * (n + 1) ** 2).tocsr()


@pytest.mark.parametrize("dim", [2, 3])
def test_constant_matches_textbook(dim, rng):
    n = 9
    A = PoissonStencil(n, dim)
    L = _reference_laplacian(n, dim)
    x = rng.standard_normal(n ** dim)
    np.testing.assert_allclose(A @ x, L @ x, rtol=1e-12, atol=1e-9)
    assert abs(A.to_csr() - L).max() < 1e-9
    np.testing.assert_allclose(A.diagonal(), L.diagonal())


@pytest.mark.parametrize("dim", [2, 3])
def test_variable_coefficient_stencil_equals_csr(dim, backend, rng):
    n = 7
    a = np.exp(rng.standard_normal((n,) * dim))
    A = PoissonStencil(n, dim, coefficient=a, shift=0.7, backend=backend)
    C = PoissonStencil(n, dim, coefficient=a, shift=0.7).to_csr()
    x = rng.standard_normal(n ** dim)
    y = bk.to_numpy(A @ bk.asarray(x, backend=backend))
    np.testing.assert_allclose(y, C @ x, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(bk.to_numpy(A.diagonal()), C.diagonal(), rtol=1e-13)
    # symmetric and positive definite
    assert abs(C - C.T).max() < 1e-9
    assert np.linalg.eigvalsh(C.toarray()).min() > 0


def test_variable_coefficient_flux_form(rng):
    # 1-D check of the face-average rule: -(a_{i+1/2}(u_{i+1}-u_i) - a_{i-1/2}(u_i-u_{i-1}))/h^2
    n = 6
    a = rng.uniform(1, 3, n)
    A = PoissonStencil(n, 1, coefficient=a).to_csr().toarray()
    h2 = (1.0 / (n + 1)) ** 2
    faces = np.concatenate([[a[0]], 0.5 * (a[1:] + a[:-1]), [a[-1]]])
    ref = np.diag(faces[:-1] + faces[1:]) - np.diag(faces[1:-1], 1) - np.diag(faces[1:-1], -1)
    np.testing.assert_allclose(A, ref / h2, rtol=1e-13)


def test_unscaled_and_shift():
    A = PoissonStencil(5, 2, scaled=False, shift=-0.1)
    np.testing.assert_allclose(A.diagonal(), np.full(25, 3.9))
    B = A.shifted(0.3)
    np.testing.assert_allclose(B.diagonal(), np.full(25, 4.2))


def test_torch_csr_matches(rng):
    torch = pytest.importorskip("torch")
    A = PoissonStencil(8, 2)
    T = A.to_csr(backend="torch")
    assert T.layout == torch.sparse_csr
    x = rng.standard_normal(64)
    y = lr.as_operator(T) @ torch.from_numpy(x)
    np.testing.assert_allclose(y.numpy(), A @ x, rtol=1e-12)


def test_shifted_and_diagonal_wrappers(rng):
    A = lr.problems.poisson(6, 2, format="csr").A
    S = Shifted(A, 2.5)
    x = rng.standard_normal(36)
    np.testing.assert_allclose(S @ x, A @ x + 2.5 * x)
    np.testing.assert_allclose(S.diagonal(), A.diagonal() + 2.5)
    np.testing.assert_allclose(S.to_csr().toarray(), A.toarray() + 2.5 * np.eye(36))
    D = Diagonal(np.arange(1.0, 5.0))
    np.testing.assert_allclose(D @ np.ones(4), np.arange(1.0, 5.0))


@pytest.mark.parametrize("kw,match", [
    (dict(n=0), "n"), (dict(dim=4), "dim"), (dict(coefficient=-1.0), "coefficient"),
    (dict(coefficient=np.ones((3, 3))), "coefficient"), (dict(backend="jax"), "backend"),
])
def test_bad_operator_arguments(kw, match):
    args = dict(n=5, dim=2)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        PoissonStencil(**args)


def test_operator_rejects_wrong_length():
    with pytest.raises(ValueError, match="x"):
        PoissonStencil(4, 2) @ np.ones(15)
