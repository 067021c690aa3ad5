"""The channel a plume travels: velocity, discharge and dispersion along the reach chain (pure).

:func:`channel` turns a network into uniform :class:`Piece` s from its top to its end (and a
stretch beyond the end, so the model's outlet lets water out instead of reflecting it):

- Discharge. A reach's ``discharge_m3s`` is its flow where it begins; a junction adds its
  ``discharge_m3s`` from its river-km on (clean water: concentrations below it are diluted by
  Q_above / Q_below). Where the next reach begins, its own discharge takes over: the difference
  from what arrives is ungauged inflow (clean water, dilution) or a withdrawal (irrigation,
  diversions: water and load leave together, no dilution).
  :func:`playbooks.network.flow_balance` lists these differences; a network file where one exceeds
  :data:`~playbooks.network.BALANCE_TOLERANCE` of the flow does not load (a tributary discharge
  that breaks the mass balance).
- Velocity, width, depth: the reach's typical values, scaled with the local flow by the
  at-a-station hydraulic geometry of Leopold & Maddock (1953): W ∝ Q^0.26, H ∝ Q^0.40,
  U ∝ Q^0.34 (exponents sum to 1, so Q = U·W·H holds); in a reservoir pool width and depth are
  held by the dam, so U ∝ Q.
- Dispersion: Fischer (1975) D = 0.011·U²·W² / (H·u*), u* = √(g·R·S), unless the reach gives a
  measured value (which then scales with U², like Fischer's).

Factors per reach (``factors``: reach id → (velocity ×, dispersion ×)) carry a live correction
or a benchmark's perturbation; ``velocity_factor`` is the fast/slow band (dispersion then scales
with U², as Fischer's formula says).

>>> h = Hydraulics(velocity_ms=1.0, discharge_m3s=400.0, width_m=200.0, depth_m=2.0, slope=0.0002)
>>> round(h.dispersion_m2s)
3547
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from playbooks.network import Reach, RiverNetwork, inflows

G: Final = 9.81
#: Leopold & Maddock (1953) mean at-a-station exponents: W ∝ Q^b, H ∝ Q^f, U ∝ Q^m.
WIDTH_EXPONENT: Final = 0.26
DEPTH_EXPONENT: Final = 0.40
VELOCITY_EXPONENT: Final = 0.34
#: How far the model continues beyond the network's end with the last reach's hydraulics.
OUTLET_EXTENSION_KM: Final = 20.0

Factors = Mapping[str, tuple[float, float]]


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


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of uniform velocity, discharge and dispersion (km downstream, SI values)."""

    from_km: float
    to_km: float
    velocity_ms: float
    discharge_m3s: float
    dispersion_m2s: float
    reach_id: str

    @property
    def travel_s(self) -> float:
        return (self.to_km - self.from_km) * 1000.0 / self.velocity_ms


def channel(
    network: RiverNetwork,
    *,
    flow_ratio: float = 1.0,
    velocity_factor: float = 1.0,
    factors: Factors | None = None,
) -> tuple[Piece, ...]:
    """The chain as uniform pieces, top to end plus :data:`OUTLET_EXTENSION_KM` beyond it."""
    pieces: list[Piece] = []
    for reach in network.chain:
        vel_factor, disp_factor = (factors or {}).get(reach.id, (1.0, 1.0))
        cuts = sorted({reach.from_km, reach.to_km, *(j.river_km for j in inflows(network.junctions, reach))})
        added = 0.0
        for start, end in itertools.pairwise(cuts):
            added += sum(j.discharge_m3s or 0.0 for j in inflows(network.junctions, reach) if j.river_km == start)
            ratio = flow_ratio * (reach.discharge_m3s + added) / reach.discharge_m3s
            h = reach_hydraulics(reach, ratio, velocity_factor * vel_factor)
            pieces.append(
                Piece(start, end, h.velocity_ms, h.discharge_m3s, h.dispersion_m2s * disp_factor, reach.id)
            )
    last = pieces[-1]
    pieces.append(
        Piece(last.to_km, last.to_km + OUTLET_EXTENSION_KM, last.velocity_ms, last.discharge_m3s,
              last.dispersion_m2s, last.reach_id)
    )
    return tuple(pieces)


def travel_time_s(pieces: tuple[Piece, ...], from_km: float, to_km: float) -> float:
    """Advective travel time between two river-km (``from_km`` ≤ ``to_km``).

    >>> from playbooks.loader import load_network
    >>> round(travel_time_s(channel(load_network("tuo")), 0.0, 60.0) / 3600, 1)
    21.9
    """
    total = 0.0
    for piece in pieces:
        start, end = max(piece.from_km, from_km), min(piece.to_km, to_km)
        if end > start:
            total += (end - start) * 1000.0 / piece.velocity_ms
    return total


def spread_s(pieces: tuple[Piece, ...], from_km: float, to_km: float, initial_sigma_s: float) -> tuple[float, float]:
    """(advective travel time, σ of the plume in time) from ``from_km`` to ``to_km``: the
    frozen-cloud estimate (variance 2·D·τ/u² per piece), good enough to size a run or a search.

    >>> t, s = spread_s((Piece(0, 36, 1.0, 100.0, 50.0, "r"),), 0.0, 36.0, 0.0)
    >>> t / 3600, round(s)
    (10.0, 1897)
    """
    travel, variance = 0.0, initial_sigma_s**2
    for piece in pieces:
        start, end = max(piece.from_km, from_km), min(piece.to_km, to_km)
        if end > start:
            tau = (end - start) * 1000.0 / piece.velocity_ms
            travel += tau
            variance += 2.0 * piece.dispersion_m2s * tau / piece.velocity_ms**2
    return travel, math.sqrt(variance)
