"""Chebyshev interpolation on boxes in one to three dimensions.

The building blocks of :class:`lrsolve.tensors.ChebTucker` and a small full-tensor
interpolant, :class:`Chebyshev`:

* :func:`chebyshev_points` - points of the second kind ``cos(pi j / n)`` (Chebfun's
  ``chebpts``), returned in ascending order and mapped to an interval;
* :func:`vals2coeffs` / :func:`coeffs2vals` - values at those points <-> coefficients of
  ``T_0 .. T_n`` by the type-I discrete cosine transform along any axes (``scipy.fft``
  for NumPy, an FFT of the even extension for torch / CuPy);
* :func:`chebvander` (matrix evaluation) and :func:`clenshaw` (recurrence evaluation)
  at arbitrary points;
* :func:`chebder`, :func:`chebint_definite` - derivative and definite integral;
* :func:`chop_degree`, :func:`decay_rate`, :func:`predict_degree` - the degree needed for
  a tolerance, read off the decay of the coefficients.

Degrees, not point counts, are the unit everywhere: degree ``n`` uses ``n + 1`` points
(the reference code's ``m = 129`` points is degree 128).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .. import backend as B

__all__ = [
    "chebyshev_points", "vals2coeffs", "coeffs2vals", "chebvander", "clenshaw",
    "chebder", "chebint_definite", "integral_weights", "chop_degree", "decay_rate",
    "predict_degree", "check_domain", "to_reference", "Chebyshev",
]


def check_domain(domain, dim: int | None = None, name: str = "domain") -> np.ndarray:
    """Validate a box ``[(a_1, b_1), ..., (a_d, b_d)]`` and return it as a ``(d, 2)`` array.

    Raises ``ValueError`` (naming ``name``) for a degenerate or reversed interval, a
    non-finite bound, or a dimension other than ``dim``.
    """
    try:
        box = np.asarray(domain, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a sequence of (low, high) pairs, got {domain!r}") from exc
    if box.ndim == 1 and box.shape == (2,):
        box = box[None, :]
    if box.ndim != 2 or box.shape[1] != 2 or box.shape[0] < 1:
        raise ValueError(f"{name} must have shape (d, 2): one (low, high) pair per axis, "
                         f"got shape {box.shape}")
    if dim is not None and box.shape[0] != dim:
        raise ValueError(f"{name} has {box.shape[0]} intervals, expected {dim}")
    if not np.all(np.isfinite(box)):
        raise ValueError(f"{name} has a non-finite bound: {box.tolist()}")
    width = box[:, 1] - box[:, 0]
    scale = np.maximum(np.abs(box).max(axis=1), 1.0)
    if np.any(width <= 1e-13 * scale):
        bad = int(np.argmax(width <= 1e-13 * scale))
        raise ValueError(f"{name} is degenerate on axis {bad}: interval {tuple(box[bad])} "
                         "must have high > low")
    return box


def chebyshev_points(degree: int, domain=(-1.0, 1.0)) -> np.ndarray:
    """The ``degree + 1`` Chebyshev points of the second kind on ``domain``, ascending.

    Parameters
    ----------
    degree : int
        Polynomial degree ``n >= 0``; the points are ``-cos(pi j / n)``, ``j = 0..n``
        (for ``n = 0`` the midpoint).
    domain : (float, float)
        Interval ``(a, b)`` the points are mapped to.

    Examples
    --------
    >>> chebyshev_points(2)
    array([-1.,  0.,  1.])
    """
    n = _check_degree(degree)
    box = check_domain([domain], 1)[0]
    if n == 0:
        x = np.zeros(1)
    else:
        # sin form is exactly antisymmetric, so the midpoint is exactly 0
        x = np.sin(np.pi * np.arange(-n, n + 1, 2) / (2 * n))
    return 0.5 * (box[0] + box[1]) + 0.5 * (box[1] - box[0]) * x


def _check_degree(degree, name: str = "degree") -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {degree!r}")
    if degree < 0:
        raise ValueError(f"{name} must be >= 0, got {degree}")
    return int(degree)


def _dct1(values, axis: int):
    """Unnormalised DCT-I along ``axis``: ``y_k = x_0 + (-1)^k x_n + 2 sum x_j cos(pi j k/n)``."""
    if isinstance(values, np.ndarray):
        import scipy.fft
        return scipy.fft.dct(values, type=1, axis=axis)
    xp = B.namespace(values)
    n = values.shape[axis] - 1
    # even extension [x_0 .. x_n, x_{n-1} .. x_1]; its real FFT is the DCT-I
    inner = xp.flip(_take(values, 1, n, axis, xp), axis=axis)
    ext = xp.concat([values, inner], axis=axis)
    return xp.real(xp.fft.rfft(ext, axis=axis))


def _take(values, start, stop, axis, xp):
    index = [slice(None)] * values.ndim
    index[axis] = slice(start, stop)
    return values[tuple(index)]


def vals2coeffs(values, axes: Sequence[int] | int | None = None):
    """Chebyshev coefficients from values at the ascending 2nd-kind points.

    Parameters
    ----------
    values : array
        Values on a tensor grid of :func:`chebyshev_points` (ascending along each axis).
        NumPy, torch or CuPy; the result is on the same backend.
    axes : int or sequence of int, optional
        Axes to transform (default: all).

    Returns
    -------
    coeffs : array
        ``coeffs[k0, k1, ...]`` multiplies ``T_k0(x0) T_k1(x1) ...``.

    Examples
    --------
    >>> x = chebyshev_points(4)
    >>> np.round(vals2coeffs(2 * x**2 - 1), 12) + 0.0   # T_2
    array([0., 0., 1., 0., 0.])
    """
    axes = _axes(values, axes)
    out = values
    for axis in axes:
        n = out.shape[axis] - 1
        if n == 0:
            continue
        if isinstance(out, np.ndarray):
            # in place after the one transform: these arrays can hold 1e7 numbers
            out = _dct1(np.flip(out, axis=axis), axis)
            out /= n
            edge = [slice(None)] * out.ndim
            for j in (0, n):
                edge[axis] = j
                out[tuple(edge)] *= 0.5
            continue
        xp = B.namespace(out)
        # the DCT-I formula is written for descending points cos(pi j / n)
        out = _dct1(xp.flip(out, axis=axis), axis) / n
        first = [slice(None)] * out.ndim
        last = [slice(None)] * out.ndim
        first[axis] = slice(0, 1)
        last[axis] = slice(n, n + 1)
        scale = xp.ones(n + 1, dtype=out.dtype, **_dev(out))
        scale[0] = 0.5
        scale[n] = 0.5
        shape = [1] * out.ndim
        shape[axis] = n + 1
        out = out * xp.reshape(scale, tuple(shape))
    return out


def coeffs2vals(coeffs, axes: Sequence[int] | int | None = None):
    """Values at the ascending 2nd-kind points from Chebyshev coefficients (inverse of
    :func:`vals2coeffs`).

    Examples
    --------
    >>> c = np.array([1.0, 2.0, 3.0])
    >>> np.allclose(vals2coeffs(coeffs2vals(c)), c)
    True
    """
    axes = _axes(coeffs, axes)
    out = coeffs
    for axis in axes:
        n = out.shape[axis] - 1
        if n == 0:
            continue
        xp = B.namespace(out)
        scale = xp.ones(n + 1, dtype=out.dtype, **_dev(out))
        scale[1:n] = 0.5
        shape = [1] * out.ndim
        shape[axis] = n + 1
        out = xp.flip(_dct1(out * xp.reshape(scale, tuple(shape)), axis), axis=axis)
    return out


def _dev(x):
    return {"device": x.device} if B.is_torch(x) else {}


def _axes(values, axes):
    ndim = values.ndim
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (int(axes),)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axes: axis {a} is out of range for an array of {ndim} dimensions")
        out.append(int(a) % ndim)
    return tuple(out)


def to_reference(x, interval):
    """Map ``x`` from ``interval = (a, b)`` to ``[-1, 1]``."""
    a, b = float(interval[0]), float(interval[1])
    return (2.0 * x - (a + b)) / (b - a)


def chebvander(x, degree: int, *, out=None):
    """Matrix evaluation: ``V[i, j] = T_j(x_i)`` for ``x`` in ``[-1, 1]``, shape ``(len(x), degree+1)``.

    Built by the three-term recurrence ``T_{j+1} = 2 x T_j - T_{j-1}`` (stable on
    ``[-1, 1]``), on the backend of ``x``.  ``V @ c`` evaluates a series; ``V @ F``
    evaluates several at once, which is how :class:`ChebTucker` evaluates its factors.

    Examples
    --------
    >>> chebvander(np.array([0.5]), 3)
    array([[ 1. ,  0.5, -0.5, -1. ]])
    """
    n = _check_degree(degree)
    xp = B.namespace(x)
    m = x.shape[0]
    # rows are contiguous in the (n+1, m) layout the recurrence writes; return its transpose
    V = xp.empty((n + 1, m), dtype=x.dtype, **_dev(x)) if out is None else out
    V[0, ...] = 1.0
    if n >= 1:
        V[1, ...] = x
    twox = 2.0 * x
    for j in range(2, n + 1):
        V[j, ...] = twox * V[j - 1, ...] - V[j - 2, ...]
    return V.T


def clenshaw(coeffs, x):
    """Evaluate ``sum_k coeffs[k] T_k(x)`` by Clenshaw's recurrence, ``x`` in ``[-1, 1]``.

    ``coeffs`` may have trailing dimensions (several series at once); the result has
    shape ``x.shape + coeffs.shape[1:]``.

    Examples
    --------
    >>> float(clenshaw(np.array([1.0, 0.0, 1.0]), np.array(0.5)))   # 1 + T_2(0.5)
    0.5
    """
    xp = B.namespace(coeffs, x)
    n = coeffs.shape[0] - 1
    x = xp.reshape(x, tuple(x.shape) + (1,) * (coeffs.ndim - 1))
    b1 = xp.zeros_like(x * coeffs[0])
    b2 = xp.zeros_like(b1)
    twox = 2.0 * x
    for k in range(n, 0, -1):
        b1, b2 = coeffs[k] + twox * b1 - b2, b1
    return coeffs[0] + x * b1 - b2


def chebder(coeffs, interval=(-1.0, 1.0), axis: int = 0):
    """Coefficients of the derivative of a Chebyshev series along ``axis``.

    Uses ``c'_{k-1} = c'_{k+1} + 2 k c_k`` (degree drops by one) and the chain rule for
    ``interval``.

    Examples
    --------
    >>> chebder(np.array([0.0, 0.0, 1.0]))      # T_2' = 4 T_1
    array([0., 4.])
    """
    c = np.moveaxis(B.to_numpy(coeffs), axis, 0)
    n = c.shape[0] - 1
    if n == 0:
        d = np.zeros_like(c)
    else:
        d = np.zeros((n,) + c.shape[1:], dtype=c.dtype)
        if n >= 1:
            d[n - 1] = 2 * n * c[n]
        if n >= 2:
            d[n - 2] = 2 * (n - 1) * c[n - 1]
        for k in range(n - 3, -1, -1):
            d[k] = d[k + 2] + 2 * (k + 1) * c[k + 1]
        d[0] *= 0.5
    a, b = interval
    d = d * (2.0 / (b - a))
    out = np.moveaxis(d, 0, axis)
    return B.asarray(out, like=coeffs) if not isinstance(coeffs, np.ndarray) else out


def integral_weights(degree: int, interval=(-1.0, 1.0)) -> np.ndarray:
    """``w[k] = integral of T_k`` over ``interval``: ``2/(1-k^2)`` for even ``k``, 0 for odd.

    Examples
    --------
    >>> integral_weights(2)
    array([ 2.        ,  0.        , -0.66666667])
    """
    n = _check_degree(degree)
    k = np.arange(n + 1)
    w = np.zeros(n + 1)
    even = k % 2 == 0
    w[even] = 2.0 / (1.0 - k[even] ** 2)
    a, b = interval
    return w * (0.5 * (b - a))


def chebint_definite(coeffs, interval=(-1.0, 1.0), axis: int = 0):
    """Definite integral over ``interval`` of a Chebyshev series along ``axis``.

    Examples
    --------
    >>> round(float(chebint_definite(np.array([0.0, 0.0, 1.0]))), 12)   # integral of 2x^2-1
    -0.666666666667
    """
    xp = B.namespace(coeffs)
    n = coeffs.shape[axis] - 1
    w = B.asarray(integral_weights(n, interval), like=coeffs)
    return xp.tensordot(w, coeffs, axes=([0], [axis]))


def _envelope(coeffs) -> np.ndarray:
    """Monotone envelope ``e_k = max_{j >= k} |c_j|`` of a 1-D coefficient profile."""
    a = np.abs(np.asarray(coeffs, dtype=float))
    return np.maximum.accumulate(a[::-1])[::-1]


def chop_degree(coeffs, tol: float, *, plateau: int | None = None):
    """The smallest degree whose discarded tail ``sum_{j>n} |c_j|`` is at most ``tol * max|c|``.

    The tail sum bounds the maximum truncation error (``|T_j| <= 1``).  Coefficients at
    the rounding floor (``100 eps max|c|``) are not counted, so a tolerance near machine
    precision is still reachable.

    Parameters
    ----------
    coeffs : array_like, 1-D
        Coefficient magnitudes (for a tensor: the sum of ``|C|`` over the other axes, see
        :func:`axis_profiles`).
    tol : float
        Relative tolerance.
    plateau : int, optional
        How many trailing coefficients beyond the chosen degree are required for the
        series to count as resolved (default ``max(2, n // 16)``).

    Returns
    -------
    (degree, resolved) : (int, bool)
        ``resolved`` is False when the tail has not yet decayed (sample more points).

    Examples
    --------
    >>> chop_degree(2.0 ** -np.arange(60), 1e-6)
    (20, True)
    """
    a = np.abs(np.asarray(coeffs, dtype=float))
    n = a.size - 1
    top = a.max() if a.size else 0.0
    if top == 0.0:
        return 0, True
    above_floor = np.clip(a - 100 * np.finfo(float).eps * top, 0.0, None)
    # tails[j] = sum_{i > j} |c_i|
    tails = np.concatenate([np.cumsum(above_floor[::-1])[::-1][1:], [0.0]])
    degree = int(np.nonzero(tails <= tol * top)[0][0])
    plateau = max(2, n // 16) if plateau is None else int(plateau)
    return degree, (n - degree) >= plateau


def decay_rate(coeffs, floor: float = 1e-14) -> float:
    """Geometric decay rate ``rho > 1`` with ``|c_k| ~ C rho^{-k}``, fitted to the envelope.

    The fit uses the envelope where it is above ``floor * max`` (rounding noise below it
    says nothing about smoothness).  For a function analytic in the Bernstein ellipse
    with parameter ``rho``, that is the ellipse parameter.

    Examples
    --------
    >>> round(decay_rate(3.0 ** -np.arange(40)), 6)
    3.0
    """
    env = _envelope(coeffs)
    if env[0] == 0.0:
        return math.inf
    keep = env > floor * env[0]
    k = np.nonzero(keep)[0]
    # ignore the first few coefficients: they carry the function's shape, not its decay
    k = k[k >= min(4, max(k.size // 4, 0))]
    if k.size < 3:
        return math.inf
    slope = np.polyfit(k, np.log(env[k]), 1)[0]
    return float(math.exp(-slope)) if slope < 0 else 1.0


def predict_degree(coeffs, tol: float, floor: float = 1e-14) -> int:
    """Degree at which the truncation error ``~ sum_{k>n} |c_k|`` falls below ``tol * max|c|``.

    Extrapolates the geometric decay fitted by :func:`decay_rate`:
    ``C rho^{-n} / (rho - 1) <= tol * max|c|``.

    Examples
    --------
    >>> predict_degree(2.0 ** -np.arange(60), 1e-12)
    40
    """
    env = _envelope(coeffs)
    rho = decay_rate(coeffs, floor)
    if not math.isfinite(rho):
        return int(np.nonzero(env > 0)[0][-1]) if np.any(env > 0) else 0
    if rho <= 1.0:
        raise ValueError("coefficients do not decay: the degree cannot be predicted")
    keep = np.nonzero(env > floor * env[0])[0]
    k = keep[keep >= min(4, keep.size // 4)]
    slope, intercept = np.polyfit(k, np.log(env[k]), 1)
    # sum_{j>n} C rho^-j = C rho^-n / (rho - 1) <= tol * max
    target = math.log(tol * env[0] * (rho - 1.0)) - intercept
    return max(0, int(math.ceil(target / slope)))


def _evaluate_function(f: Callable, grids, name: str = "f"):
    """Call ``f`` on the tensor product of ``grids`` (open mesh, then broadcast) and check it."""
    mesh = np.meshgrid(*grids, indexing="ij")
    try:
        values = f(*mesh)
    except TypeError as exc:
        raise TypeError(f"{name} must be a callable f(x, y, ...) taking one coordinate array "
                        f"per axis: {exc}") from exc
    values = B.to_numpy(values) if not isinstance(values, np.ndarray) else values
    if np.iscomplexobj(values):
        raise TypeError(f"{name} returned complex values; Chebyshev interpolation here is "
                        "real - interpolate the real and imaginary parts separately")
    values = np.broadcast_to(np.asarray(values, dtype=float), mesh[0].shape)
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[0]
        point = tuple(float(g[i]) for g, i in zip(grids, bad))
        raise ValueError(f"{name} returned NaN or Inf at {point}; give a function that is "
                         "finite on the whole domain (e.g. fill the removable singularity)")
    return np.ascontiguousarray(values)


class Chebyshev:
    """A full-tensor Chebyshev interpolant of a function of 1 to 3 variables on a box.

    ``Chebyshev.from_function(f, domain, degree=None, rtol=1e-13)`` samples ``f`` on
    the 2nd-kind tensor grid, transforms to coefficients by DCT-I, and when ``degree``
    is None doubles the degree (16, 32, ...) until the coefficients along every axis
    decay below ``rtol`` and then chops each axis to the degree it needs.

    Attributes
    ----------
    coeffs : numpy.ndarray
        Coefficient tensor, shape ``(n_1 + 1, ..., n_d + 1)``.
    domain : numpy.ndarray
        ``(d, 2)`` box.
    degrees : tuple of int
    info : dict
        ``decay_rate`` (per axis), ``predicted_degree`` (per axis, for ``rtol``),
        ``resolved``, ``samples`` (function evaluations).

    Examples
    --------
    >>> p = Chebyshev.from_function(lambda x: np.exp(x), domain=[(-1, 1)])
    >>> p.degrees
    (12,)
    >>> bool(abs(p(np.array([[0.3]]))[0] - np.exp(0.3)) < 1e-12)
    True
    """

    def __init__(self, coeffs, domain):
        coeffs = np.asarray(coeffs, dtype=float)
        if coeffs.ndim < 1 or coeffs.ndim > 3:
            raise ValueError(f"coeffs must have 1 to 3 dimensions, got {coeffs.ndim}")
        self.coeffs = coeffs
        self.domain = check_domain(domain, coeffs.ndim)
        self.info: dict = {}

    @property
    def dim(self) -> int:
        return self.coeffs.ndim

    @property
    def degrees(self) -> tuple:
        return tuple(s - 1 for s in self.coeffs.shape)

    @classmethod
    def from_function(cls, f: Callable, domain, degree=None, rtol: float = 1e-13,
                      max_degree: int = 512, min_degree: int = 16):
        """Interpolate ``f(x, y, ...)`` (one coordinate array per axis) on ``domain``.

        ``degree``: an int (all axes), a sequence (per axis), or None for the adaptive
        choice from coefficient decay up to ``max_degree``.  When the adaptive loop
        stops unresolved, ``info["resolved"]`` is False (not an error).
        """
        box = check_domain(domain)
        d = box.shape[0]
        if not 1 <= d <= 3:
            raise ValueError(f"domain must have 1 to 3 intervals, got {d}")
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        from .tucker import _check_rtol
        rtol = _check_rtol(rtol)
        if degree is not None:
            degrees = _degrees(degree, d)
            C = _sample_coeffs(f, box, degrees)
            obj = cls(C, box)
            obj.info = _decay_info(C, rtol) | {"resolved": None, "samples": C.size}
            return obj
        C, info = adaptive_coeffs(f, box, rtol, max_degree=max_degree, min_degree=min_degree)
        obj = cls(C, box)
        obj.info = info
        return obj

    def __call__(self, points):
        """Values at ``points`` of shape ``(m, d)`` (or ``(m,)`` in 1-D)."""
        pts = _check_points(points, self.dim)
        out = np.asarray(self.coeffs)
        # contract the last axis first so each step is a matrix-vector product per point
        Vs = [chebvander(to_reference(pts[:, k], self.domain[k]), self.degrees[k])
              for k in range(self.dim)]
        if self.dim == 1:
            return Vs[0] @ out
        if self.dim == 2:
            return np.einsum("ia,ab,ib->i", Vs[0], out, Vs[1], optimize=True)
        W = (Vs[0] @ out.reshape(out.shape[0], -1)).reshape(pts.shape[0], *out.shape[1:])
        return np.einsum("ibc,ib,ic->i", W, Vs[1], Vs[2], optimize=True)

    def diff(self, axis: int = 0) -> "Chebyshev":
        """Partial derivative along ``axis`` as a new interpolant."""
        axis = _axes(self.coeffs, axis)[0]
        return Chebyshev(chebder(self.coeffs, self.domain[axis], axis), self.domain)

    def integrate(self) -> float:
        """Integral over the whole box."""
        out = self.coeffs
        for k in range(self.dim - 1, -1, -1):
            out = chebint_definite(out, self.domain[k], axis=k)
        return float(out)


def _check_points(points, dim):
    pts = np.asarray(B.to_numpy(points), dtype=float)
    if dim == 1 and pts.ndim == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] != dim:
        raise ValueError(f"points must have shape (m, {dim}), got {pts.shape}")
    return pts


def _degrees(degree, d):
    if isinstance(degree, (int, np.integer)) and not isinstance(degree, bool):
        degrees = (int(degree),) * d
    else:
        degrees = tuple(degree)
        if len(degrees) != d:
            raise ValueError(f"degree has {len(degrees)} entries for a {d}-dimensional domain")
    for n in degrees:
        _check_degree(n)
    return degrees


def _sample_coeffs(f, box, degrees, name="f"):
    grids = [chebyshev_points(n, box[k]) for k, n in enumerate(degrees)]
    return vals2coeffs(_evaluate_function(f, grids, name))


def axis_profiles(C) -> list:
    """For each axis, ``sum |C|`` over the other axes: the 1-D decay profile whose tail
    bounds the error of truncating that axis."""
    A = np.abs(C)
    return [A.sum(axis=tuple(j for j in range(C.ndim) if j != k)) if C.ndim > 1 else A
            for k in range(C.ndim)]


def _decay_info(C, rtol):
    profiles = axis_profiles(C)
    rates, predicted = [], []
    for p in profiles:
        rate = decay_rate(p)
        rates.append(rate)
        try:
            predicted.append(predict_degree(p, rtol))
        except ValueError:
            predicted.append(None)
    return {"decay_rate": rates, "predicted_degree": predicted}


def adaptive_coeffs(f, box, rtol, *, max_degree=512, min_degree=16, name="f"):
    """Coefficient tensor of ``f`` with per-axis degree chosen from coefficient decay.

    Doubles a common degree until, on every axis, the tail sum of the profile (``sum |C|``
    over the other axes) is below ``rtol`` times its maximum, then chops each axis to its
    own degree.  Returns ``(C, info)``.
    """
    d = box.shape[0]
    n = max(2, int(min_degree))
    samples = 0
    while True:
        degrees = (n,) * d
        C = _sample_coeffs(f, box, degrees, name)
        samples += C.size
        profiles = axis_profiles(C)
        chops = [chop_degree(p, rtol) for p in profiles]
        resolved = all(ok for _, ok in chops)
        if resolved or 2 * n > max_degree:
            break
        n *= 2
    keep = tuple(slice(0, max(dc, 1) + 1) if ok else slice(None) for dc, ok in chops)
    info = _decay_info(C, rtol)
    info.update(resolved=resolved, samples=samples, sampled_degree=n)
    return np.ascontiguousarray(C[keep]), info
