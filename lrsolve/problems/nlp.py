"""Equality-constrained NLP test problems for ``lr.optimize``.

* 26 classic small problems written from their published definitions: Hock &
  Schittkowski, *Test Examples for Nonlinear Programming Codes* (Lecture Notes in
  Economics and Mathematical Systems 187, 1981) - HS6, 7, 8, 9, 26, 27, 28, 39, 40, 42,
  46, 47, 48, 49, 50, 51, 52, 56, 61, 77, 78, 79, 81 (HS81 without its inactive bounds),
  Byrd-Tapia BT1, BT2 (as in CUTEst) and the Maratos-effect example
  (Nocedal & Wright, *Numerical Optimization*, Example 15.4).  Each has its standard
  starting point and known optimal value; derivatives come from autograd
  (:meth:`lrsolve.optimize.Problem.from_torch`).
* :func:`constrained_logistic` - mean logistic loss on a scikit-learn data set (breast
  cancer, wine, digits) subject to random Gaussian linear equalities and ``‖x‖² = 1``,
  as in Hong et al. (ICML 2023).
* :func:`pde_control` - ``min ½‖w - w_target‖² + 0.05‖z‖²  s.t.  Δ_h w + z = 0`` on an
  ``n x n`` grid with lrsolve's Poisson operator (sparse Jacobian and Hessian).
* :func:`nlp_test_set` - all of the above as one list.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["NLPTestProblem", "HS_PROBLEMS", "hs_problem", "constrained_logistic", "pde_control",
           "nlp_test_set"]


@dataclass
class NLPTestProblem:
    """A test problem: the :class:`~lrsolve.optimize.Problem`, its standard start and,
    where published, the optimal value ``fopt`` (and a solution ``xopt``)."""

    name: str
    problem: object
    x0: np.ndarray
    fopt: float | None = None
    xopt: np.ndarray | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.x0.size)


SQ2 = math.sqrt(2.0)

# name: (f(x), c(x) -> list of scalars, x0, fopt, xopt or None, source)
# Written with torch operations so that Problem.from_torch differentiates them.
_SPECS: dict[str, tuple] = {}


def _spec(name, x0, fopt, xopt=None, source="Hock & Schittkowski (1981)"):
    def register(fc):
        _SPECS[name] = (fc, np.asarray(x0, dtype=float), fopt,
                        None if xopt is None else np.asarray(xopt, dtype=float), source)
        return fc
    return register


@_spec("hs6", [-1.2, 1.0], 0.0, [1.0, 1.0])
def _hs6(x, t):
    return (1 - x[0]) ** 2, [10 * (x[1] - x[0] ** 2)]


@_spec("hs7", [2.0, 2.0], -math.sqrt(3.0), [0.0, math.sqrt(3.0)])
def _hs7(x, t):
    return t.log(1 + x[0] ** 2) - x[1], [(1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4]


@_spec("hs8", [2.0, 1.0], -1.0, [4.601594, 1.955843])
def _hs8(x, t):
    return x[0] * 0 - 1.0, [x[0] ** 2 + x[1] ** 2 - 25, x[0] * x[1] - 9]


@_spec("hs9", [0.0, 0.0], -0.5, [-3.0, -4.0])
def _hs9(x, t):
    return (t.sin(math.pi * x[0] / 12) * t.cos(math.pi * x[1] / 16),
            [4 * x[0] - 3 * x[1]])


@_spec("hs26", [-2.6, 2.0, 2.0], 0.0, [1.0, 1.0, 1.0])
def _hs26(x, t):
    return (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4, [(1 + x[1] ** 2) * x[0] + x[2] ** 4 - 3]


@_spec("hs27", [2.0, 2.0, 2.0], 0.04, [-1.0, 1.0, 0.0])
def _hs27(x, t):
    return 0.01 * (x[0] - 1) ** 2 + (x[1] - x[0] ** 2) ** 2, [x[0] + x[2] ** 2 + 1]


@_spec("hs28", [-4.0, 1.0, 1.0], 0.0, [0.5, -0.5, 0.5])
def _hs28(x, t):
    return (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2, [x[0] + 2 * x[1] + 3 * x[2] - 1]


@_spec("hs39", [2.0, 2.0, 2.0, 2.0], -1.0, [1.0, 1.0, 0.0, 0.0])
def _hs39(x, t):
    return -x[0], [x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2]


@_spec("hs40", [0.8] * 4, -0.25,
       [2 ** (-1 / 3), 2 ** (-1 / 2), 2 ** (-11 / 12), 2 ** (-1 / 4)])
def _hs40(x, t):
    return (-x[0] * x[1] * x[2] * x[3],
            [x[0] ** 3 + x[1] ** 2 - 1, x[0] ** 2 * x[3] - x[2], x[3] ** 2 - x[1]])


@_spec("hs42", [1.0] * 4, 28 - 10 * SQ2, [2.0, 2.0, 0.6 * SQ2, 0.8 * SQ2])
def _hs42(x, t):
    return ((x[0] - 1) ** 2 + (x[1] - 2) ** 2 + (x[2] - 3) ** 2 + (x[3] - 4) ** 2,
            [x[0] - 2, x[2] ** 2 + x[3] ** 2 - 2])


@_spec("hs46", [SQ2 / 2, 1.75, 0.5, 2.0, 2.0], 0.0, [1.0] * 5)
def _hs46(x, t):
    return ((x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4 + (x[4] - 1) ** 6,
            [x[0] ** 2 * x[3] + t.sin(x[3] - x[4]) - 1, x[1] + x[2] ** 4 * x[3] ** 2 - 2])


@_spec("hs47", [2.0, SQ2, -1.0, 2 - SQ2, 0.5], 0.0, [1.0] * 5)
def _hs47(x, t):
    return ((x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 3 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 4,
            [x[0] + x[1] ** 2 + x[2] ** 3 - 3, x[1] - x[2] ** 2 + x[3] - 1, x[0] * x[4] - 1])


@_spec("hs48", [3.0, 5.0, -3.0, 2.0, -2.0], 0.0, [1.0] * 5)
def _hs48(x, t):
    return ((x[0] - 1) ** 2 + (x[1] - x[2]) ** 2 + (x[3] - x[4]) ** 2,
            [x[0] + x[1] + x[2] + x[3] + x[4] - 5, x[2] - 2 * (x[3] + x[4]) + 3])


@_spec("hs49", [10.0, 7.0, 2.0, -3.0, 0.8], 0.0, [1.0] * 5)
def _hs49(x, t):
    return ((x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4 + (x[4] - 1) ** 6,
            [x[0] + x[1] + x[2] + 4 * x[3] - 7, x[2] + 5 * x[4] - 6])


@_spec("hs50", [35.0, -31.0, 11.0, 5.0, -5.0], 0.0, [1.0] * 5)
def _hs50(x, t):
    return ((x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 2,
            [x[0] + 2 * x[1] + 3 * x[2] - 6, x[1] + 2 * x[2] + 3 * x[3] - 6,
             x[2] + 2 * x[3] + 3 * x[4] - 6])


@_spec("hs51", [2.5, 0.5, 2.0, -1.0, 0.5], 0.0, [1.0] * 5)
def _hs51(x, t):
    return ((x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2 + (x[4] - 1) ** 2,
            [x[0] + 3 * x[1] - 4, x[2] + x[3] - 2 * x[4], x[1] - x[4]])


@_spec("hs52", [2.0] * 5, 1859 / 349, np.array([-33, 11, 180, -158, 11]) / 349)
def _hs52(x, t):
    return ((4 * x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2 + (x[4] - 1) ** 2,
            [x[0] + 3 * x[1], x[2] + x[3] - 2 * x[4], x[1] - x[4]])


_A56 = math.asin(math.sqrt(1 / 4.2))
_B56 = math.asin(math.sqrt(5 / 7.2))


@_spec("hs56", [1.0, 1.0, 1.0, _A56, _A56, _A56, _B56], -3.456,
       [2.4, 1.2, 1.2, math.asin(math.sqrt(2.4 / 4.2)), math.asin(math.sqrt(1.2 / 4.2)),
        math.asin(math.sqrt(1.2 / 4.2)), math.pi / 2])
def _hs56(x, t):
    s = t.sin
    return (-x[0] * x[1] * x[2],
            [x[0] - 4.2 * s(x[3]) ** 2, x[1] - 4.2 * s(x[4]) ** 2, x[2] - 4.2 * s(x[5]) ** 2,
             x[0] + 2 * x[1] + 2 * x[2] - 7.2 * s(x[6]) ** 2])


@_spec("hs61", [0.0, 0.0, 0.0], -143.6461422, [5.32677015, -2.11899863, 3.21046423])
def _hs61(x, t):
    return (4 * x[0] ** 2 + 2 * x[1] ** 2 + 2 * x[2] ** 2 - 33 * x[0] + 16 * x[1] - 24 * x[2],
            [3 * x[0] - 2 * x[1] ** 2 - 7, 4 * x[0] - x[2] ** 2 - 11])


@_spec("hs77", [2.0] * 5, 0.24150513, [1.166172, 1.182111, 1.380257, 1.506036, 0.6109203])
def _hs77(x, t):
    return ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4
            + (x[4] - 1) ** 6,
            [x[0] ** 2 * x[3] + t.sin(x[3] - x[4]) - 2 * SQ2,
             x[1] + x[2] ** 4 * x[3] ** 2 - 8 - SQ2])


@_spec("hs78", [-2.0, 1.5, 2.0, -1.0, -1.0], -2.91970041,
       [-1.717143, 1.595709, 1.827247, -0.7636413, -0.7636450])
def _hs78(x, t):
    return (x[0] * x[1] * x[2] * x[3] * x[4],
            [(x ** 2).sum() - 10, x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1])


@_spec("hs79", [2.0] * 5, 0.0787768209, [1.191127, 1.362603, 1.472818, 1.635017, 1.679081])
def _hs79(x, t):
    return ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4
            + (x[3] - x[4]) ** 4,
            [x[0] + x[1] ** 2 + x[2] ** 3 - 2 - 3 * SQ2, x[1] - x[2] ** 2 + x[3] + 2 - 2 * SQ2,
             x[0] * x[4] - 2])


@_spec("hs81", [-2.0, 2.0, 2.0, -1.0, -1.0], 0.0539498478,
       [-1.717143, 1.595709, 1.827247, -0.7636413, -0.7636450])
def _hs81(x, t):
    return (t.exp(x.prod()) - 0.5 * (x[0] ** 3 + x[1] ** 3 + 1) ** 2,
            [(x ** 2).sum() - 10, x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1])


@_spec("bt1", [0.08, 0.06], -1.0, [1.0, 0.0], source="Byrd & Tapia (CUTEst BT1)")
def _bt1(x, t):
    return 100 * x[0] ** 2 + 100 * x[1] ** 2 - x[0] - 100, [x[0] ** 2 + x[1] ** 2 - 1]


@_spec("bt2", [10.0, 10.0, 10.0], 0.032568200, [1.1048586, 1.1966751, 1.5352687],
       source="Byrd & Tapia (CUTEst BT2)")
def _bt2(x, t):
    return ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4,
            [x[0] * (1 + x[1] ** 2) + x[2] ** 4 - 4 - 3 * SQ2])


@_spec("maratos", [math.cos(0.8), math.sin(0.8)], -1.0, [1.0, 0.0],
       source="Nocedal & Wright (2006), Example 15.4")
def _maratos(x, t):
    return 2 * (x[0] ** 2 + x[1] ** 2 - 1) - x[0], [x[0] ** 2 + x[1] ** 2 - 1]


HS_PROBLEMS = tuple(_SPECS)


def hs_problem(name: str) -> NLPTestProblem:
    """One classic problem by name (see :data:`HS_PROBLEMS`).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.hs_problem("hs40")
    >>> P.n, P.fopt
    (4, -0.25)
    """
    key = str(name).lower()
    if key not in _SPECS:
        raise ValueError(f"name must be one of {HS_PROBLEMS}, got {name!r}")
    import torch

    from ..optimize import Problem
    fc, x0, fopt, xopt, source = _SPECS[key]

    def f(x):
        return fc(x, torch)[0]

    def c(x):
        return torch.stack([torch.as_tensor(v, dtype=x.dtype) for v in fc(x, torch)[1]])

    problem = Problem.from_torch(f, c, name=key)
    return NLPTestProblem(key, problem, x0.copy(), fopt, None if xopt is None else xopt.copy(),
                          source, {"m": len(fc(torch.as_tensor(x0), torch)[1])})


_DATASETS = ("breast_cancer", "wine", "digits")


def constrained_logistic(dataset: str = "breast_cancer", n_linear: int = 3, seed: int = 0):
    """Mean logistic loss on a scikit-learn data set with linear and sphere constraints.

    ``min (1/N) Σ log(1 + exp(-y_i a_iᵀ x))  s.t.  C x = d,  ‖x‖² = 1`` with standardised
    features ``a_i``, labels ``y_i = ±1`` (breast cancer: malignant vs benign; wine:
    class 0 vs the rest; digits: 0-4 vs 5-9), ``C`` a ``n_linear x n`` Gaussian matrix
    and ``d = C u`` for a random unit vector ``u`` (so the set is non-empty).  The start
    is ``x0 = 1/√n`` (on the sphere).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.constrained_logistic("wine")
    >>> P.n, P.problem.c(P.x0).shape
    (13, (4,))
    """
    if dataset not in _DATASETS:
        raise ValueError(f"dataset must be one of {_DATASETS}, got {dataset!r}")
    if not isinstance(n_linear, (int, np.integer)) or n_linear < 0:
        raise ValueError(f"n_linear must be a non-negative int, got {n_linear!r}")
    from sklearn import datasets

    from ..optimize import Problem
    loader = getattr(datasets, f"load_{dataset}")
    X, y = loader(return_X_y=True)
    if dataset == "wine":
        y = (y == 0).astype(int)
    elif dataset == "digits":
        y = (y >= 5).astype(int)
    X = np.asarray(X, dtype=float)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    sign = np.where(y > 0, 1.0, -1.0)
    Ay = X * sign[:, None]              # rows y_i a_i
    samples, n = Ay.shape
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((n_linear, n))
    u = rng.standard_normal(n)
    u /= np.linalg.norm(u)
    d = C @ u

    def f(x):
        t = Ay @ x
        return float(np.mean(np.logaddexp(0.0, -t)))

    def grad(x):
        s = _sigmoid(-(Ay @ x))       # d/dt log(1+e^{-t}) = -σ(-t)
        return -(Ay.T @ s) / samples

    def c(x):
        return np.concatenate([C @ x - d, [x @ x - 1.0]])

    def jac(x):
        return np.vstack([C, 2.0 * x[None, :]])

    def hess_lagrangian(x, lam):
        s = _sigmoid(Ay @ x)
        w = s * (1 - s) / samples
        return (Ay.T * w) @ Ay + 2.0 * lam[-1] * np.eye(n)

    problem = Problem(f, grad, c, jac, hess_lagrangian=hess_lagrangian,
                      name=f"logistic-{dataset}")
    return NLPTestProblem(f"logistic-{dataset}", problem, np.full(n, 1 / math.sqrt(n)),
                          None, None, "Hong et al. (2023) on scikit-learn data",
                          {"m": n_linear + 1, "samples": samples})


def _sigmoid(t):
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # overflow-free logistic


def pde_control(n: int = 64, alpha: float = 0.1):
    """Distributed control of the Poisson equation on an ``n x n`` interior grid.

    ``min ½‖w - w_target‖² + (α/2)‖z‖²  s.t.  Δ_h w + z = 0`` with ``Δ_h = -A`` the
    5-point Laplacian of :func:`lrsolve.operators.poisson_operator` (``h = 1/(n+1)``,
    zero Dirichlet), ``α = 0.1`` (the ``0.05‖z‖²`` of Hong et al.), and
    ``w_target(s, t) = sin(2πs) sin(πt)`` at the grid points.  ``x = (w, z)`` has
    ``2n²`` entries and there are ``n²`` constraints; Jacobian ``[-A, I]`` and
    Hessian ``diag(I, αI)`` are scipy CSR.  Start ``x0 = 0``.  Being a convex
    quadratic program, its solution solves one KKT system; ``xopt`` is that solution.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.pde_control(8)
    >>> P.n, P.meta["m"]
    (128, 64)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    from ..operators import poisson_operator
    from ..optimize import Problem
    A = poisson_operator(int(n), dim=2).to_csr()
    A = sp.csr_matrix(A)
    N = n * n
    s = np.arange(1, n + 1) / (n + 1)
    target = np.outer(np.sin(2 * np.pi * s), np.sin(np.pi * s)).reshape(-1)
    J = sp.hstack([-A, sp.identity(N, format="csr")], format="csr")
    H = sp.diags(np.concatenate([np.ones(N), np.full(N, alpha)]), format="csr")

    def f(x):
        w, z = x[:N], x[N:]
        return 0.5 * float((w - target) @ (w - target)) + 0.5 * alpha * float(z @ z)

    def grad(x):
        return np.concatenate([x[:N] - target, alpha * x[N:]])

    def c(x):
        return x[N:] - A @ x[:N]

    problem = Problem(f, grad, c, lambda x: J, hess_lagrangian=lambda x, lam: H,
                      name=f"pde-control-{n}")
    return NLPTestProblem(f"pde-control-{n}", problem, np.zeros(2 * N), None, None,
                          "Hong et al. (2023), PDE-constrained example on lrsolve's Poisson operator",
                          {"m": N, "grid": n, "w_target": target})


def nlp_test_set(logistic: bool = True, pde_sizes=(16,)) -> list[NLPTestProblem]:
    """Every classic problem, the three constrained logistic regressions and the PDE
    control problem at ``pde_sizes``."""
    out = [hs_problem(name) for name in HS_PROBLEMS]
    if logistic:
        out += [constrained_logistic(name) for name in _DATASETS]
    out += [pde_control(int(k)) for k in pde_sizes]
    return out
