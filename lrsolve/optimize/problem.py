"""The equality-constrained problem ``min f(x) s.t. c(x) = 0`` as a set of callables.

:class:`Problem` holds the objective, its gradient, the constraints, their Jacobian
and (optionally) the Hessian of the Lagrangian ``L(x, lam) = f(x) + lam^T c(x)``,
either as a matrix or as Hessian-vector products.  :meth:`Problem.from_torch` builds
all derivatives by autograd from two torch functions.

The optimiser works in float64 NumPy: callables receive and return NumPy arrays (or
scipy.sparse / ``scipy.sparse.linalg.LinearOperator`` Jacobians and Hessians).
Problems written in torch go through :meth:`Problem.from_torch`, which converts at
the boundary and keeps autograd graphs out of the solver.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Problem"]


def _is_operator(A: Any) -> bool:
    return isinstance(A, spla.LinearOperator)


def matvec(A: Any, v: np.ndarray) -> np.ndarray:
    """``A @ v`` for a dense array, a scipy.sparse matrix or a LinearOperator."""
    return np.asarray(A @ v).reshape(-1) if not _is_operator(A) else A.matvec(v).reshape(-1)


def rmatvec(A: Any, v: np.ndarray) -> np.ndarray:
    """``A^T @ v`` for a dense array, a scipy.sparse matrix or a LinearOperator."""
    if _is_operator(A):
        return A.rmatvec(v).reshape(-1)
    return np.asarray(A.T @ v).reshape(-1)


class Problem:
    """``min f(x)  s.t.  c(x) = 0`` for ``x`` in R^n and ``c`` in R^m.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    grad : callable
        ``grad(x) -> ndarray (n,)``, the gradient of ``f``.
    c : callable
        ``c(x) -> ndarray (m,)``, the equality constraints.
    jac : callable
        ``jac(x) -> (m, n)`` Jacobian of ``c``: a dense ndarray, a scipy.sparse matrix
        or a ``scipy.sparse.linalg.LinearOperator`` (matrix-free; then only the
        sketching / Krylov inner solvers apply).
    hess_lagrangian : callable, optional
        ``hess_lagrangian(x, lam) -> (n, n)`` Hessian of ``L = f + lam^T c`` in ``x``
        (dense, sparse or LinearOperator).
    hessp_lagrangian : callable, optional
        ``hessp_lagrangian(x, lam, v) -> ndarray (n,)``, the product ``∇²ₓL v``.  When
        neither Hessian form is given, products come from forward differences of
        ``∇ₓL`` (one extra gradient and Jacobian evaluation each).
    name : str, optional
        A label used in benchmark tables.
    basis : array_like of int, optional
        Indices of ``m`` variables whose Jacobian columns form a nonsingular square block
        ``G_B`` (the *state* variables of a PDE-constrained problem).  It lets the
        ``inner="nystrom"`` solver work in the null space ``Z = [-G_B⁻¹ G_N; I]``;
        other solvers ignore it.

    Examples
    --------
    >>> import numpy as np, lrsolve as lr
    >>> P = lr.optimize.Problem(
    ...     f=lambda x: x @ x, grad=lambda x: 2 * x,
    ...     c=lambda x: np.array([x.sum() - 1.0]), jac=lambda x: np.ones((1, x.size)),
    ...     hess_lagrangian=lambda x, lam: 2 * np.eye(x.size))
    >>> res = lr.optimize.sketch_newton(P, np.zeros(4))
    >>> bool(np.allclose(res.x, 0.25, atol=1e-6))
    True
    """

    def __init__(self, f: Callable, grad: Callable, c: Callable, jac: Callable,
                 hess_lagrangian: Callable | None = None,
                 hessp_lagrangian: Callable | None = None, name: str | None = None,
                 basis=None):
        for label, fn in (("f", f), ("grad", grad), ("c", c), ("jac", jac)):
            if not callable(fn):
                raise TypeError(f"{label} must be callable, got {type(fn).__name__}")
        for label, fn in (("hess_lagrangian", hess_lagrangian),
                          ("hessp_lagrangian", hessp_lagrangian)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{label} must be callable or None, got {type(fn).__name__}")
        self.f = f
        self.grad = grad
        self.c = c
        self.jac = jac
        self.hess_lagrangian = hess_lagrangian
        self._hessp = hessp_lagrangian
        self.name = name or "problem"
        if basis is not None:
            basis = np.asarray(basis)
            if basis.ndim != 1 or not np.issubdtype(basis.dtype, np.integer) \
                    or np.unique(basis).size != basis.size:
                raise ValueError("basis must be a 1-D array of distinct integer indices")
        self.basis = basis

    # -- derivatives the solver needs ---------------------------------------------
    def lagrangian_gradient(self, x, lam, g=None, J=None):
        """``∇ₓL = ∇f + J^T lam`` (re-using ``g`` / ``J`` when given)."""
        g = np.asarray(self.grad(x), dtype=float).reshape(-1) if g is None else g
        J = self.jac(x) if J is None else J
        return g + rmatvec(J, lam)

    def hessp(self, x, lam, v, H=None):
        """``∇²ₓL(x, lam) v`` from, in order of preference, ``H``, ``hessp_lagrangian``,
        ``hess_lagrangian`` or a forward difference of ``∇ₓL``."""
        if H is not None:
            return matvec(H, v)
        if self._hessp is not None:
            return np.asarray(self._hessp(x, lam, v), dtype=float).reshape(-1)
        if self.hess_lagrangian is not None:
            return matvec(self.hess_lagrangian(x, lam), v)
        vnorm = np.linalg.norm(v)
        if vnorm == 0:
            return np.zeros_like(v)
        # Forward difference: the step balances truncation O(eps) and rounding O(u/eps).
        eps = np.sqrt(np.finfo(float).eps) * max(1.0, np.linalg.norm(x)) / vnorm
        return (self.lagrangian_gradient(x + eps * v, lam)
                - self.lagrangian_gradient(x, lam)) / eps

    @property
    def has_hessp(self) -> bool:
        return self._hessp is not None

    # -- autograd --------------------------------------------------------------------
    @classmethod
    def from_torch(cls, f: Callable, c: Callable, *, name: str | None = None,
                   dense_hessian_limit: int = 400) -> "Problem":
        """Build a :class:`Problem` from torch functions by automatic differentiation.

        Parameters
        ----------
        f : callable
            ``f(x) -> scalar tensor`` for a 1-D float64 tensor ``x``.
        c : callable
            ``c(x) -> 1-D tensor``.
        dense_hessian_limit : int
            Up to this ``n`` the Lagrangian Hessian is also offered as a dense matrix
            (``torch.func.hessian``), which lets the solver check the reduced Hessian
            exactly; beyond it only Hessian-vector products (double backward) are used.

        Examples
        --------
        >>> import torch, numpy as np, lrsolve as lr
        >>> P = lr.optimize.Problem.from_torch(lambda x: (x ** 2).sum(),
        ...                                    lambda x: (x.sum() - 1.0).reshape(1))
        >>> res = lr.optimize.sketch_newton(P, np.zeros(3))
        >>> round(res.fun, 6)
        0.333333
        """
        import torch

        def tensor(x):
            return torch.as_tensor(np.asarray(x, dtype=np.float64))

        def f_np(x):
            with torch.no_grad():
                return float(f(tensor(x)))

        def grad_np(x):
            xt = tensor(x).requires_grad_(True)
            (g,) = torch.autograd.grad(f(xt), xt)
            return g.detach().numpy()

        def c_np(x):
            with torch.no_grad():
                return c(tensor(x)).detach().reshape(-1).numpy()

        def jac_np(x):
            J = torch.func.jacrev(lambda t: c(t).reshape(-1))(tensor(x))
            return J.detach().numpy()

        def lagrangian(t, lam_t):
            return f(t) + torch.dot(lam_t, c(t).reshape(-1))

        def hessp_np(x, lam, v):
            xt = tensor(x).requires_grad_(True)
            (g,) = torch.autograd.grad(lagrangian(xt, tensor(lam)), xt, create_graph=True)
            (hv,) = torch.autograd.grad(g, xt, tensor(v))
            return hv.detach().numpy()

        def hess_np(x, lam):
            x = np.asarray(x)
            if x.size > dense_hessian_limit:
                return spla.LinearOperator((x.size, x.size), dtype=float,
                                           matvec=lambda v: hessp_np(x, lam, v))
            lam_t = tensor(lam)
            H = torch.func.hessian(lambda t: lagrangian(t, lam_t))(tensor(x))
            return H.detach().numpy()

        return cls(f_np, grad_np, c_np, jac_np, hess_lagrangian=hess_np,
                   hessp_lagrangian=hessp_np, name=name or "torch problem")

    def __repr__(self) -> str:
        return f"Problem({self.name!r})"
