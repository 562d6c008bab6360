"""DCDM network shapes, the Ritz data recipe and the loss."""
import numpy as np
import pytest
import torch
from scipy.fft import dstn

import lrsolve as lr
from lrsolve.dcdm import DCDMNet, dcdm_loss, laplacian_eigenvalues, ritz_vectors
from lrsolve.operators.stencil import PoissonStencil

torch.set_num_threads(1)


@pytest.mark.parametrize("dim, shape", [(2, (16, 16)), (2, (37, 20)), (3, (8, 8, 8)), (3, (9, 6, 7))])
@pytest.mark.parametrize("kw", [dict(levels=1), dict(levels=3), dict(levels="auto", shared=True)])
def test_network_keeps_the_grid(dim, shape, kw):
    net = DCDMNet(dim=dim, channels=4, **kw)
    out = net(torch.randn((2, 1) + shape))
    assert out.shape == (2, 1) + shape
    assert torch.isfinite(out).all()


def test_paper_layout_parameter_count():
    # levels=1: 1 input conv, 4 encoder convs, 6 coarse convs, 4 decoder convs (16 ch, 3x3),
    # and the 1x1 output: the reference network.
    net = DCDMNet(dim=2)
    expected = (9 * 16 + 16) + 14 * (9 * 16 * 16 + 16) + (16 + 1)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_auto_depth_grows_with_grid():
    net = DCDMNet(dim=2, levels="auto", shared=True)
    assert [net.depth_for((n, n)) for n in (64, 128, 256)] == [4, 5, 6]


def test_network_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        DCDMNet(dim=4)
    with pytest.raises(ValueError, match="levels"):
        DCDMNet(levels="auto")
    with pytest.raises(ValueError, match="levels"):
        DCDMNet(levels=0)
    with pytest.raises(ValueError, match="input"):
        DCDMNet(dim=2)(torch.zeros(1, 16, 16))


def test_ritz_vectors_unit_norm_and_low_weighted():
    v = ritz_vectors(32, 2, 64, np.random.default_rng(0), dtype=np.float64)
    assert np.allclose(np.linalg.norm(v.reshape(64, -1), axis=1), 1.0)
    coeff = dstn(v, type=1, axes=(1, 2), norm="ortho")
    lam = laplacian_eigenvalues(32, 2)
    low = lam < 0.55 * lam.max()
    # Energy per mode in the low part is 81x (9^2) that of the high part, within noise.
    ratio = (coeff[:, low] ** 2).mean() / (coeff[:, ~low] ** 2).mean()
    assert 65 < ratio < 100


def test_eigenvalues_match_the_operator():
    n = 12
    lam = laplacian_eigenvalues(n, 3)
    A = PoissonStencil(n, 3, scaled=False)
    c = np.zeros((n, n, n))
    c[2, 0, 5] = 1.0
    from scipy.fft import idstn
    e = idstn(c, type=1, norm="ortho").reshape(-1)
    assert np.linalg.norm(A @ e - lam[2, 0, 5] * e) < 1e-12


def test_loss_is_scale_invariant_and_zero_at_the_inverse():
    n = 10
    A = PoissonStencil(n, 2, backend="torch", dtype=np.float64)
    r = torch.from_numpy(ritz_vectors(n, 2, 3, np.random.default_rng(1), dtype=np.float64))
    r = r.unsqueeze(1)
    q = torch.randn(r.shape, generator=torch.Generator().manual_seed(0), dtype=r.dtype)
    l1, l2 = dcdm_loss(q, r, A), dcdm_loss(-7.5 * q, r, A)
    # (Not bounded by 1: the exact A-line-search step is not the Euclidean projection.)
    assert abs(l1.item() - l2.item()) < 1e-12 * l1.item() and l1.item() > 0.01
    Acsr = A.to_csr(backend="numpy").toarray()
    exact = torch.from_numpy(np.linalg.solve(Acsr, r.reshape(3, -1).numpy().T).T).reshape(r.shape)
    assert dcdm_loss(exact, r, A).item() < 1e-20
