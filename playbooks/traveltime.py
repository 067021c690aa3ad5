"""Time of travel: 1D advection–dispersion along a chain of reaches (pure functions, SI units).

An instantaneous release of mass M into a cross-section A of a uniform reach spreads as

    C(x, t) = M / (A·√(4πDt)) · exp(−(x − u·t)² / (4·D·t) − k·t)          (:func:`ade_concentration`)

Along a chain of reaches with different velocities the plume is followed in *time at a fixed
point* (frozen-cloud form used by time-of-travel tools): the mean travel time accumulates
τᵢ = Lᵢ/uᵢ and the temporal variance accumulates 2·Dᵢ·τᵢ/uᵢ² (the spatial variance 2·Dᵢ·τᵢ a
reach adds, seen passing at the local velocity). At a receptor the concentration over time is

    C(t) = M·e^(−k·t) / (Q·σ·√(2π)) · exp(−(t − T)² / (2σ²))

which carries the mass M·e^(−kT) past the receptor (∫Q·C dt), and for one uniform reach has the
same peak as the analytic solution. Definitions used in every playbook:

- peak: the time of maximum concentration (``T − k·σ²``);
- leading / trailing edge: when C rises above / falls below ``EDGE_FRACTION`` (10 %) of the peak,
  i.e. peak ∓ σ·√(2·ln 10) ≈ peak ∓ 2.15σ;
- fast / slow band: the same with every reach velocity × (1 ± ``BAND_FRACTION``) (±30 %).

Dispersion is Fischer's (1975) D = 0.011·U²·W² / (H·u*), u* = √(g·R·S), unless a reach gives a
measured value. With a live discharge Q the reaches scale by the at-a-station hydraulic geometry
of Leopold & Maddock (1953): W ∝ Q^0.26, H ∝ Q^0.40, U ∝ Q^0.34 (the exponents sum to 1, so
Q = U·W·H holds); in a reservoir pool width and depth are held by the dam, so U ∝ Q.

>>> h = Hydraulics(velocity_ms=1.0, discharge_m3s=400.0, width_m=200.0, depth_m=2.0, slope=0.0002)
>>> round(h.dispersion_m2s)
3547
>>> p = passage([Segment(36_000.0, h)])
>>> p.travel_s / 3600
10.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from playbooks.network import Reach, RiverNetwork

G: Final = 9.81
#: Leopold & Maddock (1953) mean at-a-station exponents: W ∝ Q^b, H ∝ Q^f, U ∝ Q^m.
WIDTH_EXPONENT: Final = 0.26
DEPTH_EXPONENT: Final = 0.40
VELOCITY_EXPONENT: Final = 0.34
#: Leading and trailing edges are where C crosses this fraction of the peak.
EDGE_FRACTION: Final = 0.1
#: The fast/slow band: every reach velocity × (1 ± this).
BAND_FRACTION: Final = 0.3
_EDGE_WIDTH: Final = math.sqrt(-2.0 * math.log(EDGE_FRACTION))


def shear_velocity(depth_m: float, width_m: float, slope: float) -> float:
    """u* = √(g·R·S) with the hydraulic radius R of a rectangular section."""
    radius = width_m * depth_m / (width_m + 2.0 * depth_m)
    return math.sqrt(G * radius * slope)


def fischer_dispersion(velocity_ms: float, width_m: float, depth_m: float, slope: float) -> float:
    """Fischer (1975) longitudinal dispersion coefficient (m²/s)."""
    return 0.011 * velocity_ms**2 * width_m**2 / (depth_m * shear_velocity(depth_m, width_m, slope))


@dataclass(frozen=True, slots=True)
class Hydraulics:
    """Hydraulics of one reach at one flow. ``dispersion`` overrides Fischer's estimate."""

    velocity_ms: float
    discharge_m3s: float
    width_m: float
    depth_m: float
    slope: float
    dispersion: float | None = None

    @property
    def dispersion_m2s(self) -> float:
        if self.dispersion is not None:
            return self.dispersion
        return fischer_dispersion(self.velocity_ms, self.width_m, self.depth_m, self.slope)

    @property
    def area_m2(self) -> float:
        return self.discharge_m3s / self.velocity_ms


def reach_hydraulics(reach: Reach, flow_ratio: float = 1.0, velocity_factor: float = 1.0) -> Hydraulics:
    """The reach at ``flow_ratio`` × its typical discharge, velocity then × ``velocity_factor``."""
    if flow_ratio <= 0:
        raise ValueError(f"flow ratio must be positive, got {flow_ratio}")
    if reach.reservoir:
        width, depth, velocity = reach.width_m, reach.depth_m, reach.velocity_ms * flow_ratio
    else:
        width = reach.width_m * flow_ratio**WIDTH_EXPONENT
        depth = reach.depth_m * flow_ratio**DEPTH_EXPONENT
        velocity = reach.velocity_ms * flow_ratio**VELOCITY_EXPONENT
    velocity *= velocity_factor
    dispersion = None
    if reach.dispersion_m2s is not None:
        # A measured D scales with U² like Fischer's (width and shear velocity vary slowly).
        dispersion = reach.dispersion_m2s * (velocity / reach.velocity_ms) ** 2
    return Hydraulics(velocity, reach.discharge_m3s * flow_ratio, width, depth, reach.slope, dispersion)


def ade_concentration(
    mass_g: float,
    area_m2: float,
    dispersion_m2s: float,
    velocity_ms: float,
    x_m: float,
    t_s: float,
    decay_per_s: float = 0.0,
) -> float:
    """Analytic C(x, t) in mg/L (g/m³) of an instantaneous release at x = 0, t = 0.

    >>> round(ade_concentration(1000.0, 100.0, 10.0, 1.0, 3600.0, 3600.0), 5)
    0.01487
    """
    if t_s <= 0:
        return 0.0
    spread = 4.0 * dispersion_m2s * t_s
    return (
        mass_g
        / (area_m2 * math.sqrt(math.pi * spread))
        * math.exp(-((x_m - velocity_ms * t_s) ** 2) / spread - decay_per_s * t_s)
    )


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a reach the plume crosses."""

    length_m: float
    hydraulics: Hydraulics


@dataclass(frozen=True, slots=True)
class Passage:
    """How a plume passes a point: mean travel time, temporal variance, discharge there."""

    distance_m: float
    travel_s: float
    variance_s2: float
    discharge_m3s: float


@dataclass(frozen=True, slots=True)
class Arrival:
    """Times (s after the plume's peak passed the origin) and the peak concentration (mg/L)."""

    leading_s: float
    peak_s: float
    trailing_s: float
    peak_concentration: float | None


def passage(segments: Sequence[Segment], initial_variance_s2: float = 0.0) -> Passage:
    """Accumulate travel time and temporal variance over ``segments`` (upstream → downstream)."""
    travel = 0.0
    variance = initial_variance_s2
    distance = 0.0
    discharge = segments[0].hydraulics.discharge_m3s if segments else 0.0
    for segment in segments:
        h = segment.hydraulics
        tau = segment.length_m / h.velocity_ms
        travel += tau
        variance += 2.0 * h.dispersion_m2s * tau / h.velocity_ms**2
        distance += segment.length_m
        discharge = h.discharge_m3s
    return Passage(distance, travel, variance, discharge)


def arrival(p: Passage, *, mass_g: float | None = None, decay_per_s: float = 0.0) -> Arrival:
    """Leading edge, peak, trailing edge and peak concentration at the end of passage ``p``."""
    sigma = math.sqrt(p.variance_s2)
    peak = p.travel_s - decay_per_s * p.variance_s2
    concentration = None
    if mass_g is not None and sigma > 0 and p.discharge_m3s > 0:
        concentration = (
            mass_g
            / (p.discharge_m3s * sigma * math.sqrt(2.0 * math.pi))
            * math.exp(-decay_per_s * peak - (peak - p.travel_s) ** 2 / (2.0 * p.variance_s2))
        )
    return Arrival(peak - _EDGE_WIDTH * sigma, peak, peak + _EDGE_WIDTH * sigma, concentration)


def pulse_variance(duration_s: float) -> float:
    """Temporal variance of a plume whose 10 %-edges pass a point ``duration_s`` apart."""
    return (duration_s / (2.0 * _EDGE_WIDTH)) ** 2


def mass_from_peak(concentration: float, discharge_m3s: float, variance_s2: float) -> float:
    """Mass (g) of a Gaussian plume with this peak (mg/L) at a point where the flow is Q."""
    return concentration * discharge_m3s * math.sqrt(2.0 * math.pi * variance_s2)


def segments_between(
    network: RiverNetwork,
    from_km: float,
    to_km: float,
    *,
    flow_ratio: float = 1.0,
    velocity_factor: float = 1.0,
) -> list[Segment]:
    """The pieces of the chain between two river-km (``from_km`` ≤ ``to_km``)."""
    pieces: list[Segment] = []
    for reach in network.chain:
        start, end = max(reach.from_km, from_km), min(reach.to_km, to_km)
        if end > start:
            pieces.append(Segment((end - start) * 1000.0, reach_hydraulics(reach, flow_ratio, velocity_factor)))
    return pieces
