"""Darcy-flow coefficient fields: the two-valued random media of the FNO / LSM benchmark.

The standard Darcy benchmark (Li et al., "Fourier Neural Operator", ICLR 2021; reused by
Wu et al., "Latent Spectral Models", ICML 2023) solves ``-div(a grad u) = 1`` on the unit
square with ``u = 0`` on the boundary, where ``a`` is a Gaussian random field with
covariance ``(-Delta + tau^2)^(-alpha)`` (``alpha = 2``, ``tau = 3``, Neumann Laplacian)
thresholded to two values: ``a = 12`` where the field is ``>= 0`` and ``a = 3`` elsewhere.
The paper states 3; the published MATLAB generator script
(``neuraloperator/data_generation/darcy/demo.m``) uses **4** for the low value, so
``low`` is a parameter (default 3, as in the paper).

The field is drawn exactly as the generator's ``GRF.m`` does: a Karhunen-Loeve sum over
cosine modes ``cos(pi k1 x) cos(pi k2 y)`` with square-root eigenvalues
``tau^(alpha-1) (pi^2 |k|^2 + tau^2)^(-alpha/2)``, the constant mode removed, evaluated by
an orthonormal inverse DCT-II on an ``s x s`` grid with ``s`` points per axis including
both boundaries (spacing ``1/(s-1)``).  :func:`darcy_coefficient` returns the interior
``n x n`` points of the ``s = n + 2`` grid, i.e. the points of
:func:`lrsolve.problems.poisson`'s grid (``h = 1/(n+1)``).
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .poisson import PoissonProblem, poisson
from ..seeding import as_generator

__all__ = ["gaussian_random_field", "darcy_coefficient", "darcy_problem"]


def _generator(seed) -> np.random.Generator:
    return as_generator(seed)


def gaussian_random_field(size: int, alpha: float = 2.0, tau: float = 3.0, seed=0) -> np.ndarray:
    """One sample of the mean-zero Gaussian random field of the FNO Darcy recipe.

    Parameters
    ----------
    size : int
        Grid points per axis, boundaries included (spacing ``1/(size-1)``).
    alpha, tau : float
        Covariance ``tau^(2 alpha - 2) (-Delta + tau^2 I)^(-alpha)`` with the Neumann
        Laplacian; ``alpha > 1`` (in 2D) for a continuous field.
    seed : int, None or numpy.random.Generator
        Source of the KL coefficients.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64 field.

    Examples
    --------
    >>> from lrsolve.problems.darcy import gaussian_random_field
    >>> g = gaussian_random_field(66, seed=0)
    >>> g.shape, bool(abs(g.mean()) < 1e-12)    # the constant mode is removed
    ((66, 66), True)
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an int >= 2, got {size!r}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be positive, got {tau!r}")
    rng = _generator(seed)
    xi = rng.standard_normal((size, size))
    k1, k2 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    # Square roots of the covariance eigenvalues on the Neumann cosine modes (GRF.m).
    coef = tau ** (alpha - 1) * (np.pi ** 2 * (k1 ** 2 + k2 ** 2) + tau ** 2) ** (-alpha / 2)
    kl = size * coef * xi
    kl[0, 0] = 0.0   # mean-zero field: drop the constant mode
    # MATLAB's idct2 is the orthonormal inverse of the type-II DCT.
    return scipy.fft.idctn(kl, type=2, norm="ortho")


def darcy_coefficient(n: int, alpha: float = 2.0, tau: float = 3.0, high: float = 12.0,
                      low: float = 3.0, seed=0) -> np.ndarray:
    """A thresholded two-valued permeability on the ``n x n`` interior grid (``h = 1/(n+1)``).

    Parameters
    ----------
    n : int
        Interior points per axis, as in :func:`lrsolve.problems.poisson`.
    alpha, tau : float
        Gaussian random field parameters (2 and 3 in the benchmark).
    high, low : float
        Values where the field is ``>= 0`` and ``< 0``: 12 and 3 (the paper; the FNO
        generator script uses 4 for ``low``).
    seed : int, None or numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` array with values in ``{low, high}``.

    Examples
    --------
    >>> from lrsolve.problems.darcy import darcy_coefficient
    >>> a = darcy_coefficient(32, seed=1)
    >>> sorted(set(a.ravel().tolist()))
    [3.0, 12.0]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    for name, value in (("high", high), ("low", low)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    field = gaussian_random_field(int(n) + 2, alpha, tau, seed)[1:-1, 1:-1]
    return np.where(field >= 0, float(high), float(low))


def darcy_problem(n: int = 64, seed=0, alpha: float = 2.0, tau: float = 3.0, high: float = 12.0,
                  low: float = 3.0, format: str = "csr") -> PoissonProblem:
    """The linear system of one Darcy sample: ``-div(a grad u) = 1``, ``u = 0`` on the boundary.

    Parameters
    ----------
    n : int
        Interior points per axis (``h = 1/(n+1)``).
    seed, alpha, tau, high, low
        As for :func:`darcy_coefficient`.
    format : {"csr", "stencil"}
        As for :func:`lrsolve.problems.poisson`.

    Returns
    -------
    PoissonProblem
        ``A``, ``b`` (all ones) and ``meta``, with ``meta["a"]`` the coefficient field.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.darcy_problem(n=32, seed=0)
    >>> r = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-10)
    >>> r.converged
    True
    """
    a = darcy_coefficient(n, alpha, tau, high, low, seed)
    P = poisson(n, 2, coefficient=a, rhs="ones", format=format)
    P.meta.update(a=a, alpha=alpha, tau=tau, high=high, low=low, darcy_seed=seed)
    return P
