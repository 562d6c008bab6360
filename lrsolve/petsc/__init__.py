"""PETSc adapter: lrsolve problems, solves and preconditioners across MPI ranks.

Optional: it needs petsc4py and mpi4py (``pip install "lrsolve[petsc]"`` after the system
PETSc; see ``docs/petsc.md``) and is imported only when used.  Importing this package works
without them; the first call that needs PETSc raises an ImportError with the install recipe.

* :func:`to_petsc` - grid problems on a DMDA (assembled AIJ or matrix-free shell with halo
  exchange), scipy matrices distributed by rows, NumPy vectors into a layout;
  :func:`gather` / :func:`to_numpy` back to NumPy.
* :class:`PetscSolver`, :func:`solve` - PETSc KSP as an engine of lrsolve's solve API,
  returning :class:`~lrsolve.result.SolveResult`.
* :class:`SSORPC`, :class:`BanditSSORPC`, :class:`MultigridPC`, :class:`DCDMPC` - lrsolve
  preconditioners as PETSc Python PCs (``-pc_type python -pc_python_type
  lrsolve.petsc.SSORPC``).
* ``python -m lrsolve.petsc.bench`` (or ``lrsolve bench poisson --engine petsc``) - the
  Poisson suite under ``mpiexec``.

The adapter may import lrsolve's method packages (relax, dcdm); nothing imports it back.
"""
from __future__ import annotations

from ._base import INSTALL_HINT, available
from .convert import FORMATS, csr_to_petsc, gather, to_numpy, to_petsc, vector_like
from .grid import DistributedProblem
from .pcs import BanditSSORPC, DCDMPC, MultigridPC, SSORPC
from .solver import METHODS, PetscSolver, solve, status_from_reason

__all__ = ["available", "INSTALL_HINT", "to_petsc", "gather", "to_numpy", "csr_to_petsc",
           "vector_like", "FORMATS", "DistributedProblem", "PetscSolver", "solve", "METHODS",
           "status_from_reason", "SSORPC", "BanditSSORPC", "MultigridPC", "DCDMPC"]
