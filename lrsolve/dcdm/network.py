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

:class:`VCycleNet` (the default shipped model) is the multilevel idea done consistently:
learned, shared smoothers inside a multigrid V-cycle whose coarse corrections carry the
physical factor 4 per coarsening and whose smoothers normalise their input per level.
"""
from __future__ import annotations

import math
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
# A physics-consistent multilevel network: a V-cycle whose smoother is learned.
# ---------------------------------------------------------------------------------------

def _unit_stencil(dim: int, dtype, device):
    """The integer Dirichlet Laplacian stencil (diagonal ``2 dim``, neighbours -1) as a conv kernel."""
    k = torch.zeros((1, 1) + (3,) * dim, dtype=dtype, device=device)
    centre = (0, 0) + (1,) * dim
    k[centre] = 2.0 * dim
    for axis in range(dim):
        for side in (0, 2):
            idx = [0, 0] + [1] * dim
            idx[2 + axis] = side
            k[tuple(idx)] = -1.0
    return k


class _Smoother(nn.Module):
    """``e = s (omega x / (2 dim) + g(x))`` with ``x = r / s`` and ``s`` the RMS of ``r`` per sample.

    A damped-Jacobi step plus a small CNN ``g`` (input conv, ``hidden`` residual convs,
    linear output conv initialised to zero, so an untrained smoother is damped Jacobi).
    Dividing by the per-sample RMS and multiplying back makes the map positively
    homogeneous (``S(c r) = c S(r)`` for ``c > 0``): it sees inputs of the same size on
    every level and every grid, which a ReLU network with biases needs.
    """

    def __init__(self, dim: int, channels: int, hidden: int, omega: float = 0.8):
        super().__init__()
        self.dim = dim
        self.first = _conv(dim, 1, channels)
        self.hidden = nn.ModuleList([_conv(dim, channels, channels) for _ in range(hidden)])
        self.last = _conv(dim, channels, 1)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)
        self.omega = nn.Parameter(torch.tensor(float(omega)))

    def forward(self, r):
        axes = tuple(range(1, r.ndim))
        s = torch.sqrt(torch.mean(r * r, dim=axes, keepdim=True)).clamp_min(1e-30)
        x = r / s
        h = F.relu(self.first(x))
        for conv in self.hidden:
            h = F.relu(conv(h)) + h
        return s * (self.omega * x / (2.0 * self.dim) + self.last(h))


class VCycleNet(nn.Module):
    """A DCDM network shaped as a multigrid V-cycle with learned, shared smoothers.

    On each level ``l`` (grid coarsened ``2^l`` times by averaging): a learned pre-smoother
    ``e = S_pre(r)``, the residual ``r - A_l e`` with the integer 5-point (7-point) stencil
    ``A_l`` of that level, restriction by 2 x 2 averaging, the coarse correction multiplied
    by 4 and interpolated back (bilinear), then a learned post-smoother on the new residual.
    The coarsest grid (at most ``coarsest`` points per axis) is solved exactly.

    Why the factor 4: the integer stencil is ``h^2`` times the Laplacian, so the coarse
    system with ``H = 2h`` and the averaged residual needs ``H^2 / h^2 = 4`` times the
    correction; over ``l`` levels, ``4^l``.  With the per-sample RMS normalisation inside
    each smoother the whole map is positively homogeneous, and every level computes the
    same function of its (normalised) residual - so the number of levels can grow with the
    grid (``log2(n / coarsest)``) while one set of weights, trained on 64 x 64, serves all.

    Parameters
    ----------
    dim : {2, 3}
    channels : int
        Feature channels of the smoothers' CNN.
    hidden : int
        Residual 3x3 convolutions in each smoother.
    coarsest : int
        Coarsen until the grid has at most this many points along its shortest axis.  (So
        a very elongated grid keeps a long coarsest grid, whose dense inverse is cached
        per shape: fine for square-ish grids, costly for aspect ratios in the hundreds.)

    Examples
    --------
    >>> import torch
    >>> net = VCycleNet(dim=2)
    >>> net.depth_for((64, 64)), net.depth_for((256, 256))
    (4, 6)
    >>> net(torch.randn(2, 1, 30, 17)).shape
    torch.Size([2, 1, 30, 17])
    """

    arch = "vcycle"

    def __init__(self, dim: int = 2, channels: int = 16, hidden: int = 2, coarsest: int = 8):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        for name, val, low in (("channels", channels, 1), ("hidden", hidden, 0),
                               ("coarsest", coarsest, 2)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name} must be an int >= {low}, got {val!r}")
        self.dim, self.channels, self.hidden, self.coarsest = dim, channels, hidden, coarsest
        self.pre = _Smoother(dim, channels, hidden)
        self.post = _Smoother(dim, channels, hidden)
        self._constants: dict = {}

    def config(self) -> dict:
        """The constructor arguments (and ``arch``), for saving with the weights."""
        return {"arch": self.arch, "dim": self.dim, "channels": self.channels,
                "hidden": self.hidden, "coarsest": self.coarsest}

    def depth_for(self, grid_shape) -> int:
        """Levels used on a grid of this shape (the coarsest one solved exactly)."""
        shape = [int(s) for s in grid_shape]
        depth = 1
        while min(shape) > self.coarsest:
            shape = [(s + 1) // 2 for s in shape]
            depth += 1
        return depth

    def _cached(self, key, build):
        """A constant tensor (stencil kernel, coarse inverse) built once per key.  Built
        outside inference mode, so a model first used in a solve can still be trained."""
        value = self._constants.get(key)
        if value is None:
            with torch.inference_mode(False), torch.no_grad():
                value = build()
            self._constants[key] = value
        return value

    def _stencil(self, e):
        conv = F.conv2d if self.dim == 2 else F.conv3d
        kernel = self._cached(("stencil", e.dtype, str(e.device)),
                              lambda: _unit_stencil(self.dim, e.dtype, e.device))
        return conv(e, kernel, padding=1)

    def _coarse_solve(self, r):
        shape = tuple(r.shape[2:])

        def build():
            m = int(math.prod(shape))
            eye = torch.eye(m, dtype=torch.float64).reshape((m, 1) + shape)
            dense = self._stencil(eye)
            return torch.linalg.inv(dense.reshape(m, m).T).to(dtype=r.dtype, device=r.device)

        inv = self._cached((shape, r.dtype, str(r.device)), build)
        flat = r.reshape(r.shape[0], -1)
        return (flat @ inv.T).reshape(r.shape)

    def _cycle(self, r):
        if min(r.shape[2:]) <= self.coarsest:
            return self._coarse_solve(r)
        pool = F.avg_pool2d if self.dim == 2 else F.avg_pool3d
        e = self.pre(r)
        coarse = self._cycle(pool(r - self._stencil(e), 2, ceil_mode=True))
        mode = "bilinear" if self.dim == 2 else "trilinear"
        e = e + 4.0 * F.interpolate(coarse, size=r.shape[2:], mode=mode, align_corners=False)
        return e + self.post(r - self._stencil(e))

    def forward(self, r):
        if r.ndim != self.dim + 2 or r.shape[1] != 1:
            raise ValueError(f"input must have shape (batch, 1, *grid) with {self.dim} grid axes, "
                             f"got {tuple(r.shape)}")
        return self._cycle(r)


def build_network(config: dict) -> nn.Module:
    """A network from a saved ``config()``: :class:`VCycleNet` for ``arch="vcycle"``, else
    :class:`DCDMNet`."""
    config = dict(config)
    arch = config.pop("arch", "unet")
    if arch == "vcycle":
        return VCycleNet(**config)
    if arch != "unet":
        raise ValueError(f"unknown DCDM network arch {arch!r}")
    return DCDMNet(**config)
