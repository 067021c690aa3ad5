"""What the console's pages show, computed from incidents (pure: no I/O, no HTTP).

>>> Filters.parse({"river": "tuo", "level": "red", "status": "bogus"})
Filters(river='tuo', level='red', status='active')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from riverguard.incidents import Incident, IncidentStatus, WarningLevel

STATUSES: Final = ("active", "open", "acknowledged", "resolved", "all")


@dataclass(frozen=True, slots=True)
class Filters:
    river: str = ""
    level: str = ""
    status: str = "active"

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        """From the list page's query string; unknown values fall back to "everything" / active."""
        level = query.get("level", "")
        status = query.get("status", "active")
        return cls(
            river=query.get("river", "").strip()[:32],
            level=level if level in {lv.value for lv in WarningLevel} else "",
            status=status if status in STATUSES else "active",
        )

    def keep(self, incident: Incident) -> bool:
        if self.river and incident.river != self.river:
            return False
        if self.level and incident.level.value != self.level:
            return False
        if self.status == "active":
            return incident.is_active
        return self.status in ("all", incident.status.value)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # event, notification, tick
    what: str  # an event name, a delivery status, "done"/"undone"
    by: str = ""
    note: str = ""


def timeline(incident: Incident) -> list[TimelineEntry]:
    """History (detections, level changes, escalation, acks), notifications with their delivery
    outcome, newest first."""
    entries = [TimelineEntry(e.at, "event", e.what, e.by, e.note) for e in incident.history]
    for entry in incident.outbox:
        detail = f"{entry.channel.value} → {entry.target_id} ({entry.reason.value}"
        detail += f", {entry.attempts}×)" if entry.attempts else ")"
        note = " · ".join(x for x in (detail, entry.last_error, entry.note) if x)
        entries.append(TimelineEntry(entry.created_at, "notification", entry.status.value, note=note))
    return sorted(entries, key=lambda e: e.at, reverse=True)


def can_acknowledge(incident: Incident) -> bool:
    return incident.status is IncidentStatus.OPEN


def rivers(incidents: list[Incident]) -> list[str]:
    return sorted({i.river for i in incidents})
