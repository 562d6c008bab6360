"""The V-cycle DCDM network: shapes, depth, homogeneity, the 4x coarse scaling, exactness."""
import numpy as np
import pytest
import torch

import lrsolve as lr
from lrsolve.dcdm import VCycleNet, load_model, save_model, train
from lrsolve.dcdm.data import ritz_vectors
from lrsolve.operators.stencil import PoissonStencil

torch.set_num_threads(1)


@pytest.mark.parametrize("dim, shape", [(2, (16, 16)), (2, (37, 20)), (3, (12, 12, 12)),
                                        (3, (9, 17, 7))])
def test_vcycle_keeps_the_grid(dim, shape):
    net = VCycleNet(dim=dim, channels=4, hidden=1, coarsest=4)
    with torch.no_grad():
        for p in net.parameters():  # leave the zero-initialised output, perturb everything
            p.add_(0.1 * torch.randn_like(p))
    out = net(torch.randn((2, 1) + shape))
    assert out.shape == (2, 1) + shape and torch.isfinite(out).all()


def test_depth_grows_with_the_grid():
    net = VCycleNet()
    assert [net.depth_for((n, n)) for n in (8, 64, 128, 256, 65)] == [1, 4, 5, 6, 5]


def test_positively_homogeneous():
    torch.manual_seed(0)
    net = VCycleNet(channels=4)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    r = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    net = net.double()
    for c in (1e-3, 7.0):
        assert torch.allclose(net(c * r), c * net(r), rtol=1e-10, atol=1e-14)


def test_coarsest_grid_is_solved_exactly():
    n = 8
    net = VCycleNet(coarsest=8).double()
    A = PoissonStencil(n, 2, scaled=False)
    r = np.random.default_rng(0).standard_normal(n * n)
    e = net(torch.from_numpy(r).reshape(1, 1, n, n)).reshape(-1).detach().numpy()
    assert np.linalg.norm(A @ e - r) < 1e-10 * np.linalg.norm(r)


def test_coarse_correction_has_the_physical_scale():
    # Smoothers off: the two-grid map is 4 * interp(A_H^{-1} avg(r)).  For the smoothest
    # eigenvector it must approximate A_h^{-1} r (a factor 1 or 16 off would fail).
    n = 16
    net = VCycleNet(coarsest=8).double()
    with torch.no_grad():
        net.pre.omega.zero_()
        net.post.omega.zero_()
    i = np.arange(1, n + 1) / (n + 1)
    v = np.outer(np.sin(np.pi * i), np.sin(np.pi * i))
    lam = 2 * 4 * np.sin(np.pi / (2 * (n + 1))) ** 2
    e = net(torch.from_numpy(v).reshape(1, 1, n, n)).reshape(n, n).detach().numpy()
    ratio = float((e * v).sum() / (v * v).sum() * lam)   # 1 for the exact inverse
    assert 0.7 < ratio < 1.3


def test_untrained_vcycle_is_already_a_grid_independent_preconditioner():
    its = []
    net = VCycleNet()
    for n in (32, 64):
        P = lr.problems.poisson(n=n, dim=2, rhs="random", seed=0)
        r = lr.solve(P.A, P.b, method="dcdm", model=net, rtol=1e-6)
        assert r.converged
        its.append(r.iterations)
    assert its[1] <= 20 and its[1] <= its[0] + 4


def test_vcycle_training_save_load_and_cli(tmp_path, capsys):
    model = train(grid=16, dim=2, arch="vcycle", channels=4, hidden=1, steps=30, batch_size=4,
                  lr=3e-3, progress=False)
    assert isinstance(model, VCycleNet) and np.isfinite(model.meta["final_loss"])
    path = tmp_path / "vc.pt"
    save_model(model, path)
    again = load_model(path)
    assert isinstance(again, VCycleNet) and again.config()["arch"] == "vcycle"
    x = torch.randn(1, 1, 20, 20)
    assert torch.allclose(model(x), again(x))
    with pytest.raises(ValueError, match="arch"):
        train(grid=8, arch="mlp", steps=1, progress=False)
    from lrsolve.cli import main
    out = tmp_path / "m.pt"
    assert main(["train", "dcdm", "--arch", "vcycle", "--grid", "12", "--steps", "2",
                 "--batch-size", "2", "--channels", "4", "--out", str(out), "--no-progress",
                 "--no-eval"]) == 0
    assert isinstance(load_model(out), VCycleNet)


def test_vcycle_training_lowers_the_loss():
    rng = np.random.default_rng(5)
    r = torch.from_numpy(ritz_vectors(16, 2, 32, rng)).unsqueeze(1)
    A = PoissonStencil(16, 2, backend="torch", dtype=np.float32)
    from lrsolve.dcdm import dcdm_loss
    base = VCycleNet(channels=4, hidden=1)  # untrained: damped-Jacobi smoothers
    trained = train(grid=16, dim=2, arch="vcycle", channels=4, hidden=1, steps=80,
                    batch_size=8, lr=3e-3, progress=False)
    with torch.no_grad():
        l0 = dcdm_loss(base(r), r, A).item()
    with torch.no_grad():
        l1 = dcdm_loss(trained(r), r, A).item()
    assert l1 < l0


def test_shipped_default_is_the_vcycle_and_grid_independent():
    # Trained at 64^2 only; measured 4 / 5 / 5 / 6 at 64 / 128 / 256 / 512 (docs/dcdm.md).
    model = lr.dcdm.load_pretrained("poisson2d")
    assert isinstance(model, VCycleNet) and model.meta["recipe"]["grid"] == 64
    its = {}
    for n in (32, 64, 128, 96):
        P = lr.problems.poisson(n=n, dim=2, rhs="random", seed=3)
        r = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
        assert r.converged and r.stats["max_a_cosine"] < 1e-8
        its[n] = r.iterations
    assert max(its.values()) <= 7, its
    assert its[128] <= its[32] + 2, its


def test_model_used_in_a_solve_can_still_be_trained():
    """Constants cached during an inference-mode forward (as in a DCDM solve) must not
    break a later backward pass through the same model."""
    net = VCycleNet(dim=2)
    x = torch.randn(2, 1, 20, 20)
    with torch.inference_mode():
        y0 = net(x)
    y = net(x)
    y.sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.allclose(y.detach(), y0, atol=1e-6)
