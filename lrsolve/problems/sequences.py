"""Sequences of related linear systems, as a time-stepping loop produces them (for relax/).

* :func:`paper_sequence` - the family of Khodak et al., "Learning to Relax" (ICLR 2024):
  the 10 x 10 integer-stencil Laplacian (``delsq(numgrid('S', 12))`` in their MATLAB)
  plus ``c I`` with ``c = -0.15 + 0.6 Beta(0.5, 1.5)`` (high variance) or
  ``Beta(2, 6)`` (low variance), right-hand sides standard normal truncated to the ball
  of radius ``sqrt(N)``; ``n`` may be raised for larger grids of the same family.
* :func:`shifted_laplacian_sequence` - a diffusion-like sequence: the ``n x n`` integer
  Laplacian plus ``c I``, ``c`` log-uniform in ``[1e-3, 0.3]`` (an implicit time step
  whose size varies), random right-hand sides.
* :class:`HeatEquation` / :func:`heat_sequence` - the paper's 2D heat equation: Crank-
  Nicolson on ``(nx - 1)^2`` interior points, diffusion
  ``kappa(t) = max(0.1 sin(2 pi t), -10 sin(2 pi t))``, forcing a bump moving on a circle,
  initial condition a bump in the middle.

Every instance is a :class:`SequenceItem` ``(A, b, context, x0, meta)``; ``A`` is an
lrsolve stencil operator (``A.to_csr()`` for a sparse matrix).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..operators.stencil import poisson_operator
from ..seeding import as_generator

__all__ = ["SequenceItem", "paper_sequence", "shifted_laplacian_sequence", "HeatEquation",
           "heat_sequence", "truncated_normal", "heat_diffusivity", "bump"]


@dataclass
class SequenceItem:
    """One system of a sequence: ``A x = b``; ``context`` a scalar describing it (the shift
    c or the diffusion kappa); ``x0`` a warm start (the previous step's solution) or None."""

    A: Any
    b: np.ndarray
    context: float
    x0: Any = None
    meta: dict = field(default_factory=dict)


def truncated_normal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A standard normal vector conditioned on ``||x|| <= sqrt(n)`` (rejection sampling)."""
    while True:
        x = rng.standard_normal(n)
        if x @ x <= n:
            return x


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    return int(T)


def paper_sequence(T: int = 5000, n: int = 10, variant: str = "high", seed=0) -> list:
    """The paper's i.i.d. sequence: ``A_t = L + c_t I`` (integer 5-point Laplacian, n x n grid).

    Parameters
    ----------
    T : int
        Number of systems.
    n : int
        Grid points per axis (10 in the paper; larger grids give the same family).
    variant : {"high", "low"}
        ``c = -0.15 + 0.6 Beta(0.5, 1.5)`` ("high" variance) or ``Beta(2, 6)`` ("low").
    seed : int or numpy.random.Generator

    Returns
    -------
    list of SequenceItem
        ``context`` is the shift ``c``.

    Examples
    --------
    >>> seq = paper_sequence(T=3, seed=0)
    >>> seq[0].A.shape, -0.15 <= seq[0].context <= 0.45
    ((100, 100), True)
    """
    T = _check_T(T)
    if variant not in ("high", "low"):
        raise ValueError(f"variant must be 'high' or 'low', got {variant!r}")
    a, b = (0.5, 1.5) if variant == "high" else (2.0, 6.0)
    rng = as_generator(seed)
    N = n * n
    items = []
    for t in range(T):
        c = -0.15 + 0.6 * rng.beta(a, b)
        items.append(SequenceItem(poisson_operator(n, 2, shift=c, scaled=False),
                                  truncated_normal(N, rng), c,
                                  meta={"t": t, "variant": variant, "n": n}))
    return items


def shifted_laplacian_sequence(T: int = 200, n: int = 40, c_range=(1e-3, 0.3),
                               distribution: str = "log-uniform", seed=0) -> list:
    """A diffusion-like sequence ``L + c_t I``, ``c_t`` log-uniform (or uniform) in ``c_range``.

    ``L`` is the integer 5-point Laplacian on an ``n x n`` grid, so ``c = h^2 / (kappa dt)``
    for an implicit Euler step of size ``dt``: small ``c`` is a long, hard step.

    Examples
    --------
    >>> seq = shifted_laplacian_sequence(T=2, n=8, seed=1)
    >>> seq[1].A.shape, 1e-3 <= seq[1].context <= 0.3
    ((64, 64), True)
    """
    T = _check_T(T)
    lo, hi = (float(v) for v in c_range)
    if not (0 < lo < hi):
        raise ValueError(f"c_range must be (low, high) with 0 < low < high, got {c_range!r}")
    if distribution not in ("log-uniform", "uniform"):
        raise ValueError(f"distribution must be 'log-uniform' or 'uniform', got {distribution!r}")
    rng = as_generator(seed)
    items = []
    for t in range(T):
        if distribution == "log-uniform":
            c = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            c = rng.uniform(lo, hi)
        items.append(SequenceItem(poisson_operator(n, 2, shift=c, scaled=False),
                                  truncated_normal(n * n, rng), c, meta={"t": t, "n": n}))
    return items


def heat_diffusivity(t):
    """The paper's time-varying diffusion ``max(0.1 sin(2 pi t), -10 sin(2 pi t))``."""
    s = np.sin(2.0 * np.pi * np.asarray(t, dtype=float))
    return np.maximum(0.1 * s, -10.0 * s)


def bump(points: np.ndarray, center, radius: float) -> np.ndarray:
    """Smooth bump ``exp(1 - 1 / (1 - min(1, |x - center|^2 / radius^2)))`` at (m, 2) points."""
    d2 = np.sum((points - np.asarray(center)) ** 2, axis=1) / radius ** 2
    d2 = np.minimum(d2, 1.0)
    with np.errstate(divide="ignore"):
        return np.exp(1.0 - 1.0 / (1.0 - d2))


class HeatEquation:
    """2D heat equation ``u_t = kappa(t) lap(u) + f(t, x)`` by Crank-Nicolson (the paper's).

    ``nx`` intervals per axis (``(nx - 1)^2`` unknowns, ``dx = 1 / nx``), zero Dirichlet
    boundary, ``dt = stoptime / T``.  Each step solves
    ``(I + a K) u_new = (I - a K) u + dt f(t + dt/2)`` with ``K`` the 5-point ``-lap`` and
    ``a = kappa(t + dt/2) dt / 2``.

    Examples
    --------
    >>> pde = HeatEquation(nx=16, T=10)
    >>> A, b, kappa = pde.system()
    >>> A.shape, kappa >= 0
    ((225, 225), True)
    >>> pde.advance(np.zeros(225)); round(pde.t, 3)
    0.5
    """

    def __init__(self, nx: int = 50, T: int = 200, stoptime: float = 5.0):
        if isinstance(nx, bool) or not isinstance(nx, (int, np.integer)) or nx < 3:
            raise ValueError(f"nx must be an int >= 3, got {nx!r}")
        self.T = _check_T(T)
        if not (stoptime > 0):
            raise ValueError(f"stoptime must be > 0, got {stoptime!r}")
        self.nx = int(nx)
        self.n = self.nx - 1
        self.dt = float(stoptime) / self.T
        self.t = 0.0
        self.step = 0
        dx = 1.0 / self.nx
        axis = dx * np.arange(1, self.nx)
        I, J = np.meshgrid(axis, axis, indexing="ij")
        self.points = np.column_stack([I.reshape(-1), J.reshape(-1)])
        self.u = bump(self.points, (0.5, 0.5), 0.25)

    def forcing(self, t: float) -> np.ndarray:
        center = (0.5 + math.cos(16.0 * math.pi * t) / 4.0, 0.5 + math.sin(16.0 * math.pi * t) / 4.0)
        return 32.0 * bump(self.points, center, 0.125)

    def system(self):
        """``(A, b, kappa)`` of the current step; ``A`` a stencil operator (SPD)."""
        half = self.t + 0.5 * self.dt
        kappa = float(heat_diffusivity(half))
        a = max(0.5 * kappa * self.dt, 1e-300)
        A = poisson_operator(self.n, 2, coefficient=a, shift=1.0, scaled=True)
        b = 2.0 * self.u - A @ self.u + self.dt * self.forcing(half)
        return A, b, kappa

    def advance(self, u) -> None:
        """Accept the solution of the current step and move to the next."""
        u = np.asarray(u, dtype=float).reshape(-1)
        if u.shape != self.u.shape:
            raise ValueError(f"u must have shape {self.u.shape}, got {u.shape}")
        self.u = u
        self.t += self.dt
        self.step += 1


def heat_sequence(nx: int = 50, T: int = 200, stoptime: float = 5.0) -> list:
    """The heat equation's systems, precomputed along the exact trajectory (direct solves).

    Each item's ``x0`` is the previous step's solution (the warm start a simulation
    uses), ``context`` is ``kappa(t + dt/2)``.  Solving along the exact trajectory makes
    every tuner and fixed omega face the very same systems.

    Examples
    --------
    >>> seq = heat_sequence(nx=12, T=4)
    >>> len(seq), seq[0].x0.shape
    (4, (121,))
    """
    from scipy.sparse.linalg import spsolve
    pde = HeatEquation(nx, T, stoptime)
    items = []
    for t in range(pde.T):
        A, b, kappa = pde.system()
        x_prev = pde.u.copy()
        u = spsolve(A.to_csr().tocsc(), b)
        items.append(SequenceItem(A, b, kappa, x0=x_prev,
                                  meta={"t": t, "time": pde.t, "nx": nx, "dt": pde.dt}))
        pde.advance(u)
    return items
