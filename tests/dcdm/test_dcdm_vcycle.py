"""The V-cycle DCDM network on the GMG hierarchy: shapes, depth, homogeneity, masks,
exactness, training, and the shipped 2D / 3D models on masked fluid systems."""
import numpy as np
import pytest
import torch

import lrsolve as lr
from lrsolve.dcdm import VCycleNet, load_model, save_model, train
from lrsolve.dcdm.data import operator_vectors, ritz_vectors, training_operators
from lrsolve.operators.grid import GridOperator

torch.set_num_threads(1)


def _perturbed(net, scale=0.1, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():  # leave the zero-initialised output, perturb everything
            p.add_(scale * torch.randn_like(p))
    return net


def _masked(shape, bc="neumann"):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(n // 3, n // 3 + max(2, n // 4)) for n in shape)] = True
    return GridOperator(shape, mask=mask, bc=bc, spacing=1.0 / max(shape))


@pytest.mark.parametrize("dim, shape", [(2, (16, 16)), (2, (37, 20)), (3, (12, 12, 12)),
                                        (3, (9, 17, 7))])
def test_vcycle_keeps_the_grid(dim, shape):
    net = _perturbed(VCycleNet(dim=dim, channels=4, hidden=1, coarse_size=16))
    out = net(torch.randn((2, 1) + shape))                     # the Dirichlet box
    assert out.shape == (2, 1) + shape and torch.isfinite(out).all()
    out = net(torch.randn((2, 1) + shape), operator=_masked(shape))
    assert out.shape == (2, 1) + shape and torch.isfinite(out).all()


def test_depth_is_the_hierarchy_depth():
    net = VCycleNet(coarse_size=100)
    depths = [net.depth_for(GridOperator((n, n))) for n in (8, 32, 64, 128)]
    assert depths == [len(lr.multigrid.GMG(GridOperator((n, n)), coarse_size=100).levels)
                      for n in (8, 32, 64, 128)]
    assert depths[0] == 1 and depths[1:] == [depths[1], depths[1] + 1, depths[1] + 2]


def test_positively_homogeneous_and_scale_invariant():
    net = _perturbed(VCycleNet(channels=4), 0.2).double()
    A = _masked((32, 24))
    r = torch.randn(1, 1, 32, 24, dtype=torch.float64) * \
        torch.from_numpy(np.asarray(A.active, dtype=np.float64))
    base = net(r, operator=A)
    for c in (1e-3, 7.0):
        assert torch.allclose(net(c * r, operator=A), c * base, rtol=1e-10, atol=1e-14)
    # A -> 5 A gives f -> f / 5: the smoothers see the relative diagonal, D^-1 scales
    A5 = GridOperator((32, 24), mask=A.mask, bc=A.bc, spacing=1.0 / (32 * np.sqrt(5)))
    assert torch.allclose(net(r, operator=A5), base / 5, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("shape", [(40, 36), (20, 18, 16)])
def test_output_is_zero_on_solid_cells(shape):
    net = _perturbed(VCycleNet(dim=len(shape), channels=4, hidden=1, coarse_size=64), 0.3)
    A = _masked(shape)
    solid = ~np.asarray(A.active)
    assert solid.any()
    out = net(torch.randn((3, 1) + shape), operator=A)[:, 0].detach().numpy()
    assert np.all(out[:, solid] == 0.0) and np.abs(out[:, ~solid]).max() > 0


def test_single_level_is_the_exact_solve():
    A = _masked((10, 9), bc="dirichlet")
    net = VCycleNet(coarse_size=200).double()          # 90 cells: the coarsest level only
    assert net.depth_for(A) == 1
    r = np.random.default_rng(0).standard_normal(90) * np.asarray(A.active).reshape(-1)
    e = net(torch.from_numpy(r).reshape(1, 1, 10, 9), operator=A).reshape(-1).detach().numpy()
    assert np.linalg.norm(A @ e - r) < 1e-10 * np.linalg.norm(r)


def test_untrained_vcycle_is_already_a_grid_independent_preconditioner():
    its = []
    net = VCycleNet()
    for n in (32, 64):
        P = lr.problems.poisson(n=n, dim=2, rhs="random", seed=0)
        r = lr.solve(P.A, P.b, method="dcdm", model=net, rtol=1e-6)
        assert r.converged
        its.append(r.iterations)
    assert its[1] <= 20 and its[1] <= its[0] + 4


def test_vcycle_training_save_load_and_cli(tmp_path):
    model = train(grid=16, dim=2, arch="vcycle", channels=4, hidden=1, steps=16, batch_size=4,
                  lr=3e-3, domains="mix", coarse_size=32, progress=False)
    assert isinstance(model, VCycleNet) and np.isfinite(model.meta["final_loss"])
    assert model.meta["recipe"]["domains"] == "mix"
    path = tmp_path / "vc.pt"
    save_model(model, path)
    again = load_model(path)
    assert isinstance(again, VCycleNet) and again.config() == model.config()
    x = torch.randn(1, 1, 20, 20)
    assert torch.allclose(model(x), again(x))
    with pytest.raises(ValueError, match="arch"):
        train(grid=8, arch="mlp", steps=1, progress=False)
    with pytest.raises(ValueError, match="domains"):
        train(grid=8, arch="vcycle", domains="ocean", steps=1, progress=False)
    from lrsolve.cli import main
    out = tmp_path / "m.pt"
    assert main(["train", "dcdm", "--arch", "vcycle", "--grid", "12", "--steps", "2",
                 "--batch-size", "2", "--channels", "4", "--domains", "mix", "--coarse-size", "16",
                 "--out", str(out),
                 "--no-progress", "--no-eval"]) == 0
    assert isinstance(load_model(out), VCycleNet)


def test_former_vcycle_files_get_a_clear_error(tmp_path):
    from lrsolve.io import save_weights
    from lrsolve.dcdm.training import _FORMAT
    path = tmp_path / "old.pt"
    save_weights(path, {"format": _FORMAT, "config": {"arch": "vcycle", "dim": 2, "channels": 16,
                                                      "hidden": 2, "coarsest": 8},
                        "state_dict": {}, "meta": {}})
    with pytest.raises(ValueError, match="former VCycleNet"):
        load_model(path)


def test_vcycle_training_lowers_the_loss():
    from lrsolve.dcdm import dcdm_loss
    from lrsolve.multigrid import GMG
    from lrsolve.multigrid.transfer import TorchHierarchy
    rng = np.random.default_rng(5)
    ops = training_operators(16, 2, "mix")
    H = TorchHierarchy(GMG(ops[1], coarse_size=32), dtype=torch.float32)
    r = torch.from_numpy(operator_vectors(ops[1], 32, rng, preconditioner=H.gmg)).unsqueeze(1)
    base = VCycleNet(channels=4, hidden=1, coarse_size=32)  # untrained: damped Jacobi
    trained = train(grid=16, dim=2, arch="vcycle", channels=4, hidden=1, steps=64,
                    batch_size=8, lr=3e-3, domains="mix", coarse_size=32, progress=False)
    with torch.no_grad():
        l0 = dcdm_loss(base(r, operator=H), r, H).item()
        l1 = dcdm_loss(trained(r, operator=H), r, H).item()
    assert l1 < l0


def test_operator_vectors():
    A = _masked((24, 20))
    v = operator_vectors(A, 5, np.random.default_rng(0), dtype=np.float64)
    assert v.shape == (5, 24, 20)
    assert np.allclose(np.linalg.norm(v.reshape(5, -1), axis=1), 1)
    assert np.all(v[:, ~np.asarray(A.active)] == 0)
    assert np.abs(v.reshape(5, -1).sum(axis=1)).max() < 1e-10     # compatible (Neumann)
    # more weight at the low end than white noise: a smaller Rayleigh quotient
    w = np.random.default_rng(1).standard_normal((24, 20)) * np.asarray(A.active)
    rq = lambda x: float(x.reshape(-1) @ (A @ x.reshape(-1)) / (x.reshape(-1) @ x.reshape(-1)))
    assert np.median([rq(x) for x in v]) < 0.5 * rq(w)
    with pytest.raises(TypeError, match="rng"):
        operator_vectors(A, 2, 0)


def test_model_used_in_a_solve_can_still_be_trained():
    """Constants cached during an inference-mode forward (as in a DCDM solve) must not
    break a later backward pass through the same model."""
    net = VCycleNet(dim=2, coarse_size=32)
    A = _masked((20, 20))
    x = torch.randn(2, 1, 20, 20)
    with torch.inference_mode():
        y0 = net(x, operator=A)
    y = net(x, operator=A)
    y.sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.allclose(y.detach(), y0, atol=1e-6)


def test_shipped_default_is_the_vcycle_and_grid_independent():
    model = lr.dcdm.load_pretrained("poisson2d")
    assert isinstance(model, VCycleNet)
    its = {}
    for n in (32, 64, 128, 96):
        P = lr.problems.poisson(n=n, dim=2, rhs="random", seed=3)
        r = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
        assert r.converged and r.stats["max_a_cosine"] < 1e-8
        its[n] = r.iterations
    assert max(its.values()) <= 9, its
    assert its[128] <= its[32] + 2, its


def _fluid(n, dim, steps=3):
    from lrsolve.bench.fluids import make_sequence
    return make_sequence(n, dim, steps)[-1]


@pytest.mark.parametrize("name, n, dim", [("poisson2d", 48, 2), ("poisson3d", 16, 3)])
def test_shipped_models_on_masked_fluid_systems(name, n, dim):
    """A pressure system of the smoke simulation: closed box (pure Neumann), a sphere
    and a box as solids.  DCDM must stay well below CG's count (measured on these
    systems: 2D 48^2 6 vs 217, 3D 16^3 6 vs 80, so 1/4 leaves a 3x margin) and be zero
    on the solid cells."""
    model = lr.dcdm.load_pretrained(name)
    P = _fluid(n, dim)
    assert P.A.singular and not np.asarray(P.A.active).all()
    r = lr.solve(P.A, P.b, method="dcdm", model=model, rtol=1e-6)
    c = lr.solve(P.A, P.b, method="cg", rtol=1e-6)
    assert r.converged and c.converged
    assert np.linalg.norm(P.b - P.A @ r.x) <= 1e-6 * np.linalg.norm(P.b) * 1.0001
    assert r.iterations <= c.iterations / 4, (r.iterations, c.iterations)
    assert np.all(r.x[~np.asarray(P.A.active).reshape(-1)] == 0)


def test_model_dimension_errors():
    P2 = _fluid(16, 2, steps=1)
    with pytest.raises(ValueError, match="3D grids but A has a 2D grid"):
        lr.solve(P2.A, P2.b, method="dcdm", model=lr.dcdm.load_pretrained("poisson3d"))
    P3 = _fluid(12, 3, steps=1)
    with pytest.raises(ValueError, match="2D grids but A has a 3D grid"):
        lr.solve(P3.A, P3.b, method="dcdm", model=lr.dcdm.load_pretrained("poisson2d"))
    with pytest.raises(ValueError, match="2D grids but the operator has a 3D grid"):
        VCycleNet(dim=2)(torch.zeros(1, 1, 8, 8), operator=P3.A)
