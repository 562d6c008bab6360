"""Shared fixtures: backends (numpy, torch, cupy when a GPU is present) and small SPD systems."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest
import scipy.sparse as sp


def _cupy_available() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("torch", id="torch"),
    pytest.param("cupy", id="cupy", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not _cupy_available(), reason="CuPy with a CUDA device is not available")]),
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Name of an array backend; tests convert with lrsolve.backend.asarray(x, backend=...)."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_spd(n: int, rng, cond: float = 100.0, density: float | None = None):
    """A random SPD matrix with condition number about ``cond`` (dense, or sparse if density)."""
    if density is None:
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        eig = np.geomspace(1.0, cond, n)
        return (Q * eig) @ Q.T
    B = sp.random(n, n, density=density, random_state=rng, format="csr")
    A = B @ B.T + sp.identity(n) * (1.0 + density * n)
    return sp.csr_matrix(A)


@pytest.fixture
def spd_factory():
    return random_spd
