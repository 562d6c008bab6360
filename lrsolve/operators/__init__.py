"""Linear operators: matrix-free Poisson / diffusion stencils, shifts, diagonals."""
from .base import Diagonal, LinearOperatorBase, Shifted
from .stencil import PoissonStencil, poisson_operator

__all__ = ["LinearOperatorBase", "PoissonStencil", "poisson_operator", "Shifted", "Diagonal"]
