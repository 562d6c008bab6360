"""Generators of real test problems.

``poisson`` (this package's foundation) plus the generators each method family adds in
its own module: sequences of related systems for relax/ (``sequences``), equality
constrained NLPs for optimize/ (``nlp``), completion instances (``completion``),
Darcy fields (``darcy``) and smoke-simulation pressure systems (``fluids``).  Names
from those modules are looked up on first use.
"""
from __future__ import annotations

import importlib

from .poisson import PoissonProblem, grid_coordinates, poisson, sphere_obstacles

_MODULES = ("sequences", "nlp", "completion", "darcy", "fluids")

__all__ = ["poisson", "PoissonProblem", "grid_coordinates", "sphere_obstacles"]


def __getattr__(name):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    for mod_name in _MODULES:
        try:
            module = importlib.import_module(f".{mod_name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{mod_name}":
                continue
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
