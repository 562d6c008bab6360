"""LSM (lrsolve) against FNO (the ``neuraloperator`` package) on lrsolve's Darcy data.

Both models are trained by the same loop (:func:`lrsolve.neural.train`: relative-L2 loss,
Adam + one-cycle, batch 20, lr 1e-3) on the same data (``darcy_dataset(n, train, seed=0)``,
test set ``seed=1``), at the same resolution, with similar parameter counts and the same
CPU-time budget (``--budget`` CPU seconds of training each, one thread each; ``--wall-budget``
caps the wall clock on a shared machine).  With ``--parallel`` the two trainings run
concurrently as two worker processes of this script (each ``torch.set_num_threads(1)``)
and the parent combines their results; without it they run one after the other in this
process.

Writes ``<out>/<tag>.json`` (histories, final held-out relative L2, parameters, epochs,
CPU and wall seconds, the paper's 85x85 figures) and ``<out>/<tag>.png`` (test error
against CPU time, and one held-out sample: input / truth / LSM / FNO / errors); prints a
table.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_lsm_vs_fno.py --budget 900 --parallel
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAPER = {"resolution": 85, "train": 1000, "test": 200, "LSM": 0.0065, "FNO": 0.0108,
         "source": "Wu et al., ICML 2023, Table 2 (500 epochs on a GPU)"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--budget", type=float, default=900.0, help="CPU seconds of training per model")
    p.add_argument("--wall-budget", type=float, default=None, help="wall-clock cap per model (s)")
    p.add_argument("--epochs", type=int, default=500, help="upper bound; the budget usually ends first")
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--models", nargs="+", default=["lsm", "fno"], choices=["lsm", "fno"])
    p.add_argument("--lsm-width", type=int, default=16)
    p.add_argument("--lsm-levels", type=int, default=5)
    p.add_argument("--lsm-patch", type=int, default=4)
    p.add_argument("--fno-width", type=int, default=32)
    p.add_argument("--fno-modes", type=int, default=24,
                   help="neuraloperator n_modes per axis (24 = the FNO paper's 12 per corner)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", action="store_true", help="train the models concurrently")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--tag", default="lsm_vs_fno")
    p.add_argument("--worker", choices=["lsm", "fno"], help=argparse.SUPPRESS)
    return p


def _data(args):
    import lrsolve as lr
    train = lr.neural.darcy_dataset(n=args.n, samples=args.train, seed=0)
    test = lr.neural.darcy_dataset(n=args.n, samples=args.test, seed=1)
    return train, test


def _model(name: str, args):
    import torch
    torch.manual_seed(args.seed)
    if name == "lsm":
        import lrsolve as lr
        return lr.neural.LSM(width=args.lsm_width, levels=args.lsm_levels,
                             patch_size=args.lsm_patch), {
            "width": args.lsm_width, "levels": args.lsm_levels, "patch_size": args.lsm_patch,
            "num_tokens": 4, "num_basis": 12, "heads": 8}
    try:
        from neuralop.models import FNO
    except ImportError as exc:   # pragma: no cover - depends on the environment
        raise SystemExit("the FNO peer needs `pip install -c constraints.txt neuraloperator`") from exc
    modes = (args.fno_modes, args.fno_modes)
    return FNO(n_modes=modes, hidden_channels=args.fno_width, in_channels=1, out_channels=1), {
        "package": "neuraloperator", "n_modes": list(modes), "hidden_channels": args.fno_width}


def run_one(name: str, args) -> dict:
    """Train one model under the budget; return its record (and save the fit)."""
    import torch
    import lrsolve as lr
    torch.set_num_threads(1)
    train, test = _data(args)
    model, spec = _model(name, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    fit = lr.neural.train(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, test=test, time_budget=args.budget, clock="cpu",
                          wall_budget=args.wall_budget, progress=False,
                          checkpoint=out / f"{args.tag}_{name}_checkpoint.pt", resume=False,
                          log=lambda row: (log_rows.append(row),
                                           print(name, json.dumps(row), flush=True)))
    record = {
        "model": name.upper(), "spec": spec,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "test_rel_l2": fit.evaluate(test), "train_rel_l2": fit.evaluate(train[:200]),
        "epochs": len(fit.history["epoch"]), "cpu_seconds_training": fit.history["seconds"][-1],
        "wall_seconds_training": fit.history["wall_seconds"][-1],
        "cpu_seconds_total": time.process_time() - c0, "wall_seconds_total": time.perf_counter() - t0,
        "history": fit.history,
        "sample_prediction": fit.predict(test.a[0]).tolist(),
    }
    if name == "lsm":
        fit.save(out / f"{args.tag}_lsm_fit.pt")
    return record


def _table(records: list[dict]) -> str:
    lines = [f"{'model':6s} {'params':>9s} {'epochs':>6s} {'CPU s':>7s} {'wall s':>7s} "
             f"{'test relL2':>10s} {'paper 85x85':>11s}"]
    for r in records:
        lines.append(f"{r['model']:6s} {r['parameters']:9d} {r['epochs']:6d} "
                     f"{r['cpu_seconds_training']:7.0f} {r['wall_seconds_training']:7.0f} "
                     f"{r['test_rel_l2']:10.4f} {PAPER[r['model']]:11.4f}")
    return "\n".join(lines)


def _plot(records: list[dict], test, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2 + 2 * len(records), figsize=(5 * (2 + len(records)), 4),
                             gridspec_kw={"width_ratios": [1.6] + [1] * (1 + 2 * len(records))})
    ax = axes[0]
    for r in records:
        h = r["history"]
        ax.semilogy(h["seconds"], h["test_rel_l2"], "o-", ms=3, label=f"{r['model']} ({r['parameters']/1e6:.2f}M)")
        ax.axhline(PAPER[r["model"]], ls=":", color=ax.lines[-1].get_color(),
                   label=f"{r['model']} paper (85², GPU)")
    ax.set_xlabel("training CPU seconds")
    ax.set_ylabel("held-out relative L2")
    ax.legend(fontsize=8)
    u = test.u[0]
    axes[1].imshow(u, origin="lower")
    axes[1].set_title("truth u (test 0)")
    for k, r in enumerate(records):
        pred = np.array(r["sample_prediction"])
        axes[2 + 2 * k].imshow(pred, origin="lower")
        axes[2 + 2 * k].set_title(r["model"])
        axes[3 + 2 * k].imshow(pred - u, origin="lower", cmap="RdBu_r")
        axes[3 + 2 * k].set_title(f"{r['model']} error {np.linalg.norm(pred - u) / np.linalg.norm(u):.3f}")
    for a in axes[1:]:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        record = run_one(args.worker, args)
        (out / f"{args.tag}_{args.worker}.json").write_text(json.dumps(record))
        return 0
    train, test = _data(args)   # generate / verify the cache once, before any worker starts
    records = []
    if args.parallel:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        argv = list(sys.argv[1:] if argv is None else argv)
        procs = {}
        for name in args.models:
            log = open(out / f"{args.tag}_{name}.log", "w")
            procs[name] = (subprocess.Popen([sys.executable, __file__, *argv, "--worker", name],
                                            env=env, stdout=log, stderr=subprocess.STDOUT), log)
        for name, (proc, log) in procs.items():
            if proc.wait() != 0:
                raise SystemExit(f"{name} worker failed; see {log.name}")
            log.close()
            records.append(json.loads((out / f"{args.tag}_{name}.json").read_text()))
    else:
        records = [run_one(name, args) for name in args.models]
    summary = {
        "command": "python benchmarks/bench_lsm_vs_fno.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "n": args.n, "train_samples": len(train), "test_samples": len(test),
        "data": {k: train.meta[k] for k in ("refine", "fine_n", "rtol", "alpha", "tau", "high", "low",
                                           "max_residual", "checksum")},
        "budget_cpu_seconds": args.budget, "wall_budget_seconds": args.wall_budget,
        "parallel": args.parallel, "paper": PAPER,
        "results": [{k: v for k, v in r.items() if k != "sample_prediction"} for r in records],
    }
    if len(records) == 2:
        a, b = records
        summary["ratio_lsm_over_fno"] = (a["test_rel_l2"] / b["test_rel_l2"] if a["model"] == "LSM"
                                         else b["test_rel_l2"] / a["test_rel_l2"])
    (out / f"{args.tag}.json").write_text(json.dumps(summary, indent=1))
    _plot(records, test, out / f"{args.tag}.png")
    print(_table(records))
    if "ratio_lsm_over_fno" in summary:
        print(f"LSM / FNO test relative L2: {summary['ratio_lsm_over_fno']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
