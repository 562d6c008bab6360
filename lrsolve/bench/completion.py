"""``lrsolve bench completion``: robust AltMin (sketch and exact) against a SoftImpute baseline.

Four measurements, each written to ``benchmarks/results/completion.json`` with a plot
``completion.png``:

1. *recovery* - a random rank-10, 2000 x 2000 incoherent matrix observed at 5x the
   degrees of freedom (sampling rate ~0.05): relative Frobenius error and error-vs-time
   of sketch AltMin, exact AltMin and SoftImpute.
2. *scaling* - time per sweep of both AltMin solvers as ``|Omega|`` grows 16x at fixed
   rank (``n`` from 1000 to 4000 at a fixed rate), with the fitted exponent of
   ``time ~ |Omega|^a``.
3. *speed* - sketch vs exact at ranks >= 20, both run to the same training tolerance:
   wall time, sweeps, time per sweep, final error, and the ratio.
4. *real* - held-out RMSE on the camera image and the digits matrix, AltMin vs
   SoftImpute, each with its hyper-parameters (rank / ridge, lambda) picked on a
   validation split carved out of the training entries, then refit on all of them.

The SoftImpute baseline (Mazumder, Hastie, Tibshirani 2010) is written here: iterate
``Z <- S_lambda(P_Omega(M) + P_Omega^perp(Z))`` with the fill kept as sparse + low-rank
and the SVD by a warm-started randomized subspace iteration (dense SVD on small
matrices).  Absolute seconds depend on the machine; ratios in one process are the
numbers to read.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from ..cli import nonnegative_int, positive_int, unit_interval
from ..io import save_figure, save_json
from ..seeding import as_generator

__all__ = ["soft_impute", "main"]


def _predict(U, s, V, rows, cols):
    out = np.empty(rows.size)
    block = 1 << 16
    for i in range(0, rows.size, block):
        sl = slice(i, i + block)
        out[sl] = np.einsum("ij,ij->i", U[rows[sl]] * s, V[cols[sl]])
    return out


def soft_impute(rows, cols, values, shape, lam, *, max_rank=100, maxiter=200, rtol=1e-5,
                test=None, seed=0, warm=None, dense_limit=200_000):
    """SoftImpute: nuclear-norm regularised completion ``min 1/2||P(X - M)||^2 + lam ||X||_*``.

    Returns ``(U, s, V, info)`` with ``X = U diag(s) V^T``; ``info["history"]`` holds
    cumulative time and (with ``test``) held-out RMSE per iteration.
    """
    m, n = shape
    rng = as_generator(seed)
    t0 = time.perf_counter()
    if warm is None:
        U = np.zeros((m, 0)); s = np.zeros(0); V = np.zeros((n, 0))
    else:
        U, s, V = warm
    dense = m * n <= dense_limit
    hist = {"time": [], "test_rmse": [], "rank": []}
    it = 0
    for it in range(1, maxiter + 1):
        resid = values - _predict(U, s, V, rows, cols)
        S = sp.csr_matrix((resid, (rows, cols)), shape=shape)
        if dense:
            Y = S.toarray() + (U * s) @ V.T
            Uy, sy, Vty = np.linalg.svd(Y, full_matrices=False)
            Vy = Vty.T
        else:
            width = min(max_rank + 10, min(m, n))
            start = rng.standard_normal((n, width))
            if V.shape[1]:
                start[:, :V.shape[1]] = V
            mat = lambda X: S @ X + (U * s) @ (V.T @ X)        # noqa: E731
            rmat = lambda X: S.T @ X + (V * s) @ (U.T @ X)     # noqa: E731
            Q, _ = np.linalg.qr(mat(start))
            Q, _ = np.linalg.qr(mat(np.linalg.qr(rmat(Q))[0]))
            Bt = rmat(Q)
            Ub, sy, Vty = np.linalg.svd(Bt.T, full_matrices=False)
            Uy, Vy = Q @ Ub, Vty.T
        s_new = np.maximum(sy - lam, 0.0)
        keep = min(int((s_new > 0).sum()), max_rank)
        U_new, s_new, V_new = Uy[:, :keep], s_new[:keep], Vy[:, :keep]
        # relative change ||X_new - X||_F^2 / ||X||_F^2 through the factors
        cross = np.sum(((U.T @ U_new) * s[:, None]) * ((V.T @ V_new) * s_new[None, :])) \
            if keep and s.size else 0.0
        old = float(np.sum(s ** 2)); new = float(np.sum(s_new ** 2))
        change = (old + new - 2 * cross) / max(old, 1e-300)
        U, s, V = U_new, s_new, V_new
        hist["time"].append(time.perf_counter() - t0)
        hist["rank"].append(keep)
        if test is not None:
            pred = _predict(U, s, V, test[0], test[1])
            hist["test_rmse"].append(float(np.sqrt(np.mean((pred - test[2]) ** 2))))
        if it > 1 and change < rtol:
            break
    return U, s, V, {"iterations": it, "history": hist, "time": time.perf_counter() - t0}


def _truth_error_tracker(truth):
    from ..problems.completion import completion_error
    curve = []
    spent = [0.0]
    t_start = [time.perf_counter()]

    def callback(sweep, U, V):
        t = time.perf_counter()
        curve.append((t - t_start[0] - spent[0], completion_error(U, V, truth)))
        spent[0] += time.perf_counter() - t   # the tracking itself is not timed
    return callback, curve, t_start, spent


def _run_altmin(P, solver, rank, *, rtol, maxiter=100, reg=0.0, track=True, **kw):
    import lrsolve as lr
    from ..problems.completion import completion_error
    callback, curve, t_start, spent = _truth_error_tracker(P.truth) if track else (None, [], [0], [0.0])
    t_start[0] = time.perf_counter()
    info = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=rank,
                                      solver=solver, rtol=rtol, maxiter=maxiter, reg=reg,
                                      callback=callback, test=P.test, **kw)
    U, V = info
    wall = time.perf_counter() - t_start[0]
    h = info.history
    per_sweep = np.diff([info.stats["init_time"]] + h["time"])
    # the error tracking (callback) is not the solver's time
    tracking = spent[0]
    return {"solver": solver, "rank": rank, "reg": reg, "sweeps": info.iterations,
            "wall_seconds": wall, "init_seconds": info.stats["init_time"],
            "altmin_seconds": info.time - tracking, "tracking_seconds": tracking,
            "sweep_seconds_median": float(np.median(per_sweep)),
            "rel_frobenius_error": completion_error(U, V, P.truth),
            "test_rmse": h["test_rmse"][-1], "train_rel_residual": h["train_rel_residual"][-1],
            "reason": info.reason, "inner_iterations": h["inner_iterations"],
            "curve": [(float(t), float(e)) for t, e in curve]}


def recovery(n=2000, rank=10, oversampling=5.0, seed=0, soft=True, progress=print):
    import lrsolve as lr
    P = lr.problems.completion_random(n, rank=rank, oversampling=oversampling, seed=seed)
    out = {"shape": P.shape, "rank": rank, "nnz": P.nnz, "rate": P.meta["rate"],
           "oversampling": oversampling, "runs": []}
    for solver in ("sketch", "exact"):
        r = _run_altmin(P, solver, rank, rtol=1e-10)
        out["runs"].append(r)
        progress(f"recovery {n}x{n} k={rank} {solver:6s}: err {r['rel_frobenius_error']:.2e} "
                 f"in {r['altmin_seconds']:.2f}s, {r['sweeps']} sweeps")
    if soft:
        from ..problems.completion import completion_error
        lam_max = float(sp.linalg.svds(sp.csr_matrix((P.values, (P.rows, P.cols)), shape=P.shape),
                                       k=1, return_singular_vectors=False)[0])
        # a decreasing lambda path with warm starts, as SoftImpute is used in practice
        t0 = time.perf_counter()
        warm, curve = None, []
        for frac in (0.1, 0.03, 0.01, 0.003, 0.001):
            U, s, V, info = soft_impute(P.rows, P.cols, P.values, P.shape, frac * lam_max,
                                        max_rank=4 * rank, maxiter=40, rtol=1e-9, warm=warm, seed=seed)
            warm = (U, s, V)
            curve.append((time.perf_counter() - t0, completion_error(U * s, V, P.truth)))
        out["runs"].append({"solver": "softimpute", "seconds": time.perf_counter() - t0,
                            "rel_frobenius_error": curve[-1][1], "rank": int(s.size),
                            "curve": curve})
        progress(f"recovery softimpute: err {curve[-1][1]:.2e} in {curve[-1][0]:.2f}s")
    return out


def scaling(sizes=(1000, 1414, 2000, 2828, 4000), rank=10, rate=0.05, sweeps=6, seed=0,
            progress=print):
    import lrsolve as lr
    rows = []
    for n in sizes:
        P = lr.problems.completion_random(n, rank=rank, rate=rate, seed=seed, test_size=100)
        for solver in ("sketch", "exact"):
            info = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=rank,
                                              solver=solver, maxiter=sweeps, rtol=0)
            U, V = info
            per = np.diff([info.stats["init_time"]] + info.history["time"])
            rows.append({"n": n, "nnz": P.nnz, "solver": solver,
                         "sweep_seconds": float(np.median(per[1:]))})
            progress(f"scaling n={n} |Omega|={P.nnz} {solver:6s}: {rows[-1]['sweep_seconds']:.4f} s/sweep")
    fits = {}
    for solver in ("sketch", "exact"):
        x = np.log([r["nnz"] for r in rows if r["solver"] == solver])
        y = np.log([r["sweep_seconds"] for r in rows if r["solver"] == solver])
        fits[solver] = float(np.polyfit(x, y, 1)[0])
    nnz = [r["nnz"] for r in rows]
    return {"rank": rank, "rate": rate, "rows": rows, "exponent": fits,
            "nnz_range": max(nnz) / min(nnz)}


def speed(ranks=(20, 40), n=2000, rate=0.2, seed=0, repeats=3, progress=print, **kw):
    """Sketch (kept preconditioners, the default), sketch without reuse (a fresh
    ``s = 4k`` CountSketch factor every row and sweep) and exact, all to the same training
    tolerance; runs interleaved ``repeats`` times on the same problem, medians reported
    (the machine is shared: interleaving spreads its load evenly over the solvers)."""
    import lrsolve as lr
    variants = {"sketch": {}, "sketch_noreuse": {"reuse": False}, "exact": {}}
    out = []
    for k in ranks:
        P = lr.problems.completion_random(n, rank=k, rate=rate, seed=seed, test_size=1000)
        runs = {name: [] for name in variants}
        for _ in range(max(int(repeats), 1)):
            for name, extra in variants.items():
                solver = "exact" if name == "exact" else "sketch"
                runs[name].append(_run_altmin(P, solver, k, rtol=1e-9, track=False, **extra, **kw))
        res = {}
        for name, rs in runs.items():
            r = dict(rs[0])
            r.pop("curve", None)
            for key in ("altmin_seconds", "init_seconds", "wall_seconds", "sweep_seconds_median"):
                r[key] = float(np.median([x[key] for x in rs]))
                r[key + "_all"] = [float(x[key]) for x in rs]
            res[name] = r
        rec = {"rank": k, "shape": P.shape, "nnz": P.nnz, "per_row": P.nnz / n, "repeats": repeats}
        rec.update(res)
        ex, sk, nr = res["exact"], res["sketch"], res["sketch_noreuse"]
        rec["speedup_total"] = ex["altmin_seconds"] / sk["altmin_seconds"]
        rec["speedup_sweeps_only"] = ((ex["altmin_seconds"] - ex["init_seconds"])
                                      / (sk["altmin_seconds"] - sk["init_seconds"]))
        rec["speedup_per_sweep"] = ex["sweep_seconds_median"] / sk["sweep_seconds_median"]
        rec["speedup_total_noreuse"] = ex["altmin_seconds"] / nr["altmin_seconds"]
        out.append(rec)
        progress(f"speed k={k} |Omega|/row={rec['per_row']:.0f}: sketch {sk['altmin_seconds']:.2f}s "
                 f"({sk['sweeps']} sweeps, err {sk['rel_frobenius_error']:.1e}), "
                 f"no-reuse sketch {nr['altmin_seconds']:.2f}s ({nr['sweeps']} sweeps), "
                 f"exact {ex['altmin_seconds']:.2f}s ({ex['sweeps']} sweeps, "
                 f"err {ex['rel_frobenius_error']:.1e}); init {sk['init_seconds']:.2f}/{ex['init_seconds']:.2f}s "
                 f"-> exact/sketch {rec['speedup_total']:.2f} total, {rec['speedup_sweeps_only']:.2f} "
                 f"without init, {rec['speedup_per_sweep']:.2f} per sweep (no reuse: "
                 f"{rec['speedup_total_noreuse']:.2f})")
    return out


def crossover(ranks=(10, 20, 40, 80), n=2000, rate=0.4, sweeps=6, seed=0, progress=print):
    """Seconds per sweep (median over ``sweeps``, the first - where the sketch solver
    builds its kept preconditioners - included) of sketch vs exact as the rank grows at
    fixed ``|Omega_j|``."""
    import lrsolve as lr
    out = []
    for k in ranks:
        P = lr.problems.completion_random(n, rank=k, rate=rate, seed=seed, test_size=100)
        rec = {"rank": k, "per_row": P.nnz / n}
        for solver in ("sketch", "exact"):
            info = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=k,
                                              solver=solver, maxiter=sweeps, rtol=0)
            U, V = info
            per = np.diff([info.stats["init_time"]] + info.history["time"])
            rec[solver] = float(np.median(per))
            rec[f"{solver}_residual"] = info.history["train_rel_residual"][-1]
        rec["exact_over_sketch"] = rec["exact"] / rec["sketch"]
        out.append(rec)
        progress(f"crossover k={k} |Omega|/row={rec['per_row']:.0f}: sketch {rec['sketch']:.3f} "
                 f"s/sweep, exact {rec['exact']:.3f} s/sweep, exact/sketch {rec['exact_over_sketch']:.2f}")
    return out


def _split(P, fraction, seed):
    rng = as_generator(seed)
    perm = rng.permutation(P.nnz)
    n_val = int(fraction * P.nnz)
    val, fit = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return (P.rows[fit], P.cols[fit], P.values[fit]), (P.rows[val], P.cols[val], P.values[val])


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def real(seed=0, progress=print):
    """Held-out RMSE on the camera image and the digits matrix; tuning on a validation split."""
    import lrsolve as lr
    cases = [("camera keep=0.3", lr.problems.completion_image("camera", keep=0.3, seed=seed),
              (10, 20, 40, 60), (0.3, 1.0, 3.0, 10.0)),
             ("digits keep=0.5", lr.problems.completion_digits(keep=0.5, seed=seed),
              (5, 10, 20), (0.3, 1.0, 3.0, 10.0))]
    out = []
    for name, P, ranks, regs in cases:
        fit, val = _split(P, 0.1, seed)
        rec = {"problem": name, "shape": P.shape, "nnz": P.nnz, "test_size": int(P.test[0].size)}
        # AltMin: grid over (rank, reg) on the validation split
        best = None
        for k in ranks:
            for reg in regs:
                U, V = lr.completion.altmin(*fit, P.shape, rank=k, reg=reg, maxiter=100)
                e = _rmse(lr.completion.predict(U, V, val[0], val[1]), val[2])
                if best is None or e < best[0]:
                    best = (e, k, reg)
        _, k, reg = best
        for solver in ("sketch", "exact"):
            t0 = time.perf_counter()
            info = lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=k,
                                              reg=reg, maxiter=100, solver=solver, test=P.test)
            U, V = info
            rec[f"altmin_{solver}"] = {"rank": k, "reg": reg, "val_rmse": best[0],
                                       "test_rmse": info.history["test_rmse"][-1],
                                       "seconds": time.perf_counter() - t0,
                                       "sweeps": info.iterations}
        # SoftImpute: a decreasing lambda path with warm starts (how it is used in
        # practice); lambda picked on the validation split, then the same path refit on
        # all training entries down to the chosen lambda.
        fracs = (0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002, 0.001)

        def path(entries, stop_at=None, test=None):
            lam_max = float(np.linalg.svd(sp.csr_matrix((entries[2], (entries[0], entries[1])),
                                                        shape=P.shape).toarray(),
                                          compute_uv=False)[0])
            warm, scores = None, []
            for frac in fracs:
                U, s, V, info = soft_impute(*entries, P.shape, frac * lam_max, max_rank=150,
                                            warm=warm, seed=seed, test=test)
                warm = (U, s, V)
                scores.append((frac, U, s, V, info))
                if stop_at is not None and frac == stop_at:
                    break
            return scores

        best_s = min(((_rmse(_predict(U, s, V, val[0], val[1]), val[2]), frac)
                      for frac, U, s, V, _ in path(fit)), key=lambda t: t[0])
        t0 = time.perf_counter()
        frac, U, s, V, info = path((P.rows, P.cols, P.values), stop_at=best_s[1], test=P.test)[-1]
        rec["softimpute"] = {"lambda_fraction": frac, "val_rmse": best_s[0],
                             "test_rmse": info["history"]["test_rmse"][-1], "rank": int(s.size),
                             "seconds": time.perf_counter() - t0, "iterations": info["iterations"]}
        rec["mean_fill_rmse"] = _rmse(np.full(P.test[2].shape, P.values.mean()), P.test[2])
        out.append(rec)
        progress(f"real {name}: altmin sketch RMSE {rec['altmin_sketch']['test_rmse']:.4f} "
                 f"(rank {k}, reg {reg}), exact {rec['altmin_exact']['test_rmse']:.4f}, "
                 f"softimpute {rec['softimpute']['test_rmse']:.4f} (rank {s.size}), "
                 f"mean fill {rec['mean_fill_rmse']:.4f}")
    return out


def _plot(record, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if "recovery" in record:
        ax = axes[0]
        for r in record["recovery"]["runs"]:
            if r["curve"]:
                t, e = zip(*r["curve"])
                ax.loglog(t, e, "o-", ms=3, label=r["solver"])
        ax.set_xlabel("seconds"); ax.set_ylabel("relative Frobenius error")
        shp = record["recovery"]["shape"]
        ax.set_title(f"recovery {shp[0]}x{shp[1]}, k={record['recovery']['rank']}")
        ax.legend()
    if "scaling" in record:
        ax = axes[1]
        for solver in ("sketch", "exact"):
            rows = [r for r in record["scaling"]["rows"] if r["solver"] == solver]
            ax.loglog([r["nnz"] for r in rows], [r["sweep_seconds"] for r in rows], "o-",
                      label=f"{solver} (slope {record['scaling']['exponent'][solver]:.2f})")
        ax.set_xlabel("|Omega|"); ax.set_ylabel("seconds per sweep")
        ax.set_title(f"time per sweep, k={record['scaling']['rank']}")
        ax.legend()
    if "real" in record:
        ax = axes[2]
        names = [r["problem"] for r in record["real"]]
        x = np.arange(len(names))
        for i, key in enumerate(("altmin_sketch", "altmin_exact", "softimpute")):
            ax.bar(x + (i - 1) * 0.25, [r[key]["test_rmse"] for r in record["real"]], 0.25, label=key)
        ax.set_xticks(x, names); ax.set_ylabel("held-out RMSE"); ax.legend()
        ax.set_title("real data")
    if "speed" in record and "real" not in record:
        ax = axes[2]
        ks = [r["rank"] for r in record["speed"]]
        x = np.arange(len(ks))
        for i, key in enumerate(("sketch", "sketch_noreuse", "exact")):
            if all(key in r for r in record["speed"]):
                ax.bar(x + (i - 1) * 0.25, [r[key]["altmin_seconds"] for r in record["speed"]],
                       0.25, label=key)
        ax.set_xticks(x, [f"k={k}" for k in ks]); ax.set_ylabel("seconds to tol 1e-9 (median)")
        ax.set_title("sketch vs exact"); ax.legend()
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def _warm_up():
    """Compile the numba kernels before anything is timed."""
    import lrsolve as lr
    P = lr.problems.completion_random(60, rank=2, rate=0.5, seed=0, test_size=10)
    for solver, reuse in (("sketch", True), ("sketch", False), ("exact", True)):
        lr.completion.altmin(P.rows, P.cols, P.values, P.shape, rank=2, solver=solver,
                             reuse=reuse, maxiter=2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lrsolve bench completion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["recovery", "scaling", "speed", "real"],
                        choices=["recovery", "scaling", "speed", "real", "crossover"])
    parser.add_argument("--crossover-ranks", type=positive_int, nargs="+", default=[10, 20, 40, 80])
    parser.add_argument("--recovery-n", type=positive_int, default=2000)
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[1000, 1414, 2000, 2828, 4000])
    parser.add_argument("--rate", type=unit_interval, default=0.05, help="sampling rate for --parts scaling")
    parser.add_argument("--ranks", type=positive_int, nargs="+", default=[20, 40], help="ranks for --parts speed")
    parser.add_argument("--speed-n", type=positive_int, default=2000)
    parser.add_argument("--speed-rate", type=unit_interval, default=0.2)
    parser.add_argument("--repeats", type=positive_int, default=3, help="interleaved repeats for --parts speed")
    parser.add_argument("--no-softimpute", action="store_true", help="skip SoftImpute in recovery")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", default="benchmarks/results", help="folder for JSON + PNG")
    parser.add_argument("--name", default="completion", help="file stem of the outputs")
    args = parser.parse_args(argv)
    record = {"command": "lrsolve bench completion " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": platform.platform(), "processor": platform.processor()}
    try:
        import threadpoolctl
        record["blas_threads"] = [i.get("num_threads") for i in threadpoolctl.threadpool_info()]
    except Exception:
        pass
    _warm_up()
    if "recovery" in args.parts:
        record["recovery"] = recovery(args.recovery_n, seed=args.seed, soft=not args.no_softimpute)
    if "scaling" in args.parts:
        record["scaling"] = scaling(tuple(args.sizes), rate=args.rate, seed=args.seed)
        print(f"scaling exponents over {record['scaling']['nnz_range']:.1f}x |Omega|: "
              + ", ".join(f"{k} {v:.3f}" for k, v in record["scaling"]["exponent"].items()))
    if "speed" in args.parts:
        record["speed"] = speed(tuple(args.ranks), n=args.speed_n, rate=args.speed_rate,
                                seed=args.seed, repeats=args.repeats)
    if "crossover" in args.parts:
        record["crossover"] = crossover(tuple(args.crossover_ranks), seed=args.seed)
    if "real" in args.parts:
        record["real"] = real(seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / f"{args.name}.json", record, default=float)
    _plot(record, out / f"{args.name}.png")
    print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.png')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
