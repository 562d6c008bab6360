"""Range-separated Newton potentials and many-particle sums in Chebyshev-Tucker form.

The Newton kernel ``1/|x|`` is split as ``erf(|x|/sigma)/|x| + erfc(|x|/sigma)/|x|``: the
first (long-range) part is smooth - entire in ``|x|^2`` - so it has a fast-converging
Chebyshev expansion and low Tucker ranks; the second is short-ranged and is left to
local methods.  The full singular kernel is *not* approximable this way (its Chebyshev
coefficients do not decay at the singularity), which is why the hybrid format of Benner,
Khoromskij, Khoromskaia and Sun works with the long-range part.

The long-range kernel is a finite Gaussian integral,

    erf(r / sigma) / r = (2 / sqrt(pi)) * int_0^{1/sigma} exp(-t^2 r^2) dt,

so Gauss-Legendre quadrature in ``t`` gives a separable (CP) sum of Gaussians
``exp(-t_q^2 x^2) exp(-t_q^2 y^2) exp(-t_q^2 z^2)`` with exponential convergence in the
number of nodes.  A sum over ``N`` particles is then a CP tensor of rank ``N * K`` whose
univariate factors are interpolated by Chebyshev series and compressed by the reduced
HOSVD (:meth:`ChebTucker.from_cp`) without forming any 3-D grid.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend as B
from .chebyshev import check_domain, chebyshev_points, chop_degree, vals2coeffs
from .chebtucker import ChebTucker
from ..seeding import as_generator

__all__ = ["newton_long_range", "newton_long_range_cp", "particle_potential",
           "long_range_particle_sum", "lattice_cluster", "random_cloud"]


def _check_sigma(sigma):
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (
            math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    return float(sigma)


def _erf(xp_arr):
    if B.is_torch(xp_arr):
        import torch
        return torch.special.erf(xp_arr)
    from scipy.special import erf
    return erf(xp_arr)


def newton_long_range(sigma: float = 0.1, center=(0.0, 0.0, 0.0)):
    """The long-range Newton kernel ``erf(|x - center|/sigma)/|x - center|`` as ``f(x, y, z)``.

    The removable singularity is filled: the value at the centre is ``2/(sigma sqrt(pi))``
    (a two-term series is used for ``|x| < 1e-3 sigma``).  Works on NumPy and torch arrays.

    Examples
    --------
    >>> f = newton_long_range(0.5)
    >>> round(float(f(np.array(0.0), np.array(0.0), np.array(0.0))), 12)
    2.256758334191
    """
    sigma = _check_sigma(sigma)
    cx, cy, cz = (float(c) for c in center)
    c0 = 2.0 / (sigma * math.sqrt(math.pi))

    def f(x, y, z):
        xp = B.namespace(x)
        r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
        r = xp.sqrt(r2)
        small = r < 1e-3 * sigma
        safe = xp.where(small, xp.ones_like(r), r)
        # erf(u)/u = 2/sqrt(pi) (1 - u^2/3 + ...) near u = 0
        series = c0 * (1.0 - r2 / (3.0 * sigma ** 2))
        return xp.where(small, series, _erf(safe / sigma) / safe)

    return f


def newton_long_range_cp(sigma: float, r_max: float, rtol: float = 1e-10, max_nodes: int = 400):
    """Gauss-Legendre nodes ``t`` and weights ``w`` with
    ``erf(r/sigma)/r ~ sum_q w_q exp(-t_q^2 r^2)`` for ``0 <= r <= r_max``.

    The node count is doubled from 8 until the maximum error on ``[0, r_max]`` is below
    ``rtol * 2/(sigma sqrt(pi))`` (the kernel's maximum).

    Returns
    -------
    t, w, info : arrays and a dict (``nodes``, ``error``)

    Examples
    --------
    >>> t, w, info = newton_long_range_cp(0.2, 3.5, rtol=1e-12)
    >>> bool(info["error"] < 1e-12 * 2 / (0.2 * np.sqrt(np.pi)))
    True
    """
    from scipy.special import erf
    sigma = _check_sigma(sigma)
    if not (r_max > 0 and math.isfinite(r_max)):
        raise ValueError(f"r_max must be positive, got {r_max!r}")
    r = np.linspace(0.0, r_max, 4001)
    exact = np.empty_like(r)
    exact[0] = 2.0 / (sigma * math.sqrt(math.pi))
    exact[1:] = erf(r[1:] / sigma) / r[1:]
    target = rtol * exact[0]
    k = 8
    while True:
        x, wq = np.polynomial.legendre.leggauss(k)
        t = 0.5 * (x + 1.0) / sigma
        w = (0.5 / sigma) * wq * (2.0 / math.sqrt(math.pi))
        approx = np.exp(-np.outer(r ** 2, t ** 2)) @ w
        err = float(np.abs(approx - exact).max())
        if err <= target or 2 * k > max_nodes:
            return t, w, {"nodes": k, "error": err}
        k = int(k * 1.5) + 1


def particle_potential(points, positions, charges, sigma: float, *, chunk: int = 2048):
    """Direct summation ``sum_i q_i erf(|x - x_i|/sigma)/|x - x_i|`` at ``points`` (the reference).

    Cost ``O(m N)`` kernel evaluations for ``m`` points and ``N`` particles.

    Examples
    --------
    >>> particle_potential(np.zeros((1, 3)), np.array([[1.0, 0, 0]]), np.array([2.0]), 0.1)
    array([2.])
    """
    from scipy.special import erf
    sigma = _check_sigma(sigma)
    pts = np.asarray(B.to_numpy(points), dtype=float)
    pos = np.asarray(positions, dtype=float)
    q = np.asarray(charges, dtype=float).reshape(-1)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (m, 3), got {pts.shape}")
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] != q.size:
        raise ValueError(f"positions must have shape ({q.size}, 3) to match charges, got {pos.shape}")
    c0 = 2.0 / (sigma * math.sqrt(math.pi))
    out = np.empty(pts.shape[0])
    for lo in range(0, pts.shape[0], chunk):
        d = pts[lo:lo + chunk, None, :] - pos[None, :, :]
        r = np.sqrt(np.einsum("ijk,ijk->ij", d, d))
        small = r < 1e-3 * sigma
        safe = np.where(small, 1.0, r)
        k = np.where(small, c0 * (1.0 - r ** 2 / (3 * sigma ** 2)), erf(safe / sigma) / safe)
        out[lo:lo + chunk] = k @ q
    return out


def long_range_particle_sum(positions, charges, sigma: float, domain=((-1.0, 1.0),) * 3,
                            degree=None, rtol: float = 1e-8, *, max_degree: int = 512):
    """ChebTucker of ``sum_i q_i erf(|x - x_i|/sigma)/|x - x_i|`` on ``domain``, via CP + RHOSVD.

    Parameters
    ----------
    positions : array (N, 3)
    charges : array (N,)
    sigma : float
        Range-separation length: the kernel is smooth on scales ``>~ sigma``.
    domain : box
    degree : int or None
        Chebyshev degree per axis; None chooses it from the decay of the univariate
        Gaussian factors' coefficients (doubling from 16 up to ``max_degree``).
    rtol : float
        Target relative accuracy (quadrature, degree and Tucker truncation each get a
        fraction of it).

    Returns
    -------
    ChebTucker
        ``info`` holds ``nodes`` (quadrature), ``cp_rank``, ``stage1_ranks``, ``degree``.

    Examples
    --------
    >>> pos = np.array([[0.1, 0.0, 0.0], [-0.2, 0.3, 0.1]]); q = np.array([1.0, -1.0])
    >>> ct = long_range_particle_sum(pos, q, sigma=0.3, rtol=1e-8)
    >>> x = np.array([[0.5, 0.5, 0.5]])
    >>> bool(abs(ct(x)[0] - particle_potential(x, pos, q, 0.3)[0]) < 1e-7)
    True
    """
    sigma = _check_sigma(sigma)
    box = check_domain(domain, 3)
    pos = np.asarray(positions, dtype=float)
    q = np.asarray(charges, dtype=float).reshape(-1)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] != q.size:
        raise ValueError(f"positions must have shape ({q.size}, 3) to match charges, got {pos.shape}")
    B.check_finite(pos, "positions")
    B.check_finite(q, "charges")
    # largest distance between a particle and a point of the box
    corners = np.array(np.meshgrid(*box, indexing="ij")).reshape(3, -1).T
    r_max = float(np.sqrt(((corners[:, None, :] - pos[None, :, :]) ** 2).sum(-1)).max())
    t, w, qinfo = newton_long_range_cp(sigma, r_max, rtol=0.01 * rtol)
    K = t.size
    weights = (w[:, None] * q[None, :]).reshape(-1)          # column (node q, particle i)
    t_cols = np.repeat(t, q.size)

    t_sq = t_cols ** 2

    def factor_coeffs(n, k):
        # (columns, nodes) layout: the DCT runs along contiguous rows
        x = chebyshev_points(n, box[k])
        centres = np.tile(pos[:, k], K)
        vals = np.exp(-t_sq[:, None] * (x[None, :] - centres[:, None]) ** 2)
        return vals2coeffs(vals, axes=1).T

    if degree is None:
        n = 16
        while True:
            coeffs = [factor_coeffs(n, k) for k in range(3)]
            # every column is a Gaussian of height <= 1: chop relative to its own maximum
            resolved = all(chop_degree(np.abs(C).max(axis=1), 0.01 * rtol)[1] for C in coeffs)
            if resolved or 2 * n > max_degree:
                break
            n *= 2
        chops = [chop_degree(np.abs(C).max(axis=1), 0.01 * rtol)[0] for C in coeffs]
        coeffs = [C[:max(c, 1) + 1] for C, c in zip(coeffs, chops)]
    else:
        degrees = (degree,) * 3 if isinstance(degree, (int, np.integer)) else tuple(degree)
        coeffs = [factor_coeffs(int(n), k) for k, n in enumerate(degrees)]
        resolved = None
    ct = ChebTucker.from_cp(weights, coeffs, box, rtol=rtol)
    ct.info.update(nodes=K, quadrature_error=qinfo["error"], degree=ct.degrees,
                   resolved=resolved, particles=int(q.size), sigma=sigma)
    return ct


def lattice_cluster(shape=(10, 10, 10), spacing: float = 0.15, center=(0.0, 0.0, 0.0),
                    charges="unit", seed=0):
    """Particles on a ``shape`` lattice with the given ``spacing``, centred at ``center``.

    ``charges``: ``"unit"`` (all +1), ``"alternating"`` (+-1 checkerboard, a salt-like crystal)
    or ``"random"`` (uniform in [-1, 1], from ``seed``).  Returns ``(positions, charges)``.

    Examples
    --------
    >>> pos, q = lattice_cluster((2, 2, 2), 1.0)
    >>> pos.shape, float(q.sum())
    ((8, 3), 8.0)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive integers, got {shape}")
    axes = [(np.arange(s) - 0.5 * (s - 1)) * spacing + c for s, c in zip(shape, center)]
    pos = np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T
    idx = np.array(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")).reshape(3, -1)
    if charges == "unit":
        q = np.ones(pos.shape[0])
    elif charges == "alternating":
        q = np.where(idx.sum(axis=0) % 2 == 0, 1.0, -1.0)
    elif charges == "random":
        q = as_generator(seed).uniform(-1.0, 1.0, pos.shape[0])
    else:
        raise ValueError(f"charges must be 'unit', 'alternating' or 'random', got {charges!r}")
    return pos, q


def random_cloud(n: int = 1000, box=((-0.8, 0.8),) * 3, seed=0, charges="random"):
    """``n`` particles uniformly at random in ``box`` with charges ``"random"`` (uniform
    in [-1, 1]) or ``"unit"``.  Returns ``(positions, charges)``.

    Examples
    --------
    >>> pos, q = random_cloud(5, seed=1)
    >>> pos.shape
    (5, 3)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    b = check_domain(box, 3, "box")
    rng = as_generator(seed)
    pos = b[:, 0] + (b[:, 1] - b[:, 0]) * rng.random((n, 3))
    if charges == "random":
        q = rng.uniform(-1.0, 1.0, n)
    elif charges == "unit":
        q = np.ones(n)
    else:
        raise ValueError(f"charges must be 'random' or 'unit', got {charges!r}")
    return pos, q
