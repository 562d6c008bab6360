"""Import of petsc4py / mpi4py and the collective error helpers every module here uses.

PETSc is optional: nothing in lrsolve imports this package unless a user asks for
``engine="petsc"`` or ``lr.petsc``.  Errors that depend on rank-local data are decided
collectively (:func:`raise_on_any_rank`), so every rank raises the same exception and no
rank is left waiting in a collective call that the others never reach.
"""
from __future__ import annotations

import atexit
from typing import Any

INSTALL_HINT = (
    "lrsolve.petsc needs petsc4py and mpi4py: `apt-get install -y petsc-dev`, then "
    "`PETSC_DIR=$(pkg-config --variable=prefix PETSc) pip install --no-build-isolation "
    "'petsc4py==3.18.5' mpi4py` (see docs/petsc.md)")


def petsc():
    """The ``petsc4py.PETSc`` module (ImportError with the install recipe when absent)."""
    try:
        from petsc4py import PETSc
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError(INSTALL_HINT) from exc
    if not _CLEANUP:
        _CLEANUP.append(True)
        atexit.register(_collect_garbage, PETSc)
    return PETSc


_CLEANUP: list = []


# PCs whose Python context is one of ours (strong references, released at exit).
_PYTHON_PCS: list = []


def track_python_pc(pc) -> None:
    """Remember a PC that runs one of lrsolve's Python contexts (see :func:`_collect_garbage`)."""
    if not any(p.handle == pc.handle for p in _PYTHON_PCS):
        _PYTHON_PCS.append(pc)


def _collect_garbage(PETSc) -> None:
    """Release lrsolve's Python PCs and PETSc's deferred garbage while Python still runs.

    petsc4py 3.18 does not destroy a parallel object when its Python wrapper dies; it parks
    it for ``PetscFinalize``, which runs after the interpreter has shut down.  A KSP with a
    Python PC destroyed there calls back into the dead interpreter and segfaults.  This hook
    (registered after petsc4py's own, so it runs first) turns every tracked Python PC into
    ``none`` (its Python context is released now) and empties the garbage.
    """
    import gc
    for pc in _PYTHON_PCS:
        try:
            if pc.handle and pc.getType() == "python":
                pc.setType("none")
        except Exception:  # pragma: no cover - best effort at exit
            pass
    _PYTHON_PCS.clear()
    gc.collect()
    try:
        if PETSc.Sys.isInitialized() and not PETSc.Sys.isFinalized():
            PETSc.garbage_cleanup()
    except Exception:  # pragma: no cover - best effort at exit
        pass


def available() -> bool:
    """True when petsc4py imports."""
    try:
        petsc()
    except ImportError:
        return False
    return True


def default_comm(comm: Any = None):
    """A PETSc communicator: ``comm`` (PETSc or mpi4py) or ``PETSc.COMM_WORLD``."""
    PETSc = petsc()
    if comm is None:
        return PETSc.COMM_WORLD
    if isinstance(comm, PETSc.Comm):
        return comm
    return PETSc.Comm(comm)  # an mpi4py communicator


def mpi_comm(comm: Any = None):
    """The mpi4py communicator behind ``comm`` (for gathers of Python objects)."""
    return default_comm(comm).tompi4py()


def raise_on_any_rank(message: str | None, comm: Any = None, exc: type = ValueError) -> None:
    """Collective check: when any rank has a ``message``, every rank raises ``exc``.

    Each rank passes ``None`` when its own part is fine.  The first failing rank's message
    (with its rank) is raised everywhere, so no rank goes on into a collective call alone.
    """
    messages = mpi_comm(comm).allgather(message)
    for rank, msg in enumerate(messages):
        if msg is not None:
            raise exc(f"{msg} (on rank {rank})" if len(messages) > 1 else msg)


def comm_of(obj: Any):
    """The PETSc communicator of a PETSc object (Mat, Vec, DM, KSP)."""
    return obj.getComm()
