"""Smoke test of ``lrsolve bench tensors --quick``: it runs, writes JSON, and its ratios are sane."""
import json

from lrsolve.bench import tensors as bench


def test_bench_quick_writes_json(tmp_path):
    rc = bench.main(["--quick", "--sections", "spectral", "ranks", "build", "grid",
                     "--out", str(tmp_path), "--name", "smoke"])
    assert rc == 0
    data = json.loads((tmp_path / "smoke.json").read_text())
    assert data["spectral"][0]["err_at_predicted"] <= 1e-12
    for row in data["build"]:
        assert row["naive_ranks"] == row["ours_ranks"]
        assert row["ours_err"] <= 1e-8
    assert all(row["within_2"] for row in data["grid"])
    assert (tmp_path / "smoke.png").exists()
