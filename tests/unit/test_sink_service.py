"""The sink stage on the in-memory bus with a scripted InfluxDB: retry, back-pressure, DLQ, commits."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.stages import sink_stage
from riverguard.bus.base import TopicPartition
from riverguard.bus.memory import MemoryBus
from riverguard.bus.topics import topic_specs
from riverguard.models import DeadLetter, Measurement, Reading, SourceFormat, decode, encode
from riverguard.observability import DEAD_LETTERS, INFLUX_WRITE_ERRORS
from riverguard.settings import Settings
from riverguard.stage import StageRuntime
from sink.errors import InfluxRejected, InfluxUnavailable
from sink.influx import InfluxWriter

GROUP = "sink-test"
T0 = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)


class ScriptedInflux(InfluxWriter):
    """Stores lines like InfluxDB (a point overwrites its key); can be down or reject lines."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.influx)
        self.stored: dict[str, str] = {}
        self.attempts = 0
        self.down = False
        self.reject_containing: str | None = None
        self.written = asyncio.Event()

    async def write(self, lines: Sequence[str]) -> None:
        self.attempts += 1
        if self.down:
            raise InfluxUnavailable("connection refused")
        bad = [line for line in lines if self.reject_containing and self.reject_containing in line]
        for line in lines:
            if line not in bad:
                key = line.split(" ")[0] + " " + line.rsplit(" ", 1)[1]  # measurement+tags + time
                self.stored[key] = line
        if bad:
            raise InfluxRejected(400, f"partial write: field type conflict dropped={len(bad)}")
        self.written.set()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"influx": settings.influx.model_copy(update={"flush_interval_ms": 0, "max_retry_delay_s": 0.05})}
    )


async def produce_readings(bus: MemoryBus, settings: Settings, n: int, *, station: str = "tuo-sanhuangmiao") -> None:
    async with bus.producer() as producer:
        for i in range(n):
            r = Reading(
                station_id=station,
                river="tuo",
                time=T0 + timedelta(minutes=i),
                values={"NH3N": Measurement(value=0.1 + i / 100), "pH": Measurement(value=7.5)},
                source_format=SourceFormat.JSON,
            )
            await producer.send_and_wait(settings.topics.readings, encode(r), key=station.encode())


def sink(settings: Settings, bus: MemoryBus, influx: InfluxWriter) -> StageRuntime:
    return sink_stage(settings, bus, influx, group_id=GROUP)


def committed_total(bus: MemoryBus) -> int:
    """Sum of the group's committed offsets over all partitions (= records done, from offset 0)."""
    group = bus._groups.get(GROUP)
    return sum(group.committed.values()) if group else 0


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait (up to 10 s, a hang guard, not a speed check) until ``predicate`` holds."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 10 s")


async def test_readings_are_written_then_committed(memory_bus: MemoryBus, settings: Settings) -> None:
    await memory_bus.create_topics(topic_specs(settings))
    await produce_readings(memory_bus, settings, 20)
    influx = ScriptedInflux(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(sink(settings, memory_bus, influx).run(stop))
    await eventually(lambda: len(influx.stored) == 40)
    await eventually(lambda: committed_total(memory_bus) == 20)
    stop.set()
    await task
    assert any(line.startswith("reading,parameter=NH3N,river=tuo,station=tuo-sanhuangmiao ") for line in
               influx.stored.values())


async def test_while_influxdb_is_down_nothing_is_committed_or_consumed_further(
    memory_bus: MemoryBus, settings: Settings
) -> None:
    settings = settings.model_copy(update={"influx": settings.influx.model_copy(update={"batch_size": 2})})
    await memory_bus.create_topics(topic_specs(settings))
    await produce_readings(memory_bus, settings, 5)
    influx = ScriptedInflux(settings)
    influx.down = True
    before = INFLUX_WRITE_ERRORS.labels(kind="unavailable")._value.get()
    stop = asyncio.Event()
    task = asyncio.create_task(sink(settings, memory_bus, influx).run(stop))
    await eventually(lambda: influx.attempts >= 3)
    assert committed_total(memory_bus) == 0
    await produce_readings(memory_bus, settings, 5, station="tuo-hongyuan")  # more arrives during the outage
    consumer = memory_bus._groups[GROUP].members[0]
    await asyncio.sleep(0.3)  # room for the sink to take more than it should
    held_back = sum((await consumer.lag()).values())
    # In the sink's memory: the batch it keeps trying to write and the next one, prefetched.
    # Everything else waits in the bus.
    assert held_back == 10 - 2 * 2
    influx.down = False
    await eventually(lambda: len(influx.stored) == 20)
    await eventually(lambda: committed_total(memory_bus) == 10)
    stop.set()
    await task
    assert INFLUX_WRITE_ERRORS.labels(kind="unavailable")._value.get() - before >= 3


async def test_stopping_during_an_outage_commits_nothing(memory_bus: MemoryBus, settings: Settings) -> None:
    await memory_bus.create_topics(topic_specs(settings))
    await produce_readings(memory_bus, settings, 3)
    influx = ScriptedInflux(settings)
    influx.down = True
    stop = asyncio.Event()
    task = asyncio.create_task(sink(settings, memory_bus, influx).run(stop))
    await eventually(lambda: influx.attempts >= 2)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert memory_bus._groups[GROUP].committed == {}

    influx.down = False  # a restarted sink writes everything
    stop = asyncio.Event()
    task = asyncio.create_task(sink(settings, memory_bus, influx).run(stop))
    await eventually(lambda: len(influx.stored) == 6)
    stop.set()
    await task


async def test_unmappable_and_rejected_records_go_to_the_dlq_and_the_rest_is_written(
    memory_bus: MemoryBus, settings: Settings
) -> None:
    await memory_bus.create_topics(topic_specs(settings))
    await produce_readings(memory_bus, settings, 3)
    async with memory_bus.producer() as producer:
        await producer.send_and_wait(settings.topics.readings, b"{not json", key=b"tuo-sanhuangmiao")
        await producer.send_and_wait(settings.topics.incidents, b'{"payload": {"incident_id": "x"}}', key=b"x")
    influx = ScriptedInflux(settings)
    influx.reject_containing = "value=0.11 "  # the second reading's NH3N point: InfluxDB says 400
    before = DEAD_LETTERS.labels(stage="sink", reason="influx_rejected")._value.get()
    stop = asyncio.Event()
    task = asyncio.create_task(sink(settings, memory_bus, influx).run(stop))
    await eventually(lambda: committed_total(memory_bus) == 5)
    stop.set()
    await task

    letters = []
    for p in range(await memory_bus.partitions(settings.topics.dlq)):
        for record in await memory_bus.read_partition(TopicPartition(settings.topics.dlq, p)):
            assert record.value is not None
            letters.append(decode(record.value, DeadLetter).payload)
    reasons = sorted((letter.source, letter.reason_code) for letter in letters)
    assert reasons == [
        (settings.topics.incidents, "invalid_record"),
        (settings.topics.readings, "influx_rejected"),
        (settings.topics.readings, "invalid_record"),
    ]
    assert any(base64.b64decode(letter.raw_b64) == b"{not json" for letter in letters)
    assert len(influx.stored) == 5  # 3 readings x 2 parameters, minus the rejected one
    assert DEAD_LETTERS.labels(stage="sink", reason="influx_rejected")._value.get() - before == 1
