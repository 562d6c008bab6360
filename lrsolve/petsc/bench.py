"""The Poisson suite under MPI: lrsolve on PETSc beside PETSc's own GAMG and hypre.

Run under ``mpiexec`` (rank 0 prints the table and writes the JSON and the plot)::

    mpiexec -n 2 python -m lrsolve.petsc.bench --dim 3 --sizes 64 128 --rtol 1e-8
    mpiexec -n 2 lrsolve bench poisson --engine petsc --dim 3 --sizes 64   # the same suite

Rows (all on the same distributed 3-D Poisson problem, CG to the same true relative
residual, timed as the slowest rank):

* ``lrsolve-hypre`` - :class:`~lrsolve.petsc.PetscSolver` ``pcg-amg`` (hypre BoomerAMG);
* ``lrsolve-matfree-hypre`` - the same, KSP applying lrsolve's matrix-free shell;
* ``lrsolve-pcg-mg`` - ``pcg-mg``: PCMG on the DMDA hierarchy (Galerkin, PETSc smoothers);
* ``lrsolve-gmg-pc`` - :class:`~lrsolve.petsc.MultigridPC` as a Python PC: a V-cycle across
  the ranks (PETSc products, lrsolve's SSOR smoothing on each rank's block);
* ``lrsolve-gmg-pc-local`` - the same PC with ``scope="local"``: a V-cycle on each rank's
  box alone (block Jacobi);
* ``petsc-hypre``, ``petsc-gamg`` - plain petsc4py code (KSP CG + the PC, nothing of
  lrsolve in the solve) on the same assembled matrix: the peers.

``--weak M`` instead runs one weak-scaling point: an ``(M*ranks, M, M)`` grid, ``M**3``
unknowns per rank, split along the first axis, and records per-rank compute and halo
volume and timing for the performance model (``benchmarks/bench_petsc.py`` runs it on 1
and 2 ranks and writes the table and the model).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..io import save_figure, save_json
from ._base import petsc

SOLVERS = ("lrsolve-hypre", "lrsolve-matfree-hypre", "lrsolve-pcg-mg", "lrsolve-gmg-pc",
           "lrsolve-gmg-pc-local", "petsc-hypre", "petsc-gamg")


def _max_over_ranks(comm, value: float) -> float:
    return float(comm.tompi4py().allreduce(float(value), op=_mpi_max()))


def _mpi_max():
    from mpi4py import MPI
    return MPI.MAX


def _peer(D, pc_type: str, rtol: float):
    """PETSc's own solver: plain petsc4py, nothing of lrsolve in the loop."""
    PETSc = petsc()
    comm = D.A.getComm()
    ksp = PETSc.KSP().create(comm=comm)
    ksp.setOptionsPrefix(f"peer_{pc_type}_")
    ksp.setType("cg")
    ksp.setOperators(D.A)
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setTolerances(rtol=rtol, atol=0.0, max_it=10000)
    pc = ksp.getPC()
    if pc_type == "hypre":
        pc.setType("hypre")
        pc.setHYPREType("boomeramg")
    else:
        pc.setType("gamg")
    ksp.setFromOptions()
    x = D.b.duplicate()
    comm.barrier()
    t0 = time.perf_counter()
    ksp.setUp()
    t1 = time.perf_counter()
    ksp.solve(D.b, x)
    t2 = time.perf_counter()
    r = D.b.duplicate()
    D.A.mult(x, r)
    r.aypx(-1.0, D.b)
    rel = r.norm() / D.b.norm()
    out = {"setup": _max_over_ranks(comm, t1 - t0), "solve": _max_over_ranks(comm, t2 - t1),
           "iterations": int(ksp.getIterationNumber()), "relres": float(rel),
           "converged": bool(ksp.getConvergedReason() > 0)}
    ksp.destroy()
    x.destroy()
    r.destroy()
    return out


def _lrsolve_row(problem, name: str, rtol: float):
    from .pcs import MultigridPC
    from .solver import PetscSolver
    kw = {"lrsolve-hypre": dict(method="pcg-amg", amg="hypre"),
          "lrsolve-matfree-hypre": dict(method="pcg-amg", amg="hypre"),
          "lrsolve-pcg-mg": dict(method="pcg-mg"),
          "lrsolve-gmg-pc": dict(method="pcg-python", pc=MultigridPC()),
          "lrsolve-gmg-pc-local": dict(method="pcg-python", pc=MultigridPC(scope="local"))}[name]
    PETSc = petsc()
    PETSc.COMM_WORLD.barrier()
    t0 = time.perf_counter()
    S = PetscSolver(problem, rtol=rtol, maxiter=10000, **kw)
    setup = time.perf_counter() - t0
    r = S.solve(problem.b)
    comm = S.comm
    out = {"setup": _max_over_ranks(comm, setup), "solve": _max_over_ranks(comm, r.time),
           "iterations": r.iterations, "relres": r.stats["relative_residual"],
           "converged": r.converged, "status": r.status.value}
    if S.hierarchy is not None:
        out["levels"] = S.hierarchy["levels"]
    S.destroy()
    return out


def run_suite(dim: int = 3, sizes=(64,), solvers=SOLVERS, rtol: float = 1e-8, seed: int = 0):
    """Every solver on every size; returns the result dict (the same on every rank)."""
    from .. import problems
    from .convert import to_petsc
    PETSc = petsc()
    comm = PETSc.COMM_WORLD
    rows = []
    # Warm-up on a small grid: numba compiles lrsolve's kernels once per process, and
    # hypre / GAMG load their code; none of that belongs in the timed rows.
    warm = to_petsc(problems.poisson(n=12, dim=dim, seed=seed), format="aij")
    for name in solvers:
        if name.startswith("lrsolve-"):
            _lrsolve_row(warm, name, rtol)
        else:
            _peer(warm, name.split("-", 1)[1], rtol)
    for n in sizes:
        P = problems.poisson(n=int(n), dim=dim, seed=seed)
        assembled = to_petsc(P, format="aij")
        matfree = None
        for name in solvers:
            if name == "lrsolve-matfree-hypre":
                matfree = matfree or to_petsc(P, format="matfree")
                row = _lrsolve_row(matfree, name, rtol)
            elif name.startswith("lrsolve-"):
                row = _lrsolve_row(assembled, name, rtol)
            else:
                row = _peer(assembled, name.split("-", 1)[1], rtol)
            row.update({"solver": name, "n": int(n), "dim": dim, "unknowns": int(n) ** dim,
                        "total": row["setup"] + row["solve"]})
            rows.append(row)
            if comm.getRank() == 0:
                print(f"  {name:24s} n={n:4d}  its={row['iterations']:4d}  "
                      f"setup={row['setup']:.3f}s  solve={row['solve']:.3f}s  "
                      f"relres={row['relres']:.2e}", flush=True)
    return {"ranks": comm.getSize(), "rtol": rtol, "dim": dim, "rows": rows,
            "load_average_after": os.getloadavg(),
            "petsc_version": ".".join(map(str, PETSc.Sys.getVersion())),
            "threads": os.environ.get("OMP_NUM_THREADS")}


# -------------------------------------------------------------------------------------
def weak_point(m: int = 64, rtol: float = 1e-8, halo_repeats: int = 200):
    """One weak-scaling point: ``m**3`` unknowns per rank, and the model's measurements."""
    from .grid import GridInfo, PoissonShell
    from .convert import grid_problem
    from .solver import PetscSolver
    PETSc = petsc()
    comm = PETSc.COMM_WORLD
    size = comm.getSize()
    shape = (m * size, m, m)
    h = 1.0 / (m + 1)
    grid = GridInfo(grid_shape=shape, scale=1.0 / h ** 2, constant=1.0, faces=None)
    rng = np.random.default_rng(0)
    b = rng.standard_normal(int(np.prod(shape)))
    D = grid_problem(grid, b, format="aij", proc_sizes=(size, 1, 1))
    out = {"ranks": size, "grid_shape": shape, "unknowns_per_rank": m ** 3,
           "load_average_before": os.getloadavg()}
    for name, method in (("lrsolve-hypre", "pcg-amg"), ("lrsolve-cg", "cg")):
        comm.barrier()
        t0 = time.perf_counter()
        S = PetscSolver(D, method=method, rtol=rtol, maxiter=20000)
        setup = time.perf_counter() - t0
        r = S.solve(D.b)
        out[name] = {"setup": _max_over_ranks(comm, setup), "solve": _max_over_ranks(comm, r.time),
                     "iterations": r.iterations, "converged": r.converged}
        S.destroy()
    # Per-rank compute: one assembled mat-vec on the rank's rows, timed alone.
    x = D.b.duplicate()
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(20):
        D.A.mult(D.b, x)
    out["matvec_seconds"] = _max_over_ranks(comm, (time.perf_counter() - t0) / 20)
    # Halo: ghost points per rank and the time of one exchange.
    shell = PoissonShell(D.da, grid)
    local_size = D.b.getLocalSize()
    ghosts = shell.local.getSize() - local_size
    out["halo_points"] = int(comm.tompi4py().allreduce(ghosts, op=_mpi_max()))
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(halo_repeats):
        D.da.globalToLocal(D.b, shell.local)
    out["halo_seconds"] = _max_over_ranks(comm, (time.perf_counter() - t0) / halo_repeats)
    mpi = comm.tompi4py()
    mpi.Barrier()
    t0 = time.perf_counter()
    for _ in range(halo_repeats):
        mpi.allreduce(1.0)
    out["allreduce_seconds"] = _max_over_ranks(comm, (time.perf_counter() - t0) / halo_repeats)
    return out


# -------------------------------------------------------------------------------------
def format_table(result: dict) -> str:
    lines = [f"Poisson {result['dim']}D on {result['ranks']} MPI rank(s), CG to true relative "
             f"residual {result['rtol']:g} (times: slowest rank)",
             f"{'solver':24s} {'n':>5s} {'its':>5s} {'setup s':>9s} {'solve s':>9s} "
             f"{'total s':>9s} {'relres':>9s}"]
    for row in result["rows"]:
        lines.append(f"{row['solver']:24s} {row['n']:5d} {row['iterations']:5d} "
                     f"{row['setup']:9.3f} {row['solve']:9.3f} {row['total']:9.3f} "
                     f"{row['relres']:9.2e}")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = result["rows"]
    sizes = sorted({r["n"] for r in rows})
    names = list(dict.fromkeys(r["solver"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(sizes), 1)
    for k, n in enumerate(sizes):
        totals = [next((r["total"] for r in rows if r["solver"] == s and r["n"] == n), np.nan)
                  for s in names]
        ax.bar(np.arange(len(names)) + k * width, totals, width, label=f"n={n}")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("setup + solve (s)")
    ax.set_title(f"3D Poisson on {result['ranks']} ranks, rtol {result['rtol']:g}")
    ax.legend()
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mpiexec -n 2 python -m lrsolve.petsc.bench",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="petsc", choices=["petsc"])
    parser.add_argument("--dim", "--dims", type=int, nargs="+", default=[3], dest="dims")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weak", type=int, default=None, metavar="M",
                        help="one weak-scaling point with M**3 unknowns per rank")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default=None, help="file stem (default petsc_poisson_<ranks>)")
    args = parser.parse_args(argv)
    if args.rtol <= 0:
        parser.error("--rtol must be > 0")
    PETSc = petsc()
    comm = PETSc.COMM_WORLD
    rank0 = comm.getRank() == 0
    command = "mpiexec -n {} python -m lrsolve.petsc.bench ".format(comm.getSize()) + \
        " ".join(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    if args.weak is not None:
        result = weak_point(args.weak, args.rtol)
        result["command"] = command
        name = args.name or f"petsc_weak_{comm.getSize()}"
        if rank0:
            out.mkdir(parents=True, exist_ok=True)
            save_json(out / f"{name}.json", result)
            print(json.dumps(result, indent=1))
        return 0
    if len(args.dims) != 1:
        parser.error("give one --dim per run")
    result = run_suite(args.dims[0], args.sizes, tuple(args.solvers), args.rtol, args.seed)
    result["command"] = command
    if rank0:
        print(format_table(result))
        out.mkdir(parents=True, exist_ok=True)
        name = args.name or f"petsc_poisson_{comm.getSize()}"
        save_json(out / f"{name}.json", result)
        plot(result, out / f"{name}.png")
        print(f"\nwrote {out / (name + '.json')} and {out / (name + '.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
