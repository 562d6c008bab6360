"""lrsolve bench fluids: every solver solves the same pressure sequence to the tolerance,
the records are consistent, the bandit study finds the best fixed omega, the CLI writes
its files and rejects bad options."""
import json

import numpy as np
import pytest

from lrsolve.bench import fluids as bf
from lrsolve.cli import main as cli_main


def test_suite_solves_every_step_to_rtol():
    res = bf.run_suite(dims=(2,), sizes={2: [16]}, steps=3,
                       solvers=("cg", "pcg-mg", "pyamg", "bandit-ssor-cg"), rtol=1e-6,
                       progress=False)
    (case,) = res["cases"]
    assert case["singular"] and case["solid_fraction"] > 0.02
    by = {r["solver"]: r for r in case["records"]}
    for r in by.values():
        assert r["converged"] and len(r["iterations"]) == 3
        assert max(r["relres"]) <= 1e-6 * 1.0001
        assert r["total_time"] >= r["solve_time"] > 0
    # multigrid needs far fewer iterations than plain CG on the same systems
    assert by["pcg-mg"]["total_iterations"] * 4 < by["cg"]["total_iterations"]
    assert by["pyamg"]["total_ratio_to_pyamg"] == 1.0
    assert all(1.0 <= w < 2.0 for w in by["bandit-ssor-cg"]["omega"])
    assert "cg" in bf.format_table(res)


def test_dcdm_rows_run_in_3d_on_the_hierarchy():
    seq = bf.make_sequence(12, 3, 2)
    rec = bf.run_sequence("dcdm", seq, 1e-6)
    cg = bf.run_sequence("cg", seq, 1e-6)
    assert rec["converged"] and max(rec["relres"]) <= 1e-6 * 1.0001
    # measured 6 and 6 against CG's 60 and 52 on these 12^3 systems
    assert rec["total_iterations"] * 3 < cg["total_iterations"]


def test_dcdm_paper_row_runs_in_2d():
    seq = bf.make_sequence(16, 2, 2)
    rec = bf.run_sequence("dcdm-paper", seq, 1e-6)
    assert rec["converged"] and max(rec["relres"]) <= 1e-6 * 1.0001


def test_dcdm_without_weights_is_skipped_with_a_reason(monkeypatch):
    import lrsolve.dcdm.pretrained as pre
    monkeypatch.delitem(pre.PRETRAINED, "poisson3d")

    class Fake:                      # no 3-D solve needed to see the skip
        meta = {"dim": 3}
    rec = bf.run_sequence("dcdm", [Fake()], 1e-6)
    assert "3-D" in rec["skipped"] and "iterations" not in rec


def test_bandit_study_finds_the_best_fixed_omega():
    seq = bf.make_sequence(16, 2, 4)
    study = bf.bandit_study(seq, rtol=1e-6, methods=("sor",), learners=("young",),
                            omegas=[1.0, 1.5, 1.8])
    rec = study["methods"]["sor"]
    totals = [v["total_iterations"] for v in rec["fixed"].values()]
    assert rec["best_fixed"]["total_iterations"] == min(totals)
    assert rec["gauss_seidel"]["omega"] == 1.0
    # over-relaxation beats Gauss-Seidel on these Poisson systems
    assert rec["best_fixed"]["total_iterations"] < 0.5 * rec["gauss_seidel"]["total_iterations"]
    L = rec["learners"]["young"]
    assert L["ratio_to_best_fixed"] == pytest.approx(
        L["total_iterations"] / rec["best_fixed"]["total_iterations"])


def test_cli_writes_json_and_plots(tmp_path, capsys):
    rc = cli_main(["bench", "fluids", "--dims", "2", "--sizes2", "16", "--steps", "2",
                   "--solvers", "cg", "pcg-mg", "--out", str(tmp_path), "--name", "f",
                   "--no-progress"])
    assert rc == 0
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["suite"] == "fluids" and data["command"].startswith("lrsolve bench fluids")
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert np.all(np.asarray(data["cases"][0]["records"][1]["relres"]) <= 1e-6 * 1.0001)


def test_cli_rejects_bad_options():
    with pytest.raises(SystemExit) as exc:
        cli_main(["bench", "fluids", "--steps", "0"])
    assert exc.value.code == 2
    with pytest.raises(ValueError, match="solvers"):
        bf.run_suite(dims=(2,), sizes={2: [16]}, steps=1, solvers=("nope",), progress=False)
