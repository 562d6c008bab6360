"""Tucker decompositions: ST-HOSVD (Gram / randomized / SVD), HOOI, tolerances, backends."""
import numpy as np
import pytest

from lrsolve import backend as B
from lrsolve.tensors import (chebyshev_points, hooi, hosvd, tucker, tucker_error, tucker_to_full,
                             vals2coeffs)


def _low_rank(rng, shape=(20, 18, 16), ranks=(3, 4, 2)):
    G = rng.standard_normal(ranks)
    Us = [np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in zip(shape, ranks)]
    return tucker_to_full(G, Us)


def _decaying(rng, n=30, decay=0.5):
    """A tensor whose mode spectra decay geometrically (a smooth function's samples)."""
    x = np.linspace(0, 1, n)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return 1.0 / (1.0 + decay * (X + 2 * Y + 3 * Z)) + 0.1 * np.sin(X * Y * Z)


@pytest.fixture(scope="module")
def slater_coeffs():
    x = chebyshev_points(64)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return vals2coeffs(np.exp(-np.sqrt(X ** 2 + Y ** 2 + Z ** 2)))


@pytest.mark.parametrize("method", ["hosvd", "hooi"])
def test_exact_low_rank_recovered(backend, method, rng):
    T = B.asarray(_low_rank(rng), backend=backend)
    G, U = tucker(T, rtol=1e-10, method=method)
    assert tuple(G.shape) == (3, 4, 2)
    assert B.backend_name(G) == backend and all(B.backend_name(u) == backend for u in U)
    assert tucker_error(T, G, U) < 1e-12


@pytest.mark.parametrize("svd", ["gram", "randomized", "svd"])
@pytest.mark.parametrize("rtol", [1e-4, 1e-8, 1e-11])
def test_relative_tolerance_met(svd, rtol, rng):
    T = _decaying(rng)
    G, U, info = hosvd(T, rtol=rtol, svd=svd)
    err = tucker_error(T, G, U)
    assert err <= rtol
    assert abs(err - info["error_bound"]) <= 1e-3 * rtol + 1e-14   # the bound is the error
    assert max(info["ranks"]) < 30


@pytest.mark.parametrize("rtol", [1e-6, 1e-8, 1e-10, 1e-12])
def test_gram_ranks_equal_full_svd_below_sqrt_eps(slater_coeffs, rtol):
    """The Gram route keeps the optimal ranks even below sqrt(eps) (two-level rotation)."""
    _, _, gram = hosvd(slater_coeffs, rtol=rtol, svd="gram")
    _, _, full = hosvd(slater_coeffs, rtol=rtol, svd="svd")
    assert gram["ranks"] == full["ranks"]
    assert gram["error_bound"] <= rtol


def test_hooi_improves_on_hosvd_and_matches_tensorly(rng):
    tl = pytest.importorskip("tensorly")
    from tensorly.decomposition import tucker as tl_tucker
    T = _decaying(rng, n=24, decay=2.0) + 1e-3 * rng.standard_normal((24, 24, 24))
    ranks = (4, 4, 4)
    G0, U0, _ = hosvd(T, ranks)
    G1, U1, info = hooi(T, ranks, maxiter=100, rtol=1e-12)
    e0, e1 = tucker_error(T, G0, U0), tucker_error(T, G1, U1)
    assert e1 <= e0 * (1 + 1e-12)
    core, factors = tl_tucker(tl.tensor(T), rank=list(ranks), n_iter_max=100, tol=1e-12)
    e_tl = tucker_error(T, np.asarray(core), [np.asarray(f) for f in factors])
    assert e1 <= e_tl * (1 + 1e-6)
    assert abs(info["error"] - e1) < 1e-6


def test_randomized_for_large_mode(rng):
    n = 600
    x = np.linspace(0, 1, n)
    T = np.exp(-np.add.outer(np.add.outer(x, x[:20]), x[:10]) ** 2)
    G, U, info = hosvd(T, rtol=1e-9, svd="randomized", seed=3)
    _, _, ref = hosvd(T, rtol=1e-9, svd="svd")
    assert tucker_error(T, G, U) <= 1e-9
    assert all(r <= s + 1 for r, s in zip(info["ranks"], ref["ranks"]))


def test_bad_inputs(rng):
    T = rng.standard_normal((5, 6, 7))
    with pytest.raises(ValueError, match=r"ranks\[1\] = 9 exceeds the mode size 6"):
        tucker(T, ranks=(2, 9, 2))
    with pytest.raises(ValueError, match="method"):
        tucker(T, method="cp")
    with pytest.raises(ValueError, match="rtol"):
        tucker(T, rtol=0.0)
    bad = T.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="T contains NaN"):
        tucker(bad)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        tucker(np.ones(4))
    with pytest.raises(TypeError, match="floating"):
        tucker(np.ones((3, 3), dtype=int))
