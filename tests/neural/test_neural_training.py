"""Training loop, fitted operator, checkpoints, resolution handling and the CLI."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import lrsolve as lr
from lrsolve.neural import FittedOperator, LSM, load_fit, one_cycle, train


@pytest.fixture(scope="module")
def tiny():
    data = lr.neural.darcy_dataset(n=16, samples=40, seed=0, cache=False, progress=False)
    return data[:32], data[32:]


def _model(seed=0):
    torch.manual_seed(seed)
    return LSM(width=8, levels=3, patch_size=2, heads=4, head_width=16)


@pytest.fixture(scope="module")
def fitted(tiny):
    torch.set_num_threads(1)
    train_set, test_set = tiny
    return train(_model(), train_set, epochs=12, batch_size=8, lr=3e-3, test=test_set,
                 progress=False)


def test_loss_decreases_and_test_error_recorded(fitted):
    h = fitted.history
    assert len(h["epoch"]) == 12
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert np.isfinite(h["test_rel_l2"]).all() and h["test_rel_l2"][-1] < 0.5
    # The one-cycle schedule ends annealed far below its peak.
    assert h["lr"][-1] < 0.01 * 3e-3


def test_predict_shapes_and_resolution_handling(fitted, tiny):
    _, test_set = tiny
    assert fitted.predict(test_set.a).shape == (8, 16, 16)
    single = fitted.predict(test_set.a[0])
    assert single.shape == (16, 16)
    assert np.allclose(single, fitted.predict(test_set.a[:1])[0])
    with pytest.raises(ValueError, match="trained at n=16"):
        fitted.predict(np.ones((2, 12, 12)))
    with pytest.raises(ValueError, match="shape"):
        fitted.predict(np.ones((2, 12, 10)))
    # Explicit resampling: a 16-point field resampled to 16 points is unchanged.
    assert np.allclose(fitted.predict(test_set.a[:2], resample=True), fitted.predict(test_set.a[:2]))
    assert fitted.predict(test_set.a[:1, ::2, ::2], resample=True).shape == (1, 8, 8)


def test_save_load_roundtrip_and_plot(fitted, tiny, tmp_path):
    _, test_set = tiny
    fitted.save(tmp_path / "fit.pt")
    again = load_fit(tmp_path / "fit.pt")
    assert np.allclose(again.predict(test_set.a), fitted.predict(test_set.a), atol=1e-6)
    assert again.evaluate(test_set) == pytest.approx(fitted.evaluate(test_set), rel=1e-6)
    fitted.plot(test_set, 0, path=tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_same_seed_same_history(tiny):
    train_set, _ = tiny
    runs = [train(_model(3), train_set[:16], epochs=2, batch_size=8, seed=3, progress=False)
            for _ in range(2)]
    assert runs[0].history["train_loss"] == runs[1].history["train_loss"]


def test_checkpoint_resume_matches_uninterrupted_run(tiny, tmp_path):
    train_set, test_set = tiny
    small = train_set[:16]
    full = train(_model(1), small, epochs=4, batch_size=8, seed=1, progress=False)

    class Stop(Exception):
        pass

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Stop

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        train(_model(1), small, epochs=4, batch_size=8, seed=1, checkpoint=ckpt,
              log=stop_after_two, progress=False)
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp"))
    resumed = train(_model(7), small, epochs=4, batch_size=8, seed=1, checkpoint=ckpt,
                    progress=False)
    assert resumed.history["epoch"] == [1, 2, 3, 4]
    assert np.allclose(resumed.history["train_loss"], full.history["train_loss"], rtol=1e-5)
    assert np.allclose(resumed.predict(test_set.a), full.predict(test_set.a), atol=1e-6)
    with pytest.raises(ValueError, match="different configuration"):
        train(_model(1), small, epochs=5, batch_size=8, seed=1, checkpoint=ckpt, progress=False)


def test_time_budget_stops_training(tiny):
    train_set, _ = tiny
    fit = train(_model(), train_set, epochs=1000, batch_size=8, time_budget=0.5, clock="wall",
                progress=False)
    assert len(fit.history["epoch"]) < 1000
    assert fit.history["seconds"][-1] >= 0.5


def test_one_cycle_shape():
    lrs = [one_cycle(p, 1.0)[0] for p in np.linspace(0, 1, 101)]
    assert lrs[0] == pytest.approx(1 / 25) and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1 / 25 / 1e4)
    assert int(np.argmax(lrs)) == 30


@pytest.mark.parametrize("kwargs, error", [
    (dict(epochs=0), ValueError), (dict(batch_size=100), ValueError),
    (dict(schedule="cosine"), ValueError), (dict(lr=-1.0), ValueError),
    (dict(time_budget=0.0), ValueError)])
def test_train_rejects_bad_arguments(tiny, kwargs, error):
    train_set, _ = tiny
    args = dict(epochs=1, batch_size=8, progress=False)
    args.update(kwargs)
    with pytest.raises(error):
        train(_model(), train_set, **args)


def test_train_rejects_mismatched_test_grid(tiny):
    train_set, _ = tiny
    other = lr.neural.DarcyData(np.ones((2, 8, 8)), np.ones((2, 8, 8)))
    with pytest.raises(ValueError, match="test has grid size"):
        train(_model(), train_set, epochs=1, batch_size=8, test=other, progress=False)
    with pytest.raises(TypeError, match="data must"):
        train(_model(), [1, 2, 3], epochs=1, progress=False)


def test_cli_trains_and_saves(tmp_path, monkeypatch, capsys):
    from lrsolve.neural.cli import main
    monkeypatch.setenv(lr.neural.CACHE_ENV, str(tmp_path / "cache"))
    code = main(["--n", "8", "--samples", "8", "--test", "4", "--epochs", "2", "--batch-size", "4",
                 "--width", "8", "--levels", "2", "--patch-size", "2", "--heads", "4",
                 "--out", str(tmp_path / "fit.pt"), "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and 0 < summary["test_rel_l2"] < 10
    assert isinstance(load_fit(tmp_path / "fit.pt"), FittedOperator)


def test_pretrained_checkpoint_if_shipped():
    path = Path(lr.neural.__file__).resolve().parent.parent / "data" / "lsm_darcy64.pt"
    if not path.exists():
        pytest.skip("no pretrained LSM shipped")
    fit = lr.neural.load_pretrained("darcy64")
    data = lr.neural.darcy_dataset(n=64, samples=3, seed=1, cache=False, progress=False)
    assert fit.n == 64
    assert fit.evaluate(data) < 0.1
