"""The Poisson problem generator: formats, right-hand sides, seeds, validation."""
from __future__ import annotations

import numpy as np
import pytest

import lrsolve as lr
from lrsolve import backend as bk


def test_formats_give_same_solution():
    Ps = lr.problems.poisson(20, 2, rhs="smooth", seed=4)
    Pc = lr.problems.poisson(20, 2, rhs="smooth", seed=4, format="csr")
    xs = lr.solve(Ps.A, Ps.b, rtol=1e-11).x
    xc = lr.solve(Pc.A, Pc.b, rtol=1e-11).x
    np.testing.assert_allclose(xs, xc, rtol=1e-8, atol=1e-12)


def test_discretisation_error_is_second_order():
    # u = sin(pi x) sin(pi y) solves -Lap u = 2 pi^2 u; the 5-point error is O(h^2).
    errs = []
    for n in (15, 31, 63):
        X, Y = lr.problems.grid_coordinates(n, 2)
        u = np.sin(np.pi * X) * np.sin(np.pi * Y)
        P = lr.problems.poisson(n, 2, rhs=2 * np.pi ** 2 * u)
        x = lr.solve(P.A, P.b, rtol=1e-12).x.reshape(n, n)
        errs.append(np.abs(x - u).max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(rates > 1.9), rates


def test_seed_reproducible_and_kinds():
    a = lr.problems.poisson(10, 2, seed=1).b
    b = lr.problems.poisson(10, 2, seed=1).b
    c = lr.problems.poisson(10, 2, seed=2).b
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    point = lr.problems.poisson(9, 2, rhs="point").b
    assert np.count_nonzero(point) == 1
    assert lr.problems.poisson(4, 3, rhs="ones").meta["unknowns"] == 64


def test_callable_coefficient_and_backend():
    pytest.importorskip("torch")
    P = lr.problems.poisson(12, 2, coefficient=lambda X, Y: 1 + X * Y, backend="torch")
    assert bk.backend_name(P.b) == "torch" and P.meta["coefficient"] == "variable"


@pytest.mark.parametrize("kw,match", [(dict(format="dense"), "format"), (dict(rhs="sparkly"), "rhs"),
                                      (dict(n=-3), "n"), (dict(rhs=np.ones(5)), "rhs")])
def test_bad_arguments(kw, match):
    args = dict(n=8, dim=2)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        lr.problems.poisson(**args)


def test_grid_problem_rectangular_mask_and_bc():
    rng = np.random.default_rng(0)
    shape = (12, 9, 7)
    k = np.exp(rng.standard_normal(shape))
    solid = rng.random(shape) < 0.2
    P = lr.problems.poisson(n=shape, dim=3, coefficient=k, mask=solid, bc="dirichlet",
                            rhs="random", seed=0)
    assert P.A.shape == (12 * 9 * 7,) * 2 and P.A.grid_shape == shape
    assert P.meta["unknowns"] == int((~solid).sum()) and P.meta["solid_cells"] == solid.sum()
    assert np.all(P.b.reshape(shape)[solid] == 0.0)       # excluded cells carry no load
    # CSR format is the same matrix
    C = lr.problems.poisson(n=shape, dim=3, coefficient=k, mask=solid, format="csr").A
    assert abs(C - P.A.to_csr()).max() == 0.0
    # a floating (all-Neumann) problem gets a compatible right-hand side
    N = lr.problems.poisson(n=(10, 6), bc="neumann", rhs="random", seed=3)
    assert N.meta["singular"] and abs(N.b.sum()) <= 1e-12 * np.abs(N.b).sum()
    # the int-n unit box keeps the old operator
    assert type(lr.problems.poisson(8, 2).A).__name__ == "PoissonStencil"


@pytest.mark.parametrize("kw,err,match", [
    (dict(n=(8, 8), dim=3), ValueError, "dim"),
    (dict(n=(8, 0)), ValueError, "n must"),
    (dict(n=(8, 8), coefficient=np.zeros((8, 8))), ValueError, "coefficient"),
    (dict(n=(8, 8), mask=np.ones((8, 8), dtype=bool)), ValueError, "no unknowns"),
    (dict(n=(8, 8), bc={"q+": "neumann"}), ValueError, "sides"),
    (dict(n=(8, 8), rhs=np.ones(5)), ValueError, "rhs"),
])
def test_grid_problem_bad_arguments(kw, err, match):
    with pytest.raises(err, match=match):
        lr.problems.poisson(**kw)
