"""ChebTucker: accuracy at random points, backends, calculus, algebra, ranks vs grid Tucker-ALS."""
import math

import numpy as np
import pytest
from scipy.special import erf

import lrsolve as lr
from lrsolve import backend as B
from lrsolve.bench.tensors import gauss_sum
from lrsolve.tensors import ChebTucker, newton_long_range, tucker




def rel_max_error(ct, f, pts):
    exact = f(*pts.T)
    return np.abs(ct(pts) - exact).max() / np.abs(exact).max()


def test_contract_example_accuracy(rng):
    f = lambda x, y, z: 1.0 / (1.0 + x ** 2 + y ** 2 + z ** 2)
    ct = lr.tensors.ChebTucker.from_function(f, domain=[(-1, 1)] * 3, degree=64, rtol=1e-8)
    pts = rng.uniform(-1, 1, (100_000, 3))
    out = ct(pts)
    assert out.shape == (100_000,)
    assert rel_max_error(ct, f, pts) < 1e-7
    assert max(ct.ranks) <= 12
    assert ct.nbytes == 8 * (np.prod(ct.ranks) + sum(65 * r for r in ct.ranks))
    assert ct.nbytes < 0.01 * 8 * 65 ** 3


def test_adaptive_degree_reaches_1e12(rng):
    f = lambda x, y, z: np.exp(-(x ** 2 + 2 * y ** 2 + 3 * z ** 2)) * np.cos(x + y + z)
    ct = ChebTucker.from_function(f, [(-1, 1)] * 3, degree=None, rtol=1e-14)
    assert ct.info["resolved"] is True
    pts = rng.uniform(-1, 1, (100_000, 3))
    assert rel_max_error(ct, f, pts) < 1e-12
    assert max(ct.ranks) < min(ct.degrees)


def test_torch_backend_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    f = newton_long_range(0.3)
    ct_np = ChebTucker.from_function(f, degree=40, rtol=1e-9)
    ct_t = ChebTucker.from_function(f, degree=40, rtol=1e-9, backend="torch")
    assert B.backend_name(ct_t.core) == "torch"
    pts = rng.uniform(-1, 1, (5000, 3))
    a = ct_np(pts)
    b = ct_t(torch.from_numpy(pts))
    assert isinstance(b, torch.Tensor)
    assert ct_np.ranks == ct_t.ranks
    assert np.abs(a - b.numpy()).max() < 1e-12 * np.abs(a).max()
    with pytest.raises(TypeError, match="mix array backends"):
        ct_t(pts)


def test_integral_and_derivative_on_box(rng):
    box = [(-1.0, 1.0), (0.0, 2.0), (-0.5, 1.5)]
    f = lambda x, y, z: np.exp(-(x ** 2 + y ** 2 + z ** 2))
    ct = ChebTucker.from_function(f, box, degree=48, rtol=1e-13)
    g1 = lambda a, b: 0.5 * math.sqrt(math.pi) * (erf(b) - erf(a))
    exact = math.prod(g1(a, b) for a, b in box)
    assert abs(ct.integrate() - exact) < 1e-12
    dfz = ct.diff(2)
    pts = np.column_stack([rng.uniform(a, b, 20_000) for a, b in box])
    ref = -2 * pts[:, 2] * f(*pts.T)
    assert np.abs(dfz(pts) - ref).max() < 1e-10


def test_grid_equals_points():
    ct = ChebTucker.from_function(gauss_sum(), degree=32, rtol=1e-10)
    axes = [np.linspace(-1, 1, 7), np.linspace(-0.5, 0.5, 5), np.array([0.1, 0.2])]
    V = ct.grid(*axes)
    P = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    assert np.abs(V.reshape(-1) - ct(P)).max() < 1e-13


def test_add_scale_subtract(rng):
    f = gauss_sum(1)
    g = newton_long_range(0.4)
    a = ChebTucker.from_function(f, degree=40, rtol=1e-10)
    b = ChebTucker.from_function(g, degree=48, rtol=1e-10)
    pts = rng.uniform(-1, 1, (20_000, 3))
    s = 2.0 * a + b / 4.0
    exact = 2 * a(pts) + 0.25 * b(pts)
    assert np.abs(s(pts) - exact).max() < 1e-11 * np.abs(exact).max()
    assert s.degrees == (48, 48, 48)
    assert all(rs <= ra + rb for rs, ra, rb in zip(s.ranks, a.ranks, b.ranks))
    zero = a - a
    assert np.abs(zero(pts)).max() < 1e-12 * np.abs(a(pts)).max()
    assert max(zero.ranks) == 1
    assert np.abs((-a)(pts) + a(pts)).max() == 0.0


def test_hooi_option_not_worse(rng):
    f = gauss_sum(2)
    h = ChebTucker.from_function(f, degree=48, rtol=1e-6, method="hooi")
    s = ChebTucker.from_function(f, degree=48, ranks=h.ranks)
    pts = rng.uniform(-1, 1, (20_000, 3))
    assert rel_max_error(h, f, pts) <= 2 * rel_max_error(s, f, pts) + 1e-12
    assert h.info["hooi_iterations"] >= 1


@pytest.mark.parametrize("name", ["newton_lr", "gauss_sum"])
def test_ranks_close_to_grid_tucker_als(name):
    """Coefficient-tensor ranks within +2 per mode of Tucker-ALS on a 128^3 grid at 1e-6."""
    f = newton_long_range(0.25) if name == "newton_lr" else gauss_sum()
    ct = ChebTucker.from_function(f, degree=64, rtol=1e-6)
    x = np.linspace(-1, 1, 128)
    T = f(*np.meshgrid(x, x, x, indexing="ij"))
    G, _ = tucker(T, rtol=1e-6, method="hooi")
    for r_ct, r_grid in zip(ct.ranks, G.shape):
        assert abs(r_ct - r_grid) <= 2


def test_two_dimensional(backend, rng):
    f = lambda x, y: B.namespace(x).cos(x * y) + x      # runs on the sampling backend
    ct = ChebTucker.from_function(f, [(-2, 2), (0, 1)], degree=40, rtol=1e-12, backend=backend)
    pts = np.column_stack([rng.uniform(-2, 2, 1000), rng.uniform(0, 1, 1000)])
    out = ct(B.asarray(pts, backend=backend))
    assert B.backend_name(out) == backend
    assert np.abs(B.to_numpy(out) - f(*pts.T)).max() < 1e-11


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN or Inf"):
        # the full singular Newton kernel: the origin is a Chebyshev node for even degree
        with np.errstate(all="ignore"):
            ChebTucker.from_function(lambda x, y, z: 1 / np.sqrt(x * x + y * y + z * z),
                                     degree=16)
    with pytest.raises(ValueError, match="degenerate on axis 1"):
        ChebTucker.from_function(gauss_sum(), [(-1, 1), (0.5, 0.5), (-1, 1)], degree=8)
    with pytest.raises(ValueError, match=r"ranks\[0\] = 20 is larger than degree \+ 1 = 17"):
        ChebTucker.from_function(gauss_sum(), degree=16, ranks=(20, 3, 3))
    with pytest.raises(ValueError, match="rtol"):
        ChebTucker.from_function(gauss_sum(), degree=16, rtol=2.0)
    ct = ChebTucker.from_function(gauss_sum(), degree=16)
    with pytest.raises(ValueError, match=r"points must have shape \(m, 3\)"):
        ct(np.zeros((4, 2)))
    other = ChebTucker.from_function(gauss_sum(), [(-1, 1), (-1, 1), (0, 1)], degree=16)
    with pytest.raises(ValueError, match="same domain"):
        ct + other
