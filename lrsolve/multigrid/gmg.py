"""Geometric multigrid on grid operators: smoothers, V/W/F-cycles, FMG, the preconditioner.

:class:`GMG` builds the hierarchy of :mod:`lrsolve.multigrid.hierarchy` once (timed in
``setup_time``) and then applies one cycle per ``M @ r``, from a zero initial guess, so
it is a fixed linear operator: with symmetric smoothing (Chebyshev or Jacobi, the same
polynomial before and after; red-black Gauss-Seidel forward before and backward after)
and ``R = P^T / 2^d`` it is symmetric positive definite and can precondition CG.

Smoothers (all matrix-free, on every level):

* ``"chebyshev"`` (default): the Chebyshev polynomial in ``D^{-1} A`` of degree
  ``presmooth`` (``postsmooth``) that is smallest on ``[lmax / ratio, lmax]`` with the
  Gershgorin bound ``lmax = 2`` of these diagonally dominant operators and ``ratio =
  2 d`` (the part of the spectrum that 2x coarsening cannot represent); every step is
  one fused pass and parallel, so it suits GPUs;
* ``"jacobi"``: weighted Jacobi, ``omega = 2/3`` by default;
* ``"rbgs"``: red-black Gauss-Seidel (numba on the CPU; masked updates elsewhere).

The coarsest level (at most ``coarse_size`` cells) is solved directly with its dense
(pseudo-)inverse, computed once: a floating (pure Neumann) region makes it singular and
the pseudo-inverse then gives the minimum-norm answer.

NumPy runs numba kernels (see ``lrsolve/operators/_grid_kernels.py`` and
``_kernels.py``) on preallocated per-level buffers; torch and CuPy run the same
arithmetic with array operations on their device.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import backend as bk
from ..operators.grid import GridOperator, as_grid_operator, sliced_apply
from .transfer import gather_axis as _gather_xp, prolong, restrict
from .hierarchy import (Level, _boundary_geometry, axis_tables, build_structure,
                        coarsen_operator, prolongation_weights)

__all__ = ["GMG", "SMOOTHERS", "CYCLES"]

SMOOTHERS = ("chebyshev", "jacobi", "rbgs")
GRAPH_AFTER = 8   # cuda_graph=None: record a cycle once its input shape has run this often
CYCLES = ("V", "W", "F")


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class GMG:
    """Geometric multigrid for a grid operator; a preconditioner ``M`` (``M @ r``).

    Parameters
    ----------
    A : GridOperator or PoissonStencil
        The fine-grid operator (``lr.problems.poisson(...).A``).
    cycle : {"V", "W", "F"}
        Cycle type of one application.
    smoother : {"chebyshev", "jacobi", "rbgs"}
        See the module docstring.
    presmooth, postsmooth : int
        Smoothing steps (the polynomial degree for Chebyshev / Jacobi, sweeps for
        red-black Gauss-Seidel) before and after the coarse-grid correction.
    coarse_size : int
        Coarsen until a level has at most this many cells; that level is solved directly.
    max_levels : int, optional
        Cap on the number of levels.
    omega : float, optional
        Jacobi weight (default 2/3).
    chebyshev_ratio : float, optional
        The Chebyshev interval is ``[2 / ratio, 2]`` (default ``2 d``).
    threads : int, optional
        numba threads of the NumPy kernels (default 1: see
        ``lrsolve.operators._grid_kernels.DEFAULT_THREADS``).

    cuda_graph : bool, optional
        torch on a CUDA device: record one cycle (per input shape and dtype) as a CUDA
        graph and replay it, so that the cycle's many small kernels on the coarse levels
        cost no Python or launch overhead.  ``None`` (default) records once an input
        shape has been applied ``GRAPH_AFTER`` (8) times - so a single short solve does not
        pay the recording (~0.1 s at 256^3 on an H200) and a second one replays - and
        falls back to plain execution, recording why in ``graph_error``, if the capture
        fails; ``True`` records on first use; ``False`` never does.

    Attributes
    ----------
    levels : list of Level
        Finest first; ``levels[i].op`` is the operator on level ``i``.
    setup_time : float
        Seconds spent building the hierarchy.

    Examples
    --------
    >>> import lrsolve as lr
    >>> P = lr.problems.poisson(n=(48, 40), dim=2)
    >>> M = lr.multigrid.GMG(P.A)
    >>> r = lr.cg(P.A, P.b, rtol=1e-8, M=M)
    >>> r[1]
    0
    """

    def __init__(self, A: Any, *, cycle: str = "V", smoother: str = "chebyshev",
                 presmooth: int = 2, postsmooth: int = 2, coarse_size: int = 1000,
                 max_levels: int | None = None, omega: float | None = None,
                 chebyshev_ratio: float | None = None, threads: int | None = None,
                 interpolation: str = "constant", cuda_graph: bool | None = None):
        t0 = time.perf_counter()
        self.threads = threads
        if cuda_graph not in (None, True, False):
            raise ValueError(f"cuda_graph must be None, True or False, got {cuda_graph!r}")
        self.cuda_graph = cuda_graph
        self._graphs: dict = {}
        self.graph_error: str | None = None
        self.graph_info: dict = {"captured": 0, "replayed": 0}
        self._graph_seen: dict = {}
        if interpolation not in ("constant", "linear"):
            raise ValueError(f"interpolation must be 'constant' or 'linear', got "
                             f"{interpolation!r}")
        self.interpolation = interpolation
        if cycle not in CYCLES:
            raise ValueError(f"cycle must be one of {CYCLES}, got {cycle!r}")
        if smoother not in SMOOTHERS:
            raise ValueError(f"smoother must be one of {SMOOTHERS}, got {smoother!r}")
        self.cycle = cycle
        self.smoother = smoother
        self.presmooth = _check_count("presmooth", presmooth)
        self.postsmooth = _check_count("postsmooth", postsmooth)
        self.coarse_size = _check_count("coarse_size", coarse_size)
        if max_levels is not None:
            max_levels = _check_count("max_levels", max_levels)
        self.max_levels = max_levels
        if omega is None:
            omega = 2.0 / 3.0
        if not (0.0 < float(omega) < 2.0):
            raise ValueError(f"omega must lie in (0, 2), got {omega!r}")
        self.omega = float(omega)
        op = as_grid_operator(A)
        if chebyshev_ratio is None:
            chebyshev_ratio = 2.0 * max(1, sum(n > 1 for n in op.grid_shape))
        if not (float(chebyshev_ratio) > 1.0):
            raise ValueError(f"chebyshev_ratio must be > 1, got {chebyshev_ratio!r}")
        self.chebyshev_ratio = float(chebyshev_ratio)
        if not any(n >= 4 for n in op.grid_shape):
            raise ValueError(f"grid too small to coarsen: grid_shape {op.grid_shape} has no "
                             "axis with at least 4 cells; solve it directly (e.g. method='cg')")
        self.plan = build_structure(op, coarse_size=self.coarse_size, max_levels=max_levels)
        self.shape = op.shape
        self.dtype = op.dtype
        self.backend = op.backend
        self.device = op.device
        self._build(op)
        self._to_device()
        self.setup_time = time.perf_counter() - t0
        self.update_time = 0.0

    def _to_device(self) -> None:
        """torch / CuPy: move every level's data (faces, diagonals, transfer tables,
        coarse inverse) to the operator's device now, in the operator's dtype, so that the
        setup (and ``update``) time includes it and the first cycle does no host work."""
        if self.backend == "numpy":
            return
        probe = bk.asarray(np.zeros(1, dtype=self.dtype), backend=self.backend,
                           device=self.device)
        self._prepare(probe)
        for l in range(len(self.levels)):
            self._device_level(l)
        if self.backend == "torch" and probe.device.type == "cuda":
            bk._torch().cuda.synchronize(probe.device)

    # -- setup ----------------------------------------------------------------------
    def _build(self, op: GridOperator) -> None:
        geom = _boundary_geometry(op)
        levels = []
        for c in self.plan:
            tables = [axis_tables(op.shape3[ax], c[ax], self.interpolation) for ax in range(3)]
            fine_geom = geom
            coarse, geom = coarsen_operator(op, c, geom)
            walls = [(fine_geom[ax]["lo"][0] / geom[ax]["lo"][0],
                      fine_geom[ax]["hi"][0] / geom[ax]["hi"][0]) for ax in range(3)]
            linear = [axis_tables(op.shape3[ax], c[ax], "linear", walls[ax]) for ax in range(3)]
            level = Level(op=op, coarsen=c, prolong_tables=[t[0] for t in tables],
                          restrict_tables=[t[1] for t in tables],
                          ghost_tables=[t[2] for t in tables], geometry=geom,
                          fmg_tables=[t[0] for t in linear],
                          fmg_ghost_tables=[t[2] for t in linear])
            level.pw = prolongation_weights(op, coarse, level.ghost_tables)
            level.fmg_pw = None
            levels.append(level)
            op = coarse
        levels.append(Level(op=op))
        self.levels = levels
        self._coarse_inverse()
        self.A = levels[0].op
        self._poly = {}
        self._one = np.ones((1, 1, 1))

    def _coarse_inverse(self) -> None:
        import scipy.linalg as sla
        coarse = self.levels[-1].op
        if coarse.shape[0] > 8192:
            raise ValueError(f"the coarsest level has {coarse.shape[0]} cells (> 8192) and is "
                             "solved with a dense inverse; allow more levels (max_levels) or a "
                             "smaller coarse_size")
        Ac = coarse.to_csr(backend="numpy").toarray()
        if self.levels[-1].op.singular:
            inv = _pseudo_inverse(Ac, coarse)
        else:
            inv = sla.cho_solve(sla.cho_factor(Ac), np.eye(Ac.shape[0]))
        self.coarse_inverse = 0.5 * (inv + inv.T)
        self._dense_cache = {}

    def update(self, A_new: Any) -> "GMG":
        """Re-coarsen the coefficients (and mask) of ``A_new`` on the same grid, keeping the
        structure (levels, transfer tables, buffers); returns self."""
        t0 = time.perf_counter()
        op = as_grid_operator(A_new)
        if op.grid_shape != self.A.grid_shape:
            raise ValueError(f"A_new has grid_shape {op.grid_shape}, the hierarchy was built for "
                             f"{self.A.grid_shape}; build a new GMG")
        if op.backend != self.backend:
            raise TypeError(f"A_new is a {op.backend} operator, the hierarchy is {self.backend}")
        geom = _boundary_geometry(op)
        old_A = self.A
        old_device = [level.cache.pop("device", None) for level in self.levels]
        for level in self.levels[:-1]:
            coarse, geom = coarsen_operator(op, level.coarsen, geom)
            level.op = op
            level.pw = prolongation_weights(op, coarse, level.ghost_tables)
            level.fmg_pw = None
            op = coarse
        self.levels[-1].op = op
        self._coarse_inverse()
        self._to_device()
        self.A = self.levels[0].op
        if self._graphs and not self._refill_device(old_device, old_A):
            self._graphs.clear()   # recorded graphs point at the old level data
            self._graph_seen.clear()
        self.update_time = time.perf_counter() - t0
        return self

    def _privatize_device_data(self) -> None:
        """Give the levels their own copies of the face / diagonal tensors (the device
        data otherwise shares them with the operators' caches), so that ``update`` can
        refill what a recorded graph reads without changing the caller's operator."""
        for level in self.levels:
            cache = level.cache.get("device")
            if cache is None or cache[1].get("_private"):
                continue
            data = dict(cache[1])
            for k in ("faces", "diag", "inv_diag"):
                if k in data:
                    v = data[k]
                    data[k] = [t.clone() for t in v] if isinstance(v, list) else v.clone()
            data["_private"] = True
            level.cache["device"] = (cache[0], data)

    def _refill_device(self, old_device: list, old_A) -> bool:
        """After ``update``: copy the new device data into the tensors the recorded CUDA
        graphs read (same shapes, same None-ness), so the graphs stay valid; False (and
        nothing kept) when the structure differs or the floating regions changed."""
        if self.A.singular or old_A.singular:
            if not (self.A.singular and old_A.singular):
                return False
            (la, sa), (lb, sb) = self.A.floating_components(), old_A.floating_components()
            if not (np.array_equal(la, lb) and np.array_equal(sa, sb)):
                return False
            # the graphs read the old operator's cached projection tensors: keep them
            # alive (and in use) on the new operator - equal regions, equal contents
            self.A._cache.update({k: v for k, v in old_A._cache.items()
                                  if isinstance(k, tuple) and k and k[0] in (
                                      "labels", "inv_sizes", "indicators")})
        pairs = []

        def match(new, old) -> bool:
            if new is None or old is None:
                return new is None and old is None
            if isinstance(new, dict):
                keys = [k for k in new if k != "_private"]
                return (isinstance(old, dict) and set(keys) == set(old) - {"_private"}
                        and all(match(new[k], old[k]) for k in keys))
            if isinstance(new, (list, tuple)):
                return (isinstance(old, (list, tuple)) and len(new) == len(old)
                        and all(match(a, b) for a, b in zip(new, old)))
            if bk.is_torch(new) and bk.is_torch(old):
                if new.shape != old.shape or new.dtype != old.dtype:
                    return False
                pairs.append((old, new))
                return True
            return False

        for level, old in zip(self.levels, old_device):
            new = level.cache.get("device")
            if old is None or new is None or old[0] != new[0] or not match(new[1], old[1]):
                return False
        with bk._torch().inference_mode():   # the old tensors may be inference tensors
            for old, new in pairs:
                old.copy_(new)
        for level, old in zip(self.levels, old_device):
            level.cache["device"] = old
        return True

    # -- cost model -------------------------------------------------------------------
    def fmg_work(self, cycles: int = 1) -> float:
        """Operator applications of :meth:`fmg` in fine-grid units (``cycles`` cycles
        started from the interpolated solution on every level but the coarsest)."""
        N0 = self.levels[0].op.shape[0]
        return float(sum(cycles * self.work_per_cycle(start=l, zero=False)
                         * self.levels[l].op.shape[0] / N0
                         for l in range(len(self.levels) - 1)))

    def work_per_cycle(self, start: int = 0, zero: bool = True) -> float:
        """Operator applications per cycle in fine-grid units (smoothing steps and residuals
        on every level, weighted by the level's size; transfers and the coarse solve not
        counted)."""
        N0 = self.levels[0].op.shape[0]

        last = len(self.levels) - 1
        counts = [0.0] * len(self.levels)
        poly = self.smoother != "rbgs"

        def go(l, kind, zero):
            if l == last:
                return
            counts[l] += (self.presmooth - (1 if zero and poly else 0)) + self.postsmooth + 1
            if l + 1 == last:
                return
            if kind == "V":
                go(l + 1, "V", True)
            elif kind == "W":
                go(l + 1, "W", True)
                go(l + 1, "W", False)
            else:
                go(l + 1, "F", True)
                go(l + 1, "V", False)

        go(start, self.cycle, zero)
        N0 = self.levels[start].op.shape[0]
        return float(sum(c * lvl.op.shape[0] / N0 for c, lvl in zip(counts, self.levels)))

    # -- application ------------------------------------------------------------------
    def __matmul__(self, r):
        return self.matvec(r)

    def __call__(self, r):
        return self.matvec(r)

    def matvec(self, r):
        """One cycle from a zero guess: ``M r ~ A^{-1} r``; ``r`` of shape (N,) or (N, k)."""
        if bk.backend_name(r) != self.backend:
            raise TypeError(f"r is a {bk.backend_name(r)} array but the hierarchy is "
                            f"{self.backend}")
        N = self.shape[0]
        if r.ndim not in (1, 2) or r.shape[0] != N:
            raise ValueError(f"r must have shape ({N},) or ({N}, k), got {tuple(r.shape)}")
        if self._graph_wanted(r):
            out = self._graph_matvec(r)
            if out is not None:
                return out
        return self._apply(r, lambda b: self._cycle(0, b, None, self.cycle))

    rmatvec = matvec

    def _graph_wanted(self, r) -> bool:
        return (self.cuda_graph is not False and self.graph_error is None
                and bk.is_torch(r) and r.device.type == "cuda" and not r.requires_grad)

    def _graph_matvec(self, r):
        """``matvec`` by replaying a recorded CUDA graph (recorded on first use per shape,
        dtype and device); None when recording failed (then ``graph_error`` says why)."""
        torch = bk._torch()
        key = (tuple(r.shape), str(r.dtype), str(r.device))
        entry = self._graphs.get(key)
        if entry is None and self.cuda_graph is None:
            seen = self._graph_seen.get(key, 0) + 1
            self._graph_seen[key] = seen
            if seen <= GRAPH_AFTER:
                return None
        if entry is None:
            def cycle(b):
                return self._cycle(0, b, None, self.cycle)
            try:
                self._privatize_device_data()
                static_in = r.detach().clone()
                side = torch.cuda.Stream(device=r.device)
                side.wait_stream(torch.cuda.current_stream(r.device))
                with torch.cuda.stream(side):     # warm-up: builds the device caches
                    for _ in range(2):
                        self._apply(static_in, cycle)
                torch.cuda.current_stream(r.device).wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = self._apply(static_in, cycle)
                # the entry keeps every level's data alive while the graph exists
                entry = (graph, static_in, static_out,
                         [lv.cache.get("device") for lv in self.levels])
                self._graphs[key] = entry
                self.graph_info["captured"] += 1
            except Exception as exc:   # capture unsupported here: run the cycle directly
                self.graph_error = f"{type(exc).__name__}: {exc}"
                self._graphs.clear()
                return None
        graph, static_in, static_out, _ = entry
        with torch.inference_mode():     # static_in may be an inference tensor
            static_in.copy_(r)
        graph.replay()
        self.graph_info["replayed"] += 1
        return static_out.clone()

    def cycle_from(self, b, x):
        """One cycle for ``A x = b`` started from ``x`` (returns the new iterate)."""
        def run(bb, xx):
            return self._cycle(0, bb, xx, self.cycle)
        return self._apply(b, run, x)

    def fmg(self, b, *, cycles: int = 1):
        """Full multigrid: solve on the coarsest level, interpolate, ``cycles`` cycles per
        level up to the finest.  Reaches the discretisation error in one pass for smooth
        problems; returns the fine-grid approximation."""
        cycles = _check_count("cycles", cycles)
        return self._apply(b, lambda bb: self._fmg(bb, cycles))

    def _apply(self, r, fn, x0=None):
        """Run ``fn`` on grid-shaped data: NumPy column by column, torch/CuPy batched."""
        shape3 = self.levels[0].shape3
        self._prepare(r)
        if self.backend == "numpy":
            from ..operators._grid_kernels import DEFAULT_THREADS, numba_threads
            if r.ndim == 1:
                with numba_threads(self.threads or DEFAULT_THREADS):
                    b = np.ascontiguousarray(r).reshape(shape3)
                    out = fn(b) if x0 is None else fn(b, np.array(x0, copy=True).reshape(shape3))
                return self._finish(out.reshape(-1), r)
            if False:
                b = np.ascontiguousarray(r).reshape(shape3)
                out = fn(b) if x0 is None else fn(b, np.array(x0, copy=True).reshape(shape3))
                return self._finish(out.reshape(-1), r)
            cols = [self._apply(r[:, j], fn, None if x0 is None else x0[:, j])
                    for j in range(r.shape[1])]
            return np.stack(cols, axis=1)
        batched = r.ndim == 2
        k = r.shape[1] if batched else 1
        b = (r.T if batched else r).reshape((k,) + shape3)
        if x0 is None:
            out = fn(b)
        else:
            out = fn(b, (x0.T if batched else x0).reshape((k,) + shape3))
        out = out.reshape(k, -1)
        out = out.T if batched else out.reshape(-1)
        return self._finish(out, r)

    def _finish(self, x, r):
        if self.A.singular:
            x = self.A.project_null(x)
        return x

    # -- the cycle, shared by both array paths ------------------------------------------
    def _cycle(self, l, b, x, kind):
        last = len(self.levels) - 1
        if l == last:
            return self._coarse_solve(b)
        x, r = self._smooth_residual(l, b, x)
        bc = self._restrict(l, r)
        if l + 1 == last:
            e = self._coarse_solve(bc)
        elif kind == "V":
            e = self._cycle(l + 1, bc, None, "V")
        elif kind == "W":
            e = self._cycle(l + 1, bc, None, "W")
            e = self._cycle(l + 1, bc, e, "W")
        else:
            e = self._cycle(l + 1, bc, None, "F")
            e = self._cycle(l + 1, bc, e, "V")
        x = self._prolong_add(l, e, x)
        return self._smooth(l, b, x, pre=False)

    def _fmg(self, b, cycles):
        rhs = [b]
        for l in range(len(self.levels) - 1):
            rhs.append(self._copy(self._restrict(l, rhs[-1])))
        x = self._coarse_solve(rhs[-1])
        for l in range(len(self.levels) - 2, -1, -1):
            x = self._interpolate_solution(l, x)
            for _ in range(cycles):
                x = self._cycle(l, rhs[l], x, self.cycle)
        return x

    # -- level operations ---------------------------------------------------------------
    def _poly_coefficients(self, steps: int):
        """``(c0, [(a_k, c_k)])`` of ``steps`` smoother steps (see ``poly_step``)."""
        key = (self.smoother, steps)
        if key in self._poly:
            return self._poly[key]
        if self.smoother == "jacobi":
            coef = (self.omega, [(0.0, self.omega)] * (steps - 1))
        else:
            lmax = 2.0
            lmin = lmax / self.chebyshev_ratio
            theta = 0.5 * (lmax + lmin)
            delta = 0.5 * (lmax - lmin)
            sigma = theta / delta
            rho = 1.0 / sigma
            steps_list = []
            for _ in range(steps - 1):
                rho_new = 1.0 / (2.0 * sigma - rho)
                steps_list.append((rho_new * rho, 2.0 * rho_new / delta))
                rho = rho_new
            coef = (1.0 / theta, steps_list)
        self._poly[key] = coef
        return coef

    def _smooth_residual(self, l, b, x):
        """Pre-smooth, then the residual ``b - A x`` (fused on NumPy); returns ``(x, r)``."""
        if self.backend != "numpy":
            x = self._smooth_xp(l, b, x, True, self.presmooth)
            return x, b - self._apply_level(l, x)
        from ..operators._grid_kernels import kernels
        K = kernels()
        op = self.levels[l].op
        ws = self._ws(l)
        if self.smoother == "rbgs":
            x = self._smooth_np(l, b, x, True, self.presmooth)
            K["residual"](x, b, ws["r"], *op.kernel_args)
            return x, ws["r"]
        x, d = self._smooth_np(l, b, x, True, self.presmooth, pending=True)
        if x is None:       # one step from zero: the iterate is d itself
            K["residual"](d, b, ws["r"], *op.kernel_args)
            return d, ws["r"]
        xn = self._free(ws, x, d)
        K["step_residual"](x, d, b, xn, ws["r"], *op.kernel_args)
        return xn, ws["r"]

    def _smooth(self, l, b, x, pre):
        steps = self.presmooth if pre else self.postsmooth
        if self.backend == "numpy":
            return self._smooth_np(l, b, x, pre, steps)
        return self._smooth_xp(l, b, x, pre, steps)

    def _ws(self, l):
        level = self.levels[l]
        ws = level.cache.get("ws")
        if ws is None or ws["dtype"] != self._dtype_now:
            shape = level.shape3
            dt = self._dtype_now
            ws = {"dtype": dt, "pool": [np.empty(shape, dt) for _ in range(4)],
                  "zero": np.zeros(shape, dt), "r": np.empty(shape, dt),
                  "b": np.empty(shape, dt), "tmp": {}}
            level.cache["ws"] = ws
        return ws

    def _free(self, ws, *used):
        for buf in ws["pool"]:
            if not any(buf is u for u in used):
                return buf
        raise RuntimeError("no free buffer")  # pragma: no cover - 4 buffers always suffice

    def _smooth_np(self, l, b, x, pre, steps, pending=False):
        from ..operators._grid_kernels import kernels
        K = kernels()
        op = self.levels[l].op
        f0, f1, f2, dg = op.kernel_args
        ws = self._ws(l)
        if self.smoother == "rbgs":
            if x is None:
                x = self._free(ws)
                x.fill(0.0)
            colors = (0, 1) if pre else (1, 0)
            for _ in range(steps):
                for color in colors:
                    K["gauss_seidel_color"](x, b, f0, f1, f2, dg, color)
            return x
        c0, coefs = self._poly_coefficients(steps)
        if x is None:
            d = self._free(ws)
            K["scaled_rhs"](b, d, f0, f1, f2, dg, c0)
            if not coefs:
                return (None, d) if pending else d
            # the first step from zero: the iterate is d itself
            a, cf = coefs[0]
            dn = self._free(ws, d)
            K["poly_step_zero"](d, b, dn, f0, f1, f2, dg, a, cf)
            x, d = d, dn
            coefs = coefs[1:]
        else:
            d = self._free(ws, x)
            K["scaled_residual"](x, b, d, f0, f1, f2, dg, c0)
        last = len(coefs) - 1
        for step, (a, cf) in enumerate(coefs):
            if step == last and not pending:
                # the final update fused into the last step; a fresh array on the finest
                # level (the caller may keep it)
                out = np.empty_like(x) if (l == 0 and not pre) else self._free(ws, x, d)
                K["poly_step_out"](x, d, b, out, f0, f1, f2, dg, a, cf)
                return out
            xn = self._free(ws, x, d)
            dn = self._free(ws, x, d, xn)
            K["poly_step"](x, d, b, xn, dn, f0, f1, f2, dg, a, cf)
            x, d = xn, dn
        if pending:
            return x, d
        if l == 0 and not pre:
            return x + d            # a fresh array: the caller may keep it
        K["add_into"](x, d)
        return x

    def _residual(self, l, b, x):
        if self.backend != "numpy":
            return b - self._apply_level(l, x)
        from ..operators._grid_kernels import kernels
        op = self.levels[l].op
        ws = self._ws(l)
        kernels()["residual"](x, b, ws["r"], *op.kernel_args)
        return ws["r"]

    def _tmp(self, l, shape):
        ws = self._ws(l)
        buf = ws["tmp"].get(shape)
        if buf is None:
            buf = ws["tmp"][shape] = np.empty(shape[1:], self._dtype_now)
        return buf

    def _restrict(self, l, r):
        level = self.levels[l]
        if self.backend != "numpy":
            return restrict(self._device_level(l), r)
        from ._kernels import kernels
        K = kernels()
        shape = list(r.shape)
        target = self._ws(l + 1)["b"]
        axes = [ax for ax in (2, 1, 0) if level.coarsen[ax] == 2]
        src = r
        if level.pw is not None and axes[0] != 2:
            dst = self._tmp(l, ("pw",) + r.shape)
            K["weighted"](r, level.pw, dst)
            src = dst
        for n_done, ax in enumerate(axes):
            lo, W = level.restrict_tables[ax]
            shape[ax] = W.shape[0]
            dst = target if n_done == len(axes) - 1 else self._tmp(l, ("r",) + tuple(shape))
            if ax == 2 and level.pw is not None:
                K["restrict2"](src, level.pw, dst, lo, W)
            elif ax == 2:
                K["restrict2_plain"](src, dst, lo, W)
            else:
                K["gather"][ax](src, dst, lo, W)
            src = dst
        return src

    def _prolong_add(self, l, e, x):
        level = self.levels[l]
        if self.backend != "numpy":
            e = prolong(self._device_level(l), e)
            return e if x is None else x + e
        from ._kernels import kernels
        K = kernels()
        shape = list(e.shape)
        fine = level.shape3
        if x is None:
            x = self._free(self._ws(l))
            x.fill(0.0)
        last_fused = level.coarsen[2] == 2
        for ax in (0, 1) if last_fused else (0, 1, 2):
            if level.coarsen[ax] == 2:
                lo, W = level.prolong_tables[ax]
                shape[ax] = fine[ax]
                dst = self._tmp(l, ("p",) + tuple(shape))
                K["gather"][ax](e, dst, lo, W)
                e = dst
        if last_fused:
            lo, W = level.prolong_tables[2]
            pw = level.pw if level.pw is not None else self._one
            K["prolong2_add"](e, x, pw, lo, W)
        elif level.pw is not None:
            K["add_weighted"](x, level.pw, e)
        else:
            from ..operators._grid_kernels import kernels as gk
            gk()["add_into"](x, e)
        return x

    def _interpolate_solution(self, l, e):
        """FMG's coarse-to-fine transfer of a solution: linear interpolation (second order,
        so the interpolated solution keeps the coarse discretisation accuracy)."""
        from .hierarchy import _gather_np, prolongation_weights
        level = self.levels[l]
        if level.fmg_pw is None:
            level.fmg_pw = prolongation_weights(level.op, self.levels[l + 1].op,
                                                level.fmg_ghost_tables)
            if level.fmg_pw is None:
                level.fmg_pw = 1.0
        if self.backend == "numpy":
            for ax in (0, 1, 2):
                if level.fmg_tables[ax] is not None:
                    e = _gather_np(e, level.fmg_tables[ax], ax)
            out = self._free(self._ws(l))
            np.multiply(e, level.fmg_pw, out=out)
            return out
        xp_pw = level.cache.get("fmg_pw")
        if xp_pw is None or xp_pw[0] != str(self._xp_dtype) + str(self._xp_device):
            conv = lambda a: bk.asarray(np.asarray(a, dtype=np.float64), backend=self.backend,
                                        device=self._xp_device, dtype=self._xp_dtype)
            idx = lambda a: bk.asarray(a, backend=self.backend, device=self._xp_device)
            taps = []
            for ax in range(3):
                t = level.fmg_tables[ax]
                if t is None:
                    taps.append(None)
                    continue
                lo, W = t
                n_src = self.levels[l + 1].shape3[ax]
                taps.append([(idx(np.clip(lo + s, 0, n_src - 1)), conv(W[:, s]))
                             for s in range(W.shape[1]) if np.any(W[:, s] != 0)])
            xp_pw = (str(self._xp_dtype) + str(self._xp_device), taps, conv(level.fmg_pw))
            level.cache["fmg_pw"] = xp_pw
        for ax in (0, 1, 2):
            if xp_pw[1][ax] is not None:
                e = _gather_xp(e, xp_pw[1][ax], ax)
        return e * xp_pw[2]

    def _coarse_solve(self, b):
        level = self.levels[-1]
        shape = level.shape3
        if self.backend == "numpy":
            inv = self.coarse_inverse
            if inv.dtype != b.dtype:
                inv = self._dense_cache.setdefault(str(b.dtype), inv.astype(b.dtype))
            return (inv @ b.reshape(-1)).reshape(shape)
        data = self._device_level(len(self.levels) - 1)
        k = b.shape[0]
        flat = b.reshape(k, -1)
        return (flat @ data["inverse"]).reshape(b.shape)

    def _copy(self, a):
        return bk.copy(a)

    @property
    def _dtype_now(self):
        return getattr(self, "_current_dtype", np.dtype(self.dtype))

    # -- torch / CuPy ---------------------------------------------------------------------
    def _device_level(self, l):
        level = self.levels[l]
        key = (str(self._xp_dtype), str(self._xp_device))
        cache = level.cache.get("device")
        if cache is None or cache[0] != key:
            if cache is not None and self._graphs:
                # recorded graphs read the data about to be replaced: drop them first
                self._graphs.clear()
                self._graph_seen.clear()
            conv = lambda a: bk.asarray(np.array(a, dtype=np.float64, copy=True),
                                        backend=self.backend, device=self._xp_device,
                                        dtype=self._xp_dtype)
            idx = lambda a: bk.asarray(a, backend=self.backend, device=self._xp_device)
            data = dict(level.op.device_data(self._xp_dtype, self._xp_device))

            def table(t, n_src):
                if t is None:
                    return None
                lo, W = t
                taps = [(idx(np.clip(lo + s, 0, n_src - 1)), conv(W[:, s]))
                        for s in range(W.shape[1]) if np.any(W[:, s] != 0)]
                return taps
            if l < len(self.levels) - 1:
                coarse = self.levels[l + 1].shape3
                data["restrict"] = [table(level.restrict_tables[ax], level.shape3[ax])
                                    for ax in range(3)]
                data["prolong"] = [table(level.prolong_tables[ax], coarse[ax])
                                   for ax in range(3)]
                data["pw"] = None if level.pw is None else conv(level.pw)
                if self.smoother == "rbgs":
                    i, j, k = np.indices(level.shape3)
                    data["red"] = conv(((i + j + k) % 2 == 0).astype(np.float64))
            else:
                data["inverse"] = conv(self.coarse_inverse)
            cache = (key, data)
            level.cache["device"] = cache
        return cache[1]

    def _apply_level(self, l, u):
        return sliced_apply(u, self._device_level(l))

    def _smooth_xp(self, l, b, x, pre, steps):
        data = self._device_level(l)
        inv_d = data["inv_diag"]
        if self.smoother == "rbgs":
            red = data["red"]
            if x is None:
                x = b * 0.0
            masks = (red, 1.0 - red) if pre else (1.0 - red, red)
            for _ in range(steps):
                for m in masks:
                    x = x + m * (b - self._apply_level(l, x)) * inv_d
            return x
        c0, coefs = self._poly_coefficients(steps)
        if x is None:
            d = c0 * b * inv_d
            x = None
        else:
            d = c0 * (b - self._apply_level(l, x)) * inv_d
        for a, cf in coefs:
            u = d if x is None else x + d
            d = a * d + cf * (b - self._apply_level(l, u)) * inv_d
            x = u
        return d if x is None else x + d

    def _prepare(self, r):
        """Record the dtype/device of the data a cycle is about to run on."""
        if self.backend == "numpy":
            self._current_dtype = np.dtype(r.dtype)
        else:
            self._xp_dtype = r.dtype
            self._xp_device = bk.device_of(r)


def _pseudo_inverse(Ac: np.ndarray, op) -> np.ndarray:
    """The pseudo-inverse of the singular coarsest matrix.  Its null space is spanned by
    the indicator vectors ``v_c`` (normalised) of the floating regions, so
    ``A + a V V^T`` is SPD and ``A^+ = (A + a V V^T)^{-1} - V V^T / a``: one Cholesky
    factorisation (several times cheaper than the eigendecomposition, which remains the
    fallback when the region indicators do not span the null space)."""
    import scipy.linalg as sla
    labels, sizes = op.floating_components()
    if sizes.size:
        V = np.zeros((Ac.shape[0], sizes.size))
        rows = np.flatnonzero(labels)
        V[rows, labels[rows] - 1] = 1.0 / np.sqrt(sizes[labels[rows] - 1])
        scale = float(np.abs(Ac).max())
        if np.abs(Ac @ V).max() <= 1e-12 * scale:
            a = float(np.max(np.diag(Ac)))
            try:
                inv = sla.cho_solve(sla.cho_factor(Ac + a * (V @ V.T)), np.eye(Ac.shape[0]))
                inv = inv - (V @ V.T) / a
                # more null vectors than regions (two active cells joined by a zero face
                # on a coarse level) leave a near-singular factor: check A A^+ A = A
                if np.abs(Ac @ inv @ Ac - Ac).max() <= 1e-8 * scale:
                    return inv
            except np.linalg.LinAlgError:
                pass
    w, Q = np.linalg.eigh(Ac)
    keep = w > w.max() * 1e-10
    return (Q[:, keep] / w[keep]) @ Q[:, keep].T
