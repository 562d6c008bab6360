"""Training neural operators on field-to-field data, and the fitted operator that predicts.

:func:`train` fits any torch module mapping ``(B, 1, n, n) -> (B, 1, n, n)`` (an
:class:`~lrsolve.neural.LSM`, or a peer such as an FNO) to a
:class:`~lrsolve.neural.DarcyData` set the way the LSM paper's code does:

* inputs and outputs normalised pointwise to zero mean / unit variance over the training
  samples (the reference's ``UnitGaussianNormalizer``), the loss taken on de-normalised
  outputs;
* relative L2 loss ``||u_pred - u|| / ||u||`` per sample, summed over the batch;
* Adam (``lr = 1e-3``, ``weight_decay = 1e-4``) with a one-cycle schedule (PyTorch's
  ``OneCycleLR`` shape: 30 % cosine warm-up from ``lr/25``, cosine decay to
  ``lr/(25*1e4)``, beta1 cycled 0.95 -> 0.85 -> 0.95); ``schedule="step"`` gives the
  halving every 100 epochs of the first published Darcy script;
* optional time budget: the schedule then follows ``max(step fraction, time fraction)``
  and training stops when the budget is spent, so a short CPU budget still ends with
  the annealed, low learning rate;
* checkpoints written atomically (temporary file + rename) after every epoch, and
  resumed from when present.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import atomic_save, load_weights, save_weights, shipped_file
from ..seeding import as_generator
from .data import DarcyData

__all__ = ["train", "FittedOperator", "load_fit", "load_pretrained", "relative_l2",
           "one_cycle", "PRETRAINED"]

PRETRAINED = {"darcy64": "lsm_darcy64.pt"}


def relative_l2(prediction, truth):
    """Per-sample relative L2 error ``||p - t|| / ||t||`` over all but the first axis.

    Examples
    --------
    >>> import torch
    >>> from lrsolve.neural import relative_l2
    >>> float(relative_l2(torch.ones(1, 4) * 1.1, torch.ones(1, 4))[0])  # doctest: +ELLIPSIS
    0.1000...
    """
    diff = (prediction - truth).reshape(prediction.shape[0], -1)
    ref = truth.reshape(truth.shape[0], -1)
    return diff.norm(dim=1) / ref.norm(dim=1)


def one_cycle(progress: float, max_lr: float, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> tuple[float, float]:
    """Learning rate and Adam beta1 at ``progress`` in [0, 1] of a one-cycle schedule.

    The shape of ``torch.optim.lr_scheduler.OneCycleLR`` (cosine annealing), written as a
    function of progress so that it can follow a time budget as well as a step count.

    Examples
    --------
    >>> from lrsolve.neural import one_cycle
    >>> [round(one_cycle(p, 1e-3)[0], 6) for p in (0.0, 0.3, 1.0)]
    [4e-05, 0.001, 0.0]
    """
    progress = min(max(progress, 0.0), 1.0)
    initial, final = max_lr / div_factor, max_lr / div_factor / final_div_factor

    def cos_anneal(start, end, t):
        return end + (start - end) * (1 + math.cos(math.pi * t)) / 2

    if progress <= pct_start:
        t = progress / pct_start
        return cos_anneal(initial, max_lr, t), cos_anneal(0.95, 0.85, t)
    t = (progress - pct_start) / (1 - pct_start)
    return cos_anneal(max_lr, final, t), cos_anneal(0.85, 0.95, t)


class _PointwiseGaussian:
    """Pointwise mean / std over the sample axis (the reference's UnitGaussianNormalizer)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-5):
        self.mean, self.std, self.eps = mean, std, eps

    @classmethod
    def fit(cls, x: np.ndarray) -> "_PointwiseGaussian":
        t = torch.as_tensor(x, dtype=torch.float32)
        return cls(t.mean(0), t.std(0))

    def encode(self, x):
        return (x - self.mean.to(x.device)) / (self.std.to(x.device) + self.eps)

    def decode(self, x):
        return x * (self.std.to(x.device) + self.eps) + self.mean.to(x.device)

    def state(self) -> dict:
        return {"mean": self.mean, "std": self.std, "eps": self.eps}

    @classmethod
    def from_state(cls, state: dict) -> "_PointwiseGaussian":
        return cls(state["mean"], state["std"], state["eps"])


def _interior_resample(fields: np.ndarray, m: int, method: str) -> np.ndarray:
    """Resample ``(S, n, n)`` fields on the interior grid ``(i+1)/(n+1)`` to ``(S, m, m)``.

    ``method="linear"`` pads with the zero boundary values (for solutions, u = 0 on the
    boundary); ``"nearest"`` keeps two-valued coefficients two-valued.
    """
    from scipy.interpolate import RegularGridInterpolator

    n = fields.shape[-1]
    target = np.arange(1, m + 1) / (m + 1)
    ty, tx = np.meshgrid(target, target, indexing="ij")
    points = np.stack([ty.ravel(), tx.ravel()], axis=1)
    out = np.empty((fields.shape[0], m, m))
    if method == "linear":
        axis = np.arange(0, n + 2) / (n + 1)
        for s, f in enumerate(fields):
            padded = np.pad(f, 1)
            out[s] = RegularGridInterpolator((axis, axis), padded)(points).reshape(m, m)
    else:
        axis = np.arange(1, n + 1) / (n + 1)
        for s, f in enumerate(fields):
            interp = RegularGridInterpolator((axis, axis), f, method="nearest", bounds_error=False,
                                             fill_value=None)
            out[s] = interp(points).reshape(m, m)
    return out


@dataclass
class FittedOperator:
    """A trained model with its normalisation: ``predict(a) -> u`` at the training grid.

    Attributes
    ----------
    model : torch.nn.Module
    n : int
        The training resolution; :meth:`predict` rejects other sizes unless
        ``resample=True``.
    history : dict
        Per epoch: ``epoch``, ``train_loss`` (mean relative L2 on the training batches),
        ``test_rel_l2`` (held-out mean relative L2, NaN when no test set), ``lr``,
        ``seconds`` (cumulative training time).
    config : dict
        The training options and the model configuration.
    """

    model: nn.Module
    a_normalizer: Any
    u_normalizer: Any
    n: int
    history: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def _device(self):
        try:
            return next(self.model.parameters()).device
        except StopIteration:  # pragma: no cover - parameter-free models
            return torch.device("cpu")

    def predict(self, a, batch_size: int = 50, resample: bool = False) -> np.ndarray:
        """Predict solutions for coefficient fields ``a``.

        Parameters
        ----------
        a : array_like, shape ``(samples, n, n)`` or ``(n, n)``
            Coefficient fields on the training grid.
        batch_size : int
            Samples per forward pass.
        resample : bool
            If True, fields of another size ``m`` are resampled to the training grid
            (nearest neighbour on the interior grid), predicted, and the predictions
            interpolated back to ``m x m`` (bilinear, with the zero boundary values).
            The operator is trained at one resolution; resampling is an explicit,
            approximate convenience, off by default.

        Returns
        -------
        numpy.ndarray
            float64 solutions of the same shape as ``a``.
        """
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.asarray(a, dtype=np.float64)
        single = a.ndim == 2
        if single:
            a = a[None]
        if a.ndim != 3 or a.shape[1] != a.shape[2]:
            raise ValueError(f"a must have shape (samples, n, n) or (n, n), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("a contains NaN or Inf")
        m = a.shape[1]
        if m != self.n:
            if not resample:
                raise ValueError(f"a has grid size {m} but the model was trained at n={self.n}; "
                                 f"pass resample=True to resample explicitly")
            a = _interior_resample(a, self.n, "nearest")
        device = self._device()
        was_training = self.model.training
        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, a.shape[0], batch_size):
                x = torch.as_tensor(a[start:start + batch_size], dtype=torch.float32, device=device)
                x = self.a_normalizer.encode(x).unsqueeze(1)
                out.append(self.u_normalizer.decode(self.model(x)[:, 0]).cpu().numpy())
        self.model.train(was_training)
        u = np.concatenate(out).astype(np.float64)
        if m != self.n:
            u = _interior_resample(u, m, "linear")
        return u[0] if single else u

    def evaluate(self, data: DarcyData) -> float:
        """Mean relative L2 error of the predictions on ``data``."""
        pred = torch.as_tensor(self.predict(data.a))
        return float(relative_l2(pred, torch.as_tensor(data.u)).mean())

    def plot(self, data: DarcyData, index: int = 0, path=None):
        """Input, truth, prediction and error of sample ``index`` of ``data``; saved if ``path``."""
        import matplotlib
        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        a, u = data.a[index], data.u[index]
        pred = self.predict(a)
        err = float(np.linalg.norm(pred - u) / np.linalg.norm(u))
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
        panels = [(a, "coefficient a"), (u, "truth u"), (pred, "prediction"),
                  (pred - u, f"error (rel. L2 {err:.2e})")]
        h = 1.0 / (self.n + 1)   # interior grid: pixel centres at h, 2h, ..., n h
        extent = (h / 2, 1 - h / 2, h / 2, 1 - h / 2)
        for ax, (img, title) in zip(axes, panels):
            if title.startswith("error"):
                bound = float(np.abs(img).max()) or 1.0
                im = ax.imshow(img, origin="lower", extent=extent, cmap="RdBu_r", vmin=-bound,
                               vmax=bound)
            else:
                im = ax.imshow(img, origin="lower", extent=extent)
            ax.set_title(title)
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        if path is not None:
            fmt = Path(path).suffix.lstrip(".") or "png"
            atomic_save(path, lambda fh: fig.savefig(fh, format=fmt, dpi=110))
        return fig

    def save(self, path) -> None:
        """Write model weights, normalisation, history and config (atomically)."""
        save_weights(path, {"model_state": self.model.state_dict(),
                            "a_norm": self.a_normalizer.state(),
                            "u_norm": self.u_normalizer.state(), "n": self.n,
                            "history": self.history, "config": self.config})


def load_fit(path, model: nn.Module | None = None, map_location="cpu", *,
             sha256: str | None = None) -> FittedOperator:
    """Load a :class:`FittedOperator` saved by :meth:`FittedOperator.save` or :func:`train`.

    ``model`` is rebuilt as an :class:`~lrsolve.neural.LSM` from the stored configuration
    when not given (pass the module for other architectures).  The file is read as data
    (``torch.load(weights_only=True)``, tensor checksum checked; ``sha256`` checks the
    whole file).

    Raises
    ------
    ValueError
        Not a fitted-operator file (e.g. a DCDM model), corrupt or truncated, or a file
        that would need code to load.
    """
    state = load_weights(path, what="fitted-operator file", map_location=map_location,
                         sha256=sha256)
    missing = [k for k in ("model_state", "a_norm", "u_norm", "n") if k not in state]
    if missing:
        hint = " (it looks like a DCDM model: use lr.dcdm.load_model)" \
            if "state_dict" in state else ""
        raise ValueError(f"{path} is not a fitted-operator file{hint}: missing {missing}")
    try:
        if model is None:
            from .lsm import LSM
            model_config = dict(state.get("config") or {}).get("model")
            if not model_config:
                raise ValueError("checkpoint has no LSM configuration; pass model=")
            model = LSM(**model_config)
        model.load_state_dict(state["model_state"])
        a_norm = _PointwiseGaussian.from_state(state["a_norm"])
        u_norm = _PointwiseGaussian.from_state(state["u_norm"])
        n = int(state["n"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path} is not a valid fitted-operator file: {str(exc)[:300]}") \
            from None
    model.eval()
    return FittedOperator(model, a_norm, u_norm, n, state.get("history", {}),
                          state.get("config", {}))


def load_pretrained(name: str = "darcy64", device=None) -> FittedOperator:
    """The small LSM shipped in ``lrsolve/data`` (``"darcy64"``: 64 x 64 Darcy, see docs/neural.md).

    The file is checked against ``lrsolve/data/SHA256SUMS`` and loaded as data.
    ``device`` (e.g. ``"cuda"``) moves the model there; an unavailable device is a
    ``ValueError``.

    Examples
    --------
    >>> import lrsolve as lr
    >>> fit = lr.neural.load_pretrained("darcy64")   # doctest: +SKIP
    >>> fit.n                                         # doctest: +SKIP
    64
    """
    if name not in PRETRAINED:
        raise ValueError(f"name must be one of {sorted(PRETRAINED)}, got {name!r}")
    dev = _check_device(device)
    path, digest = shipped_file(PRETRAINED[name])
    fit = load_fit(path, sha256=digest)
    if dev is not None:
        fit.model.to(dev)
    return fit


def _check_device(device):
    from ..backend import torch_device
    return torch_device(device)


def _check_data(data, name: str) -> DarcyData:
    if isinstance(data, DarcyData):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return DarcyData(*data)
    raise TypeError(f"{name} must be a DarcyData (or an (a, u) pair), got {type(data).__name__}")


def train(model: nn.Module, data, epochs: int = 100, batch_size: int = 20, lr: float = 1e-3, *,
          weight_decay: float = 1e-4, schedule: str = "onecycle", seed: int = 0, test=None,
          time_budget: float | None = None, clock: str = "cpu", wall_budget: float | None = None,
          checkpoint=None,
          resume: bool = True, eval_every: int = 1, progress: bool = True,
          log=None) -> FittedOperator:
    """Fit ``model`` to map ``data.a`` to ``data.u`` with relative-L2 loss.

    Parameters
    ----------
    model : torch.nn.Module
        ``(B, 1, n, n) -> (B, 1, n, n)``; trained on the device its parameters are on.
    data : DarcyData or (a, u)
        Training pairs, ``(samples, n, n)``.
    epochs, batch_size, lr : int, int, float
        Passes over the data, samples per step, peak learning rate (the LSM paper: batch
        20, lr 1e-3, 500 epochs).  The last partial batch is dropped.
    weight_decay : float
        Adam's L2 penalty (1e-4 in the reference).
    schedule : {"onecycle", "step", "constant"}
        One-cycle (default), halve every 100 epochs (the first published Darcy script),
        or constant.
    seed : int
        Seeds torch (initial weights are the caller's; batches are shuffled with
        ``numpy.random.default_rng([seed, epoch])``, so a resumed run sees the same order).
    test : DarcyData or (a, u), optional
        Held-out pairs evaluated every ``eval_every`` epochs and at the end.
    time_budget : float, optional
        Seconds of training (``clock="cpu"``: this process's CPU time; ``"wall"``: wall
        clock); evaluation is not counted.  Training stops when it is spent, and the
        one-cycle schedule runs on whichever of step and time fractions is larger.
    wall_budget : float, optional
        A second cap in wall-clock seconds of training (useful with ``clock="cpu"`` on
        a shared machine: whichever budget is spent first ends training, and the schedule
        follows the larger fraction).
    checkpoint : path, optional
        Written atomically after every epoch; if it exists and ``resume`` is True,
        training continues from it (the configuration must match).
    progress : bool
        tqdm progress bar over epochs.
    log : callable, optional
        Called with each epoch's history row (a dict).

    Returns
    -------
    FittedOperator
        ``predict``, ``evaluate``, ``plot``, ``save``; ``history``; ``config``.

    Examples
    --------
    >>> import numpy as np, lrsolve as lr
    >>> data = lr.neural.darcy_dataset(n=16, samples=8, refine=2, cache=False, progress=False)
    >>> model = lr.neural.LSM(width=8, levels=3, patch_size=2, heads=4)
    >>> fit = lr.neural.train(model, data, epochs=2, batch_size=4, progress=False)
    >>> fit.predict(data.a[:2]).shape
    (2, 16, 16)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    data = _check_data(data, "data")
    test = None if test is None else _check_data(test, "test")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if batch_size > len(data):
        raise ValueError(f"batch_size ({batch_size}) exceeds the number of samples ({len(data)})")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    if schedule not in ("onecycle", "step", "constant"):
        raise ValueError(f"schedule must be 'onecycle', 'step' or 'constant', got {schedule!r}")
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be 'cpu' or 'wall', got {clock!r}")
    if time_budget is not None and not (time_budget > 0):
        raise ValueError(f"time_budget must be positive seconds, got {time_budget!r}")
    if wall_budget is not None and not (wall_budget > 0):
        raise ValueError(f"wall_budget must be positive seconds, got {wall_budget!r}")
    if test is not None and test.n != data.n:
        raise ValueError(f"test has grid size {test.n}, data has {data.n}: they must match")
    timer = time.process_time if clock == "cpu" else time.perf_counter

    # Seeded inside a forked torch RNG: the caller's global torch random state is restored
    # on return, whatever training draws.
    device = next(model.parameters()).device
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        a_norm, u_norm = _PointwiseGaussian.fit(data.a), _PointwiseGaussian.fit(data.u)
        x_all = a_norm.encode(torch.as_tensor(data.a, dtype=torch.float32)).unsqueeze(1)
        y_all = torch.as_tensor(data.u, dtype=torch.float32)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = len(data) // batch_size
        total_steps = epochs * steps_per_epoch
        config = dict(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                      weight_decay=float(weight_decay), schedule=schedule, seed=int(seed),
                      samples=len(data), n=data.n, time_budget=time_budget, clock=clock,
                      wall_budget=wall_budget,
                      model=getattr(model, "config", None), model_class=type(model).__name__,
                      parameters=sum(p.numel() for p in model.parameters()))
        history = {"epoch": [], "train_loss": [], "test_rel_l2": [], "lr": [], "seconds": [],
                   "wall_seconds": []}
        start_epoch, step, elapsed, wall = 0, 0, 0.0, 0.0
        fit = FittedOperator(model, a_norm, u_norm, data.n, history, config)

        if checkpoint is not None and resume and Path(checkpoint).exists():
            state = load_weights(checkpoint, what="LSM training checkpoint", map_location=device)
            keys = ("epochs", "batch_size", "lr", "schedule", "seed", "samples", "n", "model")
            if any(state["config"].get(k) != config[k] for k in keys):
                raise ValueError(f"checkpoint {checkpoint} was written with a different "
                                 f"configuration; remove it or pass resume=False")
            model.load_state_dict(state["model_state"])
            optimizer.load_state_dict(state["optimizer_state"])
            history.update(state["history"])
            start_epoch, step, elapsed = state["epoch"], state["step"], state["elapsed"]
            wall = state.get("wall", 0.0)
            torch.set_rng_state(state["torch_rng"])

        def progress_fraction():
            frac = step / total_steps
            if time_budget is not None:
                frac = max(frac, elapsed / time_budget)
            if wall_budget is not None:
                frac = max(frac, wall / wall_budget)
            return frac

        def spent():
            return ((time_budget is not None and elapsed >= time_budget)
                    or (wall_budget is not None and wall >= wall_budget))

        def set_lr():
            if schedule == "onecycle":
                rate, beta1 = one_cycle(progress_fraction(), lr)
            else:
                rate = lr * (0.5 ** (step // (100 * steps_per_epoch)) if schedule == "step" else 1.0)
                beta1 = 0.9
            for group in optimizer.param_groups:
                group["lr"] = rate
                group["betas"] = (beta1, group["betas"][1])
            return rate

        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, initial=start_epoch, desc=f"train {type(model).__name__}",
                   disable=not progress, unit="epoch")
        out_of_time = spent()
        epoch = start_epoch
        while epoch < epochs and not out_of_time:
            model.train()
            order = as_generator([seed, epoch]).permutation(len(data))
            loss_sum, seen = 0.0, 0
            for b in range(steps_per_epoch):
                t0, w0 = timer(), time.perf_counter()
                index = torch.as_tensor(order[b * batch_size:(b + 1) * batch_size])
                x, y = x_all[index].to(device), y_all[index].to(device)
                rate = set_lr()
                optimizer.zero_grad(set_to_none=True)
                pred = u_norm.decode(model(x)[:, 0])
                loss = relative_l2(pred, y).sum()   # summed over the batch, as the reference
                loss.backward()
                optimizer.step()
                step += 1
                loss_sum += float(loss.detach())
                seen += len(index)
                elapsed += timer() - t0
                wall += time.perf_counter() - w0
                if spent():
                    out_of_time = True
                    break
            epoch += 1
            test_err = float("nan")
            if test is not None and (epoch % eval_every == 0 or epoch == epochs or out_of_time):
                test_err = fit.evaluate(test)
            row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "test_rel_l2": test_err,
                   "lr": rate, "seconds": elapsed, "wall_seconds": wall}
            for key, value in row.items():
                history[key].append(value)
            if checkpoint is not None:
                save_weights(checkpoint, {
                    "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
                    "a_norm": a_norm.state(), "u_norm": u_norm.state(), "n": data.n,
                    "history": history, "config": config, "epoch": epoch, "step": step,
                    "elapsed": elapsed, "wall": wall, "torch_rng": torch.get_rng_state()})
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", test=f"{test_err:.4f}")
            if log is not None:
                log(row)
        bar.close()
        model.eval()
        return fit
