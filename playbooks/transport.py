"""The plume: the 1-D advection–dispersion equation solved numerically along the channel (pure).

    ∂(A·C)/∂t + ∂(Q·C)/∂x = ∂/∂x (A·D·∂C/∂x) − k·A·C,   A = Q/u

Why numerical: a Gaussian in time (the "frozen cloud" of time-of-travel tools) ignores the skew of
a real plume near the source — its peak came late and its trailing edge early, the unsafe
direction — and it cannot dilute at a junction. The scheme (finite volumes, operator splitting):

- Cells of equal *travel time* ``dt``: a cell is u·dt long, so advection is exact — each step a
  cell's load moves one cell down, whatever the velocity of the reach (no numerical diffusion,
  no Courant limit). Where the flow grows (junction, ungauged inflow) the load arrives in more
  water and is diluted; where it falls (withdrawal) load leaves with the water.
- Dispersion: Crank–Nicolson on the cell concentrations, conductance A·D/Δx between cell
  centres (the series sum of 1/(A·D) over that span, so reach boundaries are exact).
- Decay: e^(−k·dt) per step.

The tridiagonal system is the same every step (steady flow): factorised once (LAPACK gttrf) and
back-substituted per step. Initial condition (what an alert means): at the alert the plume is
centred on the station, a Gaussian in travel time whose 10 %-edges take ``pulse_s`` to pass.

>>> round(ade_concentration(1000.0, 100.0, 10.0, 1.0, 3600.0, 3600.0), 5)
0.01487
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from playbooks.hydraulics import Piece, spread_s

try:  # the compiled march (native/plume, built by pip install); the numpy one is the definition
    from playbooks import _plume as _compiled
except ImportError:  # pragma: no cover - a source tree without the build
    _compiled = None  # type: ignore[assignment]
_kernel = _compiled

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    Array = NDArray[np.float64]

#: Leading and trailing edges are where C crosses this fraction of the peak.
EDGE_FRACTION: Final = 0.1
#: The fast/slow band: every reach velocity × (1 ± this).
BAND_FRACTION: Final = 0.3
_EDGE_WIDTH: Final = math.sqrt(-2.0 * math.log(EDGE_FRACTION))


def ade_concentration(
    mass_g: float,
    area_m2: float,
    dispersion_m2s: float,
    velocity_ms: float,
    x_m: float,
    t_s: float,
    decay_per_s: float = 0.0,
) -> float:
    """Analytic C(x, t) in mg/L (g/m³) of an instantaneous release at x = 0, t = 0 (uniform reach)."""
    if t_s <= 0:
        return 0.0
    spread = 4.0 * dispersion_m2s * t_s
    return (
        mass_g
        / (area_m2 * math.sqrt(math.pi * spread))
        * math.exp(-((x_m - velocity_ms * t_s) ** 2) / spread - decay_per_s * t_s)
    )


def pulse_sigma(pulse_s: float) -> float:
    """σ (s) of a Gaussian whose 10 %-edges pass a point ``pulse_s`` apart."""
    return pulse_s / (2.0 * _EDGE_WIDTH)


class Channel:
    """Travel time ↔ river-km along :class:`Piece` s, and the piecewise-constant properties in τ.

    τ = 0 at the top of the first piece; everything is exact for piecewise-uniform pieces.
    """

    def __init__(self, pieces: Sequence[Piece]) -> None:
        self.pieces = tuple(pieces)
        kms = [self.pieces[0].from_km, *(p.to_km for p in self.pieces)]
        taus = np.concatenate(([0.0], np.cumsum([p.travel_s for p in self.pieces])))
        self.km_knots = np.asarray(kms, dtype=float)
        self.tau_knots = taus
        discharge = np.array([p.discharge_m3s for p in self.pieces])
        # resistance per second of travel: u² / (Q·D), integrated for the conductance A·D/Δx
        resistance = np.array([p.velocity_ms**2 / (p.discharge_m3s * p.dispersion_m2s) for p in self.pieces])
        self._cum_q = np.concatenate(([0.0], np.cumsum(discharge * np.diff(taus))))
        self._cum_r = np.concatenate(([0.0], np.cumsum(resistance * np.diff(taus))))

    @property
    def end_tau(self) -> float:
        return float(self.tau_knots[-1])

    def tau(self, river_km: ArrayLike) -> Array:
        return _interp(river_km, self.km_knots, self.tau_knots)

    def km(self, tau: ArrayLike) -> Array:
        return _interp(tau, self.tau_knots, self.km_knots)

    def volume_between(self, tau_a: ArrayLike, tau_b: ArrayLike) -> Array:
        """∫ Q dτ (m³): the water between two travel times."""
        return _interp(tau_b, self.tau_knots, self._cum_q) - _interp(tau_a, self.tau_knots, self._cum_q)

    def resistance_between(self, tau_a: ArrayLike, tau_b: ArrayLike) -> Array:
        """∫ dx / (A·D) between two travel times (s/m³)."""
        return _interp(tau_b, self.tau_knots, self._cum_r) - _interp(tau_a, self.tau_knots, self._cum_r)


def _interp(x: ArrayLike, knots: Array, values: Array) -> Array:
    return np.asarray(np.interp(np.asarray(x, dtype=np.float64), knots, values), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Arrival:
    """Times (s after the alert) of the leading edge, peak and trailing edge at one point, and
    the peak concentration (mg/L, per unit of the initial load when run with a unit load).
    ``None``: not within the simulated time."""

    leading_s: float | None
    peak_s: float | None
    trailing_s: float | None
    peak_concentration: float


class Grid:
    """The cells between travel times ``tau_start`` and ``tau_end`` and their coefficients."""

    def __init__(self, channel: Channel, tau_start: float, tau_end: float, dt: float, decay_per_s: float) -> None:
        self.channel = channel
        self.dt = dt
        count = max(3, math.ceil((tau_end - tau_start) / dt))
        edges = tau_start + dt * np.arange(count + 1)
        self.tau_start = tau_start
        self.centres = edges[:-1] + dt / 2.0
        self.volume = np.maximum(channel.volume_between(edges[:-1], edges[1:]), 1e-9)
        mean_q = self.volume / dt
        self.carry = np.minimum(1.0, mean_q[1:] / mean_q[:-1])
        #: Crank–Nicolson: (V/dt − S/2)·c' = (V/dt + S/2)·c, S the Laplacian of these conductances
        self.half = 0.5 / channel.resistance_between(self.centres[:-1], self.centres[1:])
        self._diag = self.volume / dt
        self._diag[:-1] += self.half
        self._diag[1:] += self.half
        self._inverse_volume = 1.0 / self.volume
        self._decayed_volume = self.volume * math.exp(-decay_per_s * dt)
        from scipy.linalg import lapack  # loaded with the first plume, not with the command line

        self._gtsv = lapack.dgtsv

    def __len__(self) -> int:
        return len(self.volume)

    def window(self, first: int, last: int) -> tuple[int, int]:
        """The window to march a load (or weight) held in cells ``first``..``last``: with a margin,
        so the implicit solve's tails are not cut on the first steps (before any trim)."""
        return (max(0, first - _MARGIN), min(len(self.volume), last + 1 + _MARGIN))

    def index_of(self, tau: float) -> float:
        """Fractional cell index of a travel time (cell centres at integers)."""
        return (tau - self.tau_start) / self.dt - 0.5

    def gaussian(self, tau_centre: float, sigma_s: float, concentration: float) -> Array:
        """Cell loads (g) of a Gaussian in travel time with this peak concentration (mg/L = g/m³)."""
        shape = np.exp(-0.5 * ((self.centres - tau_centre) / sigma_s) ** 2)
        return np.asarray(self.volume * concentration * shape)

    def step(self, mass: Array, lo: int, hi: int, trim: bool) -> tuple[int, int]:
        """One step of the load in cells ``lo:hi`` (zero elsewhere), in place: exact advection with
        dilution, Crank–Nicolson dispersion, decay. Returns the window holding load afterwards.

        Only the window is solved (a plume covers a few hundred cells of a long river), with zero
        flux across its ends; it grows by a few cells a step, and ``trim`` shrinks it to where the
        load exceeds 1e-9 of the peak plus a margin, so the load reaching its ends stays negligible.
        """
        n = len(self.volume)
        new_hi = min(n, hi + 1)
        mass[lo + 1 : new_hi] = mass[lo : new_hi - 1] * self.carry[lo : new_hi - 1]
        mass[lo] = 0.0
        a, b = max(0, lo + 1 - _GROW), min(n, new_hi + _GROW)
        c = mass[a:b] * self._inverse_volume[a:b]
        half = self.half[a : b - 1]
        flux = half * np.diff(c)
        rhs = mass[a:b] / self.dt
        rhs[:-1] += flux
        rhs[1:] -= flux
        diag = self._diag[a:b].copy()
        if a > 0:
            diag[0] -= self.half[a - 1]
        if b < n:
            diag[-1] -= self.half[b - 1]
        _, _, _, solved, info = self._gtsv(-half, diag, -half, rhs, overwrite_d=True, overwrite_b=True)
        if info != 0:
            raise ArithmeticError(f"dispersion solve failed (LAPACK dgtsv info={info})")
        mass[a:b] = solved * self._decayed_volume[a:b]
        if not trim:
            return (a, b)
        alive = np.flatnonzero(np.abs(solved) > _NEGLIGIBLE * float(np.max(np.abs(solved))))
        if len(alive) == 0:
            return (a, a)
        return (max(0, a + int(alive[0]) - _MARGIN), min(n, a + int(alive[-1]) + 1 + _MARGIN))

    def adjoint_step(self, weight: Array, lo: int, hi: int, trim: bool) -> tuple[int, int]:
        """One step of the transpose of :meth:`step`, in place on ``weight`` (cells × probes; zero
        outside rows ``lo:hi``).

        Started from probes (a column each: what a unit load in each cell adds to the probe's
        concentration), n adjoint steps give for every cell what a unit load released there adds
        to each probe n steps later: one backward run answers for every release point at once.
        """
        n = len(self.volume)
        a, b = max(0, lo - _GROW - 1), min(n, hi + _GROW)
        volume = self.volume[a:b, None]
        half = self.half[a : b - 1]
        diag = self._diag[a:b].copy()
        if a > 0:
            diag[0] -= self.half[a - 1]
        if b < n:
            diag[-1] -= self.half[b - 1]
        # transpose of  load → CN(load / V) · V · decay:  V⁻¹ · B · A⁻¹ · V · decay (A, B symmetric)
        _, _, _, solved, info = self._gtsv(-half, diag, -half, weight[a:b] * volume, overwrite_d=True,
                                           overwrite_b=True)
        if info != 0:
            raise ArithmeticError(f"adjoint dispersion solve failed (LAPACK dgtsv info={info})")
        flux = half[:, None] * np.diff(solved, axis=0)
        spread = solved * (volume / self.dt)
        spread[:-1] += flux
        spread[1:] -= flux
        spread *= (self._decayed_volume[a:b] / self.volume[a:b] ** 2)[:, None]
        # transpose of the shift: a cell's weight is what its load adds once moved one cell down
        weight[a:b] = 0.0
        top = max(0, a - 1)
        moved = spread[top + 1 - a :]
        weight[top : top + len(moved)] = moved * self.carry[top : top + len(moved), None]
        if not trim:
            return (top, top + len(moved))
        level = np.abs(moved).max(axis=1)
        alive = np.flatnonzero(level > _NEGLIGIBLE_BACKWARD * float(level.max(initial=0.0)))
        if len(alive) == 0:
            return (top, top)
        return (max(0, top + int(alive[0]) - _MARGIN), min(n, top + int(alive[-1]) + 1 + _MARGIN))

    def concentrations(self, mass: Array) -> Array:
        return np.asarray(mass / self.volume)


#: Cells kept around the plume, and the share of its peak below which load counts as none.
_MARGIN: Final = 24
_NEGLIGIBLE: Final = 1e-9
#: A backward run's kernel spans days in a cascade of pools: it is cut where it falls below this
#: share of its highest (what a release there would add is far below any station's resolution).
_NEGLIGIBLE_BACKWARD: Final = 1e-7
#: How often a run checks whether the plume has passed every probe.
_CHECK_EVERY: Final = 16
#: The window grows by a few cells each step and is trimmed back every few steps.
_GROW: Final = 3
_TRIM_EVERY: Final = 8


@dataclass(frozen=True, slots=True)
class Run:
    """Concentration at each probe after each step (row 0: the initial state) and the plume's
    river-km extent (cells above ``EDGE_FRACTION`` of the highest) at the requested steps."""

    dt: float
    curves: Array
    extents: dict[int, tuple[float, float] | None]


def simulate_numpy(
    grid: Grid,
    mass: Array,
    max_steps: int,
    probes_tau: Sequence[float],
    extent_steps: Sequence[int] = (),
) -> Run:
    """March from ``mass`` until the plume has passed every probe (fallen below ``EDGE_FRACTION``
    of its peak there) and the last extent is taken, or ``max_steps``; sample the probes (linear
    between cell centres) after every step. Without probes or extents nothing needs a step.

    The definition of the march; :func:`simulate` runs the same march compiled (``playbooks._plume``)."""
    mass = mass.copy()
    position = np.array([grid.index_of(t) for t in probes_tau], dtype=float)
    below = np.clip(np.floor(position).astype(int), 0, len(grid) - 2)
    weight = np.clip(position - below, 0.0, 1.0)
    rows = np.empty((min(max_steps, 256) + 1, len(position)))
    highest = np.zeros(len(position))
    wanted = set(extent_steps)
    last_extent = max(wanted, default=0)
    extents: dict[int, tuple[float, float] | None] = {}
    alive = np.flatnonzero(mass)
    lo, hi = grid.window(int(alive[0]), int(alive[-1])) if len(alive) else (0, 0)
    n = 0
    while True:
        if n and hi > lo:
            lo, hi = grid.step(mass, lo, hi, trim=n % _TRIM_EVERY == 0)
        if n == len(rows):
            rows = np.concatenate((rows, np.empty_like(rows)))
        row = mass[below] / grid.volume[below] * (1.0 - weight) + mass[below + 1] / grid.volume[below + 1] * weight
        rows[n] = row
        np.maximum(highest, row, out=highest)
        if n in wanted:
            extents[n] = _extent(grid, grid.concentrations(mass))
        if n >= max_steps:
            break
        if n % _CHECK_EVERY == 0 and n >= last_extent and bool(
            np.all((highest > _NEGLIGIBLE) & (row < EDGE_FRACTION * highest))
        ):
            break
        n += 1
    return Run(grid.dt, rows[: n + 1], extents)


def simulate(
    grid: Grid,
    mass: Array,
    max_steps: int,
    probes_tau: Sequence[float],
    extent_steps: Sequence[int] = (),
) -> Run:
    """:func:`simulate_numpy`, marched by the compiled kernel (``native/plume``): the same steps
    in one call instead of a dozen numpy calls per step, which were the cost of a playbook
    (tests hold the two to the same curves and extents)."""
    if _kernel is None:
        return simulate_numpy(grid, mass, max_steps, probes_tau, extent_steps)
    position = np.array([grid.index_of(t) for t in probes_tau], dtype=float)
    below = np.clip(np.floor(position).astype(int), 0, len(grid) - 2)
    weight = np.clip(position - below, 0.0, 1.0)
    wanted = sorted(set(extent_steps))
    rows, count, snapshots = _kernel.march(
        _bytes(grid.volume), _bytes(grid.carry), _bytes(grid.half), _bytes(grid._diag),
        _bytes(grid._inverse_volume), _bytes(grid._decayed_volume), grid.dt, _bytes(mass),
        [int(b) for b in below], [float(w) for w in weight], max_steps, wanted, max(wanted, default=0),
        (_MARGIN, _NEGLIGIBLE, _CHECK_EVERY, _GROW, _TRIM_EVERY, EDGE_FRACTION),
    )
    curves = np.frombuffer(rows, dtype="<f8").reshape(count, len(position))
    extents = {step: _extent(grid, np.frombuffer(c, dtype="<f8")) for step, c in snapshots}
    return Run(grid.dt, curves, extents)


def _bytes(values: Array) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def _extent(grid: Grid, c: Array) -> tuple[float, float] | None:
    top = float(c.max())
    if top <= 0.0:
        return None
    inside = np.flatnonzero(c >= EDGE_FRACTION * top)
    kms = grid.channel.km(grid.centres[[inside[0], inside[-1]]])
    return (float(kms[0]), float(kms[1]))


def arrival(curve: Array, dt: float) -> Arrival:
    """Leading edge, peak and trailing edge of one sampled curve (times in s after row 0).

    The peak is refined by a parabola through the three highest samples; edges are linear
    crossings of ``EDGE_FRACTION`` of the peak. An edge that the run does not contain is None;
    a leading edge before row 0 (the front had passed when the alert came) is 0.
    """
    last = len(curve) - 1
    top = int(np.argmax(curve))
    peak_c = float(curve[top])
    if peak_c <= 0.0:
        return Arrival(None, None, None, 0.0)
    peak_t: float | None = top * dt
    if 0 < top < last:
        a, b, c = float(curve[top - 1]), peak_c, float(curve[top + 1])
        bend = a - 2.0 * b + c
        if bend < 0.0:
            offset = 0.5 * (a - c) / bend
            peak_t = (top + offset) * dt
            peak_c = b - 0.25 * (a - c) * offset
    elif top == last:
        peak_t = None  # still rising at the end of the run
    threshold = EDGE_FRACTION * peak_c
    above = np.flatnonzero(curve >= threshold)
    first, final = int(above[0]), int(above[-1])
    leading = 0.0 if first == 0 else _crossing(curve, first - 1, threshold, dt)
    trailing = None if final == last or peak_t is None else _crossing(curve, final, threshold, dt)
    return Arrival(leading, peak_t, trailing, peak_c)


def _crossing(curve: Array, index: int, level: float, dt: float) -> float:
    a, b = float(curve[index]), float(curve[index + 1])
    return (index + (level - a) / (b - a)) * dt


#: Cell travel time: a quarter of the initial σ (a few cells per σ keep the peak and edges within
#: a percent of a fine-grid solution) or an eighth of the σ where accuracy is first asked for,
#: within these bounds.
_DT_BOUNDS: Final = (30.0, 600.0)
#: Where accuracy is asked for (receptors at least this far below the alert, issue 17): cells need
#: not be finer than an eighth of the plume's σ there. A pulse much shorter than that at the
#: station would otherwise set the cells — 30 s cells for a two-minute exceedance, 16,000 cells on
#: the Tuo and 5,760 steps to a 48 h horizon, ~0.7 s of CPU a run. Within those km such a short
#: pulse is smoothed over a few cells.
SIZED_AT_KM: Final = 5.0


@dataclass(frozen=True, slots=True)
class Forecast:
    """What a plume centred on ``origin_km`` at t = 0 does at each probe, and where it is at given
    hours. Arrivals and curves (one sample per ``dt`` from t = 0) are per unit peak concentration
    at the origin: scale by the observed one."""

    arrivals: dict[float, Arrival]
    extents: dict[float, tuple[float, float] | None]
    curves: dict[float, Array]
    dt: float

    def crossings(self, km: float, level: float) -> tuple[float | None, float | None]:
        """When the curve at ``km`` first rises to ``level`` and last falls below it (s), if it does."""
        curve = self.curves[km]
        above = np.flatnonzero(curve >= level)
        if len(above) == 0:
            return (None, None)
        first, final = int(above[0]), int(above[-1])
        rise = 0.0 if first == 0 else _crossing(curve, first - 1, level, self.dt)
        fall = None if final == len(curve) - 1 else _crossing(curve, final, level, self.dt)
        return (rise, fall)


def forecast(
    pieces: Sequence[Piece],
    origin_km: float,
    probes_km: Sequence[float],
    *,
    sigma_s: float,
    max_run_s: float,
    decay_per_s: float = 0.0,
    extent_hours: Sequence[float] = (),
) -> Forecast:
    """Follow the plume (σ ``sigma_s`` in travel time at t = 0) until it has passed every probe (or
    ``max_run_s``); river-km in and out."""
    channel = Channel(pieces)
    sigma = sigma_s
    _, checked_sigma = spread_s(tuple(pieces), origin_km, origin_km + SIZED_AT_KM, sigma)
    dt = min(max(sigma / 4.0, checked_sigma / 8.0, _DT_BOUNDS[0]), _DT_BOUNDS[1])
    origin = float(channel.tau(origin_km))
    start = max(0.0, origin - 6.0 * sigma - 2.0 * dt)
    # the front moves a cell a step: the grid ends where it cannot reach within the run
    end = min(channel.end_tau, origin + max_run_s + 6.0 * sigma + 6 * 3600.0)
    grid = Grid(channel, start, end, dt, decay_per_s)
    snapshots = {h: round(h * 3600.0 / dt) for h in extent_hours}
    max_steps = max(1, math.ceil(max_run_s / dt))
    run = simulate(
        grid,
        grid.gaussian(origin, sigma, 1.0),
        max_steps,
        [float(channel.tau(km)) for km in probes_km],
        [n for n in snapshots.values() if n <= max_steps],
    )
    curves = {km: run.curves[:, j] for j, km in enumerate(probes_km)}
    arrivals = {km: arrival(curve, dt) for km, curve in curves.items()}
    return Forecast(arrivals, {h: run.extents.get(n) for h, n in snapshots.items()}, curves, dt)


def release_curves(
    pieces: Sequence[Piece],
    source_km: float,
    probes_km: Sequence[float],
    *,
    start_s: float,
    duration_s: float,
    run_s: float,
    decay_per_s: float = 0.0,
    dt: float = 120.0,
) -> tuple[float, dict[float, Array]]:
    """A release of one gram spread evenly over ``duration_s`` from ``start_s`` at ``source_km``:
    (dt, concentration at each probe every dt from t = 0). The forward counterpart of tracing."""
    channel = Channel(pieces)
    grid = Grid(channel, 0.0, channel.end_tau, dt, decay_per_s)
    position = grid.index_of(float(channel.tau(source_km)))
    cell = min(max(math.floor(position), 0), len(grid) - 2)
    share = position - cell
    first = round(start_s / dt)
    count = max(1, round(duration_s / dt))
    probes = np.array([grid.index_of(float(channel.tau(km))) for km in probes_km])
    below = np.clip(np.floor(probes).astype(int), 0, len(grid) - 2)
    weight = np.clip(probes - below, 0.0, 1.0)
    steps = math.ceil(run_s / dt)
    rows = np.zeros((steps + 1, len(probes_km)))
    mass = np.zeros(len(grid))
    lo = hi = cell
    for n in range(steps + 1):
        if n and hi > lo:
            lo, hi = grid.step(mass, lo, hi, trim=n % _TRIM_EVERY == 0)
        if first <= n < first + count:
            mass[cell] += (1.0 - share) / count
            mass[cell + 1] += share / count
            near = grid.window(cell, cell + 1)
            lo, hi = near if hi <= lo else (min(lo, near[0]), max(hi, near[1]))
        rows[n] = mass[below] / grid.volume[below] * (1.0 - weight) + mass[below + 1] / grid.volume[below + 1] * weight
    return dt, {km: rows[:, j] for j, km in enumerate(probes_km)}
