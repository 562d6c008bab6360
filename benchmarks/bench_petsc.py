"""Weak scaling of lrsolve on PETSc (1 -> 2 ranks, measured) and a performance model (64-1024).

    python benchmarks/bench_petsc.py [--m 64] [--ranks 1 2]

Runs ``mpiexec -n R python -m lrsolve.petsc.bench --weak M`` for each R (``M**3`` unknowns
per rank, an ``(M*R, M, M)`` grid split along its first axis), then writes
``benchmarks/results/petsc_weak.json`` and ``petsc_weak.png``: the measured table
(iterations, setup, solve, efficiency = T(1) / T(R)), and a MODEL of 64-1024 ranks built
from the measured per-rank compute and halo volume.

The model (a model, not a measurement; its assumptions are written into the JSON):

    T_iter(P) = t_compute                                   (measured: 1-rank solve / its)
              + x_fine * faces(P) * (alpha + 8 * m**2 / beta)   (fine-grid halo exchanges)
              + x_coarse * levels(P) * faces(P) * alpha     (AMG coarse levels: latency bound)
              + 2 * 2 * alpha * log2(P)                     (CG's two allreduces per iteration)
    T_solve(P) = its(P) * T_iter(P),  its(P) = its(1) + g * log2(P)  (g fitted on 1 -> 2 ranks)

with ``faces(P) = 6`` for a 3-D box decomposition (P >= 8), ``levels(P) = log2(m * P**(1/3))
- 2``, ``alpha`` a network latency and ``beta`` a link bandwidth (assumed: 2 us and
10 GB/s, typical InfiniBand; the shared-memory values measured here are recorded beside
them), ``x_fine = 3`` and ``x_coarse = 4`` halo exchanges per CG iteration (one mat-vec,
smoothing on the way down and up).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def launcher(ranks: int) -> list[str]:
    exe = shutil.which("mpiexec")
    if exe is None:
        raise SystemExit("mpiexec not found: install PETSc first (docs/petsc.md)")
    cmd = [exe, "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd + ["-n", str(ranks)]


def measure(ranks: int, m: int, rtol: float, folder: Path) -> dict:
    name = f"weak_{ranks}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_"))}
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = launcher(ranks) + [sys.executable, "-m", "lrsolve.petsc.bench", "--weak", str(m),
                             "--rtol", str(rtol), "--out", str(folder), "--name", name]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, timeout=1200,
                   stdout=subprocess.DEVNULL)
    return json.loads((folder / f"{name}.json").read_text())


def model(points: dict, m: int, alpha: float, beta: float, ranks=(64, 128, 256, 512, 1024)):
    one = points[1]
    hy1 = one["lrsolve-hypre"]
    t_compute = hy1["solve"] / max(hy1["iterations"], 1)
    top = max(points)
    growth = 0.0
    if top > 1:
        growth = (points[top]["lrsolve-hypre"]["iterations"] - hy1["iterations"]) / math.log2(top)
    rows = []
    for P in ranks:
        faces = 6
        levels = max(math.log2(m * P ** (1 / 3)) - 2, 1)
        halo_fine = 3 * faces * (alpha + 8 * m ** 2 / beta)
        halo_coarse = 4 * levels * faces * alpha
        reduce = 2 * 2 * alpha * math.log2(P)
        t_iter = t_compute + halo_fine + halo_coarse + reduce
        its = hy1["iterations"] + growth * math.log2(P)
        t_solve = its * t_iter
        rows.append({"ranks": P, "unknowns": P * m ** 3, "iterations": its,
                     "t_iter": t_iter, "t_compute": t_compute, "t_halo": halo_fine + halo_coarse,
                     "t_allreduce": reduce, "solve_seconds": t_solve,
                     "efficiency": hy1["solve"] / t_solve})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--alpha", type=float, default=2e-6, help="assumed latency (s)")
    parser.add_argument("--beta", type=float, default=10e9, help="assumed bandwidth (B/s)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        points = {R: measure(R, args.m, args.rtol, Path(tmp)) for R in args.ranks}
    base = points[min(points)]
    table = []
    for R, p in sorted(points.items()):
        row = {"ranks": R, "unknowns": R * args.m ** 3}
        for solver in ("lrsolve-hypre", "lrsolve-cg"):
            s = p[solver]
            row[solver] = {**s, "efficiency": base[solver]["solve"] / s["solve"],
                           "efficiency_total": (base[solver]["solve"] + base[solver]["setup"])
                           / (s["solve"] + s["setup"])}
        row.update({k: p[k] for k in ("matvec_seconds", "halo_points", "halo_seconds",
                                      "allreduce_seconds")})
        table.append(row)
        print(f"ranks={R}: hypre its={row['lrsolve-hypre']['iterations']} "
              f"setup={row['lrsolve-hypre']['setup']:.3f}s solve={row['lrsolve-hypre']['solve']:.3f}s "
              f"eff={row['lrsolve-hypre']['efficiency']:.2f} | cg its={row['lrsolve-cg']['iterations']} "
              f"solve={row['lrsolve-cg']['solve']:.3f}s eff={row['lrsolve-cg']['efficiency']:.2f} | "
              f"halo {row['halo_points']} pts {row['halo_seconds'] * 1e6:.0f} us, allreduce "
              f"{row['allreduce_seconds'] * 1e6:.1f} us")
    predicted = model(points, args.m, args.alpha, args.beta)
    print("MODEL (not measured) - weak scaling of lrsolve-hypre, "
          f"{args.m}^3 unknowns per rank:")
    for r in predicted:
        print(f"  P={r['ranks']:5d}  its={r['iterations']:.1f}  t_iter={r['t_iter'] * 1e3:.2f} ms "
              f"(compute {r['t_compute'] * 1e3:.2f}, halo {r['t_halo'] * 1e3:.3f}, allreduce "
              f"{r['t_allreduce'] * 1e3:.3f})  efficiency={r['efficiency']:.2f}")
    result = {"command": "python benchmarks/bench_petsc.py " +
                         " ".join(sys.argv[1:] if argv is None else argv),
              "m": args.m, "rtol": args.rtol, "measured": table,
              "model": {"label": "MODEL - extrapolated from the measured per-rank compute and "
                                 "halo volume, not measured",
                        "assumptions": {"alpha_latency_s": args.alpha,
                                        "beta_bandwidth_Bps": args.beta,
                                        "faces_per_rank": 6, "fine_halo_exchanges_per_it": 3,
                                        "coarse_halo_exchanges_per_level_per_it": 4,
                                        "allreduces_per_it": 2,
                                        "iteration_growth_per_doubling_fitted_1_to_2_ranks": True,
                                        "compute_per_rank_constant": True,
                                        "measured_here_shared_memory": {
                                            "halo_seconds_2_ranks": points[max(points)]["halo_seconds"],
                                            "allreduce_seconds_2_ranks":
                                                points[max(points)]["allreduce_seconds"]}},
                        "rows": predicted}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "petsc_weak.json").write_text(json.dumps(result, indent=1))
    _plot(result, out / "petsc_weak.png")
    print(f"wrote {out / 'petsc_weak.json'}")
    return 0


def _plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    meas = result["measured"]
    ax.plot([r["ranks"] for r in meas], [r["lrsolve-hypre"]["efficiency"] for r in meas], "o-",
            label="measured (hypre-PCG solve)")
    mod = result["model"]["rows"]
    ax.plot([r["ranks"] for r in mod], [r["efficiency"] for r in mod], "s--",
            label="MODEL (assumed network)")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.2)
    ax.set_xlabel("ranks")
    ax.set_ylabel("weak-scaling efficiency")
    ax.set_title(f"{result['m']}^3 unknowns per rank")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
