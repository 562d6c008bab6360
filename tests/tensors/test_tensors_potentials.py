"""Range-separated Newton kernel and long-range potentials of >= 1000 particles."""
import math

import numpy as np
import pytest
from scipy.special import erf

from lrsolve.tensors import (ChebTucker, lattice_cluster, long_range_particle_sum,
                             newton_long_range, newton_long_range_cp, particle_potential,
                             random_cloud)


def test_kernel_filled_at_origin_and_smooth():
    sigma = 0.2
    f = newton_long_range(sigma)
    r = np.array([0.0, 1e-8, 1e-5, 1e-4, 0.3, 2.0])
    vals = f(r, np.zeros_like(r), np.zeros_like(r))
    exact = np.where(r > 0, erf(r / sigma) / np.where(r > 0, r, 1), 2 / (sigma * math.sqrt(math.pi)))
    assert np.abs(vals - exact).max() < 1e-13 * exact.max()


def test_gauss_legendre_cp_of_kernel():
    t, w, info = newton_long_range_cp(0.1, 3.5, rtol=1e-12)
    r = np.linspace(0, 3.5, 3001)[1:]
    approx = np.exp(-np.outer(r ** 2, t ** 2)) @ w
    assert np.abs(approx - erf(r / 0.1) / r).max() < 1e-12 * 2 / (0.1 * math.sqrt(math.pi))
    assert info["nodes"] < 80


def test_long_range_kernel_tucker_ranks_small(rng):
    f = newton_long_range(0.1)
    ct = ChebTucker.from_function(f, degree=None, rtol=1e-7)
    assert ct.info["resolved"] is True
    pts = rng.uniform(-1, 1, (100_000, 3))
    exact = f(*pts.T)
    assert np.abs(ct(pts) - exact).max() / exact.max() < 1e-6
    assert max(ct.ranks) <= 12


@pytest.mark.parametrize("cluster", ["random_cloud", "lattice"])
def test_particle_sum_1000_to_1e6(cluster, rng):
    if cluster == "random_cloud":
        pos, q = random_cloud(1000, seed=4)
    else:
        pos, q = lattice_cluster((10, 10, 10), spacing=0.15, charges="unit")
    sigma = 0.25
    ct = long_range_particle_sum(pos, q, sigma, rtol=1e-8)
    assert ct.info["particles"] == 1000
    pts = rng.uniform(-1, 1, (10_000, 3))
    exact = particle_potential(pts, pos, q, sigma)
    rel = np.abs(ct(pts) - exact).max() / np.abs(exact).max()
    assert rel < 1e-6
    assert max(ct.ranks) < 40


def test_particle_sum_matches_from_function_route(rng):
    pos, q = random_cloud(50, seed=2)
    sigma = 0.3
    cp = long_range_particle_sum(pos, q, sigma, degree=48, rtol=1e-9)
    direct = ChebTucker.from_function(
        lambda x, y, z: particle_potential(np.column_stack([np.ravel(a) for a in
                                                            np.broadcast_arrays(x, y, z)]),
                                           pos, q, sigma).reshape(np.broadcast_shapes(
                                               x.shape, y.shape, z.shape)),
        degree=48, rtol=1e-9)
    pts = rng.uniform(-1, 1, (5000, 3))
    assert np.abs(cp(pts) - direct(pts)).max() < 1e-7 * np.abs(direct(pts)).max()


def test_singular_kernel_does_not_resolve():
    """The full 1/|x| (regularised to stay finite) never reaches the tolerance."""
    f = lambda x, y, z: 1.0 / np.sqrt(x * x + y * y + z * z + 1e-6)
    ct = ChebTucker.from_function(f, [(-1, 1)] * 3, degree=None, rtol=1e-7, max_degree=128)
    assert ct.info["resolved"] is False


def test_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        newton_long_range(-1.0)
    with pytest.raises(ValueError, match="positions"):
        long_range_particle_sum(np.zeros((3, 2)), np.ones(3), 0.2)
    with pytest.raises(ValueError, match="charges"):
        lattice_cluster((2, 2, 2), charges="odd")
    with pytest.raises(ValueError, match="n must be"):
        random_cloud(0)
