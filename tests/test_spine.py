"""The spine: one operator protocol, Solver objects, Status, batched solves, SciPy contract."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import lrsolve as lr
from lrsolve import Status

torch = pytest.importorskip("torch")


def _spd(n=40, seed=0, complex_=False):
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=0.1, random_state=seed)
    if complex_:
        A = A + 1j * sp.random(n, n, density=0.1, random_state=seed + 1)
    A = A @ A.conj().T + n * sp.identity(n)
    b = rng.standard_normal(n) + (1j * rng.standard_normal(n) if complex_ else 0)
    return sp.csr_matrix(A), b


def _kinds(A):
    """The input kinds every method must accept (the table in docs/api.md)."""
    dense = A.toarray()
    return {
        "scipy-csr": A,
        "scipy-array": sp.csr_array(A),
        "scipy-coo": A.tocoo(),
        "numpy-dense": dense,
        "LinearOperator": spla.aslinearoperator(A),
        "torch-dense": torch.from_numpy(dense),
        "torch-csr": torch.from_numpy(dense).to_sparse_csr(),
        "torch-coo": torch.from_numpy(dense).to_sparse_coo(),
        "callable": lr.as_operator(lambda v: A @ v, shape=A.shape),
    }


# which methods can use which kinds (matrix-free inputs: only methods without entries)
ENTRIES = {"pcg-ic0", "pcg-amg", "sor", "ssor-cg", "pcg-jacobi"}
HOST_ONLY = {"pcg-ic0", "pcg-amg", "sor", "ssor-cg"}


@pytest.mark.parametrize("kind", list(_kinds(_spd()[0])))
@pytest.mark.parametrize("method", ["cg", "pcg-jacobi", "pcg-ic0", "pcg-amg", "sor", "ssor-cg"])
def test_every_method_takes_every_kind_or_says_why(kind, method):
    A, b = _spd(60, seed=1)
    Ain = _kinds(A)[kind]
    bin_ = torch.from_numpy(b) if kind.startswith("torch") else b
    matrix_free = kind in ("LinearOperator", "callable")
    if matrix_free and method in ENTRIES:
        with pytest.raises(TypeError, match="entries|matrix-free"):
            lr.solve(Ain, bin_, method=method, rtol=1e-8)
        return
    r = lr.solve(Ain, bin_, method=method, rtol=1e-8, maxiter=5000,
                 **({"omega": 1.2} if method in ("sor", "ssor-cg") else {}))
    assert r.status is Status.CONVERGED, (kind, method, r.reason)
    x = lr.backend.to_numpy(r.x)
    assert np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b) * (1 + 1e-9)
    assert lr.backend.backend_name(r.x) == lr.backend.backend_name(bin_)


def test_as_operator_protocol():
    A, _ = _spd(30)
    for kind, Ain in _kinds(A).items():
        op = lr.as_operator(Ain)
        assert op.shape == (30, 30)
        x = np.ones(30) if not kind.startswith("torch") else torch.ones(30, dtype=torch.float64)
        X = np.ones((30, 3)) if not kind.startswith("torch") else torch.ones(30, 3,
                                                                            dtype=torch.float64)
        y = lr.backend.to_numpy(op @ x)
        Y = lr.backend.to_numpy(op @ X)
        np.testing.assert_allclose(y, A @ np.ones(30), rtol=1e-12)
        np.testing.assert_allclose(Y, A @ np.ones((30, 3)), rtol=1e-12)
        if op.has_entries:
            np.testing.assert_allclose(lr.backend.to_numpy(op.diagonal()), A.diagonal())
            np.testing.assert_allclose(op.to_csr("numpy").toarray(), A.toarray())
            np.testing.assert_allclose(lr.backend.to_numpy(op.rmatvec(x)), A.T @ np.ones(30))
        else:
            with pytest.raises(TypeError, match="entries"):
                op.diagonal()
    with pytest.raises(TypeError, match="shape="):
        lr.as_operator(lambda v: v)
    with pytest.raises(TypeError, match="M of type"):
        lr.as_operator(object(), name="M")


def test_status_everywhere_and_info_derived():
    P = lr.problems.poisson(n=16, dim=2)
    r = lr.solve(P.A, P.b, method="cg", rtol=1e-10, maxiter=3)
    assert r.status is Status.MAXITER and r.info == 3 and not r.converged
    A = sp.diags([1.0, -1.0, 2.0]).tocsr()
    r = lr.solve(A, np.ones(3), method="cg")
    assert r.status is Status.BREAKDOWN and r.info < 0 and np.all(np.isfinite(r.x))
    x, info = lr.solve(P.A, P.b, method="cg")
    assert info == 0


def test_solver_setup_once_solve_many_update():
    P = lr.problems.poisson(n=32, dim=2, format="csr")
    S = lr.Solver(P.A, method="pcg-amg", rtol=1e-8)
    assert S.setup_time > 0
    r1 = S.solve(P.b)
    r2 = S.solve(2 * P.b)
    assert r1.converged and r2.converged
    np.testing.assert_allclose(r2.x, 2 * r1.x, rtol=1e-6)
    ml = S.impl.preconditioner
    A2 = (P.A * 1.05).tocsr()
    S.update(A2)                                     # "auto": keep the hierarchy for now
    assert S.impl.preconditioner is ml
    r3 = S.solve(P.b)
    assert r3.converged
    assert np.linalg.norm(P.b - A2 @ r3.x) <= 1e-8 * np.linalg.norm(P.b)
    S2 = lr.Solver(P.A, method="pcg-amg", rebuild="always")
    ml2 = S2.impl.preconditioner
    S2.update(A2)
    assert S2.impl.preconditioner is not ml2 and S2.counts["updates"] == 1
    with pytest.raises(ValueError, match="shape"):
        S.update(sp.identity(10, format="csr"))
    with pytest.raises(TypeError, match="unexpected options"):
        lr.Solver(P.A, method="pcg-jacobi", bogus=1)
    with pytest.raises(ValueError, match="method must be one of"):
        lr.Solver(P.A, method="nope")


def test_auto_rebuild_when_iterations_grow():
    P = lr.problems.poisson(n=32, dim=2, format="csr")
    S = lr.Solver(P.A, method="pcg-ic0", rtol=1e-8)
    base = S.solve(P.b).iterations
    # a very different matrix: the stale factor needs many more iterations -> rebuild
    A2 = (P.A + 5e4 * sp.diags(np.linspace(0, 1, P.A.shape[0]) ** 8)).tocsr()
    S.update(A2)
    r = S.solve(P.b)
    assert r.converged
    if r.iterations > 1.5 * base + 2:
        S.solve(P.b)
        assert S.counts["rebuilds"] == 1


@pytest.mark.parametrize("fmt", ["csr", "stencil"])
@pytest.mark.parametrize("method", ["cg", "pcg-jacobi", "pcg-amg", "sor", "dcdm"])
def test_batched_rhs_each_column_converges(fmt, method):
    if method == "dcdm" and fmt == "csr":
        pytest.skip("dcdm needs a grid operator")
    P = lr.problems.poisson(n=24, dim=2, format=fmt)
    rng = np.random.default_rng(0)
    B = rng.standard_normal((P.A.shape[0], 5))
    B[:, 2] *= 1e-3
    B[:, 4] = 0.0
    r = lr.solve(P.A, B, method=method, rtol=1e-8,
                 **({"omega": 1.7} if method == "sor" else {}))
    assert r.x.shape == B.shape and r.converged
    cols = r.stats["columns"]
    assert len(cols) == 5 and all(c["status"] is Status.CONVERGED for c in cols)
    A = P.A.to_csr() if fmt == "stencil" else P.A
    for j in range(5):
        assert np.linalg.norm(B[:, j] - A @ r.x[:, j]) <= 1e-8 * np.linalg.norm(B[:, j]) + 1e-300
        single = lr.solve(P.A, B[:, j], method=method, rtol=1e-8,
                          **({"omega": 1.7} if method == "sor" else {}))
        if method in ("cg", "pcg-jacobi"):
            assert abs(single.iterations - cols[j]["iterations"]) <= 1


def test_batched_torch_matches_numpy():
    P = lr.problems.poisson(n=16, dim=2)
    Pt = lr.problems.poisson(n=16, dim=2, backend="torch")
    B = np.random.default_rng(1).standard_normal((256, 4))
    r = lr.solve(P.A, B, method="cg", rtol=1e-10)
    rt = lr.solve(Pt.A, torch.from_numpy(B), method="cg", rtol=1e-10)
    np.testing.assert_allclose(rt.x.numpy(), r.x, rtol=1e-7, atol=1e-10)


# -- SciPy conformance -------------------------------------------------------------------

@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("form", ["sparse", "dense", "linop"])
def test_cg_matches_scipy(complex_, form):
    A, b = _spd(50, seed=3, complex_=complex_)
    Ain = {"sparse": A, "dense": A.toarray(), "linop": spla.aslinearoperator(A)}[form]
    calls_lr, calls_sp = [], []
    x0 = np.zeros(50, dtype=b.dtype) + 0.1
    x0_copy = x0.copy()
    x, info = lr.cg(Ain, b, x0=x0, rtol=1e-9, callback=lambda xk: calls_lr.append(1))
    xs, infos = spla.cg(Ain, b, x0=x0, rtol=1e-9, callback=lambda xk: calls_sp.append(1))
    assert info == infos == 0
    assert np.array_equal(x0, x0_copy)                 # x0 never overwritten
    assert x.dtype == xs.dtype
    np.testing.assert_allclose(x, xs, rtol=1e-6, atol=1e-9)
    assert abs(len(calls_lr) - len(calls_sp)) <= 1     # one callback per iteration
    # maxiter reached: info = iterations done, as SciPy
    x, info = lr.cg(Ain, b, rtol=1e-14, maxiter=3)
    xs, infos = spla.cg(Ain, b, rtol=1e-14, maxiter=3)
    assert info == infos == 3


def test_cg_real_b_complex_A_gives_complex_x():
    A, _ = _spd(30, seed=2, complex_=True)
    x, info = lr.cg(A, np.ones(30), rtol=1e-10)
    xs, _ = spla.cg(A, np.ones(30), rtol=1e-10)
    assert info == 0 and np.iscomplexobj(x)
    np.testing.assert_allclose(x, xs, rtol=1e-7, atol=1e-10)


def test_cg_x0_Mb_and_atol_semantics():
    A, b = _spd(40, seed=4)
    M = sp.diags(1 / A.diagonal())
    x, info = lr.cg(A, b, x0="Mb", M=M, rtol=1e-10)
    xs, infos = spla.cg(A, b, x0="Mb", M=M, rtol=1e-10)
    assert info == infos == 0
    np.testing.assert_allclose(x, xs, rtol=1e-7)
    # atol alone decides when rtol = 0
    x, info = lr.cg(A, b, rtol=0.0, atol=1e-3)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-3
    for bad, exc in ((None, ValueError), ("legacy", ValueError), (-1.0, ValueError)):
        with pytest.raises(exc, match="atol"):
            spla.cg(A, b, atol=bad)
        with pytest.raises(exc, match="atol"):
            lr.cg(A, b, atol=bad)
    with pytest.raises(ValueError, match="shape"):
        lr.cg(A, b, M=sp.identity(3))
    with pytest.raises(ValueError, match="x0"):
        lr.cg(A, b, x0="zeros")
    # the numpy scalar tolerances SciPy users pass
    x, info = lr.cg(A, b, rtol=np.float32(1e-6), atol=np.float64(0))
    assert info == 0


# -- hardening items of the core (issue 17: 1 IC0, 2, 4, 5, 15) ----------------------------

@pytest.mark.parametrize("method", ["cg", "pcg-jacobi", "pcg-ic0", "pcg-amg", "sor", "ssor-cg",
                                    "dcdm"])
@pytest.mark.parametrize("scale", [1e-170, 1e160])
def test_tiny_and_huge_b_are_solved_not_reported_as_zero(method, scale):
    P = lr.problems.poisson(n=16, dim=2, rhs="random", seed=0)
    b = P.b * scale
    r = lr.solve(P.A, b, method=method, rtol=1e-8,
                 **({"omega": 1.5} if method in ("sor", "ssor-cg") else {}))
    assert r.converged and np.any(r.x != 0)
    A = P.A.to_csr()
    res = lr.backend.norm(b - A @ r.x)
    assert res <= 1e-8 * lr.backend.norm(b) * (1 + 1e-6)


def test_float32_unattainable_rtol_stops_as_stagnation():
    P = lr.problems.poisson(n=64, dim=2, rhs="random", seed=0, format="csr")
    A = P.A.astype(np.float32)
    b = P.b.astype(np.float32)
    r = lr.solve(A, b, method="cg", rtol=1e-12)
    assert r.status is Status.STAGNATION and r.info > 0
    assert r.iterations < 2000          # not 10 n = 40,960


def test_amg_is_reproducible_and_leaves_global_state_alone():
    P = lr.problems.poisson(n=40, dim=2, format="csr")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    r1 = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-10, seed=7)
    r2 = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-10, seed=7)
    assert np.array_equal(r1.x, r2.x)
    assert np.array_equal(np.random.get_state()[1], before)
    with pytest.raises(ValueError, match="cycle"):
        lr.krylov.AMG(P.A, cycle="Q")


def test_preconditioner_messages_and_shapes():
    P = lr.problems.poisson(n=8, dim=2, format="csr")
    A = P.A.tolil()
    A[3, 3] = 0.0
    with pytest.raises(ValueError, match="zero diagonal"):
        lr.solve(A.tocsr(), P.b, method="pcg-amg")
    At = torch.from_numpy(P.A.toarray()).to_sparse_csr()
    r = lr.solve(At, torch.from_numpy(P.b), method="pcg-ic0", rtol=1e-8)
    assert r.converged                                  # torch CPU CSR works for IC0
    B = P.A.toarray()
    B[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        lr.krylov.IC0(sp.csr_matrix(B))
    M = lr.krylov.IC0(P.A)
    with pytest.raises(ValueError, match="shape"):
        M @ np.ones(5)
    with pytest.raises(ValueError, match="shape"):
        M @ np.ones(100)
    V = np.random.default_rng(0).standard_normal((64, 3))
    np.testing.assert_allclose(M @ V, np.stack([M @ V[:, j] for j in range(3)], 1))
    with pytest.raises(TypeError, match="complex"):
        lr.solve(torch.from_numpy(P.A.toarray()),
                 torch.ones(64, dtype=torch.complex128), method="cg")


def test_kept_preconditioner_that_fails_is_rebuilt_and_the_solve_repeated():
    """A time loop whose matrix changes structurally (an obstacle moves): the AMG hierarchy
    kept by update() breaks down on the new matrix; the Solver rebuilds and solves again."""
    P = lr.problems.poisson(n=24, dim=2, format="csr")
    S = lr.Solver(P.A, method="pcg-amg", rtol=1e-8)
    assert S.solve(P.b).converged
    # a different, still SPD matrix on which the old hierarchy is a poor (indefinite) guess
    rng = np.random.default_rng(0)
    d = 10.0 ** rng.uniform(-4, 4, P.A.shape[0])
    A2 = (sp.diags(np.sqrt(d)) @ P.A @ sp.diags(np.sqrt(d))).tocsr()
    S.update(A2)
    r = S.solve(P.b, maxiter=60)
    assert r.converged, r.reason
    assert np.linalg.norm(P.b - A2 @ r.x) <= 1e-8 * np.linalg.norm(P.b)
    assert r.stats["rebuilt_after_failure"] and S.counts["rebuilds"] == 1
