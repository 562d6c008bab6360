"""Chebyshev interpolation, Tucker decompositions and the Chebyshev-Tucker format.

* :mod:`~lrsolve.tensors.chebyshev` - 2nd-kind points, DCT-I coefficients, matrix /
  Clenshaw evaluation, derivative, integral, adaptive degree (:class:`Chebyshev`, 1-3 D);
* :mod:`~lrsolve.tensors.tucker` - truncated ST-HOSVD (Gram / randomized / full SVD per
  mode) and HOOI, ranks or relative tolerance, NumPy / torch / CuPy (:func:`tucker`);
* :mod:`~lrsolve.tensors.chebtucker` - the hybrid mesh-free format :class:`ChebTucker`;
* :mod:`~lrsolve.tensors.potentials` - range-separated Newton kernel and particle sums.

Examples
--------
>>> import numpy as np, lrsolve as lr
>>> f = lambda x, y, z: 1.0 / (1.0 + x**2 + y**2 + z**2)
>>> ct = lr.tensors.ChebTucker.from_function(f, domain=[(-1, 1)] * 3, degree=64, rtol=1e-8)
>>> p = np.array([[0.3, -0.2, 0.5]])
>>> bool(abs(ct(p)[0] - 1 / 1.38) < 1e-7)
True
"""
from .chebyshev import (Chebyshev, chebyshev_points, vals2coeffs, coeffs2vals, chebvander,
                        clenshaw, chebder, chebint_definite, integral_weights, chop_degree,
                        decay_rate, predict_degree)
from .tucker import tucker, hosvd, hooi, tucker_to_full, mode_product, unfold, tucker_error
from .chebtucker import ChebTucker, sample_on_grid
from .potentials import (newton_long_range, newton_long_range_cp, particle_potential,
                         long_range_particle_sum, lattice_cluster, random_cloud)

__all__ = [
    "ChebTucker", "Chebyshev", "tucker", "hosvd", "hooi", "tucker_to_full", "mode_product",
    "unfold", "tucker_error", "chebyshev_points", "vals2coeffs", "coeffs2vals", "chebvander",
    "clenshaw", "chebder", "chebint_definite", "integral_weights", "chop_degree", "decay_rate",
    "predict_degree", "sample_on_grid", "newton_long_range", "newton_long_range_cp",
    "particle_potential", "long_range_particle_sum", "lattice_cluster", "random_cloud",
]
