"""The outbox half of the incident book: queueing notifications per target, silences, rate limits,
storm summaries, retry with backoff, and the delivery records (pure; time passed in).

Each incident carries its own outbox entries, so persisting the incident persists what it still
owes. A notification id is ``incident:reason:stage``; with the target id it names one delivery,
and queueing the same pair twice is a no-op — that is what makes replays harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from alerts.ratelimit import TokenBucket
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import (
    DeliveryOutcome,
    DeliveryStatus,
    Incident,
    NotificationReason,
    NotificationRecord,
    OutboxEntry,
)

RATE_LIMITED: Final = "rate-limited"
PAGING_REASONS: Final = frozenset({NotificationReason.ESCALATION, NotificationReason.REMINDER})
# Messages that tell a target what the incident is now; the text is written when it is sent.
ANNOUNCEMENTS: Final = frozenset(
    {NotificationReason.OPENED, NotificationReason.REOPENED, NotificationReason.LEVEL_RAISED}
)


class Outbox:
    def __init__(self, routing: RoutingConfig, directory: Directory) -> None:
        self.routing = routing
        self.directory = directory
        self._targets = directory.by_id()
        self._buckets: dict[str, TokenBucket] = {}
        self._sending: set[tuple[str, str]] = set()  # (notification id, target id) handed to the sender

    def use_routing(self, routing: RoutingConfig) -> None:
        if routing.rate_limits != self.routing.rate_limits:
            self._buckets.clear()  # new limits take effect with full buckets
        self.routing = routing

    def claim(self, notification_id: str, target_id: str) -> None:
        """The sender took this delivery: its text is being written, so later news needs its own message."""
        self._sending.add((notification_id, target_id))

    def release(self, notification_id: str, target_id: str) -> None:
        """The sender is done with this delivery (settled, failed or abandoned)."""
        self._sending.discard((notification_id, target_id))

    def queue(
        self,
        incident: Incident,
        reason: NotificationReason,
        stage: int,
        tags: Iterable[str] | None,
        now: datetime,
        records: list[NotificationRecord],
    ) -> Incident:
        """Queue one notification for every target the tags select (default: everyone paged so far).

        Silenced or rate-limited deliveries are kept as ``suppressed`` entries with a record, so
        nothing disappears without a trace. A level rise is not queued for a target that still
        has an announcement of this incident waiting (e.g. "opened" in the same batch): that one
        is written at send time, at the current level, so the target gets one message instead of
        "升级" before it ever heard of the incident.
        """
        if tags is None:
            tags = self.routing.tags_up_to(incident, incident.escalation_stage)
        notification_id = f"{incident.incident_id}:{reason.value}:{stage}"
        existing = {(e.notification_id, e.target_id) for e in incident.outbox}
        station = incident.latest_detection.station_id if incident.latest_detection else None
        silence = self.routing.silence_for(station=station, river=incident.river, at=now)
        new: list[OutboxEntry] = []
        waiting = self._waiting_announcements(incident) if reason is NotificationReason.LEVEL_RAISED else set()
        for target in self.directory.select(tags):
            if (notification_id, target.target_id) in existing or target.target_id in waiting:
                continue
            entry = OutboxEntry(
                notification_id=notification_id,
                target_id=target.target_id,
                channel=target.channel,
                reason=reason,
                stage=stage,
                created_at=now,
                next_attempt_at=now,
            )
            if silence is not None:
                entry = entry.suppressed(silence.describe())
            elif not self._bucket(target).take(now):
                entry = entry.suppressed(RATE_LIMITED)
            new.append(entry)
        updated = incident.evolve(
            outbox=(*incident.outbox, *new),
            silenced_by=silence.describe() if silence else "",
            last_notified_at=now if new else incident.last_notified_at,
        )
        records.extend(
            self.record(updated, e, DeliveryOutcome.SUPPRESSED, now, error=e.note)
            for e in new
            if e.status is DeliveryStatus.SUPPRESSED
        )
        return updated

    def _waiting_announcements(self, incident: Incident) -> set[str]:
        """Targets with an announcement of ``incident`` pending and not yet taken by the sender."""
        return {
            e.target_id
            for e in incident.outbox
            if e.reason in ANNOUNCEMENTS
            and e.status is DeliveryStatus.PENDING
            and (e.notification_id, e.target_id) not in self._sending
        }

    def cancel_paging(self, incident: Incident, why: str) -> tuple[OutboxEntry, ...]:
        """The outbox with pending escalations and reminders suppressed (acknowledged or resolved)."""
        return tuple(
            e.suppressed(why)
            if e.status is DeliveryStatus.PENDING and e.reason in PAGING_REASONS
            else e
            for e in incident.outbox
        )

    def settle(
        self, incident: Incident, notification_id: str, target_id: str, *, ok: bool, error: str, now: datetime,
        title: str,
    ) -> tuple[Incident, NotificationRecord] | None:
        """Apply one send's outcome: sent, or failed and due again after a backoff, or given up.

        None when there is nothing to settle (a late result for an entry acknowledged meanwhile).
        """
        retry = self.routing.retry
        entries = list(incident.outbox)
        for n, entry in enumerate(entries):
            if entry.notification_id != notification_id or entry.target_id != target_id:
                continue
            if entry.status is not DeliveryStatus.PENDING:
                return None
            attempts = entry.attempts + 1
            if ok:
                status, outcome, next_at = DeliveryStatus.SENT, DeliveryOutcome.SENT, entry.next_attempt_at
            elif attempts >= retry.max_attempts:
                status, outcome, next_at = DeliveryStatus.GAVE_UP, DeliveryOutcome.GAVE_UP, entry.next_attempt_at
            else:
                status, outcome, next_at = DeliveryStatus.PENDING, DeliveryOutcome.FAILED, now + retry.delay(attempts)
            entries[n] = entry.evolve(status=status, attempts=attempts, next_attempt_at=next_at, last_error=error)
            updated = incident.evolve(
                outbox=tuple(entries), updated_at=now, last_notified_at=now if ok else incident.last_notified_at
            )
            return updated, self.record(updated, entries[n], outcome, now, error=error, title=title)
        return None

    def summarise(self, incidents: Mapping[str, Incident], now: datetime) -> dict[str, Incident]:
        """For every target whose bucket has a token again, one summary of what it missed.

        Returns the incidents that changed (the held-back entries are marked as summarised; the
        summary itself rides on the incident of the latest held-back notification).
        """
        held: dict[str, list[tuple[str, OutboxEntry]]] = {}
        for incident in incidents.values():
            for entry in incident.outbox:
                if entry.status is DeliveryStatus.SUPPRESSED and entry.note == RATE_LIMITED:
                    held.setdefault(entry.target_id, []).append((incident.incident_id, entry))
        changed: dict[str, Incident] = {}

        def current(incident_id: str) -> Incident:
            return changed.get(incident_id) or incidents[incident_id]

        for target_id, items in held.items():
            target = self._targets.get(target_id)
            if target is None or not self._bucket(target).take(now):
                continue
            carrier = current(max(items, key=lambda ie: ie[1].created_at)[0])
            number = sum(1 for e in carrier.outbox if e.reason is NotificationReason.SUMMARY
                         and e.target_id == target_id) + 1
            summary_id = f"{carrier.incident_id}:{NotificationReason.SUMMARY.value}:{number}"
            incident_ids = sorted({incident_id for incident_id, _ in items})
            for incident_id in incident_ids:
                incident = current(incident_id)
                marked = tuple(
                    e.evolve(note=f"{RATE_LIMITED}, summarised in {summary_id}")
                    if e.target_id == target_id and e.status is DeliveryStatus.SUPPRESSED and e.note == RATE_LIMITED
                    else e
                    for e in incident.outbox
                )
                changed[incident_id] = incident.evolve(outbox=marked)
            carrier = current(carrier.incident_id)
            entry = OutboxEntry(
                notification_id=summary_id,
                target_id=target_id,
                channel=target.channel,
                reason=NotificationReason.SUMMARY,
                stage=number,
                created_at=now,
                next_attempt_at=now,
                note=f"{len(items)}: " + ", ".join(incident_ids),  # count: incidents (messages word it)
            )
            changed[carrier.incident_id] = carrier.evolve(outbox=(*carrier.outbox, entry))
        return changed

    def record(
        self, incident: Incident, entry: OutboxEntry, outcome: DeliveryOutcome, now: datetime, *, error: str = "",
        title: str = "",
    ) -> NotificationRecord:
        target = self._targets.get(entry.target_id)
        return NotificationRecord(
            record_id=f"{entry.notification_id}@{entry.target_id}#{entry.attempts}",
            notification_id=entry.notification_id,
            incident_id=incident.incident_id,
            target_id=entry.target_id,
            target=target.redacted if target else entry.target_id,
            channel=entry.channel,
            reason=entry.reason,
            level=incident.level,
            river=incident.river,
            attempt=entry.attempts,
            outcome=outcome,
            at=now,
            error=error,
            title=title,
        )

    def _bucket(self, target: Target) -> TokenBucket:
        bucket = self._buckets.get(target.target_id)
        if bucket is None:
            limit = self.routing.rate_limit(target.channel)
            bucket = self._buckets[target.target_id] = TokenBucket(limit.burst, limit.per_hour / 3600)
        return bucket
