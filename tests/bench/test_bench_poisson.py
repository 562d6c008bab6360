"""The Poisson suite: runs lrsolve and peers on the same problem and writes JSON + plot."""
from __future__ import annotations

import json

import lrsolve.cli as cli


def test_bench_poisson_small(tmp_path, capsys):
    rc = cli.main(["bench", "poisson", "--dims", "2", "--sizes", "24", "--solvers", "cg",
                   "cg-csr", "pcg-ic0", "pcg-amg", "scipy-cg", "pyamg", "--out", str(tmp_path),
                   "--no-progress"])
    assert rc == 0
    data = json.loads((tmp_path / "poisson.json").read_text())
    recs = {r["solver"]: r for r in data["records"]}
    assert set(recs) == {"cg", "cg-csr", "pcg-ic0", "pcg-amg", "scipy-cg", "pyamg"}
    for r in recs.values():
        assert r["converged"] and r["relres"] <= 1e-6
    # lrsolve's CG and SciPy's take the same iterations on the same matrix
    assert abs(recs["cg-csr"]["iterations"] - recs["scipy-cg"]["iterations"]) <= 1
    assert recs["pcg-amg"]["iterations"] <= 10
    assert "solve_ratio" in recs["cg"] and recs["cg"]["peer"] == "scipy-cg"
    assert (tmp_path / "poisson.png").stat().st_size > 1000
    assert "pcg-amg" in capsys.readouterr().out


def test_cli_rejects_unknown_suite(capsys):
    assert cli.main(["bench", "nonsense"]) == 2
    assert "unknown suite" in capsys.readouterr().err
