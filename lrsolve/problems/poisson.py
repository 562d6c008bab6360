"""The Poisson / diffusion test problem: ``-div(a grad u) = f`` on the unit box, u = 0 on its boundary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend as bk
from ..operators.stencil import PoissonStencil

__all__ = ["PoissonProblem", "poisson", "grid_coordinates", "RHS_KINDS"]

RHS_KINDS = ("random", "ones", "point", "smooth")


@dataclass
class PoissonProblem:
    """A linear system from the Poisson family: operator ``A``, right-hand side ``b``, ``meta``."""

    A: Any
    b: Any
    meta: dict = field(default_factory=dict)


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
            dtype=np.float64, shift: float = 0.0, engine: str | None = None) -> PoissonProblem:
    """The discrete Poisson problem ``A u = b`` with ``n`` interior points per axis.

    Parameters
    ----------
    n : int
        Interior points per axis; ``h = 1/(n+1)``, ``n**dim`` unknowns.
    dim : int
        2 or 3 (1 also works).
    coefficient : None, float, array of shape ``(n,)*dim`` or callable
        Diffusion coefficient ``a`` sampled at the grid points; a callable gets the
        coordinate arrays ``(X, Y[, Z])`` and returns the field.
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
