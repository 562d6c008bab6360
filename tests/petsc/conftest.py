"""PETSc tests: skipped cleanly without petsc4py; ``mpi``-marked ones run under mpiexec.

The ``mpi`` tests need several ranks: in a plain ``pytest`` run they are skipped, and
``test_mpi_runner.py`` launches them under ``mpiexec -n 2`` (``tests/petsc/run_mpi.py``).
"""
from __future__ import annotations

import os

import pytest


def world_size() -> int:
    """Ranks of the launcher that started this process (1 outside mpiexec), without MPI_Init."""
    for key in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        if key in os.environ:
            try:
                return int(os.environ[key])
            except ValueError:
                pass
    return 1


def pytest_configure(config):
    config.addinivalue_line("markers", "mpi: runs on several MPI ranks (launched by "
                                       "tests/petsc/run_mpi.py under mpiexec -n 2)")


def pytest_collection_modifyitems(config, items):
    if world_size() > 1:
        return
    skip = pytest.mark.skip(reason="needs several MPI ranks: run by test_mpi_runner.py "
                                   "(python tests/petsc/run_mpi.py)")
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if "mpi" in item.keywords and str(item.fspath).startswith(here):
            item.add_marker(skip)
