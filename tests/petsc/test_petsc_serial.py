"""PETSc adapter on one rank (in the plain pytest process)."""
from __future__ import annotations

import numpy as np
import pytest

try:
    import mpi4py  # noqa: F401
    import petsc4py  # noqa: F401
except ImportError as exc:  # absent, or a broken build: skip, never error
    pytest.skip(f"petsc4py / mpi4py unavailable ({exc}); see docs/petsc.md",
                allow_module_level=True)

import lrsolve as lr  # noqa: E402
import lrsolve.petsc as lp  # noqa: E402
from lrsolve.result import Status  # noqa: E402


def test_status_from_ksp_reasons():
    from petsc4py import PETSc
    R = PETSc.KSP.ConvergedReason
    assert lp.status_from_reason(R.CONVERGED_RTOL) is Status.CONVERGED
    assert lp.status_from_reason(R.DIVERGED_MAX_IT) is Status.MAXITER
    assert lp.status_from_reason(R.DIVERGED_INDEFINITE_PC) is Status.BREAKDOWN
    assert lp.status_from_reason(R.DIVERGED_NANORINF) is Status.NONFINITE
    assert lp.status_from_reason(R.DIVERGED_PCSETUP_FAILED) is Status.FAILED
    assert lp.status_from_reason(R.CONVERGED_CG_NEG_CURVE) is Status.BREAKDOWN


@pytest.mark.parametrize("fmt", ["aij", "matfree"])
def test_grid_operator_matches_stencil_and_round_trips(fmt):
    P = lr.problems.poisson(n=12, dim=3, seed=0, coefficient=lambda x, y, z: 1 + x + 2 * y * z)
    D = lp.to_petsc(P, format=fmt)
    y = D.A.createVecLeft()
    D.A.mult(D.b, y)
    want = P.A @ P.b
    got = lp.gather(y, da=D.da)
    assert np.linalg.norm(got - want) <= 1e-13 * np.linalg.norm(want)
    assert np.array_equal(lp.to_numpy(D.b, da=D.da), P.b)


@pytest.mark.parametrize("method", ["cg", "pcg-jacobi", "ssor-cg", "pcg-amg", "pcg-mg"])
def test_every_method_converges_with_the_true_residual(method):
    P = lr.problems.poisson(n=31, dim=2, seed=1)
    S = lp.PetscSolver(P, method=method, rtol=1e-8)
    r = S.solve(P.b)
    assert r.status is Status.CONVERGED and r.method == method
    assert r.iterations == S.ksp.getIterationNumber()
    assert np.linalg.norm(P.b - P.A @ r.x) <= 1e-8 * np.linalg.norm(P.b)
    if method in ("pcg-amg", "pcg-mg"):
        assert r.iterations <= 15


def test_gamg_option_and_options_pass_through():
    P = lr.problems.poisson(n=31, dim=2, seed=1)
    r = lp.solve(P, method="pcg-amg", amg="gamg", options="-pc_gamg_threshold 0.02",
                 rtol=1e-8)
    assert r.converged and r.stats["pc_type"] == "gamg"
    r2 = lp.solve(P, method="cg", options={"ksp_type": "minres"}, rtol=1e-8)
    assert r2.converged and r2.stats["ksp_type"] == "minres"


def test_update_new_matrix_and_rebuild_policy():
    P = lr.problems.poisson(n=24, dim=2, seed=2)
    S = lp.PetscSolver(P, method="pcg-amg", rtol=1e-8, rebuild_factor=1.5)
    r0 = S.solve(P.b)
    A1 = lr.operators.poisson_operator(24, 2, shift=50.0)
    S.update(A1)
    r1 = S.solve(P.b)
    assert r0.converged and r1.converged
    assert np.linalg.norm(P.b - A1 @ r1.x) <= 1e-8 * np.linalg.norm(P.b)
    with pytest.raises(ValueError, match="grid"):
        S.update(lr.operators.poisson_operator(25, 2))


def test_bad_input_is_a_clear_error():
    P = lr.problems.poisson(n=8, dim=2)
    with pytest.raises(ValueError, match="method"):
        lp.PetscSolver(P, method="nope")
    with pytest.raises(ValueError, match="omega"):
        lp.PetscSolver(P, method="ssor-cg", omega=2.5)
    with pytest.raises(ValueError, match="format"):
        lp.to_petsc(P, format="dense")
    with pytest.raises(TypeError, match="to_petsc"):
        lp.to_petsc("matrix")
    with pytest.raises(ValueError, match="entries"):
        lp.PetscSolver(P, method="cg").solve(np.ones(65))
    with pytest.raises(ValueError, match="NaN"):
        lp.to_petsc(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_local_vcycle_is_a_symmetric_fast_preconditioner():
    from lrsolve.petsc.pcs import LocalVCycle
    P = lr.problems.poisson(n=33, dim=2, format="csr")
    M = LocalVCycle(P.A, (33, 33), coarsest=50)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 33 * 33))
    assert abs(u @ M(v) - v @ M(u)) <= 1e-10 * abs(u @ M(v))
    r = lr.solve(P.A, P.b, method="cg", M=_as_linear_operator(M, P.A.shape), rtol=1e-8)
    assert r.converged and r.iterations <= 12


def _as_linear_operator(M, shape):
    import scipy.sparse.linalg as spla
    return spla.LinearOperator(shape, matvec=M)


def test_general_grid_operator_with_mask_and_neumann_side():
    mask = np.zeros((20, 16), dtype=bool)
    mask[5:9, 4:8] = True
    P = lr.problems.poisson(n=(20, 16), dim=2, mask=mask, bc={"x-": "neumann"}, seed=3)
    D = lp.to_petsc(P)
    y = D.A.createVecLeft()
    D.A.mult(D.b, y)
    want = P.A @ P.b
    assert np.linalg.norm(lp.to_numpy(y, da=D.da) - want) <= 1e-13 * np.linalg.norm(want)
    r = lp.solve(P, method="pcg-amg", rtol=1e-8)
    assert r.converged and np.linalg.norm(P.b - P.A @ r.x) <= 1e-8 * np.linalg.norm(P.b)
    with pytest.raises(ValueError, match="matfree"):
        lp.to_petsc(P, format="matfree")


@pytest.mark.slow  # builds lrsolve.multigrid.GMG: its numba kernels compile for ~1 min here
def test_shared_gmg_recognises_a_constant_coefficient_block():
    from lrsolve.petsc.grid import GridInfo, _LocalStencil, local_block_csr
    from lrsolve.petsc.pcs import _shared_gmg
    n = 20
    g = GridInfo(grid_shape=(n, n), scale=(n + 1) ** 2, constant=2.0, faces=None, shift=3.0)
    block = local_block_csr(_LocalStencil(g, (0, 0), (10, 20)))
    assert _shared_gmg(block, (10, 20)) is not None
    variable = block.copy()
    variable.data[0] *= 1.5
    assert _shared_gmg(variable, (10, 20)) is None


def test_update_with_a_grid_operator_on_the_same_grid():
    P = lr.problems.poisson(n=(12, 10), dim=2, seed=4)
    S = lp.PetscSolver(P, method="pcg-amg", rtol=1e-8)
    assert S.solve(P.b).converged
    A1 = lr.problems.poisson(n=(12, 10), dim=2, shift=30.0).A
    S.update(A1)
    r = S.solve(P.b)
    assert r.converged and np.linalg.norm(P.b - A1 @ r.x) <= 1e-8 * np.linalg.norm(P.b)
