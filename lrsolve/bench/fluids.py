"""The smoke-simulation benchmark: ``lrsolve bench fluids``.

The pressure systems of :func:`lrsolve.problems.fluid_pressure_sequence` (smoke rising
around obstacles in a box, closed walls by default) are generated once per grid with the
reference solver (``pcg-mg`` to 1e-8), and every solver then solves the *same* systems
in order, as a simulation would:

* set up once before the first step (timed: ``setup``), warm-started from the previous
  step's pressure (``P.x0``), ``update(A)`` only when the operator changes: never for
  static obstacles (a simulation does not rebuild an unchanged hierarchy), whenever the
  mask moves with ``--obstacle-velocity`` (timed: ``update``; PyAMG is set up again);
* per step: iterations, solve wall time, the true relative residual; per solver the total
  (setup + solves) and the ratio to PyAMG SA-PCG's total.

Solvers: ``cg``, ``pcg-ic0``, ``pcg-mg``, ``pcg-amg`` (lrsolve's AMG-PCG), ``pyamg`` (PyAMG's
own ``smoothed_aggregation_solver(A).solve(accel="cg")``, the peer), ``dcdm`` (the shipped
V-cycle network of the grid's dimension, ``poisson2d`` / ``poisson3d``, on the masked
operator's GMG hierarchy; a dimension without weights is skipped and says why),
``dcdm-paper`` (the paper's network, ``poisson2d-20min``, trained on the Dirichlet square;
2-D only, not in the default run),
``bandit-ssor-cg`` (:class:`lrsolve.relax.BanditSOR` with SSOR-CG and its default learner).

``--bandit`` also runs the bandit study: BanditSOR with SOR and SSOR-CG and the ``young``
and ``unimodal`` learners against every fixed omega of the arms (the best one found after
the fact over the same steps) and Gauss-Seidel (omega = 1).

Writes ``NAME.json``, ``NAME.png`` (iterations per step and cumulative wall time) and
``NAME_bandit.png`` under ``--out``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..cli import finite_float, nonnegative_int, positive_int, unit_interval
from ..io import save_figure, save_json

DEFAULT_SOLVERS = ("cg", "pcg-ic0", "pcg-mg", "pcg-amg", "pyamg", "dcdm", "bandit-ssor-cg")
SOLVERS = DEFAULT_SOLVERS + ("pcg-jacobi", "ssor-cg", "mg", "dcdm-paper")
#: DCDM rows: solver name -> shipped model (``{dim}`` filled in); "dcdm-paper" is the
#: paper's network (trained on the Dirichlet square only, 2-D only).
DCDM_MODELS = {"dcdm": "poisson{dim}d", "dcdm-paper": "poisson{dim}d-20min"}
PEER = "pyamg"
#: Methods whose Solver keeps an expensive preconditioner across update() (option rebuild).
REBUILDS = ("pcg-ic0", "pcg-amg", "ssor-cg")


def obstacles_for(dim: int) -> list:
    """The benchmark's obstacles: a sphere above the source and a box beside the plume."""
    if dim == 2:
        return [("sphere", (0.5, 0.4), 0.12), ("box", (0.15, 0.65), (0.4, 0.7))]
    return [("sphere", (0.5, 0.3, 0.5), 0.15), ("box", (0.2, 0.6, 0.2), (0.4, 0.7, 0.8))]


def make_sequence(n: int, dim: int, steps: int, *, seed: int = 0, walls="closed",
                  obstacles=None, obstacle_velocity=None) -> list:
    """The list of pressure problems of ``steps`` simulation steps (reference-solved);
    ``obstacle_velocity`` (one number per axis, or None) moves the obstacles."""
    from ..problems.fluids import fluid_pressure_sequence
    obstacles = obstacles_for(dim) if obstacles is None else obstacles
    velocity = None if obstacle_velocity is None else tuple(obstacle_velocity)[:dim]
    return list(fluid_pressure_sequence(n=n, dim=dim, steps=steps, obstacles=obstacles,
                                        seed=seed, walls=walls, obstacle_velocity=velocity))


def _relres(A, x, b) -> float:
    bn = float(np.linalg.norm(b))
    return float(np.linalg.norm(b - A @ x) / bn) if bn > 0 else 0.0


class _Runner:
    """One solver over a sequence: ``setup(A)`` once, ``solve(P)`` per step."""

    def __init__(self, name: str, rtol: float, dim: int, seed: int = 0,
                 rebuild: str | None = None):
        self.name, self.rtol, self.dim, self.seed = name, rtol, dim, seed
        self.rebuild = rebuild
        self.A = None
        self.skip_reason = None
        self.model = None
        if name in DCDM_MODELS:
            import lrsolve as lr
            try:
                self.model = lr.dcdm.load_pretrained(DCDM_MODELS[name].format(dim=dim))
            except ValueError as exc:
                self.skip_reason = f"no {dim}-D DCDM weights ship ({exc})"
            _torch_threads()

    def setup(self, A) -> float:
        import lrsolve as lr
        t0 = time.perf_counter()
        self.A = A
        if self.name == "pyamg":
            import pyamg
            self.csr = A.to_csr()
            self.ml = pyamg.smoothed_aggregation_solver(self.csr)
        elif self.name == "bandit-ssor-cg":
            self.tuner = lr.relax.BanditSOR(method="ssor-cg", seed=self.seed)
        else:
            options = {}
            method = self.name
            if self.name in DCDM_MODELS:
                method = "dcdm"
                options["model"] = self.model
                _torch_threads()    # numba (the sequence, the warm-up) resets torch's threads
            if self.rebuild is not None and self.name in REBUILDS:
                options["rebuild"] = self.rebuild
            self.solver = lr.Solver(A, method, rtol=self.rtol, **options)
        return time.perf_counter() - t0

    def update(self, A) -> float:
        t0 = time.perf_counter()
        if self.name == "pyamg":
            self.setup(A)
        elif self.name != "bandit-ssor-cg":
            self.solver.update(A)
        self.A = A
        return time.perf_counter() - t0

    def solve(self, P) -> dict:
        t0 = time.perf_counter()
        if self.name == "pyamg":
            history: list = []
            x = self.ml.solve(P.b, x0=P.x0, tol=self.rtol, accel="cg", maxiter=500,
                              residuals=history)
            if P.A.singular:
                x = P.A.project_null(x)
            elapsed = time.perf_counter() - t0
            rel = _relres(P.A, x, P.b)
            return dict(iterations=len(history) - 1, time=elapsed, relres=rel,
                        converged=bool(rel <= self.rtol * 1.0001), omega=None)
        if self.name == "bandit-ssor-cg":
            r = self.tuner.solve(P.A, P.b, x0=P.x0, rtol=self.rtol)
        else:
            r = self.solver.solve(P.b, x0=P.x0)
        elapsed = time.perf_counter() - t0
        return dict(iterations=int(r.iterations), time=elapsed, relres=_relres(P.A, r.x, P.b),
                    converged=bool(r.converged), status=r.status.name,
                    omega=r.stats.get("omega") if r.stats else None)


def _torch_threads(threads: int | None = None) -> None:
    """Set torch's intra-op threads explicitly.  Measured here: after numba's parallel
    kernels have run, a DCDM iteration at 32^2 took 0.6 s until ``torch.set_num_threads``
    was called again (then 16 ms), even though ``torch.get_num_threads()`` already said 1."""
    import torch
    torch.set_num_threads(int(threads or os.environ.get("OMP_NUM_THREADS", 1) or 1))


def _warm_up(dim: int, solvers, rtol: float) -> None:
    """numba compiles (or loads from its cache) on first use; that one-off cost is not
    what the suite measures, so every solver first runs a tiny sequence."""
    seq = make_sequence(12, dim, 2)
    for name in solvers:
        run = _Runner(name, rtol, dim)
        if run.skip_reason:
            continue
        run.setup(seq[0].A)
        for P in seq:
            run.solve(P)


def run_sequence(name: str, seq: list, rtol: float, seed: int = 0,
                 rebuild: str | None = None) -> dict:
    """Run one solver over a sequence; the per-step record."""
    dim = seq[0].meta["dim"]
    run = _Runner(name, rtol, dim, seed, rebuild)
    rec = {"solver": name}
    if run.skip_reason:
        rec["skipped"] = run.skip_reason
        return rec
    setup = run.setup(seq[0].A)
    updates = 0.0
    steps = []
    for P in seq:
        if P.A is not run.A:
            updates += run.update(P.A)
        steps.append(run.solve(P))
    iters = [s["iterations"] for s in steps]
    times = [s["time"] for s in steps]
    rec.update(setup=setup, update=updates, iterations=iters, times=times,
               relres=[s["relres"] for s in steps],
               status=[s.get("status", "CONVERGED" if s["converged"] else "MAXITER")
                       for s in steps],
               converged=all(s["converged"] for s in steps),
               total_iterations=int(np.sum(iters)), mean_iterations=float(np.mean(iters)),
               solve_time=float(np.sum(times)), total_time=float(setup + updates + np.sum(times)))
    omegas = [s.get("omega") for s in steps]
    if any(o is not None for o in omegas):
        rec["omega"] = omegas
    return rec


def run_suite(dims=(2, 3), sizes=None, steps: int = 30, solvers=DEFAULT_SOLVERS,
              rtol: float = 1e-6, seed: int = 0, walls="closed", progress: bool = True,
              obstacle_velocity=None, rebuild: str | None = None) -> dict:
    """Run the suite and return the JSON-able record (see the module docstring)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    unknown = sorted(set(solvers) - set(SOLVERS))
    if unknown:
        raise ValueError(f"solvers must be among {list(SOLVERS)}, got {unknown}")
    sizes = dict(sizes or {2: [64, 128], 3: [32]})
    cases = []
    for dim in dims:
        _warm_up(dim, solvers, rtol)
        for n in sizes.get(dim, []):
            t0 = time.perf_counter()
            seq = make_sequence(n, dim, steps, seed=seed, walls=walls,
                                obstacle_velocity=obstacle_velocity)
            gen_time = time.perf_counter() - t0
            case = {"dim": dim, "n": n, "unknowns": n ** dim, "steps": steps,
                    "solid_fraction": seq[0].meta["solid_fraction"],
                    "singular": seq[0].meta["singular"], "generation_time": gen_time,
                    "operator_changes": int(sum(P.meta["operator_changed"] for P in seq)),
                    "records": []}
            for name in solvers:
                if progress:
                    print(f"[fluids] {dim}D n={n} {name}", file=sys.stderr, flush=True)
                case["records"].append(run_sequence(name, seq, rtol, seed, rebuild))
            peer = next((r for r in case["records"] if r["solver"] == PEER
                         and "skipped" not in r), None)
            for r in case["records"]:
                if peer is not None and "skipped" not in r:
                    r["total_ratio_to_pyamg"] = r["total_time"] / peer["total_time"]
            cases.append(case)
    return {"suite": "fluids", "rtol": rtol, "seed": seed, "walls": walls, "rebuild": rebuild,
            "obstacle_velocity": None if obstacle_velocity is None else list(obstacle_velocity),
            "obstacles": {str(d): obstacles_for(d) for d in dims},
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform(), "numpy": np.__version__,
                        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg")
                        else None},
            "cases": cases}


# -- the bandit study ----------------------------------------------------------------------
def bandit_study(seq: list, *, rtol: float = 1e-6, methods=("sor", "ssor-cg"),
                 learners=("young", "unimodal"), omegas=None, seed: int = 0) -> dict:
    """BanditSOR learners against every fixed omega (and Gauss-Seidel) over ``seq``.

    Every run solves the same systems in order, warm-started from ``P.x0``; the cost is
    the iteration count BanditSOR charges (the cap when a solve is capped).  A fixed
    omega is BanditSOR with that single arm, so both go through the same code path.
    """
    import lrsolve as lr
    arms = np.asarray(lr.relax.default_omegas() if omegas is None else omegas, dtype=float)
    out = {"rtol": rtol, "omegas": arms.tolist(), "methods": {}}
    for method in methods:
        rec = {"fixed": {}, "learners": {}}

        def run(tuner):
            iters, times = [], []
            for P in seq:
                r = tuner.solve(P.A, P.b, x0=P.x0, rtol=rtol)
                iters.append(int(r.stats["iterations"]))
                times.append(float(r.stats["time"]))
            return iters, times

        for w in [1.0] + [float(a) for a in arms if a != 1.0]:
            iters, times = run(lr.relax.BanditSOR(omegas=[w], learner="tsallis-inf",
                                                  method=method, seed=seed))
            rec["fixed"][f"{w:.4f}"] = {"omega": w, "total_iterations": int(sum(iters)),
                                        "time": float(sum(times))}
        best = min(rec["fixed"].values(), key=lambda v: v["total_iterations"])
        gs = rec["fixed"][f"{1.0:.4f}"]
        rec["best_fixed"] = best
        rec["gauss_seidel"] = gs
        for learner in learners:
            tuner = lr.relax.BanditSOR(omegas=arms, learner=learner, method=method, seed=seed)
            iters, times = run(tuner)
            total = int(sum(iters))
            rec["learners"][learner] = {
                "total_iterations": total, "time": float(sum(times)), "iterations": iters,
                "omega": [float(w) for w in tuner.history["omega"]],
                "ratio_to_best_fixed": total / max(best["total_iterations"], 1),
                "ratio_to_gauss_seidel": total / max(gs["total_iterations"], 1)}
        out["methods"][method] = rec
    return out


# -- output ----------------------------------------------------------------------------------
def format_table(result: dict) -> str:
    # "setup s" includes the update() calls when the obstacles move
    head = (f"{'dim':>3} {'n':>4} {'solver':<15} {'it/step':>7} {'max it':>6} {'setup s':>8} "
            f"{'ms/step':>8} {'total s':>8} {'x pyamg':>7} {'conv':>4}")
    lines = [head, "-" * len(head)]
    for case in result["cases"]:
        for r in case["records"]:
            if "skipped" in r:
                lines.append(f"{case['dim']:>3} {case['n']:>4} {r['solver']:<15} skipped: "
                             f"{r['skipped']}")
                continue
            ratio = r.get("total_ratio_to_pyamg")
            setup = r["setup"] + r["update"]
            lines.append(
                f"{case['dim']:>3} {case['n']:>4} {r['solver']:<15} {r['mean_iterations']:>7.1f} "
                f"{max(r['iterations']):>6} {setup:>8.3f} "
                f"{1e3 * r['solve_time'] / case['steps']:>8.1f} {r['total_time']:>8.3f} "
                f"{'' if ratio is None else f'{ratio:.2f}':>7} {'yes' if r['converged'] else 'NO':>4}")
    study = result.get("bandit")
    if study:
        lines.append("")
        lines.append(f"bandit study ({study['case']}, rtol {study['rtol']:g}): total iterations")
        for method, rec in study["methods"].items():
            b, gs = rec["best_fixed"], rec["gauss_seidel"]
            parts = [f"best fixed omega {b['omega']:.3f}: {b['total_iterations']}",
                     f"Gauss-Seidel: {gs['total_iterations']}"]
            for name, L in rec["learners"].items():
                parts.append(f"{name}: {L['total_iterations']} ({L['ratio_to_best_fixed']:.2f}x "
                             f"best, {L['ratio_to_gauss_seidel']:.2f}x GS)")
            lines.append(f"  {method:<8} " + "; ".join(parts))
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Iterations per step and cumulative wall time, one column per grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = result["cases"]
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(SOLVERS)}
    fig, axes = plt.subplots(2, len(cases), figsize=(4.6 * len(cases), 7), squeeze=False)
    for j, case in enumerate(cases):
        for r in case["records"]:
            if "skipped" in r:
                continue
            steps = np.arange(1, len(r["iterations"]) + 1)
            c = colors.get(r["solver"])
            axes[0, j].semilogy(steps, np.maximum(r["iterations"], 1), label=r["solver"], color=c)
            axes[1, j].semilogy(steps, r["setup"] + np.cumsum(r["times"]), label=r["solver"],
                                color=c)
        shape = "x".join([str(case["n"])] * case["dim"])
        axes[0, j].set_title(f"{case['dim']}D smoke {shape}, {case['steps']} steps")
        axes[0, j].set_ylabel(f"iterations to rtol {result['rtol']:g}")
        axes[1, j].set_ylabel("cumulative wall time [s] (setup + solves)")
        axes[1, j].set_xlabel("time step")
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig, dpi=100)
    plt.close(fig)


def plot_bandit(study: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    methods = list(study["methods"])
    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods):
        rec = study["methods"][method]
        w = [v["omega"] for v in rec["fixed"].values()]
        t = [v["total_iterations"] for v in rec["fixed"].values()]
        order = np.argsort(w)
        ax.plot(np.asarray(w)[order], np.asarray(t)[order], "o-", ms=3, label="fixed omega")
        for k, (name, L) in enumerate(rec["learners"].items()):
            ax.axhline(L["total_iterations"], ls="--", lw=1, color=f"C{k + 1}",
                       label=f"BanditSOR {name} ({L['ratio_to_best_fixed']:.2f}x best)")
        ax.set_xlabel("omega")
        ax.set_ylabel("total iterations over the sequence")
        ax.set_yscale("log")
        ax.set_title(f"{method} on {study['case']}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lrsolve bench fluids", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    parser.add_argument("--sizes2", type=positive_int, nargs="+", default=[64, 128],
                        help="2-D grid sizes (cells per axis)")
    parser.add_argument("--sizes3", type=positive_int, nargs="+", default=[32],
                        help="3-D grid sizes (cells per axis)")
    parser.add_argument("--steps", type=positive_int, default=30)
    parser.add_argument("--solvers", nargs="+", default=list(DEFAULT_SOLVERS),
                        choices=list(SOLVERS))
    parser.add_argument("--rtol", type=unit_interval, default=1e-6)
    parser.add_argument("--walls", default="closed", choices=["closed", "open-top"])
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--obstacle-velocity", type=finite_float, nargs="+", default=None,
                        help="move the obstacles at this velocity (one number per axis; "
                             "the solvers are update()d whenever the mask changes)")
    parser.add_argument("--rebuild", default=None, choices=["auto", "always", "never"],
                        help="Solver rebuild policy of pcg-ic0 / pcg-amg on update() "
                             "(default: the library's, 'auto')")
    parser.add_argument("--bandit", action="store_true",
                        help="also run the bandit study on the first 2-D size")
    parser.add_argument("--bandit-steps", type=positive_int, default=None,
                        help="steps of the bandit study (default --steps)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="fluids", help="file stem of the outputs")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    walls = "closed" if args.walls == "closed" else {"y+": "open"}
    sizes = {2: args.sizes2, 3: args.sizes3}
    velocity = None
    if args.obstacle_velocity is not None:
        if len(args.obstacle_velocity) != max(args.dims):
            parser.error(f"--obstacle-velocity needs {max(args.dims)} numbers (one per axis)")
        velocity = args.obstacle_velocity
    result = run_suite(tuple(args.dims), sizes, args.steps, tuple(args.solvers), args.rtol,
                       args.seed, walls, progress=not args.no_progress,
                       obstacle_velocity=velocity, rebuild=args.rebuild)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.bandit:
        dim = 2 if 2 in args.dims else 3
        n = sizes[dim][0]
        steps = args.bandit_steps or args.steps
        if not args.no_progress:
            print(f"[fluids] bandit study {dim}D n={n}, {steps} steps", file=sys.stderr)
        seq = make_sequence(n, dim, steps, seed=args.seed, walls=walls,
                            obstacle_velocity=velocity)
        study = bandit_study(seq, rtol=args.rtol, seed=args.seed)
        study["case"] = f"{dim}D {'x'.join([str(n)] * dim)}, {steps} steps"
        result["bandit"] = study
        plot_bandit(study, out / f"{args.name}_bandit.png")
    result["command"] = "lrsolve bench fluids " + " ".join(
        argv if argv is not None else sys.argv[1:])
    print(format_table(result))
    save_json(out / f"{args.name}.json", result)
    plot(result, out / f"{args.name}.png")
    print(f"\nwrote {out / (args.name + '.json')} and {out / (args.name + '.png')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
