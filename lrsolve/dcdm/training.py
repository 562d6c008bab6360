"""Unsupervised training of the DCDM network (``lr.dcdm.train``).

Loss (Kaneda et al., eq. for the "A-norm" surrogate, as in the reference's
``custom_loss_function_cnn_1d_fast``): for a unit training vector ``r`` and ``q = f(r)``,

    L(r) = || r - (q^T r / q^T A q) A q ||^2,

the residual left after one exact line search along ``q``.  It is invariant to the scale
of ``q`` and of ``A``, so the network only has to learn a direction.  The vectors come
from :func:`lrsolve.dcdm.data.ritz_vectors` (the paper's Ritz recipe, exact and cheap),
drawn fresh at every step.  ``A`` is the shared :class:`~lrsolve.operators.PoissonStencil`
on the torch backend; its mat-vec is differentiable.

Checkpoints hold the weights, the optimiser, the step, the loss history and both random
states; they are written with :func:`lrsolve.io.atomic_save` (temporary file, fsync,
rename), so an interrupted run never leaves a torn file and ``resume=True`` continues
where it stopped.  Models and checkpoints are read back as data
(``torch.load(weights_only=True)``, tensor checksum checked).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import load_weights, save_weights
from ..multigrid.transfer import TorchHierarchy
from ..operators.stencil import PoissonStencil
from ..seeding import as_generator
from .data import operator_vectors, ritz_vectors, training_operators
from .network import DCDMNet, VCycleNet, build_network

__all__ = ["train", "dcdm_loss", "save_model", "load_model"]


def dcdm_loss(net_out, r, A) -> Any:
    """Mean over the batch of ``||r - (q^T r / q^T A q) A q||^2`` (``r`` unit vectors).

    Parameters
    ----------
    net_out, r : torch.Tensor, shape ``(batch, 1, *grid)``
        Network output ``q`` and its input ``r``.
    A : operator or TorchHierarchy
        Acts on flat torch vectors of length ``prod(grid)`` (differentiably), or a
        :class:`~lrsolve.multigrid.transfer.TorchHierarchy` (its finest level, batched).
    """
    batch = r.shape[0]
    q = net_out.reshape(batch, -1)
    rf = r.reshape(batch, -1)
    if isinstance(A, TorchHierarchy):      # the whole batch in one differentiable pass
        Aq = A.apply(0, q.reshape((batch,) + A.shape3(0))).reshape(batch, -1)
    else:
        Aq = torch.stack([A @ q[i] for i in range(batch)])
    qAq = (q * Aq).sum(dim=1)
    qr = (q * rf).sum(dim=1)
    # A tiny floor keeps an all-zero output (possible at initialisation) finite.
    alpha = qr / torch.clamp(qAq, min=1e-30)
    return ((rf - alpha[:, None] * Aq) ** 2).sum(dim=1).mean()


def save_model(model: DCDMNet, path: Any, meta: dict | None = None) -> None:
    """Save weights, configuration and ``meta`` to ``path`` (atomically, with a checksum).

    The file holds plain tensors, numbers and strings only, so :func:`load_model` reads
    it with ``torch.load(weights_only=True)``.
    """
    payload = {"format": _FORMAT, "config": model.config(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "meta": _plain(dict(meta or getattr(model, "meta", {}) or {}))}
    save_weights(path, payload)


def load_model(path: Any, map_location: Any = "cpu", *, sha256: str | None = None) -> DCDMNet:
    """Load a model written by :func:`save_model` (or a training checkpoint).

    The file is read as data (``weights_only=True``, tensor checksum checked); ``sha256``
    also checks the whole file (shipped weights).

    Raises
    ------
    ValueError
        Not a DCDM model file (e.g. an LSM fit), corrupt, truncated, or a file that would
        need code to load.
    """
    payload = load_weights(path, what="DCDM model file", map_location=map_location,
                           sha256=sha256)
    if "config" not in payload or payload.get("format", _FORMAT) != _FORMAT \
            or not ("state_dict" in payload or "model" in payload):
        hint = " (it looks like an LSM fit: use lr.neural.load_fit)" \
            if "model_state" in payload else ""
        raise ValueError(f"{path} is not a DCDM model file{hint}")
    config = payload["config"]
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a DCDM model file: 'config' is not a dict")
    try:
        model = build_network(config)
        model.load_state_dict(payload["state_dict"] if "state_dict" in payload
                              else payload["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a valid DCDM model file: {str(exc)[:300]}") from None
    model.meta = dict(payload.get("meta", {}) or {})
    model.eval()
    return model


_FORMAT = "lrsolve-dcdm-1"


def _plain(obj: Any) -> Any:
    """``obj`` with numbers / strings as the builtin types ``weights_only`` loading accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, type(None), torch.Tensor)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    return str(obj)


def train(grid: int = 64, dim: int = 2, *, steps: int = 6000, batch_size: int = 16,
          lr: float = 1e-3, lr_final: float = 2e-5, seed: int = 0, channels: int = 16,
          levels: Any = 1, shared: bool = False, arch: str = "unet", hidden: int = 2,
          low_fraction: float = 0.55,
          low_weight: float = 9.0, domains: str = "box", coarse_size: int = 1000,
          checkpoint: Any = None,
          checkpoint_every: int = 200,
          resume: bool = True, max_minutes: float | None = None, stop_at: int | None = None,
          threads: int | None = 1, progress: bool = True) -> DCDMNet:
    """Train a DCDM network on the ``(grid,)*dim`` Poisson matrix, unsupervised.

    Parameters
    ----------
    grid, dim : int
        Training grid (points per axis) and dimension (2 or 3).
    steps, batch_size : int
        Adam steps and vectors per step (fresh vectors every step).
    lr, lr_final : float
        Learning rate, decayed along a cosine to ``lr_final``.
    seed : int
        Seeds the weights and the data stream.
    channels, levels, shared
        Network shape (:class:`~lrsolve.dcdm.network.DCDMNet`); ``levels=1`` is the paper's.
    arch : {"unet", "vcycle"}
        ``"unet"``: :class:`~lrsolve.dcdm.network.DCDMNet` (the paper's family);
        ``"vcycle"``: :class:`~lrsolve.dcdm.network.VCycleNet` (learned smoothers in a
        V-cycle; uses ``channels`` and ``hidden``, ignores ``levels`` and ``shared``).
    hidden : int
        Residual convolutions per smoother for ``arch="vcycle"``.
    low_fraction, low_weight : float
        The data recipe on the Dirichlet box (:func:`~lrsolve.dcdm.data.ritz_vectors`).
    domains : {"box", "mix"}
        Training operators (:func:`~lrsolve.dcdm.data.training_operators`): ``"box"``
        the paper's Dirichlet box; ``"mix"`` adds closed / open-top boxes with random
        solid obstacles, a coefficient field and a rectangular grid, one operator per
        step in turn, with :func:`~lrsolve.dcdm.data.operator_vectors` as data.  Only
        ``arch="vcycle"`` sees the operator; with ``"unet"`` the loss does.
    coarse_size : int
        ``arch="vcycle"``: the hierarchy's coarsest level has at most this many cells
        (a training grid at or below it has no level to learn on).
    checkpoint : path, optional
        Written atomically every ``checkpoint_every`` steps and at the end; with
        ``resume=True`` an existing checkpoint is continued.
    max_minutes : float, optional
        Stop (and checkpoint) after this much wall time; the learning-rate schedule then
        runs on the time budget.
    stop_at : int, optional
        Stop (and checkpoint) after this step, as an interruption would; calling again
        with the same arguments resumes from the checkpoint.
    threads : int or None
        ``torch.set_num_threads`` for the run (None leaves it).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    DCDMNet
        The trained model in eval mode; ``model.meta`` records the training run.

    Examples
    --------
    >>> import lrsolve as lr
    >>> model = lr.dcdm.train(grid=16, dim=2, steps=5, batch_size=2, progress=False)
    >>> model.meta["steps_done"]
    5
    """
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    for name, val in (("grid", grid), ("steps", steps), ("batch_size", batch_size),
                      ("checkpoint_every", checkpoint_every)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if grid < 4:
        raise ValueError(f"grid must be at least 4, got {grid}")
    if not (lr > 0 and lr_final > 0):
        raise ValueError(f"lr and lr_final must be positive, got {lr}, {lr_final}")
    if threads is not None:
        torch.set_num_threads(int(threads))
    # Seeded inside a forked torch RNG: the caller's global torch random state is restored
    # on return (weights are initialised from `seed`, data drawn from its own generator).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "vcycle":
            model = VCycleNet(dim=dim, channels=channels, hidden=hidden, coarse_size=coarse_size)
        elif arch == "unet":
            model = DCDMNet(dim=dim, channels=channels, levels=levels, shared=shared)
        else:
            raise ValueError(f"arch must be 'unet' or 'vcycle', got {arch!r}")
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        rng = as_generator(seed)
        history: list[float] = []
        start_step = 0
        elapsed_before = 0.0
        recipe = {"grid": grid, "dim": dim, "low_fraction": low_fraction, "low_weight": low_weight,
                  "batch_size": batch_size, "lr": lr, "lr_final": lr_final, "seed": seed,
                  "steps": steps}
        if domains != "box":
            recipe["domains"] = domains
        if checkpoint is not None and resume and Path(checkpoint).exists():
            state = load_weights(checkpoint, what="DCDM training checkpoint", map_location="cpu")
            # `steps` may grow on resume (train longer); everything else must match.
            same = {k: v for k, v in recipe.items() if k != "steps"}
            old = {k: v for k, v in dict(state.get("recipe", {})).items() if k != "steps"}
            if state.get("config") != model.config() or old != same:
                raise ValueError(f"checkpoint {checkpoint} was written by a different training setup "
                                 f"({state.get('config')}, {state.get('recipe')}); pass resume=False "
                                 "or another path")
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["numpy_rng"]
            torch.set_rng_state(state["torch_rng"])
            history = list(state["history"])
            start_step = int(state["step"])
            elapsed_before = float(state.get("elapsed", 0.0))
        if domains == "box" and arch != "vcycle":
            pool = [(None, PoissonStencil(grid, dim, backend="torch", dtype=np.float32))]
        else:
            from ..multigrid import GMG
            pool = []
            for op in training_operators(grid, dim, domains, seed=seed):
                H = TorchHierarchy(GMG(op, coarse_size=getattr(model, "coarse_size", 1000)),
                                   dtype=torch.float32)
                pool.append((op, H))

        def lr_at(step: int) -> float:
            # Cosine from lr to lr_final over the budget: the step budget, or the wall-time
            # budget when that runs out first (then the run is not bit-reproducible).
            done = step / steps
            if max_minutes is not None:
                done = max(done, (elapsed_before + time.perf_counter() - t0) / (60.0 * max_minutes))
            done = min(done, 1.0)
            return lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * done))

        def write_checkpoint(step: int, elapsed: float) -> None:
            if checkpoint is None:
                return
            save_weights(checkpoint, {"format": _FORMAT, "config": model.config(), "recipe": recipe,
                          "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                          "history": history, "step": step, "elapsed": elapsed,
                          "meta": _meta(recipe, step, elapsed, history)})

        t0 = time.perf_counter()
        model.train()
        step = start_step
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, initial=start_step, desc=f"dcdm {dim}D {grid}", unit="step")
        try:
            while step < (steps if stop_at is None else min(steps, stop_at)):
                if max_minutes is not None and \
                        (elapsed_before + time.perf_counter() - t0) > 60.0 * max_minutes:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                if threads is not None and torch.get_num_threads() != int(threads):
                    # numba's first parallel kernel (GMG in the data recipe) resets torch's
                    # intra-op threads; oversubscribed, a step took 9 s instead of 0.4 s
                    torch.set_num_threads(int(threads))
                op, A = pool[step % len(pool)]
                if op is None or (op.grid_shape == (grid,) * dim and op.bc["x-"] == "dirichlet"
                                  and op.mask is None and np.isscalar(op.coefficient)):
                    # the paper's domain: the exact Ritz recipe
                    v = ritz_vectors(grid, dim, batch_size, rng, low_fraction=low_fraction,
                                     low_weight=low_weight)
                else:
                    v = operator_vectors(op, batch_size, rng, preconditioner=A.gmg)
                r = torch.from_numpy(v).unsqueeze(1)
                out = model(r, operator=A) if arch == "vcycle" else model(r)
                loss = dcdm_loss(out, r, A)
                if len(pool) > 1:
                    # The operators' losses differ by 100x for the same quality (the loss
                    # of one steepest-descent step, q = r, ranges from 0.1 on the box to
                    # 13 with obstacles): measure each batch against that step so that
                    # no operator dominates the gradient.
                    with torch.no_grad():
                        baseline = dcdm_loss(r, r, A).clamp_min(1e-12)
                    loss = loss / baseline
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                history.append(float(loss.item()))
                if bar is not None:
                    bar.update(1)
                    if step % 20 == 0:
                        bar.set_postfix(loss=f"{np.mean(history[-50:]):.4f}")
                if step % checkpoint_every == 0:
                    write_checkpoint(step, elapsed_before + time.perf_counter() - t0)
        finally:
            if bar is not None:
                bar.close()
        elapsed = elapsed_before + time.perf_counter() - t0
        write_checkpoint(step, elapsed)
        model.eval()
        model.meta = _meta(recipe, step, elapsed, history)
        return model


def _meta(recipe: dict, step: int, elapsed: float, history: list) -> dict:
    tail = history[-100:]
    return {"recipe": dict(recipe), "steps_done": int(step), "train_seconds": float(elapsed),
            "final_loss": float(np.mean(tail)) if tail else float("nan"),
            "torch_version": str(torch.__version__)}
