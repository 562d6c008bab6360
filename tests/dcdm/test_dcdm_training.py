"""DCDM training: the loss falls, checkpoints resume exactly, the CLI works."""
import os

import numpy as np
import pytest
import torch

import lrsolve as lr
from lrsolve.dcdm import train, load_model, save_model

torch.set_num_threads(1)


def test_training_reduces_the_loss():
    model = train(grid=16, dim=2, steps=60, batch_size=8, lr=1e-3, progress=False)
    meta = model.meta
    assert meta["steps_done"] == 60
    # The loss starts near 1 (a random direction removes almost nothing) and must fall.
    assert meta["final_loss"] < 0.5


def test_resume_continues_exactly(tmp_path):
    kw = dict(grid=12, dim=2, steps=12, batch_size=4, channels=4, seed=3, progress=False,
              checkpoint_every=5)
    straight = train(**kw)
    ckpt = tmp_path / "ckpt.pt"
    part = train(checkpoint=ckpt, stop_at=7, **kw)
    assert part.meta["steps_done"] == 7
    resumed = train(checkpoint=ckpt, **kw)
    assert resumed.meta["steps_done"] == 12
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), k
    # Atomic writes leave no temporary files behind.
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


def test_resume_refuses_another_setup(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    train(grid=12, steps=2, batch_size=2, channels=4, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="different training setup"):
        train(grid=12, steps=2, batch_size=2, channels=8, checkpoint=ckpt, progress=False)


def test_3d_training_and_save_load(tmp_path):
    model = train(grid=8, dim=3, steps=3, batch_size=2, channels=4, progress=False)
    path = tmp_path / "m3.pt"
    save_model(model, path)
    again = load_model(path)
    x = torch.randn(1, 1, 8, 8, 8)
    assert again.dim == 3
    assert torch.allclose(model(x), again(x))


def test_train_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        train(dim=1)
    with pytest.raises(ValueError, match="steps"):
        train(steps=0)
    with pytest.raises(ValueError, match="grid"):
        train(grid=2)


def test_cli_trains_and_saves(tmp_path, capsys):
    from lrsolve.cli import main
    out = tmp_path / "m.pt"
    rc = main(["train", "dcdm", "--grid", "12", "--steps", "3", "--batch-size", "2",
               "--channels", "4", "--out", str(out), "--no-progress", "--no-eval"])
    assert rc == 0 and out.exists()
    assert "trained 3 steps" in capsys.readouterr().out
