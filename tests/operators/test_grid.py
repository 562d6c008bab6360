"""GridOperator: rectangular grids, cell coefficients (harmonic faces), Dirichlet/Neumann
sides, solid masks; matrix-free products against the assembled CSR, on NumPy and torch."""
import numpy as np
import pytest

import lrsolve as lr
from lrsolve.operators import PoissonStencil
from lrsolve.operators.grid import GridOperator, as_grid_operator


def _cases(rng):
    k3 = np.exp(rng.standard_normal((5, 6, 7)))
    solid3 = rng.random((5, 6, 7)) < 0.25
    return [
        dict(grid_shape=(9,)),
        dict(grid_shape=(7, 5), bc="neumann"),
        dict(grid_shape=(7, 5), bc={"x-": "neumann", "y+": "neumann"}, spacing=(0.1, 0.2)),
        dict(grid_shape=(5, 6, 7), coefficient=k3, mask=solid3,
             bc={"x-": "neumann", "z+": "neumann"}),
        dict(grid_shape=(4, 5, 6), coefficient=2.5, shift=3.0),
    ]


def test_matvec_matches_csr_and_is_symmetric(rng):
    for case in _cases(rng):
        A = GridOperator(**case)
        C = A.to_csr()
        assert abs(C - C.T).max() == 0.0
        x = rng.standard_normal(A.shape[0])
        X = rng.standard_normal((A.shape[0], 3))
        scale = abs(C).max()
        assert np.abs(A @ x - C @ x).max() <= 1e-13 * scale * np.abs(x).max()
        assert np.abs(A @ X - C @ X).max() <= 1e-13 * scale * np.abs(X).max()
        assert np.allclose(A.diagonal(), C.diagonal(), rtol=1e-15, atol=0)


def test_torch_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    for case in _cases(rng):
        A = GridOperator(**case)
        At = GridOperator(**case, backend="torch")
        X = rng.standard_normal((A.shape[0], 2))
        out = At @ torch.from_numpy(X)
        assert np.abs(out.numpy() - A @ X).max() <= 1e-12 * np.abs(A @ X).max()
        assert np.abs((At @ torch.from_numpy(X[:, 0])).numpy() - A @ X[:, 0]).max() <= \
            1e-12 * np.abs(A @ X).max()


def test_unit_cube_equals_poisson_stencil(rng):
    S = PoissonStencil(9, 3)
    G = GridOperator((9, 9, 9))
    assert abs(S.to_csr() - G.to_csr()).max() == 0.0
    x = rng.standard_normal(G.shape[0])
    assert np.abs(as_grid_operator(S) @ x - S @ x).max() <= 1e-12 * np.abs(S @ x).max()


def test_harmonic_face_value_across_a_jump():
    k = np.array([1.0, 1e4, 1e4])
    A = GridOperator((3,), coefficient=k, spacing=1.0).to_csr().toarray()
    # series conductance of the two half cells: 2 k1 k2 / (k1 + k2), not the mean 5000.5
    assert A[0, 1] == pytest.approx(-2 * 1e4 / (1 + 1e4), rel=1e-14)
    # Dirichlet wall: the boundary face takes the adjacent cell's value
    assert A[0, 0] == pytest.approx(1.0 + 2 * 1e4 / (1 + 1e4), rel=1e-14)


def test_mask_closes_faces_and_neumann_null_space(rng):
    solid = np.zeros((8, 8), dtype=bool)
    solid[3, :] = True                       # a wall that cuts the box in two
    bc = {"x-": "neumann", "y-": "neumann", "y+": "neumann"}   # only x+ is Dirichlet
    A = GridOperator((8, 8), mask=solid, bc=bc)
    labels, sizes = A.floating_components()
    assert sizes.tolist() == [24]            # rows 0..2 float, rows 4..7 touch x+
    ones = np.where(labels == 1, 1.0, 0.0)
    assert np.abs(A @ ones).max() <= 1e-10
    # excluded cells are identity rows
    x = rng.standard_normal(64)
    assert np.allclose((A @ x).reshape(8, 8)[3], x.reshape(8, 8)[3])
    b = rng.standard_normal(64)
    assert A.null_incompatibility(b) > 0.01
    assert A.null_incompatibility(A.project_null(b.copy())) < 1e-14


def test_pure_neumann_box_is_singular():
    A = GridOperator((6, 5), bc="neumann")
    assert A.singular
    assert np.abs(A @ np.ones(30)).max() <= 1e-10
    assert not GridOperator((6, 5)).singular


@pytest.mark.parametrize("kwargs, message", [
    (dict(coefficient=np.zeros((4, 4))), "coefficient must be > 0"),
    (dict(coefficient=np.full((4, 4), np.nan)), "NaN"),
    (dict(coefficient=np.ones((4, 5))), "grid shape"),
    (dict(coefficient=-1.0), "coefficient"),
    (dict(mask=np.ones((4, 4), dtype=bool)), "no unknowns"),
    (dict(bc={"w-": "neumann"}), "unknown sides"),
    (dict(bc="robin"), "bc must be"),
    (dict(spacing=(0.1, -1.0)), "spacing"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GridOperator((4, 4), **kwargs)


def test_bad_mask_dtype_and_backend_mix(rng):
    with pytest.raises(TypeError, match="boolean"):
        GridOperator((4, 4), mask=np.zeros((4, 4)))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="backend"):
        GridOperator((4, 4)) @ torch.zeros(16, dtype=torch.float64)
    with pytest.raises(TypeError, match="grid operator"):
        as_grid_operator(GridOperator((4, 4)).to_csr())

def test_to_moves_the_operator_between_backends_and_dtypes():
    """``A.to(...)`` keeps the operator (faces, mask, Neumann sides, shift, null space)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shape = (12, 10, 8)
    mask = np.zeros(shape, bool)
    mask[4:7, 3:6, 2:5] = True
    x = rng.standard_normal(int(np.prod(shape)))
    for kw in (dict(coefficient=np.exp(rng.standard_normal(shape)), mask=mask,
                    bc={"x-": "neumann"}), dict(bc="neumann"), dict(shift=2.0)):
        A = lr.problems.poisson(n=shape, dim=3, **kw).A
        ref = A @ x
        T = A.to("torch")
        assert T.backend == "torch" and T.dtype == np.float64
        assert np.abs(T @ torch.as_tensor(x) - torch.as_tensor(ref)).max() <= 1e-13 * np.abs(ref).max()
        T32 = A.to("torch", dtype=torch.float32)
        assert T32.dtype == np.float32
        y = (T32 @ torch.as_tensor(x, dtype=torch.float32)).double().numpy()
        assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
        assert T.singular == A.singular and np.array_equal(T.active, A.active)
        back = T.to("numpy")
        assert np.array_equal(back @ x, ref)
    with pytest.raises(ValueError, match="backend"):
        A.to("jax")


def test_gpu_null_projection_by_reductions_matches_index_add():
    """The GPU path of project_null (one dot product per floating region) gives the CPU
    path's answer: two floating regions split by a solid wall, all sides Neumann."""
    torch = pytest.importorskip("torch")
    shape = (20, 18, 10)
    mask = np.zeros(shape, bool)
    mask[9:11] = True
    A = lr.problems.poisson(n=shape, dim=3, mask=mask, bc="neumann", backend="torch").A
    labels, sizes = A.floating_components()
    assert sizes.size == 2
    x = torch.randn(A.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = A.project_null(x.clone())
    out = A._project_by_reductions(x.clone(), torch.as_tensor(labels), sizes)
    assert torch.abs(out - ref).max() <= 1e-14 * torch.abs(x).max()
    lab = torch.as_tensor(labels)
    assert all(abs(float(out[lab == c + 1].sum())) <= 1e-10 for c in range(2))
