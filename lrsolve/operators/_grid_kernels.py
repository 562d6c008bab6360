"""Numba kernels of the grid operator ``-div(k grad u) + c u`` on a 3-D cell array.

Every grid (1-D, 2-D or 3-D) is stored as a 3-D array ``(n0, n1, n2)`` with leading
axes of length 1 for lower dimensions, so one set of kernels serves all dimensions.
The operator is given by its *face weights* in one of two layouts:

* general: ``f0`` of shape ``(n0+1, n1, n2)`` holds the weight of the face below each
  cell along axis 0 (index ``i``) and above it (``i+1``), likewise ``f1``, ``f2``; ``dg``
  is the full diagonal ``(n0, n1, n2)`` (face sums, plus 1 on excluded cells, plus a
  shift);
* uniform (constant coefficient, no mask): ``f0``, ``f1``, ``f2`` are 1-D vectors of
  ``n_a + 1`` face weights along their axis and ``dg`` is the scalar shift; the
  diagonal is summed on the fly, so a constant coefficient costs no memory traffic.

A boundary face couples to a zero ghost value (Dirichlet) when its weight is positive
and is closed (Neumann) when it is zero.  The loops run over the ``n0 * n1`` grid lines
in parallel; each line's inner loop has no branches except at its two ends, so it
vectorises.  Both layouts compile from the same source through the small overloaded
accessors below.
"""
from __future__ import annotations

import numba as nb
from numba import types
from numba.extending import overload


# Threads of the parallel kernels.  One by default: every parallel kernel ends in a
# barrier, and on an oversubscribed machine a barrier waits for a descheduled thread
# (measured here, 2 cores under load: a 96^3 V-cycle took 1.1 s on 2 threads, 0.12 s
# on 1).  Raise it on a dedicated machine (GridOperator / GMG ``threads=``).
DEFAULT_THREADS = 1


class numba_threads:
    """Context manager: run numba parallel kernels on ``n`` threads (None: unchanged)."""

    def __init__(self, n):
        self.n = n
        self.saved = None

    def __enter__(self):
        if self.n is not None:
            import numba
            self.saved = numba.get_num_threads()
            n = max(1, min(int(self.n), numba.config.NUMBA_NUM_THREADS))
            if n != self.saved:
                numba.set_num_threads(n)
            else:
                self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import numba
            numba.set_num_threads(self.saved)
        return False


def face_line0(f, i, j):  # pragma: no cover - compiled through the overload
    raise NotImplementedError


def face_line1(f, i, j):  # pragma: no cover
    raise NotImplementedError


def face_line2(f, i, j):  # pragma: no cover
    raise NotImplementedError


def at(a, k):  # pragma: no cover
    raise NotImplementedError


def diag_at(dl, base, g, k):  # pragma: no cover
    raise NotImplementedError


def diag_line(dg, i, j):  # pragma: no cover
    raise NotImplementedError


@overload(diag_line, inline="always")
def _diag_line(dg, i, j):
    if isinstance(dg, types.Array):
        return lambda dg, i, j: dg[i, j]
    return lambda dg, i, j: dg


@overload(face_line0, inline="always")
def _fl0(f, i, j):
    if isinstance(f, types.Array) and f.ndim == 3:
        return lambda f, i, j: f[i, j]
    return lambda f, i, j: f[i]


@overload(face_line1, inline="always")
def _fl1(f, i, j):
    if isinstance(f, types.Array) and f.ndim == 3:
        return lambda f, i, j: f[i, j]
    return lambda f, i, j: f[j]


@overload(face_line2, inline="always")
def _fl2(f, i, j):
    if isinstance(f, types.Array) and f.ndim == 3:
        return lambda f, i, j: f[i, j]
    return lambda f, i, j: f


@overload(at, inline="always")
def _at(a, k):
    if isinstance(a, types.Array):
        return lambda a, k: a[k]
    return lambda a, k: a


@overload(diag_at, inline="always")
def _diag_at(dl, base, g, k):
    if isinstance(dl, types.Array):
        return lambda dl, base, g, k: dl[k]
    return lambda dl, base, g, k: base + g[k] + g[k + 1] + dl


@nb.njit(inline="always")
def line(f0, f1, f2, dg, i, j, n0, n1):
    """Face data of grid line (i, j): the four side weights (0 where the neighbour is
    outside the grid), the faces along the line, the diagonal line and the uniform
    diagonal base."""
    a0 = face_line0(f0, i, j)
    b0 = face_line0(f0, i + 1, j)
    a1 = face_line1(f1, i, j)
    b1 = face_line1(f1, i, j + 1)
    g = face_line2(f2, i, j)
    dl = diag_line(dg, i, j)
    ea = 1.0 if i > 0 else 0.0
    eb = 1.0 if i < n0 - 1 else 0.0
    ec = 1.0 if j > 0 else 0.0
    ed = 1.0 if j < n1 - 1 else 0.0
    return a0, b0, a1, b1, g, dl, ea, eb, ec, ed


@nb.njit(inline="always")
def rows(u, i, j, n0, n1):
    um = u[i - 1, j] if i > 0 else u[i, j]
    up = u[i + 1, j] if i < n0 - 1 else u[i, j]
    vm = u[i, j - 1] if j > 0 else u[i, j]
    vp = u[i, j + 1] if j < n1 - 1 else u[i, j]
    return um, up, vm, vp


@nb.njit(inline="always")
def apply_at(c, um, up, vm, vp, a0, b0, a1, b1, g, dl, ea, eb, ec, ed, k, n2):
    """(diagonal, A u) at cell k of a line."""
    w0 = at(a0, k)
    w1 = at(b0, k)
    w2 = at(a1, k)
    w3 = at(b1, k)
    d = diag_at(dl, w0 + w1 + w2 + w3, g, k)
    s = d * c[k] - ea * w0 * um[k] - eb * w1 * up[k] - ec * w2 * vm[k] - ed * w3 * vp[k]
    if k > 0:
        s -= g[k] * c[k - 1]
    if k < n2 - 1:
        s -= g[k + 1] * c[k + 1]
    return d, s


@nb.njit(parallel=True, cache=True)
def matvec(u, out, f0, f1, f2, dg):
    n0, n1, n2 = u.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        um, up, vm, vp = rows(u, i, j, n0, n1)
        c = u[i, j]
        o = out[i, j]
        for k in range(n2):
            d, s = apply_at(c, um, up, vm, vp, a0, b0, a1, b1, g, dl, ea, eb, ec, ed, k, n2)
            o[k] = s


@nb.njit(parallel=True, cache=True)
def residual(u, b, out, f0, f1, f2, dg):
    """``out = b - A u``."""
    n0, n1, n2 = u.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        um, up, vm, vp = rows(u, i, j, n0, n1)
        c = u[i, j]
        bl = b[i, j]
        o = out[i, j]
        for k in range(n2):
            d, s = apply_at(c, um, up, vm, vp, a0, b0, a1, b1, g, dl, ea, eb, ec, ed, k, n2)
            o[k] = bl[k] - s


@nb.njit(parallel=True, cache=True)
def scaled_residual(u, b, out, f0, f1, f2, dg, cf):
    """``out = cf * D^{-1} (b - A u)``: the first step of a polynomial smoother."""
    n0, n1, n2 = u.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        um, up, vm, vp = rows(u, i, j, n0, n1)
        c = u[i, j]
        bl = b[i, j]
        o = out[i, j]
        for k in range(n2):
            d, s = apply_at(c, um, up, vm, vp, a0, b0, a1, b1, g, dl, ea, eb, ec, ed, k, n2)
            o[k] = cf * (bl[k] - s) / d


@nb.njit(parallel=True, cache=True)
def scaled_rhs(b, out, f0, f1, f2, dg, cf):
    """``out = cf * D^{-1} b`` (the first smoother step from a zero guess)."""
    n0, n1, n2 = b.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        bl = b[i, j]
        o = out[i, j]
        for k in range(n2):
            d = diag_at(dl, at(a0, k) + at(b0, k) + at(a1, k) + at(b1, k), g, k)
            o[k] = cf * bl[k] / d


@nb.njit(parallel=True, cache=True)
def poly_step(x, d, b, x_new, d_new, f0, f1, f2, dg, a, cf):
    """One Chebyshev / Jacobi smoother step in one pass:
    ``u = x + d``; ``d_new = a d + cf D^{-1} (b - A u)``; ``x_new = u``."""
    n0, n1, n2 = x.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        xm, xp_, ym, yp = rows(x, i, j, n0, n1)
        dm, dp, em, ep = rows(d, i, j, n0, n1)
        xc = x[i, j]
        dc = d[i, j]
        bl = b[i, j]
        xo = x_new[i, j]
        do = d_new[i, j]
        for k in range(n2):
            w0 = at(a0, k)
            w1 = at(b0, k)
            w2 = at(a1, k)
            w3 = at(b1, k)
            dd = diag_at(dl, w0 + w1 + w2 + w3, g, k)
            uc = xc[k] + dc[k]
            s = (dd * uc - ea * w0 * (xm[k] + dm[k]) - eb * w1 * (xp_[k] + dp[k])
                 - ec * w2 * (ym[k] + em[k]) - ed * w3 * (yp[k] + ep[k]))
            if k > 0:
                s -= g[k] * (xc[k - 1] + dc[k - 1])
            if k < n2 - 1:
                s -= g[k + 1] * (xc[k + 1] + dc[k + 1])
            xo[k] = uc
            do[k] = a * dc[k] + cf * (bl[k] - s) / dd


@nb.njit(parallel=True, cache=True)
def poly_step_zero(d, b, d_new, f0, f1, f2, dg, a, cf):
    """``poly_step`` from a zero iterate (``u = d``): ``d_new = a d + cf D^{-1} (b - A d)``;
    the new iterate is ``d`` itself, so nothing else is written."""
    n0, n1, n2 = d.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        um, up, vm, vp = rows(d, i, j, n0, n1)
        c = d[i, j]
        bl = b[i, j]
        o = d_new[i, j]
        for k in range(n2):
            dd, s = apply_at(c, um, up, vm, vp, a0, b0, a1, b1, g, dl, ea, eb, ec, ed, k, n2)
            o[k] = a * c[k] + cf * (bl[k] - s) / dd


@nb.njit(parallel=True, cache=True)
def poly_step_out(x, d, b, out, f0, f1, f2, dg, a, cf):
    """The last ``poly_step`` of a smoother with the final update fused in:
    ``out = (x + d) + a d + cf D^{-1} (b - A (x + d))``."""
    n0, n1, n2 = x.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        xm, xp_, ym, yp = rows(x, i, j, n0, n1)
        dm, dp, em, ep = rows(d, i, j, n0, n1)
        xc = x[i, j]
        dc = d[i, j]
        bl = b[i, j]
        o = out[i, j]
        for k in range(n2):
            w0 = at(a0, k)
            w1 = at(b0, k)
            w2 = at(a1, k)
            w3 = at(b1, k)
            dd = diag_at(dl, w0 + w1 + w2 + w3, g, k)
            uc = xc[k] + dc[k]
            s = (dd * uc - ea * w0 * (xm[k] + dm[k]) - eb * w1 * (xp_[k] + dp[k])
                 - ec * w2 * (ym[k] + em[k]) - ed * w3 * (yp[k] + ep[k]))
            if k > 0:
                s -= g[k] * (xc[k - 1] + dc[k - 1])
            if k < n2 - 1:
                s -= g[k + 1] * (xc[k + 1] + dc[k + 1])
            o[k] = uc + (a * dc[k] + cf * (bl[k] - s) / dd)


@nb.njit(parallel=True, cache=True)
def step_residual(x, d, b, x_new, r, f0, f1, f2, dg):
    """``u = x + d``; ``r = b - A u``; ``x_new = u`` in one pass (the end of a
    polynomial smoother fused with the residual that follows it)."""
    n0, n1, n2 = x.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        xm, xp_, ym, yp = rows(x, i, j, n0, n1)
        dm, dp, em, ep = rows(d, i, j, n0, n1)
        xc = x[i, j]
        dc = d[i, j]
        bl = b[i, j]
        xo = x_new[i, j]
        ro = r[i, j]
        for k in range(n2):
            w0 = at(a0, k)
            w1 = at(b0, k)
            w2 = at(a1, k)
            w3 = at(b1, k)
            dd = diag_at(dl, w0 + w1 + w2 + w3, g, k)
            uc = xc[k] + dc[k]
            s = (dd * uc - ea * w0 * (xm[k] + dm[k]) - eb * w1 * (xp_[k] + dp[k])
                 - ec * w2 * (ym[k] + em[k]) - ed * w3 * (yp[k] + ep[k]))
            if k > 0:
                s -= g[k] * (xc[k - 1] + dc[k - 1])
            if k < n2 - 1:
                s -= g[k + 1] * (xc[k + 1] + dc[k + 1])
            xo[k] = uc
            ro[k] = bl[k] - s


@nb.njit(parallel=True, cache=True)
def add_into(x, d):
    n0, n1, n2 = x.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        xl = x[i, j]
        dl = d[i, j]
        for k in range(n2):
            xl[k] += dl[k]


@nb.njit(parallel=True, cache=True)
def gauss_seidel_color(x, b, f0, f1, f2, dg, color):
    """One red (color 0) or black (color 1) Gauss-Seidel half sweep, in place."""
    n0, n1, n2 = x.shape
    for ln in nb.prange(n0 * n1):
        i = ln // n1
        j = ln - i * n1
        a0, b0, a1, b1, g, dl, ea, eb, ec, ed = line(f0, f1, f2, dg, i, j, n0, n1)
        um, up, vm, vp = rows(x, i, j, n0, n1)
        c = x[i, j]
        bl = b[i, j]
        for k in range((color + i + j) % 2, n2, 2):
            d, s = apply_at(c, um, up, vm, vp, a0, b0, a1, b1, g, dl, ea, eb, ec, ed, k, n2)
            # s = d c_k - off  =>  c_k <- (b_k + off) / d
            c[k] = (bl[k] + (d * c[k] - s)) / d


_KERNELS = dict(poly_step_zero=poly_step_zero, poly_step_out=poly_step_out,
                matvec=matvec, residual=residual, scaled_residual=scaled_residual,
                scaled_rhs=scaled_rhs, poly_step=poly_step, add_into=add_into,
                step_residual=step_residual,
                gauss_seidel_color=gauss_seidel_color)


def kernels() -> dict:
    """The compiled kernels (compiled on first call and cached on disk)."""
    return _KERNELS
