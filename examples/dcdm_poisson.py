"""Solve 2D Poisson problems with the Deep Conjugate Direction Method (DCDM).

The shipped network was trained only on the 64 x 64 Laplacian; being fully
convolutional it is applied as is to other grids, right-hand sides and a variable
coefficient.  CG and IC(0)-PCG run beside it for comparison.

Run:  python examples/dcdm_poisson.py
"""
import numpy as np
import torch

import lrsolve as lr

torch.set_num_threads(1)
model = lr.dcdm.load_pretrained("poisson2d")

for n in (64, 128):
    for rhs in ("random", "point", "smooth"):
        P = lr.problems.poisson(n=n, dim=2, rhs=rhs, seed=0)
        dcdm = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
        cg = lr.solve(P.A, P.b, method="cg", rtol=1e-6)
        ic0 = lr.solve(P.A.to_csr(), P.b, method="pcg-ic0", rtol=1e-6)
        print(f"n={n:4d} rhs={rhs:7s}  dcdm {dcdm.iterations:4d} it ({dcdm.time:6.2f} s, "
              f"converged={dcdm.converged})   cg {cg.iterations:4d}   pcg-ic0 {ic0.iterations:4d}")

# A smoothly varying diffusion coefficient the network never saw.
P = lr.problems.poisson(n=64, dim=2, coefficient=lambda X, Y: np.exp(np.sin(2 * np.pi * X)
                                                                        * np.cos(2 * np.pi * Y)))
r = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
print(f"variable coefficient, n=64: dcdm {r.iterations} it, converged={r.converged}, "
      f"A-orthogonality in the window {r.stats['max_a_cosine']:.1e}")

# The same solve on torch tensors: the result stays a torch tensor.
P = lr.problems.poisson(n=64, dim=2, backend="torch")
r = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
print(f"torch backend: {type(r.x).__name__} {r.x.dtype}, {r.iterations} it")
