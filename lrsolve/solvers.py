"""Solver objects (setup once, solve many, update) and the method registry.

>>> import lrsolve as lr
>>> P = lr.problems.poisson(n=32, dim=2)
>>> S = lr.Solver(P.A, method="pcg-amg", rtol=1e-8)     # the AMG hierarchy is built here
>>> r = S.solve(P.b)
>>> r.converged, r.status is lr.Status.CONVERGED
(True, True)

A method is a class with one protocol (:class:`Method`): ``__init__(A, **options)``
does the setup from an :class:`~lrsolve.operators.Operator`, ``solve(system)`` solves one
validated :class:`~lrsolve.linsys.LinearSystem`, ``update(A_new)`` moves to a new matrix
keeping what still holds.  Methods are registered by name with :func:`register`; the
built-in ones are registered by :mod:`lrsolve.methods`, which imports them directly, and
plug-ins register the same way.  :func:`solve` is ``Solver(A, method, ...).solve(b)``.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from .linsys import Method, check_tolerances, make_system
from .operators.base import Operator
from .operators.convert import as_operator
from .result import SolveResult, Status

__all__ = ["Method", "Solver", "solve", "register", "methods", "get_method", "DEFAULT_RTOL"]

#: The rtol default of every linear solve in lrsolve (``lr.cg`` keeps SciPy's 1e-5).
DEFAULT_RTOL = 1e-6

_REGISTRY: dict[str, type] = {}


def register(name: str, cls: type | None = None, *, overwrite: bool = False):
    """Register a method class under ``name`` (usable as a decorator).

    >>> import lrsolve as lr
    >>> @lr.register("my-cg")
    ... class MyCG(lr.Method):
    ...     supports_batch = True
    ...     def solve(self, system, *, callback=None):
    ...         return lr.krylov.pcg(system, callback=callback)
    >>> lr.solve(lr.problems.poisson(n=8).A, lr.problems.poisson(n=8).b, method="my-cg").converged
    True
    >>> lr.solvers.unregister("my-cg")
    """
    def deco(c):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if not (isinstance(c, type) and issubclass(c, Method)):
            raise TypeError(f"a method must be a subclass of lrsolve.Method, got {c!r}")
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not c:
            raise ValueError(f"method {name!r} is already registered (overwrite=True replaces it)")
        c.name = c.name or name
        _REGISTRY[name] = c
        return c
    return deco(cls) if cls is not None else deco


def unregister(name: str) -> None:
    """Remove a registered method."""
    _REGISTRY.pop(name, None)


def _ensure_builtin():
    if "cg" not in _REGISTRY:
        from .methods import CG  # noqa: F401  (importing it registers the built-ins)


def methods() -> list[str]:
    """Names of the registered methods."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_method(name: str) -> type:
    _ensure_builtin()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"method must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


class Solver:
    """A linear solver for one operator: setup once, then solve and update many times.

    Parameters
    ----------
    A : anything :func:`lrsolve.as_operator` accepts
        The (SPD, for the Krylov methods) operator.
    method : str
        A registered method (:func:`lrsolve.solvers.methods`): ``cg``, ``pcg-jacobi``,
        ``pcg-ic0``, ``pcg-amg``, ``sor``, ``ssor-cg``, ``dcdm``, and ``mg``/``pcg-mg``
        where the multigrid layer is present.
    rtol, atol, maxiter
        Defaults for :meth:`solve`: stop when ``||b - A x|| <= max(rtol ||b||, atol)``.
    engine : None or "petsc"
        ``"petsc"`` runs PETSc KSP (optional dependency, :mod:`lrsolve.petsc`).
    **options
        Method options (``M``, ``omega``, ``model``, ``seed``, ``rebuild``, ...).

    Attributes
    ----------
    setup_time : float
        Seconds spent in setup (and in the last rebuild).
    counts : dict
        ``solves``, ``adjoint_solves`` (backward passes), ``updates``, ``rebuilds``.

    Notes
    -----
    ``update(A_new)`` keeps what still holds.  Methods with an expensive setup
    (``pcg-amg``, ``pcg-ic0``, ``ssor-cg``) keep their preconditioner built for an earlier
    matrix while it still works: with ``rebuild="auto"`` (the default) it is rebuilt
    before the next solve once a solve needed more than ``growth`` (1.5) times the
    iterations of the first solve after the last build, plus 2; and a solve that fails
    with a kept preconditioner is repeated once after a rebuild.  ``rebuild="always"``
    rebuilds at every update, ``"never"`` never does.  Cheap setups (``cg``,
    ``pcg-jacobi``, ``sor``) are redone at every update.

    Torch tensors that require grad (``b``, a dense ``A``, torch sparse values, a stencil
    coefficient) get gradients by one adjoint solve with the same method and
    preconditioner (see :mod:`lrsolve.autodiff`).
    """

    def __init__(self, A: Any, method: str = "cg", *, rtol: float = DEFAULT_RTOL,
                 atol: float = 0.0, maxiter: int | None = None, engine: str | None = None,
                 **options):
        check_tolerances(rtol, atol, maxiter)
        self.method = method
        self.rtol, self.atol, self.maxiter = rtol, atol, maxiter
        self.engine = engine
        self.counts = {"solves": 0, "adjoint_solves": 0, "updates": 0, "rebuilds": 0}
        self.source = A
        t0 = time.perf_counter()
        if engine is not None:
            if engine != "petsc":
                raise ValueError(f"engine must be None or 'petsc', got {engine!r}")
            from . import petsc as _petsc  # optional dependency, imported only when asked
            self._petsc = _petsc.PetscSolver(A, method=method, rtol=rtol, atol=atol,
                                             maxiter=maxiter, **options)
            self.A = None
            self.impl = None
            self.setup_time = time.perf_counter() - t0
            return
        cls = get_method(method)
        _check_options(cls, method, options)
        self.A = self._operator(A, cls)
        self.impl = cls(self.A, **options)
        # A preconditioner the caller built and passed as M= was set up elsewhere.
        self.setup_time = 0.0 if getattr(self.impl, "user_M", False) else \
            time.perf_counter() - t0

    @staticmethod
    def _operator(A: Any, cls: type) -> Operator:
        from . import backend as bk
        if bk.is_torch(A) or hasattr(A, "coefficient_tensor"):
            from .autodiff import detach_operator
            A = detach_operator(A)  # setup never records autograd history
        op = as_operator(A)
        if len(op.shape) != 2 or op.shape[0] != op.shape[1]:
            raise ValueError(f"A must be square, got shape {op.shape}")
        if cls.needs_entries and not op.has_entries:
            raise TypeError(f"method {cls.name!r} needs the matrix entries and A is matrix-free "
                            f"({type(A).__name__}); give a matrix, a sparse matrix or a "
                            "stencil operator, or use cg / pcg-mg / dcdm")
        from . import backend as bk
        from .operators.convert import DenseOperator, SparseOperator
        if isinstance(op, (DenseOperator, SparseOperator)):
            bk.check_finite(op.A, "A")
        return op

    def solve(self, b: Any, x0: Any = None, *, rtol: float | None = None,
              atol: float | None = None, maxiter: int | None = None,
              callback: Callable | None = None) -> SolveResult:
        """Solve ``A x = b`` (``b`` of shape ``(n,)`` or ``(n, k)``) -> SolveResult."""
        rtol = self.rtol if rtol is None else rtol
        atol = self.atol if atol is None else atol
        maxiter = self.maxiter if maxiter is None else maxiter
        if self.engine is not None:
            self.counts["solves"] += 1
            return self._petsc.solve(b, x0)
        if _needs_grad(self.source, b):
            return self._solve_differentiable(b, x0, rtol, atol, maxiter, callback)
        return self._solve(b, x0, rtol, atol, maxiter, callback)

    def _solve(self, b, x0, rtol, atol, maxiter, callback) -> SolveResult:
        impl = self.impl
        if getattr(impl, "_stale", False):
            self._rebuild()
        t0 = time.perf_counter()
        system = make_system(self.A, b, x0, M=getattr(impl, "preconditioner", None)
                             if isinstance(x0, str) else None,
                             rtol=rtol, atol=atol, maxiter=maxiter, check_A=False,
                             allow_batch=True, rescale=True)
        res = self._run(system, callback)
        if not res.converged and getattr(impl, "stale_preconditioner", False) \
                and getattr(impl, "rebuild_policy", "auto") == "auto":
            # The preconditioner kept from an earlier matrix failed on this one (a moved
            # obstacle, a breakdown): rebuild it for the current matrix and solve again.
            self._rebuild()
            res = self._run(system, callback)
            res.stats["rebuilt_after_failure"] = True
        res = system.finish(res)
        res.method = self.method
        res.stats.setdefault("setup_time", self.setup_time if self.counts["solves"] == 0
                             else 0.0)
        res.time = time.perf_counter() - t0
        self.counts["solves"] += 1
        impl.after_solve(res)
        return res

    def _run(self, system, callback) -> SolveResult:
        if system.batched and not self.impl.supports_batch:
            return self._columns(system, callback)
        return self.impl.solve(system, callback=callback)

    def _columns(self, system, callback) -> SolveResult:
        import numpy as np
        xs, cols, hist = [], [], []
        for j in range(system.k):
            sub = system.column(j)
            r = self.impl.solve(sub, callback=callback)
            xs.append(r.x)
            cols.append({"status": r.status, "iterations": r.iterations,
                         "residual": r.residuals[-1] if r.residuals else float("nan"),
                         "converged": r.converged})
            hist.append(r.residuals)
        xp = system.xp
        x = xp.stack(xs, axis=1)
        order = [Status.NONFINITE, Status.BREAKDOWN, Status.FAILED, Status.MAXITER,
                 Status.STAGNATION, Status.CONVERGED]
        worst = min((c["status"] for c in cols), key=lambda s: order.index(s)
                    if s in order else 0)
        length = max(len(h) for h in hist)
        history = [max(h[min(i, len(h) - 1)] for h in hist) for i in range(length)]
        return SolveResult(x=x, status=worst, iterations=max(c["iterations"] for c in cols),
                           residuals=history, method=self.method,
                           stats={"columns": cols, "batch": system.k,
                                  "column_loop": True, "iterations_total":
                                  int(np.sum([c["iterations"] for c in cols]))})

    def _solve_differentiable(self, b, x0, rtol, atol, maxiter, callback) -> SolveResult:
        from . import autodiff
        b_plain = b.detach()
        res = self._solve(b_plain, None if x0 is None or isinstance(x0, str) else
                          x0.detach(), rtol, atol, maxiter, callback)

        version = self.counts["updates"]

        def adjoint(g):
            # A is symmetric for every registered method (SPD solvers), so A^T = A.
            if self.counts["updates"] != version:
                raise RuntimeError("the Solver was updated between the forward solve and "
                                   "backward(): the adjoint would use the new matrix; call "
                                   "backward() before update()")
            self.counts["adjoint_solves"] += 1
            return self._solve(g.detach(), None, rtol, atol, maxiter, None).x

        res.x = autodiff.attach(res.x, self.source, b, adjoint)
        return res

    def _rebuild(self) -> None:
        t0 = time.perf_counter()
        rebuild = getattr(self.impl, "rebuild", None)
        if rebuild is not None:
            rebuild()
        else:
            self.impl.update(self.A)
        self.impl._stale = False
        self.counts["rebuilds"] += 1
        self.setup_time = time.perf_counter() - t0

    def update(self, A_new: Any) -> "Solver":
        """Move to a new operator of the same shape, keeping what still holds."""
        self.counts["updates"] += 1
        if self.engine is not None:
            self._petsc.update(A_new)
            return self
        op = self._operator(A_new, type(self.impl))
        if tuple(op.shape) != tuple(self.A.shape):
            raise ValueError(f"A_new must have the shape of A {self.A.shape}, got {op.shape}")
        if op.backend != self.A.backend:
            raise TypeError(f"A_new is a {op.backend} operator but the solver was set up on "
                            f"{self.A.backend}")
        self.A = op
        self.source = A_new
        t0 = time.perf_counter()
        self.impl.update(op)
        if not getattr(self.impl, "_stale", False):
            self.setup_time = time.perf_counter() - t0
        return self

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"Solver(method={self.method!r}, n={self.A.shape[0] if self.A else '?'}, "
                f"rtol={self.rtol}, setup_time={self.setup_time:.3g}s)")


def _check_options(cls: type, method: str, options: dict) -> None:
    """``TypeError`` naming options a method's setup does not take."""
    import inspect
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = getattr(cls, "extra_options", None)
        if allowed is None:
            return
        params = {**params, **{k: None for k in allowed}}
    unknown = sorted(set(options) - set(params) - {"self"})
    if unknown:
        raise TypeError(f"unexpected options for method {method!r}: {unknown}")


def _needs_grad(A, b) -> bool:
    from . import backend as bk
    if not (bk.is_torch(b) or bk.is_torch(A) or hasattr(A, "coefficient_tensor")):
        return False
    try:
        from . import autodiff
    except ImportError:  # pragma: no cover - autodiff module not present
        return False
    return autodiff.needs_grad(A, b)


def solve(A: Any, b: Any, method: str = "cg", *, rtol: float = DEFAULT_RTOL, atol: float = 0.0,
          maxiter: int | None = None, x0: Any = None, engine: str | None = None,
          callback: Callable | None = None, **options) -> SolveResult:
    """Solve ``A x = b`` by ``method``: ``Solver(A, method, ...).solve(b, x0)``.

    Parameters
    ----------
    A, b, x0
        Anything :func:`lrsolve.as_operator` accepts, on any backend; ``b`` of shape
        ``(n,)`` or ``(n, k)`` (``k`` systems, each with its own convergence).
    method : str
        A registered method (:func:`lrsolve.solvers.methods`).
    rtol, atol, maxiter
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)``; at most ``maxiter`` iterations.
    engine : None or "petsc"
        Run PETSc KSP instead (optional dependency).
    **options
        Method options: ``M`` (a built preconditioner for the ``pcg-*`` methods),
        ``omega`` (sor, ssor-cg), ``model`` (dcdm), ``seed`` (pcg-amg), ...

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=32, dim=2)
    >>> r = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-8)
    >>> r.converged, r.iterations < 15
    (True, True)
    """
    S = Solver(A, method, rtol=rtol, atol=atol, maxiter=maxiter, engine=engine, **options)
    res = S.solve(b, x0, callback=callback)
    if engine is None:
        res.stats["setup_time"] = S.setup_time
    return res
