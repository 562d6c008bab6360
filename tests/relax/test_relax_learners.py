"""Learners: valid distributions, convergence to the good arm on synthetic costs, state round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lrsolve.relax.learners import (ChebCB, Exp3, HagemanYoung, TsallisINF, UnimodalUCB,
                                    YoungLearner, default_omegas, make_learner)
from lrsolve.relax.theory import sor_rate, young_omega


def synthetic_cost(omega, rng, best=1.75):
    # unimodal, noisy, >= 1: like iteration counts
    return 40.0 + 400.0 * (omega - best) ** 2 + rng.uniform(0, 5)


@pytest.mark.parametrize("cls, tol", [(TsallisINF, 0.12), (UnimodalUCB, 0.12), (Exp3, 0.25)])
def test_bandits_concentrate_near_the_best_arm(cls, tol):
    rng = np.random.default_rng(0)
    learner = cls(seed=1)
    chosen = []
    for _ in range(600):
        omega = learner.choose()
        chosen.append(omega)
        learner.update(synthetic_cost(omega, rng))
    late = np.asarray(chosen[-200:])
    # uniform play would give about 0.26; Exp3 (loss scaled by the largest cost) is slow
    assert np.mean(np.abs(late - 1.75)) < tol


def test_tsallis_inf_probabilities_are_a_distribution():
    learner = TsallisINF(seed=0)
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = learner.probabilities()
        assert abs(p.sum() - 1.0) < 1e-9 and np.all(p > 0)
        learner.choose()
        learner.update(rng.uniform(1, 500))
    # first round: uniform over the paper's 20 arms
    assert np.allclose(TsallisINF(seed=0).probabilities(), 1 / 20)
    assert np.allclose(default_omegas(), np.linspace(1, 1.95, 20))


def test_chebcb_learns_a_context_dependent_best_arm():
    rng = np.random.default_rng(0)
    learner = ChebCB(context_bounds=(0.0, 1.0), seed=0)
    errors = []
    for t in range(800):
        c = rng.uniform()
        best = 1.2 + 0.6 * c
        omega = learner.choose(c)
        learner.update(30.0 + 300.0 * (omega - best) ** 2)
        if t >= 600:
            errors.append(abs(omega - best))
    assert np.mean(errors) < 0.15
    with pytest.raises(ValueError, match="context"):
        learner.choose(None)


def test_young_learner_reaches_young_omega_from_synthetic_histories():
    learner = YoungLearner()
    mu_over_bound = 0.995
    for t in range(6):
        bound = 0.99 + 0.009 * (t % 3) / 2
        omega = learner.choose(side={"jacobi_bound": bound})
        mu = mu_over_bound * bound
        side = {"omega": omega, "residuals": list(float(sor_rate(omega, mu)) ** np.arange(200))}
        if learner.request_adaptive:
            side["mu_first"] = mu
        learner.update(200, side=side)
    bound = 0.998
    # exact geometric histories at the optimum read as "censored", which lowers g a little
    assert abs(learner.choose(side={"jacobi_bound": bound})
               - young_omega(mu_over_bound * bound)) < 0.02
    assert learner.history[0][1] == "adaptive"


def test_young_learner_walks_down_when_over_relaxed():
    learner = YoungLearner()
    learner.g = 1.0  # as if it had wrongly learnt g = 1
    learner.informative = [1.0]
    mu, bound = 0.95, 0.9999
    omegas = []
    for _ in range(60):
        omega = learner.choose(side={"jacobi_bound": bound})
        omegas.append(omega)
        rate = float(sor_rate(omega, mu))
        learner.update(100, side={"omega": omega, "residuals": list(rate ** np.arange(60))})
    assert omegas[0] > 1.9 and omegas[-1] < young_omega(mu) + 0.05


@pytest.mark.parametrize("name", ["tsallis-inf", "exp3", "chebcb", "unimodal", "young",
                                  "hageman-young"])
def test_state_dict_round_trip_continues_identically(name):
    rng = np.random.default_rng(0)
    opts = {"context_bounds": (0.0, 1.0)} if name == "chebcb" else {}
    a = make_learner(name, seed=5, **opts)
    contexts = rng.uniform(size=60)
    costs = rng.uniform(20, 200, size=60)

    def step(learner, t):
        omega = learner.choose(contexts[t], {"jacobi_bound": 0.99})
        learner.update(costs[t], {"omega": omega, "residuals": list(0.9 ** np.arange(30)),
                                  "mu": 0.95, "mu_first": 0.95})
        return omega

    for t in range(30):
        step(a, t)
    state = json.loads(json.dumps(a.state_dict()))
    b = type(a).from_state_dict(state)
    assert [step(a, t) for t in range(30, 60)] == [step(b, t) for t in range(30, 60)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="omegas"):
        TsallisINF(omegas=[1.0, 2.0])
    with pytest.raises(ValueError, match="learner"):
        make_learner("nope")
    with pytest.raises(ValueError, match="cost"):
        Exp3().update(float("nan"))
    with pytest.raises(ValueError, match="context_bounds"):
        ChebCB(context_bounds=(1.0, 0.0))
    assert HagemanYoung().choose() == 1.0
