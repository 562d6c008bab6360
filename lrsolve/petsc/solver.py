"""PETSc KSP as an engine of lrsolve's solve API: :class:`PetscSolver` and :func:`solve`.

The result is lrsolve's :class:`~lrsolve.result.SolveResult`: ``status`` mapped from KSP's
converged reason, ``residuals`` from KSP's convergence history, ``iterations`` = KSP's
iteration count, and the true residual ``||b - A x||`` computed after the solve - a
convergence KSP claims but the true residual does not confirm is reported as
``STAGNATION``, never as converged.

KSP runs CG with the *unpreconditioned* residual norm, so PETSc stops on exactly lrsolve's
rule ``||b - A x|| <= max(rtol ||b||, atol)``.

Methods and the PETSc preconditioner each maps to:

=============  =========================================================================
``cg``         ``-pc_type none``
``pcg-jacobi`` ``-pc_type jacobi``
``ssor-cg``    ``-pc_type sor`` (local symmetric sweeps, ``omega``; needs entries)
``pcg-amg``    hypre BoomerAMG (``amg="hypre"``, the default when PETSc has hypre) or
               PETSc's GAMG (``amg="gamg"``)
``pcg-mg``     ``-pc_type mg`` on a DMDA hierarchy (2x coarsening, linear interpolation,
               Galerkin coarse operators, PETSc's Chebyshev/SOR smoothers); grid problems
``pcg-python`` any Python PC context (``pc=lrsolve.petsc.MultigridPC()``, ...)
=============  =========================================================================

PETSc options pass through: ``options={"pc_hypre_boomeramg_strong_threshold": 0.5}`` (or
a string ``"-ksp_monitor -pc_gamg_threshold 0.02"``); they are applied under a private
prefix, so two solvers in one program do not see each other's options.
"""
from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np

from ..result import SolveResult, Status
from ._base import default_comm, mpi_comm, petsc, raise_on_any_rank
from .convert import to_numpy, to_petsc, vector_like
from ._transfer import coarse_size as _coarse_size, prolongation_rows
from .grid import DistributedProblem, assemble, create_dmda, owned_box

__all__ = ["PetscSolver", "solve", "METHODS", "status_from_reason", "mg_hierarchy"]

METHODS = ("cg", "pcg-jacobi", "ssor-cg", "pcg-amg", "pcg-mg", "pcg-python")

_COUNTER = itertools.count()
# KSP types that can stop on the unpreconditioned (true) residual norm.
_UNPRECONDITIONED_NORM = ("cg", "fcg", "pipecg", "groppcg", "pipefcg", "cr", "richardson",
                          "chebyshev")


def status_from_reason(reason: int) -> Status:
    """lrsolve's :class:`Status` for a ``KSPConvergedReason`` value."""
    reason = int(reason)
    if reason in (5, 6):  # CONVERGED_CG_NEG_CURVE / _CONSTRAINED: not SPD for a linear solve
        return Status.BREAKDOWN
    if reason == 4:       # CONVERGED_ITS: iteration count reached, not a tolerance
        return Status.MAXITER
    if reason > 0:
        return Status.CONVERGED
    if reason == -3:     # DIVERGED_MAX_IT
        return Status.MAXITER
    if reason in (-5, -6, -7, -8, -10):  # breakdown, nonsymmetric, indefinite PC / matrix
        return Status.BREAKDOWN
    if reason == -9:     # DIVERGED_NANORINF
        return Status.NONFINITE
    return Status.FAILED  # DTOL, PC_FAILED, NULL, still iterating


def _record_residual(ksp, iteration, rnorm, history):
    history.append(float(rnorm))


def _reason_name(reason: int) -> str:
    PETSc = petsc()
    for name in dir(PETSc.KSP.ConvergedReason):
        if not name.startswith("_") and getattr(PETSc.KSP.ConvergedReason, name) == reason:
            return name
    return str(reason)


def _parse_options(options: Any) -> dict:
    if options is None:
        return {}
    if isinstance(options, dict):
        return {str(k).lstrip("-"): v for k, v in options.items()}
    if isinstance(options, str):
        out: dict = {}
        key = None
        for token in options.split():
            if token.startswith("-") and not _is_number(token):
                if key is not None:
                    out[key] = ""
                key = token.lstrip("-")
            elif key is not None:
                out[key] = token
                key = None
            else:
                raise ValueError(f"options: value {token!r} has no option name before it")
        if key is not None:
            out[key] = ""
        return out
    raise TypeError(f"options must be a dict or a string of PETSc options, got "
                    f"{type(options).__name__}")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------
# The DMDA hierarchy for pcg-mg

def _interpolation(da_fine, da_coarse, fine_shape: tuple):
    """The distributed tensor-product interpolation from ``da_coarse`` to ``da_fine``."""
    PETSc = petsc()
    import scipy.sparse as sp
    starts, stops = owned_box(da_fine)
    rows, natural, vals, coarse_shape = prolongation_rows(fine_shape, starts, stops)
    nloc = int(np.prod([e - s for s, e in zip(starts, stops)]))
    ao = da_coarse.getAO()
    petsc_cols = np.asarray(ao.app2petsc(natural.astype(PETSc.IntType)), dtype=np.int64)
    Nc = int(np.prod(coarse_shape))
    local = sp.csr_matrix((vals, (rows, petsc_cols)), shape=(nloc, Nc))
    local.sum_duplicates()
    local.sort_indices()
    nloc_c = da_coarse.createGlobalVec().getLocalSize()
    P = PETSc.Mat().createAIJ(size=((nloc, int(np.prod(fine_shape))), (nloc_c, Nc)),
                              csr=(local.indptr.astype(PETSc.IntType),
                                   local.indices.astype(PETSc.IntType), local.data),
                              comm=da_fine.getComm())
    P.assemble()
    return P


def mg_hierarchy(da, grid_shape: tuple, *, coarsest: int = 100, min_points: int = 3):
    """Interpolation matrices of a DMDA hierarchy, coarsest first: ``[P_1, ..., P_L-1]``."""
    das, shapes = [da], [tuple(grid_shape)]
    while True:
        shape = shapes[-1]
        coarse = tuple(_coarse_size(n) for n in shape)
        if int(np.prod(shape)) <= coarsest or min(coarse) < min_points:
            break
        das.append(create_dmda(coarse, comm=da.getComm()))
        shapes.append(coarse)
    Ps = [_interpolation(das[k], das[k + 1], shapes[k]) for k in range(len(das) - 1)]
    return list(reversed(Ps)), list(reversed(shapes)), list(reversed(das))


# --------------------------------------------------------------------------------------
class PetscSolver:
    """Set up a PETSc KSP once; solve and update many times.

    Parameters
    ----------
    A : PoissonProblem, PoissonStencil, DistributedProblem, scipy sparse matrix or PETSc Mat
        Grid problems and operators are distributed on a DMDA; a scipy matrix by row
        blocks (every rank passes the same matrix).
    method : str
        One of :data:`METHODS` (see the module docstring).
    rtol, atol, maxiter
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)``; at most ``maxiter`` iterations
        (default ``10 n``).
    options : dict or str, optional
        PETSc options passed through (``{"pc_gamg_threshold": 0.02}``, ``"-ksp_monitor"``).
    format : {"aij", "matfree"}
        For grid operators: the operator KSP applies.  ``"matfree"`` applies the stencil
        with halo exchange and assembles only the preconditioner's matrix when the
        preconditioner needs entries (AMG, SOR, MG).
    amg : {"hypre", "gamg"}
        The AMG behind ``pcg-amg`` (hypre when PETSc was built with it).
    omega : float
        SOR relaxation of ``ssor-cg``.
    pc : object, optional
        A Python PC context for ``method="pcg-python"`` (e.g. :class:`MultigridPC`).
    ksp_type : str
        ``"cg"`` (default) or any KSP type (``"fcg"`` for a nonlinear PC such as DCDMPC).
    rebuild_factor : float or None
        :meth:`update` policy: ``None`` (default) rebuilds the preconditioner for every new
        matrix; a number reuses it until a solve needs more than ``rebuild_factor`` times
        the iterations of the first solve after the last rebuild.
    comm : communicator, optional
        ``PETSc.COMM_WORLD`` by default.

    Examples
    --------
    Run under ``mpiexec -n 2``::

        import lrsolve as lr
        from lrsolve.petsc import PetscSolver
        P = lr.problems.poisson(n=64, dim=3)
        S = PetscSolver(P, method="pcg-amg", rtol=1e-8)
        r = S.solve(P.b)          # r.x: NumPy on every rank; r.iterations = KSP's
    """

    def __init__(self, A: Any, method: str = "pcg-amg", *, rtol: float = 1e-6,
                 atol: float = 0.0, maxiter: int | None = None, options: Any = None,
                 format: str = "aij", amg: str | None = None, omega: float = 1.0,
                 pc: Any = None, ksp_type: str = "cg", rebuild_factor: float | None = None,
                 comm: Any = None):
        PETSc = petsc()
        if not isinstance(method, str) or method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        rtol, atol = float(rtol), float(atol)
        if not (np.isfinite(rtol) and rtol >= 0) or not (np.isfinite(atol) and atol >= 0):
            raise ValueError(f"rtol and atol must be finite and >= 0, got rtol={rtol}, "
                             f"atol={atol}")
        if rtol == 0 and atol == 0:
            raise ValueError("rtol and atol cannot both be 0")
        if maxiter is not None and (isinstance(maxiter, bool) or
                                    not isinstance(maxiter, (int, np.integer)) or maxiter < 1):
            raise ValueError(f"maxiter must be a positive int or None, got {maxiter!r}")
        if not (0.0 < float(omega) < 2.0):
            raise ValueError(f"omega must be in (0, 2), got {omega!r}")
        if amg is None:
            amg = "hypre" if PETSc.Sys.hasExternalPackage("hypre") else "gamg"
        if amg not in ("hypre", "gamg"):
            raise ValueError(f"amg must be 'hypre' or 'gamg', got {amg!r}")
        if method == "pcg-python" and pc is None:
            raise ValueError("method='pcg-python' needs pc=<a Python PC context>")
        if rebuild_factor is not None and not float(rebuild_factor) >= 1.0:
            raise ValueError(f"rebuild_factor must be >= 1 or None, got {rebuild_factor!r}")
        self.method, self.rtol, self.atol, self.maxiter = method, rtol, atol, maxiter
        self.amg, self.omega, self.format, self.ksp_type = amg, float(omega), format, ksp_type
        self.rebuild_factor = rebuild_factor
        self.options = _parse_options(options)
        self.comm = default_comm(comm)
        self.pc_context = pc
        t0 = time.perf_counter()
        self.problem = self._distribute(A)
        self._build_ksp()
        self.setup_time = time.perf_counter() - t0
        self._baseline_iterations = None
        self.solves = 0

    # ----------------------------------------------------------------------------------
    def _distribute(self, A: Any) -> DistributedProblem:
        # solve(b=None) answers in the kind of the problem given: NumPy for an lrsolve
        # problem, a Vec for a DistributedProblem.
        self._own_rhs_numpy = not isinstance(A, DistributedProblem)
        if isinstance(A, DistributedProblem):
            return A
        return to_petsc(A, format=self.format, comm=self.comm)

    def _preconditioning_matrix(self):
        D = self.problem
        needs_entries = self.method in ("ssor-cg", "pcg-amg", "pcg-mg")
        if D.A.getType() != "python" or not needs_entries:
            return D.A
        if D.da is None or D.grid is None:
            raise ValueError(f"method {self.method!r} needs matrix entries; this operator is "
                             f"matrix-free without a grid to assemble from")
        return assemble(D.da, D.grid)

    def _build_ksp(self):
        PETSc = petsc()
        D = self.problem
        self.P = self._preconditioning_matrix()
        ksp = PETSc.KSP().create(comm=D.A.getComm())
        self.prefix = f"lrsolve{next(_COUNTER)}_"
        ksp.setOptionsPrefix(self.prefix)
        ksp.setType(self.ksp_type)
        ksp.setOperators(D.A, self.P)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        n = D.A.getSize()[0]
        self._maxiter = int(self.maxiter) if self.maxiter is not None else 10 * n
        ksp.setTolerances(rtol=self.rtol, atol=self.atol, max_it=self._maxiter,
                          divtol=PETSc.DEFAULT)
        if D.da is not None and self.method == "pcg-python":
            # Grid PCs (MultigridPC, DCDMPC) find the grid through the PC's DM.  Not set for
            # the other methods: PCMG would try to coarsen the DMDA itself.
            ksp.setDM(D.da)
            ksp.setDMActive(False)
        # Residual history through a monitor (the norm KSP tests).  Not KSP's own history
        # buffer: petsc4py keeps that NumPy buffer on the Python wrapper, which can be freed
        # before the KSP at exit (a segfault seen with Python PCs).
        self._history: list = []
        ksp.setMonitor(_record_residual, args=(self._history,))
        pc = ksp.getPC()
        self.hierarchy = None
        if self.method == "cg":
            pc.setType("none")
        elif self.method == "pcg-jacobi":
            pc.setType("jacobi")
        elif self.method == "ssor-cg":
            pc.setType("sor")  # PETSc's default sweep: local symmetric (SSOR per rank)
            self.options.setdefault("pc_sor_omega", self.omega)
        elif self.method == "pcg-amg":
            if self.amg == "hypre":
                pc.setType("hypre")
                pc.setHYPREType("boomeramg")
            else:
                pc.setType("gamg")
        elif self.method == "pcg-mg":
            if D.da is None or D.grid is None:
                raise ValueError("method 'pcg-mg' needs a grid problem (a DMDA); use pcg-amg "
                                 "for a general matrix")
            Ps, shapes, das = mg_hierarchy(D.da, D.grid.grid_shape)
            self.hierarchy = {"levels": len(shapes), "shapes": shapes, "das": das, "P": Ps}
            pc.setType("mg")
            pc.setMGLevels(len(shapes))
            for level, P in enumerate(Ps, start=1):
                pc.setMGInterpolation(level, P)
            self.options.setdefault("pc_mg_galerkin", "both")
        elif self.method == "pcg-python":
            pc.setType("python")
            pc.setPythonContext(self.pc_context)
        opts = self._apply_options(ksp)
        self.ksp = ksp
        self.pc = pc
        t0 = time.perf_counter()
        try:
            ksp.setUp()
        except PETSc.Error as exc:
            self._raise_context_error(exc)
        finally:
            # Sub-solvers (PCMG levels, ...) read their options during set-up: remove ours
            # only now, so they neither leak into other solvers nor show as unused.
            for key in self.options:
                opts.delValue(key)
        self.pc_setup_time = time.perf_counter() - t0

    def _apply_options(self, ksp):
        PETSc = petsc()
        opts = PETSc.Options(self.prefix)
        for key, value in self.options.items():
            opts[key] = value
        ksp.setFromOptions()
        if ksp.getType() not in _UNPRECONDITIONED_NORM:
            # A KSP type chosen through the options may not support the true-residual norm
            # (MINRES, left-preconditioned GMRES): it keeps its own; the true residual is still
            # checked after the solve.
            ksp.setNormType(PETSc.KSP.NormType.DEFAULT)
        return opts

    def _raise_context_error(self, exc):
        ctx = self.pc_context
        err = getattr(ctx, "error", None)
        if err is not None:
            raise err from None
        raise exc

    # ----------------------------------------------------------------------------------
    def _vector(self, values: Any):
        D = self.problem
        return vector_like(D.A, values, da=None if isinstance(values, petsc().Vec) else D.da)

    def solve(self, b: Any = None, x0: Any = None) -> SolveResult:
        """Solve ``A x = b``; ``b`` a Vec or a NumPy vector replicated on every rank.

        Returns a SolveResult whose ``x`` is a Vec when ``b`` was a Vec, else the whole
        NumPy solution on every rank.  ``b=None`` uses the problem's own right-hand side.
        """
        PETSc = petsc()
        D = self.problem
        if b is None:
            if D.b is None:
                raise ValueError("b is required: this problem has no right-hand side")
            b = D.b
            as_vec = not self._own_rhs_numpy
        else:
            as_vec = isinstance(b, PETSc.Vec)
        bv = self._vector(b)
        x = bv.duplicate()
        if x0 is None:
            x.set(0.0)
            self.ksp.setInitialGuessNonzero(False)
        else:
            self._vector(x0).copy(x)
            self.ksp.setInitialGuessNonzero(True)
        ctx = self.pc_context
        if ctx is not None and hasattr(ctx, "error"):
            ctx.error = None
        self._history.clear()
        t0 = time.perf_counter()
        solve_error = None
        try:
            self.ksp.solve(bv, x)
        except PETSc.Error as exc:  # raised collectively by PETSc
            solve_error = exc
        elapsed = time.perf_counter() - t0
        # A Python PC that failed on some rank has filled its output with NaN (so every
        # rank leaves KSP together); say why on every rank.
        local = None if ctx is None or getattr(ctx, "error", None) is None else \
            f"{type(ctx.error).__name__}: {ctx.error}"
        messages = mpi_comm(self.comm).allgather(local)
        pc_error = next(((r, m) for r, m in enumerate(messages) if m is not None), None)
        if solve_error is not None and pc_error is None:
            raise solve_error
        reason = int(self.ksp.getConvergedReason())
        iterations = int(self.ksp.getIterationNumber())
        history = list(self._history)
        r = bv.duplicate()
        D.A.mult(x, r)
        r.aypx(-1.0, bv)
        true_residual = float(r.norm())
        b_norm = float(bv.norm())
        r.destroy()
        tol = max(self.rtol * b_norm, self.atol)
        status = status_from_reason(reason)
        detail = ""
        if pc_error is not None:
            status = Status.FAILED
            detail = f"the preconditioner failed on rank {pc_error[0]}: {pc_error[1]}"
        elif not np.isfinite(true_residual):
            status = Status.NONFINITE
        elif status is Status.CONVERGED and true_residual > tol:
            status = Status.STAGNATION
            detail = (f"KSP reported convergence ({_reason_name(reason)}) but the true "
                      f"residual {true_residual:.3e} exceeds the tolerance {tol:.3e}")
        elif b_norm == 0.0 and status is not Status.CONVERGED:
            status = Status.CONVERGED
        pc = self.ksp.getPC()
        stats = {"true_residual": true_residual,
                 "relative_residual": true_residual / b_norm if b_norm else 0.0,
                 "ksp_reason": reason, "ksp_reason_name": _reason_name(reason),
                 "ksp_type": self.ksp.getType(), "pc_type": pc.getType(),
                 "setup_time": self.setup_time, "ranks": self.comm.getSize(),
                 "format": D.meta.get("format"), "engine": "petsc"}
        if self.method == "pcg-amg":
            stats["amg"] = self.amg
        if self.hierarchy is not None:
            stats["mg_levels"] = self.hierarchy["levels"]
        self.solves += 1
        self._track_rebuild(iterations)
        x_out = x if as_vec else to_numpy(x, da=D.da)
        if not as_vec:
            x.destroy()
        if bv is not b and bv is not D.b:
            bv.destroy()
        return SolveResult(x=x_out, status=status, iterations=iterations, residuals=history,
                           time=elapsed, method=self.method, stats=stats, detail=detail)

    # ----------------------------------------------------------------------------------
    def _track_rebuild(self, iterations: int) -> None:
        if self._baseline_iterations is None:
            self._baseline_iterations = max(iterations, 1)
        self._last_iterations = iterations

    def update(self, A_new: Any) -> None:
        """Give KSP a new matrix of the same size and distribution (a time loop).

        With ``rebuild_factor=None`` the preconditioner is rebuilt for the new matrix (PETSc
        keeps structure such as GAMG's or MG's interpolation where it can).  With a number,
        the old preconditioner is kept until a solve's iterations exceed ``rebuild_factor``
        times the iterations right after the last rebuild; then it is rebuilt.
        """
        PETSc = petsc()
        D = self.problem
        if isinstance(A_new, DistributedProblem):
            new = A_new
        elif isinstance(A_new, PETSc.Mat):
            new = DistributedProblem(A=A_new, da=D.da, grid=None, meta=dict(D.meta))
        elif D.da is not None and hasattr(A_new, "grid_shape"):
            # A new operator on the same grid: reuse the DMDA (same distribution).
            from .convert import _is_grid_operator
            from .grid import assemble_from_csr, grid_info_from_stencil, matrix_free
            shape = tuple(int(v) for v in A_new.grid_shape)
            old_shape = tuple(D.meta.get("grid_shape", ()))
            raise_on_any_rank(None if shape == old_shape else
                              f"A_new has grid {shape} but the solver was set up on "
                              f"{old_shape}", self.comm)
            if _is_grid_operator(A_new):
                grid = grid_info_from_stencil(A_new)
                A = assemble(D.da, grid) if D.meta.get("format") == "aij" else \
                    matrix_free(D.da, grid)
            else:
                grid = None
                A = assemble_from_csr(D.da, A_new.to_csr(backend="numpy"), shape)
            new = DistributedProblem(A=A, da=D.da, grid=grid, meta=dict(D.meta))
        else:
            new = to_petsc(A_new, comm=self.comm)
        n_old, n_new = D.A.getSize()[0], new.A.getSize()[0]
        raise_on_any_rank(None if n_old == n_new else
                          f"A_new has {n_new} rows but the solver was set up for {n_old}",
                          self.comm)
        lo, hi = D.A.getOwnershipRange()
        nlo, nhi = new.A.getOwnershipRange()
        raise_on_any_rank(None if (lo, hi) == (nlo, nhi) else
                          f"A_new owns rows [{nlo}, {nhi}) but the solver's A owns "
                          f"[{lo}, {hi}): the distributions do not match", self.comm)
        reuse = False
        if self.rebuild_factor is not None and self._baseline_iterations is not None:
            reuse = self._last_iterations <= self.rebuild_factor * self._baseline_iterations
            if not reuse:
                self._baseline_iterations = None
        self.problem = new
        self.P = self._preconditioning_matrix()
        self.ksp.getPC().setReusePreconditioner(reuse)
        self.ksp.setOperators(new.A, self.P)

    def destroy(self) -> None:
        """Free the PETSc objects (collective)."""
        self.ksp.destroy()


def solve(A: Any, b: Any = None, method: str = "pcg-amg", *, rtol: float = 1e-6,
          atol: float = 0.0, maxiter: int | None = None, x0: Any = None, **options) -> SolveResult:
    """One solve on PETSc: ``PetscSolver(A, method, ...).solve(b, x0)``.

    The result's ``stats["setup_time"]`` holds the setup; ``time`` the KSP solve.
    """
    solver = PetscSolver(A, method=method, rtol=rtol, atol=atol, maxiter=maxiter, **options)
    result = solver.solve(b, x0=x0)
    solver.destroy()
    return result

