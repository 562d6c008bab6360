"""The Poisson / diffusion test problem: ``-div(a grad u) = f`` on the unit box, u = 0 on its boundary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend as bk
from ..operators.stencil import PoissonStencil

__all__ = ["PoissonProblem", "poisson", "grid_coordinates", "sphere_obstacles", "RHS_KINDS"]

RHS_KINDS = ("random", "ones", "point", "smooth")


@dataclass
class PoissonProblem:
    """A linear system from the Poisson family: operator ``A``, right-hand side ``b``, ``meta``."""

    A: Any
    b: Any
    meta: dict = field(default_factory=dict)


def sphere_obstacles(shape: tuple) -> np.ndarray:
    """The benchmark obstacles: three spheres (circles in 2D) of radius 0.12 of the box's
    longest side, centred at (0.3, 0.3, 0.3), (0.7, 0.6, 0.4), (0.5, 0.8, 0.7) in units
    of that side; a boolean mask of ``shape``, True = solid.

    >>> int(sphere_obstacles((32, 32)).sum())
    136
    """
    X = np.indices(shape)
    n = max(shape)
    solid = np.zeros(shape, dtype=bool)
    for centre in [(0.3, 0.3, 0.3), (0.7, 0.6, 0.4), (0.5, 0.8, 0.7)]:
        solid |= sum(((X[a] + 0.5) / n - centre[a]) ** 2 for a in range(len(shape))) < 0.0144
    return solid


def grid_coordinates(n: int, dim: int) -> list[np.ndarray]:
    """Coordinates of the interior grid points, one ``(n,)*dim`` array per axis."""
    h = 1.0 / (n + 1)
    axis = h * np.arange(1, n + 1)
    return list(np.meshgrid(*([axis] * dim), indexing="ij"))


def _rhs(kind: Any, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    N = n ** dim
    if not isinstance(kind, str):
        f = bk.to_numpy(kind).astype(np.float64).reshape(-1)
        if f.shape[0] != N:
            raise ValueError(f"rhs must have {N} entries (n**dim), got {f.shape[0]}")
        if not np.all(np.isfinite(f)):
            raise ValueError("rhs contains NaN or Inf")
        return f
    if kind == "random":
        return rng.standard_normal(N)
    if kind == "ones":
        return np.ones(N)
    if kind == "point":
        # A discrete delta at the centre (or the nearest point): unit mass, f = 1/h^dim.
        f = np.zeros((n,) * dim)
        f[(n // 2,) * dim] = float((n + 1) ** dim)
        return f.reshape(-1)
    if kind == "smooth":
        # A few low Fourier modes with random amplitudes: smooth and seed-dependent.
        X = grid_coordinates(n, dim)
        f = np.zeros((n,) * dim)
        for _ in range(4):
            k = rng.integers(1, 4, size=dim)
            term = rng.standard_normal()
            for axis in range(dim):
                term = term * np.sin(np.pi * k[axis] * X[axis])
            f += term
        return f.reshape(-1)
    raise ValueError(f"rhs must be one of {RHS_KINDS} or an array, got {kind!r}")


def poisson(n: int = 128, dim: int = 2, coefficient: Any = None, rhs: Any = "random",
            seed: int | None = 0, backend: str = "numpy", device=None, format: str = "stencil",
            dtype=np.float64, shift: float = 0.0, engine: str | None = None, *,
            mask: Any = None, bc: Any = None, spacing: Any = None) -> PoissonProblem:
    """The discrete Poisson problem ``A u = b`` with ``n`` interior points per axis.

    Parameters
    ----------
    n : int or tuple of int
        Interior points per axis; ``h = 1/(n+1)``, ``n**dim`` unknowns.  A tuple
        ``(nx, ny[, nz])`` gives a rectangular grid (a :class:`~lrsolve.operators.grid.
        GridOperator`, isotropic spacing ``h = 1/(max(n)+1)``).
    dim : int
        2 or 3 (1 also works); must match the length of a tuple ``n``.
    coefficient : None, float, array of shape ``(n,)*dim`` or callable
        Diffusion coefficient ``a`` sampled at the grid points; a callable gets the
        coordinate arrays ``(X, Y[, Z])`` and returns the field.  On the grid operator
        (tuple ``n``, ``mask`` or ``bc`` given, or ``format="grid"``) it is a cell
        coefficient and face values are harmonic means, so jumps are represented exactly;
        otherwise face values are arithmetic means of the two points (as before).
    rhs : {"random", "ones", "point", "smooth"} or array
        Right-hand side: Gaussian noise, constant, a unit point source at the centre,
        a few smooth modes, or given values.
    seed : int or None
        Seed of the random right-hand sides.
    backend, device : str, optional
        Where ``A`` and ``b`` live: ``"numpy"``, ``"torch"`` or ``"cupy"``.
    format : {"stencil", "csr"}
        Matrix-free :class:`~lrsolve.operators.PoissonStencil` or assembled CSR.
    dtype : dtype
        float64 (default) or float32.
    shift : float
        Solve with ``A + shift I`` (Helmholtz-like sign conventions: shift > 0 keeps SPD).
    engine : None or "petsc"
        ``"petsc"`` returns a :class:`lrsolve.petsc.DistributedProblem` instead: the same
        operator on a PETSc DMDA over the ranks of ``COMM_WORLD`` (``format="stencil"`` ->
        matrix-free shell with halo exchange, ``"csr"`` -> assembled AIJ), ``b`` a PETSc Vec.
    mask : None or bool array of the grid shape
        True marks a solid cell: excluded (zero in ``b`` and in the solution), its faces
        Neumann walls - the pressure system of a fluid simulation with obstacles.
    bc : None, "dirichlet", "neumann" or dict
        Boundary condition per side (``{"x-": "neumann", ...}``, missing sides Dirichlet).
        A region that touches no Dirichlet side floats: the generated ``b`` is projected
        onto the range (zero mean on the region), see ``A.project_null``.
    spacing : None, float or tuple
        Cell size per axis of the grid operator (default ``1/(max(n)+1)``).

    Returns
    -------
    PoissonProblem
        ``A``, ``b`` and ``meta`` (n, dim, h, unknowns, format, backend, rhs, coefficient).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=64, dim=2, rhs="ones")
    >>> P.A.shape, P.meta["unknowns"]
    ((4096, 4096), 4096)
    """
    if engine not in (None, "petsc"):
        raise ValueError(f"engine must be None or 'petsc', got {engine!r}")
    if format == "grid" or not isinstance(n, (int, np.integer)) or mask is not None \
            or bc is not None or spacing is not None:
        if engine is not None:
            raise ValueError("engine='petsc' takes the unit-box problem (int n, no mask/bc)")
        return _grid_problem(n, dim, coefficient, rhs, seed, backend, device, format, dtype,
                             shift, mask, bc, spacing)
    if format not in ("stencil", "csr"):
        raise ValueError(f"format must be 'stencil' or 'csr', got {format!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
    rng = np.random.default_rng(seed)
    if callable(coefficient):
        coefficient = np.asarray(coefficient(*grid_coordinates(n, dim)), dtype=np.float64)
    op = PoissonStencil(n, dim, coefficient, shift=shift, backend=backend, device=device,
                        dtype=dtype)
    A = op if format == "stencil" else op.to_csr()
    b = bk.asarray(_rhs(rhs, n, dim, rng).astype(op.dtype), backend=backend, device=device)
    meta = {
        "n": int(n), "dim": int(dim), "h": op.h, "unknowns": int(n) ** dim, "format": format,
        "backend": backend, "rhs": rhs if isinstance(rhs, str) else "array",
        "coefficient": "constant" if op.coefficient is None else "variable",
        "grid_shape": op.grid_shape, "seed": seed, "shift": shift,
    }
    problem = PoissonProblem(A=A, b=b, meta=meta)
    if engine == "petsc":
        # Distributed over COMM_WORLD on a DMDA (lrsolve.petsc, optional; imported here only).
        from ..petsc import to_petsc
        return to_petsc(PoissonProblem(A=op, b=b, meta=meta),
                        format="matfree" if format == "stencil" else "aij")
    return problem


def _grid_problem(n, dim, coefficient, rhs, seed, backend, device, format, dtype, shift, mask,
                  bc, spacing) -> PoissonProblem:
    """``poisson`` on the general grid operator (rectangular, cell coefficient, mask, bc)."""
    from ..operators.grid import GridOperator
    if format not in ("stencil", "csr", "grid"):
        raise ValueError(f"format must be 'stencil', 'grid' or 'csr', got {format!r}")
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        shape = (int(n),) * dim
    else:
        try:
            shape = tuple(n)
        except TypeError:
            raise TypeError(f"n must be an int or a tuple of ints, got {n!r}") from None
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                   for s in shape) or not 1 <= len(shape) <= 3:
            raise ValueError(f"n must hold 1 to 3 positive ints, got {n!r}")
        if dim not in (2, len(shape)):  # 2 is the default: a 3-tuple needs no dim=3
            raise ValueError(f"dim={dim} does not match n={n!r} ({len(shape)} axes)")
        shape = tuple(int(s) for s in shape)
    h = 1.0 / (max(shape) + 1) if spacing is None else spacing
    hs = (float(h),) * len(shape) if np.isscalar(h) else tuple(float(v) for v in h)
    coords = [v for v in np.meshgrid(*[hs[a] * np.arange(1, s + 1) for a, s in enumerate(shape)],
                                     indexing="ij")]
    if callable(coefficient):
        coefficient = np.asarray(coefficient(*coords), dtype=np.float64)
    op = GridOperator(shape, spacing=spacing, coefficient=coefficient, mask=mask,
                      bc="dirichlet" if bc is None else bc, shift=shift, backend=backend,
                      device=device, dtype=dtype)
    rng = np.random.default_rng(seed)
    N = op.shape[0]
    if not isinstance(rhs, str):
        f = bk.to_numpy(rhs).astype(np.float64).reshape(-1)
        if f.shape[0] != N:
            raise ValueError(f"rhs must have {N} entries (the grid's cells), got {f.shape[0]}")
        if not np.all(np.isfinite(f)):
            raise ValueError("rhs contains NaN or Inf")
    elif rhs == "random":
        f = rng.standard_normal(N)
    elif rhs == "ones":
        f = np.ones(N)
    elif rhs == "point":
        f = np.zeros(shape)
        f[tuple(s // 2 for s in shape)] = 1.0 / float(np.prod(hs))
        f = f.reshape(-1)
    elif rhs == "smooth":
        f = np.zeros(shape)
        for _ in range(4):
            k = rng.integers(1, 4, size=len(shape))
            term = rng.standard_normal()
            for a in range(len(shape)):
                term = term * np.sin(np.pi * k[a] * coords[a] / (hs[a] * (shape[a] + 1)))
            f += term
        f = f.reshape(-1)
    else:
        raise ValueError(f"rhs must be one of {RHS_KINDS} or an array, got {rhs!r}")
    if isinstance(rhs, str):
        f = np.where(op.active.reshape(-1), f, 0.0)
        if op.singular:
            f = op.project_null(f)
    A = op if format in ("stencil", "grid") else op.to_csr()
    b = bk.asarray(f.astype(op.dtype), backend=backend, device=device)
    meta = {
        "n": shape, "dim": len(shape), "h": hs, "unknowns": op.unknowns, "format": format,
        "backend": backend, "rhs": rhs if isinstance(rhs, str) else "array",
        "coefficient": "constant" if np.isscalar(op.coefficient) else "variable",
        "grid_shape": shape, "seed": seed, "shift": shift, "bc": op.bc,
        "solid_cells": 0 if op.mask is None else int(op.mask.sum()),
        "singular": op.singular,
    }
    return PoissonProblem(A=A, b=b, meta=meta)
