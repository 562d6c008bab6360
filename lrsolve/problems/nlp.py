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

Nonconvex problems with known local minimisers (:func:`nonconvex_test_set`):

* :func:`rayleigh_quotient` - ``min xᵀAx s.t. ‖x‖² = 1``: every eigenvector is a KKT point,
  only ``±q_min`` are local minimisers (``f* = λ_min``); the others are saddles.
* :func:`sphere_quadratic` - ``min ½xᵀAx + bᵀx s.t. ‖x‖² = r²`` with indefinite ``A``
  (the boundary trust-region subproblem); the global minimiser comes from the secular
  equation, and at most one other local minimiser exists (Martínez 1994).
* :func:`semilinear_control` - ``min ½‖w - w_t‖² + (α/2)‖z‖² s.t. A w + κ w³ = z`` on the
  ``n x n`` Poisson grid: the Lagrangian Hessian ``diag(I + 6κ diag(λ w), αI)`` is
  indefinite where ``λ w < -1/(6κ)``.
* HS problems whose Lagrangian Hessian is indefinite along the way (:data:`NONCONVEX_HS`),
  started from their standard point and from seeded perturbations of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["NLPTestProblem", "HS_PROBLEMS", "NONCONVEX_HS", "hs_problem", "constrained_logistic",
           "pde_control", "nlp_test_set", "rayleigh_quotient", "sphere_quadratic",
           "semilinear_control", "nonconvex_test_set", "random_starts"]


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


def pde_control(n: int = 64, alpha: float = 0.1, target: str = "sine", seed: int = 0):
    """Distributed control of the Poisson equation on an ``n x n`` interior grid.

    ``min ½‖w - w_target‖² + (α/2)‖z‖²  s.t.  Δ_h w + z = 0`` with ``Δ_h = -A`` the
    5-point Laplacian of :func:`lrsolve.operators.poisson_operator` (``h = 1/(n+1)``,
    zero Dirichlet), ``α = 0.1`` (the ``0.05‖z‖²`` of Hong et al.), and
    ``w_target(s, t) = sin(2πs) sin(πt)`` at the grid points.  ``x = (w, z)`` has
    ``2n²`` entries and there are ``n²`` constraints; Jacobian ``[-A, I]`` and
    Hessian ``diag(I, αI)`` are scipy CSR.  Start ``x0 = 0``.  ``target="random"`` uses
    a seeded Gaussian ``w_target`` instead: the sine target is an eigenvector of
    ``Δ_h``, which makes the reduced system trivial for CG (one step); with a random
    target and a small ``α`` the reduced Hessian ``A⁻² + αI`` has condition number
    ``≈ 1 + 1/(α λ_min(A)²)`` (≈ 260 at ``α = 1e-5``).  Being a convex
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
    if target == "sine":
        target = np.outer(np.sin(2 * np.pi * s), np.sin(np.pi * s)).reshape(-1)
    elif target == "random":
        target = np.random.default_rng(seed).standard_normal(N)
    else:
        raise ValueError(f"target must be 'sine' or 'random', got {target!r}")
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
                      name=f"pde-control-{n}", basis=np.arange(N))
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


# -- nonconvex problems with known local minimisers -----------------------------------
# HS / BT problems on which ∇²ₓL (at the standard start or along the iteration) is
# indefinite on the tangent space: measured with exact Newton's inertia test.
NONCONVEX_HS = ("hs6", "hs7", "hs39", "hs40", "hs47", "hs56", "hs77", "hs78", "hs79", "hs81",
                "bt1", "bt2", "maratos")


def _orthogonal(n, rng):
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def rayleigh_quotient(n: int = 30, seed: int = 0) -> NLPTestProblem:
    """``min xᵀAx  s.t.  xᵀx = 1`` for a symmetric ``A`` with eigenvalues
    ``linspace(-1, 1, n)`` in a random orthonormal basis.

    Every eigenvector ``±q_i`` is a KKT point (``λ = -λ_i``); the reduced Hessian there
    is ``2(A - λ_i I)`` on ``q_i^⊥``, positive definite only for ``i = 1``.  So the local
    (and global) minimisers are ``±q_1`` with ``f* = -1`` and every other KKT point is a
    saddle.  The Lagrangian Hessian ``2(A + λI)`` is indefinite for most ``λ``.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.nlp.rayleigh_quotient(10)
    >>> P.n, P.fopt
    (10, -1.0)
    """
    n = _positive_int(n, "n", minimum=2)
    from ..optimize import Problem
    rng = np.random.default_rng(seed)
    Q = _orthogonal(n, rng)
    evals = np.linspace(-1.0, 1.0, n)
    A = (Q * evals) @ Q.T
    A = 0.5 * (A + A.T)
    x0 = rng.standard_normal(n)
    x0 /= np.linalg.norm(x0)
    problem = Problem(lambda x: float(x @ A @ x), lambda x: 2.0 * (A @ x),
                      lambda x: np.array([x @ x - 1.0]), lambda x: 2.0 * x[None, :],
                      hess_lagrangian=lambda x, lam: 2.0 * A + 2.0 * lam[0] * np.eye(n),
                      name=f"rayleigh-{n}")
    return NLPTestProblem(f"rayleigh-{n}", problem, x0, -1.0, Q[:, 0].copy(),
                          "Rayleigh quotient on the unit sphere", {"m": 1, "seed": seed})


def _secular_minimiser(A, b, radius):
    """Global minimiser of ``½xᵀAx + bᵀx`` on ``‖x‖ = radius`` (Moré-Sorensen: the
    ``x(μ) = -(A + μI)⁻¹ b`` with ``μ >= -λ_min`` and ``‖x(μ)‖ = radius``)."""
    evals, V = np.linalg.eigh(A)
    beta = V.T @ b
    lo = -evals[0] + 1e-14
    hi = lo + np.linalg.norm(b) / radius + 1.0

    def norm(mu):
        return np.linalg.norm(beta / (evals + mu))

    while norm(hi) > radius:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if norm(mid) > radius:
            lo = mid
        else:
            hi = mid
    mu = 0.5 * (lo + hi)
    return -V @ (beta / (evals + mu))


def sphere_quadratic(n: int = 30, seed: int = 0, radius: float = 1.0) -> NLPTestProblem:
    """``min ½xᵀAx + bᵀx  s.t.  ‖x‖² = r²`` with indefinite ``A`` (eigenvalues
    ``linspace(-1, 1, n)``) and ``b`` a random vector of norm 0.5.

    The boundary trust-region subproblem: ``xopt`` is its global minimiser (secular
    equation), and there is at most one other local minimiser (Martínez, SIAM J. Optim.
    1994), so a KKT point with a positive semidefinite reduced Hessian is one of at
    most two known points.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.nlp.sphere_quadratic(8)
    >>> bool(abs(P.xopt @ P.xopt - 1.0) < 1e-10)
    True
    """
    n = _positive_int(n, "n", minimum=2)
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    from ..optimize import Problem
    rng = np.random.default_rng(seed)
    Q = _orthogonal(n, rng)
    A = (Q * np.linspace(-1.0, 1.0, n)) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.standard_normal(n)
    b *= 0.5 / np.linalg.norm(b)
    r2 = float(radius) ** 2
    xopt = _secular_minimiser(A, b, float(radius))
    x0 = rng.standard_normal(n)
    problem = Problem(lambda x: float(0.5 * x @ A @ x + b @ x), lambda x: A @ x + b,
                      lambda x: np.array([x @ x - r2]), lambda x: 2.0 * x[None, :],
                      hess_lagrangian=lambda x, lam: A + 2.0 * lam[0] * np.eye(n),
                      name=f"sphere-quadratic-{n}")
    fopt = float(0.5 * xopt @ A @ xopt + b @ xopt)
    return NLPTestProblem(f"sphere-quadratic-{n}", problem, x0, fopt, xopt,
                          "trust-region subproblem on the sphere", {"m": 1, "seed": seed})


def semilinear_control(n: int = 16, alpha: float = 1e-3, kappa: float = 30.0,
                       amplitude: float = 2.0) -> NLPTestProblem:
    """Control of a semilinear elliptic equation on an ``n x n`` interior grid.

    ``min ½‖w - w_t‖² + (α/2)‖z‖²  s.t.  A w + κ w³ - z = 0`` with ``A`` lrsolve's 5-point
    Poisson matrix (``h = 1/(n+1)``), ``w_t = amplitude · sin(2πs) sin(πt)``.  The
    Lagrangian Hessian is ``diag(I + 6κ diag(λ ∘ w), αI)``: indefinite wherever
    ``λ_i w_i < -1/(6κ)``, which happens along the way from ``x0 = 0``.  The Jacobian
    ``[A + 3κ diag(w²), -I]`` is sparse; its state block is nonsingular (``basis`` =
    the ``w`` variables).  No closed-form solution: a run is judged by its KKT residual
    and the reduced Hessian at the end.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.nlp.semilinear_control(6)
    >>> P.n, P.meta["m"]
    (72, 36)
    """
    n = _positive_int(n, "n")
    for label, value in (("alpha", alpha), ("kappa", kappa)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{label} must be positive, got {value!r}")
    from ..operators import poisson_operator
    from ..optimize import Problem
    A = sp.csr_matrix(poisson_operator(int(n), dim=2).to_csr())
    N = n * n
    s = np.arange(1, n + 1) / (n + 1)
    target = float(amplitude) * np.outer(np.sin(2 * np.pi * s), np.sin(np.pi * s)).reshape(-1)
    eye = sp.identity(N, format="csr")

    def f(x):
        w, z = x[:N], x[N:]
        return 0.5 * float((w - target) @ (w - target)) + 0.5 * alpha * float(z @ z)

    def grad(x):
        return np.concatenate([x[:N] - target, alpha * x[N:]])

    def c(x):
        w = x[:N]
        return A @ w + kappa * w ** 3 - x[N:]

    def jac(x):
        w = x[:N]
        return sp.hstack([A + sp.diags(3 * kappa * w ** 2), -eye], format="csr")

    def hess_lagrangian(x, lam):
        w = x[:N]
        return sp.diags(np.concatenate([1.0 + 6 * kappa * lam * w, np.full(N, alpha)]),
                        format="csr")

    problem = Problem(f, grad, c, jac, hess_lagrangian=hess_lagrangian,
                      name=f"semilinear-control-{n}", basis=np.arange(N))
    return NLPTestProblem(f"semilinear-control-{n}", problem, np.zeros(2 * N), None, None,
                          "semilinear elliptic control on lrsolve's Poisson operator",
                          {"m": N, "grid": n, "w_target": target, "alpha": alpha,
                           "kappa": kappa})


def _positive_int(value, label, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{label} must be an int >= {minimum}, got {value!r}")
    return int(value)


def random_starts(P: NLPTestProblem, count: int = 3, seed: int = 0,
                  scale: float = 0.5) -> list[np.ndarray]:
    """``count`` starting points: the problem's own start, then seeded perturbations
    ``x0 + scale · max(1, |x0|) · N(0, 1)`` (fresh Gaussian points for the sphere
    problems, whose standard start is already random)."""
    rng = np.random.default_rng(seed)
    starts = [P.x0.copy()]
    while len(starts) < count:
        if P.name.startswith(("rayleigh", "sphere")):
            starts.append(rng.standard_normal(P.n))
        else:
            starts.append(P.x0 + scale * np.maximum(1.0, np.abs(P.x0)) * rng.standard_normal(P.n))
    return starts


def nonconvex_test_set(sizes=(10, 30, 100), pde_sizes=(8, 16)) -> list[NLPTestProblem]:
    """The nonconvex set: Rayleigh quotients and sphere-constrained quadratics at
    ``sizes``, the HS problems of :data:`NONCONVEX_HS` and the semilinear control
    problem at ``pde_sizes``.  Run each from :func:`random_starts`."""
    out = [rayleigh_quotient(int(k), seed=i) for i, k in enumerate(sizes)]
    out += [sphere_quadratic(int(k), seed=i) for i, k in enumerate(sizes)]
    out += [hs_problem(name) for name in NONCONVEX_HS]
    out += [semilinear_control(int(k)) for k in pde_sizes]
    return out
