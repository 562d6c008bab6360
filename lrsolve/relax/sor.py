"""SOR and SSOR: the solver ``sor``, the SSOR preconditioner, SSOR-PCG and adaptive SOR.

Two orderings:

* **lexicographic** - numba sweeps over a CPU CSR matrix (NumPy backend: SciPy sparse,
  dense arrays, lrsolve operators through ``to_csr()``, torch CPU CSR tensors viewed
  without a copy).  One sweep costs about one sparse mat-vec.
* **red-black** - for the 5-point (2D) / 7-point (3D) stencil operators (anything with a
  ``grid_shape`` and ``diagonal()``), written with the operator's own ``A @ x`` and
  masks, so it runs unchanged on NumPy, torch and CuPy (two mat-vecs per sweep).  The
  red-black ordering is consistently ordered, so Young's theory holds for it as well.

``sor`` stops when ``||b - A x|| <= max(rtol ||b||, atol)``; ``iterations`` counts the
sweeps that produced the returned iterate (the reference code's convention).

References
----------
D. M. Young, *Iterative Solution of Large Linear Systems*, Academic Press, 1971.
L. A. Hageman, D. M. Young, *Applied Iterative Methods*, Academic Press, 1981, ch. 9.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import backend as bk
from ..krylov import cg_result
from ..krylov.preconditioners import Preconditioner
from ..linsys import make_system
from ..operators import Operator, host_csr
from ..result import ZERO_RHS, SolveResult, Status
from .kernels import kernels
from .theory import jacobi_radius_from_rate, young_omega

__all__ = ["sor", "SSOR", "ssor_cg", "adaptive_sor", "check_omega", "csr_parts",
           "jacobi_bound", "ORDERINGS"]

ORDERINGS = ("auto", "lexicographic", "red-black")


def check_omega(omega: Any, name: str = "omega") -> float:
    """Return ``omega`` as a float, or raise ``ValueError`` unless ``0 < omega < 2``."""
    if isinstance(omega, bool):
        raise TypeError(f"{name} must be a real number, got {omega!r}")
    try:
        value = float(omega)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {omega!r}") from None
    if not (0.0 < value < 2.0):
        raise ValueError(f"{name} must lie in the open interval (0, 2) (SOR diverges or "
                         f"stalls outside it), got {omega!r}")
    return value


class CSRParts:
    """Raw CSR arrays of a matrix for the numba kernels (float64, int64, sorted columns)."""

    backend = "numpy"

    def __init__(self, matrix, indptr, indices, data, diag):
        self.matrix = matrix
        self.indptr, self.indices, self.data, self.diag = indptr, indices, data, diag
        self.n = matrix.shape[0]
        self.shape = matrix.shape
        self.dtype = np.dtype(np.float64)

    def matvec(self, x):
        return self.matrix @ x

    def __matmul__(self, x):
        return self.matrix @ x


def csr_parts(A: Any, name: str = "A") -> CSRParts:
    """Extract sorted CSR arrays and the diagonal from a CPU matrix or lrsolve operator.

    Raises ``ValueError`` on a zero diagonal entry (SOR divides by it) and ``TypeError``
    for GPU or complex matrices (the numba kernels are CPU / real only).
    """
    if isinstance(A, CSRParts):
        return A
    if _constant_stencil(A):
        return _stencil_parts(A)
    # The entries of anything lr.as_operator accepts (TypeError for matrix-free or GPU input).
    M = host_csr(A, name=name, purpose="lexicographic SOR / SSOR (numba kernels)")
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square, got shape {M.shape}")
    if M.dtype.kind == "c":
        raise TypeError(f"{name} is complex: the SOR kernels support real matrices only")
    if not M.has_sorted_indices:
        M = M.copy()
        M.sort_indices()
    diag = np.asarray(M.diagonal(), dtype=np.float64)
    zero = np.flatnonzero(diag == 0)
    if zero.size:
        raise ValueError(f"{name} has a zero diagonal entry (row {int(zero[0])}): SOR / SSOR "
                         "divide by the diagonal")
    return CSRParts(M, M.indptr.astype(np.int64), M.indices.astype(np.int64),
                    np.ascontiguousarray(M.data, dtype=np.float64), diag)


def _constant_stencil(A: Any) -> bool:
    from ..operators.stencil import PoissonStencil
    return isinstance(A, PoissonStencil) and A.coefficient is None and A.backend == "numpy"


# Assembling a stencil through to_csr() costs tens of milliseconds even for 100 unknowns,
# more than the solve; a time-stepping loop builds A + c_t I every step.  The unshifted
# pattern of a constant-coefficient stencil is assembled once per (n, dim, coefficient,
# scale) and the shift is added to a copy of its values.
_STENCIL_CACHE: dict = {}


def _stencil_parts(A: Any) -> "CSRParts":
    key = (A.n, A.dim, float(A.constant), float(A.scale))
    base = _STENCIL_CACHE.get(key)
    if base is None:
        from ..operators.stencil import PoissonStencil
        M = sp.csr_matrix(PoissonStencil(A.n, A.dim, A.constant, 0.0, A.scaled).to_csr(
            backend="numpy"))
        M.sort_indices()
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        diag_pos = np.flatnonzero(M.indices == rows)
        if len(_STENCIL_CACHE) > 16:
            _STENCIL_CACHE.clear()
        base = _STENCIL_CACHE[key] = (M, diag_pos)
    M0, diag_pos = base
    data = np.array(M0.data, dtype=np.float64)
    data[diag_pos] += A.shift_value
    diag = data[diag_pos].copy()
    zero = np.flatnonzero(diag == 0)
    if zero.size:
        raise ValueError(f"A has a zero diagonal entry (row {int(zero[0])}): SOR / SSOR divide "
                         "by the diagonal")
    M = sp.csr_matrix((data, M0.indices, M0.indptr), shape=M0.shape)
    return CSRParts(M, M0.indptr.astype(np.int64), M0.indices.astype(np.int64), data, diag)


def _stencil_diagonal(A: Any):
    d = A.diagonal()
    dn = bk.to_numpy(d)
    if np.any(dn == 0):
        raise ValueError(f"A has a zero diagonal entry (row {int(np.flatnonzero(dn == 0)[0])}): "
                         "SOR / SSOR divide by the diagonal")
    return d


def _has_stencil(A: Any) -> bool:
    """A grid operator (red-black sweeps through its own ``A @ x``): the operator protocol's
    ``grid_shape`` metadata decides, not the input's type."""
    return isinstance(A, Operator) and getattr(A, "grid_shape", None) is not None \
        and A.has_entries


def _red_mask(A: Any, like):
    """1 on red points (even index sum), 0 on black, flat, on the backend of ``like``."""
    grid = np.indices(tuple(A.grid_shape)).sum(axis=0) % 2 == 0
    return bk.asarray(grid.reshape(-1).astype(np.float64), like=like)


def _choose_ordering(A: Any, b: Any, ordering: str) -> str:
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
    if ordering == "red-black" and not _has_stencil(A):
        raise TypeError("ordering='red-black' needs a stencil operator (with grid_shape and "
                        "diagonal(), e.g. lrsolve.operators.poisson_operator)")
    if ordering == "auto":
        # numba needs host memory: NumPy, or torch on the CPU viewed without a copy.
        return "lexicographic" if _host_array(b) and not (
            bk.backend_name(b) != "numpy" and _has_stencil(A)) else "red-black"
    return ordering


def _host_array(x) -> bool:
    name = bk.backend_name(x)
    return name == "numpy" or (name == "torch" and x.device.type == "cpu")


def jacobi_bound(A: Any) -> float:
    """Gershgorin bound ``max_i sum_{j!=i} |a_ij| / |a_ii|`` on the Jacobi spectral radius.

    One pass over ``A`` (read from the stencil's attributes when it has them).  For the
    constant-coefficient Laplacian plus ``c I`` it equals ``2 dim / (2 dim + c')`` while the
    true radius is ``cos(pi h)`` times that, so the ratio is a property of the grid only -
    :class:`~lrsolve.relax.learners.YoungLearner` learns that ratio.
    """
    if _has_stencil(A) and getattr(A, "constant", None) is not None \
            and getattr(A, "coefficient", None) is None and hasattr(A, "scale"):
        off = A.constant * A.scale
        diag = 2 * A.dim * off + A.shift_value
        if diag == 0:
            raise ValueError("A has a zero diagonal entry: SOR divides by the diagonal")
        return float(2 * A.dim * off / abs(diag))
    parts = csr_parts(A)
    return float(kernels()["jacobi_row_bound"](parts.indptr, parts.indices, parts.data,
                                               parts.diag))


_STATUS = {0: Status.CONVERGED, 1: Status.MAXITER, 2: Status.NONFINITE, 3: Status.STAGNATION}


def _finish(x, k, residuals, status, t0, omega, ordering, sweeps, extra=None) -> SolveResult:
    stats = {"omega": omega, "ordering": ordering, "sweeps": sweeps}
    if extra:
        stats.update(extra)
    st = _STATUS[int(status)]
    detail = ""
    if st is Status.STAGNATION:
        detail = ("stagnation: the iterate rounded to the precision of b does not meet the "
                  "tolerance (rounding floor of this precision) - loosen rtol or use float64")
    return SolveResult(x=x, status=st, iterations=int(k), residuals=residuals,
                       time=time.perf_counter() - t0, method="sor", stats=stats, detail=detail)


def _run_kernel(parts, wdinv, b64, x, tol, steps, history):
    """Run the fused SOR kernel for at most ``steps`` sweeps from ``x`` (in place);
    append the residuals to ``history`` (the first entry repeats its last one)."""
    buf = np.empty(steps + 1)
    k, status = kernels()["sor_solve"](parts.indptr, parts.indices, parts.data, wdinv, b64, x,
                                       tol, steps, buf)
    hist = buf[:k + 1].tolist()
    history.extend(hist[1:] if history else hist)
    return int(k), int(status)


def _confirm_in_precision(parts, wdinv, b64, x, out_dtype, tol, k, status, maxiter, history):
    """Test convergence of the iterate *as returned*, rounded to ``out_dtype``.

    The numba kernel iterates in float64; a float32 caller gets ``x`` rounded to float32,
    whose residual can exceed the tolerance the float64 iterate met.  The rounded
    iterate's residual is measured in float64; while it misses ``tol`` the float64
    iteration continues to a tighter threshold.  When tightening stops helping, the
    rounding of ``x`` itself is the floor: STAGNATION (status 3), never a false
    convergence.  Returns ``(k, status, sweeps_added, true_residual)``.
    """
    sweeps = 0
    inner = tol
    previous = math.inf
    while True:
        true = float(np.linalg.norm(b64 - parts.matrix @ x.astype(out_dtype).astype(np.float64)))
        if status == 2:
            return k, 2, sweeps, true
        if true <= tol:
            return k, 0, sweeps, true
        if status == 1 or k >= maxiter:
            return k, 1, sweeps, true
        if true > 0.9 * previous or inner < 1e-6 * tol:
            return k, 3, sweeps, true
        previous = true
        inner = inner * 0.5 * tol / true
        dk, status = _run_kernel(parts, wdinv, b64, x, inner, maxiter - k, history)
        k += dk
        sweeps += dk + 1


def _out_dtype(b) -> np.dtype:
    return bk.to_numpy(b[:1]).dtype


def _sor_lexicographic(parts: CSRParts, system, omega, tol, maxiter, t0):
    b = system.b
    out_dtype = _out_dtype(b)
    b64 = np.ascontiguousarray(bk.to_numpy(b), dtype=np.float64)
    x = np.zeros_like(b64) if system.x0 is None else \
        np.array(bk.to_numpy(system.x0), dtype=np.float64)
    wdinv = omega / parts.diag
    history: list = []
    k, status = _run_kernel(parts, wdinv, b64, x, tol, maxiter, history)
    sweeps = k + 1
    extra = {}
    if out_dtype != np.float64:
        k, status, more, true = _confirm_in_precision(parts, wdinv, b64, x, out_dtype, tol, k,
                                                      status, maxiter, history)
        sweeps += more
        extra["true_residual"] = true
    x_out = bk.asarray(x.astype(out_dtype, copy=False), like=b)
    return _finish(x_out, k, history, status, t0, omega, "lexicographic", sweeps, extra)


#: Sweeps without a new smallest residual after which SOR is declared stagnant (the
#: rounding floor of the working precision reached; far beyond any transient of SOR).
STALL_SWEEPS = 200


def _low_precision(b) -> bool:
    return any(t in str(b.dtype) for t in ("float32", "float16", "bfloat16"))


def _residual64(A, system, x) -> float:
    """``||b - A x||`` with ``x`` and ``b`` promoted to float64 (on their own backend)."""
    xp = system.xp
    x64 = xp.astype(x, xp.float64)
    b64 = xp.astype(system.b, xp.float64)
    return bk.norm(b64 - A @ x64)


def _sor_red_black(A, system, omega, tol, maxiter, t0):
    b, matvec = system.b, system.matvec
    d = _stencil_diagonal(A)
    d = bk.asarray(d, like=b)
    red = _red_mask(A, b)
    red_step = omega * red / d
    black_step = omega * (1.0 - red) / d
    x = bk.zeros_like(b) if system.x0 is None else bk.copy(system.x0)
    residuals = []
    status, k = 1, 0
    # In float32 the recursive test runs in float32 arithmetic; a pass is confirmed with
    # the residual of the same iterate measured in float64 (tighter threshold if it fails).
    confirm = _low_precision(b)
    inner, best, since_best, extra = tol, math.inf, 0, {}
    while True:
        r = b - matvec(x)
        rnorm = bk.norm(r)
        residuals.append(rnorm)
        if not math.isfinite(rnorm):
            status = 2
            break
        if rnorm <= inner:
            if not confirm:
                status = 0
                break
            true = _residual64(A, system, x)
            extra["true_residual"] = true
            if true <= tol:
                status = 0
                break
            inner = inner * 0.5 * tol / true
            if inner < 1e-3 * tol:
                status = 3
                break
        if rnorm < best:
            best, since_best = rnorm, 0
        else:
            since_best += 1
            if since_best >= STALL_SWEEPS:
                status = 3
                break
        if k >= maxiter:
            break
        x = x + red_step * r
        x = x + black_step * (b - matvec(x))
        k += 1
    return _finish(x, k, residuals, status, t0, omega, "red-black", k, extra)


def _finish_scaled(system, res: SolveResult) -> SolveResult:
    """Undo ``make_system``'s power-of-two rescaling of ``b`` on a result."""
    true = res.stats.get("true_residual")
    res = system.finish(res)
    if true is not None:
        res.stats["true_residual"] = true * system.scale
    return res


def _zero_rhs(system, t0, omega, ordering, method="sor") -> SolveResult:
    # b = 0: x = 0 is the exact solution whatever x0 is (SciPy returns it too); iterating
    # from x0 towards it could never meet the threshold max(rtol * 0, atol) = 0.
    return SolveResult(x=bk.zeros_like(system.b), status=Status.CONVERGED, iterations=0,
                       residuals=[0.0], time=time.perf_counter() - t0, method=method,
                       stats={"omega": omega, "ordering": ordering, "sweeps": 0},
                       detail=ZERO_RHS)


def sor(A: Any, b: Any, *, omega: float = 1.5, x0: Any = None, rtol: float = 1e-6,
        atol: float = 0.0, maxiter: int | None = None, ordering: str = "auto") -> SolveResult:
    """Solve ``A x = b`` by successive over-relaxation.

    Parameters
    ----------
    A : sparse matrix, array or lrsolve operator, shape (n, n)
        Nonzero diagonal.  SOR converges for every ``0 < omega < 2`` when ``A`` is
        symmetric positive definite (Ostrowski-Reich).
    b : array, shape (n,)
        NumPy, torch or CuPy; the answer comes back on its backend and dtype.
    omega : float
        Relaxation parameter in (0, 2); ``omega = 1`` is Gauss-Seidel.
    x0 : array, optional
        Starting guess (zeros by default).  With ``b = 0`` the answer is ``x = 0``
        whatever ``x0`` is.
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)`` (default ``rtol=1e-6``, the
        library's linear-solve default).  For float32 ``b`` the test is made on the
        returned float32 iterate (measured in float64); a tolerance below the float32
        rounding floor ends with ``Status.STAGNATION``, not a false convergence.
    maxiter : int, optional
        Most sweeps (``10 n`` by default).
    ordering : {"auto", "lexicographic", "red-black"}
        ``"auto"``: lexicographic (numba) for NumPy, red-black for torch / CuPy (stencil
        operators only).

    Returns
    -------
    SolveResult
        ``stats`` holds ``omega``, ``ordering`` and ``sweeps`` (sweeps actually run: the
        fused lexicographic kernel runs one more than ``iterations``).

    Raises
    ------
    ValueError
        ``omega`` outside (0, 2), a zero diagonal entry, or a bad shape / tolerance.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=16, dim=2, seed=0)
    >>> r = lr.relax.sor(P.A, P.b, omega=1.7, rtol=1e-8)
    >>> r.converged, r.iterations < 100
    (True, True)
    """
    t0 = time.perf_counter()
    omega = check_omega(omega)
    system = make_system(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, rescale=True)
    if "complex" in str(system.dtype):
        raise TypeError("b is complex: SOR here supports real systems only")
    maxiter = system.maxiter
    tol = float(system.tol)
    chosen = _choose_ordering(A, system.b, ordering)
    if system.bnorm == 0.0:
        return _zero_rhs(system, t0, omega, chosen)
    if chosen == "lexicographic":
        if not _host_array(system.b):
            raise TypeError("ordering='lexicographic' runs numba kernels in host memory (NumPy "
                            "or CPU torch); use ordering='red-black' with a stencil operator "
                            "on the GPU")
        parts = A if isinstance(A, CSRParts) else csr_parts(A)
        return _finish_scaled(system, _sor_lexicographic(parts, system, omega, tol, maxiter, t0))
    if not _has_stencil(A):
        raise TypeError("SOR on a GPU array needs a stencil operator (red-black ordering, "
                        "e.g. lrsolve.operators.poisson_operator(..., backend=...)); general "
                        "sparse matrices are supported in host memory only")
    return _finish_scaled(system, _sor_red_black(A, system, omega, tol, maxiter, t0))


class SSOR(Preconditioner):
    """The SSOR preconditioner ``M = (D + w L) D^{-1} (D + w U) / (w (2 - w))``, built once.

    ``M @ r`` returns ``M^{-1} r`` (SciPy's convention for ``M``).  On NumPy it uses the
    lexicographic numba kernel on CSR; for stencil operators on torch / CuPy it uses the
    red-black ordering (two mat-vecs per application).  For SPD ``A`` and ``0 < w < 2``
    ``M`` is SPD, so it is a valid CG preconditioner.

    Parameters
    ----------
    A : matrix or lrsolve operator
        Nonzero diagonal.
    omega : float
        In (0, 2); ``omega = 1`` is symmetric Gauss-Seidel.
    ordering : {"auto", "lexicographic", "red-black"}
    backend : str, optional
        Backend of the vectors it will be applied to (default: that of ``A``).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=32, dim=2, seed=0)
    >>> r = lr.solve(P.A, P.b, method="cg", M=lr.relax.SSOR(P.A, omega=1.8), rtol=1e-8)
    >>> r.converged, r.iterations < 40
    (True, True)
    """

    def __init__(self, A: Any, omega: float = 1.0, *, ordering: str = "auto",
                 backend: str | None = None):
        t0 = time.perf_counter()
        self.omega = check_omega(omega)
        self.shape = tuple(A.shape)
        self.backend = backend or bk.backend_name(A)
        if ordering == "auto":
            ordering = "red-black" if self.backend != "numpy" and _has_stencil(A) else \
                "lexicographic"
        if ordering not in ORDERINGS[1:]:
            raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
        self.ordering = ordering
        if ordering == "lexicographic":
            self._parts = A if isinstance(A, CSRParts) else csr_parts(A)
        else:
            if not _has_stencil(A):
                raise TypeError("red-black SSOR needs a stencil operator (grid_shape, diagonal())")
            self._A = A
            d = _stencil_diagonal(A)
            self._d = d
            self._red = None
        self.setup_time = time.perf_counter() - t0

    def matvec(self, v):
        """``M^{-1} v`` for ``v`` of shape ``(n,)``, or column by column for ``(n, k)``."""
        self._check(v, "v")
        if v.ndim == 2:
            return self._columns(v, self._apply)
        return self._apply(v)

    def _apply(self, r):
        if self.ordering == "lexicographic":
            if not _host_array(r):
                raise TypeError("this SSOR runs numba kernels in host memory (NumPy or CPU "
                                "torch); build it with ordering='red-black' from a stencil "
                                "operator for GPU arrays")
            p = self._parts
            r64 = np.ascontiguousarray(bk.to_numpy(r), dtype=np.float64)
            z = np.empty_like(r64)
            kernels()["ssor_apply"](p.indptr, p.indices, p.data, p.diag, self.omega, r64, z)
            return bk.asarray(z, like=r)
        if self._red is None or bk.backend_name(self._red) != bk.backend_name(r):
            self._red = _red_mask(self._A, r)
            self._d = bk.asarray(self._d, like=r)
        w, red, d, A = self.omega, self._red, self._d, self._A
        black = 1.0 - red
        # (D + w L) y = r with reds first: reds only see the diagonal, blacks see reds.
        y_red = red * r / d
        y = y_red + black * (r - w * ((A @ y_red) - d * y_red)) / d
        y = d * y
        # (D + w U) z = D y with blacks first (U maps black columns into red rows).
        z_black = black * y / d
        z = z_black + red * (y - w * ((A @ z_black) - d * z_black)) / d
        return (w * (2.0 - w)) * z


def ssor_cg(A: Any, b: Any, *, omega: float = 1.0, x0: Any = None, rtol: float = 1e-6,
            atol: float = 0.0, maxiter: int | None = None, M: SSOR | None = None,
            callback=None, ordering: str = "auto") -> SolveResult:
    """Conjugate gradients preconditioned by SSOR(``omega``) (via :func:`lrsolve.krylov.cg_result`).

    ``M`` may pass a prebuilt :class:`SSOR` (its own omega is then used).

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=32, dim=2, seed=0)
    >>> r = lr.relax.ssor_cg(P.A, P.b, omega=1.8, rtol=1e-8)
    >>> r.converged, r.stats["omega"]
    (True, 1.8)
    """
    t0 = time.perf_counter()
    if M is None:
        omega = check_omega(omega)
        M = SSOR(A, omega, ordering=ordering, backend=bk.backend_name(b))
    elif not isinstance(M, SSOR):
        raise TypeError(f"M must be an SSOR preconditioner (or None), got {type(M).__name__}")
    res = cg_result(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback)
    res.method = "ssor-cg"
    res.stats.update(omega=M.omega, ordering=M.ordering, setup_time=M.setup_time)
    res.time = time.perf_counter() - t0
    return res


def adaptive_sor(A: Any, b: Any, *, x0: Any = None, rtol: float = 1e-6, atol: float = 0.0,
                 maxiter: int | None = None, omega0: float = 1.0, mu0: float | None = None,
                 chunk: int = 8, damping: float = 0.75, settle_tol: float = 0.02) -> SolveResult:
    """Adaptive SOR in the manner of Hageman & Young (1981, ch. 9): learn omega in one solve.

    Start with ``omega0`` (or ``young_omega(mu0)``), run SOR in chunks of ``chunk``
    sweeps, and estimate the convergence factor ``R`` from the residual history since
    the last change of omega (acted on once it has settled: two consecutive chunks agree
    to ``settle_tol``, relatively).  While ``R > (omega - 1)**damping`` the solve is converging
    clearly slower than it would at the optimum, so a Jacobi radius estimate
    ``mu = (R + omega - 1) / (omega sqrt(R))`` (from Young's relation, valid while
    ``omega <= omega_opt``) updates omega to ``young_omega(mu)``; estimates of mu only go
    up, so omega approaches ``omega_opt`` from below, the side the theory covers.
    NumPy / lexicographic only.

    Returns a :class:`SolveResult` with ``stats["omega"]`` the last omega,
    ``stats["mu"]`` the last Jacobi estimate and ``stats["omegas"]`` the omegas used.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=32, dim=2, seed=0)
    >>> r = lr.relax.adaptive_sor(P.A, P.b, rtol=1e-8)
    >>> r.converged, 1.7 < r.stats["omega"] < 1.9
    (True, True)
    """
    t0 = time.perf_counter()
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive int (sweeps between estimates), got {chunk!r}")
    chunk = int(chunk)
    if mu0 is not None:
        mu0 = _real_in(mu0, "mu0", 0.0, 1.0, "the Jacobi spectral radius estimate; SOR "
                       "converges for every omega only when it is below 1")
    damping = _real_in(damping, "damping", 0.0, 1.0, "the exponent of the H&Y test", low_open=True,
                       high_closed=True)
    settle_tol = _real_in(settle_tol, "settle_tol", 0.0, math.inf, "a relative tolerance",
                          low_open=True)
    system = make_system(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, rescale=True)
    if "complex" in str(system.dtype):
        raise TypeError("b is complex: SOR here supports real systems only")
    maxiter = system.maxiter
    tol = float(system.tol)
    omega_start = young_omega(mu0) if mu0 is not None else check_omega(omega0, "omega0")
    if system.bnorm == 0.0:
        res = _zero_rhs(system, t0, omega_start, "lexicographic")
        res.method = "adaptive-sor"
        res.stats.update(mu=mu0, omegas=[omega_start], mu_estimates=[])
        return res
    if not _host_array(system.b):
        raise TypeError("adaptive_sor runs numba kernels in host memory (NumPy or CPU torch)")
    parts = A if isinstance(A, CSRParts) else csr_parts(A)
    mu = mu0
    omega = omega_start
    out_dtype = _out_dtype(system.b)
    b64 = np.ascontiguousarray(bk.to_numpy(system.b), dtype=np.float64)
    x = np.zeros_like(b64) if system.x0 is None else np.array(bk.to_numpy(system.x0), np.float64)
    sor_solve = kernels()["sor_solve"]
    residuals: list = []
    omegas = [omega]
    estimates: list = []  # every Jacobi estimate made (the first, from omega0, is the best)
    since_change: list = []  # residuals observed at the current omega
    total, sweeps, status = 0, 0, 1
    buf = np.empty(chunk + 1)
    while True:
        steps = min(chunk, maxiter - total)
        k, status = sor_solve(parts.indptr, parts.indices, parts.data, omega / parts.diag, b64,
                              x, tol, steps, buf)
        hist = buf[:k + 1].tolist()
        if residuals:
            hist = hist[1:]  # the first entry repeats the previous chunk's last residual
        residuals.extend(hist)
        since_change.extend(hist)
        total += int(k)
        sweeps += int(k) + 1
        if status != 1 or total >= maxiter:
            break
        m = len(since_change) - 1
        if m >= 2 * chunk and since_change[-1] > 0 and since_change[-1 - chunk] > 0:
            rate_now = (since_change[-1] / since_change[-1 - chunk]) ** (1.0 / chunk)
            rate_prev = (since_change[-1 - chunk] / since_change[-1 - 2 * chunk]) ** (1.0 / chunk)
            # Act only once the factor has settled (two chunks agree), as H&Y require.
            settled = abs(rate_now - rate_prev) <= settle_tol * rate_now
            if settled and rate_now < 1.0 and rate_now > (omega - 1.0) ** damping:
                mu_new = jacobi_radius_from_rate(rate_now, omega)
                estimates.append(mu_new)
                if mu is None or mu_new > mu:
                    mu = mu_new
                    omega_new = young_omega(mu)
                    if omega_new > omega + 1e-4:
                        omega = omega_new
                        omegas.append(omega)
                        since_change = [since_change[-1]]
    extra = {"mu": mu, "omegas": omegas, "mu_estimates": estimates}
    if out_dtype != np.float64:
        total, status, more, true = _confirm_in_precision(
            parts, omega / parts.diag, b64, x, out_dtype, tol, total, int(status), maxiter,
            residuals)
        sweeps += more
        extra["true_residual"] = true
    x_out = bk.asarray(x.astype(out_dtype, copy=False), like=system.b)
    res = _finish(x_out, total, residuals, int(status), t0, omega, "lexicographic", sweeps,
                  extra=extra)
    res.method = "adaptive-sor"
    return _finish_scaled(system, res)


def _real_in(value, name, low, high, what, *, low_open=False, high_closed=False) -> float:
    """``value`` as a float in ``[low, high)`` (bounds per the flags), else ``ValueError``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    ok_low = v > low if low_open else v >= low
    ok_high = v <= high if high_closed else v < high
    if not math.isfinite(v) or not (ok_low and ok_high):
        lb = "(" if low_open else "["
        hb = "]" if high_closed else ")"
        raise ValueError(f"{name} must lie in {lb}{low}, {high}{hb} ({what}), got {value!r}")
    return v
