"""Regression tests of issue 17 for lr.neural: safe loading, atomic saving, LSM levels."""
from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import torch

import lrsolve as lr
from lrsolve import io as lio
from lrsolve.neural.lsm import auto_levels


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_crafted_fit_file_runs_no_code(tmp_path):
    target = tmp_path / "pwned"
    bad = tmp_path / "fit.pt"
    torch.save({"model_state": {}, "a_norm": {}, "u_norm": {}, "n": 16,
                "history": _Payload(str(target))}, bad)
    with pytest.raises(ValueError, match="not plain weights"):
        lr.neural.load_fit(bad)
    assert not target.exists()


def test_corrupted_shipped_lsm_is_refused(tmp_path):
    path, digest = lio.shipped_file(lr.neural.PRETRAINED["darcy64"])
    copy = tmp_path / "lsm.pt"
    shutil.copy(path, copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0x40          # inside the weights
    copy.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum"):
        lr.neural.load_fit(copy, sha256=digest)
    with pytest.raises(ValueError, match="not a valid fitted-operator file"):
        lr.neural.load_fit(copy)


def test_shipped_lsm_loads_and_predicts_finite():
    fit = lr.neural.load_pretrained("darcy64")
    u = fit.predict(np.full((64, 64), 3.0))
    assert u.shape == (64, 64) and np.all(np.isfinite(u))


def test_load_fit_on_dcdm_file_names_the_mismatch():
    path, _ = lio.shipped_file(lr.dcdm.PRETRAINED["poisson2d"][0])
    with pytest.raises(ValueError, match="DCDM model"):
        lr.neural.load_fit(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_pretrained_cuda_without_cuda_is_value_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        lr.neural.load_pretrained("darcy64", device="cuda")


def _tiny_fit():
    rng = np.random.default_rng(0)
    data = lr.neural.DarcyData(rng.random((4, 8, 8)) + 1, rng.standard_normal((4, 8, 8)))
    torch.manual_seed(0)
    model = lr.neural.LSM(width=4, levels=2, patch_size=2, heads=2, head_width=8)
    return lr.neural.train(model, data, epochs=1, batch_size=2, progress=False)


def test_fit_save_roundtrip_symlink_and_failure(tmp_path, monkeypatch):
    fit = _tiny_fit()
    real = tmp_path / "fit.pt"
    fit.save(real)
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    fit.save(link)
    assert link.is_symlink()
    back = lr.neural.load_fit(real)
    a = np.random.default_rng(1).random((2, 8, 8)) + 1
    assert np.allclose(back.predict(a), fit.predict(a))

    def broken(obj, fh, *args, **kw):
        fh.write(b"torn")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        fit.save(real)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.pt", "link.pt"]
    lr.neural.load_fit(real)


def test_auto_levels_follow_the_input_size():
    assert auto_levels(16, 4) == 3          # 16 = 4 * 2^2: no padding
    assert auto_levels(64, 4) == 5          # the reference's depth where it fits
    assert auto_levels(85, 6) == 4          # 85 -> 96, not 192
    model = lr.neural.LSM(width=8, levels="auto", grid=16, patch_size=4, heads=4)
    assert model.levels == 3 and model.multiple == 16
    assert lr.neural.LSM(**model.config).levels == 3
    with pytest.raises(ValueError, match="grid"):
        lr.neural.LSM(levels="auto")


def test_heavy_padding_warns_once():
    model = lr.neural.LSM(width=8, levels=5, patch_size=4, heads=4)
    x = torch.zeros(1, 1, 16, 16)
    with pytest.warns(RuntimeWarning, match="pads 16x16 inputs to 64x64"):
        model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(x)                            # once per model
        lr.neural.LSM(width=8, levels="auto", grid=16, patch_size=4, heads=4)(x)


def test_train_leaves_the_global_torch_random_state_alone():
    rng = np.random.default_rng(0)
    data = lr.neural.DarcyData(rng.random((4, 8, 8)) + 1, rng.standard_normal((4, 8, 8)))
    model = lr.neural.LSM(width=4, levels=2, patch_size=2, heads=2, head_width=8)
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    lr.neural.train(model, data, epochs=1, batch_size=2, progress=False)
    assert torch.equal(torch.rand(3), expected)
