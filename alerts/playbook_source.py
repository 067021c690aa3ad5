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
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol, Self

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
        """The playbook for this detection, or None when its river has no network data. A clear
        has none: it only tells later playbooks that the plume passed its station."""
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
#: A playbook is built again for a later detection of the same plume at the same station only when
#: what the stations saw changed, the concentration or discharge moved by a step, or this much
#: event time passed: the plume model (with correction and tracing) takes 0.1–0.7 s of CPU, and an
#: event's detections (onset, updates every few readings) would otherwise each pay it.
REBUILD_AFTER: Final = timedelta(minutes=30)
#: Steps (ratios) of concentration and discharge below which a cached playbook still stands.
_CONCENTRATION_STEP: Final = 1.25
_DISCHARGE_STEP: Final = 1.1
#: Playbooks kept (least recently used go first).
_CACHED: Final = 256


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


@dataclass(frozen=True, slots=True)
class _Built:
    """A playbook and the measured inputs it was built from."""

    playbook: Playbook
    concentration: float | None
    discharge: float | None
    peaks: tuple[float | None, ...]

    def stands_for(self, at: datetime, concentration: float | None, discharge: float | None,
                   peaks: tuple[float | None, ...]) -> bool:
        """Still good for a detection at ``at`` with these values: recent enough, nothing moved a step."""
        return (at - self.playbook.at <= REBUILD_AFTER
                and _near(self.concentration, concentration, _CONCENTRATION_STEP)
                and _near(self.discharge, discharge, _DISCHARGE_STEP)
                and all(_near(a, b, _CONCENTRATION_STEP) for a, b in zip(self.peaks, peaks, strict=True)))


def _near(a: float | None, b: float | None, ratio: float) -> bool:
    if a is None or b is None or a <= 0 or b <= 0:
        return a == b
    return max(a, b) / min(a, b) < ratio


#: Water speeds a plume can travel at between two stations: a cascade pool (the Jialing's
#: reservoirs run at ~0.1–0.3 m/s, DESIGN.md §4; a deep pool at low flow slower still) and a flood.
SLOWEST_MS: Final = 0.02
FASTEST_MS: Final = 5.0


def same_plume(
    sightings: Sequence[StationObservation], station_id: str, at: datetime, km_of: Mapping[str, float]
) -> list[StationObservation]:
    """The sightings that can be the plume ``station_id`` sees (first at ``at`` unless it has a
    sighting): a station above must have seen it earlier, one below later, each by a travel time
    between :data:`FASTEST_MS` and :data:`SLOWEST_MS` over the distance. A spike of the same
    pollutant elsewhere on the river at another time is another plume, and correcting the model
    with it would move every arrival on the wrong evidence.

    >>> from datetime import UTC
    >>> t = datetime(2024, 7, 1, tzinfo=UTC)
    >>> def seen(station: str, hours: float) -> StationObservation:
    ...     return StationObservation(station_id=station, first_exceeded_at=t + timedelta(hours=hours),
    ...                               peak_at=t + timedelta(hours=hours), peak_concentration=2.0)
    >>> km = {"up": 0.0, "here": 36.0, "down": 72.0}  # 36 km apart: 2 h at 5 m/s, 20 days at 0.02 m/s
    >>> [o.station_id for o in same_plume([seen("up", 0), seen("down", 5)], "here", t + timedelta(hours=10), km)]
    ['up']
    """
    own = next((_first(o) for o in sightings if o.station_id == station_id), None) or at
    here = km_of[station_id]

    def fits(o: StationObservation) -> bool:
        first = _first(o)
        if o.station_id == station_id or first is None:
            return True
        distance_m = abs(km_of[o.station_id] - here) * 1000.0
        lag = (own - first) if km_of[o.station_id] < here else (first - own)
        return distance_m / FASTEST_MS <= lag.total_seconds() <= distance_m / SLOWEST_MS

    return [o for o in sightings if fits(o)]


def _first(o: StationObservation) -> datetime | None:
    return o.first_exceeded_at or o.peak_at


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
        self._built: OrderedDict[tuple[object, ...], _Built] = OrderedDict()
        # The alert service builds playbooks in worker threads (its event loop goes on meanwhile).
        self._lock = threading.Lock()
        self.builds = 0  # playbooks actually built (the rest came from the cache)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
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
        if detection.phase is DetectionPhase.CLEARED:
            return None  # the incident book closes the event without it, and no message shows it
        pollutant, value, _, _ = main_pollutant(detection)
        discharge = next(
            (r.values["discharge"].value for r in reversed(detection.readings) if "discharge" in r.values), None
        )
        km_of = {s.station_id: s.river_km for s in network.stations}
        known = set(km_of)
        recent = [
            o for o in self.plumes.observations(detection.river, pollutant, detection.time - self.plumes.memory)
            if o.station_id in known
        ]
        seen = same_plume(recent, detection.station_id, detection.time, km_of)
        # A station with no sighting is taken as clean until now: stations report all the time and a
        # silent one raises its own data_gap detection (then this assumption is the weak point).
        saw = {o.station_id for o in seen} | {detection.station_id}
        # Who saw it, from when, and whether it is over there: a change in these always rebuilds.
        sightings = sorted(seen, key=lambda o: o.station_id)
        key = (detection.river, detection.station_id, pollutant,
               tuple((o.station_id, o.first_exceeded_at, o.normal_again_at is not None) for o in sightings))
        peaks = tuple(o.peak_concentration for o in sightings)
        with self._lock:
            cached = self._built.get(key)
            if cached is not None and cached.stands_for(detection.time, value, discharge or None, peaks):
                self._built.move_to_end(key)
                return cached.playbook
        clean = [CleanStation(station_id=s, until=detection.time) for s in sorted(known - saw)]
        try:
            playbook = build_playbook(
                network, station_id=detection.station_id, pollutant=pollutant, at=detection.time,
                concentration=value, discharge_m3s=discharge or None, observations=seen, clean=clean,
            )
        except (PlaybookError, ValueError) as exc:
            if (detection.station_id, pollutant) not in self._warned:
                self._warned.add((detection.station_id, pollutant))
                log.warning("no playbook for %s/%s: %s", detection.station_id, pollutant, exc)
            return None
        with self._lock:
            self.builds += 1
            self._built[key] = _Built(playbook, value, discharge or None, peaks)
            self._built.move_to_end(key)
            while len(self._built) > _CACHED:
                self._built.popitem(last=False)
        return playbook

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
