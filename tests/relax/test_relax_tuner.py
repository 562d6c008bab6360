"""BanditSOR: stats, cap + fallback, warm start, save/load continuity, atomic save."""
from __future__ import annotations

import os

import numpy as np
import pytest

import lrsolve as lr
from lrsolve.problems.sequences import paper_sequence, shifted_laplacian_sequence
from lrsolve.relax import BanditSOR


def run(tuner, seq, start, stop):
    out = []
    for item in seq[start:stop]:
        r = tuner.solve(item.A, item.b, x0=item.x0, rtol=1e-8, context=item.context)
        out.append((r.stats["omega"], r.stats["iterations"]))
    return out


@pytest.mark.parametrize("learner", ["tsallis-inf", "young", "chebcb", "exp3"])
def test_saved_at_100_and_loaded_continues_exactly(tmp_path, learner):
    seq = paper_sequence(T=130, seed=4)
    opts = {"context_bounds": (-0.15, 0.65)} if learner == "chebcb" else None
    a = BanditSOR(learner=learner, seed=7, learner_options=opts)
    b = BanditSOR(learner=learner, seed=7, learner_options=opts)
    run(a, seq, 0, 100)
    run(b, seq, 0, 100)
    path = tmp_path / "tuner.json"
    b.save(path)
    del b
    c = BanditSOR.load(path)
    assert c.t == 100
    cont_a = run(a, seq, 100, 130)
    cont_c = run(c, seq, 100, 130)
    assert cont_a == cont_c
    assert len({w for w, _ in cont_a}) >= 1


def test_stats_and_solution():
    seq = shifted_laplacian_sequence(T=3, n=12, seed=0)
    tuner = BanditSOR(seed=0)
    for item in seq:
        r = tuner.solve(item.A, item.b, rtol=1e-9)
        x, stats = r.x, r.stats
        assert {"omega", "iterations", "converged"} <= set(stats)
        assert stats["converged"] and 0 < stats["omega"] < 2
        assert np.linalg.norm(item.b - item.A @ x) <= 1e-9 * np.linalg.norm(item.b)
    assert tuner.t == 3 and len(tuner.history["omega"]) == 3


def test_cap_costs_the_cap_and_finishes_with_a_safe_method():
    A = lr.operators.poisson_operator(30, 2, shift=1e-3, scaled=False)
    b = np.random.default_rng(0).standard_normal(900)
    tuner = BanditSOR(learner="tsallis-inf", omegas=[1.0], maxiter=25, seed=0)
    r = tuner.solve(A, b, rtol=1e-8)
    x, stats = r.x, r.stats
    assert stats["capped"] and stats["iterations"] == 25 and stats["cost"] == 25
    assert stats["fallback_iterations"] > 0 and stats["converged"]
    assert np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)


def test_warm_start_uses_fewer_iterations():
    A = lr.operators.poisson_operator(20, 2, shift=0.01, scaled=False)
    b = np.random.default_rng(1).standard_normal(400)
    x_exact = np.linalg.solve(A.to_csr().toarray(), b)
    cold = BanditSOR(learner="tsallis-inf", omegas=[1.7], seed=0).solve(A, b).stats
    warm = BanditSOR(learner="tsallis-inf", omegas=[1.7], seed=0).solve(
        A, b, x0=x_exact + 1e-6 * np.random.default_rng(2).standard_normal(400)).stats
    assert warm["iterations"] < 0.5 * cold["iterations"]


def test_ssor_cg_method_and_torch_red_black():
    torch = pytest.importorskip("torch")
    seq = shifted_laplacian_sequence(T=4, n=16, seed=0)
    tuner = BanditSOR(method="ssor-cg", seed=0)
    for item in seq:
        r = tuner.solve(item.A, item.b, rtol=1e-8)
        x, stats = r.x, r.stats
        assert stats["converged"] and stats["method"] == "ssor-cg"
    A_t = lr.operators.poisson_operator(16, 2, shift=0.05, scaled=False, backend="torch")
    b_t = torch.from_numpy(seq[0].b)
    r = BanditSOR(learner="tsallis-inf", seed=0).solve(A_t, b_t, rtol=1e-8)
    x, stats = r.x, r.stats
    assert isinstance(x, torch.Tensor) and stats["converged"]


def test_atomic_save_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    tuner = BanditSOR(learner="tsallis-inf", seed=0)
    path = tmp_path / "t.json"
    tuner.save(path)
    before = path.read_text()
    seq = paper_sequence(T=5, seed=0)
    run(tuner, seq, 0, 5)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        tuner.save(path)
    monkeypatch.undo()
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
    assert BanditSOR.load(path).t == 0


def test_load_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="BanditSOR"):
        BanditSOR.load(bad)
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="BanditSOR"):
        BanditSOR.load(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        BanditSOR(method="jacobi")
    with pytest.raises(ValueError, match="maxiter"):
        BanditSOR(maxiter=0)
    with pytest.raises(TypeError, match="learner"):
        BanditSOR(learner=3)
    with pytest.raises(ValueError, match="omegas"):
        BanditSOR(learner="exp3", omegas=[0.5, 2.5])


def test_seconds_cost_and_hageman_young_learner():
    seq = shifted_laplacian_sequence(T=3, n=16, seed=3)
    tuner = BanditSOR(learner="hageman-young", cost="seconds", seed=0)
    for item in seq:
        r = tuner.solve(item.A, item.b, rtol=1e-8)
        x, stats = r.x, r.stats
        assert stats["converged"] and stats["cost"] == stats["time"] > 0
        # classical Hageman-Young: every solve starts at omega = 1 and adapts upwards
        assert stats["omega"] == 1.0 and stats["omega_final"] > 1.5
