"""`lrsolve bench relax` end to end on a tiny sequence: JSON, plot and table."""
from __future__ import annotations

import json

from lrsolve.cli import main


def test_bench_relax_smoke(tmp_path, capsys):
    rc = main(["bench", "relax", "--suites", "diffusion", "heat-ssor", "--T", "6",
               "--diffusion-n", "8", "--heat-nx", "8", "--trials", "1",
               "--learners", "young", "tsallis-inf", "unimodal", "--out", str(tmp_path),
               "--tag", "smoke"])
    assert rc == 0
    payload = json.loads((tmp_path / "smoke.json").read_text())
    diffusion, heat = payload["results"]
    assert diffusion["T"] == 6 and set(diffusion["learners"]) == {"young", "tsallis-inf",
                                                                  "unimodal"}
    assert diffusion["best_fixed_total"] <= diffusion["gauss_seidel_total"]
    assert diffusion["instance_optimal_total"] <= 1.2 * diffusion["best_fixed_total"]
    assert "young" not in heat["learners"] and heat["method"] == "ssor-cg"
    assert (tmp_path / "smoke.png").stat().st_size > 1000
    assert "best fixed omega" in capsys.readouterr().out
