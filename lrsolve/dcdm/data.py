"""Training vectors for DCDM: the paper's Ritz-vector recipe, made cheap with exact eigenvectors,
and (:func:`operator_vectors`, :func:`training_operators`) its counterpart for masked,
variable-coefficient operators without closed-form eigenvectors.

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

__all__ = ["laplacian_eigenvalues", "ritz_vectors", "operator_vectors", "training_operators"]


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


def operator_vectors(op, count: int, rng: np.random.Generator, *, preconditioner=None,
                     weights=(1.0, 3.0, 3.0), jacobi_steps: int = 4,
                     dtype=np.float32) -> np.ndarray:
    """``count`` unit training vectors for a general grid operator (masks, coefficients,
    Neumann walls), shape ``(count, *grid_shape)``.

    The Ritz recipe's point - most weight on the low end of the spectrum, some on all of
    it - without an eigensolve: each vector is ``a z + b S z + c M z`` (each term
    normalised), with ``z`` white noise on the active cells, ``S z`` the same noise after
    ``jacobi_steps`` damped-Jacobi sweeps (``omega = 2/3``: the upper part of the
    spectrum damped), ``M z`` one multigrid cycle (about ``A^{-1} z``: the lowest modes
    dominate), and ``(a, b, c) = weights * N(0, 1)`` drawn per vector.  Zero on excluded
    cells and, for a singular operator, orthogonal to its null space (a compatible
    right-hand side).

    Parameters
    ----------
    op : GridOperator
        NumPy grid operator.
    count : int
        Number of vectors.
    rng : numpy.random.Generator
    preconditioner : GMG, optional
        ``M``; built (``GMG(op)``) when None.
    weights : 3 floats
        Scales of the three components.
    jacobi_steps : int
        Sweeps of the middle component.

    Examples
    --------
    >>> import numpy as np
    >>> from lrsolve.operators.grid import GridOperator
    >>> m = np.zeros((16, 16), bool); m[5:9, 5:9] = True
    >>> v = operator_vectors(GridOperator((16, 16), mask=m, bc="neumann"), 3,
    ...                      np.random.default_rng(0))
    >>> v.shape, float(np.abs(v[:, 5:9, 5:9]).max()), bool(abs(v[0].sum()) < 1e-4)
    ((3, 16, 16), 0.0, True)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if preconditioner is None:
        from ..multigrid import GMG
        preconditioner = GMG(op)
    N = op.shape[0]
    active = np.broadcast_to(np.asarray(op.active), op.grid_shape).reshape(-1).astype(np.float64)
    inv_d = active / np.asarray(op.diagonal(), dtype=np.float64)
    z = rng.standard_normal((N, count)) * active[:, None]
    s = z.copy()
    for _ in range(jacobi_steps):
        s -= (2.0 / 3.0) * inv_d[:, None] * (op @ s)
    m = preconditioner @ z
    parts = []
    for part in (z, s, m):
        part = op.project_null(part * active[:, None])
        parts.append(part / np.maximum(np.linalg.norm(part, axis=0), 1e-300))
    c = rng.standard_normal((3, count)) * np.asarray(weights, dtype=np.float64)[:, None]
    v = sum(ci[None, :] * p for ci, p in zip(c, parts))
    v = op.project_null(v * active[:, None])
    v /= np.maximum(np.linalg.norm(v, axis=0), 1e-300)
    return np.ascontiguousarray(v.T.reshape((count,) + tuple(op.grid_shape))).astype(dtype)


def training_operators(grid: int, dim: int, domains: str = "mix", seed: int = 0) -> list:
    """The grid operators DCDM is trained on: ``"box"`` is the paper's domain (the
    Dirichlet box ``(grid,)*dim``); ``"mix"`` adds the fluid-pressure kind of operator:

    * the Dirichlet box (the paper's);
    * boxes closed on every side (pure Neumann, singular), with 1-3 random spheres and
      boxes as solid obstacles; one without obstacles;
    * a box open at the top (``y+`` Dirichlet, the rest closed) with obstacles;
    * a Dirichlet box with obstacles, and one with a smooth log-normal coefficient
      (``sigma = 1``);
    * a rectangular ``(grid, 3 grid / 4, ...)`` closed box with obstacles.

    Deterministic by ``seed``.
    """
    from ..operators.grid import GridOperator
    from ..problems.fluids import obstacle_mask
    if domains not in ("box", "mix"):
        raise ValueError(f"domains must be 'box' or 'mix', got {domains!r}")
    cube = (grid,) * dim
    ops = [GridOperator(cube)]
    if domains == "box":
        return ops
    rng = np.random.default_rng(seed)

    def obstacles(shape):
        for _ in range(20):
            shapes = []
            for _ in range(int(rng.integers(1, 4))):
                if rng.random() < 0.5:
                    shapes.append(("sphere", tuple(rng.uniform(0.2, 0.8, dim)),
                                   float(rng.uniform(0.08, 0.22))))
                else:
                    lo = rng.uniform(0.1, 0.7, dim)
                    shapes.append(("box", tuple(lo), tuple(lo + rng.uniform(0.08, 0.3, dim))))
            mask = obstacle_mask(shapes, shape)
            if mask.any() and not mask.all():
                return mask
        return None  # pragma: no cover - 20 draws always give one

    closed = "neumann"
    top_open = {s: "neumann" for s in ("x-", "x+", "y-", "y+", "z-", "z+")[:2 * dim]}
    top_open["y+"] = "dirichlet"
    h = 1.0 / grid
    ops.append(GridOperator(cube, spacing=h, mask=obstacles(cube), bc=closed))
    ops.append(GridOperator(cube, spacing=h, mask=obstacles(cube), bc=top_open))
    ops.append(GridOperator(cube, spacing=h, mask=obstacles(cube), bc=closed))
    ops.append(GridOperator(cube, mask=obstacles(cube)))
    from scipy.ndimage import gaussian_filter
    field = gaussian_filter(rng.standard_normal(cube), sigma=grid / 16, mode="wrap")
    field /= field.std()
    ops.append(GridOperator(cube, coefficient=np.exp(field)))
    ops.append(GridOperator(cube, spacing=h, bc=closed))
    rect = (grid, (3 * grid) // 4) + (grid,) * (dim - 2)
    ops.append(GridOperator(rect, spacing=h, mask=obstacles(rect), bc=closed))
    return ops
