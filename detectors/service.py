"""``riverguard run detect``: the detector stack as a Kafka consumer group (the imperative shell).

Readings (key = station id) come from ``topics.readings``; detections go to ``topics.detections``
(key = station id, so one station's events stay ordered); each station's detector state goes to
the compacted changelog ``topics.detector_state`` under the same key. Both topics have the same
partition count, so a station's readings and its checkpoint live on the same partition number,
and a member that is assigned readings partition *p* restores state from changelog partition *p*.

Order (STYLE.md, Quix Streams): detections and checkpoints are produced and acknowledged, then
the input offsets are committed. Offsets are committed only together with checkpoints of every
station that read since the last commit, every ``checkpoint_readings`` readings of a station or
``checkpoint_seconds`` seconds, and before partitions are revoked. After a crash the state and the
committed offsets agree; re-delivered readings re-create detections with the same ids, and a
checkpoint newer than the commit makes the detector skip readings it already learned from.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from detectors.stack import DetectorStack, EventClock
from riverguard.bus.base import Bus, Consumer, Producer, Record, TopicPartition, next_offsets
from riverguard.bus.topics import topic_specs
from riverguard.errors import ConfigError, describe_validation_error
from riverguard.models import DeadLetter, Reading, decode, encode
from riverguard.observability import DEAD_LETTERS, MESSAGES_IN, MESSAGES_OUT, PROCESSING_SECONDS
from riverguard.settings import Settings
from riverguard.stage import Outgoing, produce_all

log = logging.getLogger(__name__)

STAGE = "detect"


class DetectorService:
    """One member of the detector consumer group."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        stack: DetectorStack,
        *,
        group_id: str = "riverguard-detect",
        checkpoint_readings: int = 1000,
        checkpoint_seconds: float = 30.0,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.stack = stack
        self.group_id = group_id
        self.checkpoint_readings = checkpoint_readings
        self.checkpoint_seconds = checkpoint_seconds
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._partition_of: dict[str, int] = {}
        self._dirty: dict[str, int] = {}  # station id -> readings since its last checkpoint
        self._pending: dict[TopicPartition, int] = {}  # offsets processed but not committed
        self._last_commit = time.monotonic()
        self._clock = EventClock(stack.config.silence_check_s)
        # Set once the assigned partitions' state is restored. The Kafka client may already be
        # fetching records of a new assignment while the assignment callback is still replaying
        # the changelog; processing them on a not-yet-restored detector would lose their effect.
        self._restored = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        topics = self.settings.topics
        await self.bus.create_topics(
            [s for s in topic_specs(self.settings) if s.name in {topics.readings, topics.detections,
                                                                 topics.detector_state, topics.dlq}]
        )
        readings_n = await self.bus.partitions(topics.readings)
        state_n = await self.bus.partitions(topics.detector_state)
        if readings_n != state_n:
            raise ConfigError(
                f"topic {topics.detector_state} has {state_n} partitions but {topics.readings} has {readings_n}; "
                "they must match so a station's state sits on the partition of its readings"
            )
        async with self.bus.producer(client_id=f"{self.group_id}-producer") as producer:
            self._producer = producer
            async with self.bus.consumer(
                [topics.readings], group_id=self.group_id, on_assign=self._on_assign, on_revoke=self._on_revoke
            ) as consumer:
                self._consumer = consumer
                log.info("detector %s consuming %s", self.group_id, topics.readings)
                while not stop.is_set():
                    records = await consumer.getmany(timeout_ms=200, max_records=500)
                    if records:
                        await self._restored.wait()
                        await self.handle(records)
                    elif self._pending:
                        await self._flush_if_due()
                await self._flush()

    async def handle(self, records: Sequence[Record]) -> None:
        """Process one batch: detections out and acknowledged, checkpoint + commit when due."""
        started = time.perf_counter()
        MESSAGES_IN.labels(STAGE).inc(len(records))
        outputs = [o for record in records for o in self._process(record)]
        outputs += self._silent_stations()
        await self._send(outputs)
        for tp, offset in next_offsets(records).items():
            self._pending[tp] = offset
        await self._flush_if_due()
        PROCESSING_SECONDS.labels(STAGE).observe(time.perf_counter() - started)

    def _process(self, record: Record) -> list[Outgoing]:
        topics = self.settings.topics
        try:
            if record.value is None:
                raise ValueError("empty record value")
            reading = decode(record.value, Reading).payload
        except (ValidationError, ValueError) as exc:
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            DEAD_LETTERS.labels(STAGE, "bad_reading").inc()
            letter = DeadLetter(
                raw_b64=base64.b64encode(record.value or b"").decode(),
                source=f"{record.topic}/{record.partition}@{record.offset}",
                reason_code="bad_reading",
                reason=reason,
                received_at=datetime.now(UTC),
                payload_format="envelope",
            )
            return [Outgoing(topics.dlq, encode(letter), key=record.key)]
        station = reading.station_id
        self._clock.observe(record.partition, reading.time)
        self._partition_of[station] = record.partition
        self._dirty[station] = self._dirty.get(station, 0) + 1
        key = station.encode()
        return [Outgoing(topics.detections, encode(d), key=key) for d in self.stack.process(reading)]

    def _silent_stations(self) -> list[Outgoing]:
        """Data-gap onsets of stations silent while their partition's event time moved on."""
        out = []
        for partition, watermark in self._clock.due():
            stations = [s for s, p in self._partition_of.items() if p == partition]
            for detection in self.stack.check_silence(watermark, stations):
                # Checkpoint the open gap, so a restart clears it instead of reporting it again.
                self._dirty.setdefault(detection.station_id, 0)
                out.append(Outgoing(self.settings.topics.detections, encode(detection),
                                    key=detection.station_id.encode()))
        return out

    async def _send(self, outputs: Sequence[Outgoing]) -> None:
        assert self._producer is not None
        if outputs:
            await produce_all(self._producer, outputs)
            for output in outputs:
                MESSAGES_OUT.labels(STAGE, output.topic).inc()

    async def _flush_if_due(self) -> None:
        due = time.monotonic() - self._last_commit >= self.checkpoint_seconds or any(
            n >= self.checkpoint_readings for n in self._dirty.values()
        )
        if due:
            await self._flush()

    async def _flush(self) -> None:
        """Checkpoint every station that read since the last commit, then commit their offsets."""
        if self._dirty:
            changelog = self.settings.topics.detector_state
            await self._send([
                Outgoing(changelog, self.stack.checkpoint(station), key=station.encode())
                for station in self._dirty
                if station in self.stack.detectors
            ])
            self._dirty.clear()
        if self._pending and self._consumer is not None:
            await self._consumer.commit(self._pending)
            self._pending = {}
        self._last_commit = time.monotonic()

    async def _on_assign(self, assigned: frozenset[TopicPartition]) -> None:
        self._restored.clear()
        try:
            await self._restore(assigned)
        finally:
            self._restored.set()

    async def _restore(self, assigned: frozenset[TopicPartition]) -> None:
        changelog = self.settings.topics.detector_state
        restored = 0
        for tp in sorted(assigned):
            latest: dict[str, bytes | None] = {}
            for record in await self.bus.read_partition(TopicPartition(changelog, tp.partition)):
                if record.key is not None:
                    latest[record.key.decode()] = record.value
            for station, state in latest.items():
                if state is None:
                    self.stack.forget(station)
                    continue
                self.stack.restore(station, state)
                self._partition_of[station] = tp.partition
                restored += 1
        log.info("detector %s assigned %d partitions, restored %d station states from %s",
                 self.group_id, len(assigned), restored, changelog)

    async def _on_revoke(self, revoked: frozenset[TopicPartition]) -> None:
        # Checkpoint and commit while the partitions are still ours, then let their stations go:
        # the next owner restores them from the changelog.
        self._restored.clear()
        await self._flush()
        partitions = {tp.partition for tp in revoked}
        for partition in partitions:
            self._clock.forget(partition)
        for station, partition in list(self._partition_of.items()):
            if partition in partitions:
                self.stack.forget(station)
                del self._partition_of[station]
