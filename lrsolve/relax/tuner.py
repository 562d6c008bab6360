"""BanditSOR: the omega tuner a time-stepping simulation calls once per linear system.

The tuner owns a learner (:mod:`lrsolve.relax.learners`), asks it for omega, runs SOR or
SSOR-preconditioned CG with a cap on iterations, reports the cost back, and can be saved
and restored atomically so that a restarted simulation resumes learning exactly.
"""
from __future__ import annotations

import importlib
import json
import os
import tempfile
import time
from typing import Any

import numpy as np

from .. import backend as bk
from ..krylov import cg_result
from ..linsys import check_tolerances
from .learners import LEARNERS, Learner, default_omegas, make_learner
from .sor import SSOR, adaptive_sor, csr_parts, jacobi_bound, sor

__all__ = ["BanditSOR", "DEFAULT_LEARNER"]

#: The learner BanditSOR uses when none is named, per method (see docs/relax.md for the
#: measurements that chose them).
DEFAULT_LEARNER = {"sor": "young", "ssor-cg": "unimodal"}

_FORMAT = "lrsolve.relax.BanditSOR"
_VERSION = 1


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
    seed : int
        Seeds the learner's random generator.
    method : {"sor", "ssor-cg"}
        SOR iterations, or CG preconditioned by SSOR(omega).
    max_iterations : int, optional
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
    ...     x, stats = tuner.solve(A, rng.standard_normal(400), rtol=1e-8)
    >>> stats["converged"], 1.0 < stats["omega"] < 2.0
    (True, True)
    """

    def __init__(self, omegas=None, learner=None, seed=0, method: str = "sor",
                 max_iterations: int | None = None, cost: str = "iterations",
                 learner_options: dict | None = None):
        if method not in ("sor", "ssor-cg"):
            raise ValueError(f"method must be 'sor' or 'ssor-cg', got {method!r}")
        if cost not in ("iterations", "seconds"):
            raise ValueError(f"cost must be 'iterations' or 'seconds', got {cost!r}")
        if max_iterations is not None and (not isinstance(max_iterations, (int, np.integer))
                                           or max_iterations < 1):
            raise ValueError(f"max_iterations must be a positive int or None, got "
                             f"{max_iterations!r}")
        self.omegas = default_omegas() if omegas is None else np.asarray(omegas, float)
        self.method = method
        self.cost = cost
        self.max_iterations = None if max_iterations is None else int(max_iterations)
        self.seed = seed
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
    def solve(self, A_t: Any, b_t: Any, x0: Any = None, rtol: float = 1e-8,
              context: Any = None):
        """Solve ``A_t x = b_t`` with the omega the learner picks, then teach the learner.

        Parameters
        ----------
        A_t : matrix or lrsolve operator
            Nonzero diagonal (SPD for the convergence guarantees and the CG fallback).
        b_t : array
        x0 : array, optional
            Warm start (e.g. the previous time step's solution).
        rtol : float
            ``||b - A x|| <= rtol ||b||``.
        context : float, optional
            A scalar describing the system (e.g. the shift c, or the diffusion kappa(t)),
            needed by ChebCB and ignored by the other learners.

        Returns
        -------
        x : array
            The solution, on the backend of ``b_t``.
        stats : dict
            ``omega``, ``iterations`` (what the learner was charged; the cap when capped),
            ``converged``, ``capped``, ``fallback_iterations``, ``time``, ``cost``, ``t``,
            ``method``, ``residuals``.
        """
        check_tolerances(rtol, 0.0, None)
        t0 = time.perf_counter()
        numpy_path = bk.backend_name(b_t) == "numpy"
        A_solve = csr_parts(A_t) if numpy_path else A_t
        side = {}
        if getattr(self.learner, "name", "") == "young":
            side["jacobi_bound"] = jacobi_bound(A_t if hasattr(A_t, "grid_shape") else A_solve)
        omega = float(self.learner.choose(context, side))
        n = int(A_t.shape[0])
        cap = self.max_iterations if self.max_iterations is not None else 10 * n
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
        x, converged, fallback_iterations = res.x, res.converged, 0
        if not res.converged:
            # Safe finish: CG from the iterate reached (A is SPD for every use of SOR here).
            fb = cg_result(A_solve if numpy_path else A_t, b_t, res.x, rtol=rtol)
            fallback_iterations = int(fb.iterations)
            last = res.residuals[-1] if res.residuals else np.inf
            if fb.converged or (fb.residuals and fb.residuals[-1] < last):
                x, converged = fb.x, fb.converged
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
                 "time": elapsed, "cost": cost, "t": self.t, "method": self.method,
                 "residuals": res.residuals}
        if "omegas" in res.stats:
            stats["omega_final"] = res.stats["omega"]
        return x, stats

    # ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume: configuration, counters, history, learner state."""
        learner_cls = type(self.learner)
        return {
            "format": _FORMAT, "version": _VERSION,
            "config": {"omegas": self.omegas.tolist(), "method": self.method, "cost": self.cost,
                       "max_iterations": self.max_iterations, "seed": self.seed},
            "t": self.t,
            "history": self.history,
            "learner_class": f"{learner_cls.__module__}:{learner_cls.__qualname__}",
            "learner": self.learner.state_dict(),
        }

    def save(self, path) -> None:
        """Write the whole tuner state to ``path`` (JSON) atomically.

        The state goes to a temporary file in the same folder, is flushed to disk, and
        then replaces ``path`` in one ``os.replace``: a crash while saving leaves either
        the old file or the new one, never a truncated mix.
        """
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        text = json.dumps(self.state_dict())
        fd, tmp = tempfile.mkstemp(prefix=".banditsor-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise a user
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        try:  # make the rename itself durable where the OS allows it
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    @classmethod
    def load(cls, path) -> "BanditSOR":
        """Restore a tuner written by :meth:`save`; it continues exactly where it stopped."""
        with open(os.fspath(path)) as fh:
            try:
                state = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path!s} is not a saved BanditSOR (invalid JSON: {exc})") \
                    from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path!s} is not a saved BanditSOR")
        cfg = state["config"]
        module_name, _, qualname = state["learner_class"].partition(":")
        learner_cls = None
        for candidate in LEARNERS.values():
            if candidate.name == state["learner"].get("name") and \
                    candidate.__qualname__ == qualname:
                learner_cls = candidate
        if learner_cls is None:
            learner_cls = getattr(importlib.import_module(module_name), qualname)
        learner = learner_cls.from_state_dict(state["learner"])
        obj = cls(omegas=cfg["omegas"], learner=learner, seed=cfg["seed"], method=cfg["method"],
                  max_iterations=cfg["max_iterations"], cost=cfg["cost"])
        obj.t = int(state["t"])
        obj.history = state["history"]
        return obj
