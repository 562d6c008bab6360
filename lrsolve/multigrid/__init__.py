"""Geometric multigrid on structured grids: a shared layer that methods may use.

``GMG(A)`` builds a hierarchy for a grid operator (:class:`~lrsolve.operators.GridOperator`
or :class:`~lrsolve.operators.PoissonStencil`) and is a preconditioner (``M @ r``, ``M=``
of ``lr.cg`` / ``lr.solve``); the methods ``"mg"`` (cycles as the solver) and ``"pcg-mg"``
(CG preconditioned by one cycle) are :class:`MGMethod` and :class:`PCGMGMethod`.
:class:`TorchHierarchy` applies a built hierarchy's level operators and transfers to
batched torch tensors, differentiably (the DCDM V-cycle network uses it).  See
``docs/multigrid.md``.
"""
from .gmg import CYCLES, GMG, SMOOTHERS
from .hierarchy import Level, axis_tables
from .transfer import TorchHierarchy

__all__ = ["GMG", "SMOOTHERS", "CYCLES", "Level", "axis_tables", "TorchHierarchy"]
