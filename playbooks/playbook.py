"""The playbook (一河一策): who is hit when, what to do where by when, and who to call.

:func:`build_playbook` is pure: a network, an alert (station, pollutant, time, optional
concentration and discharge) in, a :class:`Playbook` out. Arrival times come from the numerical
advection–dispersion model (:mod:`playbooks.transport`) run three times: at the file's velocities
and with all of them 30 % faster and slower (the fast band sets the deadlines). Times are rounded
to the minute, leading edges down and trailing edges up, so deadlines err on the early side;
times that would fall before the alert (the front already passed a nearby receptor) are the
alert time.

>>> from datetime import datetime, timedelta, timezone
>>> from playbooks.loader import load_network
>>> at = datetime(2024, 5, 14, 10, 0, tzinfo=timezone(timedelta(hours=8)))
>>> pb = build_playbook(load_network("tuo"), station_id="tuo-sanhuangmiao", pollutant="NH3N", at=at,
...                     concentration=3.2)
>>> pb.nearest_intake.name
'资阳城区取水口'
>>> pb.nearest_intake.leading_edge_at < pb.nearest_intake.peak_at < pb.nearest_intake.trailing_edge_at
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from playbooks.cards import action_steps, departments_for
from playbooks.correction import fit_stretches, place, reach_factors, station_checks
from playbooks.hydraulics import Piece, channel, spread_s
from playbooks.inspection import suspected_sources
from playbooks.models import Playbook, PlumeSpan, ReceptorArrival, StationObservation
from playbooks.network import RiverNetwork, StationSite
from playbooks.pollutants import Pollutant
from playbooks.pollutants import pollutant as lookup_pollutant
from playbooks.tracing import CleanStation
from playbooks.transport import BAND_FRACTION, Arrival, Forecast, forecast, pulse_sigma

#: How long the plume takes to pass the alerting station (10 %-edges), when nothing better is
#: known: it sets the initial spread, hence how fast the peak falls downstream.
DEFAULT_PULSE_H = 2.0
#: Hours after the alert at which the map draws the plume.
MAP_HOURS: Final = (0.0, 6.0, 24.0)


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
    observations: Sequence[StationObservation] = (),
    clean: Sequence[CleanStation] = (),
) -> Playbook:
    """Build the playbook for an alert at ``station_id`` at time ``at`` (must be timezone-aware).

    ``observations``: what stations saw of this plume so far (this one and others). Two or more
    stations that saw it correct the model between them and below (:mod:`playbooks.correction`),
    and the playbook lists predicted against observed arrival for each station below the first.
    With ``clean`` (stations that saw nothing so far) they also trace the release: the suspected
    sources are ranked by probability (:mod:`playbooks.inspection`).
    """
    if at.tzinfo is None:
        raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
    for name, value in (("concentration", concentration), ("discharge_m3s", discharge_m3s)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if discharge_m3s == 0:
        raise ValueError("discharge_m3s must be positive")
    if not (math.isfinite(horizon_h) and horizon_h > 0) or not (math.isfinite(pulse_h) and pulse_h > 0):
        raise ValueError(f"horizon_h and pulse_h must be positive, got {horizon_h} and {pulse_h}")
    site = network.station(station_id)
    spec = lookup_pollutant(pollutant)
    flow_ratio = _flow_ratio(network, site, discharge_m3s)
    candidates = _downstream_features(network, site)
    sigma = pulse_sigma(pulse_h * 3600.0)
    seen = place(network, observations, spec.drinking_limit())
    fits = fit_stretches(network, seen, flow_ratio=flow_ratio, decay_per_s=spec.decay_per_s, default_sigma_s=sigma)
    # What this station saw of the plume, if told: its peak is the plume's centre, its duration the spread.
    own = next((x for x in seen if x.observation.station_id == site.station_id), None)
    offset_s = 0.0
    if own is not None:
        offset_s = (own.observation.centre - at).total_seconds()
        sigma = own.sigma_s(sigma)
        if concentration is None:
            concentration = own.observation.peak_concentration
    factors = reach_factors(network, fits)
    bands = {
        name: channel(network, flow_ratio=flow_ratio, velocity_factor=factor, factors=factors)
        for name, factor in (("nominal", 1.0), ("fast", 1.0 + BAND_FRACTION), ("slow", 1.0 - BAND_FRACTION))
    }
    horizon_s = horizon_h * 3600.0
    # The fast band runs for the receptors it could reach near the horizon (a generous frozen-cloud
    # estimate) and decides which are within it; the nominal and slow bands run for those only.
    reach = [km for km in sorted({float(c["river_km"]) for c in candidates})
             if _reachable(bands["fast"], site.river_km, km, sigma, 1.5 * horizon_s)]
    runs = {"fast": _run(bands["fast"], site.river_km, reach, sigma, spec)}
    inside = [km for km in reach if _leads_within(runs["fast"].arrivals[km], horizon_s - offset_s)]
    map_hours = tuple(h - offset_s / 3600.0 for h in MAP_HOURS if h >= offset_s / 3600.0)
    runs["nominal"] = _run(bands["nominal"], site.river_km, inside, sigma, spec, map_hours)
    runs["slow"] = _run(bands["slow"], site.river_km, inside, sigma, spec)
    scale = concentration if concentration is not None and spec.is_load else None
    sources, release = suspected_sources(
        network, site, spec, at=at, concentration=concentration, observations=observations, clean=clean,
        flow_ratio=flow_ratio, window_h=horizon_h,
    )
    receptors: list[ReceptorArrival] = []
    beyond: list[str] = []
    for candidate in candidates:
        km = float(candidate["river_km"])
        if km not in inside or runs["nominal"].arrivals[km].leading_s is None:
            beyond.append(str(candidate["name"]))
            continue
        nominal, fast, slow = (runs[b].arrivals[km] for b in ("nominal", "fast", "slow"))
        receptors.append(_receptor(candidate, site, at, offset_s, (nominal, fast, slow), spec, scale))

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
        suspected_sources=sources,
        release=release,
        plume=_plume(runs["nominal"], network, offset_s / 3600.0),
        station_checks=station_checks(network, seen, flow_ratio=flow_ratio, decay_per_s=spec.decay_per_s,
                                      default_sigma_s=sigma),
        corrections=fits,
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
    offset_s: float,
    bands: tuple[Arrival, Arrival, Arrival],
    spec: Pollutant,
    scale: float | None,
) -> ReceptorArrival:
    """``bands``: nominal, fast, slow; their times count from ``offset_s`` after ``at`` (the plume's centre)."""
    nominal, fast, slow = bands
    limit = spec.drinking_limit()
    peak = None if scale is None else scale * nominal.peak_concentration
    leading = nominal.leading_s or 0.0
    # a receptor the slow band does not reach within the run: its leading edge scaled as the band
    slow_leading = slow.leading_s if slow.leading_s is not None else leading / (1.0 - BAND_FRACTION)
    return ReceptorArrival.model_validate(
        {
            **candidate,
            "distance_km": round(float(candidate["river_km"]) - site.river_km, 3),
            "leading_edge_at": _at(at, offset_s + leading, "down"),
            "peak_at": _at(at, offset_s + _or_later(nominal.peak_s, leading), "nearest"),
            "trailing_edge_at": _at(at, offset_s + _or_later(nominal.trailing_s, nominal.peak_s or leading), "up"),
            "leading_edge_fast_at": _at(at, offset_s + (fast.leading_s or 0.0), "down"),
            "leading_edge_slow_at": _at(at, offset_s + slow_leading, "down"),
            "peak_concentration": None if peak is None else float(f"{peak:.4g}"),
            "exceeds_limit": None if peak is None or limit is None else peak > limit,
        }
    )


def _leads_within(band: Arrival, horizon_s: float) -> bool:
    return band.leading_s is not None and band.leading_s <= horizon_s


def _reachable(pieces: tuple[Piece, ...], origin_km: float, km: float, sigma: float, within_s: float) -> bool:
    travel, spread = spread_s(pieces, origin_km, km, sigma)
    return travel - 3.0 * spread <= within_s


def _run(
    pieces: tuple[Piece, ...],
    origin_km: float,
    kms: list[float],
    sigma: float,
    spec: Pollutant,
    extent_hours: tuple[float, ...] = (),
) -> Forecast:
    """One band's plume, long enough to pass every probe (estimate + a wide tail) and the map's hours."""
    ends = [t + 8.0 * s for t, s in (spread_s(pieces, origin_km, km, sigma) for km in kms)]
    return forecast(
        pieces,
        origin_km,
        kms,
        sigma_s=sigma,
        max_run_s=max([max(extent_hours, default=0.0) * 3600.0, *ends]) + 6 * 3600.0,
        decay_per_s=spec.decay_per_s,
        extent_hours=extent_hours,
    )


def _or_later(seconds: float | None, floor: float) -> float:
    """A time the run did not reach (the plume still passing at its end) is past ``floor``."""
    return seconds if seconds is not None else floor + 1.0


def _at(at: datetime, seconds: float, rounding: Literal["down", "up", "nearest"]) -> datetime:
    # Close to the station the front may already have passed when the alert fires (the plume had
    # spread before it was seen): such times are reported as the alert time, "already there".
    minutes = max(0.0, seconds / 60.0)
    whole = math.floor(minutes) if rounding == "down" else math.ceil(minutes) if rounding == "up" else round(minutes)
    return (at + timedelta(minutes=whole)).replace(second=0, microsecond=0)


def _plume(nominal: Forecast, network: RiverNetwork, offset_h: float) -> list[PlumeSpan]:
    """The map's spans, at hours after the alert (the run counts from the plume's centre)."""
    spans = []
    for hours, extent in nominal.extents.items():
        if extent is None or extent[0] > network.end_km:
            continue
        spans.append(PlumeSpan(hours=round(hours + offset_h, 6), from_km=round(max(extent[0], network.start_km), 2),
                               to_km=round(min(extent[1], network.end_km), 2)))
    return spans


def _flow_ratio(network: RiverNetwork, site: StationSite, discharge_m3s: float | None) -> float:
    """Live discharge at the station over the file's flow there (junctions above it included)."""
    if not discharge_m3s:
        return 1.0
    return discharge_m3s / _piece_at(channel(network), site.river_km).discharge_m3s


def _piece_at(pieces: Sequence[Piece], river_km: float) -> Piece:
    return next((p for p in pieces if p.from_km <= river_km < p.to_km), pieces[-1])
