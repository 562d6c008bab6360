"""A small incompressible smoke simulation and the sequence of pressure systems it produces.

:class:`Simulation` is a textbook (Stam / Fedkiw-Stam-Jensen, Bridson) smoke solver on a
MAC grid in 2-D or 3-D:

* unit-size cells ``h = 1 / max(grid_shape)``; velocity components on cell faces, smoke
  density and temperature at cell centres; axis 1 (``y``) points up;
* semi-Lagrangian advection with a midpoint (RK2) back-trace and (bi/tri)linear
  interpolation, clamped to the box;
* buoyancy ``(beta T - alpha s) e_y``, a smoke source near the bottom whose temperature
  carries seeded noise (the only randomness: same ``seed`` -> same bits);
* solid obstacles (``("sphere", centre, radius)``, ``("box", lo, hi)`` in unit
  coordinates, or a boolean solid mask of the grid shape) and closed (no-through) or
  open (pressure 0) walls per side;
* a pressure projection that calls any lrsolve solver each step, warm-started from the
  previous pressure.

The projection.  With ``q = dt p / rho`` the projected velocity is ``u = u* - grad q``
and ``div u = 0`` gives ``A q = -div u*`` where ``A`` is the masked
:class:`~lrsolve.operators.GridOperator` ``-div grad`` of the fluid cells: a face between
two fluid cells has weight ``1/h^2``, a face of a solid cell or a closed wall has weight
0 (Neumann), an open wall's face is Dirichlet (``q = 0`` one cell outside).  The
velocity update uses the same face weights, so that on every fluid cell

    div u = div u* + A q = -(b - A q),

the divergence left after the projection *is* the solver's residual: a solve to
``rtol`` leaves ``||div u|| <= rtol ||div u*||``.  Faces of solids and closed walls keep
velocity 0 (no flux through them) because their weight is 0.  A box closed on every side
is pure Neumann: the operator is singular with the constants as null space
(``A.singular``); ``b`` is then projected onto the range (``A.project_null``; its
component along the constants is only rounding, since the walls carry no flux) and the
solvers return the zero-mean pressure, as ``docs/multigrid.md`` documents.

``fluid_pressure_sequence`` runs the simulation with a reference solver (``pcg-mg``,
``rtol=1e-8``) and yields each step's system before solving it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ..operators.grid import SIDES, GridOperator
from ..seeding import as_generator, check_seed

__all__ = ["Simulation", "FluidPressureProblem", "fluid_pressure_sequence", "obstacle_mask",
           "WALLS"]

#: The attributes a moving obstacle changes (restored when a step is abandoned).
_GEOMETRY = ("obstacle_offset", "solid", "fluid", "source_mask", "A", "open_faces",
             "_face_weight", "closed_velocity")

#: Wall kinds: "closed" = no flow through the wall (Neumann pressure), "open" = pressure 0
#: outside (flow may leave or enter; Dirichlet pressure).
WALLS = ("closed", "open")


# -- geometry ---------------------------------------------------------------------------------
def _check_grid(n: Any, dim: Any) -> tuple:
    if isinstance(dim, bool) or dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
        shape = (int(n),) * dim
    else:
        try:
            shape = tuple(n)
        except TypeError:
            raise TypeError(f"n must be an int or a tuple of {dim} ints, got {n!r}") from None
        if len(shape) != dim or not all(isinstance(s, (int, np.integer))
                                        and not isinstance(s, bool) for s in shape):
            raise ValueError(f"n must be an int or a tuple of {dim} ints, got {n!r}")
        shape = tuple(int(s) for s in shape)
    if min(shape) < 8:
        raise ValueError(f"n must be >= 8 cells per axis, got grid {shape}")
    return shape


def _point(value: Any, dim: int, what: str) -> np.ndarray:
    try:
        p = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {dim} numbers, got {value!r}") from None
    if p.shape != (dim,) or not np.all(np.isfinite(p)):
        raise ValueError(f"{what} must be {dim} finite numbers, got {value!r}")
    return p


def obstacle_mask(obstacles: Any, grid_shape: tuple, offset: Any = None) -> np.ndarray:
    """The boolean solid mask (True = solid) of ``obstacles`` on a grid of ``grid_shape``.

    ``obstacles``: None, a boolean array of the grid shape, or a list of
    ``("sphere", centre, radius)`` and ``("box", lo, hi)`` in unit coordinates (the box
    is ``[0, n_i h]`` per axis with ``h = 1 / max(grid_shape)``, the unit cube for a cubic
    grid), every shape shifted by ``offset`` (a moving obstacle).  A cell is solid when
    its centre lies inside a shape.

    >>> m = obstacle_mask([("sphere", (0.5, 0.5), 0.25)], (16, 16))
    >>> m.shape, int(m.sum())
    ((16, 16), 52)
    """
    shape = tuple(grid_shape)
    dim = len(shape)
    if obstacles is None:
        return np.zeros(shape, dtype=bool)
    if isinstance(obstacles, np.ndarray) or hasattr(obstacles, "__array__") and \
            not isinstance(obstacles, (list, tuple)):
        m = np.asarray(obstacles)
        if m.dtype != bool:
            raise TypeError(f"obstacles given as an array must be boolean (True = solid), got "
                            f"dtype {m.dtype}")
        if m.shape != shape:
            raise ValueError(f"obstacles mask must have the grid shape {shape}, got {m.shape}")
        return m.copy()
    if not isinstance(obstacles, (list, tuple)):
        raise TypeError(f"obstacles must be None, a boolean mask or a list of ('sphere', "
                        f"centre, radius) / ('box', lo, hi), got {type(obstacles).__name__}")
    h = 1.0 / max(shape)
    shift = np.zeros(dim) if offset is None else np.asarray(offset, dtype=np.float64)
    centres = np.meshgrid(*[(np.arange(s) + 0.5) * h - o for s, o in zip(shape, shift)],
                          indexing="ij")
    mask = np.zeros(shape, dtype=bool)
    for k, item in enumerate(obstacles):
        if not isinstance(item, (list, tuple)) or len(item) != 3 or not isinstance(item[0], str):
            raise ValueError(f"obstacles[{k}] must be ('sphere', centre, radius) or ('box', lo, "
                             f"hi), got {item!r}")
        kind = item[0]
        if kind == "sphere":
            c = _point(item[1], dim, f"obstacles[{k}] centre")
            r = float(item[2])
            if not (math.isfinite(r) and r > 0):
                raise ValueError(f"obstacles[{k}] radius must be a positive number, got "
                                 f"{item[2]!r}")
            mask |= sum((x - ci) ** 2 for x, ci in zip(centres, c)) <= r * r
        elif kind == "box":
            lo = _point(item[1], dim, f"obstacles[{k}] lo")
            hi = _point(item[2], dim, f"obstacles[{k}] hi")
            if np.any(hi <= lo):
                raise ValueError(f"obstacles[{k}] box needs lo < hi on every axis, got lo={lo}, "
                                 f"hi={hi}")
            inside = np.ones(shape, dtype=bool)
            for x, a, b in zip(centres, lo, hi):
                inside &= (x >= a) & (x <= b)
            mask |= inside
        else:
            raise ValueError(f"obstacles[{k}] kind must be 'sphere' or 'box', got {kind!r}")
    return mask


def _parse_walls(walls: Any, dim: int) -> dict:
    sides = SIDES[:2 * dim]
    if isinstance(walls, str):
        walls = {s: walls for s in sides}
    if not isinstance(walls, dict):
        raise TypeError(f"walls must be 'closed', 'open' or a dict of sides, got {walls!r}")
    unknown = sorted(set(walls) - set(sides))
    if unknown:
        raise ValueError(f"walls has unknown sides {unknown}; a {dim}-D box has {list(sides)}")
    out = {}
    for s in sides:
        kind = walls.get(s, "closed")
        if kind not in WALLS:
            raise ValueError(f"walls[{s!r}] must be 'closed' or 'open', got {kind!r}")
        out[s] = kind
    return out


def _check_connected(solid: np.ndarray) -> None:
    from scipy import ndimage
    fluid = ~solid
    if not fluid.any():
        raise ValueError("obstacles fill the whole box: no fluid cells left")
    labels, count = ndimage.label(fluid, structure=ndimage.generate_binary_structure(
        solid.ndim, 1))
    if count > 1:
        sizes = np.sort(np.bincount(labels.reshape(-1))[1:])[::-1]
        raise ValueError(f"obstacles disconnect the fluid region into {count} parts (cells per "
                         f"part: {sizes[:6].tolist()}{' ...' if count > 6 else ''}); a sealed "
                         "pocket has its own pressure null space and no flow can reach it - "
                         "remove or shrink the obstacle that closes it")


# -- interpolation on staggered grids ------------------------------------------------------
def _interpolate(g: np.ndarray, X: np.ndarray, offset: tuple) -> np.ndarray:
    """Multilinear interpolation of the grid array ``g`` at points ``X`` (shape (M, d), in
    cell units) when sample ``i`` of axis ``a`` sits at ``i + offset[a]``; clamped."""
    dim = g.ndim
    base = []
    frac = []
    for a in range(dim):
        n = g.shape[a]
        s = np.clip(X[:, a] - offset[a], 0.0, n - 1)
        i0 = np.minimum(np.floor(s).astype(np.int64), max(n - 2, 0))
        base.append(i0)
        frac.append(s - i0)
    strides = [int(np.prod(g.shape[a + 1:])) for a in range(dim)]
    flat = g.reshape(-1)
    out = np.zeros(X.shape[0])
    for corner in range(1 << dim):
        idx = np.zeros(X.shape[0], dtype=np.int64)
        w = np.ones(X.shape[0])
        for a in range(dim):
            bit = (corner >> a) & 1
            idx += (base[a] + bit) * strides[a]
            w *= frac[a] if bit else 1.0 - frac[a]
        out += w * flat[idx]
    return out


def _face_offset(axis: int, dim: int) -> tuple:
    return tuple(0.0 if a == axis else 0.5 for a in range(dim))


def _sample_points(shape: tuple, offset: tuple) -> np.ndarray:
    axes = [np.arange(s) + o for s, o in zip(shape, offset)]
    return np.stack([x.reshape(-1) for x in np.meshgrid(*axes, indexing="ij")], axis=1)


# -- the problem record ----------------------------------------------------------------------
@dataclass
class FluidPressureProblem:
    """One pressure system of the smoke simulation: ``A x = b``.

    ``A`` is the masked :class:`~lrsolve.operators.GridOperator` (grid metadata:
    ``grid_shape``, ``mask``, ``bc``, ``spacing``, ``singular``), ``b = -div u*`` (0 on
    solid cells, orthogonal to the null space when ``A`` is singular), ``x0`` the warm
    start from the previous step's pressure, ``meta`` the step's data (``step``, ``t``,
    ``dt``, ``h``, ``grid_shape``, ``walls``, ``solid_fraction``, ``singular``, ...).
    """

    A: Any
    b: np.ndarray
    x0: Any = None
    meta: dict = field(default_factory=dict)


# -- the simulation ---------------------------------------------------------------------------
class Simulation:
    """Smoke in a box with obstacles on a MAC grid (see the module docstring).

    Parameters
    ----------
    n : int or tuple of int
        Cells per axis (>= 8).
    dim : {2, 3}
    obstacles : None, list or bool array
        ``("sphere", centre, radius)`` / ``("box", lo, hi)`` in unit coordinates, or a solid
        mask of the grid shape.  The fluid cells must form one connected region
        (``ValueError`` otherwise).
    walls : "closed", "open" or dict
        Per side ``"x-"``, ``"x+"``, ``"y-"``, ... (missing sides are closed).
    seed : int or numpy.random.Generator
        Seeds the source noise; the whole run is deterministic by seed.
    rtol : float
        Tolerance passed to solvers given by name or as a tuner (``Solver`` objects keep
        their own).
    buoyancy : float
        ``beta``: upward acceleration per unit temperature.
    weight : float
        ``alpha``: downward acceleration per unit smoke density.
    cooling : float
        Temperature decays as ``exp(-cooling t)``.
    cfl : float
        Time step ``dt = min(dt_max, cfl h / max|u|)``.
    dt_max : float, optional
        Default ``2 h``.
    source : tuple, optional
        ``(centre, radius)`` of the smoke source in unit coordinates (default a ball of
        radius 0.08 at the bottom centre, ``y = 0.1``).
    inflow : float
        Upward velocity imposed on the source cells' faces each step.
    obstacle_velocity : tuple of float, optional
        Moves the obstacles (given as shapes) rigidly at this velocity: the mask is
        re-rasterised every step, the faces of solid cells carry the obstacle's velocity,
        and ``A`` is a new operator whenever the mask changes (a ``Solver`` passed to
        :meth:`step` is then ``update``-d).

    Attributes
    ----------
    A : GridOperator
        The pressure operator (static obstacles: the same object every step).
    velocity : list of ndarray
        Face velocities, component ``a`` of shape ``grid_shape`` + 1 along axis ``a``.
    density, temperature, pressure : ndarray
        Cell fields (``pressure`` is ``p`` of the last projection, 0 on solids).
    history : list of dict
        Per step: ``iterations``, ``status``, ``converged``, ``solve_time``, ``dt``, ``t``,
        ``divergence_before``, ``divergence_after`` (2-norms over fluid cells) ...

    Examples
    --------
    >>> import lrsolve as lr
    >>> sim = lr.problems.fluids.Simulation(16, 2, obstacles=[("sphere", (0.5, 0.5), 0.15)])
    >>> S = lr.Solver(sim.A, method="pcg-mg", rtol=1e-8)
    >>> info = sim.step(S)
    >>> info["converged"], info["divergence_after"] <= 1e-8 * info["divergence_before"] * 1.01
    (True, True)
    """

    def __init__(self, n: Any = 64, dim: int = 2, *, obstacles: Any = None,
                 walls: Any = "closed", seed: Any = 0, rtol: float = 1e-6,
                 buoyancy: float = 1.0, weight: float = 0.05, cooling: float = 0.1,
                 cfl: float = 1.5, dt_max: float | None = None, source: Any = None,
                 inflow: float = 0.25, obstacle_velocity: Any = None):
        self.grid_shape = _check_grid(n, dim)
        self.dim = int(dim)
        shape = self.grid_shape
        self.h = 1.0 / max(shape)
        check_seed(seed)
        self.rng = as_generator(seed)
        for name, value, lo in (("buoyancy", buoyancy, None), ("weight", weight, None),
                                ("cooling", cooling, 0.0), ("cfl", cfl, 0.0),
                                ("inflow", inflow, 0.0)):
            if isinstance(value, bool) or not np.isscalar(value) or \
                    not math.isfinite(float(value)) or (lo is not None and float(value) < lo):
                raise ValueError(f"{name} must be a finite number"
                                 f"{'' if lo is None else f' >= {lo}'}, got {value!r}")
        if not cfl > 0:
            raise ValueError(f"cfl must be > 0, got {cfl!r}")
        if not (isinstance(rtol, (float, int)) and 0 < rtol < 1):
            raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
        self.rtol = float(rtol)
        self.buoyancy, self.weight, self.cooling = float(buoyancy), float(weight), float(cooling)
        self.cfl, self.inflow = float(cfl), float(inflow)
        self.dt_max = 2.0 * self.h if dt_max is None else float(dt_max)
        if not (math.isfinite(self.dt_max) and self.dt_max > 0):
            raise ValueError(f"dt_max must be a positive number, got {dt_max!r}")
        self.walls = _parse_walls(walls, self.dim)
        self.solid = obstacle_mask(obstacles, shape)
        _check_connected(self.solid)
        self._shapes = obstacles
        self.obstacle_velocity = None
        if obstacle_velocity is not None:
            self.obstacle_velocity = _point(obstacle_velocity, self.dim, "obstacle_velocity")
            if not isinstance(obstacles, (list, tuple)) or not obstacles:
                raise ValueError("obstacle_velocity needs obstacles given as shapes (a list of "
                                 "('sphere', ...) / ('box', ...)), not a mask")
            self._check_walls(self.solid)
        self.obstacle_offset = np.zeros(self.dim)
        self.fluid = ~self.solid
        # the source: a ball at the bottom centre by default
        if source is None:
            extent = np.array(shape) * self.h
            centre = extent / 2
            centre[1] = 0.1
            source = (centre, 0.08)
        centre = _point(source[0], self.dim, "source centre")
        radius = float(source[1])
        cells = np.meshgrid(*[(np.arange(s) + 0.5) * self.h for s in shape], indexing="ij")
        self.source_mask = (sum((x - c) ** 2 for x, c in zip(cells, centre))
                            <= max(radius, 0.75 * self.h) ** 2) & self.fluid
        self._source_ball = self.source_mask.copy()
        if not self.source_mask.any():
            raise ValueError(f"the smoke source (centre {centre.tolist()}, radius {radius}) has "
                             "no fluid cell: move it out of the obstacles")
        self._bc = {s: ("neumann" if k == "closed" else "dirichlet")
                    for s, k in self.walls.items()}
        self._build_operator()
        self.velocity = [np.zeros(tuple(s + (1 if a == ax else 0) for a, s in enumerate(shape)))
                         for ax in range(self.dim)]
        self.density = np.zeros(shape)
        self.temperature = np.zeros(shape)
        self.pressure = np.zeros(shape)
        self.t = 0.0
        self.steps = 0
        self.history: list[dict] = []
        self._solver_cache: dict = {}
        self._points = {"cell": _sample_points(shape, (0.5,) * self.dim)}
        for ax in range(self.dim):
            fshape = self.velocity[ax].shape
            self._points[ax] = _sample_points(fshape, _face_offset(ax, self.dim))
        self._pending = None

    def _build_operator(self) -> None:
        self.A = GridOperator(self.grid_shape, spacing=self.h, bc=self._bc,
                              mask=self.solid if self.solid.any() else None)
        # open faces (weight > 0) are the ones the pressure gradient acts on; every other
        # face (solid faces, closed walls) keeps its prescribed velocity: 0 on walls and
        # static solids, the obstacle's velocity on the faces of a moving solid.
        self.open_faces = [np.asarray(np.broadcast_to(f, f.shape) > 0) for f in self.A.faces]
        self._face_weight = [np.asarray(f, dtype=np.float64) for f in self.A.faces]
        self.closed_velocity = []
        for a in range(self.dim):
            prescribed = np.zeros(self.open_faces[a].shape)
            if self.obstacle_velocity is not None and self.obstacle_velocity[a] != 0:
                edge = tuple(slice(0, 1) if ax == a else slice(None) for ax in range(self.dim))
                pad = np.zeros_like(self.solid[edge])
                touches = np.concatenate([self.solid, pad], axis=a) | \
                    np.concatenate([pad, self.solid], axis=a)
                # faces of the solid move with it, open walls included (it may leave
                # through them); a closed wall's faces stay at 0
                n = self.grid_shape[a]
                for side, face in ((SIDES[2 * a], 0), (SIDES[2 * a + 1], n)):
                    if self.walls[side] == "closed":
                        touches[tuple(slice(face, face + 1) if ax == a else slice(None)
                                      for ax in range(self.dim))] = False
                prescribed[touches & ~self.open_faces[a]] = self.obstacle_velocity[a]
            self.closed_velocity.append(prescribed)

    def _check_walls(self, solid: np.ndarray) -> None:
        """A solid moving across a closed wall cannot touch it: no flow makes room."""
        for a in range(self.dim):
            if self.obstacle_velocity[a] == 0:
                continue
            for side, cell in ((SIDES[2 * a], 0), (SIDES[2 * a + 1], self.grid_shape[a] - 1)):
                layer = solid[tuple(cell if ax == a else slice(None) for ax in range(self.dim))]
                if self.walls[side] == "closed" and layer.any():
                    raise ValueError(
                        f"step {getattr(self, 'steps', 0)}: a moving obstacle reached the "
                        f"closed wall {side!r} while moving across it (velocity "
                        f"{self.obstacle_velocity[a]:g} along axis {a}); no flow can make room "
                        "for it - open that wall or stop earlier")

    def _move_obstacles(self, dt: float) -> bool:
        """Shift the obstacles by ``v dt``; rebuild ``A`` if the mask changed.  Nothing is
        changed when the new position is rejected."""
        offset = self.obstacle_offset + self.obstacle_velocity * dt
        solid = obstacle_mask(self._shapes, self.grid_shape, offset)
        if np.array_equal(solid, self.solid):
            self.obstacle_offset = offset
            return False
        _check_connected(solid)
        self._check_walls(solid)
        if not (self._source_ball & ~solid).any():
            raise ValueError(f"step {self.steps}: the moving obstacles cover the whole smoke "
                             "source")
        self.obstacle_offset = offset
        self.solid, self.fluid = solid, ~solid
        self.source_mask = self._source_ball & self.fluid
        self._build_operator()
        return True

    # -- diagnostics ---------------------------------------------------------------------
    def divergence(self, velocity: list | None = None) -> np.ndarray:
        """``div u`` per cell (0 on solid cells) of ``velocity`` (default the current one)."""
        u = self.velocity if velocity is None else velocity
        div = sum(np.diff(u[a], axis=a) for a in range(self.dim)) / self.h
        div[self.solid] = 0.0
        return div

    def closed_face_flux(self, velocity: list | None = None) -> float:
        """Largest ``|u . n - v_wall . n|`` on a face of a solid cell or of a closed wall
        (``v_wall`` = 0 for walls and static solids): 0 exactly when no fluid passes
        through them."""
        u = self.velocity if velocity is None else velocity
        return max(float(np.max(np.abs(np.where(self.open_faces[a], 0.0,
                                                u[a] - self.closed_velocity[a]))))
                   for a in range(self.dim))

    @property
    def max_speed(self) -> float:
        return max(float(np.max(np.abs(u))) for u in self.velocity)

    # -- one step ---------------------------------------------------------------------------
    def _velocity_at(self, X: np.ndarray) -> np.ndarray:
        return np.stack([_interpolate(self.velocity[a], X, _face_offset(a, self.dim))
                         for a in range(self.dim)], axis=1)

    def _backtrace(self, X: np.ndarray, dt: float) -> np.ndarray:
        """Midpoint back-trace of the points ``X`` (cell units) over ``dt``, clamped."""
        upper = np.array(self.grid_shape, dtype=np.float64)
        scale = dt / self.h
        mid = np.clip(X - 0.5 * scale * self._velocity_at(X), 0.0, upper)
        return np.clip(X - scale * self._velocity_at(mid), 0.0, upper)

    def prepare(self) -> FluidPressureProblem:
        """Advect, add forces and the source, and return the pressure system of this step
        (not yet solved): ``P.A``, ``P.b = -div u*``, ``P.x0`` (warm start), ``P.meta``."""
        self._check_finite(self.velocity, "at the start of the step")
        speed = self.max_speed
        dt = self.dt_max if speed == 0 else min(self.dt_max, self.cfl * self.h / speed)
        shape = self.grid_shape
        # advection of everything by the old velocity
        new_u = []
        for a in range(self.dim):
            X = self._backtrace(self._points[a], dt)
            new_u.append(_interpolate(self.velocity[a], X, _face_offset(a, self.dim))
                         .reshape(self.velocity[a].shape))
        Xc = self._backtrace(self._points["cell"], dt)
        cell_offset = (0.5,) * self.dim
        density = _interpolate(self.density, Xc, cell_offset).reshape(shape)
        temperature = _interpolate(self.temperature, Xc, cell_offset).reshape(shape)
        temperature *= math.exp(-self.cooling * dt)
        # source: smoke and heat with seeded noise
        noise = self.rng.uniform(0.8, 1.2, size=int(self.source_mask.sum()))
        density[self.source_mask] = 1.0
        temperature[self.source_mask] = noise
        density[self.solid] = 0.0
        temperature[self.solid] = 0.0
        # buoyancy on the vertical faces between two cells (axis 1 points up)
        with np.errstate(over="ignore", invalid="ignore"):   # checked just below
            force = self.buoyancy * temperature - self.weight * density
        vy = new_u[1]
        lo = [slice(None)] * self.dim
        hi = [slice(None)] * self.dim
        inner = [slice(None)] * self.dim
        lo[1], hi[1], inner[1] = slice(0, -1), slice(1, None), slice(1, -1)
        with np.errstate(over="ignore", invalid="ignore"):
            vy[tuple(inner)] += dt * 0.5 * (force[tuple(lo)] + force[tuple(hi)])
        if self.inflow > 0:
            # faces touching the source blow upward at least at `inflow`
            pad_lo = np.concatenate([self.source_mask, np.zeros_like(
                self.source_mask[tuple(slice(0, 1) if a == 1 else slice(None)
                                       for a in range(self.dim))])], axis=1)
            pad_hi = np.concatenate([np.zeros_like(pad_lo[tuple(
                slice(0, 1) if a == 1 else slice(None) for a in range(self.dim))]),
                self.source_mask], axis=1)
            src = pad_lo | pad_hi
            np.maximum(vy, np.where(src, self.inflow, -np.inf), out=vy)
        saved = {k: getattr(self, k) for k in _GEOMETRY}
        try:
            moved = self.obstacle_velocity is not None and self._move_obstacles(dt)
            if moved:
                density[self.solid] = 0.0
                temperature[self.solid] = 0.0
            for a in range(self.dim):
                closed = ~self.open_faces[a]
                new_u[a][closed] = self.closed_velocity[a][closed]
            self._check_finite(new_u, "after advection and forces")
        except Exception:
            self._restore(saved)
            raise
        div = self.divergence(new_u)
        b = -div.reshape(-1)
        if self.A.singular:
            b = self.A.project_null(b)
        x0 = np.where(self.solid, 0.0, self.pressure * dt).reshape(-1)
        meta = {"step": self.steps, "t": self.t, "dt": dt, "h": self.h,
                "grid_shape": self.grid_shape, "dim": self.dim, "walls": dict(self.walls),
                "solid_fraction": float(self.solid.mean()), "singular": bool(self.A.singular),
                "max_speed": speed, "divergence_before": float(np.linalg.norm(b)),
                "operator_changed": bool(moved)}
        self._pending = (new_u, density, temperature, dt, meta, saved)
        return FluidPressureProblem(A=self.A, b=b, x0=x0, meta=meta)

    def project(self, x: Any, result: Any = None) -> dict:
        """Finish the step prepared by :meth:`prepare` with the pressure solution ``x``
        (``q = dt p``): subtract ``grad q`` on the open faces, commit the new state.
        Returns the step's record (also appended to ``history``)."""
        if self._pending is None:
            raise RuntimeError("project() needs a step prepared by prepare()")
        new_u, density, temperature, dt, meta, saved = self._pending
        q = np.asarray(x, dtype=np.float64).reshape(self.grid_shape)
        if not np.all(np.isfinite(q)):
            self._restore(saved)
            raise FloatingPointError(
                f"step {self.steps}: the pressure solve returned a non-finite solution "
                f"({int((~np.isfinite(q)).sum())} cells); the step is not taken")
        for a in range(self.dim):
            pad = [(0, 0)] * self.dim
            pad[a] = (1, 1)
            grad = np.diff(np.pad(q, pad), axis=a)
            new_u[a] = new_u[a] - self.h * self._face_weight[a] * grad
        try:
            self._check_finite(new_u, "after the projection")
        except FloatingPointError:
            self._restore(saved)
            raise
        div_after = float(np.linalg.norm(self.divergence(new_u)))
        self.velocity = new_u
        self.density, self.temperature = density, temperature
        self.pressure = q / dt
        self.pressure[self.solid] = 0.0
        self.t += dt
        self.steps += 1
        self._pending = None
        record = dict(meta)
        record["divergence_after"] = div_after
        if result is not None:
            status = getattr(result, "status", None)
            record["status"] = getattr(status, "name", str(status))
            record["converged"] = bool(getattr(result, "converged", False))
            record["iterations"] = int(getattr(result, "iterations", -1))
            stats = getattr(result, "stats", None) or {}
            if "omega" in stats:
                record["omega"] = float(stats["omega"])
        self.history.append(record)
        return record

    def _restore(self, saved: dict) -> None:
        """Abandon the prepared step: the obstacles (and A) go back to where they were."""
        for key, value in saved.items():
            setattr(self, key, value)
        self._pending = None

    def _check_finite(self, velocity: list, when: str) -> None:
        for a, u in enumerate(velocity):
            if not np.all(np.isfinite(u)):
                self._pending = None
                raise FloatingPointError(
                    f"step {self.steps}: velocity component {a} is non-finite {when} "
                    f"({int((~np.isfinite(u)).sum())} faces); the simulation stops and keeps "
                    "the last finite state (lower cfl / dt_max, or check the forces)")

    def step(self, solver: Any) -> dict:
        """Advance one time step, projecting with ``solver``; returns the step's record.

        ``solver`` is any of

        * an :class:`lrsolve.Solver` (built once, e.g. ``lr.Solver(sim.A, "pcg-mg")``; if it
          was built for another operator of this shape it is ``update``-d to ``sim.A``);
        * a method name (``"cg"``, ``"pcg-mg"``, ...): a ``Solver`` built on first use with
          ``rtol`` and kept;
        * an object with ``solve(A, b, *, x0, rtol)`` (e.g. :class:`lrsolve.relax.BanditSOR`);
        * a callable ``solver(A, b, x0)`` returning a SolveResult (or the solution array).

        The solve is warm-started from the previous pressure.  A solve that does not
        converge is recorded (``converged=False``), not raised; a non-finite velocity or
        solution raises ``FloatingPointError`` and leaves the state as it was.
        """
        P = self.prepare()
        t0 = time.perf_counter()
        try:
            result = self._solve(solver, P)
        except BaseException:
            self._restore(self._pending[-1])
            raise
        solve_time = time.perf_counter() - t0
        x = getattr(result, "x", result)
        record = self.project(x, result if hasattr(result, "x") else None)
        record["solve_time"] = solve_time
        return record

    def _solve(self, solver: Any, P: FluidPressureProblem) -> Any:
        from ..solvers import Solver
        if isinstance(solver, str):
            if solver not in self._solver_cache:
                self._solver_cache[solver] = Solver(self.A, solver, rtol=self.rtol)
            solver = self._solver_cache[solver]
        if isinstance(solver, Solver):
            if solver.source is not self.A:
                solver.update(self.A)
            return solver.solve(P.b, x0=P.x0)
        if hasattr(solver, "solve"):
            return solver.solve(P.A, P.b, x0=P.x0, rtol=self.rtol)
        if callable(solver):
            return solver(P.A, P.b, P.x0)
        raise TypeError(f"solver must be a lrsolve.Solver, a method name, an object with "
                        f"solve(A, b, x0=, rtol=) or a callable, got {type(solver).__name__}")

    def run(self, solver: Any, steps: int, *, callback: Callable | None = None) -> list:
        """``steps`` calls of :meth:`step`; ``callback(sim, record)`` after each."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        out = []
        for _ in range(int(steps)):
            rec = self.step(solver)
            out.append(rec)
            if callback is not None:
                callback(self, rec)
        return out


def fluid_pressure_sequence(n: Any = 64, dim: int = 2, steps: int = 100, obstacles: Any = None,
                            seed: Any = 0, *, walls: Any = "closed", solver: Any = "pcg-mg",
                            rtol: float = 1e-8, **options) -> Iterator[FluidPressureProblem]:
    """The pressure systems of a smoke simulation, step after step.

    Runs :class:`Simulation` (``options`` go to it) and yields each step's
    :class:`FluidPressureProblem` *before* it is solved; the step is then finished with
    ``solver`` (default ``pcg-mg`` to ``rtol=1e-8``, so the sequence does not depend on the
    solver under test).  ``P.x0`` is the warm start from the previous pressure, and
    ``P.meta["solution"]`` is filled in with the reference solution after the consumer
    resumes the generator.

    Examples
    --------
    >>> import lrsolve as lr
    >>> seq = lr.problems.fluid_pressure_sequence(n=16, dim=2, steps=3,
    ...                                           obstacles=[("sphere", (0.5, 0.5), 0.2)])
    >>> [lr.solve(P.A, P.b, method="pcg-mg", x0=P.x0).converged for P in seq]
    [True, True, True]
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    sim = Simulation(n, dim, obstacles=obstacles, walls=walls, seed=seed, rtol=rtol, **options)
    return _sequence(sim, int(steps), solver)


def _sequence(sim: Simulation, steps: int, solver: Any) -> Iterator[FluidPressureProblem]:
    for _ in range(steps):
        P = sim.prepare()
        yield P
        result = sim._solve(solver, P)
        x = getattr(result, "x", result)
        P.meta["solution"] = np.asarray(x).copy()
        sim.project(x, result if hasattr(result, "x") else None)
