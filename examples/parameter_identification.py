"""Recover a diffusion coefficient from a measured solution, by gradients through CG.

The forward model is the 2D problem ``-div(a grad u) = 1`` on the unit square (zero
Dirichlet, ``n x n`` interior points, :class:`lrsolve.operators.PoissonStencil`), with a
piecewise-constant coefficient ``a = exp(theta)`` on ``blocks x blocks`` tiles.  Given a
measured ``u`` (optionally with noise), L-BFGS fits ``theta`` by minimising the relative
misfit ``||u(theta) - u_measured||^2 / ||u_measured||^2``.

Each objective evaluation is one CG solve; each gradient is one more CG solve (the
adjoint, :mod:`lrsolve.autodiff`) - never an unrolled iteration.  The script counts both.

Run::

    python examples/parameter_identification.py --n 24 --blocks 3 --noise 1e-3
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lrsolve import autodiff
from lrsolve.krylov import Jacobi, cg_result
from lrsolve.operators import PoissonStencil


def tiles(n: int, blocks: int) -> torch.Tensor:
    """Tile index of every grid point, shape ``(n, n)``."""
    band = torch.arange(n) * blocks // n
    return band[:, None] * blocks + band[None, :]


def identify(n: int = 16, blocks: int = 2, noise: float = 0.0, rtol: float = 1e-10,
             seed: int = 0, maxiter: int = 100, verbose: bool = False) -> dict:
    """Fit the tile values of ``a`` from ``u``; returns the fit, its errors and solve counts."""
    rng = np.random.default_rng(seed)
    dtype = torch.float64
    tile = tiles(n, blocks)
    # True values spread over [0.4, 2.5]; the fit starts from a = 1 everywhere.
    theta_true = torch.from_numpy(rng.uniform(np.log(0.4), np.log(2.5), blocks * blocks))
    source = torch.ones(n * n, dtype=dtype)
    counts = {"forward": 0, "adjoint": 0}

    def pcg(A, b):
        r = cg_result(A, b, rtol=rtol, M=Jacobi(A))
        if not r.converged:
            raise RuntimeError(f"forward/adjoint solve failed: {r.reason}")
        return r.x

    def forward_solve(A, b):
        counts["forward"] += 1
        return pcg(A, b)

    def adjoint_solve(A, g):  # the stencil is symmetric: the adjoint is the same PCG
        counts["adjoint"] += 1
        return pcg(A, g)

    def solution(theta: torch.Tensor) -> torch.Tensor:
        coefficient = torch.exp(theta)[tile]
        A = PoissonStencil(n, 2, coefficient=coefficient, backend="torch", dtype=np.float64)
        return autodiff.differentiable_solve(A, source, forward_solve,
                                             adjoint_solve=adjoint_solve)

    with torch.no_grad():
        u_measured = solution(theta_true)
        if noise:
            g = torch.Generator().manual_seed(seed + 1)
            u_measured = u_measured + noise * u_measured.abs().max() * torch.randn(
                u_measured.shape, dtype=dtype, generator=g)
    scale = float(u_measured.pow(2).sum())

    theta = torch.zeros(blocks * blocks, dtype=dtype, requires_grad=True)
    a_true = torch.exp(theta_true)
    initial_error = float(((1.0 - a_true).abs() / a_true).max())
    optimizer = torch.optim.LBFGS([theta], lr=1.0, max_iter=maxiter, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, history_size=20,
                                  line_search_fn="strong_wolfe")
    history = []
    gradient_evaluations = 0

    def closure():
        nonlocal gradient_evaluations
        optimizer.zero_grad()
        loss = (solution(theta) - u_measured).pow(2).sum() / scale
        loss.backward()
        gradient_evaluations += 1
        history.append(float(loss.detach()))
        if verbose:
            print(f"  eval {gradient_evaluations:3d}  misfit {float(loss):.3e}")
        return loss

    t0 = time.perf_counter()
    counts_before = dict(counts)
    optimizer.step(closure)
    elapsed = time.perf_counter() - t0
    a_fit = torch.exp(theta.detach())
    return {
        "a_true": a_true.tolist(),
        "a_fit": a_fit.tolist(),
        "relative_error": float(((a_fit - a_true).abs() / a_true).max()),
        "initial_error": initial_error,
        "misfit": history[-1],
        "initial_misfit": history[0],
        "gradient_evaluations": gradient_evaluations,
        "forward_solves": counts["forward"] - counts_before["forward"],
        "adjoint_solves": counts["adjoint"] - counts_before["adjoint"],
        "time": elapsed,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="interior points per axis")
    parser.add_argument("--blocks", type=int, default=2, help="tiles per axis")
    parser.add_argument("--noise", type=float, default=0.0, help="relative measurement noise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = identify(n=args.n, blocks=args.blocks, noise=args.noise, seed=args.seed,
                   verbose=args.verbose)
    print(f"grid {args.n}x{args.n}, {args.blocks ** 2} tiles, noise {args.noise}")
    print("true a  :", np.round(out["a_true"], 4))
    print("fitted a:", np.round(out["a_fit"], 4))
    print(f"max relative error of a: {out['initial_error']:.3f} at the start -> "
          f"{out['relative_error']:.2e}")
    print(f"misfit {out['initial_misfit']:.3e} -> {out['misfit']:.3e} in "
          f"{out['gradient_evaluations']} evaluations: {out['forward_solves']} forward + "
          f"{out['adjoint_solves']} adjoint PCG solves, {out['time']:.2f} s")


if __name__ == "__main__":
    main()
