"""Run the ``mpi``-marked PETSc tests under ``mpiexec -n N`` (default 2).

    python tests/petsc/run_mpi.py [-n 2] [extra pytest args]

Every rank runs pytest on ``tests/petsc`` with ``-m mpi``; the exit status is non-zero when
any rank fails.  Open MPI refuses to run as root without ``--allow-run-as-root``; the
runner adds it (and ``--oversubscribe``, so 2 ranks run on a 1-core machine) when the
launcher is Open MPI.  A hung rank is killed after ``--timeout`` seconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def mpiexec_command(ranks: int = 2) -> list[str] | None:
    """The launcher and its flags, or None when there is no ``mpiexec``."""
    exe = shutil.which("mpiexec")
    if exe is None:
        return None
    cmd = [exe]
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    if "Open MPI" in version or "OpenRTE" in version:
        cmd += ["--oversubscribe"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd += ["--allow-run-as-root"]
    return cmd + ["-n", str(ranks)]


def clean_environment() -> dict:
    """The environment without the variables of an MPI singleton this process may be."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "OPAL_", "PMI_", "HYDRA_"))}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run(ranks: int = 2, extra: list[str] | None = None, timeout: float = 900.0):
    """Launch the suite; returns the CompletedProcess (raises TimeoutExpired on a hang)."""
    launcher = mpiexec_command(ranks)
    if launcher is None:
        raise FileNotFoundError("mpiexec not found (apt-get install petsc-dev brings Open MPI)")
    cmd = launcher + [sys.executable, "-m", "pytest", "-q", "-m", "mpi", "-p",
                      "no:cacheprovider", str(HERE)] + list(extra or [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=clean_environment(), cwd=str(HERE.parents[1]))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ranks = 2
    timeout = 900.0
    if argv[:1] == ["-n"]:
        ranks, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--timeout"]:
        timeout, argv = float(argv[1]), argv[2:]
    proc = run(ranks, argv, timeout)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
