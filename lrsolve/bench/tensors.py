"""``lrsolve bench tensors``: Chebyshev-Tucker against naive HOSVD, TensorLy and grid Tucker-ALS.

Sections (each printed as a table and stored in one JSON file, plus a PNG):

* ``spectral`` - 1-D Runge function: fitted decay rate vs the Bernstein-ellipse value,
  predicted degree for 1e-12 and the max error on 1e5 random points at that degree (and at
  85 % of it); a smooth 3-D function with adaptive degree.
* ``newton`` - the long-range Newton kernel for several ``sigma`` at ``rtol = 1e-7``
  (adaptive degree, ranks, error) and the full singular ``1/|x|`` for contrast (error
  measured away from the origin, ``|x| > 0.1``).
* ``ranks`` - Tucker ranks of the Chebyshev coefficient tensor vs tolerance for the Slater
  function ``exp(-|x|)``, the long-range Newton kernel ``erf(|x|/sigma)/|x|`` and a sum of
  Gaussians; build time, storage, max error on random points.
* ``build`` - build time of our ST-HOSVD (``svd="auto"``) vs the reference's naive HOSVD (full thin
  SVD of every unfolding, then the core) on the same ``m = 129`` (degree 128) coefficient
  tensor, and end to end (sampling + DCT + Tucker).
* ``tensorly`` - ``tensorly.decomposition.tucker`` (HOOI, SVD init) on the same coefficient
  tensor at our ranks: error and time next to ours.
* ``grid`` - Tucker-ALS (HOSVD ranks at ``rtol``, then HOOI) on a full uniform grid of the
  function vs the coefficient-tensor ranks at the same tolerance; cost ratio.
* ``throughput`` - points per second of ``ct(points)`` at ranks ~10, degree 64,
  single-threaded.
* ``particles`` - long-range potential of 1000-particle clusters (random cloud, lattice):
  relative error on 1e5 random points vs direct summation, build and evaluation times,
  ratio to direct summation.

Timings use one BLAS / torch thread unless ``--threads`` says otherwise; each is the best
of ``--repeat`` runs.  Absolute seconds on a shared machine are noise; ratios measured in
the same run are what matter.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
from ..cli import nonnegative_int, positive_float, positive_int, unit_interval
from ..io import save_figure, save_json
from ..seeding import as_generator

__all__ = ["main"]


def _best(fn, repeat):
    best, out = math.inf, None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def gauss_sum(seed=0, count=20):
    """A smooth test function of 3 variables: a sum of ``count`` random Gaussians."""
    rng = as_generator(seed)
    centres = rng.uniform(-0.6, 0.6, (count, 3))
    amps = rng.uniform(0.5, 1.0, count)
    widths = rng.uniform(0.2, 0.5, count)

    def f(x, y, z):
        out = 0.0
        for c, a, w in zip(centres, amps, widths):
            out = out + a * np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
                                   / (2 * w * w))
        return out
    return f


def _functions(sigma):
    from lrsolve.tensors import newton_long_range
    return {
        "slater": lambda x, y, z: np.exp(-np.sqrt(x * x + y * y + z * z)),
        f"newton_lr(sigma={sigma})": newton_long_range(sigma),
        "gauss_sum(20)": gauss_sum(),
    }


def _rel_max(approx, exact):
    return float(np.abs(approx - exact).max() / np.abs(exact).max())


# ---------------------------------------------------------------------------- sections
def bench_spectral(args, rng):
    from lrsolve.tensors import Chebyshev, ChebTucker, decay_rate, predict_degree
    f = lambda x: 1.0 / (1.0 + 25.0 * x ** 2)
    rho = 0.2 + math.sqrt(1.04)
    probe = Chebyshev.from_function(f, [(-1, 1)], degree=200)
    n_pred = predict_degree(probe.coeffs, 1e-12)
    x = rng.uniform(-1, 1, args.points)
    err = lambda n: float(np.abs(Chebyshev.from_function(f, [(-1, 1)], degree=n)(x) - f(x)).max())
    auto = Chebyshev.from_function(f, [(-1, 1)], rtol=1e-12)
    rows = [{"function": "runge 1/(1+25x^2)", "rho_theory": rho,
             "rho_fitted": decay_rate(probe.coeffs), "predicted_degree": n_pred,
             "err_at_predicted": err(n_pred), "err_at_0.85_predicted": err(int(0.85 * n_pred)),
             "adaptive_degree(1e-12)": auto.degrees[0], "err_adaptive": err(auto.degrees[0])}]
    g = lambda x, y, z: np.exp(-(x ** 2 + 2 * y ** 2 + 3 * z ** 2)) * np.cos(x + y + z)
    ct = ChebTucker.from_function(g, degree=None, rtol=1e-14)
    pts = rng.uniform(-1, 1, (args.points, 3))
    rows.append({"function": "3-D exp(-(x2+2y2+3z2)) cos(x+y+z)", "degrees": ct.degrees,
                 "predicted_degree": ct.info["predicted_degree"], "ranks": ct.ranks,
                 "max_rel_err": _rel_max(ct(pts), g(*pts.T))})
    return rows


def bench_ranks(args, rng):
    from lrsolve.tensors import ChebTucker
    pts = rng.uniform(-1, 1, (args.points, 3))
    rows = []
    for name, f in _functions(args.sigma).items():
        exact = f(*pts.T)
        if name == "slater":
            degree = args.degree_slater      # cusp at 0: no spectral convergence
        else:
            degree = None
        for rtol in args.rtols:
            t_build, ct = _best(lambda: ChebTucker.from_function(f, degree=degree, rtol=rtol,
                                                                   max_degree=256), 1)
            rows.append({"function": name, "rtol": rtol, "degrees": ct.degrees,
                         "ranks": ct.ranks, "nbytes": ct.nbytes, "build_s": t_build,
                         "max_rel_err": _rel_max(ct(pts), exact),
                         "resolved": ct.info.get("resolved")})
    return rows


def bench_build(args, rng):
    from lrsolve.tensors import hosvd, sample_on_grid, vals2coeffs, tucker_error
    degree = args.m - 1
    rows = []
    for name, f in _functions(args.sigma).items():
        t_sample, C = _best(lambda: vals2coeffs(sample_on_grid(f, [(-1, 1)] * 3, (degree,) * 3)),
                            args.repeat)
        t_naive, (Gn, Un, info_n) = _best(
            lambda: hosvd(C, rtol=args.build_rtol, svd="svd", sequential=False), args.repeat)
        t_ours, (Go, Uo, info_o) = _best(lambda: hosvd(C, rtol=args.build_rtol),
                                         args.repeat)
        rows.append({"function": name, "m": args.m, "rtol": args.build_rtol,
                     "naive_ranks": info_n["ranks"], "ours_ranks": info_o["ranks"],
                     "naive_err": tucker_error(C, Gn, Un), "ours_err": tucker_error(C, Go, Uo),
                     "sample_dct_s": t_sample, "naive_hosvd_s": t_naive, "ours_hosvd_s": t_ours,
                     "ratio_hosvd": t_naive / t_ours,
                     "ratio_end_to_end": (t_sample + t_naive) / (t_sample + t_ours)})
    return rows


def bench_tensorly(args, rng):
    try:
        import tensorly as tl
        from tensorly.decomposition import tucker as tl_tucker
    except ImportError:
        return [{"skipped": "tensorly not installed (pip install tensorly)"}]
    from lrsolve.tensors import hosvd, hooi, sample_on_grid, vals2coeffs, tucker_error
    degree = args.m - 1
    rows = []
    for name, f in _functions(args.sigma).items():
        C = vals2coeffs(sample_on_grid(f, [(-1, 1)] * 3, (degree,) * 3))
        t_h, (G, U, info) = _best(lambda: hosvd(C, rtol=args.build_rtol), args.repeat)
        ranks = info["ranks"]
        t_o, (Go, Uo, info_o) = _best(lambda: hooi(C, ranks, U, maxiter=100, rtol=1e-4),
                                      args.repeat)
        t_tl, (core, factors) = _best(
            lambda: tl_tucker(tl.tensor(C), rank=list(ranks), init="svd", n_iter_max=100,
                              tol=1e-4), args.repeat)
        rows.append({"function": name, "m": args.m, "ranks": ranks,
                     "ours_hosvd_err": tucker_error(C, G, U), "ours_hosvd_s": t_h,
                     "ours_hooi_err": tucker_error(C, Go, Uo), "ours_hooi_s": t_h + t_o,
                     "tensorly_err": tucker_error(C, np.asarray(core),
                                                  [np.asarray(a) for a in factors]),
                     "tensorly_s": t_tl, "ratio_tensorly_over_ours_hosvd": t_tl / t_h})
    return rows


def bench_grid(args, rng):
    from lrsolve.tensors import ChebTucker, tucker
    rows = []
    for name, f in _functions(args.sigma).items():
        if name == "slater":
            continue          # not smooth: the Chebyshev side would need a huge degree
        t_ct, ct = _best(lambda: ChebTucker.from_function(f, degree=args.grid_degree,
                                                           rtol=args.grid_rtol), args.repeat)
        x = np.linspace(-1, 1, args.grid_n)

        def grid_als():
            T = f(*np.meshgrid(x, x, x, indexing="ij"))
            return tucker(T, rtol=args.grid_rtol, method="hooi")
        t_grid, res = _best(grid_als, 1)
        info = {"ranks": res.ranks, "iterations": res.iterations}
        diff = [a - b for a, b in zip(ct.ranks, info["ranks"])]
        rows.append({"function": name, "rtol": args.grid_rtol, "chebtucker_degree": ct.degrees,
                     "chebtucker_ranks": ct.ranks, "grid_n": args.grid_n,
                     "grid_als_ranks": info["ranks"], "rank_diff": diff,
                     "within_2": all(abs(d) <= 2 for d in diff), "als_iterations": info["iterations"],
                     "chebtucker_s": t_ct, "grid_als_s": t_grid, "cost_ratio": t_ct / t_grid})
    return rows


def bench_throughput(args, rng):
    from lrsolve.tensors import ChebTucker
    rows = []
    f = gauss_sum()
    ct = ChebTucker.from_function(f, degree=64, rtol=1e-6)
    G = rng.standard_normal((10, 10, 10))
    synthetic = ChebTucker(G, [rng.standard_normal((65, 10)) / 65 for _ in range(3)],
                           [(-1, 1)] * 3)
    pts = rng.uniform(-1, 1, (args.throughput_points, 3))
    for name, obj in [("gauss_sum(20) rtol=1e-6", ct), ("synthetic rank 10", synthetic)]:
        obj(pts[:1000])                       # compile / warm up
        t, _ = _best(lambda: obj(pts), args.repeat)
        rows.append({"case": name, "degrees": obj.degrees, "ranks": obj.ranks,
                     "points": pts.shape[0], "seconds": t, "points_per_s": pts.shape[0] / t})
    try:
        import torch
        ptt = torch.from_numpy(pts)
        ctt = ChebTucker(torch.from_numpy(ct.core), [torch.from_numpy(F) for F in ct.factors],
                         ct.domain)
        ctt(ptt[:1000])
        t, _ = _best(lambda: ctt(ptt), args.repeat)
        rows.append({"case": "gauss_sum(20) torch CPU (GEMM path)", "degrees": ct.degrees,
                     "ranks": ct.ranks, "points": pts.shape[0], "seconds": t,
                     "points_per_s": pts.shape[0] / t})
    except ImportError:
        pass
    return rows


def bench_particles(args, rng):
    from lrsolve.tensors import (lattice_cluster, long_range_particle_sum, particle_potential,
                                 random_cloud)
    clusters = {
        "random_cloud(1000)": random_cloud(1000, seed=0),
        "lattice 10x10x10": lattice_cluster((10, 10, 10), spacing=0.15, charges="unit"),
        "lattice 10x10x10 alternating": lattice_cluster((10, 10, 10), spacing=0.15,
                                                        charges="alternating"),
    }
    if args.particles_large:
        clusters["random_cloud(4096)"] = random_cloud(4096, seed=1)
    pts = rng.uniform(-1, 1, (args.points, 3))
    rows = []
    for name, (pos, q) in clusters.items():
        for sigma in args.particle_sigmas:
            t_build, ct = _best(lambda: long_range_particle_sum(pos, q, sigma, rtol=args.particle_rtol),
                                1)
            ct(pts[:100])
            t_eval, approx = _best(lambda: ct(pts), args.repeat)
            t_direct, exact = _best(lambda: particle_potential(pts, pos, q, sigma), 1)
            rows.append({"cluster": name, "particles": int(q.size), "sigma": sigma,
                         "rtol": args.particle_rtol, "degrees": ct.degrees, "ranks": ct.ranks,
                         "quadrature_nodes": ct.info["nodes"], "cp_rank": ct.info["cp_rank"],
                         "points": pts.shape[0], "max_rel_err": _rel_max(approx, exact),
                         "build_s": t_build, "eval_s": t_eval, "direct_s": t_direct,
                         "eval_speedup_vs_direct": t_direct / t_eval,
                         "build_plus_eval_speedup": t_direct / (t_build + t_eval)})
    return rows


def bench_newton(args, rng):
    """Long-range Newton kernel vs sigma at rtol 1e-7, and the full 1/|x| for contrast."""
    from lrsolve.tensors import ChebTucker, newton_long_range
    pts = rng.uniform(-1, 1, (args.points, 3))
    rows = []
    for sigma in args.newton_sigmas:
        f = newton_long_range(sigma)
        t, ct = _best(lambda: ChebTucker.from_function(f, degree=None, rtol=1e-7,
                                                         max_degree=256), 1)
        rows.append({"kernel": f"erf(|x|/{sigma})/|x|", "rtol": 1e-7, "degrees": ct.degrees,
                     "resolved": ct.info["resolved"], "ranks": ct.ranks, "build_s": t,
                     "max_rel_err": _rel_max(ct(pts), f(*pts.T))})
    full = lambda x, y, z: 1.0 / np.sqrt(x * x + y * y + z * z)
    for degree in (63, 127):         # odd: the origin is not a node, so samples stay finite
        t, ct = _best(lambda: ChebTucker.from_function(full, degree=degree, rtol=1e-7), 1)
        far = np.linalg.norm(pts, axis=1) > 0.1
        rows.append({"kernel": "1/|x| (singular)", "rtol": 1e-7, "degrees": ct.degrees,
                     "resolved": False, "ranks": ct.ranks, "build_s": t,
                     "max_rel_err": _rel_max(ct(pts[far]), full(*pts[far].T))})
    return rows


SECTIONS = {"spectral": bench_spectral, "newton": bench_newton, "ranks": bench_ranks, "build": bench_build,
            "tensorly": bench_tensorly, "grid": bench_grid, "throughput": bench_throughput,
            "particles": bench_particles}


# ---------------------------------------------------------------------------- output
def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return "(" + ",".join(_fmt(a) for a in v) + ")"
    return str(v)


def _table(title, rows):
    print(f"\n== {title} ==")
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def _plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not results.get("ranks") and not results.get("build"):
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ranks = results.get("ranks", [])
    for name in dict.fromkeys(r["function"] for r in ranks):
        rs = [r for r in ranks if r["function"] == name]
        axes[0].semilogx([r["rtol"] for r in rs], [max(r["ranks"]) for r in rs], "o-", label=name)
        axes[1].loglog([r["rtol"] for r in rs], [r["max_rel_err"] for r in rs], "o-", label=name)
    axes[0].set_xlabel("rtol"); axes[0].set_ylabel("max Tucker rank")
    axes[0].set_title("Tucker rank of the coefficient tensor")
    axes[1].set_xlabel("rtol"); axes[1].set_ylabel("max rel. error on random points")
    axes[1].set_title("Accuracy vs tolerance")
    if ranks:
        for ax in axes[:2]:
            ax.invert_xaxis()
            ax.legend(fontsize=8)
    build = results.get("build", [])
    if build:
        labels = [r["function"].split("(")[0] for r in build]
        xs = np.arange(len(build))
        axes[2].bar(xs - 0.2, [r["naive_hosvd_s"] for r in build], 0.4, label="naive full-SVD HOSVD")
        axes[2].bar(xs + 0.2, [r["ours_hosvd_s"] for r in build], 0.4, label="ST-HOSVD (ours, svd=auto)")
        axes[2].set_xticks(xs, labels); axes[2].set_ylabel("seconds (1 thread)")
        axes[2].set_title(f"Tucker of the m={build[0]['m']} coefficient tensor"); axes[2].legend(fontsize=8)
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lrsolve bench tensors", description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--points", type=positive_int, default=100_000, help="random test points")
    parser.add_argument("--throughput-points", type=positive_int, default=1_000_000)
    parser.add_argument("--m", type=positive_int, default=129, help="points per axis for build / tensorly")
    parser.add_argument("--sigma", type=positive_float, default=0.25, help="range-separation length")
    parser.add_argument("--rtols", type=unit_interval, nargs="+", default=[1e-4, 1e-6, 1e-8, 1e-10])
    parser.add_argument("--degree-slater", type=positive_int, default=128)
    parser.add_argument("--build-rtol", type=unit_interval, default=1e-8)
    parser.add_argument("--grid-n", type=positive_int, default=192)
    parser.add_argument("--grid-degree", type=positive_int, default=64)
    parser.add_argument("--grid-rtol", type=unit_interval, default=1e-6)
    parser.add_argument("--newton-sigmas", type=positive_float, nargs="+", default=[0.4, 0.2, 0.1, 0.05])
    parser.add_argument("--particle-sigmas", type=positive_float, nargs="+", default=[0.25])
    parser.add_argument("--particle-rtol", type=unit_interval, default=1e-8)
    parser.add_argument("--particles-large", action="store_true", help="add a 4096-particle cloud")
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--threads", type=positive_int, default=1, help="BLAS / torch threads for timing")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--name", default="tensors")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.throughput_points, args.m = 5000, 20_000, 33
        args.rtols, args.grid_n, args.grid_degree, args.repeat = [1e-4, 1e-8], 48, 32, 1
        args.degree_slater, args.newton_sigmas = 32, [0.4]
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(args.threads)
    except ImportError:  # pragma: no cover
        limiter = None
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        pass
    rng = as_generator(args.seed)
    results = {"command": "lrsolve bench tensors " + " ".join(argv if argv is not None else sys.argv[1:]),
               "threads": args.threads, "machine": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    start = time.perf_counter()
    for name in args.sections:
        t = time.perf_counter()
        rows = SECTIONS[name](args, rng)
        results[name] = rows
        _table(f"{name} ({time.perf_counter() - t:.1f} s)", rows)
    results["total_s"] = time.perf_counter() - start
    if limiter is not None:
        limiter.unregister() if hasattr(limiter, "unregister") else None
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, f"{args.name}.json")
    save_json(json_path, results, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    png = _plot(results, os.path.join(args.out, f"{args.name}.png"))
    print(f"\nwrote {json_path}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
