"""``lrsolve train lsm``: generate (or load) Darcy data, train a Latent Spectral Model, report.

Example::

    lrsolve train lsm --n 64 --samples 1000 --test 200 --width 16 --budget 1200 \\
        --checkpoint lsm.ckpt --out lsm_fit.pt --plot lsm.png
"""
from __future__ import annotations

import argparse
import json

from ..cli import nonnegative_int, positive_float, positive_int


def _levels(text: str):
    if text == "auto":
        return text
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer >= 2, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lrsolve train lsm",
                                description="Train a Latent Spectral Model on lrsolve's Darcy data.")
    p.add_argument("--n", type=positive_int, default=64, help="grid points per axis (interior grid)")
    p.add_argument("--samples", type=positive_int, default=1000, help="training samples (data seed 0)")
    p.add_argument("--test", type=nonnegative_int, default=200, help="held-out samples (data seed 1)")
    p.add_argument("--refine", type=positive_int, default=2, help="fine solve grid = refine*(n+1)-1")
    p.add_argument("--epochs", type=positive_int, default=500)
    p.add_argument("--batch-size", type=positive_int, default=20)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--schedule", default="onecycle", choices=["onecycle", "step", "constant"])
    p.add_argument("--width", type=positive_int, default=32)
    p.add_argument("--levels", type=_levels, default=5,
                   help="U-Net levels (>= 2), or 'auto' to pick them from --n")
    p.add_argument("--patch-size", type=positive_int, default=4)
    p.add_argument("--tokens", type=positive_int, default=4)
    p.add_argument("--basis", type=positive_int, default=12)
    p.add_argument("--heads", type=positive_int, default=8)
    p.add_argument("--budget", type=positive_float, default=None, help="CPU seconds of training")
    p.add_argument("--wall-budget", type=positive_float, default=None, help="wall-clock seconds cap")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--checkpoint", default=None, help="resumable per-epoch checkpoint")
    p.add_argument("--out", default=None, help="save the fitted operator here")
    p.add_argument("--plot", default=None, help="PNG of input / truth / prediction / error")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    """Entry point of ``lrsolve train lsm``; returns the exit status."""
    args = _parser().parse_args(argv)
    import torch

    from .data import darcy_dataset
    from .lsm import LSM
    from .training import train

    torch.set_num_threads(args.threads)
    progress = not args.no_progress
    data = darcy_dataset(n=args.n, samples=args.samples, seed=0, refine=args.refine,
                         progress=progress)
    test = darcy_dataset(n=args.n, samples=args.test, seed=1, refine=args.refine,
                         progress=progress) if args.test else None
    torch.manual_seed(args.seed)
    model = LSM(1, 1, width=args.width, levels=args.levels, patch_size=args.patch_size,
                num_tokens=args.tokens, num_basis=args.basis, heads=args.heads,
                grid=args.n).to(args.device)
    fit = train(model, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                schedule=args.schedule, seed=args.seed, test=test, time_budget=args.budget,
                wall_budget=args.wall_budget, checkpoint=args.checkpoint, progress=progress)
    summary = {"parameters": sum(p.numel() for p in model.parameters()),
               "epochs": len(fit.history["epoch"]),
               "train_loss": fit.history["train_loss"][-1] if fit.history["epoch"] else None,
               "test_rel_l2": fit.evaluate(test) if test is not None else None,
               "cpu_seconds": fit.history["seconds"][-1] if fit.history["epoch"] else 0.0}
    print(json.dumps(summary))
    if args.out:
        fit.save(args.out)
    if args.plot:
        fit.plot(test if test is not None else data, 0, path=args.plot)
    return 0
