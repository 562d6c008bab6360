"""lrsolve: linear systems, PDEs and the low-rank / sketching numerics around them.

Quick start::

    import lrsolve as lr
    P = lr.problems.poisson(n=128, dim=2)
    r = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-8)
    r.converged, r.iterations, r.status

    S = lr.Solver(P.A, method="pcg-amg", rtol=1e-8)   # setup once
    r = S.solve(P.b); S.update(A_new)                  # solve many, update

Method families live in subpackages that load on first use: ``lr.dcdm``, ``lr.relax``,
``lr.optimize``, ``lr.completion``, ``lr.tensors``, ``lr.neural``, ``lr.bench``.
"""
from __future__ import annotations

import importlib

from . import backend
from .result import Result, SolveResult, Status
from .operators import Operator, as_operator
from .krylov import cg
from .solvers import Method, Solver, register, solve

__version__ = "0.1.0"

_SUBPACKAGES = ("operators", "problems", "krylov", "sketch", "dcdm", "relax", "optimize",
                "completion", "tensors", "neural", "bench", "multigrid", "autodiff", "petsc",
                "solvers", "methods", "io", "seeding")

__all__ = ["cg", "solve", "Solver", "Method", "register", "as_operator",
           "Operator", "Status", "Result", "SolveResult", "METHODS", "backend",
           *_SUBPACKAGES]


def __getattr__(name):
    if name == "METHODS":
        from .solvers import methods
        return tuple(methods())
    if name in _SUBPACKAGES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lrsolve' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES) | {"METHODS"})
