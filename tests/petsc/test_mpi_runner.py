"""Launch the ``mpi`` tests on 2 ranks and require every rank to pass."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

needs = pytest.mark.skipif(
    importlib.util.find_spec("petsc4py") is None or importlib.util.find_spec("mpi4py") is None
    or shutil.which("mpiexec") is None,
    reason="petsc4py, mpi4py and mpiexec are needed (see docs/petsc.md)")


@needs
def test_mpi_cases_pass_on_two_ranks():
    from run_mpi import run
    proc = run(2, ["-x"], timeout=900)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
