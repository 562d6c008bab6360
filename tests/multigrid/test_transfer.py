"""TorchHierarchy: GMG's level operators and transfers on batched torch tensors agree with
the NumPy (numba) path and are differentiable."""
import numpy as np
import pytest
import torch

import lrsolve as lr
from lrsolve.multigrid.transfer import TorchHierarchy
from lrsolve.operators.grid import GridOperator

torch.set_num_threads(1)


def _operator(shape, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    mask[tuple(slice(n // 3, n // 3 + max(2, n // 4)) for n in shape)] = True
    coefficient = np.exp(rng.standard_normal(shape))
    return GridOperator(shape, coefficient=coefficient, mask=mask,
                        bc={"x-": "neumann", "y+": "neumann"})


@pytest.mark.parametrize("shape", [(13, 10, 9), (21, 18), (16, 16, 16)])
def test_agrees_with_the_numpy_path(shape):
    A = _operator(shape)
    M = lr.multigrid.GMG(A, coarse_size=50)
    H = TorchHierarchy(M, dtype=torch.float64)
    assert H.depth == len(M.levels) >= 3
    rng = np.random.default_rng(1)
    M._prepare(np.zeros(A.shape[0]))
    for l in range(H.depth - 1):
        s3 = H.shape3(l)
        x = rng.standard_normal(s3)
        scale = np.abs(M.levels[l].op @ x.reshape(-1)).max()
        got = H.apply(l, torch.from_numpy(x)[None])[0].numpy()
        want = (M.levels[l].op @ x.reshape(-1)).reshape(s3)
        assert np.abs(got - want).max() <= 1e-12 * scale
        got = H.restrict(l, torch.from_numpy(x)[None])[0].numpy()
        want = M._restrict(l, np.ascontiguousarray(x)).copy()
        assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
        e = rng.standard_normal(H.shape3(l + 1))
        got = H.prolong(l, torch.from_numpy(e)[None])[0].numpy()
        want = M._prolong_add(l, np.ascontiguousarray(e), None).copy()
        assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
        # the prolongation is zero on excluded cells
        active = np.broadcast_to(M.levels[l].op.active, M.levels[l].op.grid_shape)
        assert np.all(got.reshape(active.shape)[~active] == 0)
    b = rng.standard_normal(H.shape3(H.depth - 1))
    got = H.coarse_solve(torch.from_numpy(b)[None])[0].numpy()
    want = M._coarse_solve(b)
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


def test_batched_columns_are_independent():
    A = _operator((12, 10))
    H = TorchHierarchy(lr.multigrid.GMG(A, coarse_size=20))
    u = torch.randn(3, *H.shape3(0), dtype=torch.float64)
    both = H.restrict(0, u)
    one = H.restrict(0, u[1:2])
    assert torch.allclose(both[1:2], one, rtol=0, atol=1e-14)


def test_the_torch_gmg_path_uses_the_same_transfers():
    A = _operator((20, 14))
    At = GridOperator((20, 14), coefficient=A.coefficient, mask=A.mask, bc=A.bc,
                      backend="torch")
    r = np.random.default_rng(2).standard_normal(A.shape[0])
    x_np = lr.multigrid.GMG(A) @ r
    x_t = lr.multigrid.GMG(At) @ torch.from_numpy(r)
    assert np.abs(x_t.numpy() - x_np).max() <= 1e-10 * np.abs(x_np).max()


@pytest.mark.parametrize("shape", [(6, 5), (5, 4, 6)])
def test_differentiable(shape):
    rng = np.random.default_rng(3)
    mask = np.zeros(shape, bool)
    mask[(2,) * len(shape)] = True
    A = GridOperator(shape, coefficient=np.exp(rng.standard_normal(shape)), mask=mask,
                     bc={"x+": "neumann"})
    H = TorchHierarchy(lr.multigrid.GMG(A, coarse_size=4))
    u = torch.randn(2, *H.shape3(0), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: H.prolong(0, H.restrict(0, H.apply(0, v))), (u,))
    c = torch.randn(2, *H.shape3(H.depth - 1), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(H.coarse_solve, (c,))
