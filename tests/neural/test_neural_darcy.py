"""Darcy coefficient fields and data sets: recipe statistics, residuals, seeds, cache."""
import numpy as np
import pytest
import scipy.fft

import lrsolve as lr
from lrsolve.neural import DarcyData, darcy_dataset
from lrsolve.problems.darcy import darcy_coefficient, gaussian_random_field


def test_grf_spectrum_matches_recipe():
    # The orthonormal DCT of a field recovers the KL coefficients s * coef * xi, so the
    # mean square over samples, divided by (s coef)^2, must be 1 on every mode but (0, 0).
    s, alpha, tau, samples = 24, 2.0, 3.0, 400
    rng = np.random.default_rng(5)
    power = np.zeros((s, s))
    for _ in range(samples):
        power += scipy.fft.dctn(gaussian_random_field(s, alpha, tau, rng), type=2, norm="ortho") ** 2
    power /= samples
    k1, k2 = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    coef = tau ** (alpha - 1) * (np.pi ** 2 * (k1 ** 2 + k2 ** 2) + tau ** 2) ** (-alpha / 2)
    ratio = (power / (s * coef) ** 2).ravel()[1:]
    assert power[0, 0] < 1e-20
    assert abs(ratio.mean() - 1) < 0.02
    assert np.all((ratio > 0.7) & (ratio < 1.35))


def test_threshold_values_and_balance():
    fractions = [np.mean(darcy_coefficient(32, seed=s) == 12.0) for s in range(40)]
    a = darcy_coefficient(32, low=4.0, seed=0)
    assert set(np.unique(a)) == {4.0, 12.0}
    # Mean-zero symmetric field: on average half the domain is high.
    assert 0.4 < np.mean(fractions) < 0.6


def test_darcy_problem_via_registry():
    P = lr.problems.darcy_problem(n=16, seed=3)
    r = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-10)
    assert r.converged
    assert np.linalg.norm(P.b - P.A @ r.x) / np.linalg.norm(P.b) <= 1e-8


def test_dataset_residual_positivity_and_reproducibility():
    d1 = darcy_dataset(n=12, samples=3, seed=4, cache=False, progress=False)
    d2 = darcy_dataset(n=12, samples=5, seed=4, cache=False, progress=False)
    assert d1.a.shape == d1.u.shape == (3, 12, 12)
    assert d1.meta["max_residual"] <= 1e-8
    # Same seed: bitwise equal, and a prefix of a larger set is the smaller set.
    assert np.array_equal(d1.a, d2.a[:3]) and np.array_equal(d1.u, d2.u[:3])
    d3 = darcy_dataset(n=12, samples=3, seed=5, cache=False, progress=False)
    assert not np.array_equal(d1.a, d3.a)
    # f = 1 > 0 with zero boundary values: the discrete maximum principle gives u > 0.
    assert d1.u.min() > 0


def test_output_grid_is_a_subsample_of_the_fine_solve():
    # With refine=3 the output points are fine grid points (index 3(i+1)-1): the stored
    # coefficient is exactly the fine field there.
    d = darcy_dataset(n=10, samples=1, seed=0, refine=3, cache=False, progress=False)
    fine = 3 * 11 - 1
    rng = np.random.default_rng([0, 0])
    a_fine = darcy_coefficient(fine, seed=rng)
    keep = np.arange(2, fine, 3)
    assert np.array_equal(d.a[0], a_fine[np.ix_(keep, keep)])


def test_cache_roundtrip_and_checksum(tmp_path):
    d = darcy_dataset(n=8, samples=2, seed=0, cache_path=tmp_path, progress=False)
    path = tmp_path / next(p.name for p in tmp_path.iterdir())
    again = darcy_dataset(n=8, samples=2, seed=0, cache_path=tmp_path, progress=False)
    assert np.array_equal(again.u, d.u) and again.meta["checksum"] == d.meta["checksum"]
    # Corrupt the stored solution: the checksum fails and the set is regenerated.
    with np.load(path) as f:
        a, u, meta = f["a"], f["u"] + 1.0, f["meta"]
    np.savez(path, a=a, u=u, meta=meta)
    with pytest.warns(RuntimeWarning, match="checksum"):
        fixed = darcy_dataset(n=8, samples=2, seed=0, cache_path=tmp_path, progress=False)
    assert np.array_equal(fixed.u, d.u)


def test_cache_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(lr.neural.CACHE_ENV, str(tmp_path))
    assert lr.neural.cache_dir() == tmp_path
    darcy_dataset(n=8, samples=1, seed=2, progress=False)
    assert len(list((tmp_path / "darcy").glob("*.npz"))) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=2), "n must"), (dict(samples=0), "samples must"), (dict(rtol=1e-6), "rtol must"),
    (dict(seed=-1), "seed must"), (dict(refine=0), "refine must")])
def test_dataset_rejects_bad_arguments(kwargs, match):
    args = dict(n=8, samples=1, cache=False, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        darcy_dataset(**args)


def test_darcydata_validation_and_slicing():
    d = DarcyData(np.ones((5, 6, 6)), np.zeros((5, 6, 6)))
    assert len(d[1:3]) == 2 and d[0].a.shape == (1, 6, 6)
    with pytest.raises(ValueError, match="same shape"):
        DarcyData(np.ones((5, 6, 6)), np.zeros((5, 7, 7)))
    with pytest.raises(ValueError, match=r"\(samples, n, n\)"):
        DarcyData(np.ones((5, 6, 7)), np.zeros((5, 6, 7)))
    with pytest.raises(ValueError, match="NaN"):
        DarcyData(np.full((1, 4, 4), np.nan), np.zeros((1, 4, 4)))
