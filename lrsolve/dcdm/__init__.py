"""Deep Conjugate Direction Method (Kaneda et al., ICML 2023, arXiv 2205.10763).

A convolutional network maps the normalised residual on the grid to a search direction;
the directions are A-orthogonalised against the last few (``window=2``) and followed by
exact line searches (:mod:`lrsolve.krylov.conjugate_directions`).

* :class:`DCDMNet` - the paper's network (2D / 3D), :class:`VCycleNet` - learned smoothers
  in a multigrid V-cycle on the operator's GMG hierarchy (the default ``poisson2d`` and
  ``poisson3d`` models: masked, variable-coefficient, rectangular grids), :func:`train` -
  unsupervised training with the paper's loss (Ritz-vector data on the box, a mix of
  masked domains with ``domains="mix"``), :func:`load_pretrained` - the shipped weights;
* ``lr.solve(A, b, method="dcdm", model=...)`` or :func:`dcdm_solve` - the solver.

Examples
--------
>>> import lrsolve as lr
>>> P = lr.problems.poisson(n=64, dim=2, rhs="point")
>>> r = lr.solve(P.A, P.b, method="dcdm", model=lr.dcdm.load_pretrained("poisson2d"))
>>> r.converged
True
"""
from .network import DCDMNet, VCycleNet, build_network
from .data import ritz_vectors, laplacian_eigenvalues, operator_vectors, training_operators
from .training import train, dcdm_loss, save_model, load_model
from .pretrained import load_pretrained, PRETRAINED
from .solver import NetworkDirection, dcdm_solve, _solve_dcdm

__all__ = ["DCDMNet", "VCycleNet", "build_network", "train", "dcdm_loss", "save_model", "load_model", "load_pretrained",
           "PRETRAINED", "dcdm_solve", "NetworkDirection", "ritz_vectors",
           "laplacian_eigenvalues", "operator_vectors", "training_operators"]
