"""GPU check: CG tests and a Poisson solve on CuPy and torch-CUDA; prints a short table.

Run on a machine with an NVIDIA GPU::

    python benchmarks/gpu_check.py            # table on stdout, JSON to benchmarks/results/

Each backend that is missing is reported as "skipped" with the reason; nothing here
needs a GPU to import.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import lrsolve as lr
from lrsolve import backend as bk


def _backends():
    out = []
    try:
        import torch
        if torch.cuda.is_available():
            out.append(("torch-cuda", "torch", "cuda"))
        else:
            out.append(("torch-cuda", None, "torch has no CUDA device"))
    except ImportError as exc:
        out.append(("torch-cuda", None, f"torch missing: {exc}"))
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
        out.append(("cupy", "cupy", None))
    except Exception as exc:  # ImportError or no device
        out.append(("cupy", None, f"cupy unavailable: {type(exc).__name__}"))
    return out


def check(label, backend, device, n=256, rtol=1e-8):
    rows = []
    P_ref = lr.problems.poisson(n, 2, rhs="random", seed=0)
    x_ref = lr.solve(P_ref.A, P_ref.b, rtol=1e-11).x
    for fmt in ("stencil", "csr"):
        for dtype in (np.float64, np.float32):
            P = lr.problems.poisson(n, 2, rhs="random", seed=0, backend=backend, device=device,
                                    format=fmt, dtype=dtype)
            lr.solve(P.A, P.b, rtol=rtol, maxiter=5)  # warm-up (kernels, cuSPARSE handles)
            t0 = time.perf_counter()
            # float32 CG on this problem attains a true relative residual of about 1e-5
            # (measured on an H100: it stops at 1.0e-5 and says converged=False for
            # rtol=1e-5); 1e-4 is a tolerance it can honestly meet.
            tol = rtol if dtype == np.float64 else 1e-4
            r = lr.solve(P.A, P.b, rtol=tol)
            if backend == "torch":
                import torch
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - t0
            x = bk.to_numpy(r.x).astype(np.float64)
            true_rel = np.linalg.norm(P_ref.b - P_ref.A @ x) / np.linalg.norm(P_ref.b)
            rows.append(dict(backend=label, format=fmt, dtype=np.dtype(dtype).name, rtol=tol,
                             iterations=r.iterations, converged=r.converged,
                             true_relres=float(true_rel), seconds=elapsed,
                             max_err_vs_cpu=float(np.abs(x - x_ref).max() / np.abs(x_ref).max()),
                             same_device=str(bk.device_of(r.x)) == str(bk.device_of(P.b))))
    return rows


def check_dcdm(sizes=(256, 1024), rtol=1e-6):
    """DCDM (default pretrained model, weights on the GPU) beside CG, torch-CUDA."""
    import torch
    rows = []
    model = lr.dcdm.load_pretrained("poisson2d", device="cuda")
    for n in sizes:
        P = lr.problems.poisson(n, 2, rhs="random", seed=0, backend="torch", device="cuda")
        for method, opts in (("dcdm", {"model": model}), ("cg", {})):
            lr.solve(P.A, P.b, method=method, rtol=rtol, maxiter=3, **opts)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            r = lr.solve(P.A, P.b, method=method, rtol=rtol, maxiter=20 * n, **opts)
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - t0
            res = P.b - P.A @ r.x
            rows.append(dict(backend="torch-cuda", format=f"{method}-{n}", dtype=str(r.x.dtype).removeprefix("torch."),
                             rtol=rtol, iterations=r.iterations, converged=r.converged,
                             true_relres=float(torch.linalg.norm(res) / torch.linalg.norm(P.b)),
                             seconds=elapsed, max_err_vs_cpu=float("nan"),
                             same_device=r.x.device == P.b.device))
    return rows


def _sync(backend):
    if backend == "torch":
        import torch
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    elif backend == "cupy":  # pragma: no cover - needs a GPU
        import cupy
        cupy.cuda.Device().synchronize()


def _time(fn, backend, repeat=3):
    """Best of ``repeat`` wall-clock timings of ``fn()`` with device synchronisation."""
    best = float("inf")
    for _ in range(repeat):
        _sync(backend)
        t0 = time.perf_counter()
        fn()
        _sync(backend)
        best = min(best, time.perf_counter() - t0)
    return best


def check_multigrid(label, backend, device, cases=((3, 256), (2, 4096)), rtol=1e-6):
    """pcg-mg (geometric multigrid, setup + solve) beside plain CG on the GPU backend:
    3D 256^3 and 2D 4096^2 Poisson, random b; float64 (and a float32 pcg-mg row).
    Each row also gives the time of one operator application and of one multigrid
    cycle, so the solve time can be read in work units.  Runs on torch-CPU too (small
    cases), which is how the code path is tested without a GPU."""
    from lrsolve.multigrid import GMG
    rows = []
    for dim, n in cases:
        small = lr.problems.poisson(8, dim, rhs="random", seed=0, backend=backend, device=device)
        lr.solve(small.A, small.b, method="pcg-mg", rtol=rtol)     # warm-up
        timings = {}
        variants = [("pcg-mg", np.float64, {}), ("pcg-mg", np.float32, {}),
                    ("cg", np.float64, {})]
        if backend == "torch" and device != "cpu":
            variants.insert(1, ("pcg-mg-eager", np.float64, {"cuda_graph": False}))
        for method, dtype, gmg_options in variants:
            P = lr.problems.poisson(n, dim, rhs="random", seed=0, backend=backend, device=device,
                                    dtype=dtype)
            # float32: 1e-5 in 3D; the 2D 4096^2 integer-stencil system (condition ~7e6)
            # cannot be resolved to better than ~3e-4 in float32 (measured on an H200: CG
            # and pcg-mg both stall there), so 1e-3 is what it can honestly meet
            tol = rtol if dtype == np.float64 else (1e-5 if dim == 3 else 1e-3)
            lr.solve(P.A, P.b, method="cg", rtol=tol, maxiter=3)   # warm-up (kernels, caches)
            _sync(backend)
            t0 = time.perf_counter()
            if method.startswith("pcg-mg"):
                M = GMG(P.A, **gmg_options)
                _sync(backend)
                setup = time.perf_counter() - t0
                r = lr.solve(P.A, P.b, method="cg", M=M, rtol=tol)
            else:
                M, setup = None, 0.0
                r = lr.solve(P.A, P.b, method="cg", rtol=tol, maxiter=20 * n)
            _sync(backend)
            elapsed = time.perf_counter() - t0
            # the same solve again: the device data of the hierarchy is built on first use
            if M is not None:
                warm = _time(lambda: lr.solve(P.A, P.b, method="cg", M=M, rtol=tol), backend, 2)
                cycle = _time(lambda: M @ P.b, backend)
            else:
                warm, cycle = elapsed, float("nan")
            apply_A = _time(lambda: P.A @ P.b, backend)
            timings[(method, np.dtype(dtype).name)] = elapsed
            res = P.b - P.A @ r.x
            true_rel = float(bk.norm(res) / bk.norm(P.b))
            rows.append(dict(backend=label, format=f"{method}-{dim}D{n}",
                             dtype=np.dtype(dtype).name, rtol=tol, iterations=r.iterations,
                             converged=r.converged, true_relres=true_rel, seconds=elapsed,
                             setup_seconds=setup, warm_seconds=warm, apply_A_seconds=apply_A,
                             cycle_seconds=cycle, work_units=warm / apply_A,
                             max_err_vs_cpu=float("nan"),
                             cuda_graph=bool(M is not None and M._graphs),
                             graph_error=None if M is None else M.graph_error,
                             cells_per_second=float(n ** dim / elapsed),
                             same_device=str(bk.device_of(r.x)) == str(bk.device_of(P.b))))
            del P, M, r, res
        cg_time = timings[("cg", "float64")]
        for row in rows[-len(variants):-1]:
            row["speedup_vs_cg"] = cg_time / row["seconds"]
            row["warm_speedup_vs_cg"] = cg_time / row["warm_seconds"]
    return rows


def fluid_system(n, data_path, backend, device):
    """A 3D smoke pressure system at ``n`` cells per axis on the given backend: the saved
    128^3 one (step 2 of ``fluid_pressure_sequence(n=128, dim=3, ...)``, made by
    ``benchmarks/make_fluid_system.py``), or for another ``n`` the same obstacles
    rasterised at ``n`` with the 128^3 right-hand side interpolated (nearest) onto it,
    zeroed in solids and projected onto the range."""
    from lrsolve.io import load_json
    from lrsolve.operators.grid import GridOperator
    from lrsolve.problems.fluids import obstacle_mask
    data = np.load(data_path)
    meta = load_json(str(data_path).replace(".npz", ".json"))
    b = data["b"].reshape((meta["n"],) * 3)
    if n == meta["n"]:
        mask = data["mask"]
    else:
        mask = obstacle_mask(meta["obstacles"], (n,) * 3)
        idx = (np.arange(n) * meta["n"]) // n
        b = b[np.ix_(idx, idx, idx)]
    spacing = tuple(h * meta["n"] / n for h in meta["spacing"])
    A = GridOperator((n,) * 3, spacing=spacing, mask=mask, bc=meta["bc"])
    b = np.where(A.active, b, 0.0).reshape(-1)
    if A.singular:
        b = A.project_null(b)
    return A.to(backend, device=device), bk.asarray(b, backend=backend, device=device)


def check_dcdm_fluids(sizes=(128, 256), rtol=1e-6, data_path=None, device="cuda"):
    """DCDM with the shipped 3D model beside pcg-mg and CG on smoke pressure systems with
    obstacles (Neumann walls at solids), torch on ``device``; setup (the model's hierarchy,
    GMG) is inside "first", "warm" repeats the solve."""
    import torch
    root = Path(__file__).resolve().parents[1]
    data_path = data_path or root / ".gpu" / "smoke128.npz"
    model = lr.dcdm.load_pretrained("poisson3d", device=device)
    rows = []
    for n in sizes:
        A, b = fluid_system(n, data_path, "torch", device)
        for method, opts in (("dcdm", {"model": model}), ("pcg-mg", {}), ("cg", {})):
            S = None
            _sync("torch")
            t0 = time.perf_counter()
            S = lr.Solver(A, method=method, rtol=rtol, maxiter=20 * n, **opts)
            r = S.solve(b)
            _sync("torch")
            first = time.perf_counter() - t0
            warm = _time(lambda: S.solve(b), "torch", 2) if method != "cg" else first
            res = b - A @ r.x
            rows.append(dict(backend=f"torch-{device}", format=f"{method}-smoke3D{n}",
                             dtype=str(r.x.dtype).removeprefix("torch."), rtol=rtol,
                             iterations=r.iterations, converged=r.converged,
                             true_relres=float(torch.linalg.norm(res) / torch.linalg.norm(b)),
                             seconds=first, warm_seconds=warm, max_err_vs_cpu=float("nan"),
                             same_device=r.x.device == b.device))
            del S, r, res
    return rows


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for gpu_check.json "
                        "(default benchmarks/results)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the pytest part")
    parser.add_argument("--skip-fluids", action="store_true",
                        help="no DCDM-3D rows on smoke pressure systems")
    args = parser.parse_args(argv)
    rows = []
    skipped = []
    for label, backend, device in _backends():
        if backend is None:
            skipped.append((label, device))
            continue
        rows += check(label, backend, device if backend == "torch" else None)
        try:
            rows += check_multigrid(label, backend, device if backend == "torch" else None)
        except Exception as exc:  # report, do not hide the other rows
            skipped.append((f"multigrid-{label}", f"{type(exc).__name__}: {exc}"))
        if backend == "torch":
            try:
                rows += check_dcdm()
            except Exception as exc:  # report, do not hide the other rows
                skipped.append(("dcdm-cuda", f"{type(exc).__name__}: {exc}"))
            if not args.skip_fluids:
                try:
                    rows += check_dcdm_fluids()
                except Exception as exc:  # report, do not hide the other rows
                    import traceback
                    traceback.print_exc()
                    skipped.append(("dcdm-fluids", f"{type(exc).__name__}: {exc}"))
    # CG unit tests on the GPU backends (the CuPy ones skip without a device).
    root = Path(__file__).resolve().parents[1]
    test_rc = 5
    if not args.skip_tests:
        import pytest
        test_rc = pytest.main(["-q", "-x", str(root / "tests" / "krylov" / "test_cg.py"), "-k",
                               "torch or cupy"])
    head = f"{'backend':<11} {'format':<14} {'dtype':<8} {'iters':>6} {'conv':>5} {'true relres':>12} {'err vs cpu':>11} {'sec':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['backend']:<11} {r['format']:<14} {r['dtype']:<8} {r['iterations']:>6} "
              f"{str(r['converged']):>5} {r['true_relres']:>12.2e} {r['max_err_vs_cpu']:>11.2e} "
              f"{r['seconds']:>7.3f}"
              + (f"  setup {r.get('setup_seconds', float('nan')):.3f} warm {r['warm_seconds']:.3f} "
                 f"A {1e3 * r['apply_A_seconds']:.2f} ms cycle {1e3 * r['cycle_seconds']:.2f} ms "
                 f"{r['work_units']:.0f} WU" if "work_units" in r else
                 f"  warm {r['warm_seconds']:.3f}" if "warm_seconds" in r else "")
              + (f"  {r['speedup_vs_cg']:.1f}x vs CG" if "speedup_vs_cg" in r else ""))
    for r in rows:
        if r.get("graph_error"):
            print(f"{r['backend']} {r['format']}: CUDA graph not used: {r['graph_error']}")
    for label, why in skipped:
        print(f"{label:<11} skipped: {why}")
    print(f"pytest (GPU-parametrised CG tests): exit {int(test_rc)}")
    from lrsolve.io import save_json
    out = Path(args.out) if args.out else root / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    device_name = None
    try:
        import torch
        device_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    save_json(out / "gpu_check.json", {"command": "python benchmarks/gpu_check.py",
                                        "device": device_name, "rows": rows,
                                        "skipped": skipped, "pytest_exit": int(test_rc)})
    # Every solve converges, and none claims a convergence its true residual (recomputed
    # in float64 from the returned x) does not have.
    honest = all(r["true_relres"] <= 2.0 * r["rtol"] for r in rows if r["converged"])
    ok = all(r["converged"] for r in rows) and honest and int(test_rc) in (0, 5)
    print(f"all converged: {all(r['converged'] for r in rows)}; no false convergence: {honest}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
