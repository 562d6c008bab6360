"""``lrsolve bench optimize`` runs end to end on a tiny configuration and writes its JSON."""
import json

import pytest

pytest.importorskip("torch")


def test_bench_optimize_pde_section(tmp_path):
    from lrsolve.bench import optimize as bench
    out = tmp_path / "opt"
    assert bench.main(["--sections", "pde", "--pde-sizes", "6", "--pde-max-inner", "300",
                       "--out", str(out)]) == 0
    data = json.loads((tmp_path / "opt.json").read_text())
    rec = data["pde"][0]
    assert rec["unknowns"] == 72 and rec["constraints"] == 36
    assert rec["exact"]["kkt"] <= 1e-6 and rec["gmres"]["kkt"] <= 1e-6
    assert rec["gmres"]["dist_exact"] <= 1e-5
    assert rec["sketch"]["inner"] <= 300         # the capped sketch solve reports, not hangs
    assert (tmp_path / "opt_pde.png").exists()


@pytest.mark.parametrize("name", ["hs79", "pde"])
def test_ipopt_peer_adapter_exact_hessian(name):
    """The IPOPT peer (optional cyipopt) gets exact Hessians with the right pattern."""
    pytest.importorskip("cyipopt")
    from lrsolve.bench.optimize import _ipopt_solve, _kkt_at
    from lrsolve.problems import nlp
    P = nlp.hs_problem("hs79") if name == "hs79" else nlp.pde_control(12)
    res = _ipopt_solve(P.problem, P.x0)
    assert res.success, res.message
    assert _kkt_at(P.problem, res.x) <= 1e-7
    if name == "pde":  # a convex QP with an exact Hessian: a handful of IPOPT steps
        assert res.nit <= 5
