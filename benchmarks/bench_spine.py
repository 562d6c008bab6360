"""The spine's two speed goals, each measured in one process on one problem.

1. **Batched right-hand sides.**  CG on 2D Poisson ``n x n`` (CSR and the matrix-free
   stencil) with ``k`` right-hand sides: one ``lr.solve(A, B)`` with ``B`` of shape
   ``(N, k)`` against ``k`` separate ``lr.solve(A, B[:, j])`` calls.  Runs interleaved
   round by round; the reported ratio is the median of the per-round ratios.
2. **Solver.update in a time loop.**  Implicit Euler for the heat equation
   ``u_t = div(a_t grad u) + f`` on ``n x n`` with a coefficient that changes every step
   (``a_t = 1 + 0.5 sin(2 pi (x + t/T)) cos(2 pi y)``): each step solves
   ``(I/dt - div a_t grad) u_{t+1} = u_t/dt + f`` by ``pcg-amg``.  One ``Solver`` updated
   every step (``rebuild="auto"``: the AMG hierarchy is kept until iterations grow by
   1.5x) against ``lr.solve`` from scratch every step, the two interleaved step by step;
   the answers must agree to rtol.

    python benchmarks/bench_spine.py [--n 256] [--k 16] [--rounds 3] [--steps 200] [--heat-n 128]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import lrsolve as lr


def batched(n: int, k: int, rounds: int, rtol: float) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for fmt in ("csr", "stencil"):
        P = lr.problems.poisson(n, 2, format=fmt)
        B = np.ascontiguousarray(rng.standard_normal((P.A.shape[0], k)))
        lr.solve(P.A, B[:, :2], method="cg", rtol=rtol, maxiter=3)  # compile kernels
        lr.solve(P.A, B[:, 0], method="cg", rtol=rtol, maxiter=3)
        t_sep, t_bat, ratios = [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            sep = [lr.solve(P.A, B[:, j], method="cg", rtol=rtol) for j in range(k)]
            t1 = time.perf_counter()
            bat = lr.solve(P.A, B, method="cg", rtol=rtol)
            t2 = time.perf_counter()
            t_sep.append(t1 - t0)
            t_bat.append(t2 - t1)
            ratios.append((t1 - t0) / (t2 - t1))
        A = P.A.to_csr() if fmt == "stencil" else P.A
        rel = max(np.linalg.norm(B[:, j] - A @ bat.x[:, j]) / np.linalg.norm(B[:, j])
                  for j in range(k))
        out[fmt] = {
            "separate_seconds_median": statistics.median(t_sep),
            "batched_seconds_median": statistics.median(t_bat),
            "speedup_median": statistics.median(ratios),
            "iterations_separate": [s.iterations for s in sep],
            "iterations_batched_per_column": [c["iterations"] for c in bat.stats["columns"]],
            "all_converged": bool(bat.converged and all(s.converged for s in sep)),
            "max_true_relres_batched": float(rel),
        }
        print(f"batched CG {fmt:8s} n={n}^2 k={k}: separate {statistics.median(t_sep):.3f}s "
              f"batched {statistics.median(t_bat):.3f}s  speedup {statistics.median(ratios):.2f}x",
              flush=True)
    return out


def heat_sequence(n: int, steps: int):
    """Matrices and the forcing of the implicit heat equation with a moving coefficient."""
    h = 1.0 / (n + 1)
    xs = np.arange(1, n + 1) * h
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    dt = 1e-3
    f = np.exp(-50 * ((X - 0.3) ** 2 + (Y - 0.6) ** 2)).reshape(-1)
    for t in range(steps):
        a = 1.0 + 0.5 * np.sin(2 * np.pi * (X + t / steps)) * np.cos(2 * np.pi * Y)
        K = lr.operators.PoissonStencil(n, 2, coefficient=a).to_csr()
        yield (K + sp.identity(n * n, format="csr") / dt).tocsr(), f, dt


def time_loop(n: int, steps: int, rtol: float) -> dict:
    """Both modes advance step by step, interleaved (scratch, update, scratch, ...), so a
    load spike on this shared machine hits both alike; each keeps its own state."""
    mats = list(heat_sequence(n, steps))
    modes = ("scratch", "solver-update")
    u = {m: np.zeros(n * n) for m in modes}
    secs = {m: 0.0 for m in modes}
    its = {m: [] for m in modes}
    S = None
    for A, f, dt in mats:
        for mode in modes:
            b = u[mode] / dt + f
            t0 = time.perf_counter()
            if mode == "scratch":
                r = lr.solve(A, b, method="pcg-amg", rtol=rtol, x0=u[mode])
            else:
                if S is None:
                    S = lr.Solver(A, method="pcg-amg", rtol=rtol)
                else:
                    S.update(A)
                r = S.solve(b, x0=u[mode])
            secs[mode] += time.perf_counter() - t0
            assert r.converged, (mode, r.reason)
            u[mode] = r.x
            its[mode].append(r.iterations)
    res = {}
    for mode in modes:
        res[mode] = {"seconds": secs[mode], "iterations_total": int(sum(its[mode])),
                     "iterations_max": int(max(its[mode])),
                     "rebuilds": S.counts["rebuilds"] if mode != "scratch" else steps}
        print(f"heat loop {mode:14s} n={n}^2 steps={steps}: {secs[mode]:.2f}s, "
              f"{sum(its[mode])} iterations, rebuilds {res[mode]['rebuilds']}", flush=True)
    diff = np.linalg.norm(u["scratch"] - u["solver-update"])
    res["final_state_relative_difference"] = float(diff / np.linalg.norm(u["scratch"]))
    res["speedup"] = secs["scratch"] / secs["solver-update"]
    print(f"  speedup {res['speedup']:.2f}x, final states differ by "
          f"{res['final_state_relative_difference']:.2e} (relative)")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--heat-n", type=int, default=128)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "spine.json"))
    args = ap.parse_args(argv)
    record = {
        "command": "python benchmarks/bench_spine.py " + " ".join(argv or sys.argv[1:]),
        "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
                    "cpu_count": os.cpu_count()},
        "batched": batched(args.n, args.k, args.rounds, args.rtol),
        "time_loop": time_loop(args.heat_n, args.steps, 1e-8),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, args.out)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
