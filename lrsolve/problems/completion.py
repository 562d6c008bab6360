"""Matrix-completion instances: random incoherent low-rank matrices and real data.

* :func:`completion_random` - ``X = A B^T`` with Gaussian factors (incoherent with high
  probability), entries observed uniformly at a chosen rate, optional Gaussian noise;
  the truth is kept in factored form so 10^4 x 10^4 instances stay cheap.
* :func:`completion_image` - a greyscale photograph bundled with scikit-image
  (``camera`` by default), intensities in [0, 1], a random fraction of pixels kept.
* :func:`completion_digits` - scikit-learn's 1797 x 64 handwritten-digits matrix,
  scaled to [0, 1], a random fraction of entries kept.

Each returns a :class:`CompletionProblem`: training entries ``rows, cols, values``,
held-out ``test = (rows, cols, values)``, ``shape``, the suggested ``rank`` and
``meta``.  The real-data sets need scikit-image / scikit-learn (the ``data`` extra).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend as bk
from ..seeding import as_generator

__all__ = ["CompletionProblem", "completion_random", "completion_image", "completion_digits",
           "completion_error"]


@dataclass
class CompletionProblem:
    """Observed and held-out entries of a matrix to complete.

    ``truth`` is ``(A, B)`` with ``X = A @ B.T`` for synthetic instances, the dense
    matrix for real data.
    """

    rows: Any
    cols: Any
    values: Any
    shape: tuple
    rank: int
    test: tuple
    truth: Any = None
    meta: dict = field(default_factory=dict)

    @property
    def nnz(self) -> int:
        return int(self.rows.shape[0])


def _sample(rng, m, n, count):
    """``count`` distinct positions of an ``m x n`` matrix, uniformly (sorted by row)."""
    if count > m * n:
        raise ValueError(f"cannot sample {count} entries from a {m} x {n} matrix")
    flat = np.sort(rng.choice(m * n, size=count, replace=False)) if m * n <= 50_000_000 \
        else _sample_large(rng, m * n, count)
    return flat // n, flat % n


def _sample_large(rng, total, count):
    # rejection with oversampling keeps memory O(count) for huge matrices
    out = np.unique(rng.integers(0, total, size=int(count * 1.1) + 16))
    while out.size < count:
        out = np.unique(np.concatenate([out, rng.integers(0, total, size=count)]))
    return np.sort(rng.choice(out, size=count, replace=False))


def _convert(problem: CompletionProblem, backend: str, device=None) -> CompletionProblem:
    if backend == "numpy":
        return problem
    conv = lambda x: bk.asarray(x, backend=backend, device=device)  # noqa: E731
    problem.rows, problem.cols, problem.values = conv(problem.rows), conv(problem.cols), conv(problem.values)
    problem.test = tuple(conv(t) for t in problem.test)
    return problem


def _check_fraction(value, name):
    v = float(value)
    if not 0 < v <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return v


def completion_random(m: int = 2000, n: int | None = None, rank: int = 10, *,
                      rate: float | None = None, oversampling: float | None = None,
                      noise: float = 0.0, test_size: int = 10_000, seed=0,
                      backend: str = "numpy", device=None) -> CompletionProblem:
    r"""A random rank-``rank`` ``m x n`` matrix with uniformly sampled entries.

    ``X = A B^T / sqrt(rank)`` with i.i.d. standard normal ``A`` (m x k), ``B`` (n x k):
    entries of unit variance, incoherent with high probability.

    Parameters
    ----------
    m, n : int
        Shape (``n`` defaults to ``m``).
    rank : int
    rate : float, optional
        Fraction of entries observed.
    oversampling : float, optional
        Alternatively, observe ``oversampling * k (m + n - k)`` entries - a multiple of
        the number of degrees of freedom (the information limit).  Default 5 when
        neither is given.
    noise : float
        Standard deviation of Gaussian noise added to the observed (and held-out) values.
    test_size : int
        Held-out entries (distinct from the observed ones).
    seed : int or numpy.random.Generator
    backend, device
        ``"numpy"`` or ``"torch"`` for ``rows, cols, values`` and ``test``.

    Returns
    -------
    CompletionProblem
        ``truth = (A, B / sqrt(k))`` as NumPy arrays; ``meta`` holds the rate, the
        oversampling over the information limit and the noise level.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.completion_random(300, rank=5, oversampling=4, seed=0)
    >>> P.shape, P.nnz == 4 * 5 * (300 + 300 - 5)
    ((300, 300), True)
    """
    n = m if n is None else n
    m, n, rank = int(m), int(n), int(rank)
    if m < 2 or n < 2:
        raise ValueError(f"m and n must be >= 2, got {m}, {n}")
    if not 1 <= rank < min(m, n):
        raise ValueError(f"rank must satisfy 1 <= rank < min(m, n), got {rank}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    dof = rank * (m + n - rank)
    if rate is not None and oversampling is not None:
        raise ValueError("give rate or oversampling, not both")
    if rate is not None:
        count = int(round(_check_fraction(rate, "rate") * m * n))
    else:
        oversampling = 5.0 if oversampling is None else float(oversampling)
        if oversampling <= 0:
            raise ValueError(f"oversampling must be > 0, got {oversampling}")
        count = int(round(oversampling * dof))
    test_size = int(test_size)
    if count + test_size > m * n:
        raise ValueError(f"{count} observed + {test_size} held-out entries exceed the "
                         f"{m * n} entries of the matrix")
    rng = as_generator(seed)
    A = rng.standard_normal((m, rank))
    B = rng.standard_normal((n, rank)) / np.sqrt(rank)
    r_all, c_all = _sample(rng, m, n, count + test_size)
    perm = rng.permutation(count + test_size)
    obs, held = np.sort(perm[:count]), np.sort(perm[count:])

    def entries(idx):
        r, c = r_all[idx], c_all[idx]
        v = np.einsum("ij,ij->i", A[r], B[c])
        if noise:
            v = v + noise * rng.standard_normal(v.shape)
        return r, c, v

    rows, cols, values = entries(obs)
    test = entries(held)
    meta = {"kind": "random", "rate": count / (m * n), "oversampling": count / dof,
            "noise": float(noise), "seed": seed if isinstance(seed, int) else None}
    return _convert(CompletionProblem(rows, cols, values, (m, n), rank, test, (A, B), meta),
                    backend, device)


def _from_dense(X, keep, rank, test_fraction, seed, kind, backend, device, extra_meta):
    keep = _check_fraction(keep, "keep")
    m, n = X.shape
    rng = as_generator(seed)
    total = m * n
    count = int(round(keep * total))
    perm = rng.permutation(total)
    obs = np.sort(perm[:count])
    rest = perm[count:]
    n_test = int(round(test_fraction * rest.size)) if test_fraction < 1 else rest.size
    held = np.sort(rest[:n_test])
    rows, cols = obs // n, obs % n
    test = (held // n, held % n, X.ravel()[held])
    meta = {"kind": kind, "rate": count / total, **extra_meta}
    return _convert(CompletionProblem(rows, cols, X.ravel()[obs], (m, n), rank, test, X, meta),
                    backend, device)


def completion_image(name: str = "camera", *, keep: float = 0.3, rank: int = 40,
                     size: int | None = None, test_fraction: float = 1.0, seed=0,
                     backend: str = "numpy", device=None) -> CompletionProblem:
    """A greyscale image from ``skimage.data`` with only a fraction ``keep`` of pixels seen.

    Parameters
    ----------
    name : str
        A greyscale image of ``skimage.data`` shipped inside the package
        (``"camera"``, ``"moon"``, ``"coins"``, ``"text"``, ``"page"``, ...); colour images
        are converted to grey.
    keep : float
        Fraction of pixels observed (uniformly at random).
    rank : int
        Suggested rank (a natural image is only approximately low rank).
    size : int, optional
        Downsample (block mean) so the longer side is at most ``size``.
    test_fraction : float
        Fraction of the unobserved pixels held out as ``test`` (all by default).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.completion_image("camera", keep=0.3, size=128, seed=0)
    >>> P.shape
    (128, 128)
    """
    try:
        import skimage.data
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("completion_image needs scikit-image (pip install lrsolve[data])") from exc
    loader = getattr(skimage.data, name, None)
    if loader is None or not callable(loader):
        raise ValueError(f"name must be an image of skimage.data, got {name!r}")
    img = np.asarray(loader(), dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    if img.ndim != 2:
        raise ValueError(f"skimage.data.{name} is not an image")
    img = img / max(img.max(), 1e-300)
    if size is not None:
        f = int(np.ceil(max(img.shape) / int(size)))
        if f > 1:
            h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
            img = img[:h, :w].reshape(h // f, f, w // f, f).mean((1, 3))
    return _from_dense(img, keep, rank, test_fraction, seed, f"image:{name}", backend, device,
                       {"name": name})


def completion_digits(*, keep: float = 0.5, rank: int = 10, test_fraction: float = 1.0,
                      seed=0, backend: str = "numpy", device=None) -> CompletionProblem:
    """scikit-learn's handwritten-digits matrix (1797 x 64, in [0, 1]) with entries removed.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.completion_digits(keep=0.5, seed=0)
    >>> P.shape
    (1797, 64)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("completion_digits needs scikit-learn (pip install lrsolve[data])") from exc
    X = load_digits().data.astype(np.float64) / 16.0
    return _from_dense(X, keep, rank, test_fraction, seed, "digits", backend, device, {})


def completion_error(U, V, truth) -> float:
    """Relative Frobenius error ``||U V^T - X|| / ||X||`` without forming ``X``.

    ``truth`` is ``(A, B)`` with ``X = A B^T`` or a dense array.  The factored form
    uses ``||[U, -A] [V, B]^T|| = ||R_1 R_2^T||`` (QR of both stacks), which is exact
    to rounding - no cancellation of squared norms.
    """
    U, V = bk.to_numpy(U), bk.to_numpy(V)
    if isinstance(truth, tuple):
        A, B = truth
        R1 = np.linalg.qr(np.hstack([U, -A]), mode="r")
        R2 = np.linalg.qr(np.hstack([V, B]), mode="r")
        Ra = np.linalg.qr(A, mode="r")
        Rb = np.linalg.qr(B, mode="r")
        return float(np.linalg.norm(R1 @ R2.T) / np.linalg.norm(Ra @ Rb.T))
    X = np.asarray(truth)
    return float(np.linalg.norm(U @ V.T - X) / np.linalg.norm(X))
