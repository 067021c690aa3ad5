"""The alert stage: the imperative shell around :class:`~alerts.book.IncidentBook`, a processor of
the stage runtime (:mod:`riverguard.stage`).

Consumes ``detections``, persists every incident change to the compacted ``incidents`` topic
(key = incident id; each incident carries its outbox) and only then commits the input offsets;
sends what the outbox owes through Apprise, one in-flight send per target so a target that hangs
or stays down never holds up the others; writes a :class:`NotificationRecord` per attempt to
``notifications``. On start (and on every partition assignment) the book is rebuilt from the
incidents topic, so a restart mid-incident resumes escalation and sends nothing twice.

Durability rule: the dispatcher sends only outbox entries already persisted (book changes and
their persisting happen under one lock). The one window left is between Apprise accepting a
message and the "sent" state being acknowledged by Kafka: a crash exactly there resends that one
message (at-least-once, as everywhere in the pipeline).

Run one alert service per deployment: the book covers all rivers, and a second member of the
group would only take over (and restore the book) when the first one leaves.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from apprise import AppriseAttachment
from pydantic import BaseModel, ValidationError

from alerts import GROUP_ID
from alerts.api import IncidentApi
from alerts.book import Context, Effects, IncidentBook
from alerts.delivery import reporting
from alerts.errors import AlertError
from alerts.messages import Message, MessageContext, render
from alerts.playbook_source import NoPlaybooks, PlaybookSource, PlaybookView
from alerts.rivers import river_names_of
from alerts.routing import RoutingConfig, load_routing
from alerts.targets import Directory, Target, load_directory
from riverguard.bus.base import Record, TopicPartition
from riverguard.bus.topics import topic_specs
from riverguard.commands import CommandKind, CommandOutcome, CommandResult
from riverguard.errors import ConfigError, describe_validation_error
from riverguard.incidents import (
    DeliveryStatus,
    Incident,
    IntakeArrival,
    NotificationRecord,
    OutboxEntry,
    Silence,
    SilenceRecord,
    StationReport,
    Verdict,
)
from riverguard.models import DeadLetter, Detection, DetectionPhase, decode, encode
from riverguard.observability import NOTIFICATIONS
from riverguard.settings import Settings
from riverguard.stage import Outgoing, Processor, StageConfig, StageContext
from riverguard.stations import Station, StationRegistry
from riverguard.verdicts import station_verdicts

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PAGE_WAIT_DETECTIONS: Final = 4
#: Playbooks of recent detections kept for their messages (least recently used go first).
PLAYBOOKS_KEPT: Final = 256
M = TypeVar("M", bound=BaseModel)


def _station_report(result: CommandResult) -> list[tuple[str, StationReport]]:
    """The incident's line of a command result, if it belongs to one."""
    if result.incident_id is None:
        return []
    kept = result.kind is CommandKind.RETAIN_SAMPLE and result.outcome is CommandOutcome.EXECUTED
    return [(result.incident_id, StationReport(result_id=result.result_id, station_id=result.station_id,
                                               at=result.at, sample_kept=kept, zh=result.message_zh,
                                               en=result.message_en))]


def system_clock() -> datetime:
    return datetime.now(UTC)


def alert_config(group_id: str = GROUP_ID, *, tick_s: float = 0.5) -> StageConfig:
    """How the alert stage consumes: a commit after every batch (the book is persisted by then),
    and a tick for escalations, reminders, auto-resolution and summaries."""
    return StageConfig(group_id=group_id, tick_s=tick_s)


class AlertService(Processor):
    """The alert stage's processor: detections → the incident book → incidents, notifications, Apprise."""

    stage = "alerts"

    def __init__(
        self,
        settings: Settings,
        registry: StationRegistry,
        *,
        routing: RoutingConfig,
        directory: Directory,
        playbooks: PlaybookSource | None = None,
        clock: Clock = system_clock,
        serve_api: bool = True,
        reload_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.book = IncidentBook(routing, directory)
        self.directory = directory
        self.playbooks: PlaybookSource = playbooks or NoPlaybooks()
        self.clock = clock
        self.serve_api = serve_api
        self.api: IncidentApi | None = None
        #: Builds the duty-officer console mounted on the API at /console (set by pipeline.stages).
        self.console: Callable[[], web.Application] | None = None
        self._stations: dict[str, Station] = registry.by_id
        self._rivers = river_names_of(settings)
        self._targets = directory.by_id()
        self._known_tags: set[str] = set().union(*(t.tags for t in directory.targets))
        self._unknown_tags: set[str] = set()
        self._lock = asyncio.Lock()
        self._unpersisted = False  # a batch changed the book and has not persisted it yet
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._playbook_cache: OrderedDict[str, PlaybookView | None] = OrderedDict()  # by detection id
        self._context: StageContext | None = None
        self._attachments: tempfile.TemporaryDirectory[str] | None = None
        self.reload_s = reload_s
        self._next_reload = 0.0
        routing_file = settings.alerts.routing_file
        self._routing_mtime = routing_file.stat().st_mtime_ns if routing_file and routing_file.exists() else None
        self.ready = asyncio.Event()
        self._stopping = False

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: StationRegistry, *, playbooks: PlaybookSource | None = None, **kwargs: Any
    ) -> AlertService:
        """Load and cross-check the routing file and the Apprise config; raise ConfigError naming the bad entry."""
        if settings.alerts.apprise_config is None:
            raise ConfigError("alerts.apprise_config is not set: the alert service needs an Apprise YAML config file")
        routing = load_routing(settings.alerts.routing_file)
        directory = load_directory(settings.alerts.apprise_config, routing.channels)
        directory.check_tags(routing.all_tags(), str(settings.alerts.apprise_config))
        return cls(settings, registry, routing=routing, directory=directory, playbooks=playbooks, **kwargs)

    # -- the stage runtime's calls ----------------------------------------------------------

    def topics(self) -> Sequence[str]:
        # Beside the detections, what stations did when the HJ 212 gateway told them (超标留样).
        return [self.settings.topics.detections, self.settings.topics.command_results]

    async def start(self, context: StageContext) -> None:
        """Restore the book, serve the API; the runtime then consumes."""
        self._context = context
        self._stopping = False
        self._attachments = tempfile.TemporaryDirectory(prefix="riverguard-alerts-")  # map PNGs for e-mail
        await context.bus.create_topics(topic_specs(self.settings))
        await self.restore()
        if self.serve_api:
            self.api = IncidentApi(self, self.settings.alerts, console=self.console() if self.console else None)
            await self.api.start()
        self._next_reload = asyncio.get_running_loop().time() + self.reload_s
        self.ready.set()

    async def stop(self) -> None:
        try:
            if self.api is not None:
                await self.api.stop()
            await self._drain()
        finally:
            if self._attachments is not None:
                self._attachments.cleanup()
            self._context = None
            self.ready.clear()

    async def assigned(self, partitions: frozenset[TopicPartition]) -> None:
        await self.restore()

    async def handle(self, records: Sequence[Record]) -> Sequence[Outgoing]:
        """Feed a batch of detection records to the book and persist the result (before the commit)."""
        effects = Effects()
        dead: list[Outgoing] = []
        detections: list[Detection] = []
        reports: list[tuple[str, StationReport]] = []
        for record in records:
            if record.value is None:
                continue
            try:
                if record.topic == self.settings.topics.command_results:
                    reports += _station_report(decode(record.value, CommandResult).payload)
                else:
                    detections.append(decode(record.value, Detection).payload)
            except ValidationError as exc:
                dead.append(self._dead_letter(record, describe_validation_error(exc)))
        owed: tuple[str, int] | None = None  # the event that made a page owed, and its detections since
        async with self._lock:  # the book is the batch's until it is persisted (ticks and sends wait)
            for detection in detections:
                # A page waits for the rest of the batch only while the detections are of the event
                # that owes it, and only a few of them (an incident that opens and rises in one batch
                # is then one message): another event's playbook must not hold it back.
                if owed is not None and (detection.event_id != owed[0] or owed[1] >= PAGE_WAIT_DETECTIONS):
                    await self._persist(effects)
                    effects, owed = Effects(), None
                    self._unpersisted = False
                    self._dispatch()
                # A pollution detection's playbook (the plume model) takes a good part of a second:
                # built off the event loop, so the consumer's heartbeats and the sends in flight go on.
                # A clear needs none (the book closes the event without it).
                if _builds_playbook(detection):
                    context = await asyncio.to_thread(self._context_of, detection)
                else:
                    context = self._context_of(detection)
                now = self.clock()
                changed = self.book.observe(detection, context, now)
                self._unpersisted = True
                effects.merge(changed)
                if owed is not None:
                    owed = (owed[0], owed[1] + 1)
                elif _queued(changed, now):
                    owed = (detection.event_id, 0)
            for incident_id, report in reports:
                effects.merge(self.book.record_station_report(incident_id, report, self.clock()))
            await self._persist(effects, dead)
            self._unpersisted = False
        self._dispatch()
        return ()

    async def tick(self) -> Sequence[Outgoing]:
        """Escalations, reminders, auto-resolution, summaries; then send what is due."""
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_reload:
            self.reload_routing()
            self._next_reload = loop.time() + self.reload_s
        async with self._lock:
            await self._persist(self.book.tick(self.clock()))
        self._dispatch()
        return ()

    async def _drain(self, timeout_s: float = 10.0) -> None:
        """Let sends in flight finish and record their outcome: cancelling one that Apprise already
        delivered would resend it after the restart."""
        self._stopping = True
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.warning("stopped with %d sends unfinished after %.0f s; they will be retried on start",
                        len(pending), timeout_s)

    async def restore(self) -> None:
        """Rebuild the book from the compacted incidents and silences topics.

        Read and apply under the book's lock: a change persisted while the topic is being read
        (a send recorded as "sent") would otherwise be overwritten by the older state read
        before it, and the notification sent again.
        """
        assert self._context is not None
        bus = self._context.bus
        topics = self.settings.topics
        async with self._lock:
            records = await bus.read_topics([topics.incidents, topics.silences])
            latest = _latest(records, topics.incidents, Incident)
            silences = _latest(records, topics.silences, SilenceRecord)
            self.book.restore(latest.values())
            self.book.restore_silences(silences.values())
        active = sum(1 for i in latest.values() if i.is_active)
        log.info("restored %d incidents (%d active) from %s and %d runtime silences from %s", len(latest), active,
                 topics.incidents, len(silences), topics.silences)

    def reload_routing(self) -> bool:
        """Apply an edited routing file (e.g. a new maintenance window); a bad edit keeps the old one."""
        path = self.settings.alerts.routing_file
        if path is None:
            return False
        try:
            mtime = path.stat().st_mtime_ns
        except OSError as exc:
            log.error("cannot check routing file %s (%s); keeping the routing loaded before", path, exc.strerror)
            return False
        if mtime == self._routing_mtime:
            return False
        self._routing_mtime = mtime
        try:
            routing = load_routing(path)
            self.directory.check_tags(routing.all_tags(), str(self.settings.alerts.apprise_config))
        except ConfigError as exc:
            log.error("%s; keeping the routing loaded before — fix the file and save it again", exc)
            return False
        self.book.use_routing(routing)
        log.info("routing file %s reloaded: %d routes, %d silences", path, len(routing.routes), len(routing.silences))
        return True

    # -- operator actions (HTTP API and CLI) ----------------------------------------------

    def owes(self, now: datetime) -> bool:
        """True while a notification is due by ``now`` and not yet sent or given up."""
        return bool(self.book.due(now))

    def incident(self, incident_id: str) -> Incident:
        return self.book.get(incident_id)

    def all_incidents(self) -> list[Incident]:
        return self.book.incidents()

    async def acknowledge(self, incident_id: str, by: str, note: str = "") -> Incident:
        async with self._lock:
            effects = self.book.acknowledge(incident_id, by, self.clock(), note)
            await self._persist(effects)
            log.info("incident %s acknowledged by %s", incident_id, by)
            return self.book.get(incident_id)

    async def resolve(self, incident_id: str, by: str, note: str = "", verdict: Verdict | None = None) -> Incident:
        """Resolve by hand; a verdict (also one given to an incident resolved before) goes to each of
        its stations' label on the verdicts topic."""
        async with self._lock:
            effects = self.book.resolve(incident_id, by, self.clock(), note, verdict=verdict)
            judged = effects.incidents.get(incident_id) if verdict is not None else None
            labels = [Outgoing(self.settings.topics.verdicts, encode(v), v.station_id.encode())
                      for v in (station_verdicts(judged) if judged is not None else ())]
            await self._persist(effects, labels)
            log.info("incident %s resolved by %s%s", incident_id, by, f" ({verdict.value})" if verdict else "")
        self._dispatch()
        return self.book.get(incident_id)

    async def tick_action(self, incident_id: str, action_id: str, by: str, done: bool = True) -> Incident:
        """Tick (or untick) one action of the incident's playbook checklist."""
        async with self._lock:
            await self._persist(self.book.tick_action(incident_id, action_id, by, self.clock(), done=done))
            return self.book.get(incident_id)

    def silences(self) -> list[SilenceRecord]:
        """Silences in force now or later: the routing file's and the runtime ones."""
        return self.book.silences(self.clock())

    async def add_silence(self, silence: Silence, by: str) -> SilenceRecord:
        """A runtime silence from now on; what the incidents it covers still owe is held back."""
        async with self._lock:
            record, effects = self.book.add_silence(silence, by, self.clock())
            await self._persist(effects)
            log.info("silence %s set by %s: %s", record.silence_id, by, record.silence.describe())
        self._dispatch()
        return record

    async def expire_silence(self, silence_id: str, by: str) -> SilenceRecord:
        """End a runtime silence now (SilenceError for a routing-file or unknown one)."""
        async with self._lock:
            effects = self.book.expire_silence(silence_id, by, self.clock())
            await self._persist(effects)
            log.info("silence %s ended by %s", silence_id, by)
        self._dispatch()
        return effects.silences[silence_id]

    def playbook_html(self, incident_id: str) -> str | None:
        incident = self.book.get(incident_id)
        playbook = self._playbook(incident)
        if playbook is None:
            return None
        return self.playbooks.render_html(playbook, self.settings.alerts.language)

    def capability(self, incident_id: str) -> str:
        """Per-incident key for the ack/playbook links (the API token itself never goes out)."""
        token = self.settings.alerts.api_token
        if token is None:
            return ""
        return hmac.new(token.get_secret_value().encode(), incident_id.encode(), hashlib.sha256).hexdigest()[:16]

    # -- internals ------------------------------------------------------------------------

    def _context_of(self, detection: Detection) -> Context:
        station = self._stations.get(detection.station_id)
        reaches = self.playbooks.reaches_to(detection.station_id, detection.river)
        intakes: tuple[IntakeArrival, ...] = ()
        station_km = None
        tags: tuple[str, ...] = ()
        playbook = self.playbooks.for_detection(detection) if detection.kind.is_pollution else None
        if _builds_playbook(detection):  # kept for its messages (a clear's is none, and none shows it)
            self._remember_playbook(detection.detection_id, playbook)
        if playbook is not None:
            station_km = playbook.station_km
            intakes = tuple(
                IntakeArrival(name=r.name, river_km=r.river_km, leading_edge_at=r.leading_edge_at,
                              leading_edge_fast_at=r.leading_edge_fast_at, trailing_edge_at=r.trailing_edge_at)
                for r in playbook.receptors
                if r.kind == "intake"
            )
            tags = tuple(dict.fromkeys(t for step in playbook.actions for t in step.apprise_tags))
            for tag in set(tags) - self._known_tags - self._unknown_tags:
                self._unknown_tags.add(tag)
                log.info("the %s playbook names department tag %r, which no Apprise entry has (not notified)",
                         detection.river, tag)
        return Context(
            reach=reaches[-1] if reaches else None,
            upstream_reaches=tuple(reaches[:-1]),
            city=station.city if station else None,
            intakes=intakes,
            station_km=station_km,
            playbook_tags=tags,
        )

    def _playbook(self, incident: Incident) -> PlaybookView | None:
        """The playbook of the incident's latest detection: the one built when it was observed
        (a message must not pay the plume model again), else built now (e.g. after a restart)."""
        detection = incident.latest_detection
        if detection is None or not detection.kind.is_pollution:
            return None
        key = detection.detection_id
        if key in self._playbook_cache:
            self._playbook_cache.move_to_end(key)
            return self._playbook_cache[key]
        playbook = self.playbooks.for_detection(detection)
        self._remember_playbook(key, playbook)
        return playbook

    def _remember_playbook(self, detection_id: str, playbook: PlaybookView | None) -> None:
        self._playbook_cache[detection_id] = playbook
        self._playbook_cache.move_to_end(detection_id)
        while len(self._playbook_cache) > PLAYBOOKS_KEPT:
            self._playbook_cache.popitem(last=False)

    def _dead_letter(self, record: Record, reason: str) -> Outgoing:
        log.error("detection %s[%d]@%d is not a Detection, sent to the DLQ: %s", record.topic, record.partition,
                  record.offset, reason)
        letter = DeadLetter(
            raw_b64=base64.b64encode(record.value or b"").decode(),
            source=record.topic,
            reason_code="bad_detection",
            reason=reason,
            received_at=self.clock(),
        )
        return Outgoing(self.settings.topics.dlq, encode(letter), record.key)

    async def _persist(self, effects: Effects, extra: Sequence[Outgoing] = ()) -> None:
        if self._context is None:
            raise AlertError("the alert service is not running")
        topics = self.settings.topics
        # the book's latest state, not the snapshot in ``effects``: a tick may have changed the
        # incident since, and the compacted topic must end with the newest
        latest = [self.book.get(incident_id) for incident_id in effects.incidents]
        outputs = [Outgoing(topics.incidents, encode(i), i.incident_id.encode()) for i in latest]
        outputs += [Outgoing(topics.notifications, encode(r), r.record_id.encode()) for r in effects.records]
        outputs += [Outgoing(topics.silences, encode(r), r.silence_id.encode()) for r in effects.silences.values()]
        for record in effects.records:
            NOTIFICATIONS.labels(channel=record.channel.value, outcome=record.outcome.value).inc()
        await self._context.emit([*outputs, *extra])

    def _dispatch(self) -> None:
        """Start one send per target that has something due and nothing in flight — of what is
        persisted: not while a batch has changed the book and not yet written it."""
        if self._stopping or self._unpersisted:
            return
        now = self.clock()
        for incident, entry in self.book.due(now):
            if entry.target_id in self._in_flight:
                continue
            target = self._targets.get(entry.target_id)
            if target is None:
                continue  # target removed from the Apprise config since; the entry stays pending
            self.book.claim(entry.notification_id, entry.target_id)
            task = asyncio.create_task(self._send(incident, entry, target))
            self._in_flight[entry.target_id] = task
            task.add_done_callback(self._sent_callback(entry))

    def _sent_callback(self, entry: OutboxEntry) -> Callable[[asyncio.Task[None]], None]:
        target_id = entry.target_id

        def done(task: asyncio.Task[None]) -> None:
            self._in_flight.pop(target_id, None)
            self.book.release(entry.notification_id, target_id)
            if not task.cancelled() and task.exception() is not None:
                log.error("sending to %s failed", self._targets[target_id].redacted, exc_info=task.exception())

        return done

    async def _send(self, incident: Incident, entry: OutboxEntry, target: Target) -> None:
        message = await asyncio.to_thread(self._message, incident, entry)  # map rendering is CPU work
        ok, error, retry = await self._deliver(target, message, entry)
        async with self._lock:
            effects = self.book.record_attempt(
                incident.incident_id, entry.notification_id, target.target_id, ok=ok, error=error,
                now=self.clock(), title=message.title, retry=retry,
            )
            await self._persist(effects)
        for record in effects.records:
            _log_record(record)
        if ok:
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _message(self, incident: Incident, entry: OutboxEntry) -> Message:
        playbook = self._playbook(incident)
        key = self.capability(incident.incident_id)
        query = f"?k={key}" if key else ""
        base = self.settings.alerts.public_url.rstrip("/")
        language = self.settings.alerts.language
        ctx = MessageContext(
            language=language,
            ack_url=f"{base}/ack/{incident.incident_id}{query}",
            playbook_url=f"{base}/incidents/{incident.incident_id}/playbook{query}" if playbook else "",
            station_names={sid: s.section or sid for sid, s in self._stations.items()},
            rivers=self._rivers,
            late_after=self.book.routing.lifecycle.late_after,
            playbook=playbook,
            playbook_html=self.playbooks.render_html(playbook, language) if playbook and entry.channel == "email"
            else None,
            map_png=self.playbooks.render_map_png(playbook) if playbook and entry.channel == "email" else None,
        )
        return render(incident, entry, ctx, self.clock())

    async def _deliver(self, target: Target, message: Message, entry: OutboxEntry) -> tuple[bool, str, bool]:
        """(sent, error, worth retrying): a gateway that refused for good says so in the delivery report."""
        attach = None
        if message.attachment_png is not None:
            assert self._attachments is not None
            path = Path(self._attachments.name) / f"{entry.notification_id.replace(':', '_')}-map.png"
            path.write_bytes(message.attachment_png)
            attach = AppriseAttachment(str(path))
        with reporting(self.clock()) as report:
            try:
                ok = bool(
                    await target.service.async_notify(
                        body=message.body, title=message.title, body_format=message.body_format, attach=attach
                    )
                )
            except Exception as exc:  # a plugin bug must become a failed attempt, not a dead task
                return False, f"{type(exc).__name__} from {target.redacted}", True
        if ok:
            return True, "", True
        return False, report.error or f"{target.redacted} did not accept the message", report.retry


def _latest(records: Mapping[TopicPartition, list[Record]], topic: str, model: type[M]) -> dict[str, M]:
    """The latest readable record per key of a compacted topic (a tombstone removes its key)."""
    latest: dict[str, M] = {}
    for tp in sorted(tp for tp in records if tp.topic == topic):
        partition = tp.partition
        for record in records[tp]:
            if record.key is None:
                continue
            if record.value is None:
                latest.pop(record.key.decode(), None)
                continue
            try:
                latest[record.key.decode()] = decode(record.value, model).payload
            except ValidationError as exc:
                log.error("skipping unreadable %s record %s[%d]@%d: %s", model.__name__, topic, partition,
                          record.offset, describe_validation_error(exc))
    return latest


def _builds_playbook(detection: Detection) -> bool:
    """A pollution detection other than a clear: the plume model runs for it."""
    return detection.kind.is_pollution and detection.phase is not DetectionPhase.CLEARED


def _queued(effects: Effects, now: datetime) -> bool:
    """Whether ``effects`` owe a notification due now (something to send without waiting)."""
    return any(e.status is DeliveryStatus.PENDING and e.next_attempt_at <= now and e.created_at == now
               for i in effects.incidents.values() for e in i.outbox)


def _log_record(record: NotificationRecord) -> None:
    level = logging.INFO if record.outcome.value in ("sent", "suppressed") else logging.WARNING
    log.log(level, "notification %s → %s (%s, attempt %d): %s %s", record.notification_id, record.target,
            record.channel.value, record.attempt, record.outcome.value, record.error)
