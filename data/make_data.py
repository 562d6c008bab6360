"""Regenerate the inputs in data/: small SPD Matrix Market files and coefficient fields.

Run from the repository root: ``python data/make_data.py``.  Deterministic (fixed seeds);
every file is written through lrsolve.io.atomic_save.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import scipy.io
from scipy.ndimage import gaussian_filter

import lrsolve as lr

HERE = Path(__file__).resolve().parent


def lognormal(shape, sigma=2.0, correlation=4.0, seed=0):
    """exp(sigma * g) for a unit-variance Gaussian field g smoothed over ``correlation`` cells."""
    g = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), correlation,
                        mode="wrap")
    return np.exp(sigma * g / g.std())


def layered(shape, layers=8, contrast=1e4):
    """Layers across the first axis alternating between 1 and ``contrast``."""
    X = np.indices(shape)
    return np.where((X[0] // max(1, shape[0] // layers)) % 2 == 0, 1.0, contrast)


def save_mtx(name, A, comment):
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, A.tocoo(), comment=comment, field="real", symmetry="symmetric")
    lr.io.atomic_save(HERE / name, buf.getvalue())


def save_npy(name, array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    lr.io.atomic_save(HERE / name, buf.getvalue())


def main():
    shape = (64, 64)
    k_log = lognormal(shape)
    k_lay = layered(shape)
    solid = lr.problems.sphere_obstacles(shape)
    save_npy("lognormal_64x64.npy", k_log)
    save_npy("layered_64x64.npy", k_lay)
    save_npy("obstacles_64x64.npy", solid)
    save_mtx("poisson2d_32.mtx", lr.problems.poisson(32, 2, format="csr").A,
             "lrsolve: 2D Poisson, 32x32 interior points, unit square, zero Dirichlet")
    save_mtx("lognormal2d_64.mtx",
             lr.problems.poisson((64, 64), coefficient=k_log, format="csr").A,
             "lrsolve: -div(k grad u) on 64x64 cells, k = lognormal_64x64.npy (sigma 2), "
             "harmonic face means, zero Dirichlet")
    save_mtx("obstacles2d_64.mtx",
             lr.problems.poisson((64, 64), coefficient=k_lay, mask=solid, format="csr").A,
             "lrsolve: 64x64 cells, k = layered_64x64.npy (contrast 1e4), solid cells of "
             "obstacles_64x64.npy are identity rows (Neumann walls), zero Dirichlet sides")
    print("wrote", sorted(p.name for p in HERE.iterdir() if p.suffix in (".mtx", ".npy")))


if __name__ == "__main__":
    main()
