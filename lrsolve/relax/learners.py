"""Online learners that pick the relaxation parameter omega, one linear system at a time.

Every learner is a small object with

* ``choose(context=None, side=None) -> omega`` - the omega for the next solve;
* ``update(cost, side=None)`` - the cost of that solve (iterations or seconds);
* ``state_dict()`` / ``load_state_dict(d)`` - the whole state, JSON-serialisable
  (random generator included), so a saved learner continues exactly.

``side`` carries optional solver side information as a dict: before a solve
``{"jacobi_bound": ...}``, after it ``{"omega": ..., "residuals": [...], "mu": ...}``.
The bandit learners ignore it.  Learners are pure NumPy and never call a solver.

Learners
--------
TsallisINF
    1/2-Tsallis-INF over a grid of arms exactly as in Khodak et al. (2024) and their
    reference code: eta_t = 2 / sqrt(t), cost normalised by its running mean minus one.
Exp3
    The classical exponential-weights bandit, a baseline.
ChebCB
    The contextual bandit of Khodak et al.: per-arm regression of the cost on Chebyshev
    features T0..T_{m-1} of a scalar context, inverse-gap-weighted sampling.
YoungLearner
    Beyond the paper (the default for SOR): uses the structure the bandits ignore.  Each
    solve's residual history gives the asymptotic convergence factor of SOR(omega), hence
    the Jacobi spectral radius by Young's relation, hence Young's optimal omega for the
    next system.  It learns the ratio between that radius and a cheap Gershgorin bound
    computed from the next matrix, so it tracks systems that change from step to step.
UnimodalUCB
    Beyond the paper (the default for SSOR-CG, where Young's formula does not apply): a
    bandit over the arms that uses that the cost is unimodal in omega - it only ever
    compares the empirical leader with its two neighbours (OSUB, Combes & Proutiere 2014).
HagemanYoung
    The classical adaptive SOR (Hageman & Young 1981) as a learner: omega adapts inside
    each solve (:func:`lrsolve.relax.adaptive_sor`), and the Jacobi estimate is carried
    to the next solve.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..seeding import as_generator
from .theory import critical_mu, jacobi_radius_from_rate, observed_rate, young_omega

__all__ = ["Learner", "TsallisINF", "Exp3", "ChebCB", "YoungLearner", "UnimodalUCB",
           "HagemanYoung", "make_learner", "LEARNERS", "default_omegas"]


def default_omegas() -> np.ndarray:
    """The paper's arms: ``linspace(1, 1.95, 20)``."""
    return np.linspace(1.0, 1.95, 20)


def _encode(value: Any):
    if isinstance(value, np.random.Generator):
        return {"__generator__": value.bit_generator.state}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": value.shape}
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


#: Bit generators a saved learner may name (looked up in this table, never by attribute).
_BIT_GENERATORS = {name: getattr(np.random, name)
                   for name in ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")}


def _decode(value: Any):
    if isinstance(value, dict):
        if "__generator__" in value:
            state = value["__generator__"]
            name = state.get("bit_generator") if isinstance(state, dict) else None
            if name not in _BIT_GENERATORS:
                raise ValueError(f"saved random generator names an unknown bit generator "
                                 f"{name!r} (allowed: {sorted(_BIT_GENERATORS)})")
            rng = np.random.Generator(_BIT_GENERATORS[name]())
            try:
                rng.bit_generator.state = state
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise ValueError(f"saved random generator state is invalid: {exc}") from None
            return rng
        if "__ndarray__" in value:
            try:
                dtype = np.dtype(value["dtype"])
                if dtype.kind not in "biuf":
                    raise ValueError(f"dtype {dtype} not allowed")
                return np.asarray(value["__ndarray__"], dtype=dtype).reshape(value["shape"])
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"saved array is invalid: {exc}") from None
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class Learner:
    """Base class: state (de)serialisation and the shared ``omegas`` / ``rng`` attributes."""

    name = "learner"

    def choose(self, context=None, side=None) -> float:
        raise NotImplementedError

    def update(self, cost: float, side=None) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The whole state as JSON-serialisable values (floats round-trip exactly)."""
        return {"name": self.name, "attributes": _encode(dict(vars(self)))}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state is for learner {state.get('name')!r}, not {self.name!r}")
        for key, value in _decode(state["attributes"]).items():
            setattr(self, key, value)

    @classmethod
    def from_state_dict(cls, state: dict) -> "Learner":
        obj = cls.__new__(cls)
        obj.load_state_dict(state)
        return obj

    @staticmethod
    def _check_cost(cost) -> float:
        cost = float(cost)
        if not math.isfinite(cost) or cost < 0:
            raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
        return cost


def _arms(omegas) -> np.ndarray:
    arms = default_omegas() if omegas is None else np.asarray(omegas, dtype=float).reshape(-1)
    if arms.size < 1 or not np.all(np.isfinite(arms)) or np.any(arms <= 0) or np.any(arms >= 2):
        raise ValueError(f"omegas must be a non-empty list of numbers in (0, 2), got {omegas!r}")
    return arms


class TsallisINF(Learner):
    """1/2-Tsallis-INF (Zimmert & Seldin 2021) with the settings of Khodak et al. (2024).

    Parameters
    ----------
    omegas : array, optional
        The arms, ``linspace(1, 1.95, 20)`` by default.
    seed : int or numpy.random.Generator

    Notes
    -----
    As in the reference code: the learning rate is ``eta_t = 2 / sqrt(t)``, the importance
    weighted cumulative loss of arm i grows by ``(cost - 1) / p_i`` and is divided by the
    running mean cost minus one, and the probabilities ``p_i = 4 (eta (L_i - x))^-2`` are
    normalised by Newton's method on ``x`` (here safeguarded by bisection).

    Examples
    --------
    >>> learner = TsallisINF(seed=0)
    >>> omega = learner.choose(); learner.update(120.0)
    >>> 1.0 <= omega <= 1.95
    True
    """

    name = "tsallis-inf"

    def __init__(self, omegas=None, seed=0):
        self.omegas = _arms(omegas)
        self.rng = as_generator(seed)
        self.t = 1
        self.cumulative = np.zeros(self.omegas.size)
        self.loss_sum = 0.0
        self.scale = 1.0
        self.index = 0
        self.prob = 1.0

    def probabilities(self) -> np.ndarray:
        """Current sampling distribution over the arms."""
        eta = 2.0 / math.sqrt(self.t)
        L = self.cumulative / self.scale
        K = L.size
        hi = float(L.min())
        lo = hi - 2.0 * math.sqrt(K) / eta  # there sum(p) <= 1

        def total(x):
            return float(np.sum(4.0 / (eta * (L - x)) ** 2))

        x = lo
        for _ in range(60):
            f = total(x) - 1.0
            if abs(f) < 1e-12:
                break
            if f < 0:
                lo = x
            else:
                hi = x
            deriv = float(np.sum(8.0 / (eta ** 2 * (L - x) ** 3)))
            x_new = x - f / deriv
            x = x_new if lo < x_new < hi else 0.5 * (lo + hi)
        p = 4.0 / (eta * (L - x)) ** 2
        return p / p.sum()

    def choose(self, context=None, side=None) -> float:
        p = self.probabilities()
        self.index = int(self.rng.choice(p.size, p=p))
        self.prob = float(p[self.index])
        return float(self.omegas[self.index])

    def update(self, cost, side=None) -> None:
        cost = self._check_cost(cost)
        self.loss_sum += cost
        self.scale = max(self.loss_sum / self.t - 1.0, 1e-12)
        self.cumulative[self.index] += (cost - 1.0) / self.prob
        self.t += 1


class Exp3(Learner):
    """Exp3 (Auer et al. 2002) over the arms, losses normalised by the largest cost seen.

    ``eta_t = sqrt(2 log K / (K t))``.

    Examples
    --------
    >>> learner = Exp3(seed=0)
    >>> omega = learner.choose(); learner.update(80.0)
    >>> learner.t
    2
    """

    name = "exp3"

    def __init__(self, omegas=None, seed=0):
        self.omegas = _arms(omegas)
        self.rng = as_generator(seed)
        self.t = 1
        self.estimates = np.zeros(self.omegas.size)
        self.max_cost = 0.0
        self.index = 0
        self.prob = 1.0

    def probabilities(self) -> np.ndarray:
        K = self.omegas.size
        eta = math.sqrt(2.0 * math.log(max(K, 2)) / (K * self.t))
        z = -eta * (self.estimates - self.estimates.min())
        w = np.exp(z)
        return w / w.sum()

    def choose(self, context=None, side=None) -> float:
        p = self.probabilities()
        self.index = int(self.rng.choice(p.size, p=p))
        self.prob = float(p[self.index])
        return float(self.omegas[self.index])

    def update(self, cost, side=None) -> None:
        cost = self._check_cost(cost)
        self.max_cost = max(self.max_cost, cost)
        loss = cost / self.max_cost if self.max_cost > 0 else 0.0
        self.estimates[self.index] += loss / self.prob
        self.t += 1


class ChebCB(Learner):
    """ChebCB: contextual bandit with Chebyshev features of a scalar context (Khodak et al.).

    Parameters
    ----------
    omegas : array, optional
        The arms.
    degree_count : int
        ``m``: features ``T_0 .. T_{m-1}`` (6 in the paper).
    context_bounds : (float, float)
        The interval of the context, mapped to [-1, 1] (``(-0.15, 0.65)`` in the paper's
        script for the shift c).
    seed : int or numpy.random.Generator

    Notes
    -----
    Following the reference: costs are divided by ``K N`` with ``K`` the largest cost so far
    and ``N = 2 + 4 (b - a) L / K (1 + log m)`` (``L`` the cost range over the context
    width); each arm's coefficients are the least-squares fit of its normalised costs, put
    into the box ``|theta_0| <= 1/N``, ``|theta_j| <= 2 (b - a) L / (K N j)`` when the
    unconstrained fit leaves it; arms are drawn with inverse-gap weights
    ``1 / (d + eta (yhat_i - yhat_min))`` with ``eta`` growing linearly in t.

    Examples
    --------
    >>> learner = ChebCB(context_bounds=(-0.15, 0.65), seed=0)
    >>> omega = learner.choose(0.1); learner.update(60.0)
    >>> 1.0 <= omega <= 1.95
    True
    """

    name = "chebcb"

    def __init__(self, omegas=None, degree_count: int = 6, context_bounds=(-0.15, 0.65), seed=0):
        self.omegas = _arms(omegas)
        a, b = (float(v) for v in context_bounds)
        if not (b > a):
            raise ValueError(f"context_bounds must be (low, high) with high > low, got "
                             f"{context_bounds!r}")
        if int(degree_count) < 1:
            raise ValueError(f"degree_count must be >= 1, got {degree_count!r}")
        self.m = int(degree_count)
        self.a, self.width = a, b - a
        self.rng = as_generator(seed)
        d = self.omegas.size
        self.theta = np.zeros((d, self.m))
        self.features: list = []
        self.losses: list = []
        self.actions: list = []
        self.predicted: list = []
        self.eta = 0.0
        self.scale = 0.0
        self.t = 1

    def _features(self, context) -> np.ndarray:
        z = 2.0 / self.width * (float(context) - self.a) - 1.0
        z = min(max(z, -1.0), 1.0)
        return np.polynomial.chebyshev.chebvander(np.array([z]), self.m - 1)[0]

    def choose(self, context=None, side=None) -> float:
        if context is None or not np.isscalar(context) or not np.isfinite(float(context)):
            raise ValueError(f"ChebCB needs a finite scalar context (e.g. the shift c), got "
                             f"{context!r}")
        f = self._features(context)
        yhat = self.theta @ f
        istar = int(np.argmin(yhat))
        d = yhat.size
        probs = 1.0 / (d + self.eta * (yhat - yhat[istar]))
        probs[istar] = 0.0
        probs[istar] = max(1.0 - probs.sum(), 0.0)
        probs = probs / probs.sum()
        i = int(self.rng.choice(d, p=probs))
        self.features.append(f.tolist())
        self.actions.append(i)
        self.predicted.append(float(self.theta[i] @ f))
        return float(self.omegas[i])

    def update(self, cost, side=None) -> None:
        from scipy.optimize import lsq_linear
        cost = self._check_cost(cost)
        if len(self.losses) >= len(self.actions):
            raise RuntimeError("ChebCB.update called without a preceding choose")
        self.losses.append(cost)
        losses = np.asarray(self.losses)
        actions = np.asarray(self.actions)
        features = np.asarray(self.features)
        K = float(losses.max()) if losses.max() > 0 else 1.0
        L = float(losses.max() - losses.min()) / self.width
        N = 2.0 + 4.0 * self.width * L / K * (1.0 + math.log(self.m))
        rescale = self.scale != K * N
        self.scale = K * N
        ub = np.concatenate([[1.0 / N], 2.0 * self.width * L / self.scale
                             / np.arange(1, self.m)])
        resnorm = 0.0
        for i in range(self.theta.shape[0]):
            if not (rescale or i == actions[-1]):
                continue
            idx = actions == i
            if not idx.any():
                continue
            X, y = features[idx], (losses[idx] - 1.0) / self.scale
            theta = np.linalg.lstsq(X, y, rcond=None)[0]
            if np.any(np.abs(theta) > ub):
                fit = lsq_linear(X, y, bounds=(-ub - 1e-15, ub + 1e-15))
                theta, resnorm = fit.x, float(2.0 * fit.cost)
            self.theta[i] = theta
        alpha = (math.pi + 2.0 / math.pi * math.log(2.0 * self.m + 1)) / (
            2.0 * self.scale * (self.m + 1)) * self.width * L
        R = float(np.sum((np.asarray(self.predicted) - losses / K / N) ** 2))
        d = self.theta.shape[0]
        denom = R - resnorm + 2.0 * alpha ** 2 * self.t
        self.eta = 2.0 * self.t * math.sqrt(d * self.t / denom) if denom > 0 else 0.0
        self.t += 1


class YoungLearner(Learner):
    """Learn Young's optimal omega from residual histories (structure the bandits ignore).

    Before each solve :class:`~lrsolve.relax.BanditSOR` passes a cheap Gershgorin bound
    ``beta >= mu`` of the next matrix's Jacobi spectral radius (side ``"jacobi_bound"``,
    one pass over the matrix).  The learner tracks the ratio ``g = mu / beta`` - a
    constant for a constant-coefficient stencil (``cos(pi h)``), slowly varying otherwise -
    and plays Young's ``omega = 2 / (1 + sqrt(1 - (g beta)^2))``.  After the solve the
    asymptotic factor ``lam`` read from the residual history updates ``g``:

    * **informative** (``lam >= (omega - 1)^p``, omega clearly below the optimum): Young's
      relation ``mu = (lam + omega - 1) / (omega sqrt(lam))`` is accurate there, so ``g``
      is set from it (median of the recent informative ratios);
    * **censored** (``lam`` within ``censor_tol`` of ``omega - 1``): every SOR eigenvalue has
      modulus ``omega - 1``, i.e. ``omega >= omega_opt`` and ``mu <= 2 sqrt(omega-1)/omega``;
      ``g`` is lowered below that cap (the gap ``1 - mu`` widened by ``shrink``), which
      walks an over-relaxed omega back down (caps of easy systems, ``mu < censor_floor``,
      are ignored);
    * **near-optimal** (in between): the residual history of a near-optimal SOR solve is
      dominated by its long non-normal transient, not by the spectral radius, so inverting
      it would overestimate ``mu``; ``g`` is left alone.

    Without a bound (``side`` None) the same rules track ``mu`` itself (``beta = 1``).

    Parameters
    ----------
    omega0 : float
        The omega the first solve starts from.  The first solve (while ``g`` is unknown)
        is run adaptively (Hageman-Young, ``request_adaptive``): its Gauss-Seidel phase
        measures ``mu`` accurately on any system, easy or hard.
    omega_max : float
        Largest omega ever played.
    informative_power, censor_tol, shrink, censor_floor : float
        The thresholds above.
    censor_streak : int
        Censored readings lower ``g`` only from the ``censor_streak``-th in a row on: at the
        optimum a short solve can read as censored once in a while.
    window : int
        Informative ratios kept for the median.
    seed : int
        Unused (the learner is deterministic); kept for a uniform constructor.

    Examples
    --------
    >>> from lrsolve.relax.theory import sor_rate
    >>> learner = YoungLearner()
    >>> omega = learner.choose(side={"jacobi_bound": 0.99})
    >>> rate = float(sor_rate(omega, 0.98))
    >>> learner.update(100, side={"omega": omega, "residuals": list(rate ** np.arange(100))})
    >>> round(learner.choose(side={"jacobi_bound": 0.99}), 3)   # young_omega(0.98) = 1.668
    1.668
    """

    name = "young"

    def __init__(self, omega0: float = 1.0, omega_max: float = 1.99,
                 informative_power: float = 0.5, censor_tol: float = 0.03,
                 shrink: float = 1.25, censor_floor: float = 0.9, censor_streak: int = 3,
                 window: int = 9, seed=0):
        self.omega0 = float(omega0)
        self.omega_max = float(omega_max)
        self.informative_power = float(informative_power)
        self.censor_tol = float(censor_tol)
        self.shrink = float(shrink)
        self.censor_floor = float(censor_floor)
        self.censor_streak = int(censor_streak)
        self.window = int(window)
        self.g = None
        self.informative: list = []   # recent informative ratios mu / beta
        self.history: list = []       # (omega, kind, g after the update)
        self.pending_bound = 1.0
        self.last_omega = self.omega0
        self.request_adaptive = True

    def choose(self, context=None, side=None) -> float:
        bound = None if side is None else side.get("jacobi_bound")
        self.pending_bound = 1.0 if bound is None or not bound > 0 else float(bound)
        # Until g is known, ask for an adaptive solve (Hageman-Young from omega0 = 1): its
        # Gauss-Seidel phase measures mu exactly, whatever the system, at little cost.
        self.request_adaptive = self.g is None
        if self.g is None:
            omega = self.omega0
        else:
            omega = young_omega(self.g * self.pending_bound)
        omega = float(min(max(omega, 1.0), self.omega_max))
        self.last_omega = omega
        return omega

    def update(self, cost, side=None) -> None:
        self._check_cost(cost)
        side = side or {}
        omega = float(side.get("omega", self.last_omega))
        residuals = side.get("residuals")
        rate = None if residuals is None else observed_rate(residuals)
        bound = self.pending_bound
        over = max(omega - 1.0, 0.0)
        mu_first = side.get("mu_first")
        if mu_first is not None and self.g is None:
            kind = "adaptive"
            self.informative = [min(float(mu_first) / bound, 1.0)]
            self.g = self.informative[0]
        elif rate is None or not rate < 1.0:
            kind = "none"
        elif omega > 1.0 and rate <= over * (1.0 + self.censor_tol) + 1e-3:
            kind = "censored"
            mu_cap = critical_mu(omega)
            # At the optimum itself a short solve can read as censored; one such reading
            # is not evidence of over-relaxation, two in a row are (`censor_streak`).
            streak = 1 + sum(1 for _ in _takewhile_kind(self.history, "censored"))
            if mu_cap >= self.censor_floor and streak >= self.censor_streak:
                # Step below the cap by widening the gap 1 - mu by `shrink`: geometric steps
                # walk an omega stuck near 2 down in a few solves.  Easy systems (small mu)
                # are skipped: omega hardly matters for them, and their caps say little
                # about the hard systems.
                cap = (1.0 - (1.0 - mu_cap) * self.shrink) / bound
                self.g = cap if self.g is None else min(self.g, cap)
        elif rate >= over ** self.informative_power or self.g is None:
            kind = "informative" if rate >= over ** self.informative_power else "first"
            ratio = min(jacobi_radius_from_rate(rate, omega) / bound, 1.0)  # Gershgorin: mu <= beta
            self.informative = (self.informative + [ratio])[-self.window:]
            self.g = float(np.median(self.informative))
        else:
            kind = "near-optimal"
        self.history.append((omega, kind, self.g))


def _takewhile_kind(history, kind):
    for entry in reversed(history):
        if entry[1] != kind:
            return
        yield entry


class UnimodalUCB(Learner):
    """A unimodal bandit over the arms (OSUB-style, Combes & Proutiere 2014).

    The expected cost is unimodal in omega, so the best arm is found by walking: each
    round plays the empirical leader or one of its two neighbours, whichever has the
    lowest lower confidence bound on the (normalised) cost; every third round the leader
    itself.  Costs are normalised per round by a running median so that a sequence whose
    difficulty drifts does not confuse the comparison.

    Examples
    --------
    >>> learner = UnimodalUCB(seed=0)
    >>> omega = learner.choose(); learner.update(40.0)
    >>> 1.0 <= omega <= 1.95
    True
    """

    name = "unimodal"

    def __init__(self, omegas=None, start: float = 1.5, seed=0):
        self.omegas = _arms(omegas)
        self.rng = as_generator(seed)
        K = self.omegas.size
        self.counts = np.zeros(K)
        self.sums = np.zeros(K)
        self.t = 1
        self.index = int(np.argmin(np.abs(self.omegas - float(start))))
        self.recent: list = []

    def _means(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.inf)

    def choose(self, context=None, side=None) -> float:
        K = self.omegas.size
        means = self._means()
        if np.all(self.counts == 0):
            leader = self.index
        else:
            leader = int(np.argmin(means))
        nbrs = [j for j in (leader - 1, leader, leader + 1) if 0 <= j < K]
        untried = [j for j in nbrs if self.counts[j] == 0]
        if untried:
            self.index = int(untried[0] if leader not in untried else leader)
        elif self.t % 3 == 0:
            self.index = leader
        else:
            bonus = np.sqrt(2.0 * np.log(self.t + 1) / np.maximum(self.counts[nbrs], 1))
            lcb = means[nbrs] - 0.5 * bonus
            self.index = int(nbrs[int(np.argmin(lcb))])
        return float(self.omegas[self.index])

    def update(self, cost, side=None) -> None:
        cost = self._check_cost(cost)
        self.recent = (self.recent + [cost])[-15:]
        ref = float(np.median(self.recent))
        self.sums[self.index] += cost / ref if ref > 0 else 1.0
        self.counts[self.index] += 1
        self.t += 1


class HagemanYoung(Learner):
    """Hageman-Young adaptive SOR as a learner: omega adapts inside each solve.

    ``choose`` returns the omega the next adaptive solve starts from (Young's omega for the
    Jacobi estimate carried over from the previous solve when ``carry`` is true, else
    ``omega0`` - the classical per-solve procedure); :class:`~lrsolve.relax.BanditSOR`
    then runs :func:`~lrsolve.relax.adaptive_sor` and reports the final estimate in
    ``side["mu"]``.

    Examples
    --------
    >>> learner = HagemanYoung()
    >>> learner.choose()
    1.0
    """

    name = "hageman-young"
    adaptive = True

    def __init__(self, omega0: float = 1.0, carry: bool = False, seed=0):
        self.omega0 = float(omega0)
        self.carry = bool(carry)
        self.mu = None

    def choose(self, context=None, side=None) -> float:
        if self.carry and self.mu is not None:
            return young_omega(self.mu)
        return self.omega0

    def update(self, cost, side=None) -> None:
        self._check_cost(cost)
        mu = None if side is None else side.get("mu")
        if self.carry and mu is not None:
            # A decaying estimate: the next system may be easier than the last.
            self.mu = float(mu)


LEARNERS = {"young": YoungLearner, "tsallis-inf": TsallisINF, "exp3": Exp3, "chebcb": ChebCB,
            "unimodal": UnimodalUCB, "hageman-young": HagemanYoung}


def make_learner(name: str, omegas=None, seed=0, **options) -> Learner:
    """Build a learner by name (``"young"``, ``"tsallis-inf"``, ``"exp3"``, ``"chebcb"``,
    ``"unimodal"``, ``"hageman-young"``)."""
    if name not in LEARNERS:
        raise ValueError(f"learner must be one of {sorted(LEARNERS)} or a Learner object, got "
                         f"{name!r}")
    cls = LEARNERS[name]
    if cls in (TsallisINF, Exp3, ChebCB, UnimodalUCB):
        return cls(omegas=omegas, seed=seed, **options)
    return cls(seed=seed, **options)
