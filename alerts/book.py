"""The incident book: the pure state machine of the alert service (no I/O, time passed in).

Fed detections (:meth:`IncidentBook.observe`), clock ticks (:meth:`tick`), operator actions
(:meth:`acknowledge`, :meth:`resolve`) and delivery results (:meth:`record_attempt`), it returns
:class:`Effects`: incidents whose new state must be persisted (each carries its outbox — the
notifications it still owes) and delivery records. The shell persists, sends and feeds back.
Queueing, rate limits and retries live in :mod:`alerts.outbox`, silences in :mod:`alerts.silences`.

Two clocks: ``now`` is processing time (when the service handles something); a detection's
``time`` is its reading (event) time. An incident records both (``opened_at``/``updated_at`` and
``first_reading_at``/``reading_at``), and so does every notification, so a message sent after a
backlog can say which reading it speaks of and how late it is.

For the console (operator actions, all pure like the rest): :meth:`IncidentBook.acknowledge`,
:meth:`~IncidentBook.resolve` with a :class:`~riverguard.incidents.Verdict`,
:meth:`~IncidentBook.tick_action` (the playbook checklist), and runtime silences
(:meth:`~IncidentBook.add_silence`, :meth:`~IncidentBook.expire_silence`,
:meth:`~IncidentBook.silences`, :meth:`~IncidentBook.restore_silences`); silences to persist come
back in :attr:`Effects.silences`.

Grouping (which incident a detection belongs to) is :mod:`alerts.grouping`: per river reach and
pollutant on the pollution route, per station on the maintenance route.

While an incident with that key is active, detections update it (peak, stations, level only ever
rises). Lifecycle: open → acknowledged → resolved. It resolves by itself once every detector event
has cleared and ``resolve_after`` passed, or after twice that with no detection at all; a return
within ``reopen_within`` of the resolution reopens the same incident (same id, paging restarts).
Incident ids derive from the first detector event id, so a replay lands on the same incident, and
notification ids derive from the incident id, so a replay never queues a notification twice.

Intakes: the incident follows the plume front (its most downstream station) and takes the
intakes ahead from that station's playbook (:mod:`alerts.intakes`); the level counts the next
intake the plume has not passed, never one behind it. Every tick re-assesses that with the time
passed, so a plume that comes within 2 h of an intake with no new detection turns the incident
red and announces it just as a detection would; a tick only ever raises. A level that rises
while the target's opening message is still waiting to be sent is not announced twice: that
message is written at send time, at the current level (see :meth:`alerts.outbox.Outbox.queue`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.grouping import Context, incident_id_for, incident_key, main_pollutant, route_of
from alerts.intakes import follow_front, incident_time, nearest_fields, next_intake, outlook
from alerts.outbox import Outbox
from alerts.ratelimit import Lane, lane_of
from alerts.routing import RoutingConfig
from alerts.silences import Silences, holds
from alerts.targets import Directory
from riverguard.incidents import (
    ActionTick,
    DeliveryOutcome,
    DeliveryStatus,
    Incident,
    IncidentKey,
    IncidentStatus,
    NotificationReason,
    NotificationRecord,
    OutboxEntry,
    PollutionKey,
    Route,
    Silence,
    SilenceRecord,
    Verdict,
    WarningLevel,
    evolved,
)
from riverguard.models import Detection, DetectionPhase

from .errors import IncidentStateError, UnknownIncidentError

__all__ = ["Context", "Effects", "IncidentBook", "incident_id_for", "main_pollutant"]  # grouping's, as before



@dataclass
class Effects:
    """What a call changed: incidents to persist (latest state), delivery records to write and
    runtime silences to persist (latest state, key = silence id)."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    records: list[NotificationRecord] = field(default_factory=list)
    silences: dict[str, SilenceRecord] = field(default_factory=dict)

    def merge(self, other: Effects) -> Effects:
        self.incidents.update(other.incidents)
        self.records.extend(other.records)
        self.silences.update(other.silences)
        return self


class IncidentBook:
    def __init__(self, routing: RoutingConfig, directory: Directory) -> None:
        self.routing = routing
        self.directory = directory
        self._silences = Silences(routing)
        self.outbox = Outbox(routing, directory, self._silences)
        self._incidents: dict[str, Incident] = {}
        self._by_key: dict[IncidentKey, str] = {}

    def use_routing(self, routing: RoutingConfig) -> None:
        """Swap in an edited routing file (new silences, routes, timings) without losing state."""
        self.routing = routing
        self._silences.use_routing(routing)
        self.outbox.use_routing(routing)

    # -- reading --------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident:
        incident = self._incidents.get(incident_id)
        if incident is None:
            raise UnknownIncidentError(incident_id)
        return incident

    def incidents(self) -> list[Incident]:
        return sorted(self._incidents.values(), key=lambda i: i.opened_at, reverse=True)

    def due(self, now: datetime) -> list[tuple[Incident, OutboxEntry]]:
        """Pending deliveries whose time has come: the urgent lane first (a target's queue of maintenance
        messages must not delay a pollution page), then the most severe, then the oldest."""
        out = [
            (i, e)
            for i in self._incidents.values()
            for e in i.outbox
            if e.status is DeliveryStatus.PENDING and e.next_attempt_at <= now
        ]
        return sorted(out, key=lambda ie: (lane_of(ie[0], ie[1].reason) is not Lane.URGENT, -ie[0].level.rank,
                                           ie[1].next_attempt_at))

    def claim(self, notification_id: str, target_id: str) -> None:
        """The shell started sending this delivery (from :meth:`due`); call :meth:`release` when done."""
        self.outbox.claim(notification_id, target_id)

    def release(self, notification_id: str, target_id: str) -> None:
        self.outbox.release(notification_id, target_id)

    def restore(self, incidents: Iterable[Incident]) -> None:
        """Load persisted state (the compacted incidents topic) before processing anything."""
        for incident in sorted(incidents, key=lambda i: i.updated_at):
            self._put(incident)

    # -- inputs ---------------------------------------------------------------------------

    def observe(self, detection: Detection, context: Context, now: datetime) -> Effects:
        """Open, update, reopen or close the incident this detection belongs to."""
        # a maintenance window is about when the water was measured, not when we hear of it
        silence = self._silences.for_detection(station=detection.station_id, river=detection.river, at=detection.time)
        route = route_of(detection, in_maintenance_window=silence is not None and silence.silence.kind == "maintenance")
        pollutant, value, multiple, unit = main_pollutant(detection)
        key = incident_key(route, detection, context, pollutant)
        current = self._incidents.get(self._by_key.get(key, ""))
        if (current is None or not current.is_active) and isinstance(key, PollutionKey):
            current = self._upstream_incident(key, context) or current
        if detection.phase is DetectionPhase.CLEARED:
            # by event id first: a clear may carry fewer findings than its onset (so another key)
            current = next(
                (i for i in self._incidents.values() if i.is_active and detection.event_id in i.active_events), current
            )
            if current is None or not current.is_active:
                return Effects()  # the clear of an event we already closed (or never saw open)
            return self._clear(current, detection, now)
        effects = Effects()
        if current is None or not current.is_active:
            candidate_id = incident_id_for(detection.event_id)
            same_event = self._incidents.get(candidate_id)  # the event that opened one came back
            window = self.routing.lifecycle.reopen_within
            if same_event is not None:
                current = self._reopen(same_event, now, effects)
            elif current is not None and current.resolved_at is not None and now - current.resolved_at <= window:
                current = self._reopen(current, now, effects)
            else:
                current = self._open(candidate_id, key, detection, pollutant, unit, now)
        updated = self._update(current, detection, context, value, multiple, now, effects)
        self._put(updated)
        effects.incidents[updated.incident_id] = updated
        return effects

    def tick(self, now: datetime) -> Effects:
        """Follow the plume past intakes, raise the level as it nears one, escalate, remind, auto-resolve,
        summarise rate-limited notifications and queue the daily maintenance digest."""
        effects = Effects()
        for incident in self.outbox.summarise(self._incidents, now).values():  # held back goes out first
            self._put(incident)
            effects.incidents[incident.incident_id] = incident
        digest = self.outbox.queue_digest(self._incidents, now, effects.records)
        if digest is not None:
            self._put(digest)
            effects.incidents[digest.incident_id] = digest
        for incident in list(self._incidents.values()):
            if incident.is_active:
                moved = next_intake(incident, now)
                current = moved or incident
                changed = self._auto_resolve(current, now, effects)
                if changed is None:  # an incident that ends on this tick is not raised on it too
                    raised = self._reassess(current, now, effects)
                    changed = self._page(raised or current, now, effects) or raised or moved
                if changed is not None:
                    self._put(changed)
                    effects.incidents[changed.incident_id] = changed
        return effects

    def acknowledge(self, incident_id: str, by: str, now: datetime, note: str = "") -> Effects:
        incident = self.get(incident_id)
        if incident.status is IncidentStatus.RESOLVED:
            raise IncidentStateError(f"incident {incident_id} is resolved; nothing to acknowledge")
        if incident.status is IncidentStatus.ACKNOWLEDGED:
            return Effects()
        outbox = self.outbox.cancel_paging(incident, f"acknowledged by {by}")
        acked = incident.evolve(
            status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by, updated_at=now, outbox=outbox
        ).with_event(now, "acknowledged", by, note)
        self._put(acked)
        return Effects({acked.incident_id: acked})

    def resolve(
        self, incident_id: str, by: str, now: datetime, note: str = "", verdict: Verdict | None = None
    ) -> Effects:
        """Resolve by hand; ``verdict`` says what it was (and may be given again to an already resolved one)."""
        incident = self.get(incident_id)
        effects = Effects()
        if incident.status is IncidentStatus.RESOLVED:
            if verdict is None or verdict is incident.verdict:
                return effects
            judged = incident.evolve(verdict=verdict, updated_at=now).with_event(now, "verdict", by, verdict.value)
        else:
            judged = self._resolved(incident.evolve(verdict=verdict), now, by, note, effects)
        self._put(judged)
        effects.incidents[judged.incident_id] = judged
        return effects

    def tick_action(self, incident_id: str, action_id: str, by: str, now: datetime, *, done: bool = True) -> Effects:
        """Tick (or untick) one action of the incident's playbook checklist: who, when, per action id."""
        incident = self.get(incident_id)
        current = next((t for t in incident.checklist if t.action_id == action_id), None)
        if current is not None and current.done is done:
            return Effects()
        tick = ActionTick(action_id=action_id, done=done, by=by, at=now)
        checklist = (*(t for t in incident.checklist if t.action_id != action_id), tick)
        what = "action_done" if done else "action_undone"
        updated = incident.evolve(checklist=checklist, updated_at=now).with_event(now, what, by, action_id)
        self._put(updated)
        return Effects({updated.incident_id: updated})

    # -- silences: the routing file's and the console's --------------------------------------

    def silences(self, now: datetime) -> list[SilenceRecord]:
        """Silences in force now or later: the routing file's (``routing:N``) and runtime ones."""
        return self._silences.active(now)

    def silence(self, silence_id: str) -> SilenceRecord:
        return self._silences.get(silence_id)

    def restore_silences(self, records: Iterable[SilenceRecord]) -> None:
        """Load the runtime silences persisted before (their latest records)."""
        self._silences.restore(records)

    def add_silence(self, silence: Silence, by: str, now: datetime) -> tuple[SilenceRecord, Effects]:
        """Mute (or, kind ``maintenance``, reroute to maintenance) from now on. What the incidents
        it covers still owe is held back now, each with a delivery record, and they show the silence."""
        record = self._silences.add(silence, by, now)
        effects = Effects(silences={record.silence_id: record})
        for incident in list(self._incidents.values()):
            if not incident.is_active or incident.silence_id == record.silence_id or not holds(record, incident, now):
                continue
            held = incident.evolve(
                outbox=self.outbox.hold_back(incident, record.describe()), silenced_by=record.describe(),
                silence_id=record.silence_id, updated_at=now,
            ).with_event(now, "silenced", by, record.silence_id)
            effects.records.extend(
                self.outbox.record(held, after, DeliveryOutcome.SUPPRESSED, now, error=after.note)
                for before, after in zip(incident.outbox, held.outbox, strict=True)
                if before.status is not after.status
            )
            self._put(held)
            effects.incidents[held.incident_id] = held
        return record, effects

    def expire_silence(self, silence_id: str, by: str, now: datetime) -> Effects:
        """End a runtime silence now; the incidents it held show it no more (what it held back stays recorded)."""
        record = self._silences.expire(silence_id, by, now)
        effects = Effects(silences={record.silence_id: record})
        for incident in list(self._incidents.values()):
            if incident.silence_id == silence_id:
                freed = incident.evolve(silenced_by="", silence_id="", updated_at=now).with_event(
                    now, "unsilenced", by, silence_id
                )
                self._put(freed)
                effects.incidents[freed.incident_id] = freed
        return effects

    def record_attempt(
        self, incident_id: str, notification_id: str, target_id: str, *, ok: bool, error: str, now: datetime,
        title: str, retry: bool = True,
    ) -> Effects:
        """The outcome of one send: sent, or failed and retried with backoff, or given up (at once
        when ``retry`` is False: the gateway refused for good, e.g. an unapproved template)."""
        incident = self.get(incident_id)
        if not any(e.notification_id == notification_id and e.target_id == target_id for e in incident.outbox):
            raise UnknownIncidentError(f"{incident_id} has no notification {notification_id} for {target_id}")
        settled = self.outbox.settle(
            incident, notification_id, target_id, ok=ok, error=error, now=now, title=title, retry=retry
        )
        if settled is None:
            return Effects()  # a late result for something already settled (e.g. acknowledged)
        updated, record = settled
        self._put(updated)
        return Effects({updated.incident_id: updated}, [record])

    # -- internals ------------------------------------------------------------------------

    def _put(self, incident: Incident) -> None:
        self._incidents[incident.incident_id] = incident
        latest = self._incidents.get(self._by_key.get(incident.key, ""))
        if latest is None or latest.incident_id == incident.incident_id or not latest.is_active:
            self._by_key[incident.key] = incident.incident_id

    def _upstream_incident(self, key: PollutionKey, context: Context) -> Incident | None:
        """The active incident of the same river, pollutant and kind group on a reach upstream."""
        for reach in reversed(context.upstream_reaches):  # nearest reach first
            found = self._incidents.get(self._by_key.get(key.on_reach(reach), ""))
            if found is not None and found.is_active:
                return found
        return None

    def _open(
        self, incident_id: str, key: IncidentKey, d: Detection, pollutant: str, unit: str, now: datetime
    ) -> Incident:
        incident = Incident(
            incident_id=incident_id,
            key=key,
            route=key.route,
            river=d.river,
            reach=key.reach if isinstance(key, PollutionKey) else d.station_id,
            pollutant=pollutant,
            kind=d.kind,
            level=WarningLevel.BLUE,
            opened_at=now,
            updated_at=now,
            last_active_at=now,
            paging_since=now,
            first_station=d.station_id,
            first_reading_at=d.time,
            unit=unit,
        )
        return incident.with_event(now, "opened", note=f"{d.station_id} {d.kind.value} ({d.detector})")

    def _reopen(self, incident: Incident, now: datetime, effects: Effects) -> Incident:
        if incident.is_active:
            return incident
        reopened = incident.evolve(
            status=IncidentStatus.OPEN,
            resolved_at=None,
            resolved_by="",
            acknowledged_at=None,
            acknowledged_by="",
            reopen_count=incident.reopen_count + 1,
            paging_since=now,
            escalation_stage=0,
            reminders_sent=0,
            normal_since=None,
            active_events=(),
            # a new episode: the old plume's intake windows would pass for this one's
            intakes=(),
            front_km=None,
            nearest_intake="",
            intake_arrival_at=None,
        ).with_event(now, "reopened")
        reason, stage = NotificationReason.REOPENED, reopened.reopen_count
        return self.outbox.queue(reopened, reason, stage, None, now, effects.records)

    def _update(
        self,
        incident: Incident,
        d: Detection,
        context: Context,
        value: float | None,
        multiple: float | None,
        now: datetime,
        effects: Effects,
    ) -> Incident:
        is_new = incident.detection_count == 0
        peak_multiple = _max(incident.peak_multiple, multiple)
        peak_value = _max(incident.peak_value, value)
        intakes, front_km = incident.intakes, incident.front_km
        if context.intakes and context.station_km is not None:
            intakes, front_km = follow_front(intakes, front_km, context.intakes, context.station_km)
        ahead = outlook(intakes, d.time) if intakes else None  # the incident's clock is at d.time now
        stations = incident.stations if d.station_id in incident.stations else (*incident.stations, d.station_id)
        cities = incident.cities
        if context.city and context.city not in cities:
            cities = (*cities, context.city)
        events = incident.active_events
        if d.event_id not in events:
            events = (*events, d.event_id)
        parameters = tuple(dict.fromkeys((*incident.parameters, *(f.parameter for f in d.findings))))
        kinds = incident.kinds if d.kind in incident.kinds else (*incident.kinds, d.kind)
        level, reasons = self.routing.severity.of_incident(
            incident.route, incident.pollutant, peak_multiple, context.pollutant_class, ahead
        )
        raised = level.rank > incident.level.rank
        updated = incident.evolve(
            updated_at=now,
            last_active_at=now,
            normal_since=None,
            stations=stations,
            cities=cities,
            active_events=events[-20:],
            parameters=parameters,
            kinds=kinds,
            reading_at=d.time if incident.reading_at is None else max(incident.reading_at, d.time),
            detection_count=incident.detection_count + 1,
            peak_value=peak_value,
            peak_multiple=peak_multiple,
            playbook_tags=tuple(dict.fromkeys((*incident.playbook_tags, *context.playbook_tags))),
            intakes=intakes,
            front_km=front_km,
            **nearest_fields(incident, intakes, ahead),
            level=level if raised or is_new else incident.level,
            # the current case for the level (e.g. the next intake); a lower one keeps what raised it
            level_reasons=reasons if is_new or level.rank >= incident.level.rank else incident.level_reasons,
            latest_detection=evolved(d, readings=()),
        )
        if d.station_id not in incident.stations and incident.stations:
            updated = updated.with_event(now, "updated", note=f"plume reached {d.station_id}")
        new_trouble = [*(p for p in parameters if p not in incident.parameters),
                       *(k for k in kinds if k not in incident.kinds)]
        if incident.route is Route.MAINTENANCE and not is_new and new_trouble:
            updated = updated.with_event(now, "updated", note=f"also {', '.join(new_trouble)}")
        if is_new:
            return self.outbox.queue(updated, NotificationReason.OPENED, 0, None, now, effects.records)
        if raised:
            return self._announce_rise(updated, incident.level, now, effects)
        return updated

    def _reassess(self, incident: Incident, now: datetime, effects: Effects) -> Incident | None:
        """The incident one or two levels up once time alone has brought its plume near an intake.

        Only ever raises: lowering stays with detections and resolution, so a tick never takes back
        a warning people already acted on. The class is the parameter registry's (the service never
        overrides it); the multiple is the incident's peak, as for a detection.
        """
        if incident.route is not Route.POLLUTION or not incident.intakes:
            return None
        ahead = outlook(incident.intakes, incident_time(incident, now))
        if ahead is None:
            return None
        level, reasons = self.routing.severity.of_incident(
            incident.route, incident.pollutant, incident.peak_multiple, None, ahead
        )
        if level.rank <= incident.level.rank:
            return None
        updated = incident.evolve(level=level, level_reasons=reasons, updated_at=now)
        return self._announce_rise(updated, incident.level, now, effects)

    def _announce_rise(self, updated: Incident, was: WarningLevel, now: datetime, effects: Effects) -> Incident:
        """Record the rise and queue ``level_raised`` (one id per level: a replay queues nothing twice).

        An acknowledged incident is told too — acknowledging stops paging, not news of a worse level.
        """
        level = updated.level
        updated = updated.with_event(now, "level_raised", note=f"{was.value} → {level.value}")
        return self.outbox.queue(updated, NotificationReason.LEVEL_RAISED, level.rank, None, now, effects.records)

    def _clear(self, incident: Incident, d: Detection, now: datetime) -> Effects:
        events = tuple(e for e in incident.active_events if e != d.event_id)
        normal_since = incident.normal_since if events else incident.normal_since or now
        updated = incident.evolve(active_events=events, updated_at=now, normal_since=normal_since)
        self._put(updated)
        return Effects({updated.incident_id: updated})

    def _auto_resolve(self, incident: Incident, now: datetime, effects: Effects) -> Incident | None:
        after = self.routing.lifecycle.resolve_after
        normal_since = incident.normal_since
        cleared = normal_since is not None and not incident.active_events and now - normal_since >= after
        # A broken probe can stay broken for days without a new detection: an instrument's incident
        # ends when all its faults cleared (or by hand), so it stays in view (and in the digest).
        silent = incident.route is Route.POLLUTION and now - incident.last_active_at >= 2 * after
        if not (cleared or silent):
            return None
        why = "back to normal" if cleared else "no detections"
        return self._resolved(incident, now, "riverguard", f"auto-resolved: {why} for {after}", effects)

    def _resolved(self, incident: Incident, now: datetime, by: str, note: str, effects: Effects) -> Incident:
        outbox = self.outbox.cancel_paging(incident, "resolved")
        resolved = incident.evolve(
            status=IncidentStatus.RESOLVED, resolved_at=now, resolved_by=by, updated_at=now, outbox=outbox
        ).with_event(now, "resolved", by, note)
        reason, stage = NotificationReason.RESOLVED, resolved.reopen_count
        return self.outbox.queue(resolved, reason, stage, None, now, effects.records)

    def _page(self, incident: Incident, now: datetime, effects: Effects) -> Incident | None:
        esc = self.routing.escalation
        if incident.status is not IncidentStatus.OPEN or incident.level.rank < esc.min_level.rank:
            return None
        since = incident.paging_since or incident.opened_at
        stage = incident.escalation_stage
        if stage < len(esc.stages) and now - since >= timedelta(minutes=esc.stages[stage].after_min):
            stage += 1
            updated = incident.evolve(escalation_stage=stage, updated_at=now).with_event(
                now, "escalated", note=f"stage {stage}: {', '.join(esc.stages[stage - 1].notify)}"
            )
            tags = esc.stages[stage - 1].notify
            return self.outbox.queue(updated, NotificationReason.ESCALATION, stage, tags, now, effects.records)
        last = incident.last_notified_at or since
        if (
            esc.reminder_every_min is not None
            and incident.reminders_sent < esc.max_reminders
            and now - last >= timedelta(minutes=esc.reminder_every_min)
        ):
            n = incident.reminders_sent + 1
            updated = incident.evolve(reminders_sent=n, updated_at=now)
            return self.outbox.queue(updated, NotificationReason.REMINDER, n, None, now, effects.records)
        return None


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
