"""What the console's pages show, computed from incidents (pure: no I/O, no HTTP).

>>> Filters.parse({"river": "tuo", "level": "red", "status": "bogus"})
Filters(river='tuo', level='red', status='active')

An action of the playbook's checklist is known by a key from its text with the digits taken out
and its place, not by its position: a later detection's playbook re-sorts the steps by their
deadlines and says new times, and a tick must stay on the action it was given to.

>>> from playbooks.models import ActionStep
>>> one = ActionStep(order=1, what_zh="12:40前关闭取水口", what_en="close the intake before 12:40",
...                  where="简阳城区取水口", who="简阳市水务局")
>>> action_key(one) == action_key(one.model_copy(update={"order": 3, "what_en": "close the intake before 13:05"}))
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from playbooks import Playbook
from playbooks.models import ActionStep
from riverguard.incidents import ActionTick, Incident, IncidentStatus, WarningLevel

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


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    step: ActionStep
    key: str
    tick: ActionTick | None  # the latest tick or untick, None if nobody touched it

    @property
    def done(self) -> bool:
        return self.tick is not None and self.tick.done


def action_key(step: ActionStep) -> str:
    """A stable id of a playbook action: its English text without digits (times, distances) and its place."""
    text = f"{re.sub(r'[0-9]', '', step.what_en)}|{step.where}"
    return "A" + hashlib.sha256(text.encode()).hexdigest()[:8].upper()


def checklist(playbook: Playbook | None, incident: Incident) -> list[ChecklistItem]:
    """The playbook's actions with the incident's ticks."""
    ticks = {t.action_id: t for t in incident.checklist}
    steps = playbook.actions if playbook is not None else ()
    return [ChecklistItem(step, key, ticks.get(key)) for step in steps for key in (action_key(step),)]


def timeline(incident: Incident, actions: Mapping[str, str] | None = None) -> list[TimelineEntry]:
    """History (detections, level changes, escalation, acks, ticks), notifications with their
    delivery outcome, newest first; a tick's note is the action's text when ``actions`` (key →
    text) has it."""
    named = actions or {}
    entries = [
        TimelineEntry(e.at, "event", e.what, e.by, named.get(e.note, e.note) if e.what.startswith("action_")
                      else e.note)
        for e in incident.history
    ]
    for entry in incident.outbox:
        detail = f"{entry.channel.value} → {entry.target_id} ({entry.reason.value}"
        detail += f", {entry.attempts}×)" if entry.attempts else ")"
        note = " · ".join(x for x in (detail, entry.last_error, entry.note) if x)
        entries.append(TimelineEntry(entry.created_at, "notification", entry.status.value, note=note))
    return sorted(entries, key=lambda e: e.at, reverse=True)


def form_field(form: Mapping[str, object], name: str, size: int) -> str:
    """A form's field as text, stripped and cut to ``size`` characters ("" when missing)."""
    return str(form.get(name, "")).strip()[:size]


def can_acknowledge(incident: Incident) -> bool:
    return incident.status is IncidentStatus.OPEN


def rivers(incidents: list[Incident]) -> list[str]:
    return sorted({i.river for i in incidents})
