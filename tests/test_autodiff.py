"""Gradients through linear solves (lrsolve.autodiff): gradcheck against finite differences,
agreement with torch.linalg.solve, one adjoint solve per backward pass, and the limits."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from lrsolve import autodiff as ad  # noqa: E402
from lrsolve.krylov import Jacobi, cg_result  # noqa: E402
from lrsolve.operators.stencil import PoissonStencil, _face_coefficients  # noqa: E402

RTOL = 1e-13  # tight: gradcheck's finite differences see the solve error divided by eps
F64 = torch.float64

pytestmark = pytest.mark.filterwarnings("ignore:.*[Ss]parse.*:UserWarning")


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class Counter:
    """A CG solve that counts its calls (forward and adjoint alike)."""

    def __init__(self, jacobi: bool = False):
        self.calls = 0
        self.jacobi = jacobi

    def __call__(self, A, b):
        self.calls += 1
        M = Jacobi(A) if self.jacobi else None
        if b.ndim == 2:  # one call solves the whole batch, column by column
            return torch.stack([self._one(A, b[:, j], M) for j in range(b.shape[1])], dim=1)
        return self._one(A, b, M)

    @staticmethod
    def _one(A, b, M):
        r = cg_result(A, b, rtol=RTOL, M=M)
        assert r.converged, r.reason
        return r.x


def spd_dense(n, seed=0, cond=30.0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return torch.from_numpy((Q * np.geomspace(1.0, cond, n)) @ Q.T)


def spd_sparse(n, seed=0):
    """A random sparse SPD matrix (scipy CSR, sorted indices) with a symmetric pattern."""
    rng = np.random.default_rng(seed)
    B = sp.random(n, n, density=0.15, random_state=rng, format="csr")
    A = (B + B.T + sp.diags(np.full(n, 2.0 + 0.3 * n))).tocsr()
    A.sort_indices()
    return A


def rhs(n, k=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if k is None else (n, k)
    return torch.randn(shape, dtype=F64, generator=g)


# -- needs_grad ---------------------------------------------------------------------------

def test_needs_grad_truth_table():
    A = spd_dense(6)
    b = rhs(6)
    assert not ad.needs_grad(A.numpy(), b.numpy())
    assert not ad.needs_grad(A, b)
    assert ad.needs_grad(A, b.clone().requires_grad_())
    assert ad.needs_grad(A.clone().requires_grad_(), b)
    with torch.no_grad():
        assert not ad.needs_grad(A.clone().requires_grad_(), b.clone().requires_grad_())
    values = torch.tensor([2.0, 1.0, 1.0, 3.0], dtype=F64, requires_grad=True)
    csr = torch.sparse_csr_tensor(torch.tensor([0, 2, 4]), torch.tensor([0, 1, 0, 1]), values,
                                  size=(2, 2))
    assert ad.needs_grad(csr, torch.ones(2, dtype=F64))
    coo = torch.sparse_coo_tensor(torch.tensor([[0, 0, 1, 1], [0, 1, 0, 1]]), values, (2, 2))
    assert ad.needs_grad(coo, torch.ones(2, dtype=F64))
    a = torch.full((3, 3), 1.5, dtype=F64)
    assert not ad.needs_grad(PoissonStencil(3, 2, coefficient=a, backend="torch"), rhs(9))
    assert ad.needs_grad(PoissonStencil(3, 2, coefficient=a.clone().requires_grad_(),
                                        backend="torch"), rhs(9))
    assert not ad.needs_grad(PoissonStencil(3, 2, backend="torch"), rhs(9))


def test_attach_without_grad_returns_x_itself():
    A, b = spd_dense(5), rhs(5)
    x = torch.linalg.solve(A, b)
    assert ad.attach(x, A, b, lambda g: g) is x


# -- agreement with a dense direct solve -------------------------------------------------

def test_gradients_match_torch_linalg_solve():
    n = 15
    A0, b0 = spd_dense(n), rhs(n)
    A, b = A0.clone().requires_grad_(), b0.clone().requires_grad_()
    x = ad.differentiable_solve(A, b, Counter())
    weights = rhs(n, seed=7)
    (weights * x ** 2).sum().backward()
    A_ref, b_ref = A0.clone().requires_grad_(), b0.clone().requires_grad_()
    (weights * torch.linalg.solve(A_ref, b_ref) ** 2).sum().backward()
    assert torch.allclose(x, torch.linalg.solve(A0, b0), rtol=0, atol=1e-11)
    assert torch.allclose(b.grad, b_ref.grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(A.grad, A_ref.grad, rtol=1e-9, atol=1e-12)


# -- gradcheck ------------------------------------------------------------------------------

@pytest.mark.parametrize("jacobi", [False, True], ids=["cg", "pcg-jacobi"])
def test_gradcheck_rhs(jacobi):
    A = spd_dense(20, cond=50.0)
    b = rhs(20).requires_grad_()
    solver = Counter(jacobi=jacobi)
    assert torch.autograd.gradcheck(lambda b: ad.differentiable_solve(A, b, solver), (b,))


def test_gradcheck_dense_matrix_symmetric_cg():
    # CG needs a symmetric A, so the check perturbs S in A = (S + S^T)/2; the chain rule
    # through the symmetrisation tests the full-matrix gradient -lam x^T.
    n = 12
    S = spd_dense(n, seed=3).requires_grad_()
    b = rhs(n)

    def f(S, b):
        return ad.differentiable_solve(0.5 * (S + S.T), b, Counter())

    assert torch.autograd.gradcheck(f, (S, b.clone().requires_grad_()))


def test_gradcheck_dense_nonsymmetric_with_transposed_adjoint():
    # Entries perturbed independently (A not symmetric): checks that the adjoint solve is
    # with A^T and the gradient is -lam x^T, not its transpose.
    n = 10
    g = torch.Generator().manual_seed(5)
    A = (torch.randn(n, n, dtype=F64, generator=g) + 4 * torch.eye(n, dtype=F64))
    calls = []

    def f(A, b):
        x = torch.linalg.solve(A.detach(), b.detach())

        def adjoint(grad_x):
            calls.append(1)
            return torch.linalg.solve(A.detach().T, grad_x)
        return ad.attach(x, A, b, adjoint)

    assert torch.autograd.gradcheck(f, (A.requires_grad_(), rhs(n).requires_grad_()))
    assert calls


def _symmetric_csr_parametrisation(A: sp.csr_matrix):
    """Indices mapping each stored entry to a parameter shared by (i, j) and (j, i)."""
    coo = A.tocoo()
    rows, cols = A.nonzero()  # CSR order (sorted indices)
    pairs = {}
    index = np.empty(len(rows), dtype=np.int64)
    for e, (i, j) in enumerate(zip(rows, cols)):
        index[e] = pairs.setdefault((min(i, j), max(i, j)), len(pairs))
    params = np.empty(len(pairs))
    for (i, j, v) in zip(coo.row, coo.col, coo.data):
        params[pairs[(min(i, j), max(i, j))]] = v
    return torch.from_numpy(index), torch.from_numpy(params)


@pytest.mark.parametrize("jacobi", [False, True], ids=["cg", "pcg-jacobi"])
def test_gradcheck_sparse_csr_values(jacobi):
    A = spd_sparse(20)
    crow = torch.from_numpy(A.indptr.astype(np.int64))
    col = torch.from_numpy(A.indices.astype(np.int64))
    index, params = _symmetric_csr_parametrisation(A)
    solver = Counter(jacobi=jacobi)

    def f(p, b):
        csr = torch.sparse_csr_tensor(crow, col, p[index], size=A.shape)
        return ad.differentiable_solve(csr, b, solver)

    assert torch.autograd.gradcheck(f, (params.requires_grad_(), rhs(20).requires_grad_()))


def test_gradcheck_sparse_csr_nonsymmetric_values():
    # Every stored value perturbed on its own, against a transposed dense adjoint: the
    # gradient -lam[row] x[col] sits on the right entries of the pattern.
    A = spd_sparse(14, seed=4)
    A.data = A.data * (1 + 0.2 * np.random.default_rng(0).standard_normal(A.nnz))
    crow = torch.from_numpy(A.indptr.astype(np.int64))
    col = torch.from_numpy(A.indices.astype(np.int64))

    def f(values, b):
        csr = torch.sparse_csr_tensor(crow, col, values, size=A.shape)
        dense = csr.detach().to_dense()
        x = torch.linalg.solve(dense, b.detach())
        return ad.attach(x, csr, b, lambda g: torch.linalg.solve(dense.T, g))

    values = torch.from_numpy(A.data.copy()).requires_grad_()
    assert torch.autograd.gradcheck(f, (values, rhs(14).requires_grad_()))


def test_gradcheck_sparse_coo_values():
    A = spd_sparse(12, seed=2).tocoo()
    indices = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))

    def f(values, b):
        coo = torch.sparse_coo_tensor(indices, values, A.shape)
        dense = coo.detach().to_dense()
        x = torch.linalg.solve(dense, b.detach())
        return ad.attach(x, coo, b, lambda g: torch.linalg.solve(dense.T, g))

    values = torch.from_numpy(A.data.copy()).requires_grad_()
    assert torch.autograd.gradcheck(f, (values, rhs(12).requires_grad_()))


@pytest.mark.parametrize("dim,n,jacobi", [(2, 4, False), (2, 4, True), (1, 9, False),
                                          (3, 3, False)],
                         ids=["2d-cg", "2d-pcg-jacobi", "1d-cg", "3d-cg"])
def test_gradcheck_stencil_coefficient(dim, n, jacobi):
    g = torch.Generator().manual_seed(dim)
    a = (0.5 + torch.rand((n,) * dim, dtype=F64, generator=g)).requires_grad_()
    b = rhs(n ** dim).requires_grad_()
    solver = Counter(jacobi=jacobi)

    def f(a, b):
        return ad.differentiable_solve(PoissonStencil(n, dim, coefficient=a, backend="torch"),
                                       b, solver)

    assert torch.autograd.gradcheck(f, (a, b))


def test_gradcheck_stencil_with_shift_unscaled():
    a = (1.0 + torch.rand((4, 4), dtype=F64, generator=torch.Generator().manual_seed(3)))
    a.requires_grad_()

    def f(a):
        S = PoissonStencil(4, 2, coefficient=a, shift=0.7, scaled=False, backend="torch")
        return ad.differentiable_solve(S, rhs(16), Counter())

    assert torch.autograd.gradcheck(f, (a,))


# -- batches -----------------------------------------------------------------------------------

def test_gradcheck_batched_rhs_and_matrix():
    n, k = 10, 3
    S = spd_dense(n, seed=8).requires_grad_()
    B = rhs(n, k).requires_grad_()
    solver = Counter()

    def f(S, B):
        return ad.differentiable_solve(0.5 * (S + S.T), B, solver)

    assert torch.autograd.gradcheck(f, (S, B))


def test_gradcheck_batched_stencil_coefficient():
    a = (0.5 + torch.rand((4, 4), dtype=F64, generator=torch.Generator().manual_seed(9)))
    B = rhs(16, 3)

    def f(a):
        return ad.differentiable_solve(PoissonStencil(4, 2, coefficient=a, backend="torch"),
                                       B, Counter())

    assert torch.autograd.gradcheck(f, (a.requires_grad_(),))


def test_batched_gradient_equals_sum_of_columns():
    n, k = 12, 4
    A0, B0 = spd_dense(n, seed=6), rhs(n, k)
    A = A0.clone().requires_grad_()
    ad.differentiable_solve(A, B0, Counter()).pow(2).sum().backward()
    total = torch.zeros_like(A0)
    for j in range(k):
        Aj = A0.clone().requires_grad_()
        ad.differentiable_solve(Aj, B0[:, j], Counter()).pow(2).sum().backward()
        total += Aj.grad
    assert torch.allclose(A.grad, total, rtol=1e-9, atol=1e-13)


# -- cost: one adjoint solve ---------------------------------------------------------------------

@pytest.mark.parametrize("case", ["rhs", "dense", "csr", "stencil", "batch"])
def test_backward_costs_exactly_one_solve(case):
    n = 16
    b = rhs(n).requires_grad_()
    if case == "rhs":
        A = spd_dense(n)
    elif case == "dense":
        A = spd_dense(n).requires_grad_()
    elif case == "csr":
        M = spd_sparse(n)
        values = torch.from_numpy(M.data.copy()).requires_grad_()
        A = torch.sparse_csr_tensor(torch.from_numpy(M.indptr.astype(np.int64)),
                                    torch.from_numpy(M.indices.astype(np.int64)), values,
                                    size=M.shape)
    elif case == "stencil":
        A = PoissonStencil(4, 2, coefficient=torch.full((4, 4), 2.0, dtype=F64,
                                                        requires_grad=True), backend="torch")
    else:
        A = spd_dense(n).requires_grad_()
        b = rhs(n, 5).requires_grad_()
    solver = Counter()
    x = ad.differentiable_solve(A, b, solver)
    assert solver.calls == 1  # the forward solve
    loss = x.sum() + (x ** 2).sum() + x.abs().max()  # x used three times: still one solve
    loss.backward()
    assert solver.calls == 2
    assert b.grad is not None and torch.isfinite(b.grad).all()


def test_adjoint_count_with_only_the_rhs_differentiable():
    # A constant, b requires grad: one adjoint solve, the gradient is A^{-1} 1 exactly.
    A, b = spd_dense(8), rhs(8).requires_grad_()
    calls = []

    def adjoint(g):
        calls.append(1)
        return torch.linalg.solve(A, g)
    x = ad.attach(torch.linalg.solve(A, b.detach()), A, b, adjoint)
    x.sum().backward()
    assert len(calls) == 1
    assert torch.allclose(b.grad, torch.linalg.solve(A, torch.ones(8, dtype=F64)), atol=1e-13)


# -- limits and errors ------------------------------------------------------------------------

def test_double_backward_is_refused():
    A, b = spd_dense(6), rhs(6).requires_grad_()
    x = ad.differentiable_solve(A, b, Counter())
    (grad,) = torch.autograd.grad((x ** 2).sum(), b, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()


def test_unconverged_adjoint_result_warns():
    A, b = spd_dense(12, cond=1e4), rhs(12).requires_grad_()
    x = ad.attach(torch.linalg.solve(A, b.detach()), A, b,
                  lambda g: cg_result(A, g, rtol=1e-12, maxiter=2))
    with pytest.warns(RuntimeWarning, match="did not converge"):
        x.sum().backward()


def test_bad_arguments():
    A, b = spd_dense(5), rhs(5).requires_grad_()
    x = torch.linalg.solve(A, b.detach())
    with pytest.raises(ValueError, match="b must have the shape of x"):
        ad.attach(x, A, rhs(4), lambda g: g)
    with pytest.raises(ValueError, match="A must have shape"):
        ad.attach(x, spd_dense(4), b, lambda g: g)
    with pytest.raises(TypeError, match="adjoint_solve"):
        ad.attach(x, A, b, None)
    with pytest.raises(TypeError, match="x must be"):
        ad.attach(x.numpy(), A, b, lambda g: g)
    bad = ad.attach(x, A, b, lambda g: g[:-1])
    with pytest.raises(ValueError, match="adjoint_solve returned shape"):
        bad.sum().backward()


# -- the torch stencil is the stencil ------------------------------------------------------

@pytest.mark.parametrize("dim,n", [(1, 7), (2, 5), (3, 4)])
@pytest.mark.parametrize("variable", [False, True], ids=["constant", "variable"])
def test_stencil_matvec_matches_operator(dim, n, variable):
    rng = np.random.default_rng(dim)
    a = 0.5 + rng.random((n,) * dim) if variable else 1.7
    S_np = PoissonStencil(n, dim, coefficient=a, shift=0.3)
    S_t = PoissonStencil(n, dim, coefficient=torch.as_tensor(a) if variable else a, shift=0.3,
                         backend="torch")
    X = rng.standard_normal((n ** dim, 3))
    expected = np.stack([S_np @ X[:, j] for j in range(3)], axis=1)
    got = ad.stencil_matvec(S_t, torch.from_numpy(X)).numpy()
    assert np.abs(got - expected).max() <= 1e-12 * np.abs(expected).max()
    got1 = ad.stencil_matvec(S_np, torch.from_numpy(X[:, 0])).numpy()
    assert np.abs(got1 - expected[:, 0]).max() <= 1e-12 * np.abs(expected).max()
    if variable:
        faces = ad.stencil_face_coefficients(torch.as_tensor(a))
        for mine, theirs in zip(faces, _face_coefficients(a)):
            np.testing.assert_allclose(mine.numpy(), theirs, rtol=0, atol=1e-15)


def test_stencil_keeps_the_torch_coefficient():
    a = torch.full((3, 3), 2.0, dtype=F64, requires_grad=True)
    assert PoissonStencil(3, 2, coefficient=a, backend="torch").coefficient_tensor is a
    assert PoissonStencil(3, 2, coefficient=a.detach().numpy()).coefficient_tensor is None


# -- through lr.solve / lr.Solver (the wiring) --------------------------------------------------

@pytest.mark.parametrize("method", ["cg", "pcg-jacobi"])
def test_lr_solve_gradcheck_rhs_and_dense_matrix(method):
    import lrsolve as lr
    S = spd_dense(12, seed=11)

    def f(S, b):
        return lr.solve(0.5 * (S + S.T), b, method=method, rtol=RTOL).x

    assert torch.autograd.gradcheck(f, (S.requires_grad_(), rhs(12).requires_grad_()))


@pytest.mark.parametrize("method", ["cg", "pcg-jacobi"])
def test_lr_solve_gradcheck_sparse_csr_values(method):
    import lrsolve as lr
    A = spd_sparse(18, seed=12)
    crow = torch.from_numpy(A.indptr.astype(np.int64))
    col = torch.from_numpy(A.indices.astype(np.int64))
    index, params = _symmetric_csr_parametrisation(A)

    def f(p):
        csr = torch.sparse_csr_tensor(crow, col, p[index], size=A.shape)
        return lr.solve(csr, rhs(18), method=method, rtol=RTOL).x

    assert torch.autograd.gradcheck(f, (params.requires_grad_(),))


def test_lr_solve_gradcheck_stencil_coefficient_batched():
    import lrsolve as lr
    a = (0.5 + torch.rand((4, 4), dtype=F64, generator=torch.Generator().manual_seed(13)))
    B = rhs(16, 2).requires_grad_()

    def f(a, B):
        A = PoissonStencil(4, 2, coefficient=a, backend="torch")
        return lr.solve(A, B, method="pcg-jacobi", rtol=RTOL).x

    assert torch.autograd.gradcheck(f, (a.requires_grad_(), B))


@pytest.mark.parametrize("method", ["sor", "ssor-cg"])
def test_lr_solve_gradcheck_rhs_relaxation_methods(method):
    import lrsolve as lr
    A = PoissonStencil(4, 2).to_csr(backend="torch")

    def f(b):
        return lr.solve(A, b, method=method, rtol=RTOL).x

    assert torch.autograd.gradcheck(f, (rhs(16).requires_grad_(),))


@pytest.mark.parametrize("method", ["cg", "pcg-jacobi"])
@pytest.mark.parametrize("batch", [None, 4], ids=["vector", "batch"])
def test_solver_backward_costs_exactly_one_solve(method, batch):
    import lrsolve as lr
    a = torch.full((5, 5), 1.3, dtype=F64, requires_grad=True)
    b = rhs(25, batch).requires_grad_()
    S = lr.Solver(PoissonStencil(5, 2, coefficient=a, backend="torch"), method=method,
                  rtol=1e-12)
    x = S.solve(b).x
    assert S.counts["solves"] == 1 and S.counts["adjoint_solves"] == 0
    (x.sum() + x.pow(2).sum() + x.abs().max()).backward()  # x used three times
    assert S.counts["adjoint_solves"] == 1
    assert S.counts["solves"] == 2  # the forward and the one adjoint, nothing rebuilt
    assert S.counts["rebuilds"] == 0
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


# -- the parameter-identification example ---------------------------------------------------

def test_parameter_identification_example_recovers_the_coefficient():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "parameter_identification.py"
    spec = importlib.util.spec_from_file_location("parameter_identification", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = module.identify(n=16, seed=0)
    # The start is wrong by a factor of up to 2.4; the fit must land within 1% everywhere.
    assert out["initial_error"] > 0.5
    assert out["relative_error"] < 1e-2, out
    # Each objective evaluation is one forward solve and each gradient one adjoint solve.
    assert out["adjoint_solves"] == out["gradient_evaluations"]
