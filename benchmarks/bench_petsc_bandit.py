"""BanditSOR inside a PETSc time loop on several ranks, beside every fixed omega.

Run under MPI (rank 0 writes the JSON and the plot)::

    mpiexec -n 2 python benchmarks/bench_petsc_bandit.py [--steps 100] [--n 128]

The loop: the heat equation ``u_t = Laplace(u) + f`` on the unit square (``n**2`` interior
points, zero Dirichlet), implicit Euler with a time step that changes every step
(``dt = dt0 * 10**U(-1, 1)``, as an adaptive integrator would), so each step solves
``(L + I/dt) u_new = u/dt + f`` - a shifted Laplacian whose best SSOR omega moves with dt.
KSP CG to ``rtol`` with lrsolve's SSOR on the rank-local blocks, warm-started from the last
step.  ``BanditSSORPC`` picks omega before every KSP solve (one learner on rank 0, omega
broadcast) and learns from KSP's iteration count.  The same loop runs with every fixed
omega of the bandit's arms; reported: total KSP iterations and seconds of each, the ratio
bandit / best fixed, and whether both ranks used the same omega sequence.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import lrsolve as lr
from lrsolve.petsc import BanditSSORPC, PetscSolver, SSORPC
from lrsolve.relax import default_omegas


def time_steps(steps: int, seed: int, dt0: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return dt0 * 10.0 ** rng.uniform(-1.0, 1.0, size=steps)


def run_loop(pc, n: int, dts: np.ndarray, rtol: float) -> dict:
    """The time loop with the Python PC ``pc``; returns per-step iterations and times."""
    f = lr.problems.poisson(n=n, dim=2, rhs="smooth", seed=1).b
    u = np.zeros(n * n)
    solver = None
    iterations, seconds = [], []
    t_start = time.perf_counter()
    for dt in dts:
        A = lr.operators.poisson_operator(n, 2, shift=1.0 / dt)
        if solver is None:
            solver = PetscSolver(A, method="pcg-python", pc=pc, rtol=rtol, maxiter=5000)
        else:
            solver.update(A)
        r = solver.solve(u / dt + f, x0=u)
        if not r.converged:
            raise RuntimeError(f"step did not converge: {r.reason}")
        u = r.x
        iterations.append(r.iterations)
        seconds.append(r.time)
    solver.destroy()
    return {"iterations": iterations, "solve_seconds": seconds,
            "total_iterations": int(np.sum(iterations)),
            "total_solve_seconds": float(np.sum(seconds)),
            "wall_seconds": time.perf_counter() - t_start, "u_norm": float(np.linalg.norm(u))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--dt0", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="petsc_bandit")
    args = parser.parse_args(argv)
    from petsc4py import PETSc
    comm = PETSc.COMM_WORLD.tompi4py()
    dts = time_steps(args.steps, args.seed, args.dt0)

    run_loop(SSORPC(omega=1.5), args.n, dts[:3], args.rtol)  # warm-up: numba compiles, caches
    bandit_pc = BanditSSORPC(seed=args.seed)
    bandit = run_loop(bandit_pc, args.n, dts, args.rtol)
    histories = comm.allgather(bandit_pc.omega_history)
    same = all(h == histories[0] for h in histories)
    bandit["omegas"] = bandit_pc.omega_history
    fixed = {}
    for omega in default_omegas():
        res = run_loop(SSORPC(omega=float(omega)), args.n, dts, args.rtol)
        fixed[f"{omega:.4f}"] = {k: res[k] for k in ("total_iterations", "total_solve_seconds",
                                                      "wall_seconds")}
        if comm.rank == 0:
            print(f"  fixed omega {omega:.3f}: {res['total_iterations']} its, "
                  f"{res['total_solve_seconds']:.2f} s", flush=True)
    best_its = min(fixed.items(), key=lambda kv: kv[1]["total_iterations"])
    best_sec = min(fixed.items(), key=lambda kv: kv[1]["total_solve_seconds"])
    result = {
        "command": f"mpiexec -n {comm.size} python benchmarks/bench_petsc_bandit.py "
                   + " ".join(sys.argv[1:] if argv is None else argv),
        "ranks": comm.size, "n": args.n, "steps": args.steps, "rtol": args.rtol,
        "dts": dts.tolist(), "bandit": bandit, "fixed": fixed,
        "same_omegas_on_all_ranks": bool(same),
        "best_fixed_by_iterations": {"omega": float(best_its[0]), **best_its[1]},
        "best_fixed_by_seconds": {"omega": float(best_sec[0]), **best_sec[1]},
        "ratio_iterations": bandit["total_iterations"] / best_its[1]["total_iterations"],
        "ratio_seconds": bandit["total_solve_seconds"] / best_sec[1]["total_solve_seconds"],
    }
    if comm.rank == 0:
        print(f"bandit: {bandit['total_iterations']} its, {bandit['total_solve_seconds']:.2f} s; "
              f"best fixed omega {best_its[0]} by iterations: {best_its[1]['total_iterations']} "
              f"its -> ratio {result['ratio_iterations']:.3f}; by seconds ratio "
              f"{result['ratio_seconds']:.3f}; same omegas on all ranks: {same}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
        _plot(result, out / f"{args.name}.png")
    return 0


def _plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    omegas = [float(k) for k in result["fixed"]]
    a1.plot(omegas, [v["total_iterations"] for v in result["fixed"].values()], "o-",
            label="fixed omega")
    a1.axhline(result["bandit"]["total_iterations"], color="C3", label="BanditSSORPC")
    a1.set_xlabel("omega")
    a1.set_ylabel(f"total KSP iterations ({result['steps']} steps)")
    a1.legend()
    a2.plot(result["bandit"]["omegas"], ".", label="omega chosen")
    a2.set_xlabel("time step")
    a2.set_ylabel("omega")
    a2.set_title(f"{result['ranks']} ranks, same on all: {result['same_omegas_on_all_ranks']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
