"""``lrsolve train dcdm``: train a DCDM network from the command line.

Example::

    lrsolve train dcdm --grid 64 --dim 2 --levels 4 --shared --steps 2500 \\
        --max-minutes 17 --checkpoint dcdm_ckpt.pt --out dcdm_poisson2d.pt

The checkpoint is written atomically every ``--checkpoint-every`` steps; running the
same command again resumes it.  After training, the model is tried on the Poisson
problem of the training grid and the DCDM and CG iteration counts are printed.
"""
from __future__ import annotations

import argparse
import sys

from ..cli import nonnegative_int, positive_float, positive_int

__all__ = ["main"]


def _levels(text: str):
    return text if text == "auto" else positive_int(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lrsolve train dcdm",
                                     description="Train a DCDM network (unsupervised, Ritz data).")
    parser.add_argument("--grid", type=positive_int, default=64, help="training grid points per axis")
    parser.add_argument("--dim", type=int, default=2, choices=[2, 3])
    parser.add_argument("--steps", type=positive_int, default=2500)
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--lr", type=positive_float, default=1e-3)
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--channels", type=positive_int, default=16)
    parser.add_argument("--levels", type=_levels, default=1,
                        help="pooling levels: 1 = the paper's network (default); the shipped "
                             "poisson2d model uses --levels 4 --shared")
    parser.add_argument("--arch", choices=["unet", "vcycle"], default="unet",
                        help="unet: the paper's network (and its multi-level variants); "
                             "vcycle: learned smoothers in a multigrid V-cycle")
    parser.add_argument("--hidden", type=positive_int, default=2,
                        help="residual convolutions per smoother (--arch vcycle)")
    parser.add_argument("--domains", choices=["box", "mix"], default="box",
                        help="box: the paper's Dirichlet box; mix: also closed/open-top boxes "
                             "with random obstacles, a coefficient field, a rectangular grid "
                             "(the shipped poisson2d / poisson3d models)")
    parser.add_argument("--coarse-size", type=positive_int, default=1000,
                        help="--arch vcycle: cells of the hierarchy's coarsest level (at most)")
    parser.add_argument("--shared", action="store_true",
                        help="one encoder/decoder for every level below the finest")
    parser.add_argument("--max-minutes", type=positive_float, default=None)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--checkpoint", default=None, help="checkpoint path (resumed if present)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=100)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--out", default="dcdm_model.pt", help="where to save the trained model")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-eval", action="store_true", help="skip the trial solve")
    args = parser.parse_args(argv)
    from .training import save_model, train
    levels = args.levels
    shared = args.shared or levels == "auto"
    model = train(grid=args.grid, dim=args.dim, steps=args.steps, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed, channels=args.channels, levels=levels,
                  shared=shared, arch=args.arch, hidden=args.hidden, domains=args.domains,
                  coarse_size=args.coarse_size,
                  checkpoint=args.checkpoint,
                  checkpoint_every=args.checkpoint_every, resume=not args.no_resume,
                  max_minutes=args.max_minutes, threads=args.threads,
                  progress=not args.no_progress)
    model.meta["command"] = "lrsolve train dcdm " + " ".join(
        sys.argv[1:] if argv is None else argv)
    save_model(model, args.out)
    meta = model.meta
    print(f"trained {meta['steps_done']} steps in {meta['train_seconds']:.0f} s, "
          f"final loss {meta['final_loss']:.4g}; saved {args.out}")
    if not args.no_eval:
        from ..problems import poisson
        from ..solvers import solve
        P = poisson(n=args.grid, dim=args.dim, rhs="random", seed=1)
        r = solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
        c = solve(P.A, P.b, method="cg", rtol=1e-6)
        print(f"trial solve at {args.grid}^{args.dim}, rtol 1e-6: dcdm {r.iterations} iterations "
              f"(converged={r.converged}), cg {c.iterations}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
