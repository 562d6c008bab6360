"""Training vectors for DCDM: the paper's Ritz-vector recipe, made cheap with exact eigenvectors.

The reference (ayano721/2023_DCDM, ``src/datasetcreate.py``) runs 10,000 Lanczos steps
on the 64^3 Laplacian, takes the Ritz vectors, and draws 20,000 unit vectors
``b = sum_i c_i v_i`` with ``c_i ~ N(0, 1)``, the lowest ``m/2 + 500`` (about 55 %) of the
Ritz vectors weighted 9x - 21 GB of vectors at 64^3.  For the constant-coefficient
Dirichlet Laplacian the eigenvectors are known in closed form: products of sines
``sin(pi j i / (n+1))``, with eigenvalues ``sum_axis 4 sin^2(pi j / (2 (n+1)))``.  So a
sample is a random spectral coefficient array, scaled 9x where the eigenvalue lies in the
low ``low_fraction`` of the spectral interval (where the Lanczos Ritz values of the low
half sit), sent back to the grid by an orthonormal DST-I - ``O(N log N)`` per vector, no
eigensolve and no data set on disk: fresh vectors are drawn every step.
"""
from __future__ import annotations

import numpy as np
from scipy.fft import idstn

__all__ = ["laplacian_eigenvalues", "ritz_vectors"]


def laplacian_eigenvalues(n: int, dim: int) -> np.ndarray:
    """Eigenvalues of the integer-stencil Dirichlet Laplacian on ``(n,)*dim``, as a grid.

    Entry ``[j0, j1, ...]`` belongs to the eigenvector ``prod_axis sin(pi (j+1) i / (n+1))``.
    """
    j = np.arange(1, n + 1)
    lam1 = 4.0 * np.sin(np.pi * j / (2.0 * (n + 1))) ** 2
    grids = np.meshgrid(*([lam1] * dim), indexing="ij")
    return sum(grids)


def ritz_vectors(n: int, dim: int, count: int, rng: np.random.Generator, *,
                 low_fraction: float = 0.55, low_weight: float = 9.0,
                 dtype=np.float32) -> np.ndarray:
    """``count`` unit vectors of the DCDM training distribution, shape ``(count, *(n,)*dim)``.

    Parameters
    ----------
    n, dim : int
        Grid points per axis and dimension.
    count : int
        Number of vectors.
    rng : numpy.random.Generator
        Source of randomness.
    low_fraction : float
        Eigenvalues below ``low_fraction * lambda_max`` get the heavier weight.
    low_weight : float
        The weight of the low end (9 in the paper).
    dtype : dtype
        Output dtype.

    Examples
    --------
    >>> import numpy as np
    >>> v = ritz_vectors(16, 2, 3, np.random.default_rng(0))
    >>> v.shape, bool(np.allclose(np.linalg.norm(v.reshape(3, -1), axis=1), 1))
    ((3, 16, 16), True)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not (0.0 <= low_fraction <= 1.0):
        raise ValueError(f"low_fraction must lie in [0, 1], got {low_fraction}")
    if not (low_weight > 0):
        raise ValueError(f"low_weight must be positive, got {low_weight}")
    lam = laplacian_eigenvalues(n, dim)
    weight = np.where(lam < low_fraction * lam.max(), low_weight, 1.0)
    coeff = rng.standard_normal((count,) + lam.shape) * weight
    axes = tuple(range(1, dim + 1))
    v = idstn(coeff, type=1, axes=axes, norm="ortho")
    v /= np.linalg.norm(v.reshape(count, -1), axis=1).reshape((count,) + (1,) * dim)
    return v.astype(dtype, copy=False)
