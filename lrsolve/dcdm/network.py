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
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["DCDMNet"]


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
