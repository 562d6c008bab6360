"""The DCDM solver: the conjugate-direction loop of :mod:`lrsolve.krylov` with a network.

``lr.solve(A, b, method="dcdm", model=...)`` lands in :func:`_solve_dcdm`.  Each step
the residual is reshaped to the operator's grid, divided by its norm, and passed through
the network; the output (a direction, any scale) is A-orthogonalised against the last
``window`` directions, and an exact line search follows - one operator mat-vec per step,
the residual updated recursively and refreshed every ``refresh_every`` steps.

A network that uses the operator (:class:`~lrsolve.dcdm.VCycleNet`) is given ``A`` and
runs its V-cycle on ``A``'s GMG hierarchy (masks, coefficients, Neumann walls; built
once per operator, at setup); any other network's output is masked to ``A``'s active
cells, so a direction is always zero on solid cells.

Devices: the solve runs on the backend and device of ``b``; only the network forward
runs where the model's weights are (and in their dtype, float32 for the shipped models).
When those differ from ``b`` (a NumPy ``b`` with a CPU model; a CUDA ``b`` with a CPU
model), the residual is copied to the model for the forward and the direction copied
back - that copy, stated here and counted in ``stats["model_device"]``, is the only one.
Put the model on the GPU (``model.to("cuda")``) to keep a CUDA solve on the GPU.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import backend as bk
from ..krylov.conjugate_directions import conjugate_directions_system
from ..linsys import make_system
from ..result import SolveResult

__all__ = ["NetworkDirection", "dcdm_solve", "_solve_dcdm"]


class NetworkDirection:
    """``r -> f(s r / ||r||)`` on the grid: the DCDM direction generator.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(1, 1, *grid_shape)`` to ``(1, 1, *grid_shape)``.
    grid_shape : tuple of int
        The operator's grid.
    input_scale : float, optional
        ``s``, the norm of the network input.  By default ``sqrt(N / N_train)``, so the input
        has the per-point size of the unit training vectors on the ``N_train``-point grid
        of ``model.meta["recipe"]`` (1 on the training grid, and when unknown).
    """

    def __init__(self, model: Any, grid_shape: tuple, input_scale: float | None = None,
                 operator: Any = None):
        import torch
        self.torch = torch
        self.model = model
        self.grid_shape = tuple(int(s) for s in grid_shape)
        self.operator = operator
        # A network that takes the operator (VCycleNet: its GMG hierarchy) gets it; any
        # other network's output is masked to the active cells here.
        self.uses_operator = bool(getattr(model, "uses_operator", False)) and operator is not None
        self.active = None
        if operator is not None and not self.uses_operator:
            active = np.asarray(getattr(operator, "active", True))
            if active.size == int(np.prod(self.grid_shape)) and not active.all():
                self.active = active.reshape(-1)
        if input_scale is None:
            # The network (ReLUs with biases) is not scale-equivariant, so give it inputs of
            # the per-point size it was trained on: unit vectors on its training grid have
            # RMS 1/sqrt(N_train); on a grid of N points that is ||r|| = sqrt(N / N_train).
            recipe = dict(getattr(model, "meta", {}) or {}).get("recipe", {})
            if "grid" in recipe and "dim" in recipe:
                n_train = float(recipe["grid"]) ** int(recipe["dim"])
                input_scale = float(np.sqrt(np.prod(self.grid_shape) / n_train))
            else:
                input_scale = 1.0
        self.input_scale = float(input_scale)
        param = next(iter(model.parameters()), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.dtype = param.dtype if param is not None else torch.float32
        self.calls = 0
        self.seconds = 0.0

    def __call__(self, r):
        torch = self.torch
        t0 = time.perf_counter()
        if bk.is_torch(r):
            t = r.detach()
        elif bk.is_cupy(r):  # pragma: no cover - needs a GPU
            t = torch.from_dlpack(r)
        else:
            t = torch.from_numpy(np.ascontiguousarray(r))
        # Normalise in the residual's own precision before casting to the network's
        # dtype: a residual of norm 1e-78 would underflow to zero in float32.
        scale = torch.linalg.vector_norm(t) / self.input_scale
        t = (t / scale).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            t = t.reshape((1, 1) + self.grid_shape)
            if self.uses_operator:
                q = self.model(t, operator=self.operator).reshape(-1)
            else:
                q = self.model(t).reshape(-1)
                if self.active is not None:
                    key = (str(q.dtype), str(q.device))
                    if getattr(self, "_active_key", None) != key:
                        self._active_t = torch.as_tensor(self.active, dtype=q.dtype,
                                                         device=q.device)
                        self._active_key = key
                    q = q * self._active_t
        if bk.is_torch(r):
            out = q.to(device=r.device, dtype=r.dtype)
        elif bk.is_cupy(r):  # pragma: no cover - needs a GPU
            import cupy
            out = cupy.from_dlpack(q.contiguous()).astype(r.dtype)
        else:
            out = q.detach().cpu().numpy().astype(r.dtype)
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        return out


def _model_dim(model: Any) -> int | None:
    return getattr(model, "dim", None)


def resolve_model(A: Any, model: Any = None):
    """``(grid_shape, model)`` for a DCDM solve on ``A``: checks that ``A`` is a grid
    operator, loads the shipped ``poisson{dim}d`` model when ``model`` is None, checks
    the model's type and dimension (clear errors for each), and builds the GMG hierarchy
    of ``A`` for a network that uses it (:class:`~lrsolve.dcdm.VCycleNet`; cached in the
    model per operator)."""
    grid_shape = getattr(A, "grid_shape", None)
    if grid_shape is None:
        raise ValueError("A must expose grid_shape (a stencil operator such as "
                         "lr.problems.poisson(..., format='stencil').A): DCDM's network needs "
                         f"the grid, and A of type {type(A).__name__} has none")
    grid_shape = tuple(int(s) for s in grid_shape)
    if model is None:
        from .pretrained import load_pretrained
        name = f"poisson{len(grid_shape)}d"
        try:
            model = load_pretrained(name)
        except ValueError:
            raise ValueError(f"model is required: no pretrained DCDM model {name!r} ships with "
                             "lrsolve; train one with lr.dcdm.train(dim=...)") from None
    import torch
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. lr.dcdm.load_pretrained("
                        f"'poisson2d')), got {type(model).__name__}")
    dim = _model_dim(model)
    if dim is not None and dim != len(grid_shape):
        raise ValueError(f"model was built for {dim}D grids but A has a {len(grid_shape)}D grid "
                         f"{grid_shape}; use a {len(grid_shape)}D model "
                         f"(lr.dcdm.load_pretrained('poisson{len(grid_shape)}d') or "
                         f"lr.dcdm.train(dim={len(grid_shape)}))")
    if getattr(model, "uses_operator", False):
        # Build (or find in the model's cache) the operator's hierarchy now, where the
        # forwards will run, so that a Solver's setup holds it and its solves do not.
        param = next(iter(model.parameters()), None)
        if param is not None:
            model.hierarchy(A, param.dtype, param.device)
    return grid_shape, model


def _solve_dcdm(A: Any, b: Any, *, rtol: float = 1e-6, atol: float = 0.0,
                maxiter: int | None = None, x0: Any = None, model: Any = None,
                window: int = 2, refresh_every: int | None = None,
                callback: Any = None) -> SolveResult:
    """The ``lr.solve(..., method="dcdm")`` hook; see :func:`dcdm_solve`."""
    t0 = time.perf_counter()
    grid_shape, model = resolve_model(A, model)
    system = make_system(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter)
    if int(np.prod(grid_shape)) != system.n:
        raise ValueError(f"A.grid_shape {grid_shape} has {int(np.prod(grid_shape))} points but "
                         f"b has length {system.n}")
    # The network runs in eval mode (BatchNorm statistics, no dropout) for the solve; the
    # caller's mode is restored afterwards, whatever happens, so a model that is being
    # trained between solves keeps training.
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        generator = NetworkDirection(model, grid_shape, operator=A)
        res = conjugate_directions_system(system, generator, rtol=rtol, atol=atol,
                                          maxiter=maxiter, window=window,
                                          refresh_every=refresh_every, callback=callback,
                                          method="dcdm")
    finally:
        for module, mode in modes.items():
            module.training = mode
    res.stats.update({"network_calls": generator.calls, "network_time": generator.seconds,
                      "model_device": str(generator.device), "grid_shape": grid_shape})
    res.time = time.perf_counter() - t0
    return res


def dcdm_solve(A: Any, b: Any, model: Any = None, *, rtol: float = 1e-6, atol: float = 0.0,
               maxiter: int | None = None, x0: Any = None, window: int = 2,
               refresh_every: int | None = None, callback: Any = None) -> SolveResult:
    """Solve the SPD grid system ``A x = b`` by the Deep Conjugate Direction Method.

    Parameters
    ----------
    A : grid operator
        Must expose ``grid_shape``: :class:`~lrsolve.operators.GridOperator` (masks,
        coefficients, Neumann / Dirichlet sides, rectangular 2D / 3D grids) or
        :class:`~lrsolve.operators.PoissonStencil`.
    b, x0 : array
        NumPy or torch (CPU or CUDA); the result comes back on the backend of ``b``.
    model : torch.nn.Module, optional
        A DCDM network of the grid's dimension; the shipped ``poisson{dim}d`` model
        (``poisson2d`` / ``poisson3d``) when None.
    rtol, atol, maxiter
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)``.
    window : int
        Previous directions the network's output is A-orthogonalised against (2 in the
        paper).
    refresh_every : int, optional
        Recompute the true residual every so many steps (50 in double precision).
    callback : callable, optional
        ``callback(xk)`` after every step.

    Returns
    -------
    SolveResult
        ``method="dcdm"``; ``stats`` adds ``network_calls``, ``network_time``,
        ``model_device``, ``max_a_cosine`` (A-orthogonality achieved in the window).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=64, dim=2)
    >>> model = lr.dcdm.load_pretrained("poisson2d")
    >>> r = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
    >>> r.converged
    True
    """
    return _solve_dcdm(A, b, rtol=rtol, atol=atol, maxiter=maxiter, x0=x0, model=model,
                       window=window, refresh_every=refresh_every, callback=callback)
