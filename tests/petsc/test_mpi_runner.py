"""Launch the ``mpi`` tests on 2 ranks and require every rank to pass."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def test_mpi_cases_pass_on_two_ranks():
    try:
        import mpi4py  # noqa: F401
        import petsc4py  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"petsc4py / mpi4py unavailable ({exc}); see docs/petsc.md")
    if shutil.which("mpiexec") is None:
        pytest.skip("mpiexec not found (apt-get install petsc-dev brings Open MPI)")
    from run_mpi import run
    proc = run(2, ["-x"], timeout=900)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
