"""The Poisson benchmark suite: ``lrsolve bench poisson``.

Runs lrsolve's solvers and their peers (SciPy's ``cg``, PyAMG's own solve) in one
process on the same problems (2D/3D Poisson, random right-hand side), and reports
iterations, setup and solve time, the final true relative residual and the time ratio
of each lrsolve solver to its peer.  Writes a JSON file and a convergence plot.

Peers: ``cg``/``cg-csr``/``pcg-jacobi``/``pcg-ic0``/``dcdm`` are compared with SciPy's
``cg`` on the CSR matrix; ``pcg-amg`` with PyAMG's ``solve(accel="cg")`` on the same
hierarchy settings.  Times are the minimum over ``--repeat`` runs.
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

from .. import backend as bk
from ..cli import nonnegative_int, positive_int, unit_interval
from ..io import save_figure, save_json
from ..problems.poisson import sphere_obstacles

DEFAULT_SOLVERS = ("cg", "cg-csr", "pcg-jacobi", "pcg-ic0", "pcg-amg", "pcg-mg", "mg", "dcdm",
                   "scipy-cg", "pyamg")
PEER_OF = {"cg": "scipy-cg", "cg-csr": "scipy-cg", "pcg-jacobi": "scipy-cg",
           "pcg-ic0": "scipy-cg", "dcdm": "scipy-cg", "pcg-amg": "pyamg", "pcg-mg": "pyamg",
           "mg": "pyamg"}
GRID_SOLVERS = ("pcg-mg", "mg", "dcdm")        # need a grid operator (skipped for --matrix)
COEFFICIENTS = ("const", "layered", "lognormal")
DOMAINS = ("box", "obstacles")


def _relres(A, x, b) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def run_solver(name: str, problem_csr, problem_stencil, rtol: float, backend: str = "numpy",
               dcdm_model=None) -> dict:
    """Run one solver once; returns iterations, setup/solve time, residual history."""
    import lrsolve as lr
    A_csr, b = problem_csr.A, problem_csr.b
    A_np = A_csr if backend == "numpy" else bk.to_numpy(problem_csr.A)
    history: list = []
    setup = 0.0
    if name == "scipy-cg":
        import scipy.sparse.linalg as sla
        b_np = bk.to_numpy(b)
        history.append(float(np.linalg.norm(b_np)))

        def cb(xk):
            history.append(float(np.linalg.norm(b_np - A_np @ xk)))
        # The callback costs an extra mat-vec per step: time a clean run separately.
        t0 = time.perf_counter()
        x, info = sla.cg(A_np, b_np, rtol=rtol)
        solve_t = time.perf_counter() - t0
        sla.cg(A_np, b_np, rtol=rtol, callback=cb)
        return dict(iterations=len(history) - 1, setup=0.0, solve=solve_t,
                    relres=_relres(A_np, x, b_np), converged=info == 0, history=history)
    if name == "pyamg":
        import pyamg
        b_np = bk.to_numpy(b)
        t0 = time.perf_counter()
        ml = pyamg.smoothed_aggregation_solver(A_np)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        x = ml.solve(b_np, tol=rtol, accel="cg", maxiter=500, residuals=history)
        solve_t = time.perf_counter() - t0
        rel = _relres(A_np, x, b_np)
        return dict(iterations=len(history) - 1, setup=setup, solve=solve_t, relres=rel,
                    converged=rel <= rtol * 1.0001, history=[float(h) for h in history])
    options = {}
    method = name
    A = problem_stencil.A if name in ("cg", "dcdm") else A_csr
    b_run = problem_stencil.b if A is problem_stencil.A else b
    if name == "cg-csr":
        method = "cg"
    if name in ("pcg-mg", "mg"):
        A, b_run = problem_stencil.A, problem_stencil.b
        t0 = time.perf_counter()
        options["M"] = lr.multigrid.GMG(A)
        setup = time.perf_counter() - t0
    elif name.startswith("pcg-"):
        t0 = time.perf_counter()
        options["M"] = lr.krylov.make_preconditioner(name[4:], A_csr)
        setup = time.perf_counter() - t0
    if name == "dcdm":
        options["model"] = dcdm_model
    t0 = time.perf_counter()
    res = lr.solve(A, b_run, method="cg" if name == "pcg-mg" else method, rtol=rtol, **options)
    solve_t = time.perf_counter() - t0
    return dict(iterations=res.iterations, setup=setup, solve=solve_t,
                relres=_relres(A_np, bk.to_numpy(res.x), bk.to_numpy(b_run)),
                converged=bool(res.converged), history=[float(h) for h in res.residuals])


def _load_dcdm(dim: int):
    """The pretrained DCDM model for ``dim``, or None when DCDM or its weights are absent."""
    try:
        from . import dcdm_suite
    except ImportError:
        return None
    try:
        return dcdm_suite.dcdm_entry(dim)
    except Exception as exc:  # no weights for this dim: skip DCDM, say why
        print(f"[bench] dcdm skipped for dim={dim}: {exc}", file=sys.stderr)
        return None


def _field(kind: str, shape: tuple, seed: int):
    """A cell coefficient: constant, layers of contrast 1e4 along the first axis, or a
    log-normal field (sigma = 2, correlation length 4 cells)."""
    if kind == "const":
        return None
    if kind == "layered":
        X = np.indices(shape)
        return np.where((X[0] // max(1, shape[0] // 8)) % 2 == 0, 1.0, 1e4)
    if kind == "lognormal":
        from scipy.ndimage import gaussian_filter
        g = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 4, mode="wrap")
        return np.exp(2.0 * g / g.std())
    raise ValueError(f"coefficient must be one of {COEFFICIENTS}, got {kind!r}")


def _problems(n, dim, seed, backend, coefficient="const", domain="box"):
    """(CSR problem, matrix-free problem) of one case."""
    import lrsolve as lr
    if coefficient == "const" and domain == "box":
        return (lr.problems.poisson(n, dim, rhs="random", seed=seed, format="csr",
                                    backend=backend),
                lr.problems.poisson(n, dim, rhs="random", seed=seed, format="stencil",
                                    backend=backend))
    shape = (n,) * dim
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    mask = sphere_obstacles(shape) if domain == "obstacles" else None
    Ps = lr.problems.poisson(shape, dim, coefficient=_field(coefficient, shape, seed),
                             mask=mask, rhs="random", seed=seed, backend=backend, format="grid")
    from .. import problems as _pr
    Pc = _pr.PoissonProblem(A=Ps.A.to_csr(), b=Ps.b, meta=dict(Ps.meta, format="csr"))
    return Pc, Ps


def _matrix_problem(path, seed):
    """A user's SPD matrix (Matrix Market) with a random right-hand side."""
    import scipy.io
    import scipy.sparse as sp
    from .. import problems as _pr
    A = sp.csr_matrix(scipy.io.mmread(str(path)), dtype=np.float64)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"--matrix must be square, got {A.shape}")
    if abs(A - A.T).max() > 1e-12 * abs(A).max():
        raise ValueError(f"--matrix must be symmetric (CG needs SPD): {path}")
    b = np.random.default_rng(seed).standard_normal(A.shape[0])
    P = _pr.PoissonProblem(A=A, b=b, meta={"matrix": str(path)})
    return P, P


def _matvec_seconds(A, b, repeat=3) -> float:
    A @ b
    t0 = time.perf_counter()
    for _ in range(repeat):
        A @ b
    return (time.perf_counter() - t0) / repeat


def run_suite(dims=(2, 3), sizes=None, solvers=DEFAULT_SOLVERS, rtol=1e-6, repeat=1,
              backend="numpy", seed=0, progress=True, coefficient="const", domain="box",
              matrix=None) -> dict:
    """Run the suite and return the JSON-able record (see module docstring).

    ``coefficient`` (const | layered | lognormal) and ``domain`` (box | obstacles) pick
    the problem (the grid operator beyond const/box); ``matrix`` (a ``.mtx`` path) runs
    the matrix solvers on a user's SPD matrix instead (grid solvers skipped).
    """
    import lrsolve as lr
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    from tqdm.auto import tqdm
    if coefficient not in COEFFICIENTS:
        raise ValueError(f"coefficient must be one of {COEFFICIENTS}, got {coefficient!r}")
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if matrix is not None:
        solvers = tuple(s for s in solvers if s not in GRID_SOLVERS)
        dims, sizes = (0,), {0: [0]}
    sizes = dict(sizes or {2: [64, 128, 256], 3: [16, 32]})
    cases = [(dim, n, s) for dim in dims for n in sizes.get(dim, []) for s in solvers]
    records = []
    bar = tqdm(total=len(cases) * repeat, disable=not progress, desc="poisson bench",
               file=sys.stderr)
    models = {}
    # Warm-up on a tiny problem: numba compiles (or loads its cache) on first call, and
    # that one-off cost is not what the suite measures.
    for dim in dims if matrix is None else (2,):   # a matrix run warms up on 8x8 Poisson
        Pc, Ps = _problems(8, dim, seed, backend, coefficient, domain)
        for s in solvers:
            if s in ("cg", "cg-csr", "pcg-jacobi", "pcg-ic0", "pcg-mg", "mg") and (
                    backend == "numpy" or s != "pcg-ic0"):
                run_solver(s, Pc, Ps, rtol, backend)
    for dim in dims:
        for n in sizes.get(dim, []):
            if matrix is not None:
                Pc, Ps = _matrix_problem(matrix, seed)
            else:
                Pc, Ps = _problems(n, dim, seed, backend, coefficient, domain)
            # one operator application of the fastest form: the unit of "work units"
            t_apply = _matvec_seconds(Ps.A, Ps.b)
            unknowns = int(Ps.A.shape[0])
            for s in solvers:
                if s == "dcdm" and (coefficient != "const" or domain != "box"):
                    bar.update(repeat)   # the pretrained networks know the unit box only
                    continue
                if s == "dcdm":
                    if dim not in models:
                        models[dim] = _load_dcdm(dim)
                    if models[dim] is None:
                        bar.update(repeat)
                        continue
                if backend != "numpy" and s in ("pcg-ic0", "pcg-amg", "pyamg"):
                    bar.update(repeat)  # CPU-only methods
                    continue
                best = None
                for _ in range(repeat):
                    rec = run_solver(s, Pc, Ps, rtol, backend, models.get(dim))
                    if best is None or rec["solve"] < best["solve"]:
                        best = rec
                    bar.update(1)
                total = best["setup"] + best["solve"]
                best.update(dim=dim, n=n, unknowns=unknowns, solver=s,
                            unknowns_per_s=unknowns / total if total > 0 else float("nan"),
                            work_units=best["solve"] / t_apply if t_apply > 0 else float("nan"))
                records.append(best)
    bar.close()
    by_key = {(r["dim"], r["n"], r["solver"]): r for r in records}
    for r in records:
        peer = PEER_OF.get(r["solver"])
        p = by_key.get((r["dim"], r["n"], peer))
        if p is not None:
            r["peer"] = peer
            r["solve_ratio"] = r["solve"] / p["solve"] if p["solve"] > 0 else float("nan")
            r["total_ratio"] = ((r["setup"] + r["solve"]) / (p["setup"] + p["solve"])
                                if p["setup"] + p["solve"] > 0 else float("nan"))
            r["iteration_ratio"] = r["iterations"] / max(p["iterations"], 1)
    return {
        "suite": "poisson", "rtol": rtol, "repeat": repeat, "backend": backend, "seed": seed,
        "coefficient": coefficient, "domain": domain, "matrix": None if matrix is None
        else str(matrix),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "platform": platform.platform(), "numpy": np.__version__},
        "records": records,
    }


def format_table(result: dict) -> str:
    """A plain-text table of a suite result."""
    head = (f"{'dim':>3} {'n':>5} {'solver':<11} {'iters':>6} {'setup s':>8} {'solve s':>8} "
            f"{'relres':>9} {'peer':<9} {'ratio':>6} {'unknowns/s':>10} {'work':>7}")
    lines = [head, "-" * len(head)]
    for r in result["records"]:
        ratio = f"{r['solve_ratio']:.2f}" if "solve_ratio" in r else ""
        lines.append(f"{r['dim']:>3} {r['n']:>5} {r['solver']:<11} {r['iterations']:>6} "
                     f"{r['setup']:>8.3f} {r['solve']:>8.3f} {r['relres']:>9.2e} "
                     f"{r.get('peer', ''):<9} {ratio:>6} {r.get('unknowns_per_s', 0):>10.3g} "
                     f"{r.get('work_units', float('nan')):>7.1f}")
    return "\n".join(lines)


def plot_convergence(result: dict, path: Path) -> None:
    """Residual vs iteration (log scale), one panel per (dim, n)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = sorted({(r["dim"], r["n"]) for r in result["records"]})
    cols = min(3, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, (dim, n) in zip(axes.flat, keys):
        for r in result["records"]:
            if (r["dim"], r["n"]) != (dim, n) or not r["history"]:
                continue
            h = np.asarray(r["history"], dtype=float)
            ax.semilogy(np.arange(len(h)), h / h[0], label=f"{r['solver']} ({r['iterations']})")
        ax.axhline(result["rtol"], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{dim}D Poisson, n={n} ({n ** dim:,} unknowns)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("||r|| / ||r0||")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(left=0)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def plot_scaling(result: dict, path: Path) -> None:
    """Setup + solve time against unknowns, log-log, one line per (solver, dim)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for solver in dict.fromkeys(r["solver"] for r in result["records"]):
        for dim in sorted({r["dim"] for r in result["records"]}):
            rs = sorted((r for r in result["records"] if r["solver"] == solver
                         and r["dim"] == dim), key=lambda r: r["unknowns"])
            if rs:
                ax.loglog([r["unknowns"] for r in rs], [r["setup"] + r["solve"] for r in rs],
                          marker="o" if dim == 2 else "s", label=f"{solver} {dim}D")
    ax.set_xlabel("unknowns")
    ax.set_ylabel(f"setup + solve to rtol {result['rtol']:g} [s]")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if "--engine" in args_in or any(a.startswith("--engine=") for a in args_in):
        # The MPI suite on PETSc (mpiexec -n 2 lrsolve bench poisson --engine petsc).
        from ..petsc.bench import main as petsc_main
        return petsc_main(args_in)
    parser = argparse.ArgumentParser(prog="lrsolve bench poisson", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=None,
                        help="grid sizes n per axis (default: 64 128 256 in 2D, 16 32 in 3D)")
    parser.add_argument("--solvers", nargs="+", default=list(DEFAULT_SOLVERS),
                        choices=list(DEFAULT_SOLVERS))
    parser.add_argument("--rtol", type=unit_interval, default=1e-6)
    parser.add_argument("--repeat", type=positive_int, default=1)
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch", "cupy"])
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for the JSON and the plot")
    parser.add_argument("--name", default="poisson", help="file stem of the outputs")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--coefficient", default="const", choices=list(COEFFICIENTS),
                        help="cell coefficient: const, layered (contrast 1e4) or lognormal "
                             "(sigma 2)")
    parser.add_argument("--domain", default="box", choices=list(DOMAINS),
                        help="box, or obstacles (solid cells with Neumann walls)")
    parser.add_argument("--matrix", default=None, metavar="FILE.mtx",
                        help="run the matrix solvers on a user's SPD Matrix Market file")
    args = parser.parse_args(argv)
    sizes = None
    if args.sizes:
        sizes = {d: args.sizes for d in args.dims}
    result = run_suite(args.dims, sizes, tuple(args.solvers), args.rtol, args.repeat,
                       args.backend, args.seed, progress=not args.no_progress,
                       coefficient=args.coefficient, domain=args.domain, matrix=args.matrix)
    result["command"] = "lrsolve bench poisson " + " ".join(argv if argv is not None else sys.argv[1:])
    print(format_table(result))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{args.name}.json"
    save_json(json_path, result)
    plot_path = out / f"{args.name}.png"
    plot_convergence(result, plot_path)
    scaling_path = out / f"{args.name}_scaling.png"
    plot_scaling(result, scaling_path)
    print(f"\nwrote {json_path}, {plot_path} and {scaling_path}")
    return 0
