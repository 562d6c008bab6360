"""Regression tests of issue 17 (item 14): the CLI turns bad values into usage errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from lrsolve import cli


def _run(argv):
    try:
        return cli.main(argv)
    except SystemExit as exc:       # argparse's usage errors
        return exc.code


@pytest.mark.parametrize("argv", [
    ["bench", "poisson", "--repeat", "0"],
    ["bench", "poisson", "--sizes", "-4"],
    ["bench", "poisson", "--rtol", "nan"],
    ["bench", "poisson", "--rtol", "-1e-6"],
    ["bench", "relax", "--rtol", "inf"],
    ["bench", "relax", "--T", "-5"],
    ["bench", "tensors", "--repeat", "-1"],
    ["bench", "completion", "--rate", "2"],
    ["bench", "completion", "--sizes", "0"],
    ["train", "dcdm", "--grid", "-1"],
    ["train", "dcdm", "--lr", "nan"],
    ["train", "dcdm", "--levels", "-2"],
    ["train", "lsm", "--n", "-3"],
    ["train", "lsm", "--epochs", "0"],
])
def test_values_the_program_cannot_use_are_usage_errors(argv, capsys):
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and argv[2] in err


def test_library_value_error_is_reported_as_usage_error(tmp_path, capsys):
    # --grid 2 parses (a positive int) but train() needs at least 4 points
    code = _run(["train", "dcdm", "--grid", "2", "--steps", "1", "--no-progress", "--no-eval",
                 "--out", str(tmp_path / "m.pt")])
    assert code == 2
    assert "grid must be at least 4" in capsys.readouterr().err


def test_repeat_zero_prints_no_traceback():
    out = subprocess.run([sys.executable, "-m", "lrsolve.cli", "bench", "poisson", "--repeat",
                          "0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "--repeat" in out.stderr


def test_run_suite_rejects_repeat_zero():
    from lrsolve.bench.poisson import run_suite
    with pytest.raises(ValueError, match="repeat"):
        run_suite(dims=(2,), sizes={2: [8]}, solvers=("cg",), repeat=0, progress=False)
