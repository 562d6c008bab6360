"""Young's SOR theory for consistently ordered matrices (pure functions, NumPy only).

For a consistently ordered matrix with real Jacobi eigenvalues of largest modulus
``mu < 1`` (2-cyclic: the 5-/7-point Laplacian plus a shift, in lexicographic or
red-black order), the SOR eigenvalues ``lam`` and the Jacobi eigenvalues are tied by
``(lam + omega - 1)**2 = lam * omega**2 * mu**2`` (Young 1971, Theorem 6-2.2).  Hence

* the spectral radius of SOR(omega) is ``((omega mu + sqrt(omega^2 mu^2 - 4(omega-1)))/2)^2``
  for ``omega <= omega_opt`` and ``omega - 1`` above it;
* ``omega_opt = 2 / (1 + sqrt(1 - mu^2))``;
* an observed asymptotic factor ``lam`` of SOR(omega) with ``omega < omega_opt`` reveals
  ``mu = (lam + omega - 1) / (omega sqrt(lam))``; above ``omega_opt`` every eigenvalue
  has modulus ``omega - 1`` and the observation only says ``omega >= omega_opt``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["young_omega", "sor_rate", "jacobi_radius_from_rate", "critical_mu",
           "predicted_iterations", "observed_rate"]

_MU_MAX = 1.0 - 1e-12


def young_omega(mu: float) -> float:
    """Young's optimal relaxation ``2 / (1 + sqrt(1 - mu^2))`` for Jacobi radius ``mu``.

    Examples
    --------
    >>> round(young_omega(0.0), 6), round(young_omega(0.99), 4)
    (1.0, 1.7527)
    """
    mu = min(max(float(mu), 0.0), _MU_MAX)
    return 2.0 / (1.0 + math.sqrt(1.0 - mu * mu))


def critical_mu(omega: float) -> float:
    """The Jacobi radius for which ``omega`` is optimal: ``2 sqrt(omega - 1) / omega``."""
    return 2.0 * math.sqrt(max(omega - 1.0, 0.0)) / omega


def sor_rate(omega, mu):
    """Spectral radius of SOR(omega) for Jacobi radius ``mu`` (arrays broadcast)."""
    omega = np.asarray(omega, dtype=float)
    mu = np.clip(np.asarray(mu, dtype=float), 0.0, _MU_MAX)
    disc = omega ** 2 * mu ** 2 - 4.0 * (omega - 1.0)
    real = ((omega * mu + np.sqrt(np.maximum(disc, 0.0))) / 2.0) ** 2
    rate = np.where(disc >= 0.0, real, np.abs(omega - 1.0))
    return np.maximum(rate, np.abs(omega - 1.0))


def jacobi_radius_from_rate(rate: float, omega: float) -> float:
    """Invert Young's relation: ``mu = (rate + omega - 1) / (omega sqrt(rate))`` in [0, 1)."""
    rate = float(rate)
    if not (rate > 0.0):
        return 0.0
    mu = (rate + omega - 1.0) / (omega * math.sqrt(rate))
    return min(max(mu, 0.0), _MU_MAX)


def predicted_iterations(omega, mu, rtol: float = 1e-8):
    """Sweeps SOR(omega) needs to shrink the error by ``rtol``: ``log(rtol) / log(rate)``."""
    rate = np.clip(sor_rate(omega, mu), 1e-300, 1.0 - 1e-15)
    return np.log(rtol) / np.log(rate)


def observed_rate(residuals, omega: float | None = None, min_len: int = 10):
    """Asymptotic convergence factor from the tail of a residual history (None if too short).

    Uses the geometric mean ratio over the last quarter of the history (at least 3 steps):
    early steps carry the transients of the fast modes.
    """
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r) & (r > 0)]
    if r.size < min_len:
        return None
    m = max(3, (r.size - 1) // 4)
    rate = (r[-1] / r[-1 - m]) ** (1.0 / m)
    if not np.isfinite(rate) or rate <= 0:
        return None
    return float(rate)
