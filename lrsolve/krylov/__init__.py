"""Krylov solvers: CG / PCG with SciPy's conventions, their preconditioners, and the
generic conjugate-direction loop with a pluggable direction generator (DCDM plugs in here)."""
from .cg import cg, cg_result, pcg, pcg_block
from .monitor import Monitor, curvature_status
from .conjugate_directions import (conjugate_directions, conjugate_directions_system,
                                   identity_direction)
from .preconditioners import AMG, IC0, Jacobi, Preconditioner, make_preconditioner, diagonal_of

__all__ = ["cg", "cg_result", "pcg", "pcg_block", "Monitor", "curvature_status", "conjugate_directions", "conjugate_directions_system",
           "identity_direction", "AMG", "IC0", "Jacobi", "Preconditioner",
           "make_preconditioner", "diagonal_of"]
