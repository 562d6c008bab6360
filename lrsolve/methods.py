"""The built-in entries of the method registry, imported directly (no name-based loading).

================  ===========================================  ======  =======  ==========
name              what                                         batch   entries  update
================  ===========================================  ======  =======  ==========
``cg``            CG (``M=`` for a user preconditioner)        SpMM    no       free
``pcg-jacobi``    CG + ``diag(A)^{-1}``                        SpMM    diag     rebuild
``pcg-ic0``       CG + zero fill-in incomplete Cholesky        SpMM    yes      keep/auto
``pcg-amg``       CG + smoothed-aggregation AMG (PyAMG)        SpMM    yes      keep/auto
``sor``           SOR (lexicographic numba / red-black)        cols    yes*     rebuild
``ssor-cg``       CG + SSOR                                    cols    yes*     keep/auto
``dcdm``          deep conjugate directions (torch network)    cols    grid     model kept
``mg``            geometric multigrid cycles                   (multigrid layer)
``pcg-mg``        CG + geometric multigrid                     (multigrid layer)
================  ===========================================  ======  =======  ==========

``*`` a stencil operator needs no assembled entries (red-black sweeps).  "keep/auto" is
the rebuild policy of :class:`lrsolve.Solver`: the preconditioner built for an earlier
matrix is kept until the iteration count grows past ``growth`` times its first count.
This module sits at the top of the package (like ``cli.py``) and may import method
packages; the shared layers never import it.
"""
from __future__ import annotations

from typing import Any

from .krylov.cg import pcg
from .krylov.preconditioners import AMG, IC0, Jacobi
from .operators.convert import DenseOperator, SparseOperator
from .solvers import Method, register

__all__ = ["CG", "PCGJacobi", "PCGIC0", "PCGAMG", "SOR", "SSORCG", "DCDM"]

_REBUILD = ("auto", "always", "never")


def raw(op):
    """The caller's matrix behind an adapter (kernels that take arrays), else the operator."""
    return op.A if isinstance(op, (DenseOperator, SparseOperator)) else op


class CG(Method):
    """Conjugate gradients; ``M=`` reuses a preconditioner the caller built."""

    supports_batch = True

    def __init__(self, A, *, M: Any = None, refresh_every: int | None = None):
        self.A = A
        self.options = dict(M=M, refresh_every=refresh_every)
        self.preconditioner = M
        self.refresh_every = refresh_every

    def solve(self, system, *, callback=None):
        return pcg(system, M=self.preconditioner, callback=callback,
                   refresh_every=self.refresh_every)

    def update(self, A) -> None:
        self.A = A


class _PCG(Method):
    """CG with a preconditioner built in setup; the rebuild policy of :class:`Solver`."""

    supports_batch = True
    cheap = False
    extra_options = None  # a tuple of preconditioner options, or None for "any"

    def __init__(self, A, *, M: Any = None, rebuild: str = "auto", growth: float = 1.5,
                 refresh_every: int | None = None, **pc_options):
        if rebuild not in _REBUILD:
            raise ValueError(f"rebuild must be one of {_REBUILD}, got {rebuild!r}")
        if not (float(growth) > 1.0):
            raise ValueError(f"growth must be > 1, got {growth!r}")
        self.A = A
        self.options = dict(M=M, rebuild=rebuild, growth=growth, refresh_every=refresh_every,
                            **pc_options)
        self.pc_options = pc_options
        self.user_M = M is not None
        self.rebuild_policy = rebuild
        self.growth = float(growth)
        self.refresh_every = refresh_every
        self.baseline = None
        self._stale = False
        #: True while the preconditioner was built for an earlier matrix (kept by update)
        self.stale_preconditioner = False
        self.preconditioner = M if M is not None else self.build(A)

    def build(self, A):
        raise NotImplementedError

    def rebuild(self) -> None:
        if not self.user_M:
            self.preconditioner = self.build(self.A)
        self.baseline = None
        self.stale_preconditioner = False

    def solve(self, system, *, callback=None):
        res = pcg(system, M=self.preconditioner, callback=callback,
                  refresh_every=self.refresh_every)
        res.stats["preconditioner"] = type(self.preconditioner).__name__
        return res

    def update(self, A) -> None:
        self.A = A
        if self.user_M or self.rebuild_policy == "never":
            return
        if self.cheap or self.rebuild_policy == "always":
            self.rebuild()
        else:
            self.stale_preconditioner = True

    def after_solve(self, result) -> None:
        if self.user_M or self.rebuild_policy != "auto" or self.cheap:
            return
        if self.baseline is None:
            self.baseline = result.iterations
        elif result.iterations > self.growth * self.baseline + 2 or not result.converged:
            self._stale = True


register("cg", CG)


@register("pcg-jacobi")
class PCGJacobi(_PCG):
    """CG preconditioned by ``diag(A)^{-1}`` (any backend; rebuilt at every update)."""

    cheap = True
    extra_options = ()

    def build(self, A):
        return Jacobi(A)


@register("pcg-ic0")
class PCGIC0(_PCG):
    """CG preconditioned by IC(0) (NumPy / CPU entries)."""

    needs_entries = True
    extra_options = ()

    def build(self, A):
        return IC0(A)


@register("pcg-amg")
class PCGAMG(_PCG):
    """CG preconditioned by one PyAMG smoothed-aggregation cycle (``seed``, ``cycle``)."""

    needs_entries = True

    def build(self, A):
        return AMG(A, **self.pc_options)


@register("sor")
class SOR(Method):
    """SOR sweeps (``omega``, ``ordering``); the CSR arrays are extracted once in setup."""

    needs_entries = False

    def __init__(self, A, *, omega: float = 1.5, ordering: str = "auto"):
        from .relax import check_omega
        from .relax.sor import csr_parts
        self.A = A
        self.options = dict(omega=omega, ordering=ordering)
        self.omega = check_omega(omega)
        self.ordering = ordering
        self.target = raw(A)
        if A.backend == "numpy" and ordering != "red-black":
            self.target = csr_parts(raw(A))

    def solve(self, system, *, callback=None):
        from .relax import sor
        return sor(self.target, system.b, omega=self.omega, x0=system.x0, rtol=system.rtol,
                   atol=system.atol, maxiter=system.maxiter, ordering=self.ordering)


@register("ssor-cg")
class SSORCG(_PCG):
    """CG preconditioned by SSOR(``omega``) (``ordering`` as for SOR)."""

    supports_batch = False
    extra_options = ("M", "rebuild", "growth", "refresh_every")

    def __init__(self, A, *, omega: float = 1.0, ordering: str = "auto", **kw):
        from .relax import check_omega
        check_omega(omega)
        super().__init__(A, omega=omega, ordering=ordering, **kw)

    def build(self, A):
        from .relax import SSOR
        return SSOR(raw(A), self.pc_options["omega"], ordering=self.pc_options["ordering"],
                    backend=A.backend)

    def solve(self, system, *, callback=None):
        res = super().solve(system, callback=callback)
        res.stats.update(omega=self.preconditioner.omega,
                         ordering=getattr(self.preconditioner, "ordering", None))
        return res


@register("dcdm")
class DCDM(Method):
    """Deep conjugate directions: the network is loaded/kept across solves and updates."""

    def __init__(self, A, *, model: Any = None, window: int = 2,
                 refresh_every: int | None = None):
        from .dcdm.solver import resolve_model
        self.A = A
        _, model = resolve_model(A, model)  # grid check, shipped model, type and dimension
        self.model = model
        self.window = window
        self.refresh_every = refresh_every
        self.options = dict(model=model, window=window, refresh_every=refresh_every)

    def solve(self, system, *, callback=None):
        from .dcdm import dcdm_solve
        return dcdm_solve(self.A, system.b, self.model, rtol=system.rtol, atol=system.atol,
                          maxiter=system.maxiter, x0=system.x0, window=self.window,
                          refresh_every=self.refresh_every, callback=callback)

    def update(self, A) -> None:
        self.A = A


try:  # the multigrid layer registers "mg" and "pcg-mg" once it is present
    from .multigrid.method import MGMethod, PCGMGMethod  # noqa: F401
except ImportError:  # pragma: no cover - multigrid layer not present
    pass
else:  # pragma: no cover - depends on the multigrid layer
    from .solvers import _REGISTRY
    if "mg" not in _REGISTRY:
        register("mg", MGMethod)
    if "pcg-mg" not in _REGISTRY:
        register("pcg-mg", PCGMGMethod)
