"""The generic conjugate-direction loop: identity = CG, A-orthogonality, robustness."""
import math

import numpy as np
import pytest

import lrsolve as lr
from lrsolve import backend as bk
from lrsolve.krylov.conjugate_directions import conjugate_directions


@pytest.mark.parametrize("n", [16, 48])
def test_identity_generator_reproduces_cg(backend, n):
    P = lr.problems.poisson(n=n, dim=2, backend=backend)
    cd = conjugate_directions(P.A, P.b, rtol=1e-8)
    cg = lr.solve(P.A, P.b, method="cg", rtol=1e-8)
    assert cd.converged and cg.converged
    assert cd.iterations == cg.iterations
    # Same iterates: the residual histories agree to rounding over the whole run.
    h_cd, h_cg = np.array(cd.residuals), np.array(cg.residuals)
    assert np.max(np.abs(h_cd - h_cg) / h_cg) < 1e-5
    assert bk.backend_name(cd.x) == backend


def test_identity_generator_any_window_is_cg():
    P = lr.problems.poisson(n=32, dim=2, rhs="smooth")
    its = {w: conjugate_directions(P.A, P.b, rtol=1e-10, window=w).iterations for w in (1, 2, 5)}
    cg = lr.solve(P.A, P.b, method="cg", rtol=1e-10).iterations
    assert set(its.values()) == {cg}


class _Recorder:
    """Wraps an operator and keeps every vector it is applied to."""

    def __init__(self, A):
        self.A, self.shape, self.inputs = A, A.shape, []

    def __matmul__(self, x):
        self.inputs.append(x.copy())
        return self.A @ x


@pytest.mark.parametrize("window", [1, 2, 4])
def test_nonlinear_generator_keeps_window_a_orthogonal(window):
    P = lr.problems.poisson(n=24, dim=2)
    rng = np.random.default_rng(0)
    mask = 1.0 + rng.random(P.b.shape[0])

    def direction(r):  # nonlinear and not symmetric: a stand-in for a network
        return mask * r + 0.3 * np.tanh(r / np.abs(r).max()) * np.linalg.norm(r)

    A = _Recorder(P.A)
    # No refresh, so the operator sees exactly the directions (the last input is the
    # confirmation of convergence on x).
    res = conjugate_directions(A, P.b, direction, rtol=1e-8, window=window, refresh_every=0)
    assert res.converged
    dirs = A.inputs[:-1]
    assert len(dirs) == res.iterations
    worst = 0.0
    for k in range(len(dirs)):
        Apk = P.A @ dirs[k]
        for j in range(max(0, k - window), k):
            Apj = P.A @ dirs[j]
            cos = abs(dirs[k] @ Apj) / math.sqrt((dirs[k] @ Apk) * (dirs[j] @ Apj))
            worst = max(worst, cos)
    assert worst < 1e-8
    assert res.stats["max_a_cosine"] < 1e-8


def test_bad_generator_falls_back_to_residual():
    P = lr.problems.poisson(n=16, dim=2)
    res = conjugate_directions(P.A, P.b, lambda r: np.full_like(r, np.nan), rtol=1e-8)
    cg = lr.solve(P.A, P.b, method="cg", rtol=1e-8)
    assert res.converged and res.stats["fallbacks"] == res.iterations
    assert res.iterations == cg.iterations


def test_stall_guard_rescues_a_useless_generator():
    P = lr.problems.poisson(n=16, dim=2)
    rng = np.random.default_rng(0)
    # Fresh random directions: independent of the window, so never a fallback, but they
    # barely reduce the residual - the stall guard has to step in.
    res = conjugate_directions(P.A, P.b, lambda r: rng.standard_normal(r.shape), rtol=1e-6,
                               maxiter=3000)
    assert res.converged and res.stats["stall_restarts"] > 0
    assert np.linalg.norm(P.b - P.A @ res.x) <= 1e-6 * np.linalg.norm(P.b)


def test_not_spd_reports_breakdown():
    A = np.diag([1.0, -1.0, 2.0])
    res = conjugate_directions(A, np.array([1.0, 1.0, 1.0]), rtol=1e-10)
    assert not res.converged and res.info < 0
    assert np.all(np.isfinite(res.x))


def test_bad_arguments():
    P = lr.problems.poisson(n=8, dim=2)
    with pytest.raises(ValueError, match="window"):
        conjugate_directions(P.A, P.b, window=-1)
    with pytest.raises(TypeError, match="direction"):
        conjugate_directions(P.A, P.b, direction=3)
    with pytest.raises(ValueError, match="refresh_every"):
        conjugate_directions(P.A, P.b, refresh_every=-2)
    res = conjugate_directions(P.A, np.zeros(64))
    assert res.converged and res.iterations == 0
