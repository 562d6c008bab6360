"""Regression tests of issue 17 (item 10) and issue 12 (result object) for lr.completion."""
from __future__ import annotations

import numpy as np
import pytest

import lrsolve as lr
from lrsolve.problems.completion import completion_error
from lrsolve.result import Result, Status


@pytest.fixture(scope="module")
def problem():
    return lr.problems.completion_random(120, 90, rank=3, rate=0.3, seed=7, test_size=100)


@pytest.mark.parametrize("solver", ["sketch", "exact"])
def test_all_zero_values_give_zero_factors(problem, solver):
    P = problem
    res = lr.completion.altmin(P.rows, P.cols, np.zeros_like(P.values), P.shape, rank=3,
                               solver=solver)
    U, V = res
    assert res.status is Status.CONVERGED and res.iterations == 0
    assert U.shape == (120, 3) and V.shape == (90, 3) and not np.any(U) and not np.any(V)


@pytest.mark.parametrize("scale", [1e-160, 1e-120, 1e120, 1e150])
def test_tiny_and_huge_values_converge_for_real(problem, scale):
    P = problem
    res = lr.completion.altmin(P.rows, P.cols, P.values * scale, P.shape, rank=3,
                               solver="exact", rtol=1e-10)
    U, V = res
    X = P.truth[0] @ P.truth[1].T
    err = np.linalg.norm(U @ V.T / scale - X) / np.linalg.norm(X)
    assert res.converged and err < 1e-8
    assert res.stats["values_scale"] != 1.0


def test_scaled_data_gives_the_same_iterates(problem):
    P = problem
    a = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, maxiter=4, rtol=0)
    b = lr.completion.altmin(P.rows, P.cols, P.values * 2.0 ** -540, P.shape, rank=3,
                             maxiter=4, rtol=0)
    assert np.allclose(a.history["train_rel_residual"], b.history["train_rel_residual"],
                       rtol=1e-6)


@pytest.mark.parametrize("shape", [(60.7, 50.2), (120.0, 90), ("120", 90), (True, 90)])
def test_non_integer_shape_is_rejected(problem, shape):
    P = problem
    with pytest.raises(ValueError, match="shape"):
        lr.completion.altmin(P.rows, P.cols, P.values, shape, rank=3)


def test_result_object_and_statuses(problem):
    P = problem
    res = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, rtol=1e-10)
    assert isinstance(res, Result) and isinstance(res, lr.completion.CompletionResult)
    assert res.status is Status.CONVERGED and res.info == 0 and res.time > 0
    assert res.iterations == len(res.history["train_rel_residual"])
    assert completion_error(res.U, res.V, P.truth) < 1e-8
    capped = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, maxiter=2,
                                  rtol=1e-14)
    assert capped.status is Status.MAXITER and capped.info == 2 and not capped.converged


def test_stalled_completion_is_stagnation_not_converged():
    P = lr.problems.completion_random(200, 150, rank=3, oversampling=5, noise=0.05, seed=1,
                                       test_size=100)
    res = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, rtol=1e-12)
    assert res.status is Status.STAGNATION and not res.converged and res.info > 0
    assert res.train_rel_residual > 1e-3


def test_altmin_leaves_numpy_global_random_state_alone(problem):
    P = problem
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, maxiter=2, solver="sketch",
                         reuse=False)
    lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, maxiter=2, solver="sketch")
    assert np.array_equal(np.random.random(3), expected)


def test_same_seed_same_bits(problem):
    P = problem
    a = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, maxiter=3, seed=4)
    b = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=3, maxiter=3, seed=4)
    assert np.array_equal(a.U, b.U) and np.array_equal(a.V, b.V)
