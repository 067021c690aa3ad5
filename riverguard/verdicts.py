"""What resolved incidents turned out to be, per station: the labels the detect stage learns from.

When someone gives an incident its verdict (resolving it in the console, or later), the alert
service produces one :class:`StationVerdict` per station that saw the incident to
``topics.verdicts``, key = station id: both that topic and the readings have
``kafka.partitions`` partitions and are keyed by station id, so a station's verdicts sit in the
partition number of its readings and the detect stage can consume them beside the readings. A
verdict given again replaces the earlier one: the latest record per ``(incident_id, station_id)``
counts (:attr:`StationVerdict.label_id`).

The console shows each station's verdicts and its false-alarm rate (:class:`StationRecord`).

>>> from datetime import UTC, datetime
>>> t = datetime(2024, 7, 1, tzinfo=UTC)
>>> def v(verdict: str, n: int) -> StationVerdict:
...     return StationVerdict(station_id="tuo-hongyuan", incident_id=f"RG-{n}", verdict=verdict, window_start=t,
...                           window_end=t, parameters=("NH3N",), by="张三", at=t)
>>> record = StationRecord.of([v("false_alarm", 1), v("confirmed_pollution", 2), v("drill", 3), v("false_alarm", 4)])
>>> record.counts[Verdict.FALSE_ALARM], record.judged, f"{record.false_alarm_rate:.2f}"
(2, 3, '0.67')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from riverguard.incidents import Incident, Verdict
from riverguard.models import StationId

#: History lines that say who gave an incident's verdict: resolving with one, or judging later.
_JUDGED = ("verdict", "resolved")


class StationVerdict(BaseModel):
    """One station's label from one incident's verdict (the wire record of ``topics.verdicts``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    station_id: StationId
    incident_id: str = Field(min_length=1)
    verdict: Verdict
    #: Reading (event) times the incident covers: its first detection's and its latest one's.
    window_start: AwareDatetime
    window_end: AwareDatetime
    #: The parameters its detections named (a pollution incident's pollutant first).
    parameters: tuple[str, ...]
    by: str = Field(min_length=1)
    at: AwareDatetime  # when the verdict was given (the alert service's clock)

    @property
    def label_id(self) -> str:
        """What a later verdict on the same incident and station replaces."""
        return f"{self.incident_id}:{self.station_id}"


def station_verdicts(incident: Incident) -> list[StationVerdict]:
    """One label per station that saw ``incident`` if it has a verdict, else none; who gave it and
    when come from the incident's history (its resolution when the history no longer has it)."""
    if incident.verdict is None:
        return []
    event = next((e for e in reversed(incident.history) if e.what in _JUDGED), None)
    by = (event.by if event else incident.resolved_by) or "?"
    at = event.at if event else incident.resolved_at or incident.updated_at
    stations = incident.stations or ((incident.first_station,) if incident.first_station else ())
    parameters = tuple(dict.fromkeys((incident.pollutant, *incident.parameters))) if incident.pollutant \
        else incident.parameters
    return [
        StationVerdict(
            station_id=station, incident_id=incident.incident_id, verdict=incident.verdict,
            window_start=incident.first_reading_at or incident.opened_at,
            window_end=incident.reading_at or incident.last_active_at,
            parameters=parameters, by=by, at=at,
        )
        for station in stations
    ]


@dataclass(frozen=True, slots=True)
class StationRecord:
    """A station's verdicts, newest first, and how often it cried wolf.

    The false-alarm rate is false alarms over the verdicts on real alarms: drills do not count
    (nothing was alarming), instrument faults do (the station raised an alarm the river did not
    cause, and the count of each shows which). None before any such verdict.
    """

    verdicts: tuple[StationVerdict, ...]
    counts: Counter[Verdict]

    @classmethod
    def of(cls, verdicts: Iterable[StationVerdict]) -> StationRecord:
        ordered = tuple(sorted(verdicts, key=lambda v: v.at, reverse=True))
        return cls(ordered, Counter(v.verdict for v in ordered))

    @property
    def judged(self) -> int:
        return sum(n for verdict, n in self.counts.items() if verdict is not Verdict.DRILL)

    @property
    def false_alarms(self) -> int:
        return self.counts[Verdict.FALSE_ALARM]

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.judged if self.judged else None


def station_records(incidents: Iterable[Incident]) -> dict[str, StationRecord]:
    """Station id → its record, from the incidents that have a verdict."""
    by_station: dict[str, list[StationVerdict]] = {}
    for incident in incidents:
        for label in station_verdicts(incident):
            by_station.setdefault(label.station_id, []).append(label)
    return {station: StationRecord.of(labels) for station, labels in by_station.items()}
