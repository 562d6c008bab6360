"""lrsolve's grid problems as distributed PETSc objects on a DMDA.

The grid of a :class:`~lrsolve.operators.PoissonStencil` (``n`` interior points per axis,
zero Dirichlet boundary, face coefficients by arithmetic mean) maps onto a PETSc DMDA with
a star stencil of width 1; each rank owns a box of the grid.

Orientation: lrsolve flattens grids in C order (last axis fastest); a DMDA numbers its
*natural* ordering with x fastest.  So lrsolve axis ``dim-1`` is the DMDA's x axis and the
DMDA natural ordering *is* lrsolve's flat ordering: a NumPy vector converts by
``naturalToGlobal``, and a rank's owned part of a global vector, reshaped in C order to
its box ``(zm, ym, xm)``, is already in lrsolve's axis order.

The operator exists twice, with identical values:

* assembled AIJ (:func:`assemble`), so every PETSc preconditioner can use it;
* matrix-free (:class:`PoissonShell`, a ``MATPYTHON`` context): ``y = A x`` exchanges the
  halo through ``DMGlobalToLocal`` and applies the stencil to the rank's box with NumPy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._base import default_comm, petsc, raise_on_any_rank

__all__ = ["GridInfo", "DistributedProblem", "create_dmda", "assemble", "assemble_from_csr",
           "PoissonShell",
           "matrix_free", "grid_vector", "grid_info_from_stencil"]


@dataclass
class GridInfo:
    """What the distributed operator needs to know about an lrsolve grid operator."""

    grid_shape: tuple            # lrsolve axis order
    scale: float                 # 1/h^2 (or 1 for the unscaled stencil)
    constant: float | None       # the coefficient when constant
    faces: list | None           # full face-coefficient arrays (unscaled), one per axis
    shift: float = 0.0

    @property
    def dim(self) -> int:
        return len(self.grid_shape)

    @property
    def unknowns(self) -> int:
        return int(np.prod(self.grid_shape))


def grid_info_from_stencil(op: Any) -> GridInfo:
    """A :class:`GridInfo` from an lrsolve :class:`~lrsolve.operators.PoissonStencil`."""
    faces = getattr(op, "_faces_np", None)
    return GridInfo(grid_shape=tuple(int(s) for s in op.grid_shape), scale=float(op.scale),
                    constant=None if faces is not None else float(op.constant),
                    faces=None if faces is None else [np.asarray(f) for f in faces],
                    shift=float(getattr(op, "shift_value", 0.0)))


@dataclass
class DistributedProblem:
    """A linear system distributed over the ranks of a communicator.

    Attributes
    ----------
    A : petsc4py.PETSc.Mat
        The operator (assembled AIJ or a ``MATPYTHON`` shell).
    b : petsc4py.PETSc.Vec or None
        The right-hand side, in the operator's layout.
    da : petsc4py.PETSc.DMDA or None
        The grid (None for a matrix distributed by rows).
    meta : dict
        ``grid_shape``, ``format`` (``"aij"`` or ``"matfree"``), ``unknowns``, ``ranks``, ...
    """

    A: Any
    b: Any = None
    da: Any = None
    meta: dict = field(default_factory=dict)
    grid: GridInfo | None = None


def create_dmda(grid_shape: tuple, comm: Any = None, proc_sizes: tuple | None = None):
    """A DMDA for an lrsolve grid (x = lrsolve's last axis), star stencil of width 1."""
    PETSc = petsc()
    comm = default_comm(comm)
    sizes = tuple(int(s) for s in reversed(grid_shape))
    da = PETSc.DMDA().create(dim=len(sizes), sizes=sizes, dof=1, stencil_width=1,
                             stencil_type=PETSc.DMDA.StencilType.STAR,
                             proc_sizes=None if proc_sizes is None else tuple(reversed(proc_sizes)),
                             comm=comm)
    da.setUp()
    _DMDAS[da.handle] = da
    return da


# DMDAs made here, by handle: a Vec's getDM() gives a plain DM, and gather() needs the DMDA.
_DMDAS: dict = {}


def dmda_of_handle(handle: int):
    """The DMDA created by :func:`create_dmda` with this handle (None if not ours)."""
    return _DMDAS.get(handle)


def owned_box(da) -> tuple[tuple, tuple]:
    """``(starts, stops)`` of this rank's box, in lrsolve axis order."""
    ranges = list(reversed(da.getRanges()))
    return tuple(r[0] for r in ranges), tuple(r[1] for r in ranges)


def ghost_box(da) -> tuple[tuple, tuple]:
    """``(starts, stops)`` of this rank's ghosted box, in lrsolve axis order."""
    ranges = list(reversed(da.getGhostRanges()))
    return tuple(r[0] for r in ranges), tuple(r[1] for r in ranges)


class _LocalStencil:
    """The stencil restricted to one rank's box: face weights (scaled) and the diagonal."""

    def __init__(self, grid: GridInfo, starts: tuple, stops: tuple):
        dim = grid.dim
        self.shape = tuple(e - s for s, e in zip(starts, stops))
        self.lo, self.hi = [], []
        diag = np.full(self.shape, float(grid.shift))
        for axis in range(dim):
            if grid.faces is None:
                w_lo = np.full(self.shape, grid.constant * grid.scale)
                w_hi = w_lo
            else:
                face = grid.faces[axis]
                box_lo = [slice(s, e) for s, e in zip(starts, stops)]
                box_hi = list(box_lo)
                box_hi[axis] = slice(starts[axis] + 1, stops[axis] + 1)
                w_lo = grid.scale * face[tuple(box_lo)]
                w_hi = grid.scale * face[tuple(box_hi)]
            self.lo.append(np.ascontiguousarray(w_lo))
            self.hi.append(np.ascontiguousarray(w_hi))
            diag = diag + w_lo + w_hi
        self.diag = diag

    def apply(self, padded: np.ndarray) -> np.ndarray:
        """``A u`` on the box from ``padded`` (the box plus one layer of halo, zero outside)."""
        dim = len(self.shape)
        inner = tuple(slice(1, s + 1) for s in self.shape)
        out = self.diag * padded[inner]
        for axis in range(dim):
            before = list(inner)
            before[axis] = slice(0, self.shape[axis])
            after = list(inner)
            after[axis] = slice(2, self.shape[axis] + 2)
            out -= self.lo[axis] * padded[tuple(before)]
            out -= self.hi[axis] * padded[tuple(after)]
        return out


class PoissonShell:
    """``MATPYTHON`` context: the grid operator applied matrix-free with a halo exchange.

    ``mult`` scatters the global vector into the rank's ghosted local vector
    (``DMGlobalToLocal``: one neighbour exchange of the box faces), copies it into a
    zero-padded box (zero = the Dirichlet boundary) and applies the stencil.
    """

    def __init__(self, da, grid: GridInfo):
        self.da = da
        self.grid = grid
        starts, stops = owned_box(da)
        gstarts, gstops = ghost_box(da)
        self.stencil = _LocalStencil(grid, starts, stops)
        self.ghost_shape = tuple(e - s for s, e in zip(gstarts, gstops))
        self.halo = tuple(slice(gs - s + 1, ge - s + 1)
                          for s, gs, ge in zip(starts, gstarts, gstops))
        self.padded = np.zeros(tuple(n + 2 for n in self.stencil.shape))
        self.local = da.createLocalVec()
        self.mults = 0

    def mult(self, mat, x, y):
        self.da.globalToLocal(x, self.local)
        ghosted = self.local.getArray(readonly=True).reshape(self.ghost_shape)
        self.padded[self.halo] = ghosted
        y.getArray()[:] = self.stencil.apply(self.padded).reshape(-1)
        self.mults += 1

    def multTranspose(self, mat, x, y):  # the operator is symmetric
        self.mult(mat, x, y)

    def getDiagonal(self, mat, d):
        d.getArray()[:] = self.stencil.diag.reshape(-1)

    def local_block_csr(self):
        """The rank's diagonal block (its box with Dirichlet cuts) as scipy CSR."""
        return local_block_csr(self.stencil)


def local_block_csr(stencil: _LocalStencil):
    """scipy CSR of a box stencil with zero outside the box (block-Jacobi block)."""
    import scipy.sparse as sp
    shape = stencil.shape
    N = int(np.prod(shape))
    idx = np.arange(N).reshape(shape)
    rows, cols, vals = [idx.reshape(-1)], [idx.reshape(-1)], [stencil.diag.reshape(-1)]
    for axis in range(len(shape)):
        if shape[axis] < 2:
            continue
        a = [slice(None)] * len(shape)
        b = [slice(None)] * len(shape)
        a[axis] = slice(0, shape[axis] - 1)
        b[axis] = slice(1, shape[axis])
        w = -stencil.hi[axis][tuple(a)].reshape(-1)
        rows += [idx[tuple(a)].reshape(-1), idx[tuple(b)].reshape(-1)]
        cols += [idx[tuple(b)].reshape(-1), idx[tuple(a)].reshape(-1)]
        vals += [w, w]
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(N, N))
    A.sum_duplicates()
    A.sort_indices()
    return A


def _global_index_halo(da) -> np.ndarray:
    """PETSc global index of every point of the padded box (-1 outside the domain)."""
    starts, stops = owned_box(da)
    gstarts, gstops = ghost_box(da)
    g = da.createGlobalVec()
    rstart, rend = g.getOwnershipRange()
    g.getArray()[:] = np.arange(rstart, rend, dtype=np.float64)
    loc = da.createLocalVec()
    da.globalToLocal(g, loc)
    shape = tuple(e - s for s, e in zip(starts, stops))
    ghost_shape = tuple(e - s for s, e in zip(gstarts, gstops))
    padded = np.full(tuple(n + 2 for n in shape), -1.0)
    halo = tuple(slice(gs - s + 1, ge - s + 1) for s, gs, ge in zip(starts, gstarts, gstops))
    padded[halo] = loc.getArray(readonly=True).reshape(ghost_shape)
    g.destroy()
    loc.destroy()
    return np.rint(padded).astype(np.int64)


def assemble(da, grid: GridInfo):
    """The grid operator as an assembled MPIAIJ (SeqAIJ on one rank) in the DMDA's layout."""
    PETSc = petsc()
    import scipy.sparse as sp
    starts, stops = owned_box(da)
    stencil = _LocalStencil(grid, starts, stops)
    shape = stencil.shape
    gidx = _global_index_halo(da)
    inner = tuple(slice(1, s + 1) for s in shape)
    nloc = int(np.prod(shape))
    local_rows = np.arange(nloc)
    rows, cols, vals = [local_rows], [gidx[inner].reshape(-1)], [stencil.diag.reshape(-1)]
    for axis in range(len(shape)):
        for weights, offset in ((stencil.lo[axis], 0), (stencil.hi[axis], 2)):
            nb = list(inner)
            nb[axis] = slice(offset, shape[axis] + offset)
            col = gidx[tuple(nb)].reshape(-1)
            keep = col >= 0  # a neighbour outside the domain is the Dirichlet boundary
            rows.append(local_rows[keep])
            cols.append(col[keep])
            vals.append(-weights.reshape(-1)[keep])
    N = grid.unknowns
    local = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(nloc, N))
    local.sum_duplicates()
    local.sort_indices()
    A = PETSc.Mat().createAIJ(size=((nloc, N), (nloc, N)),
                              csr=(local.indptr.astype(PETSc.IntType),
                                   local.indices.astype(PETSc.IntType), local.data),
                              comm=da.getComm())
    A.assemble()
    A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
    return A


def assemble_from_csr(da, A_csr, grid_shape: tuple):
    """Any grid operator given as CSR (lrsolve ordering) as an AIJ in the DMDA's layout.

    For grid operators beyond the unit-box stencil (``GridOperator``: rectangular grids,
    cell coefficients, masks, Neumann sides): each rank takes the rows of its box and maps
    the columns to PETSc's numbering through the DMDA's application ordering.
    """
    PETSc = petsc()
    import scipy.sparse as sp
    starts, stops = owned_box(da)
    grids = np.meshgrid(*[np.arange(s, e) for s, e in zip(starts, stops)], indexing="ij")
    rows = np.ravel_multi_index(tuple(g.reshape(-1) for g in grids), tuple(grid_shape))
    block = sp.csr_matrix(A_csr)[rows].tocoo()
    ao = da.getAO()
    cols = np.asarray(ao.app2petsc(block.col.astype(PETSc.IntType)), dtype=np.int64)
    N = int(np.prod(grid_shape))
    local = sp.csr_matrix((block.data.astype(np.float64), (block.row, cols)),
                          shape=(rows.shape[0], N))
    local.sum_duplicates()
    local.sort_indices()
    A = PETSc.Mat().createAIJ(size=((rows.shape[0], N), (rows.shape[0], N)),
                              csr=(local.indptr.astype(PETSc.IntType),
                                   local.indices.astype(PETSc.IntType), local.data),
                              comm=da.getComm())
    A.assemble()
    return A


def matrix_free(da, grid: GridInfo):
    """The grid operator as a ``MATPYTHON`` shell (:class:`PoissonShell`) on the DMDA."""
    PETSc = petsc()
    ctx = PoissonShell(da, grid)
    nloc = int(np.prod(ctx.stencil.shape))
    N = grid.unknowns
    A = PETSc.Mat().createPython(((nloc, N), (nloc, N)), context=ctx, comm=da.getComm())
    A.setUp()
    A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
    return A


def grid_vector(da, values: Any = None):
    """A DMDA global vector holding ``values`` (a full lrsolve-ordered array on every rank).

    ``values`` must be the same full-length array on every rank (as lrsolve's generators
    produce with the same seed); each rank takes its own box.  ``None`` gives zeros.
    """
    g = da.createGlobalVec()
    if values is None:
        g.set(0.0)
        return g
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    N = g.getSize()
    raise_on_any_rank(None if arr.shape[0] == N else
                      f"vector has {arr.shape[0]} entries but the grid has {N} unknowns",
                      da.getComm())
    nat = da.createNaturalVec()
    ns, ne = nat.getOwnershipRange()
    nat.getArray()[:] = arr[ns:ne]
    da.naturalToGlobal(nat, g)
    nat.destroy()
    return g
