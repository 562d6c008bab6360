"""Chebyshev interpolation: nodes, DCT-I coefficients, evaluation, calculus, adaptive degree."""
import math

import numpy as np
import pytest

from lrsolve import backend as B
from lrsolve.tensors import (Chebyshev, chebder, chebint_definite, chebvander, chebyshev_points,
                             chop_degree, clenshaw, coeffs2vals, decay_rate, predict_degree,
                             vals2coeffs)


def test_points_second_kind_ascending():
    x = chebyshev_points(8, (0.0, 2.0))
    assert x[0] == 0.0 and x[-1] == 2.0 and x[4] == 1.0
    assert np.all(np.diff(x) > 0)
    ref = 1.0 - np.cos(np.pi * np.arange(9) / 8)
    assert np.abs(x - ref).max() < 1e-15


@pytest.mark.parametrize("shape", [(9,), (7, 5), (6, 9, 4)])
def test_vals_coeffs_roundtrip(backend, shape, rng):
    vals = rng.standard_normal(shape)
    v = B.asarray(vals, backend=backend)
    c = vals2coeffs(v)
    assert B.backend_name(c) == backend
    back = B.to_numpy(coeffs2vals(c))
    assert np.abs(back - vals).max() < 1e-13
    # agrees with the NumPy/SciPy DCT path
    assert np.abs(B.to_numpy(c) - vals2coeffs(vals)).max() < 1e-13


def test_coefficients_of_t3_exact():
    x = chebyshev_points(10)
    c = vals2coeffs(4 * x ** 3 - 3 * x)
    expected = np.zeros(11)
    expected[3] = 1.0
    assert np.abs(c - expected).max() < 1e-15


def test_vander_and_clenshaw_match_numpy(rng):
    x = rng.uniform(-1, 1, 500)
    c = rng.standard_normal(40)
    ref = np.polynomial.chebyshev.chebval(x, c)
    assert np.abs(chebvander(x, 39) @ c - ref).max() < 1e-12
    assert np.abs(clenshaw(c, x) - ref).max() < 1e-12
    # several series at once
    C = rng.standard_normal((40, 3))
    assert np.abs(clenshaw(C, x) - chebvander(x, 39) @ C).max() < 1e-12


def test_derivative_and_integral_on_interval(rng):
    a, b = 0.5, 2.5
    p = Chebyshev.from_function(lambda x: np.sin(3 * x), [(a, b)], rtol=1e-14)
    x = rng.uniform(a, b, 10_000)
    d = p.diff(0)
    assert np.abs(d(x) - 3 * np.cos(3 * x)).max() < 1e-11
    exact = (np.cos(3 * a) - np.cos(3 * b)) / 3
    assert abs(p.integrate() - exact) < 1e-14
    assert abs(float(chebint_definite(p.coeffs, (a, b))) - exact) < 1e-14
    assert chebder(np.array([0.0, 0.0, 0.0, 1.0])).tolist() == [3.0, 0.0, 6.0]


def test_runge_decay_rate_and_predicted_degree(rng):
    """Spectral accuracy with the predicted degree (1-D, known Bernstein ellipse)."""
    f = lambda x: 1.0 / (1.0 + 25.0 * x ** 2)
    rho = 0.2 + math.sqrt(1.04)            # poles at +-i/5
    probe = Chebyshev.from_function(f, [(-1, 1)], degree=200)
    assert abs(decay_rate(probe.coeffs) / rho - 1) < 1e-3
    n_pred = predict_degree(probe.coeffs, 1e-12)
    x = rng.uniform(-1, 1, 100_000)
    err = lambda n: np.abs(Chebyshev.from_function(f, [(-1, 1)], degree=n)(x) - f(x)).max()
    assert err(n_pred) <= 1e-12
    assert err(int(0.85 * n_pred)) > 1e-12      # the prediction is tight, not generous
    # the adaptive choice lands within a few percent of the prediction for the same tolerance
    auto = Chebyshev.from_function(f, [(-1, 1)], rtol=1e-12)
    assert auto.info["resolved"] is True
    assert abs(auto.degrees[0] - n_pred) <= 0.1 * n_pred


def test_spectral_accuracy_3d_random_points(rng):
    f = lambda x, y, z: np.exp(-(x ** 2 + 2 * y ** 2 + 3 * z ** 2)) * np.cos(x + y + z)
    p = Chebyshev.from_function(f, [(-1, 1), (-1, 1), (-1, 1)], rtol=1e-14)
    assert p.info["resolved"] is True
    assert max(p.degrees) < 40
    pts = rng.uniform(-1, 1, (100_000, 3))
    assert np.abs(p(pts) - f(*pts.T)).max() < 1e-12
    for k, n in enumerate(p.degrees):          # the decay fit predicts the chosen degree
        assert abs(p.info["predicted_degree"][k] - n) <= 4


def test_chop_unresolved_signals():
    deg, ok = chop_degree(np.ones(20), 1e-8)
    assert deg == 19 and not ok
    deg, ok = chop_degree(10.0 ** -np.arange(30.0), 1e-8)
    assert deg == 8 and ok


def test_bad_inputs():
    with pytest.raises(ValueError, match="domain is degenerate"):
        Chebyshev.from_function(np.exp, [(1.0, 1.0)])
    with pytest.raises(ValueError, match="NaN or Inf"):
        with np.errstate(all="ignore"):
            Chebyshev.from_function(lambda x: np.log(x), [(-1, 1)], degree=8)
    with pytest.raises(ValueError, match="degree"):
        chebyshev_points(-1)
    with pytest.raises(TypeError, match="degree"):
        chebyshev_points(2.5)
    with pytest.raises(ValueError, match="points"):
        Chebyshev.from_function(np.exp, [(-1, 1)], degree=4)(np.zeros((3, 2)))
