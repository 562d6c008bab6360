"""Krylov solvers: CG / PCG with SciPy's conventions, and their preconditioners."""
from .cg import cg, cg_result, pcg
from .preconditioners import AMG, IC0, Jacobi, Preconditioner, make_preconditioner, diagonal_of

__all__ = ["cg", "cg_result", "pcg", "AMG", "IC0", "Jacobi", "Preconditioner",
           "make_preconditioner", "diagonal_of"]
