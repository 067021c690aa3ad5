"""What the demo found, compared with what the simulator injected (pure: no I/O).

The simulator's ground truth (:attr:`ingest.Simulator.events`) says when the spill's plume
reached each station; a detection is credited to the spill when it fires at such a station on
the spilled pollutant while the plume is there (up to ``slack`` after it passed, for the
persistence window). Everything else the detectors report is background — real findings on the
simulated water (values near a limit) or instrument trouble — and is counted, not hidden.

>>> from datetime import datetime, timedelta, UTC
>>> t = datetime(2024, 7, 1, tzinfo=UTC)
>>> line = DetectionLine(t + timedelta(minutes=25), "tuo-hongyuan", "宏缘", "pollution_spike", ("NH3N",), "", t)
>>> line.delay
datetime.timedelta(seconds=1500)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from ingest.simulator import EventKind, InjectedEvent, Spill
from riverguard.incidents import Incident, NotificationRecord, Route
from riverguard.models import Detection, DetectionPhase

#: How long after the plume passed a station a detection there is still credited to it.
DEFAULT_SLACK: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DetectionLine:
    """One event onset; ``spill_arrival`` is when the plume reached the station (None: background)."""

    time: datetime
    station_id: str
    section: str
    kind: str
    parameters: tuple[str, ...]
    message: str
    spill_arrival: datetime | None = None

    @property
    def delay(self) -> timedelta | None:
        """Detection time after the plume reached the station."""
        return None if self.spill_arrival is None else self.time - self.spill_arrival


@dataclass(frozen=True, slots=True)
class NotificationLine:
    at: datetime
    incident_id: str
    channel: str
    target: str
    reason: str
    outcome: str
    first_line: str
    route: str = ""
    covers: tuple[str, ...] = ()  # the incidents a summary or digest speaks for


@dataclass(slots=True)
class DemoReport:
    spill: Spill
    arrivals: list[InjectedEvent]
    detections: list[DetectionLine]
    spill_incidents: list[Incident]
    other_incidents: list[Incident]
    notifications: list[NotificationLine]
    playbook_files: list[Path]
    readings: int
    dead_letters: int
    simulated_from: datetime
    simulated_to: datetime
    wall_seconds: float = 0.0
    background: dict[str, int] = field(default_factory=dict)

    @property
    def spill_detections(self) -> list[DetectionLine]:
        return [d for d in self.detections if d.spill_arrival is not None]

    @property
    def stations_detected(self) -> list[str]:
        """Stations where the spill was detected, in the order it was detected there."""
        return list(dict.fromkeys(d.station_id for d in self.spill_detections))

    @property
    def problems(self) -> list[str]:
        """Why the demo failed; empty when it showed what it exists to show."""
        spill = self.spill
        found: list[str] = []
        if spill.station_id not in self.stations_detected:
            found.append(
                f"the {spill.pollutant} spill at {spill.station_id} was not detected there "
                f"(simulated until {self.simulated_to.isoformat()}); try a larger --peak or a longer --warmup"
            )
        if not self.spill_incidents:
            found.append(f"no pollution incident was raised for the {spill.pollutant} spill on the {spill.river}")
        if not any(p.suffix == ".html" for p in self.playbook_files):
            found.append("no playbook was written for the spill's incident")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary (``riverguard demo --json``)."""
        spill = self.spill
        return {
            "ok": self.ok,
            "problems": self.problems,
            "spill": {
                "river": spill.river, "station_id": spill.station_id, "pollutant": spill.pollutant,
                "start": spill.start.isoformat(), "duration_s": spill.duration.total_seconds(),
                "peak_multiple": spill.peak_multiple,
            },
            "simulated": {"from": self.simulated_from.isoformat(), "to": self.simulated_to.isoformat()},
            "wall_seconds": round(self.wall_seconds, 2),
            "readings": self.readings,
            "dead_letters": self.dead_letters,
            "arrivals": [
                {"station_id": e.station_id, "start": e.start.isoformat(), "end": e.end.isoformat(), "peak": e.peak}
                for e in self.arrivals
            ],
            "detections": [
                {
                    "time": d.time.isoformat(), "station_id": d.station_id, "section": d.section, "kind": d.kind,
                    "parameters": list(d.parameters), "message": d.message, "spill": d.spill_arrival is not None,
                    "delay_s": None if d.delay is None else d.delay.total_seconds(),
                }
                for d in self.detections
            ],
            "stations_detected": self.stations_detected,
            "background": self.background,
            "incidents": [_incident_json(i) for i in self.spill_incidents],
            "other_incidents": [_incident_json(i) for i in self.other_incidents],
            "notifications": [
                {"at": n.at.isoformat(), "incident_id": n.incident_id, "route": n.route, "channel": n.channel,
                 "target": n.target, "reason": n.reason, "outcome": n.outcome, "covers": list(n.covers),
                 "first_line": n.first_line}
                for n in self.notifications
            ],
            "playbook_files": [str(p) for p in self.playbook_files],
        }


def _incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "route": incident.route.value,
        "river": incident.river,
        "pollutant": incident.pollutant,
        "kind": incident.kind.value,
        "status": incident.status.value,
        "level": incident.level.value,
        "why": [{"zh": r.zh, "en": r.en} for r in incident.level_reasons],
        "stations": list(incident.stations),
        "opened_at": incident.opened_at.isoformat(),
        "peak_multiple": incident.peak_multiple,
        "nearest_intake": incident.nearest_intake,
        "intake_arrival_at": incident.intake_arrival_at.isoformat() if incident.intake_arrival_at else None,
    }


def spill_arrivals(events: Sequence[InjectedEvent], spill: Spill) -> list[InjectedEvent]:
    """The ground-truth arrivals of ``spill``'s plume, upstream first."""
    return sorted((e for e in events if e.kind is EventKind.SPILL_ARRIVAL and e.spill == spill), key=lambda e: e.start)


def detection_lines(
    detections: Sequence[Detection],
    arrivals: Sequence[InjectedEvent],
    sections: Mapping[str, str],
    slack: timedelta = DEFAULT_SLACK,
) -> list[DetectionLine]:
    """Every pollution event onset, in time order, credited to the spill where the plume was."""
    lines = []
    for detection in sorted(detections, key=lambda d: d.time):
        if detection.phase is not DetectionPhase.ONSET or not detection.kind.is_pollution:
            continue
        parameters = tuple(dict.fromkeys(f.parameter for f in detection.findings))
        arrival = next(
            (
                e.start
                for e in arrivals
                if e.station_id == detection.station_id
                and e.parameter in parameters
                and e.start <= detection.time <= e.end + slack
            ),
            None,
        )
        lines.append(
            DetectionLine(
                detection.time, detection.station_id, sections.get(detection.station_id, detection.station_id),
                detection.kind.value, parameters, detection.message, arrival,
            )
        )
    return lines


def background_counts(detections: Sequence[Detection], lines: Sequence[DetectionLine]) -> dict[str, int]:
    """Onsets not credited to the spill, per detection kind (instrument kinds included)."""
    credited = {(d.station_id, d.time, d.kind) for d in lines if d.spill_arrival is not None}
    counts = Counter(
        d.kind.value
        for d in detections
        if d.phase is DetectionPhase.ONSET and (d.station_id, d.time, d.kind.value) not in credited
    )
    return dict(sorted(counts.items()))


def split_incidents(incidents: Sequence[Incident], spill: Spill, stations: Sequence[str]) -> tuple[
    list[Incident], list[Incident]
]:
    """(the spill's pollution incidents, all others), oldest first."""
    hit = set(stations)
    mine: list[Incident] = []
    others: list[Incident] = []
    for incident in sorted(incidents, key=lambda i: i.opened_at):
        is_spill = (
            incident.route is Route.POLLUTION
            and incident.river == spill.river
            and incident.pollutant == spill.pollutant
            and bool(hit & set(incident.stations))
        )
        (mine if is_spill else others).append(incident)
    return mine, others


def notification_lines(
    records: Sequence[NotificationRecord],
    received: Mapping[str, Sequence[tuple[str, str]]],
    names: Mapping[str, str] | None = None,
) -> list[NotificationLine]:
    """One line per delivery record, oldest first; ``names`` maps target ids to what to show.

    ``received`` holds, per target id, the (title, body) of every message the target got, in
    order; each sent record is shown with the text of the message it delivered.
    """
    used: set[tuple[str, int]] = set()
    out = []
    for record in sorted(records, key=lambda r: r.at):
        text = record.title
        if record.outcome.value == "sent":
            # Records of one minute can come in any order (their topic is keyed by record id), so
            # match a record to the target's first unused message with its title, not by position.
            naming = [
                (index, message)
                for index, message in enumerate(received.get(record.target_id, ()))
                if record.incident_id in message[0] + message[1] and (record.target_id, index) not in used
            ]
            match = next(((i, m) for i, m in naming if m[0] == record.title), naming[0] if naming else None)
            if match is not None:
                index, (title, body) = match
                used.add((record.target_id, index))
                text = title or next(iter(body.splitlines()), "")
        out.append(
            NotificationLine(record.at, record.incident_id, record.channel.value,
                             (names or {}).get(record.target_id, record.target), record.reason.value,
                             record.outcome.value, text, record.route.value if record.route else "", record.covers)
        )
    return out
