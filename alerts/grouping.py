"""Which incident a detection belongs to: its route, main pollutant and key (pure).

- pollution route: :class:`~riverguard.incidents.PollutionKey` — river, reach, main pollutant and
  kind group (water quality, or ecological flow). ``reach`` comes from the playbooks river network
  when it knows the station, else it is the river itself, so a plume moving downstream past several
  stations stays one incident;
- maintenance route (sensor fault, maintenance, data gap, or any detection from a station inside a
  maintenance window): :class:`~riverguard.incidents.MaintenanceKey` — one incident per station,
  listing every parameter and kind of trouble it has, so a storm of instrument faults is one
  message per station, not one per parameter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from riverguard.incidents import IncidentKey, IntakeArrival, KindGroup, MaintenanceKey, PollutionKey, Route
from riverguard.models import Detection, DetectionKind
from riverguard.parameters import PollutantClass

MAINTENANCE_KINDS: Final = frozenset({DetectionKind.SENSOR_FAULT, DetectionKind.MAINTENANCE, DetectionKind.DATA_GAP})


@dataclass(frozen=True, slots=True)
class Context:
    """What the shell knows about a detection beyond the detection itself (registry, playbook)."""

    reach: str | None = None
    upstream_reaches: tuple[str, ...] = ()  # a plume moving down joins the incident it came from
    city: str | None = None
    pollutant_class: PollutantClass | None = None  # None: the class of the main pollutant
    intakes: tuple[IntakeArrival, ...] = ()  # the drinking-water intakes the station's playbook names
    station_km: float | None = None  # where the station sits (river km, growing downstream)
    playbook_tags: tuple[str, ...] = ()


def incident_id_for(event_id: str) -> str:
    """Stable, short enough for an SMS.

    >>> incident_id_for("evt-1")
    'RG-7B409F93'
    """
    return "RG-" + hashlib.sha256(event_id.encode()).hexdigest()[:8].upper()


def main_pollutant(detection: Detection) -> tuple[str, float | None, float | None, str]:
    """(parameter, value, multiple, unit) of the finding with the highest multiple (or the first)."""
    if detection.kind is DetectionKind.ECOLOGICAL_FLOW_LOW and not detection.findings:
        return "discharge", None, None, "m3/s"
    if not detection.findings:
        return "unknown", None, None, ""
    best = max(detection.findings, key=lambda f: -1.0 if f.multiple is None else f.multiple)
    return best.parameter, best.value, best.multiple, best.unit


def route_of(detection: Detection, *, in_maintenance_window: bool) -> Route:
    maintenance = detection.kind in MAINTENANCE_KINDS or in_maintenance_window
    return Route.MAINTENANCE if maintenance else Route.POLLUTION


def incident_key(route: Route, detection: Detection, context: Context, pollutant: str) -> IncidentKey:
    """The key of the incident ``detection`` belongs to (see the module docstring)."""
    if route is Route.MAINTENANCE:
        return MaintenanceKey(station=detection.station_id)
    group = KindGroup.FLOW if detection.kind is DetectionKind.ECOLOGICAL_FLOW_LOW else KindGroup.WATER
    return PollutionKey(river=detection.river, reach=context.reach or detection.river, pollutant=pollutant, group=group)
