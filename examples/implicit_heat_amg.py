"""Implicit (backward Euler) heat equation with one AMG hierarchy reused for every step.

    u_t = div(a grad u) + f  on the unit square, u = 0 on the boundary

Each step solves (I/dt + A) u_new = u_old/dt + f. The matrix does not change, so the
AMG preconditioner is built once and passed as ``M`` to every solve, each warm-started
from the previous step.  Run: ``python examples/implicit_heat_amg.py``.
"""
import numpy as np

import lrsolve as lr

n, dt, steps = 128, 1e-3, 20
X, Y = lr.problems.grid_coordinates(n, 2)
a = 1.0 + 0.5 * np.sin(2 * np.pi * X) * np.sin(2 * np.pi * Y)       # diffusion coefficient
f = np.exp(-80 * ((X - 0.3) ** 2 + (Y - 0.6) ** 2)).reshape(-1)     # heat source

A = lr.operators.PoissonStencil(n, 2, coefficient=a, shift=1.0 / dt).to_csr()
M = lr.krylov.AMG(A)                       # built once
print(f"AMG setup {M.setup_time:.3f} s, {len(M.ml.levels)} levels")

u = np.zeros(n * n)
for step in range(steps):
    r = lr.solve(A, u / dt + f, method="pcg-amg", M=M, x0=u, rtol=1e-8)
    assert r.converged, r.reason
    u = r.x
    if step % 5 == 0 or step == steps - 1:
        print(f"step {step:3d}: {r.iterations} PCG iterations, max u = {u.max():.4e}")
