"""Regression tests of issue 17 (item 11) and issue 12 (one result shape) for lr.tensors."""
from __future__ import annotations

import numpy as np
import pytest

import lrsolve as lr
from lrsolve.result import Result, Status
from lrsolve.tensors import ChebTucker, Chebyshev, tucker, tucker_to_full, tucker_error


def _f(x, y, z):
    return 1.0 / (1.0 + x ** 2 + y ** 2 + z ** 2)


@pytest.mark.parametrize("rtol", [1e-300, 1e-20, 1e-17])
def test_unattainable_rtol_is_refused_naming_the_floor(rtol):
    with pytest.raises(ValueError, match="rtol.*eps"):
        ChebTucker.from_function(_f, domain=[(-1, 1)] * 3, degree=None, rtol=rtol)
    with pytest.raises(ValueError, match="rtol.*eps"):
        ChebTucker.from_function(_f, domain=[(-1, 1)] * 3, degree=16, rtol=rtol)
    with pytest.raises(ValueError, match="rtol.*eps"):
        Chebyshev.from_function(lambda x: np.exp(x), domain=[(-1, 1)], rtol=rtol)
    x = np.linspace(-1, 1, 12)
    T = _f(*np.meshgrid(x, x, x, indexing="ij"))
    with pytest.raises(ValueError, match="rtol.*eps"):
        tucker(T, rtol=rtol)


def test_float32_floor_is_float32_eps():
    x = np.linspace(-1, 1, 12)
    T = _f(*np.meshgrid(x, x, x, indexing="ij")).astype(np.float32)
    with pytest.raises(ValueError, match="float32"):
        tucker(T, rtol=1e-8)
    res = tucker(T, rtol=1e-5)
    assert res.error_bound <= 1e-5 and tucker_error(T.astype(np.float64), res.core.astype(
        np.float64), [U.astype(np.float64) for U in res.factors]) < 1e-5


def test_numpy_scalar_rtol_is_accepted():
    x = np.linspace(-1, 1, 12)
    T = _f(*np.meshgrid(x, x, x, indexing="ij"))
    assert tucker(T, rtol=np.float32(1e-6)).error_bound <= 1e-6


def test_complex_function_is_a_type_error_not_a_silent_cast():
    g = lambda x, y, z: np.exp(1j * (x + y + z))          # noqa: E731
    with pytest.raises(TypeError, match="complex"):
        ChebTucker.from_function(g, domain=[(-1, 1)] * 3, degree=8)
    with pytest.raises(TypeError, match="complex"):
        ChebTucker.from_function(g, domain=[(-1, 1)] * 3, degree=None)
    with pytest.raises(TypeError, match="complex"):
        Chebyshev.from_function(lambda x: np.exp(1j * x), domain=[(-1, 1)])


def test_complex_torch_function_is_a_type_error():
    torch = pytest.importorskip("torch")
    g = lambda x, y, z: torch.exp(1j * (x + y + z))       # noqa: E731
    with pytest.raises(TypeError, match="complex"):
        ChebTucker.from_function(g, domain=[(-1, 1)] * 3, degree=8, backend="torch")


@pytest.mark.parametrize("method", ["hosvd", "hooi"])
def test_tucker_returns_one_result_shape(method):
    rng = np.random.default_rng(0)
    T = np.einsum("ia,ja,ka->ijk", *(rng.standard_normal((10, 2)) for _ in range(3)))
    res = tucker(T, rtol=1e-10, method=method)
    assert isinstance(res, Result) and res.status is Status.CONVERGED
    G, factors = res
    assert G is res.core and len(factors) == 3 and res.ranks == (2, 2, 2)
    assert np.linalg.norm(tucker_to_full(G, factors) - T) <= 1e-9 * np.linalg.norm(T)
    assert (res.iterations == 0) == (method == "hosvd")
    capped = tucker(T + 1e-3 * rng.standard_normal(T.shape), ranks=2, maxiter=1)
    assert capped.status is Status.MAXITER and capped.iterations == 1
