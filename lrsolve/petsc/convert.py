"""Conversions between lrsolve / NumPy / SciPy objects and distributed PETSc objects.

* :func:`to_petsc` - a grid problem or operator -> a DMDA-distributed problem (assembled
  or matrix-free); a scipy sparse matrix -> an MPIAIJ distributed by rows; a NumPy vector
  -> a Vec in a given layout.
* :func:`gather` - a distributed Vec -> the whole NumPy vector on rank 0 (``None``
  elsewhere), in lrsolve's ordering (a DMDA vector is put back in natural order first).

Inputs given as NumPy arrays or scipy matrices are expected *replicated* on every rank (as
a script run under ``mpiexec`` builds them); each rank keeps its own rows.  A size that
differs between ranks is caught collectively: every rank raises, none hangs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._base import default_comm, petsc, raise_on_any_rank
from .grid import (DistributedProblem, GridInfo, assemble, create_dmda, grid_info_from_stencil,
                   grid_vector, matrix_free)

__all__ = ["to_petsc", "gather", "to_numpy", "csr_to_petsc", "vector_like", "FORMATS"]

FORMATS = ("aij", "matfree")


def _is_grid_operator(A: Any) -> bool:
    return hasattr(A, "grid_shape") and hasattr(A, "scale") and (
        hasattr(A, "_faces_np") or hasattr(A, "constant"))


def _is_problem(obj: Any) -> bool:
    return hasattr(obj, "A") and hasattr(obj, "b") and hasattr(obj, "meta")


def _to_numpy_host(x: Any) -> np.ndarray:
    from .. import backend as bk
    return np.asarray(bk.to_numpy(x), dtype=np.float64)


def to_petsc(obj: Any, b: Any = None, *, format: str = "aij", comm: Any = None,
             proc_sizes: tuple | None = None):
    """Distribute an lrsolve problem, operator, scipy matrix or vector over the ranks.

    Parameters
    ----------
    obj : PoissonProblem, PoissonStencil, scipy sparse matrix, or array
        * a grid problem / grid operator -> :class:`DistributedProblem` on a new DMDA;
        * a scipy sparse (or dense 2-D NumPy) matrix -> :class:`DistributedProblem` whose
          ``A`` is an MPIAIJ distributed by contiguous row blocks;
        * a PETSc Mat -> wrapped as it is.
    b : array or PETSc Vec, optional
        The right-hand side (a problem brings its own).
    format : {"aij", "matfree"}
        Grid operators only: assembled AIJ or the ``MATPYTHON`` shell with halo exchange.
    comm : PETSc or mpi4py communicator, optional
        ``PETSc.COMM_WORLD`` by default.
    proc_sizes : tuple, optional
        Ranks per grid axis (lrsolve axis order); PETSc chooses by default.

    Returns
    -------
    DistributedProblem
        ``A``, ``b`` (a Vec or None), ``da`` (None for row-distributed matrices), ``meta``.

    Examples
    --------
    Run under ``mpiexec -n 2``::

        import lrsolve as lr
        P = lr.problems.poisson(n=64, dim=3, seed=0)
        D = lr.petsc.to_petsc(P, format="matfree")
        x = D.A.createVecRight(); D.A.mult(D.b, x)
        y = lr.petsc.gather(x, da=D.da)         # NumPy on rank 0, None elsewhere
    """
    PETSc = petsc()
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    comm = default_comm(comm)
    meta: dict = {}
    if _is_problem(obj):
        if b is None:
            b = obj.b
        meta.update({k: v for k, v in dict(obj.meta).items()
                     if isinstance(v, (int, float, str, tuple, type(None)))})
        obj = obj.A
    if isinstance(obj, PETSc.Mat):
        vec = None if b is None else vector_like(obj, b)
        return DistributedProblem(A=obj, b=vec, da=None,
                                  meta={**meta, "format": obj.getType(),
                                        "unknowns": obj.getSize()[0], "ranks": comm.getSize()})
    if _is_grid_operator(obj):
        grid = grid_info_from_stencil(obj)
        return grid_problem(grid, b, format=format, comm=comm, proc_sizes=proc_sizes, meta=meta)
    if isinstance(obj, GridInfo):
        return grid_problem(obj, b, format=format, comm=comm, proc_sizes=proc_sizes, meta=meta)
    if _is_general_grid(obj):
        return general_grid_problem(obj, b, format=format, comm=comm, proc_sizes=proc_sizes,
                                    meta=meta)
    import scipy.sparse as sp
    if sp.issparse(obj) or (isinstance(obj, np.ndarray) and obj.ndim == 2):
        if format == "matfree":
            raise ValueError("format='matfree' needs a grid operator; a matrix is distributed "
                             "as assembled AIJ (format='aij')")
        A = csr_to_petsc(obj, comm=comm)
        vec = None if b is None else vector_like(A, b)
        return DistributedProblem(A=A, b=vec, da=None,
                                  meta={**meta, "format": "aij", "unknowns": A.getSize()[0],
                                        "ranks": comm.getSize()})
    raise TypeError(f"to_petsc takes a grid problem or operator, a scipy sparse matrix, a "
                    f"dense NumPy matrix or a PETSc Mat; got {type(obj).__name__}")


def _is_general_grid(A: Any) -> bool:
    shape = getattr(A, "grid_shape", None)
    return shape is not None and hasattr(A, "to_csr") and \
        int(A.shape[0]) == int(np.prod(shape))


def general_grid_problem(op: Any, b: Any = None, *, format: str = "aij", comm: Any = None,
                         proc_sizes: tuple | None = None, meta: dict | None = None):
    """A grid operator other than the unit-box stencil (e.g. ``GridOperator``) on a DMDA.

    Assembled only: the matrix-free shell implements lrsolve's unit-box stencil.
    """
    from .grid import assemble_from_csr
    if format != "aij":
        raise ValueError(f"format='matfree' needs lrsolve's unit-box PoissonStencil; a "
                         f"{type(op).__name__} is distributed assembled (format='aij')")
    shape = tuple(int(s) for s in op.grid_shape)
    da = create_dmda(shape, comm=comm, proc_sizes=proc_sizes)
    A = assemble_from_csr(da, op.to_csr(backend="numpy"), shape)
    vec = None
    if b is not None:
        vec = b if isinstance(b, petsc().Vec) else grid_vector(da, _to_numpy_host(b))
    info = dict(meta or {})
    info.update({"grid_shape": shape, "format": "aij", "unknowns": int(np.prod(shape)),
                 "ranks": da.getComm().getSize(),
                 "proc_sizes": tuple(reversed(da.getProcSizes()))})
    return DistributedProblem(A=A, b=vec, da=da, meta=info, grid=None)


def grid_problem(grid: GridInfo, b: Any = None, *, format: str = "aij", comm: Any = None,
                 proc_sizes: tuple | None = None, meta: dict | None = None) -> DistributedProblem:
    """A grid operator (and right-hand side) on a new DMDA."""
    da = create_dmda(grid.grid_shape, comm=comm, proc_sizes=proc_sizes)
    A = assemble(da, grid) if format == "aij" else matrix_free(da, grid)
    vec = None
    if b is not None:
        vec = b if isinstance(b, petsc().Vec) else grid_vector(da, _to_numpy_host(b))
    info = dict(meta or {})
    info.update({"grid_shape": tuple(grid.grid_shape), "format": format,
                 "unknowns": grid.unknowns, "ranks": da.getComm().getSize(),
                 "proc_sizes": tuple(reversed(da.getProcSizes()))})
    return DistributedProblem(A=A, b=vec, da=da, meta=info, grid=grid)


def csr_to_petsc(A: Any, comm: Any = None):
    """A scipy sparse (or dense NumPy) matrix as an MPIAIJ distributed by row blocks.

    Every rank passes the same matrix; rank r keeps rows ``[rstart, rend)`` of PETSc's
    default split (``PETSC_DECIDE``).  A shape that differs between ranks is a ValueError
    on every rank.
    """
    PETSc = petsc()
    import scipy.sparse as sp
    comm = default_comm(comm)
    M = sp.csr_matrix(A)
    n_rows, n_cols = M.shape
    raise_on_any_rank(None if n_rows == n_cols else f"A must be square, got shape {M.shape}",
                      comm)
    shapes = comm.tompi4py().allgather(M.shape)
    raise_on_any_rank(None if all(s == shapes[0] for s in shapes) else
                      f"A has shape {M.shape} here but {shapes[0]} on rank 0: every rank must "
                      f"pass the same matrix", comm)
    raise_on_any_rank(None if np.all(np.isfinite(M.data)) else "A contains NaN or Inf", comm)
    layout = PETSc.Vec().createMPI((PETSc.DECIDE, n_rows), comm=comm)
    rstart, rend = layout.getOwnershipRange()
    layout.destroy()
    block = M[rstart:rend]
    block.sum_duplicates()
    block.sort_indices()
    mat = PETSc.Mat().createAIJ(size=((rend - rstart, n_rows), (rend - rstart, n_cols)),
                                csr=(block.indptr.astype(PETSc.IntType),
                                     block.indices.astype(PETSc.IntType),
                                     np.asarray(block.data, dtype=np.float64)), comm=comm)
    mat.assemble()
    return mat


def vector_like(A: Any, values: Any, da: Any = None):
    """A Vec in the row layout of ``A`` (or on ``da``) holding a replicated NumPy vector."""
    PETSc = petsc()
    if isinstance(values, PETSc.Vec):
        n_here = values.getSize()
        n_need = A.getSize()[0]
        raise_on_any_rank(None if n_here == n_need else
                          f"b has {n_here} entries but A has {n_need} rows", A.getComm())
        lo, hi = values.getOwnershipRange()
        rlo, rhi = A.getOwnershipRange()
        raise_on_any_rank(None if (lo, hi) == (rlo, rhi) else
                          f"b owns rows [{lo}, {hi}) but A owns rows [{rlo}, {rhi}): the "
                          f"distributions do not match", A.getComm())
        return values
    arr = _to_numpy_host(values).reshape(-1)
    if da is not None:
        return grid_vector(da, arr)
    n_need = A.getSize()[0]
    raise_on_any_rank(None if arr.shape[0] == n_need else
                      f"b has {arr.shape[0]} entries but A has {n_need} rows", A.getComm())
    raise_on_any_rank(None if np.all(np.isfinite(arr)) else "b contains NaN or Inf",
                      A.getComm())
    vec = A.createVecLeft()
    lo, hi = vec.getOwnershipRange()
    vec.getArray()[:] = arr[lo:hi]
    return vec


def _natural(vec, da):
    if da is None:
        return vec, False
    nat = da.createNaturalVec()
    da.globalToNatural(vec, nat)
    return nat, True


def gather(vec: Any, da: Any = None, *, root: int = 0):
    """The whole distributed vector as NumPy on rank ``root`` (``None`` on the others).

    A DMDA vector (``da`` given, or the vector's own DM) is reordered to lrsolve's flat
    (natural) ordering first.  Collective: every rank must call it.
    """
    PETSc = petsc()
    if not isinstance(vec, PETSc.Vec):
        raise TypeError(f"vec must be a PETSc Vec, got {type(vec).__name__}")
    if da is None:
        da = _vec_dm(vec)
    src, temporary = _natural(vec, da)
    if root != 0:
        raise ValueError("root must be 0 (PETSc scatters to rank zero)")
    scatter, out = PETSc.Scatter.toZero(src)
    scatter.scatter(src, out, addv=PETSc.InsertMode.INSERT_VALUES,
                    mode=PETSc.ScatterMode.FORWARD)
    result = out.getArray().copy() if src.getComm().getRank() == 0 else None
    scatter.destroy()
    out.destroy()
    if temporary:
        src.destroy()
    return result


def to_numpy(vec: Any, da: Any = None) -> np.ndarray:
    """The whole distributed vector as NumPy on *every* rank (collective)."""
    PETSc = petsc()
    if da is None:
        da = _vec_dm(vec)
    src, temporary = _natural(vec, da)
    scatter, out = PETSc.Scatter.toAll(src)
    scatter.scatter(src, out, addv=PETSc.InsertMode.INSERT_VALUES,
                    mode=PETSc.ScatterMode.FORWARD)
    result = out.getArray().copy()
    scatter.destroy()
    out.destroy()
    if temporary:
        src.destroy()
    return result


def _vec_dm(vec):
    from .grid import dmda_of_handle
    dm = vec.getDM()
    if not dm.handle:
        return None
    da = dmda_of_handle(dm.handle)
    if da is None and dm.getType() == "da":
        raise ValueError("this vector lives on a DMDA lrsolve did not create: pass da=")
    return da
