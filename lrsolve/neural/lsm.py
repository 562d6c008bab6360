"""The Latent Spectral Model (Wu, Hu, Luo, Wang, Long, ICML 2023, arXiv 2301.12664) in torch.

Layout (paper Fig. 2 and the authors' ``LSM_2D``), for a ``(B, C_in, n, n)`` input:

1. append the two coordinate channels and lift pointwise to ``width`` channels;
2. zero-pad the right/bottom so every level splits into whole patches;
3. a U-Net encoder of ``levels`` scales (double 3x3 conv + BatchNorm + ReLU, max-pool
   between scales), widths ``width * 2^k`` (the deepest halved, as with bilinear
   upsampling);
4. at every scale a *patchified neural spectral block*: the feature map is cut into
   ``patch_size x patch_size`` patches; in each patch, ``num_tokens`` learned latent tokens
   attend to the patch's points (multi-head, ``heads``) - the projection into latent
   space; the tokens pass through the neural spectral block, a learned expansion on the
   trigonometric basis ``sin(pi k t / K), cos(pi k t / K)``, ``k < K = num_basis``, applied
   elementwise per channel, plus a residual; the points then attend back to the tokens
   (the inverse projection), with a residual;
5. the U-Net decoder (bilinear upsampling, skip connections from the spectral blocks);
6. crop the padding and project pointwise (``width -> 128 -> C_out`` with GELU).

Differences from the reference: channels-first input/output ``(B, C, n, n)``; no
hard-coded ``.cuda()`` (the basis frequencies are a buffer, so ``.to(device)`` moves
them); the number of U-Net levels, the heads and the padding are parameters (padding is
chosen automatically); everything else (widths, initialisation scales, attention without
a ``1/sqrt(d)`` scale, as in the reference) follows the paper's code.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LSM", "NeuralSpectralBlock", "auto_levels"]


class _DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid = mid_channels or out_channels
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.body(x)


class _Down(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.MaxPool2d(2), _DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.body(x)


class _Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = _DoubleConv(in_channels, out_channels, in_channels // 2)

    def forward(self, coarse, skip):
        coarse = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat([skip, coarse], dim=1))


class NeuralSpectralBlock(nn.Module):
    """Patchify, attend into latent tokens, spectral transition, attend back, de-patchify.

    Parameters
    ----------
    width : int
        Channels ``C`` of the feature map (divisible by ``heads``).
    num_basis : int
        ``K``: frequencies ``0, 1/K, ..., (K-1)/K`` (times pi) of the sin/cos basis.
    patch_size : int
        Side of the square patches; must divide the map's height and width.
    num_tokens : int
        Latent tokens per patch.
    heads : int
        Attention heads.
    """

    def __init__(self, width: int, num_basis: int = 12, patch_size: int = 4, num_tokens: int = 4,
                 heads: int = 8):
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.width, self.patch_size, self.num_tokens, self.heads = width, patch_size, num_tokens, heads
        self.register_buffer("frequencies", torch.arange(num_basis, dtype=torch.float32) / num_basis,
                             persistent=False)
        # Initial scales as in the reference: uniform on [0, 1/width).
        self.basis_weights = nn.Parameter(torch.rand(width, 2 * num_basis) / width)
        self.latent = nn.Parameter(torch.rand(heads, num_tokens, width // heads) / width)
        self.to_key_value = nn.Conv2d(width, 2 * width, kernel_size=1)
        self.to_query = nn.Conv2d(width, width, kernel_size=1)

    @staticmethod
    def _attend(q, k, v):
        # (..., L, d) x (..., S, d) -> (..., L, d); unscaled dot products, as in the paper's code
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v

    def forward(self, x):
        B, C, H, W = x.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"feature map {H}x{W} is not divisible into {p}x{p} patches")
        heads, d, T = self.heads, C // self.heads, self.num_tokens
        # patchify: (B, C, H, W) -> (B * H/p * W/p, C, p, p)
        patches = (x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
                   .reshape(-1, C, p, p))
        P, L = patches.shape[0], p * p
        # (1) projection into latent tokens: tokens are queries, the patch's points keys/values
        kv = self.to_key_value(patches).reshape(P, 2, heads, d, L).transpose(-1, -2)
        tokens = self.latent.unsqueeze(0).expand(P, -1, -1, -1)
        tokens = tokens + self._attend(tokens, kv[:, 0], kv[:, 1])        # (P, heads, T, d)
        tokens = tokens.transpose(-1, -2).reshape(P, C, T)
        # (2) neural spectral block: per-channel expansion on the learned trig basis
        angle = math.pi * tokens.unsqueeze(-1) * self.frequencies
        basis = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)  # (P, C, T, 2K)
        tokens = tokens + torch.einsum("pctk,ck->pct", basis, self.basis_weights)
        # (3) inverse projection: points are queries, tokens keys and values
        tokens = tokens.reshape(P, heads, d, T).transpose(-1, -2)          # (P, heads, T, d)
        q = self.to_query(patches).reshape(P, heads, d, L).transpose(-1, -2)
        out = self._attend(q, tokens, tokens).transpose(-1, -2).reshape(P, C, p, p) + patches
        # de-patchify
        return (out.reshape(B, H // p, W // p, C, p, p).permute(0, 3, 1, 4, 2, 5)
                .reshape(B, C, H, W))


def auto_levels(grid: int, patch_size: int, max_levels: int = 5) -> int:
    """U-Net levels for an input of size ``grid``: the deepest that pads it little.

    The input is padded up to a multiple of ``patch_size * 2^(levels-1)``.  The deepest
    ``levels`` in ``2..max_levels`` whose multiple is at most ``grid`` and whose padded side
    is at most ``1.2 grid`` (area at most 1.44x) is chosen; when none qualifies, the one
    that pads least.

    Examples
    --------
    >>> auto_levels(16, 4), auto_levels(64, 4), auto_levels(85, 6), auto_levels(85, 4)
    (3, 5, 4, 4)
    """
    def padded(levels):
        m = patch_size * 2 ** (levels - 1)
        return -(-grid // m) * m

    for levels in range(max_levels, 1, -1):
        if patch_size * 2 ** (levels - 1) <= grid and padded(levels) <= 1.2 * grid:
            return levels
    return min(range(2, max_levels + 1), key=lambda lv: (padded(lv), -lv))


class LSM(nn.Module):
    """Latent Spectral Model for 2D fields: ``(B, in_channels, n, n) -> (B, out_channels, n, n)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels (1 and 1 for Darcy: coefficient -> pressure).
    width : int
        Channels at the finest U-Net level (the reference's Darcy model: 64).
    levels : int or "auto"
        U-Net scales (the reference: 5); widths ``width, 2 width, ..., 2^(levels-2) width``
        and ``2^(levels-2) width`` at the deepest scale.  ``"auto"`` (with ``grid``) picks
        the levels from the input size: among 2..5 levels whose padding multiple
        ``patch_size * 2^(levels-1)`` fits in ``grid``, the one that pads least (the
        deepest on ties), so the compute follows the data - a 16 x 16 input with
        ``patch_size=4`` gets 3 levels (no padding) instead of being padded to 64 x 64.
    grid : int, optional
        The input size ``n`` the model will see; required by ``levels="auto"``.
    patch_size : int
        Side of the patches of every spectral block (the reference: 6 at 85x85, padded to 96).
    num_tokens : int
        Latent tokens per patch (the reference: 4).
    num_basis : int
        Trigonometric basis size (the reference: 12).
    heads : int
        Attention heads (the reference: 8); must divide ``width``.
    head_width : int
        Hidden width of the pointwise output projection (the reference: 128).

    Notes
    -----
    Inputs are zero-padded at the right/bottom to the next multiple of
    ``patch_size * 2^(levels-1)`` (so every level splits into whole patches) and the output
    is cropped back: the module accepts any ``n``, but a *trained* model is only
    meaningful at the resolution it was trained on; :class:`~lrsolve.neural.FittedOperator`
    enforces that.  The coordinate channels span ``[0, 1]`` whatever ``n``.

    Examples
    --------
    >>> import torch
    >>> from lrsolve.neural import LSM
    >>> model = LSM(width=8, levels=3, patch_size=2, heads=4)
    >>> model(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 32, levels=5,
                 patch_size: int = 4, num_tokens: int = 4, num_basis: int = 12, heads: int = 8,
                 head_width: int = 128, grid: int | None = None):
        super().__init__()
        if grid is not None and (isinstance(grid, bool) or not isinstance(grid, int) or grid < 1):
            raise ValueError(f"grid must be a positive int (the input size n) or None, got "
                             f"{grid!r}")
        if levels == "auto":
            if grid is None:
                raise ValueError("levels='auto' needs grid= (the input size n) to choose from")
            if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
                raise ValueError(f"patch_size must be an int >= 1, got {patch_size!r}")
            levels = auto_levels(grid, patch_size)
        for name, value, lowest in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                    ("width", width, 1), ("levels", levels, 2),
                                    ("patch_size", patch_size, 1), ("num_tokens", num_tokens, 1),
                                    ("num_basis", num_basis, 1), ("heads", heads, 1),
                                    ("head_width", head_width, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{name} must be an int >= {lowest}, got {value!r}")
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.config = dict(in_channels=in_channels, out_channels=out_channels, width=width,
                           levels=levels, patch_size=patch_size, num_tokens=num_tokens,
                           num_basis=num_basis, heads=heads, head_width=head_width)
        if grid is not None:
            self.config["grid"] = grid
        self._warned_padding = False
        self.in_channels, self.out_channels = in_channels, out_channels
        self.levels, self.patch_size = levels, patch_size
        # Widths per level; the deepest equals the one above it (bilinear U-Net, factor 2).
        widths = [width * 2 ** k for k in range(levels - 1)] + [width * 2 ** (levels - 2)]
        self.lift = nn.Linear(in_channels + 2, width)
        self.encoder_in = _DoubleConv(width, width)
        self.down = nn.ModuleList(_Down(widths[k - 1], widths[k]) for k in range(1, levels))
        self.spectral = nn.ModuleList(
            NeuralSpectralBlock(w, num_basis, patch_size, num_tokens, heads) for w in widths)
        # Up k joins the upsampled coarser map (widths[k] channels: the deepest level has
        # the width of the one above it, and up k+1 outputs widths[k]) with level k.
        self.up = nn.ModuleList(
            _Up(2 * widths[k], widths[k - 1] if k > 0 else width)
            for k in range(levels - 1))
        self.out_conv = nn.Conv2d(width, width, kernel_size=1)
        self.project = nn.Sequential(nn.Linear(width, head_width), nn.GELU(),
                                     nn.Linear(head_width, out_channels))

    @property
    def multiple(self) -> int:
        """Padded sizes are multiples of this: ``patch_size * 2^(levels-1)``."""
        return self.patch_size * 2 ** (self.levels - 1)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (batch, {self.in_channels}, n1, n2), "
                             f"got {tuple(x.shape)}")
        B, _, H, W = x.shape
        grid_h = torch.linspace(0, 1, H, device=x.device, dtype=x.dtype)
        grid_w = torch.linspace(0, 1, W, device=x.device, dtype=x.dtype)
        gy, gx = torch.meshgrid(grid_h, grid_w, indexing="ij")
        grid = torch.stack([gy, gx]).expand(B, -1, -1, -1)
        z = self.lift(torch.cat([x, grid], dim=1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        m = self.multiple
        pad_h, pad_w = (-H) % m, (-W) % m
        if not self._warned_padding and (H + pad_h) * (W + pad_w) > 2 * H * W:
            self._warned_padding = True
            warnings.warn(f"LSM pads {H}x{W} inputs to {H + pad_h}x{W + pad_w} (levels="
                          f"{self.levels}, patch_size={self.patch_size}): every step costs "
                          f"what {H + pad_h}x{W + pad_w} does; build the model with "
                          f"levels='auto', grid={max(H, W)} (or fewer levels)", RuntimeWarning,
                          stacklevel=2)
        if pad_h or pad_w:
            z = F.pad(z, [0, pad_w, 0, pad_h])
        features = [self.encoder_in(z)]
        for down in self.down:
            features.append(down(features[-1]))
        skips = [block(f) for block, f in zip(self.spectral, features)]
        z = skips[-1]
        for k in range(self.levels - 2, -1, -1):
            z = self.up[k](z, skips[k])
        z = self.out_conv(z)[..., :H, :W]
        return self.project(z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
