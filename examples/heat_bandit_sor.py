"""A heat-equation simulation whose linear solves are tuned online by BanditSOR.

Crank-Nicolson on the unit square (the setting of Khodak et al., "Learning to Relax"):
every time step solves ``(I + a_t K) u_new = (I - a_t K) u + dt f`` with a diffusion that
changes in time.  The tuner picks SOR's omega for each step, warm-starts from the
previous step, learns from each solve, and is checkpointed atomically so that a
restarted run resumes learning where it stopped.

Run:  python examples/heat_bandit_sor.py [--nx 40] [--steps 200] [--checkpoint tuner.json]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import lrsolve as lr
from lrsolve.problems.sequences import HeatEquation


def simulate(nx: int, steps: int, checkpoint: str | None, learner=None, omega=None):
    """Run the simulation; returns total SOR iterations and the final temperature."""
    pde = HeatEquation(nx=nx, T=steps, stoptime=5.0)
    if omega is not None:          # a fixed omega, for comparison
        tuner = lr.relax.BanditSOR(omegas=[omega], learner="tsallis-inf")
    elif checkpoint and os.path.exists(checkpoint):
        tuner = lr.relax.BanditSOR.load(checkpoint)
    else:
        tuner = lr.relax.BanditSOR(learner=learner, seed=0)
    total = 0
    for step in range(steps):
        A, b, kappa = pde.system()
        out = tuner.solve(A, b, x0=pde.u, rtol=1e-8, context=kappa)   # a SolveResult
        assert out.converged, out.reason
        total += out.stats["iterations"]
        pde.advance(out.x)
        if checkpoint and omega is None and (step + 1) % 50 == 0:
            tuner.save(checkpoint)   # atomic: a crash here never corrupts the file
    return total, pde.u


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nx", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    tuned, u = simulate(args.nx, args.steps, args.checkpoint)
    gs, u_gs = simulate(args.nx, args.steps, None, omega=1.0)
    fixed, _ = simulate(args.nx, args.steps, None, omega=1.5)
    print(f"heat equation, {(args.nx - 1) ** 2} unknowns, {args.steps} Crank-Nicolson steps")
    print(f"  SOR iterations with BanditSOR (default learner): {tuned}")
    print(f"  with omega = 1.5 fixed:                         {fixed}  ({fixed / tuned:.1f}x)")
    print(f"  with Gauss-Seidel (omega = 1):                  {gs}  ({gs / tuned:.1f}x)")
    print(f"  max |u_tuned - u_GS| = {np.max(np.abs(u - u_gs)):.2e}")


if __name__ == "__main__":
    main()
