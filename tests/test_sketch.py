"""Sketching operators: unbiased (E[S^T S] = I), subspace embedding, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from lrsolve.sketch import SKETCHES, make_sketch


@pytest.mark.parametrize("kind", SKETCHES)
def test_unbiased_gram(kind):
    m, s, trials = 30, 20, 400
    acc = np.zeros((m, m))
    for t in range(trials):
        S = make_sketch(kind, s, m, seed=t).todense()
        acc += S.T @ S
    acc /= trials
    # diagonal ~ 1, off-diagonal ~ 0 up to Monte Carlo error
    assert np.abs(np.diag(acc) - 1).max() < 0.25
    off = acc - np.diag(np.diag(acc))
    assert np.abs(off).max() < 0.3


@pytest.mark.parametrize("kind", ["gaussian", "countsketch", "sparse-sign", "srht"])
def test_subspace_embedding(kind, rng):
    m, d = 2000, 10
    A = rng.standard_normal((m, d)) * np.geomspace(1, 1e3, d)
    S = make_sketch(kind, 40 * d if kind == "countsketch" else 8 * d, m, seed=1)
    SA = S.apply(A)
    # singular values of (S Q) for orthonormal Q stay within (1 +- eps)
    Q, _ = np.linalg.qr(A)
    sv = np.linalg.svd(S.apply(Q), compute_uv=False)
    assert 0.4 < sv.min() and sv.max() < 1.6
    assert SA.shape[1] == d


def test_countsketch_exposes_buckets():
    S = make_sketch("countsketch", 7, 50, seed=3)
    D = S.todense()
    assert np.allclose(D[S.rows, np.arange(50)], S.signs)
    assert np.count_nonzero(D) == 50


def test_torch_apply():
    torch = pytest.importorskip("torch")
    S = make_sketch("gaussian", 5, 12, seed=0)
    x = np.arange(12.0)
    out = S.apply(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), S.apply(x))


@pytest.mark.parametrize("kw,match", [(dict(kind="fourier"), "sketch"), (dict(s=0), "s"),
                                      (dict(m=-1), "m"), (dict(kind="srht", s=50, m=10), "SRHT")])
def test_bad_arguments(kw, match):
    args = dict(kind="gaussian", s=5, m=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        make_sketch(args["kind"], args["s"], args["m"])


@pytest.mark.parametrize("kind", ["countsketch", "gaussian", "sparse-sign", "srht", "rows"])
def test_torch_apply_matches_numpy(kind):
    """torch in, torch out (same dtype), and the same numbers as the NumPy path."""
    torch = pytest.importorskip("torch")
    S = make_sketch(kind, 12, 40, seed=3)
    A = np.random.default_rng(0).standard_normal((40, 5))
    ref = S.apply(A)
    for dtype in (torch.float64, torch.float32):
        out = S.apply(torch.as_tensor(A, dtype=dtype))
        assert isinstance(out, torch.Tensor) and out.dtype == dtype
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        np.testing.assert_allclose(out.double().numpy(), ref, rtol=tol, atol=tol)
    vec = S.apply(torch.as_tensor(A[:, 0]))
    np.testing.assert_allclose(vec.numpy(), ref[:, 0], rtol=1e-12, atol=1e-12)


def test_countsketch_matrix_is_built_lazily_from_buckets():
    S = make_sketch("countsketch", 7, 30, seed=1)
    assert S._matrix is None                        # nothing built yet
    dense = np.zeros((7, 30))
    dense[S.rows, np.arange(30)] = S.signs
    np.testing.assert_array_equal(S.matrix.toarray(), dense)
    np.testing.assert_array_equal(S.todense(), dense)
