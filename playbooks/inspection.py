"""Where to inspect first (排查): the playbook's suspected sources, ranked by source tracing (pure).

With a concentration to go on, :func:`suspected_sources` traces the release
(:func:`playbooks.tracing.trace`) from what the stations saw — the alerting station at least — and
the stations that saw nothing, and lists the registered outfalls and risk sources by probability,
with an "unregistered discharge between km X and Y" when nothing registered fits. Without one
(pH, a bare class with no value) it lists the registered sources that emit the pollutant (or its
class) and that the fast band brings to the station within the horizon, nearest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from playbooks.errors import PlaybookError
from playbooks.hydraulics import channel, travel_time_s
from playbooks.models import ReleaseEstimate, StationObservation, SuspectedSource
from playbooks.network import RiverNetwork, StationSite
from playbooks.pollutants import Pollutant
from playbooks.tracing import CleanStation, Trace, trace
from playbooks.transport import BAND_FRACTION

#: Candidates below this probability are not worth a team's trip.
MIN_PROBABILITY = 0.02


def suspected_sources(
    network: RiverNetwork,
    site: StationSite,
    spec: Pollutant,
    *,
    at: datetime,
    concentration: float | None,
    observations: Sequence[StationObservation],
    clean: Sequence[CleanStation],
    flow_ratio: float,
    window_h: float,
) -> tuple[list[SuspectedSource], ReleaseEstimate | None]:
    """The ranked sources and, when traced, the release estimate."""
    seen = list(observations)
    if not any(o.station_id == site.station_id for o in seen) and concentration is not None:
        seen.append(StationObservation(station_id=site.station_id, first_exceeded_at=at,
                                       peak_concentration=concentration))
    if spec.is_load and any(o.peak_concentration for o in seen):
        try:
            traced = trace(network, spec.name, seen, clean, flow_ratio=flow_ratio)
        except PlaybookError:
            traced = None
        if traced is not None:
            return _ranked(network, site, spec, traced, flow_ratio), ReleaseEstimate(
                km_low=traced.release.km_low, km_high=traced.release.km_high, km_best=traced.release.km_best,
                start_low=traced.release.start_low, start_high=traced.release.start_high,
                mass_kg=traced.release.mass_kg, unregistered_reach=traced.unregistered,
            )
    return _nearest(network, site, spec, flow_ratio, window_h), None


def _ranked(network: RiverNetwork, site: StationSite, spec: Pollutant, traced: Trace,
            flow_ratio: float) -> list[SuspectedSource]:
    pollutants = {o.name: o.pollutants for o in network.outfalls} | {r.name: r.pollutants for r in network.risk_sources}
    nominal = channel(network, flow_ratio=flow_ratio)
    out = []
    for c in traced.candidates:
        if c.probability < MIN_PROBABILITY:
            continue
        emits = pollutants.get(c.name, ())
        out.append(SuspectedSource(
            name=c.name, kind=c.kind, city=c.city, river_km=c.river_km,
            distance_km=round(site.river_km - c.river_km, 3),
            travel_h=round(travel_time_s(nominal, c.river_km, site.river_km) / 3600.0, 1),
            match=spec.emitted_by(emits) or "other", pollutants=emits, probability=c.probability,
            enterprise=c.enterprise,
        ))
    # as likely (to the percent): the nearer first — the team gets there sooner
    return sorted(out, key=lambda s: (-round(s.probability or 0.0, 2), s.distance_km))


def _nearest(network: RiverNetwork, site: StationSite, spec: Pollutant, flow_ratio: float,
             window_h: float) -> list[SuspectedSource]:
    """Upstream sources emitting this pollutant (or its class) that the fast band brings here in time."""
    nominal = channel(network, flow_ratio=flow_ratio)
    fast = channel(network, flow_ratio=flow_ratio, velocity_factor=1.0 + BAND_FRACTION)
    found: list[SuspectedSource] = []
    for source in network.risk_sources:
        if source.river_km > site.river_km:
            continue
        match = spec.emitted_by(source.pollutants)
        if match is None or travel_time_s(fast, source.river_km, site.river_km) > window_h * 3600.0:
            continue
        found.append(
            SuspectedSource(
                name=source.name,
                kind=source.kind,
                city=source.city,
                river_km=source.river_km,
                distance_km=round(site.river_km - source.river_km, 3),
                travel_h=round(travel_time_s(nominal, source.river_km, site.river_km) / 3600.0, 1),
                match=match,
                pollutants=source.pollutants,
            )
        )
    return sorted(found, key=lambda s: (s.match != "pollutant", s.distance_km))
