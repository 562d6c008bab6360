"""Preconditioner reuse across sweeps (sketch solver, NumPy float64 numba engine)."""
from __future__ import annotations

import numpy as np
import pytest

import lrsolve as lr
from lrsolve.completion._altmin import PreconditionerStore, _half_step
from lrsolve.completion._observations import GroupLayout
from lrsolve.completion._rowsolve import Ops
from lrsolve.problems.completion import completion_error


@pytest.fixture(scope="module")
def problem():
    return lr.problems.completion_random(300, 240, rank=6, oversampling=5, seed=3)


def _layout(P, k):
    return GroupLayout(P.cols, P.rows, P.values, P.shape[1], P.shape[0], k, backend="numpy")


def _setup(P, k, seed):
    """A random generator, the by-column layout, an empty factor store and zero starts."""
    layout = _layout(P, k)
    store = PreconditionerStore(layout.n_groups, k, stale_steps=0)
    return np.random.default_rng(seed), layout, store, np.zeros((layout.n_groups, k))


def _step(P, layout, F, X0, store, **kw):
    opts = dict(solver="sketch", reg=0.0, rng=np.random.default_rng(0), sketch="countsketch",
                sketch_size=0, inner_iters=10, inner_rtol=1e-8, engine="numba")
    opts.update(kw)
    return _half_step(Ops("numpy", np.float64), layout, F, X0, store=store, **opts)


def test_basis_change_keeps_the_stored_factor_exact(problem):
    """F -> F T (a pure change of basis, as balancing does): the stored factors,
    carried through the global transform, are still the exact Hessians, so every row
    converges in one step and nothing is rebuilt; without the transform they would
    be wrong by T."""
    P, k = problem, 6
    rng, layout, store, X0 = _setup(P, k, seed=1)
    F = rng.standard_normal((P.shape[0], k))
    X1, res1, _ = _step(P, layout, F, X0, store)
    assert store.refreshed[-1] == layout.n_groups          # first use: all built
    T = rng.standard_normal((k, k)) + 3 * np.eye(k)
    X0b = X1 @ np.linalg.inv(T).T + 1e-3 * rng.standard_normal(X1.shape)
    X2, res2, it2 = _step(P, layout, F @ T, X0b, store)
    assert store.refreshed[-1] == 0
    assert store.steps[-1] == layout.n_groups and it2 == 1  # one exact step per row
    # same fit as in the first basis (X2 = X1 T^{-T}) to the CG accuracy
    np.testing.assert_allclose(X2 @ T.T, X1, rtol=1e-6, atol=1e-8)
    assert abs(res2 - res1) <= 1e-6 * res1


def test_stale_factor_is_rebuilt_when_the_subspace_moves(problem):
    P, k = problem, 6
    rng, layout, store, X0 = _setup(P, k, seed=2)
    F = rng.standard_normal((P.shape[0], k))
    _step(P, layout, F, X0, store)
    # a different column space: stale factors are poor, rows rebuild and still solve
    G = rng.standard_normal(F.shape)
    X, res, _ = _step(P, layout, G, X0, store)
    assert store.refreshed[-1] > layout.n_groups // 2
    Xe, rese, _ = _step(P, layout, G, X0, None, solver="exact")
    np.testing.assert_allclose(X, Xe, rtol=1e-5, atol=1e-7)


def test_reference_is_reset_for_a_rank_deficient_map():
    store = PreconditionerStore(5, 2, stale_steps=0)
    rng = np.random.default_rng(0)
    F = rng.standard_normal((20, 2))
    store.have[:] = 2
    _, T, _ = store.basis(F)
    assert np.array_equal(T, np.eye(2)) and not store.have.any()   # first reference
    store.have[:] = 2
    Ft, T, Tinv = store.basis(F @ np.array([[2.0, 1.0], [0.0, 0.5]]))
    np.testing.assert_allclose(Ft, F, atol=1e-12)                  # expressed in the ref basis
    assert store.have.all()
    Fd = np.column_stack([F[:, 0], 1e-12 * F[:, 1]])               # T nearly singular
    store.basis(Fd)
    assert not store.have.any()                                    # re-referenced


@pytest.mark.parametrize("kw", [{}, {"sketch_size": 24}, {"reg": 0.1}])
def test_reuse_matches_the_exact_solver(problem, kw):
    P = problem
    runs = {}
    for solver, reuse in (("exact", True), ("sketch", True), ("sketch", False)):
        info = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=6,
                                          solver=solver, reuse=reuse, rtol=1e-10, **kw)
        U, V = info
        runs[(solver, reuse)] = (U, V, info)
    U, V, exact_info = runs[("exact", True)]
    ref = U @ V.T
    for key in (("sketch", True), ("sketch", False)):
        U, V, info = runs[key]
        X = U @ V.T
        # same fixed point (with a ridge the runs stop on a stalled residual, near it),
        # about the same number of sweeps
        rtol = 1e-4 if kw.get("reg") else 1e-6
        assert np.linalg.norm(X - ref) <= rtol * np.linalg.norm(ref)
        assert info.iterations <= exact_info.iterations + 3
    U, V, info = runs[("sketch", True)]           # the defaults: sketch, reuse=True
    h = info.history
    if "sketch_size" in kw:
        # kept sketched factors: more steps per row than the design's own, but they are
        # kept too (one step of slack), not rebuilt every sweep
        assert np.median(h["mean_inner_iterations"]) > 1.3
        assert np.all(np.array(h["refreshed_fraction"][5:]) < 0.1)
    if not kw:
        # kept factors of the design: about one CG step per row and almost no rebuilds
        # once the column space has settled
        assert np.median(h["mean_inner_iterations"]) < 1.3
        assert np.all(np.array(h["refreshed_fraction"][5:]) < 0.1)
        assert completion_error(U, V, P.truth) < 1e-8


def test_reuse_option_validation(problem):
    P = problem
    with pytest.raises(ValueError, match="reuse"):
        lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=2, reuse="yes")
    with pytest.raises(ValueError, match="stale_steps"):
        lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=2, stale_steps=-1)


def test_backoff_builds_up_front_after_a_failure(problem):
    """A column space that keeps moving: a row whose kept factor failed builds its
    factor up front next time (no wasted stale step), then backs off exponentially."""
    P, k = problem, 6
    rng, layout, store, X0 = _setup(P, k, seed=4)
    for _ in range(2):
        _step(P, layout, rng.standard_normal((P.shape[0], k)), X0, store)
    assert np.all(store.skip == 0)              # one failure in a row: no back-off yet
    _step(P, layout, rng.standard_normal((P.shape[0], k)), X0, store)
    failed = store.fails >= 2
    assert failed.sum() > layout.n_groups // 2
    assert np.all(store.skip[failed] == 1)
    steps_with_failures = store.steps[-1]
    X, _, _ = _step(P, layout, rng.standard_normal((P.shape[0], k)), X0, store)
    assert store.refreshed[-1] >= failed.sum()
    assert np.all(store.skip[failed] == 0)
    # rows built up front take one exact step; before, failing rows took a wasted one
    assert store.steps[-1] < steps_with_failures
    assert np.all(np.isfinite(X))
