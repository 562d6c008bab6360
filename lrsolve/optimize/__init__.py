"""Equality-constrained optimisation: sketch-based Newton with the exact augmented Lagrangian.

``lr.optimize.Problem`` describes ``min f(x) s.t. c(x) = 0`` (callables, or torch
functions through :meth:`Problem.from_torch`); :func:`sketch_newton` solves it by
AdaSketch-Newton (Hong, Na, Mahoney & Kolar, ICML 2023) and :func:`exact_newton` is
the same method with exact KKT solves.
"""
from .kkt import (INNER_SOLVERS, KKTSystem, NystromPreconditioner, kkt_inertia,
                  nullspace_nystrom_solve, sketch_project)
from .newton import (ACCURACY_RULES, MODIFICATIONS, NewtonResult, exact_newton,
                     reduced_hessian_eigenvalues, sketch_newton)
from .problem import Problem

__all__ = ["Problem", "sketch_newton", "exact_newton", "NewtonResult", "KKTSystem",
           "sketch_project", "nullspace_nystrom_solve", "NystromPreconditioner", "kkt_inertia",
           "reduced_hessian_eigenvalues", "INNER_SOLVERS", "ACCURACY_RULES", "MODIFICATIONS"]
