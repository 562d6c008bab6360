"""lrsolve preconditioners as PETSc Python PCs, for any petsc4py program.

Use them from the command line of an existing PETSc code::

    -pc_type python -pc_python_type lrsolve.petsc.SSORPC       # or MultigridPC, BanditSSORPC, DCDMPC

or from Python: ``pc.setType("python"); pc.setPythonContext(lrsolve.petsc.SSORPC(omega=1.5))``.

Each works on the *rank-local block* (block Jacobi): the rows a rank owns, coupled only to
each other; the couplings to other ranks are dropped from the preconditioner (not from the
operator), so the PC needs no communication and an existing simulation gets it without
code changes.  The local block comes from the PC's matrix: the diagonal block of an AIJ
matrix, or the box stencil of lrsolve's matrix-free shell.

* :class:`SSORPC` - lrsolve's SSOR (numba symmetric sweeps) on the local block.
* :class:`BanditSSORPC` - SSOR whose omega a :class:`lrsolve.relax.BanditSOR` learner picks
  before every KSP solve and learns from the KSP iteration count after it.  One learner
  lives on rank 0; its choice is broadcast, so every rank uses the same omega.
* :class:`MultigridPC` - a geometric V-cycle on the rank's grid box (needs the grid: a DMDA
  attached with ``ksp.setDM(da)``).  Until ``lrsolve.multigrid`` exists it uses this
  package's own Galerkin V(1,1) cycle with SSOR smoothing (see ``docs/petsc.md``).
* :class:`DCDMPC` - the DCDM network direction on the rank's 2-D grid box.  It is a
  nonlinear preconditioner: use it with a flexible Krylov method (``-ksp_type fcg``).

Options (under the PC's prefix): ``-lrsolve_omega`` (SSOR), ``-lrsolve_seed`` (bandit).

Failure handling: a Python exception inside ``apply`` on one rank would leave the other
ranks waiting in KSP's next reduction.  So ``apply`` never raises: it stores the error and
returns NaN, which every rank sees in the next global norm (``DIVERGED_NANORINF`` on all
ranks together); :class:`~lrsolve.petsc.PetscSolver` then reports the stored message on
every rank.  Errors in ``setUp`` (a non-grid operator given to a grid-only PC) are decided
collectively and raised on every rank.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._base import mpi_comm, petsc, raise_on_any_rank, track_python_pc
from ._transfer import local_prolongation

__all__ = ["SSORPC", "BanditSSORPC", "MultigridPC", "DCDMPC", "LocalVCycle", "local_block"]


def _grid_dm(pc):
    """The DMDA attached to the PC (through ``ksp.setDM``), or None."""
    try:
        dm = pc.getDM()
    except Exception:  # pragma: no cover - no DM at all
        return None
    if dm is None or not dm.handle:
        return None
    return dm if dm.getType() == "da" else None


def local_block(P):
    """The rank-local diagonal block of ``P`` as scipy CSR (None when P has no entries)."""
    import scipy.sparse as sp
    kind = P.getType()
    if kind == "python":
        ctx = P.getPythonContext()
        return ctx.local_block_csr() if hasattr(ctx, "local_block_csr") else None
    if "aij" not in kind:
        return None
    block = P.getDiagonalBlock() if P.getComm().getSize() > 1 else P
    indptr, indices, data = block.getValuesCSR()
    n = block.getSize()[0]
    return sp.csr_matrix((data, indices, indptr), shape=(n, block.getSize()[1]))


class _LocalBlockPC:
    """Shared protocol: set up on the local block, apply on local arrays, never hang."""

    grid_only = False
    name = "local"

    def __init__(self):
        self.error = None
        self.applications = 0
        self.apply_seconds = 0.0
        self.setup_seconds = 0.0

    # PETSc calls -------------------------------------------------------------------------
    def setFromOptions(self, pc):
        PETSc = petsc()
        self._read_options(PETSc.Options(pc.getOptionsPrefix() or ""))

    def _read_options(self, opts):
        pass

    def setUp(self, pc):
        t0 = time.perf_counter()
        self.error = None
        track_python_pc(pc)
        A, P = pc.getOperators()
        comm = pc.getComm()
        block, message = None, None
        dm = _grid_dm(pc)
        try:
            block = local_block(P)
            if block is None:
                message = (f"{type(self).__name__} needs the matrix entries of the local block "
                           f"(an AIJ matrix or lrsolve's grid shell); got a {P.getType()!r} "
                           f"matrix")
            elif self.grid_only and dm is None:
                message = (f"{type(self).__name__} works on grid operators only: attach the "
                           f"grid with ksp.setDM(da) (a DMDA); this operator has no grid")
        except Exception as exc:  # noqa: BLE001 - turned into a collective error below
            message = f"{type(exc).__name__}: {exc}"
        try:
            raise_on_any_rank(message, comm, exc=TypeError if self.grid_only else ValueError)
            box = None
            if dm is not None:
                ranges = list(reversed(dm.getRanges()))
                box = tuple(e - s for s, e in ranges)
                raise_on_any_rank(None if int(np.prod(box)) == block.shape[0] else
                                  f"the grid box {box} has {int(np.prod(box))} points but the "
                                  f"local block has {block.shape[0]} rows: the matrix and the "
                                  f"DMDA are distributed differently", comm)
            setup_message = None
            try:
                self._setup_local(block, box)
            except Exception as exc:  # noqa: BLE001
                setup_message = f"{type(exc).__name__}: {exc}"
            raise_on_any_rank(setup_message, comm)
        except Exception as exc:
            self.error = exc
            raise
        self.setup_seconds += time.perf_counter() - t0

    def apply(self, pc, x, y):
        t0 = time.perf_counter()
        try:
            if self.error is not None:
                raise RuntimeError(f"set-up failed earlier: {self.error}")
            r = x.getArray(readonly=True)
            z = self._apply_local(np.asarray(r))
            if z.shape != r.shape:
                raise ValueError(f"local preconditioner returned shape {z.shape}, expected "
                                 f"{r.shape}")
            y.getArray()[:] = z
        except Exception as exc:  # noqa: BLE001 - never raise inside KSP (see module doc)
            if self.error is None:
                self.error = exc
            y.set(np.nan)
        self.applications += 1
        self.apply_seconds += time.perf_counter() - t0

    def view(self, pc, viewer):  # pragma: no cover - cosmetic
        viewer.printfASCII(f"  lrsolve {type(self).__name__} on the rank-local block\n")

    # local work -----------------------------------------------------------------------
    def _setup_local(self, block, box):
        raise NotImplementedError

    def _apply_local(self, r: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SSORPC(_LocalBlockPC):
    """lrsolve's SSOR(omega) on the rank-local block (block-Jacobi SSOR).

    Parameters
    ----------
    omega : float
        In (0, 2); also ``-lrsolve_omega``.
    """

    name = "ssor"

    def __init__(self, omega: float = 1.0):
        super().__init__()
        from ..relax import check_omega
        self.omega = check_omega(omega)
        self.ssor = None

    def _read_options(self, opts):
        if opts.hasName("lrsolve_omega"):
            from ..relax import check_omega
            self.omega = check_omega(opts.getReal("lrsolve_omega"))

    def _setup_local(self, block, box):
        from ..relax import SSOR
        self.ssor = SSOR(block, omega=self.omega)

    def set_omega(self, omega: float) -> None:
        from ..relax import check_omega
        self.omega = check_omega(omega)
        if self.ssor is not None:
            self.ssor.omega = self.omega

    def _apply_local(self, r):
        return self.ssor.matvec(r)


class BanditSSORPC(SSORPC):
    """SSOR with omega learned across KSP solves by a bandit (``lrsolve.relax.BanditSOR``).

    Before each KSP solve (``preSolve``) rank 0's learner picks omega and broadcasts it;
    after it (``postSolve``) rank 0 charges the learner KSP's iteration count (the same on
    every rank).  ``omega_history`` records the omega used, on every rank.

    Parameters
    ----------
    learner : str
        A :mod:`lrsolve.relax` learner name (default: BanditSOR's choice for SSOR-CG).
    omegas : array, optional
        The arms (default ``linspace(1, 1.95, 20)``).
    seed : int
        The learner's seed (also ``-lrsolve_seed``).
    """

    name = "bandit-ssor"

    def __init__(self, learner: str | None = None, omegas: Any = None, seed: int = 0):
        super().__init__(omega=1.0)
        self.learner_name, self.omegas, self.seed = learner, omegas, int(seed)
        self.tuner = None
        self.omega_history: list = []
        self.cost_history: list = []
        self._comm = None

    def _read_options(self, opts):
        super()._read_options(opts)
        if opts.hasName("lrsolve_seed"):
            self.seed = int(opts.getInt("lrsolve_seed"))

    def _tuner(self):
        if self.tuner is None:
            from ..relax import BanditSOR
            self.tuner = BanditSOR(omegas=self.omegas, learner=self.learner_name,
                                   seed=self.seed, method="ssor-cg")
        return self.tuner

    def preSolve(self, pc, ksp, b, x):
        comm = mpi_comm(pc.getComm())
        omega = None
        if comm.rank == 0:
            omega = float(self._tuner().learner.choose(None, {}))
        omega = comm.bcast(omega, root=0)
        self.set_omega(omega)
        self.omega_history.append(omega)

    def postSolve(self, pc, ksp, b, x):
        comm = mpi_comm(pc.getComm())
        iterations = int(ksp.getIterationNumber())
        cost = float(iterations)
        self.cost_history.append(cost)
        if comm.rank == 0:
            tuner = self._tuner()
            tuner.learner.update(cost, {"omega": self.omega})
            tuner.t += 1
            tuner.history["omega"].append(self.omega)
            tuner.history["iterations"].append(iterations)
            tuner.history["converged"].append(int(ksp.getConvergedReason()) > 0)
            tuner.history["capped"].append(False)


class LocalVCycle:
    """A geometric V(1,1)-cycle on one box: Galerkin coarse grids, SSOR smoothing.

    Symmetric (the same symmetric SSOR sweep before and after the coarse correction), so
    it is a valid CG preconditioner.  Coarsening halves each axis until the coarse grid has
    at most ``coarsest`` points; the coarsest system is factorised (SuperLU).
    """

    def __init__(self, A, box: tuple, *, coarsest: int = 2000, omega: float = 1.0):
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla
        from ..relax import SSOR
        self.levels = []
        shape = tuple(int(s) for s in box)
        A = sp.csr_matrix(A)
        while int(np.prod(shape)) > coarsest and min(shape) >= 3:
            P, coarse_shape = local_prolongation(shape)
            P = P.tocsr()
            R = P.T.tocsr()
            self.levels.append({"A": A, "P": P, "R": R, "S": SSOR(A, omega=omega),
                                "shape": shape})
            A = (R @ A @ P).tocsr()
            A.sort_indices()
            shape = coarse_shape
        self.coarse_shape = shape
        self.coarse = spla.splu(sp.csc_matrix(A))
        self.shapes = [lv["shape"] for lv in self.levels] + [shape]

    def __call__(self, b: np.ndarray) -> np.ndarray:
        return self._cycle(0, np.ascontiguousarray(b, dtype=np.float64))

    def _cycle(self, level: int, b: np.ndarray) -> np.ndarray:
        if level == len(self.levels):
            return self.coarse.solve(b)
        lv = self.levels[level]
        A, S = lv["A"], lv["S"]
        x = S.matvec(b)
        r = b - A @ x
        x += lv["P"] @ self._cycle(level + 1, lv["R"] @ r)
        x += S.matvec(b - A @ x)
        return x


class ParallelVCycle:
    """A geometric V(1,1)-cycle across the ranks: PETSc for the distributed algebra.

    Levels come from the DMDA hierarchy of ``pcg-mg`` (2x coarsening, linear
    interpolation ``P``), coarse operators by Galerkin ``P^T A P`` (``MatPtAP``), smoothing
    by lrsolve's SSOR on each rank's block of each level (hybrid Gauss-Seidel: symmetric
    sweeps inside a rank, Jacobi between ranks), and the coarsest system (about 100
    unknowns) factorised redundantly on every rank.  The same symmetric smoother before and
    after the coarse correction keeps the cycle symmetric, so it preconditions CG.
    """

    def __init__(self, A, da, grid_shape: tuple, *, omega: float = 1.0):
        import scipy.sparse.linalg as spla
        from ..relax import SSOR
        from .solver import mg_hierarchy
        Ps, shapes, _ = mg_hierarchy(da, grid_shape)
        self.P = list(reversed(Ps))            # fine-to-coarse order
        self.shapes = list(reversed(shapes))
        self.A = [A]
        for P in self.P:
            self.A.append(self.A[-1].PtAP(P))
        self.smoothers = [SSOR(local_block(Al), omega=omega) for Al in self.A[:-1]]
        # Per level: right-hand side and solution (coarse levels), residual and correction.
        self.rhs = [Al.createVecLeft() for Al in self.A]
        self.sol = [Al.createVecLeft() for Al in self.A]
        self.res = [Al.createVecLeft() for Al in self.A]
        self.tmp = [Al.createVecLeft() for Al in self.A]
        coarse = self.A[-1]
        self.comm = mpi_comm(coarse.getComm())
        self.coarse_range = coarse.getOwnershipRange()
        full = _gather_matrix(coarse, self.comm)
        self.coarse_lu = spla.splu(full.tocsc())

    def apply(self, b, x) -> None:
        """``x = V(b)`` for PETSc Vecs in the fine layout."""
        self._cycle(0, b, x)

    def _smooth(self, level: int, r, out) -> None:
        out.getArray()[:] = self.smoothers[level].matvec(np.asarray(r.getArray(readonly=True)))

    def _cycle(self, level: int, b, x) -> None:
        if level == len(self.A) - 1:
            lo, hi = self.coarse_range
            full = np.concatenate(self.comm.allgather(np.array(b.getArray(readonly=True))))
            x.getArray()[:] = self.coarse_lu.solve(full)[lo:hi]
            return
        A, P = self.A[level], self.P[level]
        r, z = self.res[level], self.tmp[level]
        bc, xc = self.rhs[level + 1], self.sol[level + 1]
        self._smooth(level, b, x)                  # x = S b
        A.mult(x, r)
        r.aypx(-1.0, b)                            # r = b - A x
        P.multTranspose(r, bc)
        self._cycle(level + 1, bc, xc)
        P.multAdd(xc, x, x)                        # x += P e_c
        A.mult(x, r)
        r.aypx(-1.0, b)
        self._smooth(level, r, z)
        x.axpy(1.0, z)                             # x += S (b - A x)


def _gather_matrix(M, comm):
    """The whole (small) distributed matrix as scipy CSR on every rank."""
    import scipy.sparse as sp
    indptr, indices, data = M.getValuesCSR()
    lo, hi = M.getOwnershipRange()
    n = M.getSize()[0]
    local = sp.csr_matrix((data, indices, indptr), shape=(hi - lo, n))
    return sp.vstack(comm.allgather(local)).tocsr()


def _shared_gmg(block, box):
    """``lrsolve.multigrid.GMG`` on the box when the block is a constant-coefficient stencil.

    The rank's block of a constant-coefficient grid operator is the same operator on the
    box with Dirichlet cuts: ``GridOperator(box, coefficient=-offdiag, shift=...)`` at unit
    spacing.  That is checked on a random vector; anything else (variable coefficients,
    masks, a matrix of another origin) returns None and the Galerkin LocalVCycle is used.
    """
    try:
        from ..multigrid import GMG
        from ..operators.grid import GridOperator
    except ImportError:  # pragma: no cover - the shared layer is absent
        return None
    import scipy.sparse as sp
    A = sp.csr_matrix(block)
    offdiag = A - sp.diags(A.diagonal())
    if offdiag.nnz == 0 or A.shape[0] < 8:
        return None
    values = offdiag.data
    coefficient = -float(values[0])
    diag = A.diagonal()
    if coefficient <= 0 or not np.allclose(values, values[0], rtol=1e-12, atol=0.0) or \
            not np.allclose(diag, diag[0], rtol=1e-12, atol=0.0):
        return None
    shift = float(diag[0]) - 2 * len(box) * coefficient
    if shift < -1e-12 * abs(diag[0]):
        return None
    try:
        G = GridOperator(tuple(int(s) for s in box), spacing=1.0, coefficient=coefficient,
                         shift=max(shift, 0.0))
        x = np.random.default_rng(0).standard_normal(A.shape[0])
        if np.linalg.norm(G @ x - A @ x) > 1e-12 * np.linalg.norm(A @ x):
            return None
        M = GMG(G)
    except Exception:  # noqa: BLE001 - e.g. a box too small to coarsen
        return None
    return lambda r: np.asarray(M @ np.ascontiguousarray(r, dtype=np.float64))


class MultigridPC(_LocalBlockPC):
    """Geometric multigrid for grid operators as a PETSc Python PC.

    Needs the grid: the KSP's DM must be a DMDA (``ksp.setDM(da)``, as
    :class:`~lrsolve.petsc.PetscSolver` does for lrsolve's grid problems) and the PC's
    matrix must be assembled (AIJ, or lrsolve's shell, which is assembled for it); an
    operator without a grid is a TypeError on every rank.

    Parameters
    ----------
    scope : {"global", "local"}
        ``"global"`` (default): :class:`ParallelVCycle`, one V-cycle across all ranks (PETSc
        does the distributed products, lrsolve's SSOR smooths each rank's block).
        ``"local"``: a V-cycle on each rank's box alone (block Jacobi; no communication
        inside the PC, iterations grow with the number of ranks).
    local_cycle : {"own", "gmg"}
        The cycle of ``scope="local"``: :class:`LocalVCycle` (default), or
        ``lrsolve.multigrid.GMG`` on the box when the block is a constant-coefficient grid
        operator (else LocalVCycle).  Not the default: GMG's numba kernels took minutes to
        compile per process on the 2-core test machine (see ``docs/petsc.md``).

    ``uses`` names the cycle after set-up.  The global cycle is this package's own, because
    its levels are distributed PETSc matrices (see ``docs/petsc.md``).
    """

    grid_only = True
    name = "multigrid"

    def __init__(self, scope: str = "global", coarsest: int = 2000, local_cycle: str = "own"):
        super().__init__()
        if scope not in ("global", "local"):
            raise ValueError(f"scope must be 'global' or 'local', got {scope!r}")
        if local_cycle not in ("own", "gmg"):
            raise ValueError(f"local_cycle must be 'own' or 'gmg', got {local_cycle!r}")
        self.local_cycle = local_cycle
        self.scope = scope
        self.coarsest = int(coarsest)
        self.cycle = None
        self._P = None
        self._dm = None

    def _read_options(self, opts):
        if opts.hasName("lrsolve_mg_scope"):
            scope = opts.getString("lrsolve_mg_scope")
            if scope not in ("global", "local"):
                raise ValueError(f"-lrsolve_mg_scope must be 'global' or 'local', got {scope!r}")
            self.scope = scope

    def setUp(self, pc):
        A, P = pc.getOperators()
        self._P = P
        self._dm = _grid_dm(pc)
        super().setUp(pc)

    def _setup_local(self, block, box):
        if self.scope == "local":
            self.cycle = _shared_gmg(block, box) if self.local_cycle == "gmg" else None
            self.uses = "lrsolve.multigrid.GMG" if self.cycle is not None else "LocalVCycle"
            if self.cycle is None:
                self.cycle = LocalVCycle(block, box, coarsest=self.coarsest)
            return
        self.uses = "ParallelVCycle"
        P = self._P
        if P.getType() == "python":
            from .grid import assemble
            ctx = P.getPythonContext()
            P = assemble(ctx.da, ctx.grid)
        grid_shape = tuple(int(s) for s in reversed(self._dm.getSizes()))
        self.cycle = ParallelVCycle(P, self._dm, grid_shape)

    def _apply_local(self, r):
        return self.cycle(r)

    def apply(self, pc, x, y):
        if self.scope == "local":
            return super().apply(pc, x, y)
        t0 = time.perf_counter()
        try:
            if self.error is not None:
                raise RuntimeError(f"set-up failed earlier: {self.error}")
            self.cycle.apply(x, y)
        except Exception as exc:  # noqa: BLE001 - never raise inside KSP (module doc)
            if self.error is None:
                self.error = exc
            y.set(np.nan)
        self.applications += 1
        self.apply_seconds += time.perf_counter() - t0


class DCDMPC(_LocalBlockPC):
    """The DCDM network direction on the rank's 2-D grid box (nonlinear: use ``-ksp_type fcg``).

    Parameters
    ----------
    model : torch.nn.Module or str
        A DCDM network or the name of a shipped one (default ``"poisson2d"``).
    """

    grid_only = True
    name = "dcdm"

    def __init__(self, model: Any = "poisson2d"):
        super().__init__()
        self.model = model
        self.direction = None

    def _setup_local(self, block, box):
        if len(box) != 2:
            raise ValueError(f"DCDMPC needs a 2-D grid (the shipped networks are 2-D); the "
                             f"local box is {box}")
        model = self.model
        if isinstance(model, str):
            from ..dcdm import load_pretrained
            model = load_pretrained(model)
        from ..dcdm.solver import NetworkDirection
        self.direction = NetworkDirection(model, box)

    def _apply_local(self, r):
        # A writable copy: torch.from_numpy refuses PETSc's read-only view quietly otherwise.
        return np.asarray(self.direction(np.array(r, dtype=np.float64)), dtype=np.float64)
