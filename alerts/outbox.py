"""The outbox half of the incident book: queueing notifications per target, silences, rate limits
with priority lanes, storm summaries, the daily digest, retry with backoff, and the delivery
records (pure; time passed in).

Each incident carries its own outbox entries, so persisting the incident persists what it still
owes. A notification id is ``incident:reason:stage``; with the target id it names one delivery,
and queueing the same pair twice is a no-op — that is what makes replays harmless.

A summary speaks for one route on one target: what the rate limit held back, most severe first
(:func:`~alerts.ratelimit.most_severe_first`); it rides on the incident of its most severe entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final

from alerts.intakes import CHINA
from alerts.ratelimit import Limiter, lane_of, most_severe_first
from alerts.routing import RoutingConfig
from alerts.silences import Silences
from alerts.targets import Directory
from riverguard.incidents import (
    Covered,
    DeliveryOutcome,
    DeliveryStatus,
    Incident,
    NotificationReason,
    NotificationRecord,
    OutboxEntry,
    Route,
)

RATE_LIMITED: Final = "rate-limited"
PAGING_REASONS: Final = frozenset({NotificationReason.ESCALATION, NotificationReason.REMINDER})
# Messages that tell a target what the incident is now; the text is written when it is sent.
ANNOUNCEMENTS: Final = frozenset(
    {NotificationReason.OPENED, NotificationReason.REOPENED, NotificationReason.LEVEL_RAISED}
)


def covered(incident: Incident, held: int = 0) -> Covered:
    """What a summary or digest says of ``incident``."""
    station = incident.stations[-1] if incident.stations else incident.first_station
    return Covered(
        incident_id=incident.incident_id, route=incident.route, level=incident.level, status=incident.status,
        river=incident.river, station=station, subject=incident.parameters or (incident.pollutant,),
        kinds=incident.kinds or (incident.kind,), held=held, opened_at=incident.opened_at,
    )


def digest_covers(incidents: Iterable[Incident], since: datetime, window: timedelta = timedelta(days=1)) -> tuple[
    Covered, ...
]:
    """The maintenance incidents a digest due at ``since`` lists: opened before it and not resolved
    before the ``window`` that ends there."""
    start = since - window
    return most_severe_first(
        covered(i)
        for i in incidents
        if i.route is Route.MAINTENANCE and i.opened_at < since and (i.resolved_at is None or i.resolved_at >= start)
    )


class Outbox:
    def __init__(self, routing: RoutingConfig, directory: Directory, silences: Silences) -> None:
        self.routing = routing
        self.directory = directory
        self.silences = silences
        self.limiter = Limiter(routing)
        self._targets = directory.by_id()
        self._sending: set[tuple[str, str]] = set()  # (notification id, target id) handed to the sender
        self._digest_days: set[int] | None = None  # days a digest was queued for (found on first use)

    def use_routing(self, routing: RoutingConfig) -> None:
        self.limiter.use_routing(routing)
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
        covers: tuple[Covered, ...] = (),
    ) -> Incident:
        """Queue one notification for every target the tags select (default: everyone paged so far).

        Silenced or rate-limited deliveries are kept as ``suppressed`` entries with a record, so
        nothing disappears without a trace; only a routine one is ever rate-limited (see
        :mod:`alerts.ratelimit`). A level rise is not queued for a target that still has an
        announcement of this incident waiting (e.g. "opened" in the same batch): that one is written
        at send time, at the current level, so the target gets one message instead of "升级" before
        it ever heard of the incident.
        """
        if tags is None:
            tags = self.routing.tags_up_to(incident, incident.escalation_stage)
        notification_id = f"{incident.incident_id}:{reason.value}:{stage}"
        existing = {(e.notification_id, e.target_id) for e in incident.outbox}
        silence = self.silences.for_incident(incident, now)
        lane = lane_of(incident, reason)
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
                reading_at=incident.reading_at,
                covers=covers,
            )
            if silence is not None:
                entry = entry.suppressed(silence.describe())
            elif not self.limiter.admit(target, incident.route, lane, now):
                entry = entry.suppressed(RATE_LIMITED)
            new.append(entry)
        updated = incident.evolve(
            outbox=(*incident.outbox, *new),
            silenced_by=silence.describe() if silence else "",
            silence_id=silence.silence_id if silence else "",
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
            e.suppressed(why) if e.status is DeliveryStatus.PENDING and e.reason in PAGING_REASONS else e
            for e in incident.outbox
        )

    def queue_digest(
        self, incidents: Mapping[str, Incident], now: datetime, records: list[NotificationRecord]
    ) -> Incident | None:
        """Once a day, the maintenance route's incidents for the operations team (``digest:`` in the
        routing file); the incident that carries it, when one was queued."""
        digest = self.routing.digest
        if digest is None:
            return None
        since = digest.due_since(now)
        day = int(since.astimezone(CHINA).strftime("%Y%m%d"))
        if self._digest_days is None:  # after a restart: the digests the restored outboxes hold
            self._digest_days = {
                e.stage for i in incidents.values() for e in i.outbox if e.reason is NotificationReason.DIGEST
            }
        if day in self._digest_days:
            return None
        self._digest_days.add(day)
        covers = digest_covers(incidents.values(), since)
        if not covers:
            return None
        carrier = incidents[max(covers, key=lambda c: c.opened_at).incident_id]
        return self.queue(carrier, NotificationReason.DIGEST, day, digest.notify, now, records, covers)

    def hold_back(self, incident: Incident, why: str) -> tuple[OutboxEntry, ...]:
        """The outbox with everything still pending suppressed (a silence set now); what the sender
        has taken already is past holding back and settles as it goes."""
        return tuple(
            e.suppressed(why)
            if e.status is DeliveryStatus.PENDING and (e.notification_id, e.target_id) not in self._sending
            else e
            for e in incident.outbox
        )

    def settle(
        self, incident: Incident, notification_id: str, target_id: str, *, ok: bool, error: str, now: datetime,
        title: str, retry: bool = True,
    ) -> tuple[Incident, NotificationRecord] | None:
        """Apply one send's outcome: sent, or failed and due again after a backoff, or given up
        (after the last attempt, or at once when ``retry`` is False: the gateway said trying again
        cannot help).

        None when there is nothing to settle (a late result for an entry acknowledged meanwhile).
        """
        policy = self.routing.retry
        entries = list(incident.outbox)
        for n, entry in enumerate(entries):
            if entry.notification_id != notification_id or entry.target_id != target_id:
                continue
            if entry.status is not DeliveryStatus.PENDING:
                return None
            attempts = entry.attempts + 1
            if ok:
                status, outcome, next_at = DeliveryStatus.SENT, DeliveryOutcome.SENT, entry.next_attempt_at
            elif attempts >= policy.max_attempts or not retry:
                status, outcome, next_at = DeliveryStatus.GAVE_UP, DeliveryOutcome.GAVE_UP, entry.next_attempt_at
            else:
                status, outcome, next_at = DeliveryStatus.PENDING, DeliveryOutcome.FAILED, now + policy.delay(attempts)
            entries[n] = entry.evolve(status=status, attempts=attempts, next_attempt_at=next_at, last_error=error)
            updated = incident.evolve(
                outbox=tuple(entries), updated_at=now, last_notified_at=now if ok else incident.last_notified_at
            )
            return updated, self.record(updated, entries[n], outcome, now, error=error, title=title)
        return None

    def summarise(self, incidents: Mapping[str, Incident], now: datetime) -> dict[str, Incident]:
        """For every target and route whose bucket has a token again, one summary of what it missed.

        Returns the incidents that changed (the held-back entries are marked as summarised; the
        summary rides on the incident of the most severe held-back notification).
        """
        held: dict[tuple[str, Route], dict[str, int]] = {}
        for incident in incidents.values():
            for entry in incident.outbox:
                if entry.status is DeliveryStatus.SUPPRESSED and entry.note == RATE_LIMITED:
                    counts = held.setdefault((entry.target_id, incident.route), {})
                    counts[incident.incident_id] = counts.get(incident.incident_id, 0) + 1
        changed: dict[str, Incident] = {}

        def current(incident_id: str) -> Incident:
            return changed.get(incident_id) or incidents[incident_id]

        for (target_id, route), counts in sorted(held.items()):
            target = self._targets.get(target_id)
            if target is None or not self.limiter.refilled(target, route, now):
                continue
            covers = most_severe_first(covered(current(i), held=n) for i, n in counts.items())
            carrier = current(covers[0].incident_id)
            number = sum(1 for e in carrier.outbox if e.reason is NotificationReason.SUMMARY
                         and e.target_id == target_id) + 1
            summary_id = f"{carrier.incident_id}:{NotificationReason.SUMMARY.value}:{number}"
            for incident_id in counts:
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
                reading_at=max((current(c.incident_id).reading_at or now for c in covers), default=None),
                covers=covers,
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
            reading_at=entry.reading_at,
            route=incident.route,
            covers=tuple(c.incident_id for c in entry.covers),
            error=error,
            title=title,
        )
