"""The backend layer: namespaces, conversions, mat-vecs, finiteness checks."""
from __future__ import annotations

import numpy as np
import lrsolve as lr
import pytest
import scipy.sparse as sp

from lrsolve import backend as bk


def test_namespace_and_mix():
    torch = pytest.importorskip("torch")
    assert bk.backend_name(np.ones(2)) == "numpy"
    assert bk.backend_name(torch.ones(2)) == "torch"
    assert bk.backend_name(sp.identity(2)) == "numpy"
    assert bk.namespace(np.ones(2), None).__name__.endswith("numpy")
    with pytest.raises(TypeError, match="argument 1 is torch"):
        bk.namespace(np.ones(2), torch.ones(2))


def test_roundtrip_preserves_values_and_dtype():
    torch = pytest.importorskip("torch")
    x = np.arange(5, dtype=np.float32)
    t = bk.asarray(x, backend="torch")
    assert t.dtype == torch.float32
    back = bk.asarray(t, like=np.zeros(1, dtype=np.float64))
    assert back.dtype == np.float64 and np.array_equal(back, x)
    assert np.array_equal(bk.to_numpy(torch.ones(3)), np.ones(3))


def test_as_operator_matvec_kinds(rng):
    torch = pytest.importorskip("torch")
    A = sp.random(20, 20, density=0.3, random_state=0, format="csr")
    x = rng.standard_normal(20)
    ref = A @ x
    from scipy.sparse.linalg import aslinearoperator
    np.testing.assert_allclose(lr.as_operator(aslinearoperator(A)) @ x, ref)
    np.testing.assert_allclose(lr.as_operator(A.toarray()) @ x, ref)
    np.testing.assert_allclose(lr.as_operator(lambda v: A @ v, shape=(20, 20)) @ x, ref)
    T = torch.from_numpy(A.toarray()).to_sparse_csr()
    np.testing.assert_allclose((lr.as_operator(T) @ torch.from_numpy(x)).numpy(), ref, rtol=1e-12)


def test_inner_and_norm(rng):
    a = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    assert bk.inner(a, a) == pytest.approx(np.linalg.norm(a) ** 2)
    assert bk.norm(np.array([3.0, 4.0])) == 5.0


def test_check_finite_names_argument():
    with pytest.raises(ValueError, match="rhs"):
        bk.check_finite(np.array([1.0, np.inf]), "rhs")
    M = sp.csr_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="A"):
        bk.check_finite(M, "A")
    bk.check_finite(np.ones(3), "ok")


def test_asarray_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        bk.asarray(np.ones(2), backend="jax")
