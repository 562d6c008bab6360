"""A smooth function of three variables as a Chebyshev-Tucker tensor.

Interpolates a sum of Gaussians on [-1, 1]^3 with an adaptive Chebyshev degree,
compresses the coefficient tensor by a truncated HOSVD, and shows storage, accuracy on
random points, the integral and algebra on the compressed form.

    python examples/tensors_chebtucker.py
"""
import numpy as np

import lrsolve as lr

rng = np.random.default_rng(0)
centres = rng.uniform(-0.6, 0.6, (10, 3))


def f(x, y, z):
    return sum(np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) / 0.1)
               for c in centres)


ct = lr.tensors.ChebTucker.from_function(f, domain=[(-1, 1)] * 3, degree=None, rtol=1e-10)
full_bytes = 8 * np.prod([n + 1 for n in ct.degrees])
print(ct)
print(f"storage {ct.nbytes} bytes vs {full_bytes} for the full coefficient tensor")

points = rng.uniform(-1, 1, (100_000, 3))
exact = f(*points.T)
print(f"max relative error on 1e5 random points: "
      f"{np.abs(ct(points) - exact).max() / np.abs(exact).max():.2e}")
print(f"integral: {ct.integrate():.12f}  (exact per Gaussian: (0.1 pi)^(3/2) x erf factors)")

g = 2.0 * ct - ct            # algebra recompresses: back to the ranks of ct
print(f"ranks of 2 ct - ct: {g.ranks}")
