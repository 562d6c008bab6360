"""Compatibility shim: ``lr.solve`` lives in :mod:`lrsolve.solvers`."""
from .solvers import solve

__all__ = ["solve"]
