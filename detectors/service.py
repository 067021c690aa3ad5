"""The detect stage: the detector stack as a processor of the stage runtime (the imperative shell).

Readings (key = station id) come from ``topics.readings``; detections go to ``topics.detections``
(key = station id, so one station's events stay ordered); each station's detector state goes to
the compacted changelog ``topics.detector_state`` under the same key. Both topics have the same
partition count, so a station's readings and its checkpoint live on the same partition number,
and a member that is assigned readings partition *p* restores state from changelog partition *p*.

Operator verdicts (:class:`~riverguard.verdicts.StationVerdict`, from the console through the
alert service) come from ``topics.verdicts``, keyed and partitioned like the readings: the bus
gives partition *p* of both topics to the same member, so the member that holds a station's
detector learns its verdicts (:meth:`DetectorStack.learn_verdict`, idempotent per incident) and
checkpoints them with the rest of its state.

The runtime (:mod:`riverguard.stage`) commits input offsets only together with the checkpoints
of every station that read since the last commit: every ``checkpoint_readings`` readings of a
station, every ``checkpoint_seconds`` seconds (the runtime's commit interval), and before
partitions are revoked. After a crash the state and the committed offsets agree; re-delivered
readings re-create detections with the same ids, and a checkpoint newer than the commit makes the
detector skip readings it already learned from.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from pydantic import ValidationError

from detectors.stack import DetectorStack, EventClock
from riverguard.bus.base import Record, TopicPartition
from riverguard.bus.topics import topic_specs
from riverguard.errors import ConfigError, describe_validation_error
from riverguard.models import DeadLetter, Reading, decode, encode
from riverguard.observability import DEAD_LETTERS
from riverguard.settings import Settings
from riverguard.stage import Outgoing, Processor, StageConfig, StageContext
from riverguard.verdicts import StationVerdict

log = logging.getLogger(__name__)

STAGE: Final = "detect"
DEFAULT_GROUP: Final = "riverguard-detect"


def detect_config(group_id: str = DEFAULT_GROUP, *, checkpoint_seconds: float = 30.0) -> StageConfig:
    """How the detect stage consumes: offsets are committed with the checkpoints."""
    return StageConfig(group_id=group_id, commit_interval_s=checkpoint_seconds)


class DetectProcessor(Processor):
    """Readings in, detections out; per-station state checkpointed to the changelog."""

    stage = STAGE

    def __init__(self, settings: Settings, stack: DetectorStack, *, checkpoint_readings: int = 1000) -> None:
        self.settings = settings
        self.stack = stack
        self.checkpoint_readings = checkpoint_readings
        self._context: StageContext | None = None
        self._partition_of: dict[str, int] = {}
        self._dirty: dict[str, int] = {}  # station id -> readings since its last checkpoint
        self._clock = EventClock(stack.config.silence_check_s)

    def topics(self) -> Sequence[str]:
        return [self.settings.topics.readings, self.settings.topics.verdicts]

    async def start(self, context: StageContext) -> None:
        self._context = context
        topics = self.settings.topics
        mine = {topics.readings, topics.detections, topics.detector_state, topics.dlq, topics.verdicts}
        await context.bus.create_topics([s for s in topic_specs(self.settings) if s.name in mine])
        readings_n = await context.bus.partitions(topics.readings)
        for keyed_alike in (topics.detector_state, topics.verdicts):
            n = await context.bus.partitions(keyed_alike)
            if n != readings_n:
                raise ConfigError(
                    f"topic {keyed_alike} has {n} partitions but {topics.readings} has {readings_n}; they must "
                    "match so a station's state and verdicts sit on the partition number of its readings"
                )

    async def handle(self, records: Sequence[Record]) -> Sequence[Outgoing]:
        outputs = [o for record in records for o in self._process(record)]
        outputs += self._silent_stations()
        return outputs

    def checkpoint(self) -> Sequence[Outgoing]:
        """The state of every station that read since the last commit."""
        changelog = self.settings.topics.detector_state
        records = [
            Outgoing(changelog, self.stack.checkpoint(station), key=station.encode())
            for station in self._dirty
            if station in self.stack.detectors
        ]
        self._dirty.clear()
        return records

    def commit_due(self) -> bool:
        return any(n >= self.checkpoint_readings for n in self._dirty.values())

    async def assigned(self, partitions: frozenset[TopicPartition]) -> None:
        assert self._context is not None
        changelog = self.settings.topics.detector_state
        restored = 0
        # The readings partitions' numbers: those of the verdicts topic are the same (co-partitioned).
        numbers = sorted({tp.partition for tp in partitions})
        states = await self._context.bus.read_partitions([TopicPartition(changelog, n) for n in numbers])
        for number in numbers:
            latest: dict[str, bytes | None] = {}
            for record in states[TopicPartition(changelog, number)]:
                if record.key is not None:
                    latest[record.key.decode()] = record.value
            for station, state in latest.items():
                if state is None:
                    self.stack.forget(station)
                    continue
                self.stack.restore(station, state)
                self._partition_of[station] = number
                restored += 1
        log.info("detect: assigned partitions %s, restored %d station states from %s", numbers, restored, changelog)

    async def revoked(self, partitions: frozenset[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        for partition in numbers:
            self._clock.forget(partition)
        for station, partition in list(self._partition_of.items()):
            if partition in numbers:
                self.stack.forget(station)
                del self._partition_of[station]

    def _dead_letter(self, record: Record, code: str, reason: str) -> Outgoing:
        DEAD_LETTERS.labels(STAGE, code).inc()
        letter = DeadLetter(
            raw_b64=base64.b64encode(record.value or b"").decode(),
            source=f"{record.topic}/{record.partition}@{record.offset}",
            reason_code=code,
            reason=reason,
            received_at=datetime.now(UTC),
            payload_format="envelope",
        )
        return Outgoing(self.settings.topics.dlq, encode(letter), key=record.key)

    def _process(self, record: Record) -> list[Outgoing]:
        if record.topic == self.settings.topics.verdicts:
            return self._learn(record)
        topics = self.settings.topics
        try:
            if record.value is None:
                raise ValueError("empty record value")
            reading = decode(record.value, Reading).payload
        except (ValidationError, ValueError) as exc:
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            return [self._dead_letter(record, "bad_reading", reason)]
        station = reading.station_id
        self._clock.observe(record.partition, reading.time)
        self._partition_of[station] = record.partition
        self._dirty[station] = self._dirty.get(station, 0) + 1
        key = station.encode()
        return [Outgoing(topics.detections, encode(d), key=key) for d in self.stack.process(reading)]

    def _learn(self, record: Record) -> list[Outgoing]:
        """An operator verdict on one station's incident: the station's detector learns it, and
        its next checkpoint keeps it. One that cannot be read or learned is dead-lettered."""
        try:
            if record.value is None:
                raise ValueError("empty record value")
            v = decode(record.value, StationVerdict).payload
            self.stack.learn_verdict(v.station_id, v.verdict.value, v.window_start, v.window_end, label=v.label_id)
        except (ValidationError, ValueError) as exc:
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            return [self._dead_letter(record, "bad_verdict", reason)]
        self._partition_of[v.station_id] = record.partition
        self._dirty.setdefault(v.station_id, 0)
        log.info("detect: learned %s on %s for station %s", v.verdict.value, v.incident_id, v.station_id)
        return []

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
