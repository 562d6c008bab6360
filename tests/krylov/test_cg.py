"""CG / PCG: parity with scipy.sparse.linalg.cg, tolerances, backends, breakdowns, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from hypothesis import given, settings, strategies as st

import lrsolve as lr
from lrsolve import backend as bk


def _scipy_iterations(A, b, **kw):
    count = [0]
    x, info = sla.cg(A, b, callback=lambda xk: count.__setitem__(0, count[0] + 1), **kw)
    return x, info, count[0]


def _lr_iterations(A, b, **kw):
    count = [0]
    x, info = lr.cg(A, b, callback=lambda xk: count.__setitem__(0, count[0] + 1), **kw)
    return x, info, count[0]


@pytest.mark.parametrize("rtol", [1e-5, 1e-8])
@pytest.mark.parametrize("case", ["poisson2d", "poisson3d", "random_sparse", "variable"])
def test_iterations_match_scipy(case, rtol, rng, spd_factory):
    if case == "poisson2d":
        A = lr.problems.poisson(48, 2, format="csr").A
    elif case == "poisson3d":
        A = lr.problems.poisson(14, 3, format="csr").A
    elif case == "variable":
        a = np.exp(rng.standard_normal((40, 40)))
        A = lr.problems.poisson(40, 2, coefficient=a, format="csr").A
    else:
        A = spd_factory(600, rng, density=0.01)
    b = rng.standard_normal(A.shape[0])
    xs, info_s, it_s = _scipy_iterations(A, b, rtol=rtol)
    x, info, it = _lr_iterations(A, b, rtol=rtol)
    assert info == 0 and info_s == 0
    assert abs(it - it_s) <= max(1, 0.02 * it_s), (it, it_s)
    assert np.linalg.norm(b - A @ x) <= rtol * np.linalg.norm(b)


def test_atol_and_x0_follow_scipy(rng):
    A = lr.problems.poisson(30, 2, format="csr").A
    b = rng.standard_normal(A.shape[0])
    x0 = rng.standard_normal(A.shape[0])
    atol = 1e-3 * np.linalg.norm(b)
    _, _, it_s = _scipy_iterations(A, b, x0=x0, rtol=0.0, atol=atol)
    x, info, it = _lr_iterations(A, b, x0=x0, rtol=0.0, atol=atol)
    assert info == 0 and abs(it - it_s) <= 1
    assert np.linalg.norm(b - A @ x) <= atol


def test_maxiter_reports_iteration_count(rng):
    A = lr.problems.poisson(40, 2, format="csr").A
    b = rng.standard_normal(A.shape[0])
    x, info = lr.cg(A, b, rtol=1e-12, maxiter=7)
    xs, info_s = sla.cg(A, b, rtol=1e-12, maxiter=7)
    assert info == 7 == info_s
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x, xs, rtol=1e-10, atol=1e-12)


def test_linear_operator_and_preconditioner(rng):
    A = lr.problems.poisson(32, 2, format="csr").A
    b = rng.standard_normal(A.shape[0])
    Aop = sla.aslinearoperator(A)
    dinv = 1.0 / A.diagonal()
    M = sla.LinearOperator(A.shape, matvec=lambda v: dinv * v)
    xs, info_s, it_s = _scipy_iterations(Aop, b, rtol=1e-8, M=M)
    x, info, it = _lr_iterations(Aop, b, rtol=1e-8, M=M)
    assert info == info_s == 0 and abs(it - it_s) <= 1
    np.testing.assert_allclose(x, xs, rtol=1e-6, atol=1e-9)


def test_complex_hermitian_matches_scipy(rng):
    n = 80
    B = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    A = B @ B.conj().T + n * np.eye(n)
    b = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    xs, info_s, it_s = _scipy_iterations(A, b, rtol=1e-10)
    x, info, it = _lr_iterations(A, b, rtol=1e-10)
    assert info == 0 and x.dtype == np.complex128
    assert abs(it - it_s) <= 1
    assert np.linalg.norm(b - A @ x) <= 1e-10 * np.linalg.norm(b)


def test_torch_matches_numpy_stencil_and_csr(backend, rng):
    if backend == "cupy":
        pytest.importorskip("cupy")
    P_np = lr.problems.poisson(24, 2, rhs="random", seed=3)
    x_ref = lr.solve(P_np.A, P_np.b, rtol=1e-10).x
    for fmt in ("stencil", "csr"):
        P = lr.problems.poisson(24, 2, rhs="random", seed=3, backend=backend, format=fmt)
        r = lr.solve(P.A, P.b, rtol=1e-10)
        assert bk.backend_name(r.x) == backend and r.x.dtype == P.b.dtype
        assert r.converged
        assert np.max(np.abs(bk.to_numpy(r.x) - x_ref)) <= 1e-8 * np.max(np.abs(x_ref))


def test_torch_dense_and_device_preserved():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    B = rng.standard_normal((50, 50))
    A = torch.from_numpy(B @ B.T + 50 * np.eye(50))
    b = torch.from_numpy(rng.standard_normal(50))
    x, info = lr.cg(A, b, rtol=1e-12)
    assert isinstance(x, torch.Tensor) and x.device == b.device and info == 0
    assert torch.linalg.norm(b - A @ x) <= 1e-12 * torch.linalg.norm(b)


def test_float32_never_claims_false_convergence():
    P = lr.problems.poisson(64, 2, rhs="random", seed=1, dtype=np.float32, format="csr")
    A64 = P.A.astype(np.float64)
    r = lr.solve(P.A, P.b, rtol=1e-6, maxiter=5000)
    true_rel = np.linalg.norm(P.b.astype(np.float64) - A64 @ r.x.astype(np.float64)) / np.linalg.norm(P.b)
    if r.converged:
        assert true_rel <= 1.5e-6  # the float32 rounding of the check itself
    else:
        assert r.info > 0 and np.all(np.isfinite(r.x))
    assert r.x.dtype == np.float32


def test_indefinite_reports_breakdown(rng):
    n = 60
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.linspace(-1.0, 2.0, n)) @ Q.T
    b = rng.standard_normal(n)
    x, info = lr.cg(A, b, rtol=1e-10, maxiter=500)
    r = lr.solve(A, b, rtol=1e-10, maxiter=500)
    assert info != 0 and not r.converged
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(r.x))
    assert r.reason


def test_negative_definite_is_breakdown_not_nan():
    A = -np.eye(5)
    x, info = lr.cg(A, np.ones(5))
    assert info < 0 and np.all(np.isfinite(x))


def test_zero_rhs_gives_zero():
    A = lr.problems.poisson(8, 2, format="csr").A
    x, info = lr.cg(A, np.zeros(64))
    assert info == 0 and np.all(x == 0)


@pytest.mark.parametrize("bad", ["nan_b", "inf_A", "nan_sparse_A", "shape", "nonsquare", "x0",
                                 "rtol", "atol", "maxiter", "b_matrix"])
def test_bad_input_names_argument(bad):
    A = lr.problems.poisson(6, 2, format="csr").A
    b = np.ones(36)
    kwargs = {}
    expect = "b"
    if bad == "nan_b":
        b = b.copy(); b[3] = np.nan
    elif bad == "inf_A":
        A = A.toarray(); A[0, 0] = np.inf; expect = "A"
    elif bad == "nan_sparse_A":
        A = A.copy(); A.data[0] = np.nan; expect = "A"
    elif bad == "shape":
        b = np.ones(35); expect = "b"
    elif bad == "nonsquare":
        A = np.ones((36, 35)); expect = "A"
    elif bad == "x0":
        kwargs["x0"] = np.ones(5); expect = "x0"
    elif bad == "rtol":
        kwargs["rtol"] = -1.0; expect = "rtol"
    elif bad == "atol":
        kwargs["atol"] = -1e-3; expect = "atol"
    elif bad == "maxiter":
        kwargs["maxiter"] = -2; expect = "maxiter"
    elif bad == "b_matrix":
        b = np.ones((36, 2)); expect = "b"
    with pytest.raises((ValueError, TypeError), match=expect):
        lr.cg(A, b, **kwargs)


def test_backend_mix_is_type_error():
    torch = pytest.importorskip("torch")
    A = lr.problems.poisson(6, 2, format="csr", backend="torch").A
    with pytest.raises(TypeError, match="mix"):
        lr.cg(A, np.ones(36))
    with pytest.raises(TypeError, match="backend"):
        lr.problems.poisson(6, 2).A @ torch.ones(36, dtype=torch.float64)


def test_unknown_method():
    P = lr.problems.poisson(6, 2)
    with pytest.raises(ValueError, match="method"):
        lr.solve(P.A, P.b, method="gmres-magic")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 30), log_cond=st.floats(0.0, 4.0), seed=st.integers(0, 10_000),
       rtol=st.sampled_from([1e-4, 1e-7, 1e-10]))
def test_property_random_spd_converges(n, log_cond, seed, rtol):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.geomspace(1.0, 10.0 ** log_cond, n)) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.standard_normal(n)
    r = lr.solve(A, b, rtol=rtol, maxiter=20 * n)
    assert r.converged
    assert np.linalg.norm(b - A @ r.x) <= rtol * np.linalg.norm(b)
    assert r.residuals[-1] <= rtol * np.linalg.norm(b)


def test_conjugate_directions_public_in_krylov_matches_cg():
    """The generic loop is public in lrsolve.krylov; with the identity generator it is CG."""
    import lrsolve as lr
    from lrsolve.krylov import conjugate_directions, identity_direction
    P = lr.problems.poisson(n=24, dim=2, rhs="random", seed=3)
    ref = lr.solve(P.A, P.b, method="cg", rtol=1e-8)
    res = conjugate_directions(P.A, P.b, identity_direction, rtol=1e-8)
    assert res.converged
    assert abs(res.iterations - ref.iterations) <= 1
    assert np.linalg.norm(P.b - P.A @ res.x) <= 1e-8 * np.linalg.norm(P.b)
