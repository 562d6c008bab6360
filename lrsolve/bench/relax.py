"""``lrsolve bench relax``: learned omega for SOR / SSOR-CG over sequences of systems.

For each sequence it records the total iterations of every learner, of omega = 1
(Gauss-Seidel, or symmetric Gauss-Seidel for SSOR-CG), of the best fixed omega in
hindsight (every arm swept on every instance), and of the instance-optimal omega (the
best arm for each instance, or Young's omega when it is better); it plots cumulative
iterations and regret against t, and writes JSON + PNG to ``benchmarks/results/``.

Suites (``--suites``):

* ``paper-high`` / ``paper-low`` - Khodak et al.'s 10 x 10 Laplacian + c I, SOR, rtol 1e-8
  (``--paper-T``, 5000 in the paper);
* ``diffusion`` - 40 x 40 Laplacian + c I, c log-uniform in [1e-3, 0.3], SOR (``--T``);
* ``heat-sor`` / ``heat-ssor`` - the paper's Crank-Nicolson heat equation, warm-started,
  SOR or SSOR-PCG (``--heat-nx``, ``--T``);
* ``sweep`` - the cost of one numba SOR sweep against one CSR mat-vec (2D Poisson n=512).

Absolute seconds are noise on a shared machine; the ratios are the result.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
from ..cli import nonnegative_int, positive_float, positive_int, unit_interval
from ..io import load_json, save_figure, save_json
from ..seeding import as_generator

__all__ = ["main", "fixed_costs", "run_learner", "sweep_vs_matvec", "SUITES"]

SUITES = ("paper-high", "paper-low", "diffusion", "heat-sor", "heat-ssor", "sweep")


def _solve_once(parts, item, omega, method, rtol, cap):
    from lrsolve.krylov import cg_result
    from lrsolve.relax.sor import SSOR, sor
    if method == "sor":
        return sor(parts, item.b, omega=omega, x0=item.x0, rtol=rtol, maxiter=cap)
    return cg_result(parts, item.b, item.x0, rtol=rtol, maxiter=cap, M=SSOR(parts, omega))


def fixed_costs(seq, omegas, method="sor", rtol=1e-8, cap=None):
    """Iterations of every fixed omega on every instance: array (T, len(omegas))."""
    from lrsolve.relax.sor import csr_parts
    costs = np.zeros((len(seq), len(omegas)))
    for t, item in enumerate(seq):
        parts = csr_parts(item.A)
        limit = cap or 10 * parts.n
        for j, omega in enumerate(omegas):
            costs[t, j] = min(_solve_once(parts, item, float(omega), method, rtol, limit).iterations,
                              limit)
    return costs


def young_costs(seq, method="sor", rtol=1e-8, cap=None):
    """Iterations at Young's omega from the exact Jacobi radius (constant-coefficient stencils)."""
    from lrsolve.relax.sor import csr_parts, jacobi_bound
    from lrsolve.relax.theory import young_omega
    out = np.zeros(len(seq))
    for t, item in enumerate(seq):
        mu = jacobi_bound(item.A) * np.cos(np.pi / (item.A.grid_shape[0] + 1))
        parts = csr_parts(item.A)
        limit = cap or 10 * parts.n
        out[t] = min(_solve_once(parts, item, young_omega(mu), method, rtol, limit).iterations,
                     limit)
    return out


def run_learner(seq, learner, method="sor", rtol=1e-8, seed=0, cap=None, omegas=None,
                learner_options=None):
    """Per-instance iterations and omegas of BanditSOR(learner) along ``seq``."""
    from lrsolve.relax import BanditSOR
    tuner = BanditSOR(omegas=omegas, learner=learner, seed=seed, method=method,
                      maxiter=cap, learner_options=learner_options)
    iters, omegas_used = [], []
    for item in seq:
        stats = tuner.solve(item.A, item.b, x0=item.x0, rtol=rtol, context=item.context).stats
        iters.append(stats["iterations"])
        omegas_used.append(stats["omega"])
    return np.asarray(iters, float), np.asarray(omegas_used)


def sweep_vs_matvec(n=512, repeats=30):
    """Seconds of one numba SOR sweep and of one SciPy CSR mat-vec, 2D Poisson n x n.

    Timed with ``time.process_time`` (CPU time of this process) over ``repeats`` calls:
    on a shared, overloaded machine wall-clock time charges a long kernel for the
    time slices other processes take, and a short one (the mat-vec) much less.
    """
    from lrsolve.operators import poisson_operator
    from lrsolve.relax.kernels import kernels
    from lrsolve.relax.sor import csr_parts
    A = poisson_operator(n, 2)
    parts = csr_parts(A)
    M = parts.matrix
    rng = as_generator(0)
    b, x = rng.standard_normal(parts.n), np.zeros(parts.n)
    wdinv = 1.5 / parts.diag
    k = kernels()
    res = np.empty(3)
    k["sor_sweep"](parts.indptr, parts.indices, parts.data, wdinv, b, x)  # compile
    k["sor_solve"](parts.indptr, parts.indices, parts.data, wdinv, b, x.copy(), 0.0, 1, res)

    def cpu_time(fn):
        best = []
        for _ in range(3):
            t0 = time.process_time()
            for _ in range(repeats):
                fn()
            best.append((time.process_time() - t0) / repeats)
        return float(min(best))

    t_sweep = cpu_time(lambda: k["sor_sweep"](parts.indptr, parts.indices, parts.data, wdinv,
                                              b, x))
    # sor_solve with maxiter=1 runs two fused sweeps (residual + update) and undoes one.
    t_fused = cpu_time(lambda: k["sor_solve"](parts.indptr, parts.indices, parts.data, wdinv,
                                              b, x.copy(), 0.0, 1, res)) / 2.0
    t_matvec = cpu_time(lambda: M @ x)
    t_stencil = cpu_time(lambda: A @ x)
    return {"suite": "sweep", "n": n, "unknowns": parts.n, "timer": "process_time",
            "sweep_s": t_sweep, "fused_sweep_s": t_fused, "csr_matvec_s": t_matvec,
            "stencil_matvec_s": t_stencil, "sweep_over_matvec": t_sweep / t_matvec,
            "fused_over_matvec": t_fused / t_matvec}


def _sequence(name, args):
    from lrsolve.problems.sequences import heat_sequence, paper_sequence, shifted_laplacian_sequence
    if name in ("paper-high", "paper-low"):
        return paper_sequence(T=args.paper_T, n=args.paper_n, variant=name.split("-")[1],
                              seed=args.seed), "sor"
    if name == "diffusion":
        return shifted_laplacian_sequence(T=args.T, n=args.diffusion_n, seed=args.seed), "sor"
    method = "sor" if name == "heat-sor" else "ssor-cg"
    return heat_sequence(nx=args.heat_nx, T=args.T, stoptime=args.stoptime), method


def _learner_specs(name, seq, learners):
    specs = []
    for lname in learners:
        opts = None
        if lname == "chebcb":
            ctx = np.array([item.context for item in seq])
            lo, hi = (-0.15, 0.65) if name.startswith("paper") else (float(ctx.min()),
                                                                       float(ctx.max()))
            if hi <= lo:
                hi = lo + 1.0
            opts = {"context_bounds": (lo, hi)}
        specs.append((lname, opts))
    return specs


def run_suite(name, args):
    """All learners and comparators on one sequence; returns a JSON-able dict."""
    from lrsolve.relax import DEFAULT_LEARNER
    from lrsolve.relax.learners import default_omegas
    seq, method = _sequence(name, args)
    omegas = default_omegas()
    t0 = time.perf_counter()
    fixed = fixed_costs(seq, omegas, method, args.rtol)
    sweep_time = time.perf_counter() - t0
    per_instance_best_arm = fixed.min(axis=1)
    # "Instance-optimal" as in the paper: SOR at Young's omega from each system's exact
    # Jacobi radius (omega_opt.m).  SSOR-CG has no such formula: the best arm per instance.
    inst = young_costs(seq, method, args.rtol) if method == "sor" else per_instance_best_arm
    best_j = int(np.argmin(fixed.sum(axis=0)))
    out = {"suite": name, "method": method, "T": len(seq), "rtol": args.rtol,
           "omegas": omegas.tolist(), "fixed_totals": fixed.sum(axis=0).tolist(),
           "best_fixed_omega": float(omegas[best_j]), "best_fixed_total": float(fixed[:, best_j].sum()),
           "gauss_seidel_total": float(fixed[:, 0].sum()), "instance_optimal_total": float(inst.sum()),
           "instance_optimal_definition": "young" if method == "sor" else "best arm per instance",
           "best_arm_per_instance_total": float(per_instance_best_arm.sum()),
           "default_learner": DEFAULT_LEARNER[method], "learners": {}, "sweep_seconds": sweep_time,
           "curves": {"best_fixed": np.cumsum(fixed[:, best_j]).tolist(),
                      "gauss_seidel": np.cumsum(fixed[:, 0]).tolist(),
                      "instance_optimal": np.cumsum(inst).tolist()}}
    learners = list(args.learners)
    if method == "ssor-cg":
        learners = [l for l in learners if l not in ("young", "hageman-young")]
    if not any(item.context is not None for item in seq):
        learners = [l for l in learners if l != "chebcb"]
    for lname, opts in _learner_specs(name, seq, learners):
        totals, curves = [], []
        t1 = time.perf_counter()
        for trial in range(args.trials):
            iters, _ = run_learner(seq, lname, method, args.rtol, seed=args.seed + trial,
                                   learner_options=opts)
            totals.append(float(iters.sum()))
            curves.append(np.cumsum(iters))
        out["learners"][lname] = {
            "totals": totals, "mean_total": float(np.mean(totals)),
            "over_best_fixed": float(np.mean(totals) / out["best_fixed_total"]),
            "over_instance_optimal": float(np.mean(totals) / out["instance_optimal_total"]),
            "over_gauss_seidel": float(np.mean(totals) / out["gauss_seidel_total"]),
            "seconds": time.perf_counter() - t1}
        out["curves"][lname] = np.mean(curves, axis=0).tolist()
    return out


def _plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    suites = [r for r in results if "curves" in r]
    if not suites:
        return None
    keys = []
    for r in suites:
        keys += [k for k in r["curves"] if k not in keys]
    colors = {k: f"C{i % 10}" for i, k in enumerate(keys)}
    fig, axes = plt.subplots(2, len(suites), figsize=(4.5 * len(suites), 7), squeeze=False)
    for col, r in enumerate(suites):
        t = np.arange(1, r["T"] + 1)
        best = np.asarray(r["curves"]["best_fixed"])
        for key, curve in r["curves"].items():
            curve = np.asarray(curve)
            style = "--" if key in ("best_fixed", "gauss_seidel", "instance_optimal") else "-"
            axes[0, col].plot(t, curve, style, color=colors[key], label=key)
            # Gauss-Seidel's regret dwarfs the others: it is on the top panel only.
            if key not in ("best_fixed", "gauss_seidel"):
                axes[1, col].plot(t, curve - best, style, color=colors[key], label=key)
        axes[0, col].set_title(f"{r['suite']} ({r['method']}, T={r['T']})")
        axes[0, col].set_ylabel("cumulative iterations")
        axes[0, col].set_yscale("log")
        axes[1, col].set_ylabel("regret vs best fixed omega (iterations)")
        axes[1, col].set_xlabel("t")
        axes[1, col].axhline(0, color="k", lw=0.5)
        if col == 0:
            axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)
    return path


def replot(json_path, png_path=None):
    """Redraw the PNG of a recorded JSON result."""
    payload = load_json(json_path, what="lrsolve bench relax result")
    return _plot(payload["results"], png_path or json_path[:-5] + ".png")


def _table(results):
    lines = []
    for r in results:
        if r.get("suite") == "sweep":
            lines.append(f"sweep n={r['n']}: sweep {r['sweep_s']*1e3:.2f} ms, fused sweep "
                         f"{r['fused_sweep_s']*1e3:.2f} ms, CSR matvec {r['csr_matvec_s']*1e3:.2f} ms "
                         f"-> sweep/matvec {r['sweep_over_matvec']:.2f}, fused/matvec "
                         f"{r['fused_over_matvec']:.2f}")
            continue
        lines.append(f"== {r['suite']} ({r['method']}, T={r['T']}, rtol={r['rtol']:g}) ==")
        lines.append(f"  Gauss-Seidel (omega=1)  {r['gauss_seidel_total']:>12.0f}")
        lines.append(f"  best fixed omega={r['best_fixed_omega']:.3f} {r['best_fixed_total']:>10.0f}")
        lines.append(f"  instance-optimal ({r['instance_optimal_definition']}) "
                     f"{r['instance_optimal_total']:>8.0f}")
        lines.append(f"  best arm per instance (oracle) {r['best_arm_per_instance_total']:>6.0f}")
        lines.append(f"  {'learner':<22}{'total':>12}{'/best':>8}{'/inst':>8}{'/GS':>8}")
        for name, s in r["learners"].items():
            mark = " (default)" if name == r["default_learner"] else ""
            lines.append(f"  {name + mark:<22}{s['mean_total']:>12.0f}{s['over_best_fixed']:>8.3f}"
                         f"{s['over_instance_optimal']:>8.3f}{s['over_gauss_seidel']:>8.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point of ``lrsolve bench relax``."""
    p = argparse.ArgumentParser(prog="lrsolve bench relax", description=__doc__.splitlines()[0])
    p.add_argument("--suites", nargs="+", default=["diffusion", "heat-sor", "heat-ssor",
                                                    "paper-high", "sweep"], choices=SUITES)
    p.add_argument("--learners", nargs="+",
                   default=["young", "hageman-young", "unimodal", "tsallis-inf", "exp3", "chebcb"])
    p.add_argument("--T", type=positive_int, default=200, help="steps of the diffusion / heat suites")
    p.add_argument("--paper-T", type=positive_int, default=1000, help="steps of the paper suites (5000 "
                   "in the paper)")
    p.add_argument("--paper-n", type=positive_int, default=10)
    p.add_argument("--diffusion-n", type=positive_int, default=40)
    p.add_argument("--heat-nx", type=positive_int, default=50)
    p.add_argument("--stoptime", type=positive_float, default=5.0)
    p.add_argument("--rtol", type=unit_interval, default=1e-8)
    p.add_argument("--trials", type=positive_int, default=3, help="seeds per learner (averaged)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--sweep-n", type=positive_int, default=512)
    p.add_argument("--out", default=os.path.join("benchmarks", "results"))
    p.add_argument("--tag", default="relax")
    args = p.parse_args(argv)
    results = []
    for name in args.suites:
        t0 = time.perf_counter()
        r = sweep_vs_matvec(args.sweep_n) if name == "sweep" else run_suite(name, args)
        r.setdefault("suite", name)
        r["wall_seconds"] = time.perf_counter() - t0
        results.append(r)
        print(_table([r]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    payload = {"command": "lrsolve bench relax " + " ".join(argv if argv is not None
                                                             else sys.argv[1:]),
               "machine": platform.platform(), "python": platform.python_version(),
               "results": results}
    json_path = os.path.join(args.out, f"{args.tag}.json")
    save_json(json_path, payload, indent=None)
    png = _plot(results, os.path.join(args.out, f"{args.tag}.png"))
    print(f"wrote {json_path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
