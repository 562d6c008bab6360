"""Long-range electrostatics of a 1000-particle cloud in Chebyshev-Tucker form.

Builds the smooth (long-range) part of the Coulomb potential of 1000 random charges,
sum_i q_i erf(|x - x_i| / sigma) / |x - x_i|, as a mesh-free ChebTucker function on the
box [-1, 1]^3, then compares it with direct summation on random points and integrates it.

    python examples/tensors_particles.py
"""
import time

import numpy as np

import lrsolve as lr

T = lr.tensors
positions, charges = T.random_cloud(1000, box=[(-0.8, 0.8)] * 3, seed=0)
sigma = 0.25

start = time.perf_counter()
ct = T.long_range_particle_sum(positions, charges, sigma, rtol=1e-8)
print(f"built {ct} in {time.perf_counter() - start:.2f} s "
      f"({ct.info['nodes']} quadrature nodes, CP rank {ct.info['cp_rank']})")

points = np.random.default_rng(1).uniform(-1, 1, (20_000, 3))
ct(points[:10])          # the first call loads (or compiles) the numba kernel
start = time.perf_counter()
approx = ct(points)
t_ct = time.perf_counter() - start
start = time.perf_counter()
exact = T.particle_potential(points, positions, charges, sigma)
t_direct = time.perf_counter() - start
print(f"max relative error on 20000 points: {np.abs(approx - exact).max() / np.abs(exact).max():.2e}")
print(f"evaluation {t_ct:.3f} s vs direct summation {t_direct:.3f} s ({t_direct / t_ct:.0f}x)")

# calculus on the compressed form: the integral over the box and the field E = -grad phi
print(f"integral over the box: {ct.integrate():.6f}")
field_x = -ct.diff(0)
print(f"E_x at the origin: {field_x(np.zeros((1, 3)))[0]:.6f}")
