"""The sink service: readings, detections, incidents and notifications → InfluxDB.

One consumer group over the four topics. Per batch (``influx.batch_size`` points or
``influx.flush_interval_ms`` after its first record, whichever comes first):

1. map every record to points (:mod:`riverguard.sink.points`); a record that cannot be mapped
   goes to the DLQ with the reason, nothing is dropped;
2. write the points in one request. While InfluxDB is unreachable the sink retries with
   exponential backoff (up to ``influx.max_retry_delay_s``) and polls nothing meanwhile:
   back-pressure, the backlog waits in Kafka, where it is durable, instead of in memory;
3. if InfluxDB rejects the batch as invalid (HTTP 400), write record by record and send the
   records it still rejects to the DLQ with InfluxDB's reason;
4. produce the dead letters, then commit the input offsets.

A crash anywhere before 4 re-delivers the batch, and the re-written points overwrite
themselves (same measurement, tags and timestamp), so at-least-once delivery leaves no
duplicates in InfluxDB.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from riverguard.bus.base import Bus, Consumer, Producer, Record, next_offsets
from riverguard.bus.kafka import KafkaBus
from riverguard.bus.topics import topic_specs
from riverguard.errors import BusError, PayloadError
from riverguard.models import DeadLetter, encode
from riverguard.observability import (
    BACKPRESSURE,
    DEAD_LETTERS,
    INFLUX_WRITE_ERRORS,
    MESSAGES_IN,
    MESSAGES_OUT,
    PROCESSING_SECONDS,
    bus_check,
    record_lag,
    start_observability,
)
from riverguard.settings import Settings, TopicSettings
from riverguard.sink.errors import InfluxRejected, InfluxUnavailable
from riverguard.sink.influx import InfluxWriter
from riverguard.sink.points import record_lines
from riverguard.stage import stopped_within

log = logging.getLogger(__name__)

STAGE: Final = "sink"
DEFAULT_GROUP: Final = "riverguard-sink"
_FIRST_RETRY_S: Final = 0.5
_IDLE_POLL_MS: Final = 500


def sink_topics(topics: TopicSettings) -> list[str]:
    """The topics the sink reads."""
    return [topics.readings, topics.detections, topics.incidents, topics.notifications]


@dataclass
class Batch:
    """Records polled together, each with its line-protocol points or the reason it has none."""

    records: list[Record] = field(default_factory=list)
    lines: list[list[str]] = field(default_factory=list)
    dead: list[tuple[Record, PayloadError]] = field(default_factory=list)
    points: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, record: Record, topics: TopicSettings) -> None:
        self.records.append(record)
        try:
            lines = record_lines(record.topic, record.value, topics)
        except PayloadError as exc:
            self.dead.append((record, exc))
            lines = []
        self.lines.append(lines)
        self.points += len(lines)


class Sink:
    """One member of the sink consumer group; ``run`` until ``stop`` is set."""

    def __init__(self, settings: Settings, bus: Bus, writer: InfluxWriter, *, group_id: str = DEFAULT_GROUP) -> None:
        self._settings = settings
        self._bus = bus
        self._writer = writer
        self._group_id = group_id
        self._topics = sink_topics(settings.topics)

    async def run(self, stop: asyncio.Event) -> None:
        async with (
            self._bus.producer(client_id=f"{self._group_id}-dlq") as producer,
            self._bus.consumer(self._topics, group_id=self._group_id) as consumer,
        ):
            log.info("sink %s: %s → %s", self._group_id, ", ".join(self._topics), self._settings.influx.bucket)
            while not stop.is_set():
                batch = await self._collect(consumer, stop)
                await record_lag(STAGE, consumer)
                if not batch.records:
                    continue
                if not await self._write(batch, stop):
                    log.info("sink stopping with %d records unwritten; they will be read again", len(batch.records))
                    return
                await self._dead_letter(producer, batch.dead)
                await self._commit(consumer, batch)

    async def _collect(self, consumer: Consumer, stop: asyncio.Event) -> Batch:
        influx = self._settings.influx
        batch = Batch()
        deadline: float | None = None
        while not stop.is_set():
            now = time.perf_counter()
            wait_ms = _IDLE_POLL_MS if deadline is None else max(0, int((deadline - now) * 1000))
            records = await consumer.getmany(timeout_ms=wait_ms, max_records=influx.batch_size)
            for record in records:
                batch.add(record, self._settings.topics)
            if not batch.records:
                break
            if deadline is None:
                batch.started = now
                deadline = now + influx.flush_interval_ms / 1000
            if batch.points >= influx.batch_size or time.perf_counter() >= deadline:
                break
        return batch

    async def _write(self, batch: Batch, stop: asyncio.Event) -> bool:
        """Write the batch; False when ``stop`` came while InfluxDB was unavailable."""
        lines = [line for record_lines in batch.lines for line in record_lines]
        try:
            return await self._write_retrying(lines, stop)
        except InfluxRejected as exc:
            log.warning("InfluxDB rejected a batch of %d points (%s); writing record by record", len(lines), exc)
        for record, lines_of_record in zip(batch.records, batch.lines, strict=True):
            try:
                if not await self._write_retrying(lines_of_record, stop):
                    return False
            except InfluxRejected as exc:
                batch.dead.append((record, PayloadError("influx_rejected", str(exc))))
        return True

    async def _write_retrying(self, lines: Sequence[str], stop: asyncio.Event) -> bool:
        delay = _FIRST_RETRY_S
        failures = 0
        while True:
            try:
                await self._writer.write(lines)
            except InfluxUnavailable as exc:
                failures += 1
                INFLUX_WRITE_ERRORS.labels(kind="unavailable").inc()
                BACKPRESSURE.labels(stage=STAGE, output="influxdb").set(1)
                log.warning(
                    "write of %d points failed (attempt %d); consuming paused, retrying in %.1f s: %s",
                    len(lines), failures, delay, exc,
                )
                if await stopped_within(stop, delay * random.uniform(0.8, 1.2)):
                    return False
                delay = min(delay * 2, self._settings.influx.max_retry_delay_s)
                continue
            except InfluxRejected:
                INFLUX_WRITE_ERRORS.labels(kind="rejected").inc()
                raise
            if failures:
                log.info("InfluxDB is back after %d failed attempts; consuming again", failures)
            BACKPRESSURE.labels(stage=STAGE, output="influxdb").set(0)
            return True

    async def _dead_letter(self, producer: Producer, dead: Sequence[tuple[Record, PayloadError]]) -> None:
        dlq = self._settings.topics.dlq
        pending = []
        for record, error in dead:
            log.warning("%s[%d]@%d to the DLQ: %s", record.topic, record.partition, record.offset, error)
            letter = DeadLetter(
                raw_b64=base64.b64encode(record.value or b"").decode(),
                source=record.topic,
                reason_code=error.code,
                reason=error.message,
                received_at=datetime.now(UTC),
                payload_format="envelope",
            )
            origin = (("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),)
            pending.append(await producer.send(dlq, encode(letter), key=record.key, headers=origin))
            DEAD_LETTERS.labels(stage=STAGE, reason=error.code).inc()
        for delivery in pending:
            await delivery
        if dead:
            MESSAGES_OUT.labels(stage=STAGE, topic=dlq).inc(len(dead))

    async def _commit(self, consumer: Consumer, batch: Batch) -> None:
        try:
            await consumer.commit(next_offsets(batch.records))
        except BusError as exc:
            # A rebalance took partitions away while the batch was written; their new owner
            # reads them again from the last commit and overwrites the same points.
            log.warning("commit after a rebalance failed (%s); the new owner rewrites those points", exc)
        MESSAGES_IN.labels(stage=STAGE).inc(len(batch.records))
        MESSAGES_OUT.labels(stage=STAGE, topic="influxdb").inc(batch.points)
        PROCESSING_SECONDS.labels(stage=STAGE).observe(time.perf_counter() - batch.started)


async def serve_sink(
    settings: Settings,
    stop: asyncio.Event,
    *,
    bus: Bus | None = None,
    writer: InfluxWriter | None = None,
    group_id: str = DEFAULT_GROUP,
) -> None:
    """The ``riverguard run sink`` service: topics, /metrics + /health, the sink loop.

    ``bus`` and ``writer`` default to Kafka and InfluxDB from ``settings``; what is passed in
    stays open (its owner closes it).
    """
    the_bus: Bus = bus if bus is not None else KafkaBus(settings.kafka)
    the_writer = writer if writer is not None else InfluxWriter(settings.influx)
    try:
        await the_bus.create_topics(topic_specs(settings))
        checks = {"kafka": bus_check(the_bus, sink_topics(settings.topics)), "influxdb": the_writer.ping}
        async with await start_observability(settings, checks, service=STAGE):
            await Sink(settings, the_bus, the_writer, group_id=group_id).run(stop)
    finally:
        if writer is None:
            the_writer.close()
        if bus is None:
            await the_bus.close()
