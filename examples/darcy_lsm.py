"""Learn the Darcy solution operator a -> u with a Latent Spectral Model, on data lrsolve solves.

Generates (and caches) Darcy-flow pairs with lrsolve's variable-coefficient operator and
AMG-PCG, trains a small LSM on the CPU for a fixed time budget, reports the held-out
relative L2 error and writes a PNG of input / truth / prediction / error.

    python examples/darcy_lsm.py                 # 32x32, 400 samples, 3 CPU-minutes
    python examples/darcy_lsm.py --n 64 --samples 1000 --budget 1200 --width 16
    python examples/darcy_lsm.py --pretrained    # evaluate the shipped 64x64 model
"""
from __future__ import annotations

import argparse

import torch

import lrsolve as lr


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--budget", type=float, default=180.0, help="CPU seconds of training")
    p.add_argument("--pretrained", action="store_true", help="evaluate lsm_darcy64 instead")
    p.add_argument("--plot", default="darcy_lsm.png")
    args = p.parse_args(argv)
    torch.set_num_threads(1)   # small models on a shared CPU: one thread is the efficient choice

    if args.pretrained:
        fit = lr.neural.load_pretrained("darcy64")
        test = lr.neural.darcy_dataset(n=fit.n, samples=args.test, seed=1)
    else:
        data = lr.neural.darcy_dataset(n=args.n, samples=args.samples, seed=0)
        test = lr.neural.darcy_dataset(n=args.n, samples=args.test, seed=1)
        print(f"data: {len(data)} train / {len(test)} test, {args.n}x{args.n}, "
              f"worst solver residual {data.meta['max_residual']:.1e}")
        torch.manual_seed(0)
        model = lr.neural.LSM(width=args.width, levels=args.levels, patch_size=4)
        fit = lr.neural.train(model, data, epochs=500, batch_size=20, lr=1e-3, test=test,
                              time_budget=args.budget)
        print(f"{len(fit.history['epoch'])} epochs in {fit.history['seconds'][-1]:.0f} CPU s")
    print(f"held-out relative L2: {fit.evaluate(test):.4f}")
    fit.plot(test, index=0, path=args.plot)
    print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
