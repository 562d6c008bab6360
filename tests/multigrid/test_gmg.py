"""Geometric multigrid: convergence, h-independence, robustness (jumps, masks, Neumann),
FMG accuracy, backends, update, and clear errors."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import lrsolve as lr
from lrsolve.problems import sphere_obstacles
from lrsolve.multigrid import GMG
from lrsolve.result import Status


def _solve(P, **kw):
    r = lr.solve(P.A, P.b, method="pcg-mg", rtol=1e-8, **kw)
    true = np.linalg.norm(P.b - P.A @ r.x) / np.linalg.norm(P.b)
    assert r.status is Status.CONVERGED and true <= 1e-8
    return r.iterations


def test_pcg_mg_iterations_bounded_and_size_independent():
    its2 = [_solve(lr.problems.poisson(n=(n, n), rhs="random", seed=0)) for n in (32, 128)]
    its3 = [_solve(lr.problems.poisson(n=(n,) * 3, rhs="random", seed=0)) for n in (16, 32)]
    assert max(its2 + its3) <= 12
    assert abs(its2[1] - its2[0]) <= 2 and abs(its3[1] - its3[0]) <= 2


def test_rectangular_odd_grids_and_poisson_stencil_input():
    for shape in [(40, 33, 20), (37, 9), (5, 70), (17, 17, 5)]:
        assert _solve(lr.problems.poisson(n=shape, dim=len(shape), rhs="random", seed=1)) <= 12
    # the unit-box PoissonStencil (the default problem) works as is
    assert _solve(lr.problems.poisson(n=63, dim=2)) <= 12


def test_robust_to_jumps_and_masks():
    shape = (64, 64)
    X = np.indices(shape)
    base = _solve(lr.problems.poisson(n=shape, rhs="random", seed=0))
    layered = np.where((X[0] // 8) % 2 == 0, 1.0, 1e4)
    checker = np.where((X[0] // 16 + X[1] // 16) % 2 == 0, 1.0, 1e4)
    solid = sphere_obstacles(shape)
    walls = {"x-": "neumann", "x+": "neumann", "y-": "neumann"}
    for kw in (dict(coefficient=layered), dict(coefficient=checker), dict(mask=solid),
               dict(mask=solid, bc=walls)):
        assert _solve(lr.problems.poisson(n=shape, rhs="random", seed=0, **kw)) <= 2 * base
    X3 = np.indices((24, 24, 24))
    base3 = _solve(lr.problems.poisson(n=(24,) * 3, rhs="random", seed=0))
    layered3 = np.where((X3[2] // 4) % 2 == 0, 1.0, 1e4)
    assert _solve(lr.problems.poisson(n=(24,) * 3, coefficient=layered3, seed=0)) <= 2 * base3
    assert _solve(lr.problems.poisson(n=(24,) * 3, mask=sphere_obstacles((24,) * 3), seed=0)) \
        <= 2 * base3


def test_lognormal_sigma2_with_w_cycle():
    shape = (96, 96)
    g = gaussian_filter(np.random.default_rng(0).standard_normal(shape), 4, mode="wrap")
    k = np.exp(2.0 * g / g.std())
    base = _solve(lr.problems.poisson(n=shape, seed=0), cycle="W")
    assert _solve(lr.problems.poisson(n=shape, coefficient=k, seed=0), cycle="W") <= 2 * base


def test_pure_neumann_and_incompatible_rhs():
    P = lr.problems.poisson(n=(48, 40), bc="neumann", rhs="random", seed=0)
    assert P.meta["singular"]
    r = lr.solve(P.A, P.b, method="pcg-mg", rtol=1e-8)
    assert r.converged and abs(r.x.sum()) <= 1e-8 * np.abs(r.x).sum()
    assert np.linalg.norm(P.b - P.A @ r.x) <= 1e-8 * np.linalg.norm(P.b)
    with pytest.raises(ValueError, match=r"incompatible.*[0-9]\.[0-9]+e-0?[0-9]"):
        lr.solve(P.A, P.b + 0.1, method="pcg-mg", rtol=1e-8)


def test_mg_solver_and_cycles_smoothers():
    P = lr.problems.poisson(n=(48, 40), rhs="random", seed=0)
    r = lr.solve(P.A, P.b, method="mg", rtol=1e-8)
    assert r.status is Status.CONVERGED and r.iterations <= 30
    assert np.linalg.norm(P.b - P.A @ r.x) <= 1e-8 * np.linalg.norm(P.b)
    for cycle in ("V", "W", "F"):
        for smoother in ("chebyshev", "jacobi", "rbgs"):
            assert _solve(P, cycle=cycle, smoother=smoother) <= 15
    r = lr.solve(P.A, P.b, method="mg", rtol=1e-8, maxiter=2)
    assert r.status is Status.MAXITER and r.info > 0


def test_preconditioner_is_symmetric_and_batched(rng):
    P = lr.problems.poisson(n=(30, 21, 10), dim=3, mask=sphere_obstacles((30, 21, 10)))
    M = GMG(P.A)
    x, y = rng.standard_normal((2, P.A.shape[0]))
    active = P.A.active.reshape(-1)
    x, y = x * active, y * active
    assert abs(x @ (M @ y) - y @ (M @ x)) <= 1e-12 * abs(x @ (M @ x))
    X = rng.standard_normal((P.A.shape[0], 3))
    assert np.abs(M @ X - np.stack([M @ X[:, j] for j in range(3)], 1)).max() == 0.0


def _gpu_params():
    """torch on the CPU always; torch-CUDA and CuPy where a GPU is present."""
    def torch_cuda():
        try:
            import torch
            return torch.cuda.is_available()
        except ImportError:
            return False

    def cupy_gpu():
        try:
            import cupy
            return cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:
            return False
    return [pytest.param("torch", "cpu", id="torch-cpu"),
            pytest.param("torch", "cuda", id="torch-cuda", marks=pytest.mark.skipif(
                not torch_cuda(), reason="no CUDA device for torch")),
            pytest.param("cupy", None, id="cupy", marks=pytest.mark.skipif(
                not cupy_gpu(), reason="CuPy with a CUDA device is not available"))]


@pytest.mark.parametrize("backend,device", _gpu_params())
def test_numpy_and_array_backends_iterates_agree(backend, device):
    """The same float64 iterates (to 1e-10) from NumPy's numba kernels and from the array
    code of torch (CPU or CUDA) and CuPy: pcg-mg with two smoothers, and a W-cycle FMG."""
    if backend == "torch":
        pytest.importorskip("torch")
    k = np.exp(np.random.default_rng(0).standard_normal((20, 18, 9)))
    kw = dict(n=(20, 18, 9), dim=3, coefficient=k, mask=sphere_obstacles((20, 18, 9)),
              bc={"x-": "neumann"}, rhs="random", seed=0)
    runs = {}
    for name, options in (("numpy", {}), (backend, {"device": device} if device else {})):
        P = lr.problems.poisson(backend=name, **options, **kw)
        iterates = []
        cb = lambda x: iterates.append(np.array(lr.backend.to_numpy(x)))
        for smoother in ("chebyshev", "rbgs"):
            r = lr.solve(P.A, P.b, method="pcg-mg", rtol=1e-10, smoother=smoother, callback=cb)
            assert str(lr.backend.device_of(r.x)) == str(lr.backend.device_of(P.b))
            # on CUDA the cycle is a recorded CUDA graph, replayed (checked here for sameness)
            assert r.stats["cuda_graph"] is (name == "torch" and device == "cuda"), (
                smoother, str(P.b.device), r.stats.get("cuda_graph_error"),
                r.stats.get("cuda_graph_info"))
        M = GMG(P.A, cycle="W")
        iterates.append(lr.backend.to_numpy(M.fmg(P.b)))
        runs["ref" if name == "numpy" else "other"] = iterates
    assert len(runs["ref"]) == len(runs["other"]) >= 8
    for a, b in zip(runs["ref"], runs["other"]):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max()


def test_cuda_graph_replay_matches_eager_cycle():
    """On CUDA, ``M @ r`` replays a recorded graph: the same numbers as the plain cycle, for
    new inputs (the graph reads its input buffer), 1-D and batched, and after update()."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device for torch")
    k = np.exp(np.random.default_rng(1).standard_normal((24, 20, 12)))
    P = lr.problems.poisson(n=(24, 20, 12), dim=3, coefficient=k,
                            mask=sphere_obstacles((24, 20, 12)), backend="torch", device="cuda")
    M, E = GMG(P.A, cuda_graph=True), GMG(P.A, cuda_graph=False)
    g = torch.Generator(device="cuda").manual_seed(0)
    for shape in [(P.A.shape[0],)] * 3 + [(P.A.shape[0], 3)] * 2:
        r = torch.randn(shape, dtype=torch.float64, device="cuda", generator=g)
        assert torch.equal(M @ r, E @ r)
    assert M.graph_error is None and M.graph_info["captured"] == 2
    assert M.graph_info["replayed"] == 5
    P2 = lr.problems.poisson(n=(24, 20, 12), dim=3, coefficient=2 * k,
                             mask=sphere_obstacles((24, 20, 12)), backend="torch", device="cuda")
    M.update(P2.A)
    E.update(P2.A)
    r = torch.randn(P.A.shape[0], dtype=torch.float64, device="cuda", generator=g)
    assert torch.equal(M @ r, E @ r)
    assert M.graph_info["captured"] == 2      # the recorded graphs survived the update
    # the default records only once an input shape has been applied GRAPH_AFTER times
    D, F = GMG(P2.A), GMG(P2.A, cuda_graph=False)
    for i in range(lr.multigrid.gmg.GRAPH_AFTER + 2):
        assert D.graph_info["captured"] == (i > lr.multigrid.gmg.GRAPH_AFTER)
        assert torch.equal(D @ r, F @ r)


def test_fmg_reaches_discretisation_error():
    # even sizes: with an odd size the single-child coarse cells make the coarse
    # discretisation first order at one side and FMG then lands at ~10x the error
    for n in (64, 128):
        P = lr.problems.poisson(n=(n, n), rhs="ones")
        h = 1.0 / (n + 1)
        X = np.meshgrid(*[h * np.arange(1, n + 1)] * 2, indexing="ij")
        u = (np.sin(np.pi * X[0]) * np.sin(np.pi * X[1])).reshape(-1)
        f = 2 * np.pi ** 2 * u
        discrete = lr.solve(P.A, f, method="pcg-mg", rtol=1e-12).x
        disc_error = np.abs(discrete - u).max()
        M = GMG(P.A)
        fmg_error = np.abs(M.fmg(f) - u).max()
        assert fmg_error <= 1.5 * disc_error
        assert M.fmg_work() <= 20


def test_update_recoarsens_on_the_kept_structure(rng):
    shape = (40, 36)
    k1 = np.exp(rng.standard_normal(shape))
    k2 = np.exp(rng.standard_normal(shape))
    A1 = lr.problems.poisson(n=shape, coefficient=k1).A
    A2 = lr.problems.poisson(n=shape, coefficient=k2).A
    M = GMG(A1)
    tables = [lvl.restrict_tables for lvl in M.levels]
    M.update(A2)
    assert all(a is lvl.restrict_tables for a, lvl in zip(tables, M.levels))
    r = rng.standard_normal(A1.shape[0])
    assert np.abs(M @ r - GMG(A2) @ r).max() <= 1e-12 * np.abs(M @ r).max()
    S = lr.Solver(A1, method="pcg-mg", rtol=1e-8)
    S.update(A2)
    res = S.solve(r)
    assert res.converged and np.linalg.norm(r - A2 @ res.x) <= 1e-8 * np.linalg.norm(r)
    with pytest.raises(ValueError, match="grid_shape"):
        M.update(lr.problems.poisson(n=(40, 35)).A)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="too small to coarsen"):
        GMG(lr.problems.poisson(n=(3, 3)).A)
    with pytest.raises(TypeError, match="grid operator"):
        GMG(lr.problems.poisson(n=16, format="csr").A)
    A = lr.problems.poisson(n=(16, 16)).A
    for kw in (dict(cycle="X"), dict(smoother="sor"), dict(presmooth=0), dict(omega=2.5),
               dict(interpolation="cubic")):
        with pytest.raises(ValueError):
            GMG(A, **kw)
    with pytest.raises(ValueError, match="shape"):
        GMG(A) @ np.ones(10)


def test_update_refills_the_device_data_that_recorded_graphs_read():
    """torch: after update() the level tensors are the same objects (a recorded CUDA graph
    keeps reading them) holding the new values - the same cycle as a fresh build; a change
    of the floating regions drops the recorded graphs instead.  Runs on the CPU by marking
    a graph as recorded."""
    pytest.importorskip("torch")
    shape = (24, 20, 12)
    k = np.exp(np.random.default_rng(2).standard_normal(shape))
    kw = dict(n=shape, dim=3, mask=sphere_obstacles(shape), backend="torch", rhs="random", seed=0)
    P = lr.problems.poisson(coefficient=k, **kw)
    M = GMG(P.A)
    M._privatize_device_data()        # what recording a graph does first
    M._graphs[("fake",)] = None
    x = P.b.clone()
    Ax = P.A @ x
    before = [lv.cache["device"][1] for lv in M.levels]
    tensors = [id(before[0]["diag"]), id(before[-1]["inverse"])]
    P2 = lr.problems.poisson(coefficient=3.0 * k[::-1], **kw)
    M.update(P2.A)
    assert ("fake",) in M._graphs
    assert [lv.cache["device"][1] for lv in M.levels] == before
    assert [id(before[0]["diag"]), id(before[-1]["inverse"])] == tensors
    assert np.array_equal((M @ P.b).numpy(), (GMG(P2.A) @ P.b).numpy())
    assert np.array_equal((P.A @ x).numpy(), Ax.numpy())   # the caller's operator is intact
    # all-Neumann: a floating region appears, the recorded graphs go
    P3 = lr.problems.poisson(coefficient=k, bc="neumann", **kw)
    M.update(P3.A)
    assert M._graphs == {}


def test_coarse_pseudo_inverse_with_more_null_vectors_than_regions():
    """A solid slab on coarse-cell boundaries, all sides Neumann: on the coarsest level two
    active cells meet across a zero face, so the coarse matrix has more null vectors than
    the connected regions say; the pseudo-inverse must still satisfy A A^+ A = A (the
    Cholesky shortcut falls back to the eigendecomposition), and float32 pcg-mg converges."""
    torch = pytest.importorskip("torch")
    from lrsolve.operators.grid import GridOperator
    solid = np.zeros((16, 16), bool)
    solid[7:9] = True
    A = GridOperator((16, 16), mask=solid, bc="neumann")
    M = GMG(A, coarse_size=8)
    Ac = M.levels[-1].op.to_csr(backend="numpy").toarray()
    inv = M.coarse_inverse
    assert np.abs(Ac @ inv @ Ac - Ac).max() <= 1e-8 * np.abs(Ac).max()
    assert np.abs(inv).max() <= 1e3 * np.abs(np.linalg.pinv(Ac)).max()
    T = A.to("torch", dtype=torch.float32)
    b = A.project_null(np.where(solid.reshape(-1), 0.0,
                                np.random.default_rng(0).standard_normal(256)))
    r = lr.solve(T, torch.as_tensor(b, dtype=torch.float32), method="pcg-mg", rtol=1e-5,
                 coarse_size=8)
    assert r.converged and r.iterations <= 12
