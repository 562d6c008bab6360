"""Geometric multigrid (pcg-mg, mg, FMG) beside its peers, in one process on the same problems.

Sections (all recorded in one JSON, default ``benchmarks/results/multigrid.json``):

* ``peers``: 3D Poisson ``--n``^3, constant coefficient, random b, true relative residual
  <= 1e-8: lrsolve ``pcg-mg`` and ``mg`` (setup + solve), PyAMG SA-PCG (setup + solve),
  SciPy ``cg`` on the CSR matrix, lrsolve's matrix-free stencil CG, and, where petsc4py
  is present, PETSc CG + hypre BoomerAMG and CG + GAMG on one rank.  Ratios are
  lrsolve pcg-mg time / peer time.
* ``scaling``: pcg-mg iterations to 1e-8 from 32^3 to ``--max3`` and 256^2 to ``--max2``,
  unknowns per second, work units (solve time / one fine operator application) and the
  counted fine-grid operator applications per digit of residual reduction.
* ``fmg``: error of one FMG pass against a manufactured solution, relative to the
  discretisation error, and its work in fine-grid operator applications.
* ``robustness``: iterations for coefficient jumps (layered, checkerboard, contrast
  1e4), log-normal fields (sigma = 2), solid obstacles with Neumann walls, against the
  constant case (V- and W-cycles).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_multigrid.py`` (``--quick`` for a smoke
run).  The numba kernels use one thread by default (``--threads``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

import lrsolve as lr
from lrsolve.multigrid import GMG
from lrsolve.operators import PoissonStencil


def _relres(A, b, x):
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def _time_matvec(A, x, repeat=5):
    A @ x
    t0 = time.perf_counter()
    for _ in range(repeat):
        A @ x
    return (time.perf_counter() - t0) / repeat


def run_pcg_mg(A, b, rtol, threads, **kw):
    t0 = time.perf_counter()
    M = GMG(A, threads=threads, **kw)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    r = lr.solve(A, b, method="cg", M=M, rtol=rtol)
    solve = time.perf_counter() - t1
    return {"setup": setup, "solve": solve, "total": setup + solve, "iterations": r.iterations,
            "relres": _relres(A, b, r.x), "work_per_cycle": M.work_per_cycle(),
            "levels": len(M.levels)}


def run_mg(A, b, rtol, threads):
    t0 = time.perf_counter()
    M = GMG(A, threads=threads)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    r = lr.solve(A, b, method="mg", rtol=rtol, M=M)
    solve = time.perf_counter() - t1
    return {"setup": setup, "solve": solve, "total": setup + solve, "iterations": r.iterations,
            "relres": _relres(A, b, r.x)}


def run_pyamg(C, b, rtol):
    import pyamg
    t0 = time.perf_counter()
    ml = pyamg.smoothed_aggregation_solver(C)
    setup = time.perf_counter() - t0
    res = []
    t1 = time.perf_counter()
    x = ml.solve(b, tol=rtol, accel="cg", residuals=res, maxiter=500)
    solve = time.perf_counter() - t1
    return {"setup": setup, "solve": solve, "total": setup + solve,
            "iterations": len(res) - 1, "relres": _relres(C, b, x)}


def run_scipy_cg(C, b, rtol):
    import scipy.sparse.linalg as spla
    its = [0]
    t0 = time.perf_counter()
    x, info = spla.cg(C, b, rtol=rtol, maxiter=5000, callback=lambda xk: its.__setitem__(
        0, its[0] + 1))
    t = time.perf_counter() - t0
    return {"total": t, "iterations": its[0], "relres": _relres(C, b, x), "info": int(info)}


def run_stencil_cg(S, b, rtol):
    t0 = time.perf_counter()
    r = lr.solve(S, b, method="cg", rtol=rtol)
    t = time.perf_counter() - t0
    return {"total": t, "iterations": r.iterations, "relres": _relres(S, b, r.x)}


def run_petsc(C, b, rtol, pc):
    from petsc4py import PETSc
    A = PETSc.Mat().createAIJ(size=C.shape, csr=(C.indptr.astype(PETSc.IntType),
                                                 C.indices.astype(PETSc.IntType), C.data))
    A.assemble()
    bv = A.createVecLeft()
    bv.setArray(b)
    xv = A.createVecRight()
    t0 = time.perf_counter()
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType(pc)
    if pc == "hypre":
        ksp.getPC().setHYPREType("boomeramg")
    ksp.setTolerances(rtol=rtol, atol=0.0, max_it=1000)
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setUp()
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    ksp.solve(bv, xv)
    solve = time.perf_counter() - t1
    x = xv.getArray().copy()
    return {"setup": setup, "solve": solve, "total": setup + solve,
            "iterations": ksp.getIterationNumber(), "relres": _relres(C, b, x),
            "reason": int(ksp.getConvergedReason())}


def section_peers(n, rtol, threads, seed=0):
    S = PoissonStencil(n, 3)
    b = np.random.default_rng(seed).standard_normal(S.shape[0])
    C = S.to_csr()
    out = {"problem": f"3D Poisson {n}^3, constant coefficient, random b, rtol {rtol}",
           "unknowns": S.shape[0]}
    # warm-up: compile every numba kernel outside the timings
    small = PoissonStencil(12, 3)
    lr.solve(small, np.ones(small.shape[0]), method="pcg-mg", rtol=1e-8)
    lr.solve(small, np.ones(small.shape[0]), method="mg", rtol=1e-8)
    lr.solve(small, np.ones(small.shape[0]), method="cg", rtol=1e-8)
    out["matvec_seconds"] = _time_matvec(S, b)
    rows = {}
    rows["pcg-mg"] = run_pcg_mg(S, b, rtol, threads)
    rows["pcg-mg (2nd run)"] = run_pcg_mg(S, b, rtol, threads)
    rows["mg"] = run_mg(S, b, rtol, threads)
    rows["stencil cg"] = run_stencil_cg(S, b, rtol)
    rows["scipy cg"] = run_scipy_cg(C, b, rtol)
    rows["pyamg sa-pcg"] = run_pyamg(C, b, rtol)
    try:
        import petsc4py  # noqa: F401
        rows["petsc cg+hypre boomeramg"] = run_petsc(C, b, rtol, "hypre")
        rows["petsc cg+gamg"] = run_petsc(C, b, rtol, "gamg")
    except Exception as exc:  # petsc4py missing or built without hypre
        out["petsc"] = f"not run: {type(exc).__name__}: {exc}"
    best = min(rows["pcg-mg"]["total"], rows["pcg-mg (2nd run)"]["total"])
    out["rows"] = rows
    out["ratios"] = {f"pcg-mg / {name}": best / row["total"] for name, row in rows.items()
                     if not name.startswith("pcg-mg")}
    out["work_units_pcg_mg_solve"] = rows["pcg-mg (2nd run)"]["solve"] / out["matvec_seconds"]
    return out


def section_scaling(sizes3, sizes2, rtol, threads):
    rows = []
    for dim, sizes in ((3, sizes3), (2, sizes2)):
        for n in sizes:
            S = PoissonStencil(n, dim)
            b = np.random.default_rng(0).standard_normal(S.shape[0])
            tm = _time_matvec(S, b, repeat=3)
            row = run_pcg_mg(S, b, rtol, threads)
            digits = -math.log10(row["relres"])
            applications = row["iterations"] * (row["work_per_cycle"] + 1.0)
            row.update(dim=dim, n=n, unknowns=S.shape[0], matvec_seconds=tm,
                       unknowns_per_second=S.shape[0] / row["total"],
                       work_units=row["solve"] / tm,
                       applications_per_digit=applications / digits,
                       work_units_per_digit=row["solve"] / tm / digits)
            rows.append(row)
            print(f"  {dim}D n={n}: its {row['iterations']}, total {row['total']:.3f} s, "
                  f"{row['applications_per_digit']:.2f} applications/digit", flush=True)
    return rows


def section_fmg(sizes2, sizes3):
    rows = []
    for dim, sizes in ((2, sizes2), (3, sizes3)):
        for n in sizes:
            P = lr.problems.poisson(n=(n,) * dim, rhs="ones")
            h = 1.0 / (n + 1)
            X = np.meshgrid(*[h * np.arange(1, n + 1)] * dim, indexing="ij")
            u = np.prod([np.sin(np.pi * x) for x in X], axis=0).reshape(-1)
            f = dim * np.pi ** 2 * u
            discrete = lr.solve(P.A, f, method="pcg-mg", rtol=1e-12).x
            disc = float(np.abs(discrete - u).max())
            M = GMG(P.A)
            t0 = time.perf_counter()
            x = M.fmg(f)
            t = time.perf_counter() - t0
            err = float(np.abs(x - u).max())
            rows.append({"dim": dim, "n": n, "discretisation_error": disc, "fmg_error": err,
                         "ratio": err / disc, "work_units_counted": M.fmg_work(),
                         "seconds": t})
    return rows


def section_robustness(shapes):
    from scipy.ndimage import gaussian_filter
    out = []
    for shape in shapes:
        X = np.indices(shape)
        n = shape[0]
        rng = np.random.default_rng(0)
        g = gaussian_filter(rng.standard_normal(shape), 4, mode="wrap")
        cases = {
            "constant": {},
            "layered 1e4": dict(coefficient=np.where((X[0] // max(1, n // 8)) % 2 == 0, 1.0,
                                                     1e4)),
            "checkerboard 1e4": dict(coefficient=np.where(
                sum(X[a] // max(1, n // 4) for a in range(len(shape))) % 2 == 0, 1.0, 1e4)),
            "lognormal sigma=2 (corr. 4 cells)": dict(coefficient=np.exp(2.0 * g / g.std())),
            "lognormal sigma=2 (white)": dict(coefficient=np.exp(2.0 * rng.standard_normal(
                shape))),
            "obstacles": dict(mask=lr.problems.sphere_obstacles(shape)),
            "obstacles + Neumann walls": dict(mask=lr.problems.sphere_obstacles(shape), bc={
                "x-": "neumann", "x+": "neumann", "y-": "neumann"}),
        }
        for cycle in ("V", "W"):
            row = {"shape": list(shape), "cycle": cycle}
            for name, kw in cases.items():
                P = lr.problems.poisson(n=shape, dim=len(shape), rhs="random", seed=0, **kw)
                r = lr.solve(P.A, P.b, method="pcg-mg", rtol=1e-8, cycle=cycle)
                row[name] = {"iterations": r.iterations, "converged": r.converged,
                             "relres": _relres(P.A, P.b, r.x)}
            base = row["constant"]["iterations"]
            row["max_ratio_to_constant"] = max(v["iterations"] / base for k, v in row.items()
                                               if isinstance(v, dict))
            out.append(row)
            print(f"  {shape} {cycle}: " + ", ".join(
                f"{k} {v['iterations']}" for k, v in row.items() if isinstance(v, dict)),
                flush=True)
    return out


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = result["peers"]["rows"]
    names = list(rows)
    axes[0].barh(names, [rows[k]["total"] for k in names], color="tab:blue")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("setup + solve [s] (log)")
    axes[0].set_title(result["peers"]["problem"], fontsize=9)
    for dim, marker in ((3, "o"), (2, "s")):
        rs = [r for r in result["scaling"] if r["dim"] == dim]
        if rs:
            axes[1].loglog([r["unknowns"] for r in rs], [r["total"] for r in rs],
                           marker=marker, label=f"pcg-mg {dim}D")
    axes[1].set_xlabel("unknowns")
    axes[1].set_ylabel("time to 1e-8 [s]")
    axes[1].legend()
    axes[1].grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    lr.io.save_figure(path, fig, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=128, help="3D size of the peer comparison")
    ap.add_argument("--sizes3", type=int, nargs="*", default=[32, 64, 128])
    ap.add_argument("--sizes2", type=int, nargs="*", default=[256, 512, 1024, 2048])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["peers", "scaling", "fmg",
                                                              "robustness"])
    ap.add_argument("--out", default="benchmarks/results/multigrid.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.sizes3, args.sizes2 = 32, [16, 32], [64, 128]
    result = {"command": "python " + " ".join(sys.argv), "machine": platform.platform(),
              "cpu_count": os.cpu_count(), "threads": args.threads,
              "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    t0 = time.perf_counter()
    if "peers" not in args.skip:
        print("peers ...", flush=True)
        result["peers"] = section_peers(args.n, args.rtol, args.threads)
        for name, row in result["peers"]["rows"].items():
            print(f"  {name:28s} {row['total']:8.3f} s  its {row['iterations']:4d}  "
                  f"relres {row['relres']:.1e}", flush=True)
        for k, v in result["peers"]["ratios"].items():
            print(f"  {k}: {v:.3f}")
    if "scaling" not in args.skip:
        print("scaling ...", flush=True)
        result["scaling"] = section_scaling(args.sizes3, args.sizes2, args.rtol, args.threads)
    if "fmg" not in args.skip:
        print("fmg ...", flush=True)
        result["fmg"] = section_fmg([64, 256] if not args.quick else [64], [32, 64]
                                    if not args.quick else [16])
        for r in result["fmg"]:
            print(f"  {r['dim']}D n={r['n']}: error/disc {r['ratio']:.2f}, "
                  f"work {r['work_units_counted']:.1f}")
    if "robustness" not in args.skip:
        print("robustness ...", flush=True)
        result["robustness"] = section_robustness([(256, 256), (48, 48, 48)] if not args.quick
                                                  else [(64, 64)])
    result["seconds"] = time.perf_counter() - t0
    lr.io.save_json(args.out, result)
    if "peers" in result and "scaling" in result:
        plot(result, args.out.replace(".json", ".png"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
