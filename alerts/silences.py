"""Silences and maintenance windows: the routing file's, and those set at runtime (pure).

Runtime silences (the console's) are :class:`~riverguard.incidents.SilenceRecord` models: the
shell persists each one it is handed back (a compacted topic, key = ``silence_id``) and gives them
to :meth:`Silences.restore` on start. An expired silence stays a record (who ended it, when), so the
history of who muted what is kept.

>>> from datetime import UTC, datetime, timedelta
>>> from alerts.routing import RoutingConfig
>>> t = datetime(2024, 7, 1, tzinfo=UTC)
>>> silences = Silences(RoutingConfig())
>>> record = silences.add(Silence(station="tuo-hongyuan", until=t + timedelta(hours=2), reason="换探头"), "张三", t)
>>> record.silence_id, silences.for_detection(station="tuo-hongyuan", river="tuo", at=t) == record
('SIL-35335456', True)
>>> silences.expire(record.silence_id, "李四", t + timedelta(hours=1)).expired_by
'李四'
>>> silences.for_detection(station="tuo-hongyuan", river="tuo", at=t + timedelta(hours=1)) is None
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from alerts.errors import SilenceError
from alerts.routing import RoutingConfig
from riverguard.incidents import Incident, Silence, SilenceRecord


class Silences:
    def __init__(self, routing: RoutingConfig) -> None:
        self._file = routing.silence_records()
        self._runtime: dict[str, SilenceRecord] = {}

    def use_routing(self, routing: RoutingConfig) -> None:
        self._file = routing.silence_records()

    def restore(self, records: Iterable[SilenceRecord]) -> None:
        for record in records:
            self._runtime[record.silence_id] = record

    def add(self, silence: Silence, by: str, now: datetime) -> SilenceRecord:
        """A new runtime silence; its id derives from what, who and when, so a replayed request adds none."""
        digest = hashlib.sha256(f"{silence.model_dump_json()}|{by}|{now.isoformat()}".encode()).hexdigest()
        record = SilenceRecord(silence_id=f"SIL-{digest[:8].upper()}", silence=silence, created_by=by, created_at=now)
        self._runtime.setdefault(record.silence_id, record)
        return self._runtime[record.silence_id]

    def expire(self, silence_id: str, by: str, now: datetime) -> SilenceRecord:
        """End a runtime silence now (the routing file's end by editing the file)."""
        if silence_id.startswith("routing:"):
            raise SilenceError(f"silence {silence_id} comes from the routing file; remove it there")
        record = self._runtime.get(silence_id)
        if record is None:
            raise SilenceError(f"no silence {silence_id!r}")
        if not record.active(now):
            return record
        expired = record.evolve(expired_at=now, expired_by=by)
        self._runtime[silence_id] = expired
        return expired

    def get(self, silence_id: str) -> SilenceRecord:
        found = next((r for r in self._all() if r.silence_id == silence_id), None)
        if found is None:
            raise SilenceError(f"no silence {silence_id!r}")
        return found

    def active(self, now: datetime) -> list[SilenceRecord]:
        """Silences in force now or later (file first, then runtime ones by creation)."""
        return [r for r in self._all() if r.active(now)]

    def for_detection(self, *, station: str, river: str, at: datetime) -> SilenceRecord | None:
        """The silence covering a station's detections at ``at`` (a maintenance window reroutes them)."""
        return next((r for r in self.active(at) if r.silence.covers(station=station, river=river, at=at)), None)

    def for_incident(self, incident: Incident, at: datetime) -> SilenceRecord | None:
        """The silence holding back notifications of ``incident`` at ``at``."""
        return next((r for r in self.active(at) if holds(r, incident, at)), None)

    def _all(self) -> list[SilenceRecord]:
        return [*self._file, *sorted(self._runtime.values(), key=lambda r: (r.created_at, r.silence_id))]


def holds(record: SilenceRecord, incident: Incident, at: datetime) -> bool:
    """Whether ``record`` holds back ``incident``'s notifications at ``at``: by its river, its
    pollutant, its route, or the station of its latest detection."""
    latest = incident.latest_detection
    station = latest.station_id if latest is not None else incident.first_station
    return record.active(at) and record.silence.covers(
        station=station, river=incident.river, at=at, pollutant=incident.pollutant, route=incident.route
    )
