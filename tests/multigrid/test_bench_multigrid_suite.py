"""The Poisson suite's multigrid rows and options (lrsolve bench poisson)."""
from pathlib import Path

import numpy as np
import pytest

from lrsolve.bench import poisson as suite

DATA = Path(__file__).resolve().parents[2] / "data"


def _rows(result, solver):
    return [r for r in result["records"] if r["solver"] == solver]


def test_suite_runs_mg_rows_with_new_columns():
    res = suite.run_suite(dims=(2,), sizes={2: [32]}, solvers=("cg", "pcg-mg", "mg", "pyamg"),
                          rtol=1e-8, progress=False, coefficient="layered", domain="obstacles")
    for name in ("pcg-mg", "mg"):
        (row,) = _rows(res, name)
        assert row["converged"] and row["relres"] <= 1e-8
        assert row["unknowns_per_s"] > 0 and row["work_units"] > 0
    assert _rows(res, "pcg-mg")[0]["iterations"] <= 12
    assert _rows(res, "cg")[0]["iterations"] > 10 * _rows(res, "pcg-mg")[0]["iterations"]
    assert "unknowns/s" in suite.format_table(res)


def test_suite_on_a_matrix_market_file():
    path = DATA / "poisson2d_32.mtx"
    if not path.exists():
        pytest.skip("data/ not present")
    res = suite.run_suite(solvers=("cg-csr", "pcg-mg", "pyamg"), rtol=1e-8, progress=False,
                          matrix=str(path))
    assert {r["solver"] for r in res["records"]} == {"cg-csr", "pyamg"}   # grid rows skipped
    assert all(r["converged"] for r in res["records"]) and res["records"][0]["unknowns"] == 1024


def test_suite_rejects_unknown_options():
    with pytest.raises(ValueError, match="coefficient"):
        suite.run_suite(dims=(2,), sizes={2: [8]}, solvers=("cg",), coefficient="marble",
                        progress=False)
    with pytest.raises(ValueError, match="domain"):
        suite.run_suite(dims=(2,), sizes={2: [8]}, solvers=("cg",), domain="torus",
                        progress=False)
