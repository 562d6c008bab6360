"""The smoke simulation (lrsolve.problems.fluids): physics of the projection, obstacles,
determinism, the pressure sequence, and the errors it must give."""
import numpy as np
import pytest

import lrsolve as lr
from lrsolve.operators.grid import GridOperator
from lrsolve.problems.fluids import Simulation, fluid_pressure_sequence, obstacle_mask

SPHERE2 = [("sphere", (0.5, 0.45), 0.15)]
OBST3 = [("sphere", (0.5, 0.3, 0.5), 0.15), ("box", (0.2, 0.6, 0.2), (0.4, 0.7, 0.8))]


def _check_step(sim, rec, rtol):
    # the divergence left is the solver's residual: <= rtol ||div u*|| (+ rounding)
    assert rec["converged"], rec
    assert rec["divergence_after"] <= rtol * rec["divergence_before"] * (1 + 1e-6) + 1e-10
    # recomputed from the state, not trusted from the record
    div = sim.divergence()
    assert np.linalg.norm(div) == pytest.approx(rec["divergence_after"], rel=1e-12, abs=1e-14)
    # no flux through solid faces or closed walls, exactly
    assert sim.closed_face_flux() == 0.0
    assert np.all(sim.density[sim.solid] == 0.0)


@pytest.mark.parametrize("method,rtol", [("pcg-mg", 1e-8), ("cg", 1e-6)])
def test_2d_projection_is_divergence_free_every_step(method, rtol):
    sim = Simulation(32, 2, obstacles=SPHERE2, seed=0)
    S = lr.Solver(sim.A, method, rtol=rtol)
    assert sim.A.singular            # closed box: pure Neumann
    for _ in range(12):
        rec = sim.step(S)
        _check_step(sim, rec, rtol)
        assert rec["divergence_before"] > 1e-3    # the flow really had divergence to remove
    assert sim.max_speed > 0.1


def test_closed_box_rhs_is_compatible_before_projection():
    # closed walls and solids carry no flux, so -div u* sums to zero over the fluid: the
    # null-space projection of b removes rounding only
    sim = Simulation(24, 2, obstacles=SPHERE2, seed=0)
    for _ in range(5):
        P = sim.prepare()
        raw = -sim.divergence(sim._pending[0]).reshape(-1)
        assert sim.A.null_incompatibility(raw) < 1e-14
        assert np.linalg.norm(raw - P.b) < 1e-13 * np.linalg.norm(raw)
        sim.project(lr.solve(P.A, P.b, method="pcg-mg", x0=P.x0, rtol=1e-8).x)


def test_3d_with_sphere_and_box_obstacles():
    sim = Simulation(16, 3, obstacles=OBST3, seed=0)
    assert sim.solid.sum() > 60
    S = lr.Solver(sim.A, "pcg-mg", rtol=1e-8)
    for _ in range(4):
        _check_step(sim, sim.step(S), 1e-8)
    # the plume moves up: upward velocity above the source
    assert sim.velocity[1].max() > 0.1


def test_open_top_is_not_singular_and_lets_flow_out():
    sim = Simulation(32, 2, obstacles=SPHERE2, walls={"y+": "open"}, seed=0)
    assert not sim.A.singular
    for _ in range(10):
        rec = sim.step("cg")
        _check_step(sim, rec, sim.rtol)
    top = sim.velocity[1][:, -1]
    assert np.any(top != 0.0)        # the open wall's faces carry flow
    assert np.all(sim.velocity[0][0, :] == 0.0)   # the closed side walls do not


def test_smoke_rises_and_goes_around_the_obstacle():
    sim = Simulation(32, 2, obstacles=SPHERE2, seed=0)
    y = (np.arange(32) + 0.5) / 32

    def height():
        return float((sim.density.sum(axis=0) * y).sum() / sim.density.sum())
    sim.run("pcg-mg", 3)
    h0 = height()
    sim.run("pcg-mg", 15)
    assert height() > h0 + 0.05
    # velocity faces inside the sphere stay zero
    inside = obstacle_mask(SPHERE2, (32, 32))
    assert np.all(sim.velocity[0][:-1][inside] == 0.0) and np.all(sim.velocity[0][1:][inside] == 0)


def test_warm_start_and_pressure_sequence():
    seq = fluid_pressure_sequence(n=24, dim=2, steps=6, obstacles=SPHERE2, seed=3)
    count = 0
    for P in seq:
        count += 1
        assert isinstance(P.A, GridOperator) and P.A.mask is not None
        assert P.A.null_incompatibility(P.b) < 1e-12       # compatible with the null space
        r0 = np.linalg.norm(P.b - P.A @ P.x0)
        if P.meta["step"] >= 2:
            assert r0 < 0.8 * np.linalg.norm(P.b)           # the warm start helps
        r = lr.solve(P.A, P.b, method="pcg-mg", x0=P.x0, rtol=1e-6)
        assert r.converged
    assert count == 6
    # the reference solution is attached after resuming
    seq = fluid_pressure_sequence(n=16, dim=2, steps=2, seed=0)
    P = next(seq)
    next(seq)
    sol = P.meta["solution"]
    assert np.linalg.norm(P.b - P.A @ sol) <= 1e-8 * np.linalg.norm(P.b) * 1.001


def test_moving_obstacle_updates_the_solver_and_carries_its_velocity():
    v = (0.4, 0.0)
    sim = Simulation(24, 2, obstacles=[("sphere", (0.3, 0.5), 0.12)], obstacle_velocity=v,
                     walls={"x+": "open"}, seed=0)
    S = lr.Solver(sim.A, "pcg-mg", rtol=1e-8)
    changed = 0
    for _ in range(12):
        rec = sim.step(S)
        changed += rec["operator_changed"]
        assert rec["converged"]
        assert rec["divergence_after"] <= 1e-8 * rec["divergence_before"] * (1 + 1e-6) + 1e-10
        # relative to the obstacle, no flux through its faces
        assert sim.closed_face_flux() == 0.0
        inside = sim.solid[1:, :] & sim.solid[:-1, :]          # x-faces between solid cells
        assert np.all(sim.velocity[0][1:-1][inside] == v[0])
    assert changed >= 6 and S.counts["updates"] == changed
    assert sim.obstacle_offset[0] == pytest.approx(sim.t * v[0])
    # an abandoned step (the solver fails) leaves the obstacle and A where they were
    A, offset, solid = sim.A, sim.obstacle_offset.copy(), sim.solid.copy()

    def failing(A, b, x0):
        raise RuntimeError("solver failed")
    for _ in range(3):
        with pytest.raises(RuntimeError, match="solver failed"):
            sim.step(failing)
        with pytest.raises(FloatingPointError, match="non-finite solution"):
            sim.step(lambda A, b, x0: np.full_like(b, np.inf))
    assert sim.A is A and np.array_equal(sim.obstacle_offset, offset)
    assert np.array_equal(sim.solid, solid) and sim.steps == 12
    # moving across a closed wall is refused, and the state is kept
    sim = Simulation(16, 2, obstacles=[("sphere", (0.75, 0.5), 0.12)], obstacle_velocity=v,
                     seed=0)
    with pytest.raises(ValueError, match="closed wall 'x\\+'"):
        sim.run("cg", 20)
    assert not sim.solid[-1].any() and sim.A.mask is not None and \
        np.array_equal(sim.A.mask, sim.solid)
    with pytest.raises(ValueError, match="shapes"):
        Simulation(16, 2, obstacles=np.zeros((16, 16), bool), obstacle_velocity=v)


def test_deterministic_by_seed():
    def run(seed):
        sim = Simulation(20, 2, obstacles=SPHERE2, seed=seed)
        sim.run("pcg-mg", 5)
        return sim.density, sim.velocity[1]
    d0, v0 = run(0)
    d1, v1 = run(0)
    d2, _ = run(1)
    assert np.array_equal(d0, d1) and np.array_equal(v0, v1)
    assert not np.array_equal(d0, d2)


def test_any_solver_form_is_accepted():
    sim = Simulation(16, 2, obstacles=SPHERE2, seed=0, rtol=1e-7)
    tuner = lr.relax.BanditSOR(method="ssor-cg", seed=0)
    rec = sim.step(tuner)                        # .solve(A, b, x0=, rtol=)
    assert 1.0 <= rec["omega"] < 2.0
    _check_step(sim, rec, 1e-7)
    rec = sim.step(lambda A, b, x0: lr.solve(A, b, method="pcg-ic0", x0=x0, rtol=1e-7))
    _check_step(sim, rec, 1e-7)
    other = Simulation(16, 2, seed=0).A          # a Solver built elsewhere is updated
    S = lr.Solver(other, "pcg-mg", rtol=1e-7)
    _check_step(sim, sim.step(S), 1e-7)
    assert S.counts["updates"] == 1
    with pytest.raises(TypeError, match="solver"):
        sim.step(3.0)


def test_disconnecting_obstacles_are_rejected():
    wall = [("box", (0.0, 0.5, 0.0), (1.0, 0.56, 1.0))]          # a floor across the box
    with pytest.raises(ValueError, match="disconnect the fluid region into 2 parts"):
        Simulation(16, 3, obstacles=wall)
    mask = np.zeros((24, 24), dtype=bool)
    mask[5:15, 5] = mask[5:15, 14] = mask[5, 5:15] = mask[14, 5:15] = True   # a sealed pocket
    with pytest.raises(ValueError, match="disconnect"):
        Simulation(24, 2, obstacles=mask)
    with pytest.raises(ValueError, match="no fluid"):
        Simulation(8, 2, obstacles=np.ones((8, 8), dtype=bool))


def test_non_finite_velocity_stops_with_a_clear_error_and_no_nan_frame():
    sim = Simulation(16, 2, obstacles=SPHERE2, seed=0)
    sim.run("pcg-mg", 2)
    density, vel = sim.density.copy(), [u.copy() for u in sim.velocity]
    sim.buoyancy = 1e308                     # the force overflows to inf in this step
    with pytest.raises(FloatingPointError, match="non-finite after advection and forces"):
        sim.step("pcg-mg")
    assert np.array_equal(sim.density, density) and sim.steps == 2
    assert all(np.array_equal(u, v) for u, v in zip(sim.velocity, vel))
    sim.velocity[0][3, 3] = np.nan
    with pytest.raises(FloatingPointError, match="velocity component 0 is non-finite"):
        sim.step("pcg-mg")
    with pytest.raises(FloatingPointError, match="non-finite solution"):
        sim.velocity[0][3, 3] = 0.0
        sim.buoyancy = 1.0
        sim.step(lambda A, b, x0: np.full_like(b, np.nan))
    assert np.all(np.isfinite(sim.density))


def test_bad_input():
    with pytest.raises(ValueError, match="dim"):
        Simulation(16, 4)
    with pytest.raises(ValueError, match="n must be >= 8"):
        Simulation(4, 2)
    with pytest.raises(ValueError, match="kind must be 'sphere' or 'box'"):
        Simulation(16, 2, obstacles=[("cone", (0.5, 0.5), 0.1)])
    with pytest.raises(ValueError, match="centre must be 2 finite numbers"):
        Simulation(16, 2, obstacles=[("sphere", (0.5, 0.5, 0.5), 0.1)])
    with pytest.raises(ValueError, match="lo < hi"):
        Simulation(16, 2, obstacles=[("box", (0.5, 0.5), (0.4, 0.6))])
    with pytest.raises(ValueError, match="grid shape"):
        Simulation(16, 2, obstacles=np.zeros((8, 8), dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        Simulation(16, 2, obstacles=np.zeros((16, 16)))
    with pytest.raises(ValueError, match="walls"):
        Simulation(16, 2, walls={"z+": "open"})
    with pytest.raises(ValueError, match="source"):
        Simulation(16, 2, obstacles=[("sphere", (0.5, 0.1), 0.2)])
    with pytest.raises(ValueError, match="steps"):
        fluid_pressure_sequence(16, 2, steps=-1)


def test_smoke_plume_example_writes_frames_and_stays_divergence_free(tmp_path):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "smoke_plume.py"
    spec = importlib.util.spec_from_file_location("smoke_plume_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main(["--n", "16", "--steps", "4", "--every", "2", "--out",
                           str(tmp_path)])
    assert summary["max_divergence_ratio"] <= 1e-6 * (1 + 1e-6)
    assert len(summary["iterations"]) == 4 and min(summary["iterations"]) >= 1
    for name in ("density_0002.png", "density_0004.png", "iterations.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 100
    pytest.importorskip("PIL")
    assert (tmp_path / "density.gif").stat().st_size > 100
