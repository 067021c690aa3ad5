"""The MQTT → Kafka bridge (the imperative shell around :class:`ingest.routing.Router`).

Delivery: QoS 1 subscription in a persistent session (fixed client id, clean_session /
clean_start False, MQTT 5 session expiry), ``manual_ack=True``. A message is acknowledged to the
broker only after Kafka acknowledged every record made from it, so a crash anywhere in between
makes the broker deliver it again: at-least-once, never lost.

One thread: paho's socket is driven by the asyncio loop (:class:`ingest.mqttloop.MqttLoop`), and
``on_message`` only appends to an :class:`~ingest.inbox.Inbox`. The pump routes each message and *sends* its
records without waiting (aiokafka batches them), queuing the pending acknowledgements in order; a
second task awaits them in that order and acks the MQTT messages. One producer, records sent in
arrival order, key = station id: per-station order is kept in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as paho

from ingest.inbox import Inbox
from ingest.mqtt import connect_options, failure, make_client
from ingest.mqttloop import MqttLoop
from ingest.pool import RoutingPool
from ingest.routing import Message, Router
from ingest.settling import Settler
from ingest.worker import Settled
from riverguard.bus.base import Bus, Producer
from riverguard.bus.topics import topic_specs
from riverguard.errors import BusError
from riverguard.observability import DEAD_LETTERS, MESSAGES_IN, MESSAGES_OUT, HealthCheck
from riverguard.settings import Settings
from riverguard.stage import Outgoing
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

STAGE: Final = "ingest"
#: Messages routed and sent to Kafka as one unit. Bounded so that, with thousands in flight,
#: Kafka already has the first records while the rest are decoded and MQTT refills the window
#: (taking the whole in-flight window at once made read, route and acknowledge take turns).
PUMP_BATCH: Final = 500
CONNECT_TIMEOUT_S: Final = 15.0

Token = tuple[int, int]  # (MQTT message id, QoS)
Messages = Inbox[Message[Token]]


@dataclass(slots=True)
class BridgeStats:
    received: int = 0
    readings: int = 0
    dead_letters: int = 0
    acked: int = 0


class Bridge:
    """Run with :meth:`run` until ``stop`` is set; :attr:`stats` counts what happened."""

    def __init__(self, settings: Settings, registry: StationRegistry, bus: Bus, *, create_topics: bool = True) -> None:
        self.settings = settings
        self.bus = bus
        self.create_topics = create_topics
        self.router = Router[Token](
            registry,
            readings_topic=settings.topics.readings,
            dlq_topic=settings.topics.dlq,
            topic_pattern=settings.mqtt.topic_pattern,
        )
        self.stats = BridgeStats()
        self.connected = asyncio.Event()
        # Metric children looked up once: labels() per message shows up at thousands per second.
        self._messages_in = MESSAGES_IN.labels(stage=STAGE)
        self._readings_out = MESSAGES_OUT.labels(stage=STAGE, topic=settings.topics.readings)
        self._dlq_out = MESSAGES_OUT.labels(stage=STAGE, topic=settings.topics.dlq)

    async def run(self, stop: asyncio.Event) -> None:
        if self.create_topics:
            await self.bus.create_topics(topic_specs(self.settings))
        inbox = Messages()
        connect_result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        client = self._client(inbox, connect_result)
        client.connect_async(**connect_options(self.settings.mqtt, persistent=True))
        network_stop = asyncio.Event()
        network = asyncio.create_task(MqttLoop(client).run(network_stop))
        try:
            if self.settings.mqtt.routing_workers:
                await self._run_pool(client, inbox, connect_result, stop)
            else:
                await self._run_here(client, inbox, connect_result, stop)
        finally:
            network_stop.set()
            await network
        log.info("ingest bridge stopped: %s", self.stats)

    async def _run_here(
        self, client: paho.Client, inbox: Messages, connect_result: asyncio.Future[Any], stop: asyncio.Event
    ) -> None:
        producer = self.bus.producer(client_id=f"{self.settings.kafka.client_id}-ingest")
        await producer.start()
        settler = Settler[Token](lambda tokens: self._ack(client, tokens), what="acknowledging it to MQTT")
        settling = settler.start()
        try:
            await self._await_connection(connect_result)
            await self._pump(inbox, producer, stop, settler, settling)
        finally:
            # Acknowledge what Kafka already has, then leave: unacknowledged messages stay in the
            # broker's session and come again on the next start.
            try:
                await settler.finish()
            finally:
                await producer.stop()

    async def _run_pool(
        self, client: paho.Client, inbox: Messages, connect_result: asyncio.Future[Any], stop: asyncio.Event
    ) -> None:
        """MQTT here, routing and producing in ``mqtt.routing_workers`` processes (see ingest.pool)."""
        pool = RoutingPool[Token](
            self.settings, self.router.registry, self.settings.mqtt.routing_workers,
            lambda settled: self._acknowledge(client, settled),
        )
        await pool.start()
        try:
            await self._await_connection(connect_result)
            while not stop.is_set() and (broken := pool.failed()) is None:
                messages = await inbox.take(wait_s=0.5, limit=PUMP_BATCH)
                for message in messages:
                    pool.hand(message)
                self.stats.received += len(messages)
                self._messages_in.inc(len(messages))
                await pool.flush()
            if broken is not None:
                raise broken
        finally:
            # Every worker finishes what it was handed; what Kafka took is acknowledged to MQTT.
            await asyncio.wait_for(pool.stop(), timeout=30)

    def _acknowledge(self, client: paho.Client, settled: list[tuple[Token, Settled]]) -> None:
        for (mid, qos), (_, readings, reasons) in settled:
            if qos > 0:
                client.ack(mid, qos)
            self._count(readings, reasons)
        self.stats.acked += len(settled)

    def _client(self, inbox: Messages, connect_result: asyncio.Future[Any]) -> paho.Client:
        mqtt = self.settings.mqtt
        password = mqtt.password.get_secret_value() if mqtt.password else None
        client = make_client(
            mqtt, client_id=mqtt.client_id, username=mqtt.username, password=password, persistent=True, manual_ack=True
        )

        def on_connect(client: paho.Client, _userdata: Any, flags: Any, reason_code: Any, _properties: Any) -> None:
            if not failure(reason_code):
                # Subscribing again is harmless with a persistent session and needed on a new one.
                client.subscribe(mqtt.topic_filter, qos=mqtt.qos)
                log.info("connected to MQTT %s:%s as %s, session present: %s, subscribed to %s",
                         mqtt.host, mqtt.port, mqtt.client_id, flags.session_present, mqtt.topic_filter)
            if not connect_result.done():
                connect_result.set_result(reason_code)

        def on_disconnect(
            _client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
        ) -> None:
            if failure(reason_code):
                log.warning("MQTT connection lost (%s); paho reconnects, the session keeps unacknowledged messages",
                            reason_code)

        def on_message(_client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
            inbox.put(Message(message.topic, bytes(message.payload), datetime.now(UTC), (message.mid, message.qos)))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    async def _await_connection(self, connect_result: asyncio.Future[Any]) -> None:
        mqtt = self.settings.mqtt
        try:
            reason_code = await asyncio.wait_for(connect_result, CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise BusError(f"no answer from the MQTT broker at {mqtt.host}:{mqtt.port} in {CONNECT_TIMEOUT_S:g}s; "
                           "is it running (deploy/stack.sh status)?") from exc
        if failure(reason_code):
            raise BusError(f"MQTT broker at {mqtt.host}:{mqtt.port} refused {mqtt.username!r}: {reason_code}; "
                           "check mqtt.username / RIVERGUARD_MQTT__PASSWORD")
        self.connected.set()

    async def _pump(
        self, inbox: Messages, producer: Producer, stop: asyncio.Event, settler: Settler[Token],
        settling: asyncio.Task[None],
    ) -> None:
        while not stop.is_set():
            if settling.done():
                settling.result()  # re-raise the Kafka failure that stopped settling
                return
            messages = await inbox.take(wait_s=0.5, limit=PUMP_BATCH)
            self.stats.received += len(messages)
            self._messages_in.inc(len(messages))
            # One unit per batch taken: the records of all its messages, then their acks.
            records: list[Outgoing] = []
            tokens: list[Token] = []
            for routed in self.router.route_all(messages, datetime.now(UTC)):
                records += routed.records
                tokens += routed.tokens
                self._count(len(routed.records) - len(routed.reasons), routed.reasons)
            if tokens:
                pending = await producer.send_batch(records)
                await settler.put(pending, tokens)  # bounded: waits while Kafka lags

    def _count(self, readings: int, reasons: Sequence[str]) -> None:
        """Stats and metrics of records produced: readings, and dead letters by reason."""
        self.stats.readings += readings
        self.stats.dead_letters += len(reasons)
        self._readings_out.inc(readings)
        for reason in reasons:
            self._dlq_out.inc()
            DEAD_LETTERS.labels(stage=STAGE, reason=reason).inc()

    def _ack(self, client: paho.Client, tokens: list[Token]) -> None:
        """Ack MQTT messages (in arrival order) once Kafka acknowledged their records."""
        for mid, qos in tokens:
            if qos > 0:
                client.ack(mid, qos)
        self.stats.acked += len(tokens)


def mqtt_check(bridge: Bridge) -> HealthCheck:
    """Health check: the bridge holds its MQTT session and the broker still accepts connections."""

    async def check() -> None:
        if not bridge.connected.is_set():
            raise ConnectionError("the ingest bridge has not connected to MQTT yet")
        mqtt = bridge.settings.mqtt
        _, writer = await asyncio.open_connection(mqtt.host, mqtt.port)
        writer.close()
        await writer.wait_closed()

    return check
