"""Regression tests of issue 17 for DCDM: safe loading, atomic saving, no side effects."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

import lrsolve as lr
from lrsolve import io as lio


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def _small_model():
    torch.manual_seed(0)
    return lr.dcdm.DCDMNet(dim=2, channels=4)


def test_crafted_model_file_runs_no_code(tmp_path):
    target = tmp_path / "pwned"
    bad = tmp_path / "model.pt"
    torch.save({"format": "lrsolve-dcdm-1", "config": {"arch": "unet", "dim": 2},
                "state_dict": {}, "meta": _Payload(str(target))}, bad)
    with pytest.raises(ValueError, match="not plain weights"):
        lr.dcdm.load_model(bad)
    assert not target.exists()


def test_corrupted_shipped_weights_are_refused(tmp_path):
    name = lr.dcdm.PRETRAINED["poisson2d"][0]
    path, digest = lio.shipped_file(name)
    copy = tmp_path / name
    shutil.copy(path, copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    copy.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum"):
        lr.dcdm.load_model(copy, sha256=digest)
    with pytest.raises(ValueError, match="not a valid DCDM model file"):
        lr.dcdm.load_model(copy)          # the tensor checksum inside the file catches it
    copy.write_bytes(bytes(raw[:1000]))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        lr.dcdm.load_model(copy)


def test_pretrained_still_solves_in_four_iterations():
    P = lr.problems.poisson(n=64, dim=2)
    r = lr.dcdm.dcdm_solve(P.A, P.b, lr.dcdm.load_pretrained("poisson2d"), rtol=1e-6)
    assert r.converged and r.iterations <= 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_pretrained_cuda_without_cuda_is_value_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        lr.dcdm.load_pretrained("poisson2d", device="cuda")
    with pytest.raises(ValueError, match="device"):
        lr.dcdm.load_pretrained("poisson2d", device="not-a-device")


def test_load_model_on_lsm_file_names_the_mismatch():
    path, _ = lio.shipped_file(lr.neural.PRETRAINED["darcy64"])
    with pytest.raises(ValueError, match="not a DCDM model file.*LSM"):
        lr.dcdm.load_model(path)


def test_save_model_failure_leaves_no_temporary(tmp_path, monkeypatch):
    model = _small_model()
    target = tmp_path / "m.pt"
    lr.dcdm.save_model(model, target)
    before = target.read_bytes()

    def broken_save(obj, fh, *a, **k):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        lr.dcdm.save_model(model, target)
    assert os.listdir(tmp_path) == ["m.pt"]
    assert target.read_bytes() == before


def test_save_model_through_symlink_writes_the_target(tmp_path):
    model = _small_model()
    real = tmp_path / "real.pt"
    link = tmp_path / "link.pt"
    lr.dcdm.save_model(model, real)
    link.symlink_to(real)
    model.meta = {"note": "second"}
    lr.dcdm.save_model(model, link)
    assert link.is_symlink()
    assert lr.dcdm.load_model(real).meta["note"] == "second"


def test_solve_restores_the_callers_train_mode():
    model = lr.dcdm.load_pretrained("poisson2d")
    model.train()
    P = lr.problems.poisson(n=16, dim=2)
    lr.dcdm.dcdm_solve(P.A, P.b, model, rtol=1e-6)
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    lr.dcdm.dcdm_solve(P.A, P.b, model, rtol=1e-6)
    assert not model.training


def test_train_leaves_the_global_torch_random_state_alone_and_repeats():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = lr.dcdm.train(grid=8, dim=2, steps=2, batch_size=2, channels=4, progress=False)
    assert torch.equal(torch.rand(3), expected)
    b = lr.dcdm.train(grid=8, dim=2, steps=2, batch_size=2, channels=4, progress=False)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
