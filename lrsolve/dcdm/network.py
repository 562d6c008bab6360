"""The DCDM convolutional network: a normalised residual on the grid -> a search direction.

Layer layout of Kaneda et al. (ICML 2023), read from the reference implementation
(ayano721/2023_DCDM, ``src/train.py``), with 16 channels and 3x3(x3) kernels:

* a linear input convolution ``1 -> C``;
* at full resolution: ``la = conv(first)``, ``lb = conv(la)``, ``la = conv(lb) + la``,
  ``lb = conv(la)`` (ReLU after every convolution, residual sums as written);
* average pooling by 2, then three residual pairs ``a = conv(conv(a)) + a`` on the
  coarse grid;
* nearest upsampling by 2 added to ``lb`` (a skip connection), two residual pairs;
* a linear 1x1 convolution ``C -> 1`` (the reference's ``Dense(1)``).

That is ``levels=1``, the paper's network.  ``levels > 1`` repeats the full-resolution
block (``conv, conv, conv + skip, conv``) on each coarser grid before pooling again and
the two decoder pairs on the way back up, a multi-level U-Net of the same bricks.  With
``shared=True`` every level below the finest reuses one set of encoder / decoder weights,
so the number of levels could grow with the grid at inference (``levels="auto"``: pool
until the coarsest grid is at most ``coarsest`` points per axis), the way multigrid
reuses one smoother on every level.  Measured (docs/dcdm.md): a model trained at 64^2
with ``"auto"`` (depth 4 there) stalls when run deeper on 128^2 / 256^2, while the same
weights at a fixed depth of 4 converge - so the shipped model fixes ``levels=4``.  All
variants are fully convolutional: a model trained on 64 x 64 applies to any grid as is.

:class:`VCycleNet` (the default shipped models ``poisson2d`` and ``poisson3d``) is the
multilevel idea done consistently: learned, shared smoothers inside a multigrid V-cycle
whose levels, transfers and coarsest solve are the GMG hierarchy of the system's own
operator (:mod:`lrsolve.multigrid`, applied on torch through
:class:`lrsolve.multigrid.transfer.TorchHierarchy`), so it handles masks, coefficients,
Neumann walls and rectangular grids in 2D and 3D, and its output is zero on solid cells.
"""
from __future__ import annotations

import math
import weakref
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["DCDMNet", "VCycleNet", "build_network"]


def _conv(dim: int, cin: int, cout: int, kernel: int = 3) -> nn.Module:
    cls = nn.Conv2d if dim == 2 else nn.Conv3d
    return cls(cin, cout, kernel, padding=kernel // 2)


class _Encoder(nn.Module):
    """``la = c1(x); lb = c2(la); la = c3(lb) + la; lb = c4(la)`` with ReLUs (the paper's top)."""

    def __init__(self, dim: int, channels: int):
        super().__init__()
        self.convs = nn.ModuleList([_conv(dim, channels, channels) for _ in range(4)])

    def forward(self, x):
        c1, c2, c3, c4 = self.convs
        la = F.relu(c1(x))
        lb = F.relu(c2(la))
        la = F.relu(c3(lb)) + la
        return F.relu(c4(la))


class _ResidualPairs(nn.Module):
    """``pairs`` times ``a = relu(c2(relu(c1(a)))) + a``."""

    def __init__(self, dim: int, channels: int, pairs: int):
        super().__init__()
        self.convs = nn.ModuleList([_conv(dim, channels, channels) for _ in range(2 * pairs)])

    def forward(self, a):
        for i in range(0, len(self.convs), 2):
            a = F.relu(self.convs[i + 1](F.relu(self.convs[i](a)))) + a
        return a


class DCDMNet(nn.Module):
    """The DCDM network in 2D or 3D.

    Parameters
    ----------
    dim : {2, 3}
        Spatial dimension; the input has shape ``(batch, 1, *grid)``.
    channels : int
        Feature channels (16 in the paper).
    levels : int or "auto"
        Average-pooling levels; 1 is the paper's network.  ``"auto"`` (only with
        ``shared=True``) pools until the grid is at most ``coarsest`` per axis.
    shared : bool
        Reuse one encoder and one decoder for every level below the finest.
    coarsest : int
        Target size of the coarsest grid for ``levels="auto"``.

    Examples
    --------
    >>> import torch
    >>> net = DCDMNet(dim=2)
    >>> net(torch.zeros(3, 1, 16, 16)).shape
    torch.Size([3, 1, 16, 16])
    """

    def __init__(self, dim: int = 2, channels: int = 16, levels: Any = 1, shared: bool = False,
                 coarsest: int = 4):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if levels == "auto":
            if not shared:
                raise ValueError("levels='auto' needs shared=True (per-level weights fix the depth)")
        elif isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int or 'auto', got {levels!r}")
        if isinstance(coarsest, bool) or not isinstance(coarsest, int) or coarsest < 2:
            raise ValueError(f"coarsest must be an int >= 2, got {coarsest!r}")
        self.dim, self.channels, self.levels = dim, channels, levels
        self.shared, self.coarsest = bool(shared), coarsest
        self.first = _conv(dim, 1, channels)
        self.top = _Encoder(dim, channels)
        n_enc = 0 if levels == 1 else (1 if shared else levels - 1)
        n_dec = 1 if shared or levels == 1 else levels
        self.encoders = nn.ModuleList([_Encoder(dim, channels) for _ in range(n_enc)])
        self.bottom = _ResidualPairs(dim, channels, 3)
        self.decoders = nn.ModuleList([_ResidualPairs(dim, channels, 2) for _ in range(n_dec)])
        self.last = _conv(dim, channels, 1, kernel=1)

    def config(self) -> dict:
        """The constructor arguments, for saving with the weights."""
        return {"dim": self.dim, "channels": self.channels, "levels": self.levels,
                "shared": self.shared, "coarsest": self.coarsest}

    def depth_for(self, grid_shape) -> int:
        """Pooling levels used on a grid of this shape."""
        if self.levels != "auto":
            return int(self.levels)
        smallest = min(int(s) for s in grid_shape)
        return max(1, int(math.ceil(math.log2(max(smallest, 2) / self.coarsest))))

    def _pool(self, x):
        pool = F.avg_pool2d if self.dim == 2 else F.avg_pool3d
        return pool(x, 2, ceil_mode=True)

    def _up(self, x, like):
        return F.interpolate(x, size=like.shape[2:], mode="nearest")

    def forward(self, r):
        if r.ndim != self.dim + 2 or r.shape[1] != 1:
            raise ValueError(f"input must have shape (batch, 1, *grid) with {self.dim} grid axes, "
                             f"got {tuple(r.shape)}")
        depth = self.depth_for(r.shape[2:])
        skips = [self.top(self.first(r))]
        a = skips[0]
        for level in range(1, depth):
            enc = self.encoders[0] if self.shared else self.encoders[level - 1]
            a = enc(self._pool(a))
            skips.append(a)
        a = self.bottom(self._pool(a))
        for level in reversed(range(depth)):
            dec = self.decoders[0] if (self.shared or self.levels == 1) else self.decoders[level]
            a = dec(self._up(a, skips[level]) + skips[level])
        return self.last(a)


# ---------------------------------------------------------------------------------------
# A multigrid V-cycle on the operator's own GMG hierarchy, with learned smoothers.
# ---------------------------------------------------------------------------------------

class _Smoother(nn.Module):
    """``e = D^{-1} s (omega x + g(x, d))`` with ``x = r / s``, ``s`` the RMS of ``r`` per
    sample and ``D`` the level operator's diagonal; zero on excluded cells.

    ``g`` is a small CNN (input conv of 2 channels, ``hidden`` residual convs, output
    conv initialised to zero, so an untrained smoother is damped Jacobi with ``omega``).
    Its second input channel ``d`` is the level's diagonal divided by its median over the
    active cells (0 on excluded cells): about 1 in the open interior, ``(2 dim - 1) /
    (2 dim)`` beside a closed wall, lower in corners, 0 inside a solid, and the local
    contrast of a coefficient.  Why the diagonal: it is the one scale-free, local
    description of the operator that every level of the hierarchy has (the coarse
    operators are rediscretised, with their own walls and coefficients), so one set of
    weights sees walls, masks and coefficients on every level and every grid, and the
    ``D^{-1}`` in front puts the output in the operator's units (a Jacobi step).
    Dividing by the RMS and multiplying back makes the smoother positively homogeneous.
    """

    def __init__(self, dim: int, channels: int, hidden: int, omega: float = 0.8):
        super().__init__()
        self.dim = dim
        self.first = _conv(dim, 2, channels)
        self.hidden = nn.ModuleList([_conv(dim, channels, channels) for _ in range(hidden)])
        self.last = _conv(dim, channels, 1)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)
        self.omega = nn.Parameter(torch.tensor(float(omega)))

    def forward(self, r, level: dict):
        # r: (k, n0, n1, n2), the 3-D embedding of the level's grid
        k = r.shape[0]
        grid = level["grid"]
        axes = tuple(range(1, r.ndim))
        s = torch.sqrt(torch.mean(r * r, dim=axes, keepdim=True)).clamp_min(1e-30)
        x = r / s
        feature = level["feature"].expand(k, *level["feature"].shape[1:])
        inp = torch.stack([x.reshape((k,) + grid), feature.reshape((k,) + grid)], dim=1)
        h = F.relu(self.first(inp))
        for conv in self.hidden:
            h = F.relu(conv(h)) + h
        g = self.last(h).reshape(r.shape)
        return level["inv_diag"] * level["active"] * s * (self.omega * x + g)


class VCycleNet(nn.Module):
    """A DCDM network: a multigrid V-cycle on the operator's GMG hierarchy whose
    smoothers are learned.

    The structure comes from :class:`lrsolve.multigrid.GMG` built for the system's
    operator (``forward(r, operator=A)``): the level operators with their masks,
    coefficients and boundary conditions, the hierarchy's restriction and prolongation,
    and the coarsest level solved with the hierarchy's dense (pseudo-)inverse - applied
    through :class:`lrsolve.multigrid.transfer.TorchHierarchy`, differentiably.  Only the
    two smoothers are learned, one set of weights shared by every level:

    * ``e = S_pre(r)``; the residual ``r - A_l e`` restricted; the same cycle on the next
      level (the coarsest solved exactly); its correction prolonged and added;
    * ``e += S_post(r - A_l e)``.

    Each smoother is ``D^{-1} s (omega x + g(x, d))`` (see ``_Smoother``): normalised
    input, the level's relative diagonal as a second channel, output in the operator's
    units.  So the network is positively homogeneous (``f(c r) = c f(r)``), invariant to
    the scale of ``A``, computes the same function on every level, and its output is zero
    on excluded (solid) cells; the number of levels is the hierarchy's, growing with the
    grid, so inference runs on grids larger than the training grid.

    Without ``operator`` the network runs on the Dirichlet Poisson operator of the
    input's grid (the unit box, ``GridOperator(grid_shape)``).

    Parameters
    ----------
    dim : {2, 3}
    channels : int
        Feature channels of the smoothers' CNN.
    hidden : int
        Residual 3x3(x3) convolutions in each smoother.
    coarse_size : int
        ``GMG(A, coarse_size=...)``: coarsen until a level has at most this many cells.

    Examples
    --------
    >>> import torch
    >>> import lrsolve as lr
    >>> net = VCycleNet(dim=2)
    >>> P = lr.problems.poisson(n=(30, 17), dim=2)
    >>> net(torch.randn(2, 1, 30, 17), operator=P.A).shape
    torch.Size([2, 1, 30, 17])
    >>> net.depth_for(lr.problems.poisson(n=256, dim=2).A)
    5
    """

    arch = "vcycle"
    uses_operator = True

    def __init__(self, dim: int = 2, channels: int = 16, hidden: int = 2,
                 coarse_size: int = 1000):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        for name, val, low in (("channels", channels, 1), ("hidden", hidden, 0),
                               ("coarse_size", coarse_size, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name} must be an int >= {low}, got {val!r}")
        self.dim, self.channels, self.hidden, self.coarse_size = dim, channels, hidden, coarse_size
        self.pre = _Smoother(dim, channels, hidden)
        self.post = _Smoother(dim, channels, hidden)
        self._hierarchies: dict = {}    # (id(op), dtype, device) -> (weakref(op), hierarchy)
        self._boxes: dict = {}          # grid shape -> the Dirichlet box operator

    def config(self) -> dict:
        """The constructor arguments (and ``arch``), for saving with the weights."""
        return {"arch": self.arch, "dim": self.dim, "channels": self.channels,
                "hidden": self.hidden, "coarse_size": self.coarse_size}

    # -- the hierarchy of an operator -----------------------------------------------------
    def hierarchy(self, operator: Any, dtype: Any = torch.float32, device: Any = "cpu"):
        """The :class:`~lrsolve.multigrid.transfer.TorchHierarchy` of ``operator`` (a
        grid operator, or an already built ``TorchHierarchy``) for this dtype and
        device, with the smoothers' diagonal feature; built once per operator and
        cached (the last 4 operators; a cached hierarchy holds its operator's data)."""
        from ..multigrid.transfer import TorchHierarchy
        if isinstance(operator, TorchHierarchy):
            H = operator
            if not hasattr(H, "net_levels"):
                _add_features(H)
            return H
        key = (id(operator), str(dtype), str(device))
        hit = self._hierarchies.get(key)
        if hit is not None and hit[0]() is operator:
            return hit[1]
        from ..multigrid import GMG
        from ..operators.grid import as_grid_operator
        op = as_grid_operator(operator)
        if op.dim != self.dim:
            raise ValueError(f"model was built for {self.dim}D grids but the operator has a "
                             f"{op.dim}D grid {op.grid_shape}; use a {op.dim}D model")
        # Built outside inference mode, so a model first used in a solve can still train.
        with torch.inference_mode(False), torch.no_grad():
            # the hierarchy is built from a host copy: GMG on a torch/CuPy operator would
            # also put every level on the device, next to TorchHierarchy's own copy
            host = op if op.backend == "numpy" else op.to("numpy")
            H = TorchHierarchy(GMG(host, coarse_size=self.coarse_size), dtype=dtype,
                               device=device)
            _add_features(H)
        try:
            ref = weakref.ref(operator)
        except TypeError:  # pragma: no cover - operators are plain objects
            ref = (lambda o=operator: o)
        if len(self._hierarchies) >= 4:
            self._hierarchies.pop(next(iter(self._hierarchies)))
        self._hierarchies[key] = (ref, H)
        return H

    def _default_operator(self, grid_shape: tuple):
        op = self._boxes.get(tuple(grid_shape))
        if op is None:
            from ..operators.grid import GridOperator
            op = self._boxes[tuple(grid_shape)] = GridOperator(tuple(grid_shape))
        return op

    def depth_for(self, operator: Any) -> int:
        """Levels of the hierarchy on ``operator`` (the coarsest one solved exactly)."""
        return self.hierarchy(operator).depth

    # -- the cycle ------------------------------------------------------------------------
    def _cycle(self, H, l: int, r):
        if l == H.depth - 1:
            return H.coarse_solve(r) * H.net_levels[l]["active"]
        level = H.net_levels[l]
        e = self.pre(r, level)
        e = e + H.prolong(l, self._cycle(H, l + 1, H.restrict(l, H.residual(l, r, e))))
        return e + self.post(H.residual(l, r, e), level)

    def forward(self, r, operator: Any = None):
        if r.ndim != self.dim + 2 or r.shape[1] != 1:
            raise ValueError(f"input must have shape (batch, 1, *grid) with {self.dim} grid axes, "
                             f"got {tuple(r.shape)}")
        grid = tuple(r.shape[2:])
        if operator is None:
            operator = self._default_operator(grid)
        H = self.hierarchy(operator, r.dtype, r.device)
        if tuple(H.grid_shapes[0]) != grid:
            raise ValueError(f"input grid {grid} does not match the operator's grid "
                             f"{H.grid_shapes[0]}")
        k = r.shape[0]
        x = r.reshape((k,) + H.shape3(0)) * H.net_levels[0]["active"]
        return self._cycle(H, 0, x).reshape(r.shape)


def _add_features(H) -> None:
    """Per level: the user-dimension grid, the active mask, ``D^{-1}`` and the relative
    diagonal feature of ``_Smoother`` (as tensors on the hierarchy's device)."""
    levels = []
    for l, data in enumerate(H.levels):
        active = data["active"]
        diag = data["diag"]
        on = active > 0
        ref = torch.median(diag[on]) if bool(on.any()) else torch.ones((), dtype=diag.dtype)
        feature = (diag / ref * active).clamp(max=4.0)
        levels.append({"grid": tuple(H.grid_shapes[l]), "active": active[None],
                       "inv_diag": data["inv_diag"][None], "feature": feature[None]})
    H.net_levels = levels


def build_network(config: dict) -> nn.Module:
    """A network from a saved ``config()``: :class:`VCycleNet` for ``arch="vcycle"``, else
    :class:`DCDMNet`."""
    config = dict(config)
    arch = config.pop("arch", "unet")
    if arch == "vcycle":
        if "coarsest" in config:
            raise ValueError("this file holds the former VCycleNet, whose unit-square stencil "
                             "and transfers were built in (lrsolve before the GMG hierarchy); "
                             "it no longer loads: retrain with lr.dcdm.train(arch='vcycle')")
        return VCycleNet(**config)
    if arch != "unet":
        raise ValueError(f"unknown DCDM network arch {arch!r}")
    return DCDMNet(**config)
