"""lrsolve: linear systems, PDEs and the low-rank / sketching numerics around them.

Quick start::

    import lrsolve as lr
    P = lr.problems.poisson(n=128, dim=2)
    r = lr.solve(P.A, P.b, method="pcg-amg", rtol=1e-8)
    r.converged, r.iterations

Method families live in subpackages that load on first use: ``lr.dcdm``, ``lr.relax``,
``lr.optimize``, ``lr.completion``, ``lr.tensors``, ``lr.neural``, ``lr.bench``.
"""
from __future__ import annotations

import importlib

from . import backend
from .result import SolveResult
from .krylov import cg
from .solve import solve, METHODS

__version__ = "0.1.0"

_SUBPACKAGES = ("operators", "problems", "krylov", "sketch", "dcdm", "relax", "optimize",
                "completion", "tensors", "neural", "bench")

__all__ = ["cg", "solve", "SolveResult", "METHODS", "backend", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lrsolve' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
