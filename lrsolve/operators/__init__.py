"""Linear operators: the operator protocol, ``as_operator``, matrix-free stencils, wrappers.

``as_operator(A)`` (:mod:`lrsolve.operators.convert`) is the one place that knows which
operator kinds exist; every method and preconditioner goes through it.
"""
from .base import Diagonal, LinearOperatorBase, Operator, Shifted
from .convert import (DenseOperator, FunctionOperator, SparseOperator, as_operator,
                      csr_to_backend, host_csr, is_operator_like)
from .stencil import PoissonStencil, poisson_operator
from .grid import GridOperator, as_grid_operator

__all__ = ["Operator", "LinearOperatorBase", "as_operator", "DenseOperator", "SparseOperator",
           "FunctionOperator", "csr_to_backend", "host_csr", "is_operator_like",
           "PoissonStencil", "poisson_operator", "GridOperator", "as_grid_operator",
           "Shifted", "Diagonal"]
