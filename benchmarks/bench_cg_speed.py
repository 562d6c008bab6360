"""CG speed against its peers on the 2D Poisson problem (issue: foundation).

lrsolve CG on CSR and on the matrix-free stencil vs ``scipy.sparse.linalg.cg`` on the
same CSR matrix; lrsolve AMG-PCG vs PyAMG's own ``solve(accel="cg")``.  All in one
process on the same problem; the runs are interleaved round by round (A B C D, A B C D,
...) so a load spike on this shared machine hits every solver alike, and the reported
ratio is the median of the per-round ratios.

    python benchmarks/bench_cg_speed.py [--n 512] [--rounds 5] [--rtol 1e-6]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyamg
import scipy.sparse.linalg as sla

import lrsolve as lr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "cg_speed.json"))
    args = ap.parse_args(argv)
    Pc = lr.problems.poisson(args.n, 2, rhs="random", seed=0, format="csr")
    Ps = lr.problems.poisson(args.n, 2, rhs="random", seed=0)
    A, b = Pc.A, Pc.b
    rtol = args.rtol
    ml = pyamg.smoothed_aggregation_solver(A)
    M = lr.krylov.AMG(A)

    def scipy_cg():
        x, info = sla.cg(A, b, rtol=rtol)
        return x, info == 0, None

    def lr_cg_csr():
        r = lr.solve(A, b, method="cg", rtol=rtol)
        return r.x, r.converged, r.iterations

    def lr_cg_stencil():
        r = lr.solve(Ps.A, Ps.b, method="cg", rtol=rtol)
        return r.x, r.converged, r.iterations

    def pyamg_solve():
        res = []
        x = ml.solve(b, tol=rtol, accel="cg", maxiter=200, residuals=res)
        return x, True, len(res) - 1

    def lr_pcg_amg():
        r = lr.solve(A, b, method="pcg-amg", M=M, rtol=rtol)
        return r.x, r.converged, r.iterations

    solvers = {"scipy-cg": scipy_cg, "lrsolve-cg-csr": lr_cg_csr,
               "lrsolve-cg-stencil": lr_cg_stencil, "pyamg-sa-cg": pyamg_solve,
               "lrsolve-pcg-amg": lr_pcg_amg}
    # warm-up: numba compilation / cache load
    lr.solve(lr.problems.poisson(8, 2, format="csr").A, np.ones(64))
    lr.solve(lr.problems.poisson(8, 2).A, np.ones(64))
    times = {k: [] for k in solvers}
    info = {}
    for rnd in range(args.rounds):
        for name, fn in solvers.items():
            t0 = time.perf_counter()
            x, ok, its = fn()
            times[name].append(time.perf_counter() - t0)
            rel = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
            info[name] = {"converged": bool(ok), "iterations": its, "true_relres": rel}
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)

    def ratio(a, p):
        return statistics.median(x / y for x, y in zip(times[a], times[p]))

    its_scipy = []
    sla.cg(A, b, rtol=rtol, callback=lambda xk: its_scipy.append(1))
    info["scipy-cg"]["iterations"] = len(its_scipy)
    result = {
        "command": "python benchmarks/bench_cg_speed.py " + " ".join(argv or sys.argv[1:]),
        "problem": f"2D Poisson n={args.n} ({args.n ** 2} unknowns), random rhs, rtol={rtol}",
        "rounds": args.rounds,
        "median_seconds": {k: statistics.median(v) for k, v in times.items()},
        "solvers": info,
        "ratios": {
            "lrsolve-cg-csr / scipy-cg": ratio("lrsolve-cg-csr", "scipy-cg"),
            "lrsolve-cg-stencil / scipy-cg": ratio("lrsolve-cg-stencil", "scipy-cg"),
            "lrsolve-pcg-amg / pyamg-sa-cg": ratio("lrsolve-pcg-amg", "pyamg-sa-cg"),
        },
        "goals": {"lrsolve-cg-csr / scipy-cg": 1.0, "lrsolve-cg-stencil / scipy-cg": 0.7,
                  "lrsolve-pcg-amg / pyamg-sa-cg": 1.1},
        "amg_setup_seconds": {"lrsolve": M.setup_time},
    }
    print(f"{'solver':<20} {'iters':>6} {'median s':>9} {'true relres':>12}")
    for k in solvers:
        print(f"{k:<20} {str(info[k]['iterations']):>6} {result['median_seconds'][k]:>9.3f} "
              f"{info[k]['true_relres']:>12.2e}")
    for k, v in result["ratios"].items():
        print(f"{k:<32} {v:.3f}   (goal <= {result['goals'][k]})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
