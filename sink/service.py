"""The sink stage: readings, detections, incidents and notifications → InfluxDB.

A processor of the stage runtime (:mod:`riverguard.stage`) over the four topics. Per batch (up to
``influx.batch_size`` records, lingering ``influx.flush_interval_ms`` after its first record;
the runtime fetches the next batch while this one is written):

1. map every record to points (:mod:`sink.points`); a record that cannot be mapped goes to the
   DLQ with the reason, nothing is dropped;
2. write the points in one request. While InfluxDB is unreachable the sink retries with
   exponential backoff (up to ``influx.max_retry_delay_s``) and handles nothing else meanwhile:
   back-pressure, the backlog waits in Kafka, where it is durable, instead of in memory;
3. if InfluxDB rejects the batch as invalid (HTTP 400), write record by record and send the
   records it still rejects to the DLQ with InfluxDB's reason;
4. the runtime produces the dead letters, then commits the input offsets.

A crash anywhere before 4 re-delivers the batch, and the re-written points overwrite
themselves (same measurement, tags and timestamp), so at-least-once delivery leaves no
duplicates in InfluxDB.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from riverguard.bus.base import Record
from riverguard.bus.topics import topic_specs
from riverguard.errors import PayloadError
from riverguard.models import DeadLetter, encode
from riverguard.observability import BACKPRESSURE, DEAD_LETTERS, INFLUX_WRITE_ERRORS, MESSAGES_OUT
from riverguard.settings import Settings, TopicSettings
from riverguard.stage import Interrupted, Outgoing, Processor, StageConfig, StageContext, stopped_within
from sink.errors import InfluxRejected, InfluxUnavailable
from sink.influx import InfluxWriter
from sink.points import record_lines

log = logging.getLogger(__name__)

STAGE: Final = "sink"
DEFAULT_GROUP: Final = "riverguard-sink"
_FIRST_RETRY_S: Final = 0.5
_IDLE_POLL_MS: Final = 500


def sink_topics(topics: TopicSettings) -> list[str]:
    """The topics the sink reads."""
    return [topics.readings, topics.detections, topics.incidents, topics.notifications]


def sink_config(settings: Settings, group_id: str = DEFAULT_GROUP) -> StageConfig:
    """Batches of up to ``influx.batch_size`` records, lingering ``influx.flush_interval_ms``."""
    influx = settings.influx
    return StageConfig(group_id=group_id, max_records=influx.batch_size, poll_timeout_ms=_IDLE_POLL_MS,
                       linger_ms=influx.flush_interval_ms)


class SinkProcessor(Processor):
    """Records → line protocol → InfluxDB; what cannot be mapped or written → the DLQ."""

    stage = STAGE

    def __init__(self, settings: Settings, writer: InfluxWriter) -> None:
        self._settings = settings
        self._writer = writer
        self._context: StageContext | None = None

    def topics(self) -> Sequence[str]:
        return sink_topics(self._settings.topics)

    async def start(self, context: StageContext) -> None:
        self._context = context
        await context.bus.create_topics(topic_specs(self._settings))
        log.info("sink: %s → %s", ", ".join(self.topics()), self._settings.influx.bucket)

    async def handle(self, records: Sequence[Record]) -> Sequence[Outgoing]:
        lines: list[list[str]] = []
        dead: list[tuple[Record, PayloadError]] = []
        for record in records:
            try:
                lines.append(record_lines(record.topic, record.value, self._settings.topics))
            except PayloadError as exc:
                dead.append((record, exc))
                lines.append([])
        await self._write(records, lines, dead)
        MESSAGES_OUT.labels(stage=STAGE, topic="influxdb").inc(sum(len(of_record) for of_record in lines))
        return [self._dead_letter(record, error) for record, error in dead]

    async def _write(self, records: Sequence[Record], lines: list[list[str]],
                     dead: list[tuple[Record, PayloadError]]) -> None:
        every = [line for of_record in lines for line in of_record]
        try:
            await self._write_retrying(every)
            return
        except InfluxRejected as exc:
            log.warning("InfluxDB rejected a batch of %d points (%s); writing record by record", len(every), exc)
        for record, of_record in zip(records, lines, strict=True):
            try:
                await self._write_retrying(of_record)
            except InfluxRejected as exc:
                dead.append((record, PayloadError("influx_rejected", str(exc))))

    async def _write_retrying(self, lines: Sequence[str]) -> None:
        """Write ``lines``, retrying while InfluxDB is unavailable; Interrupted when asked to stop meanwhile."""
        assert self._context is not None
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
                if await stopped_within(self._context.stop, delay * random.uniform(0.8, 1.2)):
                    raise Interrupted from exc
                delay = min(delay * 2, self._settings.influx.max_retry_delay_s)
                continue
            except InfluxRejected:
                INFLUX_WRITE_ERRORS.labels(kind="rejected").inc()
                raise
            if failures:
                log.info("InfluxDB is back after %d failed attempts; consuming again", failures)
            BACKPRESSURE.labels(stage=STAGE, output="influxdb").set(0)
            return

    def _dead_letter(self, record: Record, error: PayloadError) -> Outgoing:
        log.warning("%s[%d]@%d to the DLQ: %s", record.topic, record.partition, record.offset, error)
        DEAD_LETTERS.labels(stage=STAGE, reason=error.code).inc()
        letter = DeadLetter(
            raw_b64=base64.b64encode(record.value or b"").decode(),
            source=record.topic,
            reason_code=error.code,
            reason=error.message,
            received_at=datetime.now(UTC),
            payload_format="envelope",
        )
        origin = (("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),)
        return Outgoing(self._settings.topics.dlq, encode(letter), key=record.key, headers=origin)
