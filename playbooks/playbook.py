"""The playbook (一河一策): who is hit when, what to do where by when, and who to call.

:func:`build_playbook` is pure: a network, an alert (station, pollutant, time, optional
concentration and discharge) in, a :class:`Playbook` out. Times are rounded to the minute,
leading edges down and trailing edges up, so deadlines err on the early side; times that would
fall before the alert (the front already passed a nearby receptor) are the alert time.

>>> from datetime import datetime, timedelta, timezone
>>> from playbooks.loader import load_network
>>> at = datetime(2024, 5, 14, 10, 0, tzinfo=timezone(timedelta(hours=8)))
>>> pb = build_playbook(load_network("tuo"), station_id="tuo-sanhuangmiao", pollutant="NH3N", at=at,
...                     concentration=3.2)
>>> pb.nearest_intake.name
'资阳城区取水口'
>>> pb.nearest_intake.leading_edge_at.strftime("%H:%M")
'20:32'
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

from playbooks.cards import action_steps, departments_for
from playbooks.models import Playbook, ReceptorArrival, SuspectedSource
from playbooks.network import RiverNetwork, StationSite
from playbooks.pollutants import Pollutant
from playbooks.pollutants import pollutant as lookup_pollutant
from playbooks.traveltime import (
    BAND_FRACTION,
    Arrival,
    arrival,
    mass_from_peak,
    passage,
    pulse_variance,
    segments_between,
)

#: How long the plume takes to pass the alerting station (10 %-edges), when nothing better is
#: known: it sets the initial spread, hence the mass behind an observed peak concentration.
DEFAULT_PULSE_H = 2.0


def build_playbook(
    network: RiverNetwork,
    *,
    station_id: str,
    pollutant: str,
    at: datetime,
    concentration: float | None = None,
    discharge_m3s: float | None = None,
    horizon_h: float = 48.0,
    pulse_h: float = DEFAULT_PULSE_H,
) -> Playbook:
    """Build the playbook for an alert at ``station_id`` at time ``at`` (must be timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
    for name, value in (("concentration", concentration), ("discharge_m3s", discharge_m3s)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if discharge_m3s == 0:
        raise ValueError("discharge_m3s must be positive")
    site = network.station(station_id)
    spec = lookup_pollutant(pollutant)
    flow_ratio = _flow_ratio(network, site, discharge_m3s)
    initial_variance = pulse_variance(pulse_h * 3600.0)
    station_flow = segments_between(network, site.river_km, network.end_km, flow_ratio=flow_ratio)[0]
    mass = None
    if concentration is not None and spec.is_load:
        mass = mass_from_peak(concentration, station_flow.hydraulics.discharge_m3s, initial_variance)

    receptors: list[ReceptorArrival] = []
    beyond: list[str] = []
    for candidate in _downstream_features(network, site):
        km = candidate["river_km"]
        timing = [
            arrival(
                passage(
                    segments_between(network, site.river_km, km, flow_ratio=flow_ratio, velocity_factor=factor),
                    initial_variance,
                ),
                mass_g=mass,
                decay_per_s=spec.decay_per_s,
            )
            for factor in (1.0, 1.0 + BAND_FRACTION, 1.0 - BAND_FRACTION)
        ]
        nominal, fast, slow = timing
        if fast.leading_s > horizon_h * 3600.0:
            beyond.append(str(candidate["name"]))
            continue
        receptors.append(_receptor(candidate, site, at, nominal, fast, slow, spec))

    draft = Playbook(
        river=network.river,
        river_name_zh=network.name_zh,
        station_id=site.station_id,
        station_name=site.name,
        station_city=site.city,
        station_km=site.river_km,
        pollutant=spec.name,
        pollutant_name_zh=spec.name_zh,
        pollutant_name_en=spec.name_en,
        pollutant_class=spec.pollutant_class,
        unit=spec.unit,
        at=at,
        concentration=concentration,
        discharge_m3s=discharge_m3s,
        horizon_h=horizon_h,
        pulse_h=pulse_h,
        receptors=receptors,
        beyond_horizon=beyond,
        suspected_sources=_suspected_sources(network, site, spec, flow_ratio, horizon_h),
        data_quality=network.data_quality,
    )
    return draft.model_copy(
        update={"actions": action_steps(network, draft), "departments": departments_for(network, draft)}
    )


def _downstream_features(network: RiverNetwork, site: StationSite) -> list[dict[str, Any]]:
    """Every feature below the station, as receptor candidates ordered by river-km."""
    below: list[dict[str, Any]] = [
        *(
            {
                "name": i.name,
                "kind": "intake",
                "city": i.city,
                "river_km": i.river_km,
                "population": i.population,
                "estimated_position": i.estimated_position,
            }
            for i in network.intakes
        ),
        *(
            {
                "name": s.name,
                "kind": "station",
                "city": s.city,
                "river_km": s.river_km,
                "station_id": s.station_id,
                "estimated_position": s.estimated_position,
            }
            for s in network.stations
        ),
        *(
            {
                "name": p.name,
                "kind": "interception",
                "city": p.city,
                "river_km": p.river_km,
                "capabilities": p.capabilities,
                "estimated_position": p.estimated_position,
            }
            for p in network.interception_points
        ),
        *(
            {
                "name": j.name,
                "kind": "confluence",
                "city": j.city,
                "river_km": j.river_km,
                "estimated_position": j.estimated_position,
            }
            for j in network.junctions
        ),
        {"name": f"{network.name_zh}河口（网络终点）", "kind": "outlet", "city": "", "river_km": network.end_km},
    ]
    kinds = ("intake", "interception", "station", "confluence", "outlet")
    chosen = [f for f in below if float(f["river_km"]) > site.river_km]
    return sorted(chosen, key=lambda f: (f["river_km"], kinds.index(str(f["kind"]))))


def _receptor(
    candidate: dict[str, Any],
    site: StationSite,
    at: datetime,
    nominal: Arrival,
    fast: Arrival,
    slow: Arrival,
    spec: Pollutant,
) -> ReceptorArrival:
    limit = spec.drinking_limit()
    peak = nominal.peak_concentration
    return ReceptorArrival.model_validate(
        {
            **candidate,
            "distance_km": round(float(candidate["river_km"]) - site.river_km, 3),
            "leading_edge_at": _at(at, nominal.leading_s, "down"),
            "peak_at": _at(at, nominal.peak_s, "nearest"),
            "trailing_edge_at": _at(at, nominal.trailing_s, "up"),
            "leading_edge_fast_at": _at(at, fast.leading_s, "down"),
            "leading_edge_slow_at": _at(at, slow.leading_s, "down"),
            "peak_concentration": None if peak is None else float(f"{peak:.4g}"),
            "exceeds_limit": None if peak is None or limit is None else peak > limit,
        }
    )


def _at(at: datetime, seconds: float, rounding: Literal["down", "up", "nearest"]) -> datetime:
    # Close to the station the front may already have passed when the alert fires (the plume had
    # spread before it was seen): such times are reported as the alert time, "already there".
    minutes = max(0.0, seconds / 60.0)
    whole = math.floor(minutes) if rounding == "down" else math.ceil(minutes) if rounding == "up" else round(minutes)
    return (at + timedelta(minutes=whole)).replace(second=0, microsecond=0)


def _suspected_sources(
    network: RiverNetwork,
    site: StationSite,
    spec: Pollutant,
    flow_ratio: float,
    window_h: float,
) -> list[SuspectedSource]:
    """Upstream sources emitting this pollutant (or its class) that the fast band brings here in time."""
    found: list[SuspectedSource] = []
    for source in network.risk_sources:
        if source.river_km > site.river_km:
            continue
        match = spec.emitted_by(source.pollutants)
        if match is None:
            continue
        fast = passage(
            segments_between(
                network,
                source.river_km,
                site.river_km,
                flow_ratio=flow_ratio,
                velocity_factor=1.0 + BAND_FRACTION,
            )
        )
        if fast.travel_s > window_h * 3600.0:
            continue
        nominal = passage(segments_between(network, source.river_km, site.river_km, flow_ratio=flow_ratio))
        found.append(
            SuspectedSource(
                name=source.name,
                kind=source.kind,
                city=source.city,
                river_km=source.river_km,
                distance_km=round(site.river_km - source.river_km, 3),
                travel_h=round(nominal.travel_s / 3600.0, 1),
                match=match,
                pollutants=source.pollutants,
            )
        )
    return sorted(found, key=lambda s: (s.match != "pollutant", s.distance_km))


def plume_extent(network: RiverNetwork, playbook: Playbook, hours: float) -> tuple[float, float] | None:
    """River-km span (back, front) where the plume is above the edge fraction ``hours`` after the alert.

    ``None`` once the whole plume has left the network (or before it reaches any point below the station).
    """
    site = network.station(playbook.station_id)
    spec = lookup_pollutant(playbook.pollutant)
    flow_ratio = _flow_ratio(network, site, playbook.discharge_m3s)
    variance = pulse_variance(playbook.pulse_h * 3600.0)
    step = max(0.25, (network.end_km - site.river_km) / 400.0)
    moment = hours * 3600.0
    covered: list[float] = []
    km = site.river_km
    while km <= network.end_km + 1e-9:
        timing = arrival(
            passage(segments_between(network, site.river_km, km, flow_ratio=flow_ratio), variance),
            decay_per_s=spec.decay_per_s,
        )
        if timing.leading_s <= moment <= timing.trailing_s:
            covered.append(km)
        elif timing.leading_s > moment:
            break
        km += step
    return (covered[0], covered[-1]) if covered else None


def _flow_ratio(network: RiverNetwork, site: StationSite, discharge_m3s: float | None) -> float:
    return discharge_m3s / network.reach_at(site.river_km).discharge_m3s if discharge_m3s else 1.0
