"""Sequence generators: the paper's family, the diffusion-like sequence, the heat equation."""
from __future__ import annotations

import numpy as np
import pytest

import lrsolve as lr
from lrsolve.problems.sequences import (HeatEquation, heat_diffusivity, heat_sequence,
                                        paper_sequence, shifted_laplacian_sequence,
                                        truncated_normal)


def test_paper_sequence_matches_the_papers_family():
    seq = paper_sequence(T=400, seed=0)
    c = np.array([s.context for s in seq])
    assert c.min() >= -0.15 and c.max() <= 0.45
    # Beta(0.5, 1.5) has mean 1/4: c has mean -0.15 + 0.6/4 = 0
    assert abs(c.mean()) < 0.03
    low = np.array([s.context for s in paper_sequence(T=400, variant="low", seed=0)])
    assert abs(low.mean() - 0.0) < 0.02 and low.std() < c.std()
    A = seq[0].A
    dense = A.to_csr().toarray()
    # unscaled integer stencil: 4 + c on the diagonal, -1 off it (MATLAB's delsq)
    assert np.allclose(np.diag(dense), 4 + seq[0].context) and dense.min() == -1.0
    assert all(np.linalg.norm(s.b) <= np.sqrt(100) for s in seq)
    assert np.array_equal(paper_sequence(T=3, seed=5)[2].b, paper_sequence(T=3, seed=5)[2].b)
    assert lr.problems.paper_sequence is paper_sequence


def test_shifted_laplacian_sequence_is_log_uniform():
    seq = shifted_laplacian_sequence(T=500, n=6, seed=2)
    logc = np.log10([s.context for s in seq])
    assert logc.min() >= -3 and logc.max() <= np.log10(0.3)
    # log-uniform: the median sits at the geometric middle of [1e-3, 0.3]
    assert abs(np.median(logc) - 0.5 * (-3 + np.log10(0.3))) < 0.15


def test_truncated_normal_is_inside_the_ball():
    rng = np.random.default_rng(0)
    x = [truncated_normal(50, rng) for _ in range(100)]
    assert max(np.linalg.norm(v) for v in x) <= np.sqrt(50)


def test_heat_equation_is_crank_nicolson():
    pde = HeatEquation(nx=12, T=20, stoptime=1.0)
    A, b, kappa = pde.system()
    half = 0.5 * pde.dt
    assert kappa == pytest.approx(float(heat_diffusivity(half)))
    K = lr.operators.poisson_operator(11, 2, scaled=True).to_csr().toarray()
    a = 0.5 * kappa * pde.dt
    I = np.eye(121)
    assert np.allclose(A.to_csr().toarray(), I + a * K)
    assert np.allclose(b, (I - a * K) @ pde.u + pde.dt * pde.forcing(half))
    assert heat_diffusivity(0.75) == pytest.approx(10.0) and heat_diffusivity(0.25) == \
        pytest.approx(0.1)


def test_heat_sequence_warm_starts_from_the_previous_solution():
    seq = heat_sequence(nx=10, T=6, stoptime=1.0)
    for prev, item in zip(seq, seq[1:]):
        x_prev = np.linalg.solve(prev.A.to_csr().toarray(), prev.b)
        assert np.allclose(item.x0, x_prev, atol=1e-10)
    with pytest.raises(ValueError, match="nx"):
        HeatEquation(nx=2)
    with pytest.raises(ValueError, match="T"):
        paper_sequence(T=0)
    with pytest.raises(ValueError, match="variant"):
        paper_sequence(T=2, variant="mid")
