"""The seam to the playbooks package: what alerts needs from a 一河一策一图 playbook.

Alerts reads a playbook for the drinking-water intakes downstream (severity, SMS), the action list
(IM) and the HTML document and map (e-mail). :class:`PlaybookSource` is all the service calls;
:class:`NoPlaybooks` is the source when no river network is available (messages then omit those
parts and the incident's reach is the whole river).

:class:`RiverPlaybooks` remembers what each station saw of a plume (:class:`SeenPlumes`: first
exceedance, peak, back to normal, from the detections' onset/update/cleared), so a playbook built
for a later detection is live-corrected by every station that saw the same pollutant on the same
river recently, shows predicted against observed arrival per station, and traces the release
(where to inspect first, with probabilities). The memory is the process's: after a restart it
refills from the detections that follow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from alerts.book import main_pollutant
from playbooks import (
    CleanStation,
    Playbook,
    PlaybookError,
    RiverNetwork,
    StationObservation,
    build_playbook,
    load_networks,
)
from playbooks import render_html as render_playbook_html
from riverguard.models import Detection, DetectionPhase
from riverguard.settings import Settings

if TYPE_CHECKING:
    from playbooks.geomap import PlaybookMap

log = logging.getLogger(__name__)


class ArrivalView(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def river_km(self) -> float: ...
    @property
    def leading_edge_at(self) -> datetime: ...
    @property
    def leading_edge_fast_at(self) -> datetime: ...
    @property
    def trailing_edge_at(self) -> datetime: ...


class ActionView(Protocol):
    @property
    def order(self) -> int: ...
    @property
    def what_zh(self) -> str: ...
    @property
    def what_en(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def who(self) -> str: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def apprise_tags(self) -> Sequence[str]: ...


class PlaybookView(Protocol):
    @property
    def station_name(self) -> str: ...
    @property
    def pollutant_class(self) -> object: ...
    @property
    def actions(self) -> Sequence[ActionView]: ...
    @property
    def station_km(self) -> float: ...
    @property
    def receptors(self) -> Sequence[ArrivalView]: ...


class PlaybookSource(Protocol):
    def for_detection(self, detection: Detection) -> PlaybookView | None:
        """The playbook for this detection, or None when its river has no network data."""
        ...

    def reaches_to(self, station_id: str, river: str) -> tuple[str, ...]:
        """Reach ids from the river's top down to the one the station sits on (empty: unknown)."""
        ...

    def render_html(self, playbook: PlaybookView, lang: str) -> str | None: ...

    def render_map_png(self, playbook: PlaybookView) -> bytes | None: ...


class NoPlaybooks:
    """No river network: no intake arrival, no action list, reach = river."""

    def for_detection(self, detection: Detection) -> PlaybookView | None:
        return None

    def reaches_to(self, station_id: str, river: str) -> tuple[str, ...]:
        return ()

    def render_html(self, playbook: PlaybookView, lang: str) -> str | None:
        return None

    def render_map_png(self, playbook: PlaybookView) -> bytes | None:
        return None


#: How long a station's sighting of a plume counts for the playbooks of later detections.
PLUME_MEMORY: Final = timedelta(days=3)


@dataclass(slots=True)
class _Sighting:
    first: datetime
    peak_at: datetime
    peak: float | None
    threshold: float | None
    cleared: datetime | None = None

    def observation(self, station_id: str) -> StationObservation:
        return StationObservation(
            station_id=station_id,
            first_exceeded_at=self.first,
            peak_at=max(self.peak_at, self.first),
            peak_concentration=self.peak,
            normal_again_at=self.cleared if self.cleared is not None and self.cleared >= self.peak_at else None,
            threshold=self.threshold,
        )


class SeenPlumes:
    """What each station saw of each river's plumes, from the detections (pure bookkeeping).

    >>> from datetime import UTC
    >>> from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding
    >>> t = datetime(2024, 7, 1, tzinfo=UTC)
    >>> def seen(station: str, hours: float, value: float, phase: DetectionPhase) -> Detection:
    ...     return Detection(detection_id=f"{station}{hours}", event_id=station, station_id=station, river="tuo",
    ...                      time=t + timedelta(hours=hours), kind=DetectionKind.LIMIT_EXCEEDANCE, phase=phase,
    ...                      detector="limits", findings=(Finding(parameter="NH3N", value=value, limit=1.0),))
    >>> plumes = SeenPlumes()
    >>> for d in (seen("tuo-a", 0, 2.0, DetectionPhase.ONSET), seen("tuo-a", 1, 3.5, DetectionPhase.UPDATE),
    ...           seen("tuo-a", 2.5, 0.8, DetectionPhase.CLEARED), seen("tuo-b", 9, 1.6, DetectionPhase.ONSET)):
    ...     plumes.record(d)
    >>> seen_so_far = plumes.observations("tuo", "NH3N", t)
    >>> [(o.station_id, o.peak_concentration, o.normal_again_at is not None) for o in seen_so_far]
    [('tuo-a', 3.5, True), ('tuo-b', 1.6, False)]
    """

    def __init__(self, memory: timedelta = PLUME_MEMORY) -> None:
        self.memory = memory
        self._seen: dict[tuple[str, str], dict[str, _Sighting]] = {}

    def record(self, detection: Detection) -> None:
        if not detection.kind.is_pollution:
            return
        pollutant, value, _, _ = main_pollutant(detection)
        limit = next((f.limit for f in detection.findings if f.parameter == pollutant), None)
        stations = self._seen.setdefault((detection.river, pollutant), {})
        now = detection.time
        for station_id in [s for s, seen in stations.items() if now - seen.first > self.memory]:
            del stations[station_id]
        sighting = stations.get(detection.station_id)
        if sighting is None or (sighting.cleared is not None and detection.phase is DetectionPhase.ONSET):
            stations[detection.station_id] = _Sighting(now, now, value, limit)
            return
        if detection.phase is DetectionPhase.CLEARED:
            sighting.cleared = now
        elif value is not None and (sighting.peak is None or value > sighting.peak):
            sighting.peak, sighting.peak_at = value, now

    def observations(self, river: str, pollutant: str, since: datetime) -> list[StationObservation]:
        """The stations that saw ``pollutant`` on ``river`` from ``since`` on."""
        stations = self._seen.get((river, pollutant), {})
        return [s.observation(station) for station, s in stations.items() if s.first >= since]


class RiverPlaybooks:
    """The real source: the playbooks package's river networks (shipped + ``settings.network_dir``).

    A detection whose station or pollutant the network does not know gets no playbook (logged
    once per station/pollutant) — the alert still goes out, without intake and actions.
    """

    def __init__(self, networks: Mapping[str, RiverNetwork]) -> None:
        self._networks = dict(networks)
        self._maps: dict[tuple[str, str, datetime], PlaybookMap] = {}
        self._warned: set[tuple[str, str]] = set()
        self.plumes = SeenPlumes()

    @classmethod
    def from_settings(cls, settings: Settings) -> RiverPlaybooks:
        extra = sorted(settings.network_dir.glob("*.yaml")) if settings.network_dir else []
        return cls(load_networks(extra))

    @property
    def networks(self) -> Mapping[str, RiverNetwork]:
        """The river networks playbooks are built on (the console draws its maps on them)."""
        return self._networks

    def for_detection(self, detection: Detection) -> Playbook | None:
        network = self._networks.get(detection.river)
        if network is None:
            return None
        self.plumes.record(detection)
        pollutant, value, _, _ = main_pollutant(detection)
        discharge = next(
            (r.values["discharge"].value for r in reversed(detection.readings) if "discharge" in r.values), None
        )
        known = {s.station_id for s in network.stations}
        seen = [
            o for o in self.plumes.observations(detection.river, pollutant, detection.time - self.plumes.memory)
            if o.station_id in known
        ]
        # A station with no sighting is taken as clean until now: stations report all the time and a
        # silent one raises its own data_gap detection (then this assumption is the weak point).
        saw = {o.station_id for o in seen} | {detection.station_id}
        clean = [CleanStation(station_id=s, until=detection.time) for s in sorted(known - saw)]
        try:
            return build_playbook(
                network, station_id=detection.station_id, pollutant=pollutant, at=detection.time,
                concentration=value, discharge_m3s=discharge or None, observations=seen, clean=clean,
            )
        except (PlaybookError, ValueError) as exc:
            if (detection.station_id, pollutant) not in self._warned:
                self._warned.add((detection.station_id, pollutant))
                log.warning("no playbook for %s/%s: %s", detection.station_id, pollutant, exc)
            return None

    def reaches_to(self, station_id: str, river: str) -> tuple[str, ...]:
        network = self._networks.get(river)
        if network is None:
            return ()
        try:
            reach = network.reach_at(network.station(station_id).river_km)
        except PlaybookError:
            return ()
        ids = [r.id for r in network.chain]
        return tuple(ids[: ids.index(reach.id) + 1])

    def render_html(self, playbook: PlaybookView, lang: str) -> str | None:
        if not isinstance(playbook, Playbook):
            return None
        drawn = self._map(playbook)
        return render_playbook_html(playbook, "en" if lang == "en" else "zh", map_svg=drawn.svg if drawn else None)

    def render_map_png(self, playbook: PlaybookView) -> bytes | None:
        drawn = self._map(playbook) if isinstance(playbook, Playbook) else None
        return drawn.png if drawn else None

    def _map(self, playbook: Playbook) -> PlaybookMap | None:
        key = (playbook.station_id, playbook.pollutant, playbook.at)
        if key not in self._maps:
            network = self._networks.get(playbook.river)
            if network is None:
                return None
            from playbooks.geomap import render_map  # matplotlib: loaded only when a map is drawn

            self._maps = {key: render_map(playbook, network)}  # one map in memory: the latest one asked for
        return self._maps[key]
