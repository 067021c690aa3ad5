"""Which drinking-water intake the plume reaches next, and where the plume front is (pure).

An incident keeps the intakes the playbook of its plume front names — the most downstream
station that saw the plume (:func:`follow_front`, :class:`~riverguard.incidents.IntakeArrival`).
The one that matters — for the level and for every message — is the first intake downstream
whose trailing edge is still ahead: an intake the plume has already passed is nobody's concern
any more, while one it covers right now (leading edge past, trailing edge ahead) is "已到达".
The leading edge used to tell "ahead" from "arrived" is the fast band's, the earliest the plume
can be there.

Times are read on the incident's own clock (:func:`incident_time`): the time of its latest
detection plus the time since it came in. That is ``now`` while detections arrive as they happen,
and stays on the data's timeline when old data is processed late (a backfill), where the wall
clock would call every intake passed.

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2024, 7, 3, 0, 25, tzinfo=UTC)
>>> jianyang = IntakeArrival(name="简阳城区取水口", river_km=60.0, leading_edge_at=t + timedelta(hours=6),
...                          leading_edge_fast_at=t + timedelta(hours=5), trailing_edge_at=t + timedelta(hours=9))
>>> ziyang = IntakeArrival(name="资阳城区取水口", river_km=120.0, leading_edge_at=t + timedelta(hours=20),
...                        leading_edge_fast_at=t + timedelta(hours=16), trailing_edge_at=t + timedelta(hours=26))
>>> ahead = outlook((jianyang, ziyang), t)
>>> ahead.name, clock(ahead.earliest_at), clock(ahead.arrival_at), ahead.hours
('简阳城区取水口', '07-03 13:25', '07-03 14:25', 6.0)
>>> later = outlook((jianyang, ziyang), t + timedelta(hours=5, minutes=30))
>>> later.name, later.arrived, later.expected_now, later.hours
('简阳城区取水口', True, False, 0.0)
>>> outlook((jianyang, ziyang), t + timedelta(hours=10)).name
'资阳城区取水口'
>>> outlook((jianyang, ziyang), t + timedelta(days=2)) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from alerts.catalogue import Text
from riverguard.incidents import Incident, IntakeArrival

CHINA: Final = ZoneInfo("Asia/Shanghai")
_NAMED: Final = ("取水口", "水厂", "水源地")  # names that already say what they are


def clock(at: datetime) -> str:
    """Beijing time, as people on duty read it.

    >>> from datetime import timezone
    >>> clock(datetime(2024, 1, 5, 6, 30, tzinfo=timezone.utc))
    '01-05 14:30'
    """
    return at.astimezone(CHINA).strftime("%m-%d %H:%M")


def intake_text(name: str) -> Text:
    """The intake's name as a reader expects it: in Chinese with ``取水口`` unless the name says it."""
    return Text(name if name.endswith(_NAMED) else f"{name}取水口", name)


@dataclass(frozen=True, slots=True)
class IntakeOutlook:
    """The intake the plume reaches next, as seen at ``at``: one notion of arrival, two times —
    the earliest (the fast band's leading edge) and the expected (the nominal leading edge)."""

    name: str
    earliest_at: datetime  # leading edge if the water runs 30 % faster: what deadlines are planned on
    arrival_at: datetime  # leading edge (nominal): when the plume is expected
    at: datetime
    passes_at: datetime | None = None  # trailing edge, when known

    @property
    def arrived(self) -> bool:
        """The plume may be at the intake now (its earliest arrival is past)."""
        return self.earliest_at <= self.at

    @property
    def expected_now(self) -> bool:
        """Even the expected arrival is past: the plume is at the intake."""
        return self.arrival_at <= self.at

    @property
    def hours(self) -> float:
        """Hours until the expected arrival; 0 once the plume may have arrived."""
        if self.arrived:
            return 0.0
        return max(0.0, (self.arrival_at - self.at).total_seconds() / 3600)


def outlook(intakes: Iterable[IntakeArrival], at: datetime) -> IntakeOutlook | None:
    """The first intake downstream the plume has not passed by ``at`` (None: none left)."""
    for intake in sorted(intakes, key=lambda i: i.river_km):
        if intake.trailing_edge_at > at:
            return IntakeOutlook(intake.name, intake.leading_edge_fast_at, intake.leading_edge_at, at,
                                 intake.trailing_edge_at)
    return None


def incident_time(incident: Incident, now: datetime) -> datetime:
    """Where the incident's own timeline is at ``now`` (see the module docstring)."""
    latest = incident.latest_detection
    if latest is None:
        return now
    return latest.time + (now - incident.last_active_at)


def incident_outlook(incident: Incident, now: datetime) -> IntakeOutlook | None:
    """The incident's next intake at ``now``.

    Incidents recorded before intakes were kept carry only ``nearest_intake`` and its arrival;
    past that arrival they count as arrived (their trailing edge is unknown).
    """
    at = incident_time(incident, now)
    if incident.intakes:
        return outlook(incident.intakes, at)
    if not incident.nearest_intake or incident.intake_arrival_at is None:
        return None
    arrival = incident.intake_arrival_at
    return IntakeOutlook(incident.nearest_intake, arrival, arrival, at)


def follow_front(
    intakes: tuple[IntakeArrival, ...], front_km: float | None, seen: tuple[IntakeArrival, ...], seen_km: float
) -> tuple[tuple[IntakeArrival, ...], float]:
    """The intakes ahead after a station at ``seen_km`` saw the plume and its playbook named ``seen``.

    A station below the front is the new front, and its playbook — built from what it saw —
    alone says what lies ahead: intakes above it are behind the front (they were announced
    while they were ahead; the dispersion model's trailing edge there would otherwise keep an
    intake the plume passed hours ago "nearest"). The front station seeing more of the plume,
    or a station above it (the tail), widens the window of each intake below the front instead:
    earliest leading edge, latest trailing edge.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2024, 7, 3, tzinfo=UTC)
    >>> def at(km: float, h: float, name: str = "A") -> IntakeArrival:
    ...     return IntakeArrival(name=name, river_km=km, leading_edge_at=t + timedelta(hours=h),
    ...                          leading_edge_fast_at=t + timedelta(hours=h - 1),
    ...                          trailing_edge_at=t + timedelta(hours=h + 3))
    >>> first, km = follow_front((), None, (at(60, 6), at(120, 20, "B")), 10.0)
    >>> moved, km = follow_front(first, km, (at(120, 22, "B"),), 80.0)
    >>> [(i.name, i.leading_edge_at.hour) for i in moved], km
    ([('B', 22)], 80.0)
    >>> tail, km = follow_front(moved, km, (at(60, 7), at(120, 21, "B")), 10.0)
    >>> [(i.name, i.leading_edge_at.hour, i.trailing_edge_at.hour) for i in tail], km
    ([('B', 21, 1)], 80.0)
    """
    if front_km is None or seen_km > front_km:
        return _downstream_order(seen), seen_km
    widened = {i.name: i for i in intakes}
    for new in seen:
        if new.river_km < front_km:
            continue  # behind the front
        old = widened.get(new.name)
        widened[new.name] = new if old is None else old.evolve(
            leading_edge_at=min(old.leading_edge_at, new.leading_edge_at),
            leading_edge_fast_at=min(old.leading_edge_fast_at, new.leading_edge_fast_at),
            trailing_edge_at=max(old.trailing_edge_at, new.trailing_edge_at),
        )
    return _downstream_order(widened.values()), front_km


def _downstream_order(intakes: Iterable[IntakeArrival]) -> tuple[IntakeArrival, ...]:
    return tuple(sorted(intakes, key=lambda i: i.river_km))



def nearest_fields(
    incident: Incident, intakes: tuple[IntakeArrival, ...], ahead: IntakeOutlook | None
) -> dict[str, object]:
    """The incident's nearest-intake fields: the intake ahead, or what it had when no playbook is known."""
    if not intakes:
        return {"nearest_intake": incident.nearest_intake, "intake_arrival_at": incident.intake_arrival_at}
    if ahead is None:
        return {"nearest_intake": "", "intake_arrival_at": None}
    return {"nearest_intake": ahead.name, "intake_arrival_at": ahead.arrival_at}


def next_intake(incident: Incident, now: datetime) -> Incident | None:
    """The incident with its nearest intake moved on, once the plume has passed the one it named."""
    if not incident.intakes:
        return None
    fields = nearest_fields(incident, incident.intakes, outlook(incident.intakes, incident_time(incident, now)))
    if fields["nearest_intake"] == incident.nearest_intake:
        return None
    ahead = fields["nearest_intake"] or "none left within the playbook's horizon"
    note = f"plume passed {incident.nearest_intake}; next intake: {ahead}"
    return incident.evolve(**fields, updated_at=now).with_event(now, "updated", note=note)
