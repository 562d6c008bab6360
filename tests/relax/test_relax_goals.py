"""The issue's goals, measured: learned omega against fixed omegas, Gauss-Seidel and the
instance-optimal omega.  Default tests use short sequences with documented looser bounds;
the full-size checks (T=5000 for the paper, T=200 on 40x40 / the heat equation) are slow."""
from __future__ import annotations

import pytest

from lrsolve.bench.relax import fixed_costs, run_learner, young_costs
from lrsolve.problems.sequences import heat_sequence, paper_sequence, shifted_laplacian_sequence
from lrsolve.relax.learners import default_omegas

ARMS = default_omegas()


def totals(seq, method="sor"):
    F = fixed_costs(seq, ARMS, method)
    return F.sum(axis=0)


def check_default_beats_fixed(seq, method, ratio_best, ratio_gs):
    fixed = totals(seq, method)
    ours, _ = run_learner(seq, None, method=method)
    assert ours.sum() <= ratio_best * fixed.min(), (ours.sum(), fixed.min())
    assert ours.sum() <= ratio_gs * fixed[0], (ours.sum(), fixed[0])
    return ours.sum() / fixed.min(), ours.sum() / fixed[0]


def test_default_tuner_short_diffusion_sequence():
    # 20x20 grid, T=40 (the issue's 40x40 / T=200 case is the slow test below)
    seq = shifted_laplacian_sequence(T=40, n=20, seed=0)
    check_default_beats_fixed(seq, "sor", 1.3, 0.35)


def test_default_tuner_short_heat_equation_sor():
    seq = heat_sequence(nx=20, T=40)
    check_default_beats_fixed(seq, "sor", 1.3, 0.35)


def test_default_tuner_short_heat_equation_ssor_cg():
    # SSOR-PCG: within 1.3x of the best fixed omega; against symmetric Gauss-Seidel PCG
    # the best fixed omega itself only reaches ~0.6-0.75x here, so 0.35x is out of reach.
    seq = heat_sequence(nx=20, T=40)
    check_default_beats_fixed(seq, "ssor-cg", 1.3, 0.9)


def test_paper_sequence_short_horizon():
    # T=300 instead of 5000: Tsallis-INF is still paying for exploration (measured ~1.7x
    # of the best fixed omega at T=400), ChebCB already beats the best fixed omega.
    seq = paper_sequence(T=300, seed=0)
    fixed = totals(seq)
    inst = young_costs(seq).sum()
    tinf, _ = run_learner(seq, "tsallis-inf", seed=0)
    cheb, _ = run_learner(seq, "chebcb", seed=0, learner_options={"context_bounds": (-0.15, 0.65)})
    young, _ = run_learner(seq, None, seed=0)
    assert tinf.sum() <= 2.2 * fixed.min() and tinf.sum() <= 0.6 * fixed[0]
    assert cheb.sum() <= 1.1 * fixed.min() and cheb.sum() <= 0.4 * fixed[0]
    # measured: 0.75x the best fixed omega, 1.41x the instance-optimal (Young) total
    assert young.sum() <= 0.9 * fixed.min() and young.sum() <= 1.5 * inst


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["high", "low"])
def test_paper_reproduced_at_T5000(variant):
    seq = paper_sequence(T=5000, variant=variant, seed=0)
    fixed = totals(seq)
    inst = young_costs(seq).sum()
    tinf, _ = run_learner(seq, "tsallis-inf", seed=0)
    cheb, _ = run_learner(seq, "chebcb", seed=0, learner_options={"context_bounds": (-0.15, 0.65)})
    assert tinf.sum() <= 1.2 * fixed.min()
    assert cheb.sum() <= 1.2 * inst
    assert tinf.sum() <= 0.5 * fixed[0] and cheb.sum() <= 0.5 * fixed[0]


@pytest.mark.slow
def test_default_tuner_issue_diffusion_sequence_T200():
    seq = shifted_laplacian_sequence(T=200, n=40, seed=0)
    check_default_beats_fixed(seq, "sor", 1.3, 0.35)


@pytest.mark.slow
def test_default_tuner_issue_heat_equation_T200():
    seq = heat_sequence(nx=50, T=200)
    check_default_beats_fixed(seq, "sor", 1.3, 0.35)
    check_default_beats_fixed(seq, "ssor-cg", 1.3, 0.75)
