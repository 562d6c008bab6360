"""Cost of an LSM training epoch at small grids: fixed ``levels=5`` against ``levels="auto"``.

Issue 17, item 16: with the default ``levels=5, patch_size=4`` a 16 x 16 input is padded to
64 x 64, so training on 16^2 data costs what 64^2 does.  This script trains the same LSM
(width 32, the CLI default) for one epoch on random ``(samples, n, n)`` pairs (the cost of
an epoch does not depend on the values) with both settings, in one process, one thread,
and reports seconds per epoch and the ratio; ``levels="auto"`` picks 3 levels at 16^2 and
keeps 5 at 64^2 (same cost there).  Writes ``benchmarks/results/lsm_levels.json``.

Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_lsm_levels.py --samples 200
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np


def epoch_seconds(n: int, levels, samples: int, repeat: int) -> tuple[float, int]:
    import torch
    import lrsolve as lr
    rng = np.random.default_rng(0)
    data = lr.neural.DarcyData(rng.random((samples, n, n)) + 1.0,
                               rng.standard_normal((samples, n, n)))
    best = np.inf
    for _ in range(repeat):
        torch.manual_seed(0)
        model = lr.neural.LSM(width=32, levels=levels, patch_size=4, grid=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t0 = time.process_time()
            lr.neural.train(model, data, epochs=1, batch_size=20, progress=False)
            best = min(best, time.process_time() - t0)
    return best, model.levels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", default=os.path.join("benchmarks", "results", "lsm_levels.json"))
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from lrsolve.io import save_json
    rows = []
    for n in args.sizes:
        fixed, _ = epoch_seconds(n, 5, args.samples, args.repeat)
        auto, chosen = epoch_seconds(n, "auto", args.samples, args.repeat)
        rows.append({"n": n, "samples": args.samples, "levels_fixed": 5, "levels_auto": chosen,
                     "epoch_cpu_s_fixed": fixed, "epoch_cpu_s_auto": auto,
                     "speedup": fixed / auto})
        print(f"n={n:3d}: levels=5 {fixed:7.2f} s/epoch, levels=auto ({chosen}) {auto:7.2f} "
              f"s/epoch, speedup {fixed / auto:5.2f}x", flush=True)
    save_json(args.out, {"command": "python benchmarks/bench_lsm_levels.py " + " ".join(
        argv if argv is not None else sys.argv[1:]), "machine": platform.platform(),
        "threads": 1, "clock": "process CPU time, best of repeat", "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
