"""``riverguard run hj212-gateway``: the TCP server station data loggers (数采仪) connect to
(the imperative shell around :class:`ingest.session.Session`, :class:`ingest.routing.Router` and
:class:`ingest.downlink.CommandBook`).

Each connection's bytes go through its session; the frames it routes go through the same router
as the MQTT bridge's (codecs, fast path, registry, DLQ reasons, topics), in arrival order through
one producer, so a station's readings stay ordered. A 9014 data answer is written only after
Kafka acknowledged the frame's records (``acks=all``): a crash before that makes the logger send
it again. Rejected bytes go to the DLQ with their reason. The gateway reads ``incidents`` and
``station.commands`` to send commands to connected stations and produces every command's result
to ``station.command-results``.

Protection: connection limits (total and per peer address), frame size, slow senders, idle
connections, too many bad frames in a row, and back-pressure (a connection with too many frames
waiting for Kafka is not read). Everything is counted in the metrics below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter as Tally
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from prometheus_client import Counter, Gauge

from ingest.codecs import TopicPattern
from ingest.downlink import CommandBook, Dispatch, DownlinkEffect, Publish
from ingest.inbox import Inbox
from ingest.routing import Message, Routed, Router
from ingest.session import Answer, Bind, ClockOff, Close, Effect, Limits, Reject, Route, Send, Session
from ingest.settling import Settler
from riverguard.bus.base import Bus, Outgoing, Producer
from riverguard.bus.topics import topic_specs
from riverguard.commands import CommandResult, StationCommand
from riverguard.errors import ConfigError, PayloadError
from riverguard.incidents import Incident
from riverguard.models import SourceFormat, decode, encode
from riverguard.observability import DEAD_LETTERS, MESSAGES_IN, MESSAGES_OUT
from riverguard.settings import Settings
from riverguard.stations import StationRegistry, StationSecrets, load_secrets

log = logging.getLogger(__name__)

STAGE: Final = "hj212-gateway"
PUMP_BATCH: Final = 500
TICK_S: Final = 0.5

CONNECTIONS: Final = Gauge("riverguard_hj212_open_connections", "Data logger connections open now.")
CONNECTIONS_TOTAL: Final = Counter(
    "riverguard_hj212_connections_total", "Data logger connections, by outcome (accepted or why refused).",
    ["outcome"],
)
DISCONNECTS: Final = Counter(
    "riverguard_hj212_disconnects_total", "Connections closed, by reason (peer, idle, slow_sender, oversize, "
    "bad_frames, replaced, shutdown).", ["reason"],
)
FRAMES_OUT: Final = Counter("riverguard_hj212_frames_sent_total", "Frames written to data loggers, by CN.", ["cn"])
COMMANDS: Final = Counter("riverguard_hj212_commands_total", "Command results, by kind and outcome.",
                          ["kind", "outcome"])


@dataclass(eq=False, slots=True)
class Ticket:
    """What a connection is owed once a routed frame's records are in Kafka."""

    link: Link
    reply: bytes | None
    counted: bool  # rejected by the session itself: already counted as a bad frame


@dataclass(eq=False)
class Link(asyncio.Protocol):
    """One data logger's TCP connection: the asyncio protocol feeding its session."""

    gateway: Gateway
    session: Session | None = None
    transport: asyncio.Transport | None = None
    peer: str = ""
    source: str = ""
    unsettled: int = 0
    paused: bool = False
    reason: str = "peer"
    admitted: bool = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer, self.source = host, f"hj212-tcp://{host}:{port}"
        self.gateway.admit(self)

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.gateway.apply(self, self.session.receive(data, datetime.now(UTC)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.forget(self)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            _sent(data).inc()

    def close(self, reason: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.reason = reason
            self.transport.close()  # writes what is buffered first


def gateway_secrets(settings: Settings, registry: StationRegistry) -> StationSecrets:
    """The stations' PWs from ``hj212.passwords_file``; ConfigError when it is not set or bad."""
    path = settings.hj212.passwords_file
    if path is None:
        raise ConfigError("hj212.passwords_file is not set: the gateway accepts only stations whose PW it knows "
                          "(a YAML file station_id: password; RIVERGUARD_HJ212__PASSWORDS_FILE)")
    return load_secrets(path, registry)


class Gateway:
    """Run with :meth:`run` until ``stop`` is set; :attr:`port` is the bound port once listening."""

    def __init__(
        self, settings: Settings, registry: StationRegistry, secrets: StationSecrets, bus: Bus,
        *, create_topics: bool = True,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.create_topics = create_topics
        config = settings.hj212
        self.limits = Limits(
            max_frame_bytes=config.max_frame_bytes, idle_timeout=timedelta(seconds=config.idle_timeout_s),
            frame_timeout=timedelta(seconds=config.frame_timeout_s), max_bad_frames=config.max_bad_frames,
            clock_tolerance=timedelta(seconds=config.clock_tolerance_s),
        )
        self.registry = registry
        self.secrets = secrets
        self.topics = TopicPattern(settings.mqtt.topic_pattern)
        self.router = Router[Ticket](
            registry, readings_topic=settings.topics.readings, dlq_topic=settings.topics.dlq,
            topic_pattern=settings.mqtt.topic_pattern,
        )
        self.book = CommandBook(
            registry, secrets, answer_timeout=timedelta(seconds=config.command_answer_timeout_s),
            clock_interval=timedelta(seconds=config.clock_set_interval_s), ttl=timedelta(seconds=config.command_ttl_s),
            retain_on_incident=config.retain_sample_on_incident,
        )
        self.listening = asyncio.Event()
        self.port: int | None = None
        self.stats: Tally[str] = Tally()
        self._links: set[Link] = set()
        self._by_peer: Tally[str] = Tally()
        self._stations: dict[str, Link] = {}
        self._inbox = Inbox[tuple[Message[Ticket], PayloadError | None]]()
        self._producer: Producer | None = None
        self._results: list[Outgoing] = []
        self._readings_out = MESSAGES_OUT.labels(stage=STAGE, topic=settings.topics.readings)
        self._messages_in = MESSAGES_IN.labels(stage=STAGE)

    @property
    def bound(self) -> frozenset[str]:
        """The stations connected now."""
        return frozenset(self._stations)

    async def run(self, stop: asyncio.Event) -> None:
        if self.create_topics:
            await self.bus.create_topics(topic_specs(self.settings))
        await self._restore_results()
        producer = self._producer = self.bus.producer(client_id=f"{self.settings.kafka.client_id}-hj212-gateway")
        await producer.start()
        config = self.settings.hj212
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Link(self), config.host, config.port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("HJ 212 gateway listening on %s:%s for %d stations", config.host, self.port, len(self.secrets))
        self.listening.set()
        settler = Settler[Ticket](self._answer, what="answering the data loggers")
        settling = settler.start()
        helpers = [asyncio.create_task(self._tick(stop)), asyncio.create_task(self._follow_commands(stop))]
        try:
            await self._pump(producer, stop, settler, settling)
        finally:
            server.close()
            for link in list(self._links):
                link.close("shutdown")
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            try:
                await settler.finish()
            finally:
                await producer.stop()
                await server.wait_closed()
        log.info("HJ 212 gateway stopped: %s", dict(self.stats))

    # --- connections ------------------------------------------------------------------------

    def admit(self, link: Link) -> None:
        config = self.settings.hj212
        refused = ("total_limit" if len(self._links) >= config.max_connections
                   else "peer_limit" if self._by_peer[link.peer] >= config.max_connections_per_peer else None)
        if refused is not None:
            CONNECTIONS_TOTAL.labels(outcome=refused).inc()
            assert link.transport is not None
            link.transport.abort()
            return
        link.admitted = True
        link.session = Session(self.registry, self.secrets, self.limits, self.topics, datetime.now(UTC))
        self._links.add(link)
        self._by_peer[link.peer] += 1
        CONNECTIONS_TOTAL.labels(outcome="accepted").inc()
        CONNECTIONS.set(len(self._links))

    def forget(self, link: Link) -> None:
        if not link.admitted:
            return
        link.admitted = False
        self._links.discard(link)
        self._by_peer[link.peer] -= 1
        if self._by_peer[link.peer] <= 0:
            del self._by_peer[link.peer]
        CONNECTIONS.set(len(self._links))
        DISCONNECTS.labels(reason=link.reason).inc()
        station = link.session.station if link.session else None
        if station is not None and self._stations.get(station.station_id) is link:
            del self._stations[station.station_id]
            self._downlink(self.book.offline(station.station_id, datetime.now(UTC)))

    def apply(self, link: Link, effects: list[Effect]) -> None:
        """Carry out a session's effects for ``link``."""
        now = datetime.now(UTC)
        for effect in effects:
            if isinstance(effect, Send):
                link.write(effect.data)
            elif isinstance(effect, Route):
                self._enqueue(link, Message(effect.topic, effect.raw, now, Ticket(link, effect.reply, False),
                                            link.source), None)
            elif isinstance(effect, Reject):
                message = Message(self._station_topic(link), effect.raw, now, Ticket(link, None, True), link.source)
                self._enqueue(link, message, effect.error)
            elif isinstance(effect, Bind):
                self._bind(link, effect, now)
            elif isinstance(effect, Answer):
                self._downlink(self.book.answer(effect.station_id, effect.frame, now))
            elif isinstance(effect, ClockOff):
                self._downlink(self.book.clock_off(effect.station_id, effect.skew, now))
            elif isinstance(effect, Close):
                link.close(effect.reason)

    def _station_topic(self, link: Link) -> str:
        station = link.session.station if link.session else None
        return self.topics.format(station.river, station.station_id) if station else ""

    def _bind(self, link: Link, bind: Bind, now: datetime) -> None:
        station_id = bind.station.station_id
        older = self._stations.get(station_id)
        self._stations[station_id] = link
        if older is not None and older is not link:
            log.info("station %s connected again from %s; closing its older connection", station_id, link.source)
            older.close("replaced")
        log.info("station %s connected from %s", station_id, link.source)
        self._downlink(self.book.online(station_id, bind.st, now))

    def _enqueue(self, link: Link, message: Message[Ticket], error: PayloadError | None) -> None:
        self._inbox.put((message, error))
        link.unsettled += 1
        if not link.paused and link.unsettled >= self.settings.hj212.max_unsettled_frames and link.transport:
            link.paused = True
            link.transport.pause_reading()  # back-pressure: the logger waits instead of our memory

    def _downlink(self, effects: list[DownlinkEffect]) -> None:
        for effect in effects:
            if isinstance(effect, Dispatch):
                link = self._stations.get(effect.station_id)
                if link is not None:
                    link.write(effect.data)
            elif isinstance(effect, Publish):
                self._publish(effect.result)

    def _publish(self, result: CommandResult) -> None:
        COMMANDS.labels(kind=result.kind.value, outcome=result.outcome.value).inc()
        log.info("command %s for %s: %s %s", result.command_id, result.station_id, result.outcome.value, result.detail)
        self._results.append(Outgoing(self.settings.topics.command_results, encode(result),
                                      key=result.station_id.encode()))

    # --- routing and acknowledging ------------------------------------------------------------

    async def _pump(
        self, producer: Producer, stop: asyncio.Event, settler: Settler[Ticket], settling: asyncio.Task[None]
    ) -> None:
        while not stop.is_set():
            if settling.done():
                settling.result()  # re-raise the Kafka failure that stopped settling
                return
            items = await self._inbox.take(wait_s=TICK_S, limit=PUMP_BATCH)
            now = datetime.now(UTC)
            self._messages_in.inc(len(items))
            routed: list[Routed[Ticket]] = []
            for message, error in items:
                if error is None:
                    routed += self.router.route(message)
                else:
                    routed.append(self.router.reject(message, error, SourceFormat.HJ212))
            routed += self.router.route_all([], now)  # split messages given up on
            records: list[Outgoing] = []
            tickets: list[Ticket] = []
            for outcome in routed:
                self._count(outcome)
                records += outcome.records
                tickets += outcome.tokens
            records += self._results
            self._results = []
            if records or tickets:
                pending = await producer.send_batch(records)
                await settler.put(pending, tickets)

    def _count(self, outcome: Routed[Ticket]) -> None:
        readings = len(outcome.records) - len(outcome.reasons)
        self.stats["readings"] += readings
        self._readings_out.inc(readings)
        for reason in outcome.reasons:
            self.stats["dead_letters"] += 1
            MESSAGES_OUT.labels(stage=STAGE, topic=self.settings.topics.dlq).inc()
            DEAD_LETTERS.labels(stage=STAGE, reason=reason).inc()
        for ticket in outcome.tokens:
            if not ticket.counted and ticket.link.session is not None:
                self.apply(ticket.link, ticket.link.session.outcome(rejected=bool(outcome.reasons)))

    def _answer(self, tickets: list[Ticket]) -> None:
        """Write the answers of frames whose records Kafka acknowledged, in arrival order."""
        limit = self.settings.hj212.max_unsettled_frames
        for ticket in tickets:
            link = ticket.link
            if ticket.reply is not None:
                link.write(ticket.reply)
            self.stats["acknowledged"] += 1
            link.unsettled -= 1
            if link.paused and link.unsettled < limit and link.transport:
                link.paused = False
                link.transport.resume_reading()

    # --- time and commands ----------------------------------------------------------------------

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(TICK_S)
            now = datetime.now(UTC)
            for link in list(self._links):
                if link.session is not None:
                    self.apply(link, link.session.tick(now))
            self._downlink(self.book.tick(now))

    async def _restore_results(self) -> None:
        """Commands that already have a result are not sent again after a restart."""
        for records in (await self.bus.read_topics([self.settings.topics.command_results])).values():
            for record in records:
                with contextlib.suppress(ValueError):
                    self.book.seen(decode(record.value or b"", CommandResult).payload)

    async def _follow_commands(self, stop: asyncio.Event) -> None:
        """Incidents and explicit commands, from the beginning (a fresh group each start: the
        book's own state is rebuilt from them and from the results)."""
        topics = self.settings.topics
        group = f"{self.settings.kafka.client_id}-hj212-gateway-{uuid.uuid4().hex[:8]}"
        async with self.bus.consumer([topics.incidents, topics.station_commands], group_id=group) as consumer:
            while not stop.is_set():
                for record in await consumer.getmany(timeout_ms=500, max_records=500):
                    now = datetime.now(UTC)
                    try:
                        if record.topic == topics.incidents:
                            self._downlink(self.book.incident(decode(record.value or b"", Incident).payload, now))
                        else:
                            self._downlink(self.book.add(decode(record.value or b"", StationCommand).payload, now))
                    except ValueError as exc:
                        log.warning("skipping a record of %s at offset %d that is not a valid %s: %s",
                                    record.topic, record.offset, "incident" if record.topic == topics.incidents
                                    else "station command", exc)


def _sent(frame: bytes) -> Any:
    """The sent-frames counter of ``frame``'s CN (children looked up once: labels() per frame costs)."""
    at = frame.find(b";CN=")
    cn = frame[at + 4 : at + 8].decode("ascii", "replace") if at >= 0 else "?"
    counter = _SENT.get(cn)
    if counter is None:
        counter = _SENT[cn] = FRAMES_OUT.labels(cn=cn)
    return counter


_SENT: dict[str, Any] = {}
