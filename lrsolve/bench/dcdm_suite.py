"""DCDM in the benchmarks: the hook for ``lrsolve bench poisson`` and the DCDM goal table.

* :func:`dcdm_entry` - called by :mod:`lrsolve.bench.poisson` once per dimension; returns
  the shipped model for that dimension (raises ``ValueError`` when none ships, and the
  suite then skips DCDM for that dimension, saying why).
* ``python -m lrsolve.bench.dcdm_suite`` - the issue's measurements: iterations and
  wall time to ``rtol`` of DCDM (each shipped model),
  CG and IC(0)-PCG on 2D Poisson at several sizes; unseen right-hand sides and a
  smoothly varying coefficient.  Writes ``benchmarks/results/dcdm.json`` and a plot.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
from ..cli import positive_int, unit_interval
from ..io import save_figure, save_json

__all__ = ["dcdm_entry", "run_goals", "main"]


def dcdm_entry(dim: int = 2, name: str | None = None):
    """The pretrained DCDM model ``lrsolve bench poisson`` uses for ``dim``-D problems.

    Parameters
    ----------
    dim : int
        Grid dimension of the suite's problems.
    name : str, optional
        A model of ``lr.dcdm.PRETRAINED``; ``"poisson{dim}d"`` by default.

    Raises
    ------
    ValueError
        When no model for ``dim`` ships.

    Examples
    --------
    >>> dcdm_entry(2).dim
    2
    """
    from ..dcdm import load_pretrained
    return load_pretrained(name or f"poisson{int(dim)}d")


# The shipped 2D models (lr.dcdm.PRETRAINED), written out so importing this module
# does not import torch.
MODELS = ("poisson2d", "poisson2d-paper", "poisson2d-20min", "poisson2d-multilevel")


def _coefficient(X, Y):
    # Smoothly varying, between about 0.37 and 2.7: exp(sin(2 pi x) cos(2 pi y)).
    return np.exp(np.sin(2 * np.pi * X) * np.cos(2 * np.pi * Y))


def _one(method, A, b, rtol, **options) -> dict:
    import lrsolve as lr
    t0 = time.perf_counter()
    res = lr.solve(A, b, method=method, rtol=rtol, **options)
    wall = time.perf_counter() - t0
    x = res.x
    relres = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
    out = {"iterations": int(res.iterations), "converged": bool(res.converged), "seconds": wall,
           "relres": relres, "history": [float(h) for h in res.residuals]}
    if method == "dcdm":
        out["network_seconds"] = float(res.stats["network_time"])
        out["max_a_cosine"] = float(res.stats["max_a_cosine"])
        out["stall_restarts"] = int(res.stats["stall_restarts"])
    return out


def run_goals(sizes=(64, 128, 256), rtol: float = 1e-6,
              models=MODELS,
              seed: int = 0, variants: bool = True, progress: bool = True) -> dict:
    """Measure the issue's goals; returns a JSON-able record."""
    import lrsolve as lr
    from ..dcdm import load_pretrained
    loaded = {name: load_pretrained(name) for name in models}
    records = []
    cases = [("random", None, n) for n in sizes]
    if variants:
        cases += [(rhs, None, n) for rhs in ("point", "smooth", "ones") for n in sizes[:2]]
        cases += [("random", "smooth", n) for n in sizes[:2]]
    for rhs, coeff, n in cases:
        P = lr.problems.poisson(n=n, dim=2, rhs=rhs, seed=seed,
                                coefficient=_coefficient if coeff else None)
        row = {"n": n, "rhs": rhs, "coefficient": coeff or "constant", "solvers": {}}
        row["solvers"]["cg"] = _one("cg", P.A, P.b, rtol)
        row["solvers"]["pcg-ic0"] = _one("pcg-ic0", P.A.to_csr(), P.b, rtol)
        for name, model in loaded.items():
            row["solvers"][f"dcdm:{name}"] = _one("dcdm", P.A, P.b, rtol, model=model)
        records.append(row)
        if progress:
            its = {k: v["iterations"] for k, v in row["solvers"].items()}
            print(f"[dcdm bench] n={n} rhs={rhs} coefficient={coeff or 'constant'}: {its}",
                  file=sys.stderr, flush=True)
    import torch
    return {"suite": "dcdm", "rtol": rtol, "seed": seed, "models": {
        name: getattr(m, "meta", {}) | {"config": m.config()} for name, m in loaded.items()},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "platform": platform.platform()},
        "records": records}


def format_table(result: dict) -> str:
    """Iterations (and seconds) per case and solver."""
    names = list(result["records"][0]["solvers"])
    head = f"{'n':>4} {'rhs':<7} {'coef':<8} " + " ".join(f"{s:>24}" for s in names)
    lines = [head, "-" * len(head)]
    for row in result["records"]:
        cells = []
        for s in names:
            r = row["solvers"][s]
            mark = "" if r["converged"] else "!"
            cells.append(f"{r['iterations']:>6}{mark} it {r['seconds']:>8.2f} s".rjust(24))
        lines.append(f"{row['n']:>4} {row['rhs']:<7} {row['coefficient']:<8} " + " ".join(cells))
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Convergence histories of the random-RHS cases."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in result["records"] if r["rhs"] == "random" and r["coefficient"] == "constant"]
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.8), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        for name, r in row["solvers"].items():
            h = np.asarray(r["history"])
            ax.semilogy(h / h[0], label=f"{name} ({r['iterations']})")
        ax.axhline(result["rtol"], color="grey", lw=0.8, ls="--")
        ax.set_title(f"2D Poisson n={row['n']}, random rhs")
        ax.set_xlabel("iteration")
        ax.set_ylabel("||r|| / ||b||")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lrsolve.bench.dcdm_suite",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--rtol", type=unit_interval, default=1e-6)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--no-variants", action="store_true",
                        help="only the random right-hand side")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="dcdm")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    result = run_goals(tuple(args.sizes), args.rtol, tuple(args.models),
                       variants=not args.no_variants)
    result["command"] = "python -m lrsolve.bench.dcdm_suite " + " ".join(
        argv if argv is not None else sys.argv[1:])
    print(format_table(result))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / f"{args.name}.json", result)
    plot(result, out / f"{args.name}.png")
    print(f"\nwrote {out / (args.name + '.json')} and {out / (args.name + '.png')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
