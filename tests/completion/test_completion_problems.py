"""Completion instances: sizes, disjoint held-out sets, values that match the truth."""
from __future__ import annotations

import numpy as np
import pytest

import lrsolve as lr


def test_random_instance_consistent():
    P = lr.problems.completion_random(120, 80, rank=4, oversampling=3, test_size=500, seed=0)
    assert P.nnz == 3 * 4 * (120 + 80 - 4)
    A, B = P.truth
    X = A @ B.T
    assert np.allclose(P.values, X[P.rows, P.cols])
    assert np.allclose(P.test[2], X[P.test[0], P.test[1]])
    train = set(zip(P.rows.tolist(), P.cols.tolist()))
    test = set(zip(P.test[0].tolist(), P.test[1].tolist()))
    assert len(train) == P.nnz and len(test) == 500 and not train & test
    assert abs(np.std(X) - 1.0) < 0.1


def test_real_instances():
    P = lr.problems.completion_image("camera", keep=0.25, size=64, seed=0)
    assert P.shape == (64, 64)
    assert P.nnz == round(0.25 * 64 * 64)
    assert P.nnz + P.test[0].shape[0] == 64 * 64
    assert np.allclose(P.values, P.truth[P.rows, P.cols])
    D = lr.problems.completion_digits(keep=0.5, seed=0)
    assert D.shape == (1797, 64) and 0 <= D.values.min() and D.values.max() <= 1


def test_problem_bad_input():
    with pytest.raises(ValueError, match="rank"):
        lr.problems.completion_random(10, rank=10)
    with pytest.raises(ValueError, match="keep"):
        lr.problems.completion_digits(keep=0.0)
    with pytest.raises(ValueError, match="name"):
        lr.problems.completion_image("no_such_image")


def test_real_image_completion_beats_mean_fill():
    P = lr.problems.completion_image("camera", keep=0.3, size=128, rank=10, seed=0)
    info = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=10, reg=1.0,
                                      test=P.test, maxiter=30)
    U, V = info
    mean_fill = np.sqrt(np.mean((P.test[2] - P.values.mean()) ** 2))
    assert info.history["test_rmse"][-1] < 0.5 * mean_fill
