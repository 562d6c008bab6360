"""Save one 3D smoke pressure system for the GPU check (``gpu_check.check_dcdm_fluids``).

    python benchmarks/make_fluid_system.py [--n 128] [--out .gpu/smoke128.npz]

Runs ``lr.problems.fluid_pressure_sequence(n, dim=3, steps=3, obstacles=...)`` (a sphere
and a box, closed walls, seed 0) on the CPU and saves the third step's right-hand side
and solid mask (``.npz``) with the boundary conditions and obstacles
(``.json``): the GPU machine then rebuilds the operator instead of running the
simulation.  The output folder is git-ignored; a fresh checkout re-makes it (about a
minute at 128^3).
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

import lrsolve as lr
from lrsolve.io import atomic_save, save_json
from lrsolve.operators.grid import GridOperator

OBSTACLES = [("sphere", (0.5, 0.3, 0.5), 0.15), ("box", (0.2, 0.6, 0.2), (0.4, 0.7, 0.8))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    out = Path(args.out or f".gpu/smoke{args.n}.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    seq = lr.problems.fluid_pressure_sequence(n=args.n, dim=3, steps=3, obstacles=OBSTACLES,
                                              seed=0)
    for step, P in enumerate(seq):
        if step == 2:
            break
    A = P.A
    rebuilt = GridOperator(A.grid_shape, spacing=A.spacing, mask=A.mask, bc=A.bc)
    x = np.random.default_rng(0).standard_normal(A.shape[0])
    err = float(np.abs(rebuilt @ x - A @ x).max() / np.abs(A @ x).max())
    if err > 1e-14:
        raise RuntimeError(f"the saved description does not rebuild the operator ({err:.1e})")
    buf = io.BytesIO()
    np.savez_compressed(buf, b=np.asarray(P.b, dtype=np.float64), mask=A.mask)
    atomic_save(out, buf.getvalue())
    save_json(out.with_suffix(".json"), {"n": args.n, "bc": A.bc, "spacing": list(A.spacing),
                                         "obstacles": OBSTACLES, "step": 2, "seed": 0})
    print(f"saved {out} (relative rebuild error {err:.1e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
