"""The Newton–KKT system and its inexact solvers.

At an iterate ``(x, lam)`` Newton's step for ``min f s.t. c = 0`` solves::

    [ B   G^T ] [dx  ]     [ ∇ₓL ]
    [ G    0  ] [dlam] = - [  c  ]        B = ∇²ₓL + t I,  G = ∇c^T,

where ``t >= 0`` is the Hessian modification.  :class:`KKTSystem` applies the matrix
(matrix-free when ``B`` or ``G`` are operators) and assembles it when both are
matrices.  Three solvers share one calling convention ``solve(K, b, z, r, tol, ...)``
and stop as soon as the residual meets the caller's accuracy bound ``‖b - K z‖ <= tol``:

* :func:`sketch_project` - randomized iterative sketching (block sketch-and-project,
  Gower & Richtárik 2015), the solver of Hong, Na, Mahoney & Kolar (ICML 2023);
* :func:`krylov_solve` - restarted GMRES (ILU-preconditioned when the system is sparse);
* :func:`nullspace_nystrom_solve` - conjugate gradients on the reduced system
  ``ZᵀBZ u = Zᵀ(...)`` in the null space of ``G`` (``Z = [-G_B⁻¹G_N; I]`` from a sparse LU
  of a square basis block ``G_B``), preconditioned by a randomized Nyström
  approximation of the reduced Hessian built from one Gaussian sketch (Frangella,
  Tropp & Udell, SIAM J. Matrix Anal. Appl. 2023), with negative-curvature detection;
* :func:`direct_solve` - dense LU / sparse LU, the exact-Newton reference.

:func:`kkt_inertia` counts the eigenvalue signs of ``K`` from an LDLᵀ factorisation
(Sylvester's law of inertia): ``K`` has inertia ``(n, m, 0)`` exactly when the reduced
Hessian ``ZᵀBZ`` is positive definite and ``G`` has full rank (Gould 1985).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..sketch import make_sketch
from .problem import matvec, rmatvec

__all__ = ["KKTSystem", "sketch_project", "krylov_solve", "direct_solve",
           "nullspace_nystrom_solve", "NullSpaceBasis", "NystromPreconditioner", "kkt_inertia",
           "INNER_SOLVERS"]

INNER_SOLVERS = ("sketch", "gmres", "direct", "nystrom")


def _is_matrix(A: Any) -> bool:
    return isinstance(A, np.ndarray) or sp.issparse(A)


class KKTSystem:
    """``K = [[H + t I, G^T], [G, 0]]`` for a Hessian ``H`` (matrix, operator or a
    product callable) and Jacobian ``G`` (dense, sparse or operator)."""

    def __init__(self, H: Any, G: Any, shift: float = 0.0, hessp=None, dual_reg: float = 0.0):
        self.H = H
        self.G = G
        self.shift = float(shift)
        # -ρ I in the (2,2) block keeps K nonsingular when G loses rank (LICQ fails).
        self.dual_reg = float(dual_reg)
        self._hessp = hessp
        self.m, self.n = G.shape
        self.N = self.n + self.m
        self._explicit = False  # not yet built (None means "matrix-free")
        self.matvecs = 0
        # Set by an inner solver that met ``pᵀBp <= 0`` on the tangent space:
        # {"direction": unit n-vector in null(G), "curvature": pᵀBp / pᵀp}.
        self.negative_curvature = None

    def hess_vec(self, v):
        if self.H is not None:
            return matvec(self.H, v)
        return self._hessp(v)

    def matvec(self, z):
        self.matvecs += 1
        n = self.n
        x, y = z[:n], z[n:]
        top = self.hess_vec(x) + self.shift * x + rmatvec(self.G, y)
        return np.concatenate([top, matvec(self.G, x) - self.dual_reg * y])

    def matmat(self, Z):
        K = self.explicit()
        if K is not None:
            out = K @ Z
            return out.toarray() if sp.issparse(out) else np.asarray(out)
        return np.column_stack([self.matvec(Z[:, j]) for j in range(Z.shape[1])])

    def explicit(self):
        """The assembled matrix (scipy CSR if either block is sparse, else dense), or
        ``None`` when ``H`` or ``G`` is only available as an operator."""
        if self._explicit is not False:
            return self._explicit
        if not (_is_matrix(self.H) and _is_matrix(self.G)):
            self._explicit = None
            return None
        n, m = self.n, self.m
        if sp.issparse(self.H) or sp.issparse(self.G):
            B = sp.csr_matrix(self.H) + self.shift * sp.identity(n, format="csr")
            G = sp.csr_matrix(self.G)
            C = -self.dual_reg * sp.identity(m, format="csr") if self.dual_reg else None
            self._explicit = sp.bmat([[B, G.T], [G, C]], format="csr")
        else:
            B = np.asarray(self.H, dtype=float) + self.shift * np.eye(n)
            G = np.asarray(self.G, dtype=float)
            self._explicit = np.block([[B, G.T], [G, -self.dual_reg * np.eye(m)]])
        return self._explicit

    def aslinearoperator(self):
        K = self.explicit()
        if K is not None:
            return spla.aslinearoperator(K)
        return spla.LinearOperator((self.N, self.N), matvec=self.matvec, dtype=float)

    def norm_estimate(self, iterations: int = 30, seed=0) -> float:
        """``‖K‖_2`` (exact for small dense systems, power iteration otherwise)."""
        K = self.explicit()
        if isinstance(K, np.ndarray) and self.N <= 2000:
            return float(np.linalg.norm(K, 2))
        v = np.random.default_rng(seed).standard_normal(self.N)
        v /= np.linalg.norm(v)
        est = 0.0
        for _ in range(iterations):
            w = self.matvec(v) if K is None else np.asarray(K @ v)
            est = float(np.linalg.norm(w))
            if est == 0.0:
                return 0.0
            v = w / est
        return est


def _default_block(N: int) -> int:
    # s = N would make one Gaussian sketch-and-project step an exact solve; s = N - 1
    # keeps it a genuine (rank-deficient) projection.  On the small degenerate HS
    # problems (HS26/46/47/49) s = N/2 or s = 1 stall at KKT ~1e-5 within 5000 inner
    # steps per Newton step, s = N - 1 converges; large systems use s = 16.
    return max(1, min(16, N - 1))


def sketch_project(K: KKTSystem, b, z, r, tol: float, *, kind: str = "gaussian",
                   block_size: int | None = None, rng=None, maxiter: int = 20000,
                   recompute_every: int | None = None):
    """Block sketch-and-project for ``K z = b``, continued from ``(z, r = b - K z)``.

    Each step draws a fresh ``s x N`` sketch ``S`` and projects ``z`` onto
    ``{z' : S K z' = S b}``::

        W = S K,   z <- z + W^T (W W^T)^+ S r,   r <- r - K (W^T (W W^T)^+ S r).

    The residual is updated with ``K dz`` rather than recomputed as ``b - K z``; for row
    or CountSketch sketches of a sparse ``K`` the step ``dz`` touches only the columns
    in the sampled rows' pattern, so the update costs those columns only.  ``‖r‖^2`` is
    also carried incrementally, and ``r`` is recomputed exactly once every
    ``recompute_every`` steps (default: one sweep, ``N / s``) against drift.

    Returns
    -------
    z, r, iterations, reached : the iterate, its residual, steps taken, and whether
    ``‖r‖ <= tol`` holds.
    """
    N = K.N
    s = int(block_size or _default_block(N))
    s = max(1, min(s, N))
    if kind == "srht" and s > N:
        s = N
    period = int(recompute_every or max(20, N // s))
    Kexp = K.explicit()
    sparse_K = sp.issparse(Kexp)
    if sparse_K:
        Kcsr = Kexp.tocsr()
        Kcsc = Kexp.tocsc()
    z = np.array(z, dtype=float)
    r = np.array(r, dtype=float)
    rr = float(r @ r)
    tol2 = tol * tol
    for it in range(1, maxiter + 1):
        if rr <= tol2:
            return z, r, it - 1, True
        S = make_sketch(kind, s, N, seed=rng)
        Smat = S.matrix
        if Kexp is None:
            St = Smat.T if Smat is not None else S.todense().T
            St = St.toarray() if sp.issparse(St) else St
            W = K.matmat(np.asarray(St)).T
        elif sparse_K and sp.issparse(Smat):
            W = (Smat @ Kcsr).tocsr()  # stays sparse: s combinations of rows of K
        else:
            W = S.apply(Kexp)
        Sr = np.asarray(S.apply(r)).reshape(-1)
        gram = W @ W.T
        gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
        if not np.any(gram):
            continue  # the sketch missed every nonzero row; draw again
        if not (np.all(np.isfinite(gram)) and np.all(np.isfinite(Sr))):
            # Overflowing H or G: report, never raise from inside LAPACK.
            return z, r, it - 1, False
        y = sla.lstsq(gram, Sr, cond=1e-13, lapack_driver="gelsy", check_finite=False)[0]
        if sp.issparse(W):
            support = np.unique(W.indices)
            dz = np.asarray(W[:, support].T @ y).reshape(-1)
            z[support] += dz
            delta = np.asarray(Kcsc[:, support] @ dz).reshape(-1)
        else:
            dz = np.asarray(W.T @ y).reshape(-1)
            z += dz
            delta = np.asarray(Kexp @ dz).reshape(-1) if Kexp is not None else K.matvec(dz)
        # ‖r - δ‖² = ‖r‖² - 2 rᵀδ + ‖δ‖²: no extra pass over r.
        rr = rr - 2.0 * float(r @ delta) + float(delta @ delta)
        r -= delta
        if it % period == 0 or rr <= tol2 or rr < 0:
            r = b - (np.asarray(Kexp @ z).reshape(-1) if Kexp is not None else K.matvec(z))
            rr = float(r @ r)
    return z, r, maxiter, rr <= tol2


def krylov_solve(K: KKTSystem, b, z, r, tol: float, *, maxiter: int = 2000, restart: int = 60,
                 cache: dict | None = None, **_):
    """Restarted GMRES from ``z`` to ``‖b - K z‖ <= tol`` (ILU preconditioner for a
    sparse assembled ``K``; none otherwise).  Returns ``z, r, iterations, reached``.

    ``cache`` (a dict owned by the caller) keeps the ILU factors while the Hessian and
    Jacobian objects are the same ones (a QP or linear constraints returning fixed
    matrices): a stale preconditioner could only slow GMRES, never change its answer,
    because the true residual is checked."""
    Kexp = K.explicit()
    op = K.aslinearoperator()
    M = None
    if sp.issparse(Kexp):
        params = (K.shift, K.dual_reg)
        if (cache is not None and cache.get("params") == params and cache["H"] is K.H
                and cache["G"] is K.G):    # the same matrix objects, the same scalars
            M = cache["M"]
        else:
            try:
                ilu = spla.spilu(Kexp.tocsc(), drop_tol=1e-5, fill_factor=20)
                M = spla.LinearOperator(op.shape, matvec=ilu.solve, dtype=float)
            except RuntimeError:  # exactly singular pivot: go unpreconditioned
                M = None
            if cache is not None:
                cache.update(params=params, H=K.H, G=K.G, M=M)
    count = [0]

    def callback(_):
        count[0] += 1

    bnorm = float(np.linalg.norm(b))
    z = np.array(z, dtype=float)
    for _attempt in range(3):
        # GMRES measures the preconditioned residual; re-check the true one and tighten.
        rtol = max(min(0.5, tol / max(bnorm, 1e-300)), 1e-15) / (10.0 ** _attempt)
        z, _info = spla.gmres(op, b, x0=z, rtol=rtol, atol=0.0, restart=restart,
                              maxiter=max(1, maxiter // restart), M=M, callback=callback,
                              callback_type="pr_norm")
        r = b - op.matvec(z)
        if np.linalg.norm(r) <= tol:
            break
    return z, r, count[0], bool(np.linalg.norm(r) <= tol)


def direct_solve(K: KKTSystem, b, z, r, tol: float, **_):
    """Exact solve (dense LU or sparse LU; least squares if ``K`` is singular).
    Matrix-free systems fall back to GMRES at tolerance ``1e-12 ‖b‖``."""
    Kexp = K.explicit()
    bnorm = float(np.linalg.norm(b))
    if Kexp is None:
        return krylov_solve(K, b, z, r, min(tol, 1e-12 * bnorm), maxiter=20 * K.N)
    try:
        if sp.issparse(Kexp):
            with np.errstate(all="ignore"):
                z = spla.splu(Kexp.tocsc()).solve(b)
        else:
            z = sla.solve(Kexp, b, assume_a="sym", check_finite=True)
        if not np.all(np.isfinite(z)):
            raise np.linalg.LinAlgError("non-finite solution")
    except (RuntimeError, np.linalg.LinAlgError, ValueError, sla.LinAlgWarning):
        if sp.issparse(Kexp):
            z = spla.lsqr(Kexp, b, atol=1e-14, btol=1e-14, iter_lim=10 * K.N)[0]
        else:
            z = sla.lstsq(Kexp, b, cond=1e-12)[0]
    r = b - np.asarray(Kexp @ z).reshape(-1)
    return z, r, 1, bool(np.linalg.norm(r) <= max(tol, 1e-10 * max(bnorm, 1.0)))


def kkt_inertia(K) -> tuple[int, int, int]:
    """``(positive, negative, zero)`` eigenvalue counts of a symmetric dense ``K`` from
    its Bunch-Kaufman LDLᵀ factorisation (the 1x1 and 2x2 blocks of ``D``)."""
    K = np.asarray(K, dtype=float)
    _, D, _ = sla.ldl(K, lower=True, check_finite=False)
    N = D.shape[0]
    scale = max(float(np.max(np.abs(D))) if N else 0.0, 1e-300)
    tiny = 1e3 * np.finfo(float).eps * scale
    pos = neg = zero = 0
    i = 0
    while i < N:
        if i + 1 < N and D[i + 1, i] != 0.0:
            vals = np.linalg.eigvalsh(D[i:i + 2, i:i + 2])
            i += 2
        else:
            vals = [D[i, i]]
            i += 1
        for v in vals:
            if v > tiny:
                pos += 1
            elif v < -tiny:
                neg += 1
            else:
                zero += 1
    return pos, neg, zero


class NullSpaceBasis:
    """``Z = P [-G_B⁻¹ G_N; I]``: a basis of ``null(G)`` from a sparse LU of the square
    block ``G_B = G[:, basis]`` (the state block of a PDE-constrained problem).

    ``Z u`` and ``Zᵀ v`` cost one LU solve each; :meth:`particular` gives the ``x`` with
    ``G x = c`` supported on the basis, and :meth:`multipliers` the ``y`` with
    ``G_Bᵀ y = v_B``."""

    def __init__(self, G, basis):
        G = sp.csc_matrix(G)
        self.m, self.n = G.shape
        basis = np.asarray(basis, dtype=np.int64)
        if basis.size != self.m:
            raise ValueError(f"basis has {basis.size} indices but G has {self.m} rows")
        self.basis = basis
        mask = np.ones(self.n, dtype=bool)
        mask[basis] = False
        self.nonbasis = np.flatnonzero(mask)
        self.lu = spla.splu(G[:, basis].tocsc())
        self.GN = G[:, self.nonbasis].tocsr()
        self.GNT = self.GN.T.tocsr()
        self.solves = 0

    def Z(self, U):
        """``Z U`` for a vector or an ``(n - m, k)`` block."""
        U = np.asarray(U, dtype=float)
        out = np.zeros((self.n,) + U.shape[1:])
        out[self.nonbasis] = U
        rhs = self.GN @ U
        out[self.basis] = -self.lu.solve(np.asarray(rhs))
        self.solves += 1
        return out

    def ZT(self, V):
        """``Zᵀ V`` for a vector or an ``(n, k)`` block."""
        V = np.asarray(V, dtype=float)
        w = self.lu.solve(np.ascontiguousarray(V[self.basis]), trans="T")
        self.solves += 1
        return V[self.nonbasis] - np.asarray(self.GNT @ w)

    def particular(self, c):
        x = np.zeros(self.n)
        x[self.basis] = self.lu.solve(np.asarray(c, dtype=float))
        self.solves += 1
        return x

    def multipliers(self, v):
        self.solves += 1
        return self.lu.solve(np.ascontiguousarray(v[self.basis]), trans="T")


class NystromPreconditioner:
    """Randomized Nyström preconditioner of a symmetric positive semidefinite ``M``
    (Frangella, Tropp & Udell 2023, Algorithms 2.1 and 5.1).

    From ``Y = M Ω`` for one Gaussian sketch ``Ω`` (``lrsolve.sketch``, ``rank`` columns)
    it forms ``M̂ = U Λ Uᵀ`` and applies ``P⁻¹ = U (λ_ℓ / Λ) Uᵀ + (I - UUᵀ)``: the top
    ``ℓ`` eigenvalues of ``M`` are mapped to ``λ_ℓ``, the rest are left alone.

    If ``ΩᵀMΩ`` is not positive definite, ``M`` is not either: :attr:`negative` then
    holds ``(Ω w, curvature)`` for the most negative Ritz pair and no preconditioner is
    built (``apply`` is the identity).
    """

    def __init__(self, matmat, size: int, rank: int, rng=None):
        rank = max(1, min(int(rank), size))
        Omega = np.asarray(make_sketch("gaussian", rank, size, seed=rng).matrix).T.copy()
        Omega, _ = np.linalg.qr(Omega)
        Y = np.asarray(matmat(Omega))
        self.negative = None
        self.U = None
        core = 0.5 * (Omega.T @ Y + Y.T @ Omega)
        evals, evecs = np.linalg.eigh(core)
        scale = max(float(np.max(np.abs(evals))), 1e-300)
        if evals[0] <= -1e-10 * scale:
            w = Omega @ evecs[:, 0]
            self.negative = (w / np.linalg.norm(w), float(evals[0]))
            return
        nu = np.sqrt(size) * np.finfo(float).eps * max(float(np.linalg.norm(Y, 2)), 1e-300)
        Ynu = Y + nu * Omega
        try:
            C = np.linalg.cholesky(0.5 * (Omega.T @ Ynu + Ynu.T @ Omega))
        except np.linalg.LinAlgError:
            return  # numerically rank-deficient sketch: leave unpreconditioned
        Bf = sla.solve_triangular(C, Ynu.T, lower=True).T
        U, sigma, _ = np.linalg.svd(Bf, full_matrices=False)
        lam = np.maximum(sigma ** 2 - nu, 0.0)
        keep = lam > 1e-14 * max(lam[0], 1e-300)
        if not np.any(keep):
            return
        self.U, self.lam = U[:, keep], lam[keep]
        self.floor = float(self.lam[-1])

    def apply(self, v):
        if self.U is None:
            return v
        Utv = self.U.T @ v
        return v + self.U @ ((self.floor / self.lam - 1.0) * Utv)


def nullspace_nystrom_solve(K: KKTSystem, b, z, r, tol: float, *, basis=None, rank: int = 20,
                            maxiter: int = 2000, rng=None, cache: dict | None = None, **_):
    """Solve ``K z = b`` in the null space of ``G`` by Nyström-preconditioned CG.

    With ``x = x_p + Z u`` (``G x_p = b_c``) the KKT system reduces to
    ``ZᵀBZ u = Zᵀ(b_x - B x_p)``, and with multipliers from ``G_Bᵀ y = (b_x - B x)_B``
    the full KKT residual is ``(Zᵀ(b_x - B x), 0)``: the CG residual *is* the residual
    that the adaptive accuracy condition ``‖b - K z‖ <= tol`` measures (checked once
    more on ``K`` at the end).  The reduced Hessian is preconditioned by a rank-``rank``
    randomized Nyström approximation (one Gaussian sketch of the reduced space).

    Negative curvature (``pᵀZᵀBZp <= 0``, met by the sketch or by a CG direction) stops
    the solve: ``K.negative_curvature`` then holds the unit direction ``Zp`` and its
    curvature, and ``reached`` is False, so that the caller can increase the Hessian
    shift and use the direction.  Returns ``z, r, iterations, reached``.
    """
    n, m = K.n, K.m
    if basis is None or K.dual_reg:
        # No basis (or a regularised, rank-deficient G): GMRES under the same condition.
        return krylov_solve(K, b, z, r, tol, maxiter=maxiter, cache=cache)
    if cache is not None and cache.get("G") is K.G:
        Zb = cache["basis"]
    else:
        Zb = NullSpaceBasis(K.G, basis)
        if cache is not None:
            cache.update(G=K.G, basis=Zb)

    def B(V):
        if K.H is None:
            out = (np.column_stack([K.hess_vec(V[:, j]) for j in range(V.shape[1])])
                   if V.ndim == 2 else K.hess_vec(V))
        else:
            out = K.H @ V
            out = out.toarray() if sp.issparse(out) else np.asarray(out)
        return out + K.shift * V

    def reduced(U):
        return Zb.ZT(B(Zb.Z(U)))

    size = n - m
    # The preconditioner of an earlier Newton step is kept while it still works (its
    # last solve took <= 10 CG steps) and the shift is unchanged: a stale Nyström
    # preconditioner is still SPD, so CG stays correct and only its speed depends on it.
    pre = cache.get("pre") if cache is not None else None
    if pre is None or cache.get("shift") != K.shift or cache.get("last_its", 0) > 10:
        pre = NystromPreconditioner(reduced, size, min(rank, size), rng=rng)
        if cache is not None:
            cache.update(pre=pre, shift=K.shift, last_its=0)
    K.negative_curvature = None
    if pre.negative is not None:
        d = Zb.Z(pre.negative[0])
        dn = float(np.linalg.norm(d))
        K.negative_curvature = {"direction": d / dn, "curvature": pre.negative[1] / dn ** 2}
        return z, r, 0, False
    bx, bc = b[:n], b[n:]
    xp = Zb.particular(bc)
    u = np.array(z[Zb.nonbasis], dtype=float)
    rhs = Zb.ZT(bx - B(xp))
    res = rhs - reduced(u) if np.any(u) else rhs.copy()
    tol2 = tol * tol
    its = 0
    y = pre.apply(res)
    p = y.copy()
    ry = float(res @ y)
    while float(res @ res) > tol2 and its < maxiter:
        Mp = reduced(p)
        curv = float(p @ Mp)
        pp = float(p @ p)
        if curv <= 1e-14 * pp * max(1.0, abs(ry) / max(pp, 1e-300)) or not math.isfinite(curv):
            d = Zb.Z(p)
            dn = float(np.linalg.norm(d))
            K.negative_curvature = {"direction": d / dn, "curvature": curv / dn ** 2}
            break
        step = ry / curv
        u += step * p
        res -= step * Mp
        y = pre.apply(res)
        ry_new = float(res @ y)
        p = y + (ry_new / ry) * p
        ry = ry_new
        its += 1
    if cache is not None:
        cache["last_its"] = its
    x = xp + Zb.Z(u)
    lam = Zb.multipliers(bx - B(x))
    z = np.concatenate([x, lam])
    r = b - K.matvec(z)
    reached = K.negative_curvature is None and bool(np.linalg.norm(r) <= tol)
    return z, r, max(its, 1), reached


SOLVERS = {"sketch": sketch_project, "gmres": krylov_solve, "direct": direct_solve,
           "nystrom": nullspace_nystrom_solve}
