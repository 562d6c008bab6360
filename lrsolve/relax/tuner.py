"""BanditSOR: the omega tuner a time-stepping simulation calls once per linear system.

The tuner owns a learner (:mod:`lrsolve.relax.learners`), asks it for omega, runs SOR or
SSOR-preconditioned CG with a cap on iterations, reports the cost back, and can be saved
and restored atomically (:func:`lrsolve.io.atomic_save`) so that a restarted simulation
resumes learning exactly.  A saved state is JSON, loaded as data: only the registered
learner classes, a known format version and a configuration that agrees with the
learner's state are accepted.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import backend as bk
from ..io import load_json, require, save_json
from ..krylov import cg_result
from ..linsys import check_tolerances, make_system
from ..result import SolveResult, Status
from ..seeding import check_seed
from .learners import LEARNERS, Learner, _arms, _decode, default_omegas, make_learner
from .sor import SSOR, adaptive_sor, csr_parts, jacobi_bound, sor

__all__ = ["BanditSOR", "DEFAULT_LEARNER"]

#: The learner BanditSOR uses when none is named, per method (see docs/relax.md for the
#: measurements that chose them).
DEFAULT_LEARNER = {"sor": "young", "ssor-cg": "unimodal"}

_FORMAT = "lrsolve.relax.BanditSOR"
_VERSION = 1
_METHODS = ("sor", "ssor-cg")
_COSTS = ("iterations", "seconds")


class BanditSOR:
    """Tune the SOR relaxation parameter online over a sequence of linear systems.

    Parameters
    ----------
    omegas : array, optional
        The arms of the bandit learners, ``linspace(1, 1.95, 20)`` by default (the paper's).
    learner : str or Learner, optional
        ``"young"`` (default for SOR), ``"unimodal"`` (default for SSOR-CG),
        ``"tsallis-inf"``, ``"exp3"``, ``"chebcb"``, ``"hageman-young"``, or a
        :class:`~lrsolve.relax.learners.Learner` object.
    seed : int or None
        Seeds the learner's random generator (:func:`lrsolve.seeding.as_generator`).
    method : {"sor", "ssor-cg"}
        SOR iterations, or CG preconditioned by SSOR(omega).
    maxiter : int, optional
        Cap on the iterations of one solve (default ``10 n``).  A capped solve costs the cap
        and is finished by CG from where it stopped (``stats["fallback_iterations"]``), so a
        bad omega can never hang a simulation.
    cost : {"iterations", "seconds"}
        What the learner minimises.
    learner_options : dict, optional
        Keyword arguments for the learner when ``learner`` is a name (e.g.
        ``{"context_bounds": (0, 10)}`` for ChebCB).

    Examples
    --------
    >>> import numpy as np, lrsolve as lr
    >>> tuner = lr.relax.BanditSOR(seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for t in range(5):
    ...     A = lr.operators.poisson_operator(20, 2, shift=rng.uniform(0.01, 0.3), scaled=False)
    ...     out = tuner.solve(A, rng.standard_normal(400), rtol=1e-8)
    >>> out.converged, 1.0 < out.stats["omega"] < 2.0
    (True, True)
    >>> x, info = out          # unpacks like SciPy: info == 0 when converged
    """

    def __init__(self, omegas=None, learner=None, *, seed=0, method: str = "sor",
                 maxiter: int | None = None, cost: str = "iterations",
                 learner_options: dict | None = None):
        if method not in _METHODS:
            raise ValueError(f"method must be 'sor' or 'ssor-cg', got {method!r}")
        if cost not in _COSTS:
            raise ValueError(f"cost must be 'iterations' or 'seconds', got {cost!r}")
        if maxiter is not None and (isinstance(maxiter, bool)
                                    or not isinstance(maxiter, (int, np.integer)) or maxiter < 1):
            raise ValueError(f"maxiter must be a positive int or None, got {maxiter!r}")
        self.omegas = default_omegas() if omegas is None else _arms(omegas)
        self.method = method
        self.cost = cost
        self.maxiter = None if maxiter is None else int(maxiter)
        self.seed = check_seed(seed)
        if learner is None:
            learner = DEFAULT_LEARNER[method]
        if isinstance(learner, str):
            self.learner = make_learner(learner, omegas=self.omegas, seed=seed,
                                        **(learner_options or {}))
        elif isinstance(learner, Learner) or (hasattr(learner, "choose")
                                              and hasattr(learner, "update")):
            self.learner = learner
        else:
            raise TypeError(f"learner must be a name or a Learner object, got {learner!r}")
        self.t = 0
        self.history: dict = {"omega": [], "iterations": [], "converged": [], "capped": []}

    # ------------------------------------------------------------------------------------
    def solve(self, A_t: Any, b_t: Any, *, x0: Any = None, rtol: float = 1e-6,
              context: Any = None) -> SolveResult:
        """Solve ``A_t x = b_t`` with the omega the learner picks, then teach the learner.

        Every input is validated before the learner is asked for omega, so a rejected call
        leaves the tuner (its random stream included) exactly as it was.

        Parameters
        ----------
        A_t : matrix or lrsolve operator
            Nonzero diagonal (SPD for the convergence guarantees and the CG fallback).
        b_t : array
        x0 : array, optional
            Warm start (e.g. the previous time step's solution).
        rtol : float
            ``||b - A x|| <= rtol ||b||`` (default ``1e-6``; the paper's settings use 1e-8).
        context : float, optional
            A scalar describing the system (e.g. the shift c, or the diffusion kappa(t)),
            needed by ChebCB and ignored by the other learners.

        Returns
        -------
        SolveResult
            ``x`` on the backend of ``b_t``; unpacks as ``x, info``.  ``status`` is that of
            the returned ``x`` (after the CG fallback, if one ran); ``iterations`` is what
            the learner was charged (the cap when capped).  ``stats``: ``omega``,
            ``iterations``, ``converged``, ``capped``, ``fallback_iterations``, ``time``,
            ``cost``, ``t``, ``method`` (and ``omega_final`` for adaptive learners).
        """
        rtol, _ = check_tolerances(rtol, 0.0, None)
        if context is not None:
            if isinstance(context, bool) or not np.isscalar(context) or \
                    not math.isfinite(float(context)):
                raise ValueError(f"context must be a finite real number or None, got "
                                 f"{context!r}")
        t0 = time.perf_counter()
        # Validate everything first: nothing below may touch the learner if this raises.
        system = make_system(A_t, b_t, x0, rtol=rtol)
        if "complex" in str(system.dtype):
            raise TypeError("b_t is complex: BanditSOR supports real systems only")
        numpy_path = bk.backend_name(b_t) == "numpy"
        A_solve = csr_parts(A_t) if numpy_path else A_t
        side = {}
        if getattr(self.learner, "name", "") == "young":
            side["jacobi_bound"] = jacobi_bound(A_t if hasattr(A_t, "grid_shape") else A_solve)
        if getattr(self.learner, "name", "") == "chebcb" and context is None:
            raise ValueError("context is required by the 'chebcb' learner (a scalar "
                             "describing the system, e.g. the shift c)")
        omega = float(self.learner.choose(context, side))
        n = int(system.n)
        cap = self.maxiter if self.maxiter is not None else 10 * n
        if hasattr(self.learner, "rtol"):
            self.learner.rtol = float(rtol)
        if self.method == "sor":
            if getattr(self.learner, "adaptive", False) or \
                    getattr(self.learner, "request_adaptive", False):
                res = adaptive_sor(A_solve, b_t, x0=x0, rtol=rtol, maxiter=cap, omega0=omega)
            else:
                res = sor(A_solve, b_t, omega=omega, x0=x0, rtol=rtol, maxiter=cap)
        else:
            M = SSOR(A_solve, omega, backend=bk.backend_name(b_t))
            res = cg_result(A_solve if numpy_path else A_t, b_t, x0, rtol=rtol, maxiter=cap, M=M)
        iterations = int(res.iterations)
        capped = not res.converged and iterations >= cap
        x, status, fallback_iterations = res.x, res.status, 0
        if not res.converged:
            # Safe finish: CG from the iterate reached (A is SPD for every use of SOR here).
            fb = cg_result(A_solve if numpy_path else A_t, b_t, res.x, rtol=rtol)
            fallback_iterations = int(fb.iterations)
            last = res.residuals[-1] if res.residuals else np.inf
            if fb.converged or (fb.residuals and fb.residuals[-1] < last):
                x, status = fb.x, fb.status
        converged = status is Status.CONVERGED
        elapsed = time.perf_counter() - t0
        cost = float(min(iterations, cap)) if self.cost == "iterations" else elapsed
        self.learner.update(cost, {"omega": res.stats.get("omega", omega),
                                   "residuals": res.residuals,
                                   "mu": res.stats.get("mu"),
                                   "mu_first": (res.stats.get("mu_estimates") or [None])[0]})
        self.t += 1
        for key, val in (("omega", omega), ("iterations", iterations), ("converged", converged),
                         ("capped", capped)):
            self.history[key].append(val)
        stats = {"omega": omega, "iterations": iterations, "converged": bool(converged),
                 "capped": bool(capped), "fallback_iterations": fallback_iterations,
                 "time": elapsed, "cost": cost, "t": self.t, "method": self.method}
        if "omegas" in res.stats:
            stats["omega_final"] = res.stats["omega"]
        return SolveResult(x=x, status=status, iterations=iterations,
                           residuals=list(res.residuals), time=elapsed,
                           method=f"banditsor-{self.method}", stats=stats)

    # ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume: configuration, counters, history, learner state."""
        learner_cls = type(self.learner)
        return {
            "format": _FORMAT, "version": _VERSION,
            "config": {"omegas": self.omegas.tolist(), "method": self.method, "cost": self.cost,
                       "maxiter": self.maxiter,
                       "seed": self.seed if isinstance(self.seed, (int, type(None))) else None},
            "t": self.t,
            "history": self.history,
            "learner_class": f"{learner_cls.__module__}:{learner_cls.__qualname__}",
            "learner": self.learner.state_dict(),
        }

    def save(self, path) -> None:
        """Write the whole tuner state to ``path`` (JSON) with :func:`lrsolve.io.atomic_save`.

        A crash or kill while saving leaves either the old file or the new one, never a
        truncated mix; saving through a symlink writes the file it points to.
        """
        save_json(path, self.state_dict(), indent=None)

    @classmethod
    def load(cls, path) -> "BanditSOR":
        """Restore a tuner written by :meth:`save`; it continues exactly where it stopped.

        The file is data: it may only name a registered learner (``LEARNERS``), must have
        this format and version, and its configuration and learner state must agree
        (the same arms, the expected attributes).

        Raises
        ------
        ValueError
            Not a saved BanditSOR (binary, malformed or truncated JSON, wrong format,
            unknown version, missing or ill-typed keys, an unregistered learner class,
            arms that disagree with the configuration).
        """
        where = f"{path!s}"
        state = load_json(path, what="saved BanditSOR")
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{where} is not a saved BanditSOR (format is not {_FORMAT!r})")
        version = require(state, "version", int, where=where)
        if version != _VERSION:
            raise ValueError(f"{where}: unsupported BanditSOR file version {version} (this "
                             f"lrsolve reads version {_VERSION})")
        cfg = require(state, "config", dict, where=where)
        omegas = require(cfg, "omegas", list, where=where + " config")
        try:
            omegas = _arms(omegas)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: config 'omegas' is invalid: {exc}") from None
        method = require(cfg, "method", str, where=where + " config")
        if method not in _METHODS:
            raise ValueError(f"{where}: config 'method' must be one of {_METHODS}, got {method!r}")
        cost = require(cfg, "cost", str, where=where + " config")
        if cost not in _COSTS:
            raise ValueError(f"{where}: config 'cost' must be one of {_COSTS}, got {cost!r}")
        cap_key = "maxiter" if "maxiter" in cfg else "max_iterations"   # files before 0.2
        maxiter = require(cfg, cap_key, int, where=where + " config", allow_none=True)
        if maxiter is not None and maxiter < 1:
            raise ValueError(f"{where}: config {cap_key!r} must be >= 1, got {maxiter}")
        seed = require(cfg, "seed", int, where=where + " config", allow_none=True)
        t = require(state, "t", int, where=where)
        if t < 0:
            raise ValueError(f"{where}: 't' must be >= 0, got {t}")
        history = require(state, "history", dict, where=where)
        for key in ("omega", "iterations", "converged", "capped"):
            column = require(history, key, list, where=where + " history")
            if len(column) != t:
                raise ValueError(f"{where}: history {key!r} has {len(column)} entries for "
                                 f"t = {t}")
        learner_state = require(state, "learner", dict, where=where)
        name = require(learner_state, "name", str, where=where + " learner")
        learner_cls = LEARNERS.get(name)
        qualname = require(state, "learner_class", str, where=where).partition(":")[2]
        if learner_cls is None or learner_cls.__qualname__ != qualname:
            raise ValueError(f"{where}: learner {name!r} / class {qualname!r} is not a "
                             f"registered learner ({sorted(LEARNERS)}); only those load")
        learner = _load_learner(learner_cls, learner_state, omegas, where)
        obj = cls(omegas=omegas, learner=learner, seed=seed, method=method, maxiter=maxiter,
                  cost=cost)
        obj.t = t
        obj.history = {k: list(history[k]) for k in ("omega", "iterations", "converged",
                                                      "capped")}
        return obj


def _load_learner(learner_cls, learner_state: dict, omegas: np.ndarray, where: str):
    """Rebuild a registered learner from its saved attributes, checked against a fresh one."""
    attributes = require(learner_state, "attributes", dict, where=where + " learner")
    fresh = make_learner(learner_state["name"], omegas=omegas, seed=0)
    expected = vars(fresh)
    missing = sorted(set(expected) - set(attributes))
    unknown = sorted(set(attributes) - set(expected))
    if missing or unknown:
        raise ValueError(f"{where}: learner state does not match a {learner_cls.__name__} "
                         f"(missing {missing}, unexpected {unknown})")
    try:
        decoded = _decode(attributes)
    except ValueError as exc:
        raise ValueError(f"{where}: learner state is invalid: {exc}") from None
    for key, ref in expected.items():
        value = decoded[key]
        if not _same_kind(ref, value):
            raise ValueError(f"{where}: learner attribute {key!r} has the wrong type "
                             f"({type(value).__name__}, expected {type(ref).__name__})")
    if "omegas" in expected and not np.array_equal(decoded["omegas"], omegas):
        raise ValueError(f"{where}: the learner's arms {decoded['omegas'].tolist()} disagree "
                         f"with config 'omegas' {omegas.tolist()}")
    try:
        return learner_cls.from_state_dict({"name": learner_state["name"],
                                            "attributes": attributes})
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{where}: learner state is invalid: {exc}") from None


def _same_kind(ref: Any, value: Any) -> bool:
    if ref is None or value is None:
        return True                       # optional state (set after the first update)
    if isinstance(ref, np.random.Generator):
        return isinstance(value, np.random.Generator)
    if isinstance(ref, np.ndarray):
        return isinstance(value, np.ndarray) and value.ndim == ref.ndim
    if isinstance(ref, bool):
        return isinstance(value, bool)
    if isinstance(ref, (int, float, np.integer, np.floating)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(ref, (list, tuple)):
        return isinstance(value, list)
    if isinstance(ref, dict):
        return isinstance(value, dict)
    if isinstance(ref, str):
        return isinstance(value, str)
    return False
