"""The detect stage's scenarios, run on the in-memory bus and on Kafka (``tests/contract/test_detect_stage.py``)
and by other detector tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from detectors import DetectorStack
from detectors.service import DetectProcessor
from pipeline.stages import detect_stage
from riverguard.bus.base import Bus, TopicPartition, TopicSpec
from riverguard.incidents import Verdict
from riverguard.models import Detection, DetectionKind, Reading, decode, encode
from riverguard.settings import Settings, TopicSettings
from riverguard.stations import load_registry
from riverguard.verdicts import StationVerdict
from tests.support.readings import STATION, reading

PARTITIONS = 3
REGISTRY = load_registry()
STATIONS = [s.station_id for s in REGISTRY.stations[:6]]


def scoped(settings: Settings, unique: str) -> Settings:
    topics = TopicSettings(
        readings=f"readings-{unique}", dlq=f"dlq-{unique}", detections=f"detections-{unique}",
        incidents=f"incidents-{unique}", notifications=f"notifications-{unique}",
        detector_state=f"state-{unique}", verdicts=f"verdicts-{unique}",
    )
    return settings.model_copy(update={"topics": topics})


async def create_topics(bus: Bus, settings: Settings) -> None:
    t = settings.topics
    await bus.create_topics([
        TopicSpec(t.readings, PARTITIONS), TopicSpec(t.detections, PARTITIONS), TopicSpec(t.dlq, PARTITIONS),
        TopicSpec(t.detector_state, PARTITIONS, compacted=True), TopicSpec(t.verdicts, PARTITIONS),
    ])


def station_reading(station_id: str, i: int, spill: bool = False) -> Reading:
    station = REGISTRY.by_id[station_id]
    base = reading(i, NH3N=2.4 + 0.001 * (i % 3), DO=6.0 + 0.01 * (i % 2)) if spill else reading(i)
    return base.model_copy(update={"station_id": station_id, "river": station.river})


async def produce(bus: Bus, settings: Settings, readings: list[Reading]) -> None:
    async with bus.producer() as producer:
        topic = settings.topics.readings
        pending = [await producer.send(topic, encode(r), key=r.station_id.encode()) for r in readings]
        for delivery in pending:
            await delivery


async def all_records(bus: Bus, topic: str) -> list[bytes]:
    out = []
    for p in range(await bus.partitions(topic)):
        out += [r.value for r in await bus.read_partition(TopicPartition(topic, p)) if r.value is not None]
    return out


async def detections(bus: Bus, settings: Settings) -> list[Detection]:
    return [decode(v, Detection).payload for v in await all_records(bus, settings.topics.detections)]


async def checkpointed(bus: Bus, settings: Settings) -> DetectorStack:
    """A stack restored from each station's latest checkpoint in the changelog."""
    latest: dict[str, bytes] = {}
    for records in (await bus.read_topics([settings.topics.detector_state])).values():
        for record in records:
            assert record.key is not None
            assert record.value is not None
            latest[record.key.decode()] = record.value
    stack = DetectorStack(registry=REGISTRY)
    for station, state in latest.items():
        stack.restore(station, state)
    return stack


async def checkpointed_readings(bus: Bus, settings: Settings) -> dict[str, int]:
    """Readings each station's latest checkpoint has learned from."""
    return {station: d.readings for station, d in (await checkpointed(bus, settings)).detectors.items()}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


class Member:
    """A detect stage running in a task, as a separate process would."""

    def __init__(self, bus: Bus, settings: Settings, group: str) -> None:
        self.stop = asyncio.Event()
        self.runtime = detect_stage(settings, REGISTRY, bus, group_id=group, checkpoint_readings=50,
                                    checkpoint_seconds=0.5)
        assert isinstance(self.runtime.processor, DetectProcessor)
        self.stack = self.runtime.processor.stack
        self.readings = settings.topics.readings
        self.task = asyncio.create_task(self.runtime.run(self.stop))

    def assigned(self) -> int:
        """Readings partitions held (the verdicts partitions of the same numbers come with them)."""
        return sum(tp.topic == self.readings for tp in self.runtime.assignment())

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def restart_restores_state(bus: Bus, settings: Settings, group: str) -> None:
    await create_topics(bus, settings)
    station = STATION.station_id
    warm = [station_reading(station, i) for i in range(200)]
    first = Member(bus, settings, group)
    await produce(bus, settings, warm)

    async def learned_all() -> bool:
        return (await checkpointed_readings(bus, settings)).get(station) == len(warm)

    await eventually(learned_all, "the first member to checkpoint 200 readings")
    await first.close()
    assert not [d for d in await detections(bus, settings) if d.kind.is_pollution]

    # A fresh detector would still be warming up and learn the plume as normal; the restored one
    # knows the baseline and reports it.
    second = Member(bus, settings, group)
    await produce(bus, settings, [station_reading(station, i, spill=True) for i in range(200, 240)])

    async def spike_reported() -> bool:
        return any(d.kind is DetectionKind.POLLUTION_SPIKE for d in await detections(bus, settings))

    await eventually(spike_reported, "a pollution spike from the restored detector")
    await second.close()
    assert (await checkpointed_readings(bus, settings))[station] == 240


async def two_members_emit_each_detection_once(bus: Bus, settings: Settings, group: str) -> None:
    await create_topics(bus, settings)
    members = [Member(bus, settings, group), Member(bus, settings, group)]

    async def split() -> bool:
        counts = [m.assigned() for m in members]
        return all(counts) and sum(counts) == PARTITIONS

    await eventually(split, "both members to own partitions")
    readings = [
        station_reading(s, i, spill=150 <= i < 190) for i in range(230) for s in STATIONS
    ]
    await produce(bus, settings, readings)
    reference = DetectorStack(registry=REGISTRY)
    expected = sorted(d.detection_id for r in readings for d in reference.process(r))
    assert len(expected) >= len(STATIONS)

    async def all_emitted() -> bool:
        return len(await detections(bus, settings)) >= len(expected)

    await eventually(all_emitted, f"{len(expected)} detections")
    await asyncio.sleep(1.0)  # room for duplicates to show up if there were any
    owned = [set(m.stack.detectors) for m in members]
    for member in members:
        await member.close()
    emitted = sorted(d.detection_id for d in await detections(bus, settings))
    assert emitted == expected
    assert owned[0]
    assert owned[1]
    assert not owned[0] & owned[1]




async def verdicts_are_learned_and_checkpointed(bus: Bus, settings: Settings, group: str) -> None:
    """A false alarm on a station's incident makes its detector weigh pollution evidence less; the
    checkpoint keeps it (so a restarted member still knows it); an unreadable verdict is
    dead-lettered."""
    await create_topics(bus, settings)
    station = STATION.station_id
    member = Member(bus, settings, group)
    warm = [station_reading(station, i) for i in range(60)]
    await produce(bus, settings, warm)
    t = warm[10].time
    verdict = StationVerdict(station_id=station, incident_id="RG-TEST0001", verdict=Verdict.FALSE_ALARM,
                             window_start=t, window_end=warm[20].time, parameters=("NH3N",), by="张三", at=t)
    async with bus.producer() as producer:
        await producer.send_and_wait(settings.topics.verdicts, encode(verdict), key=station.encode())
        await producer.send_and_wait(settings.topics.verdicts, b'{"not": "a verdict"}', key=station.encode())

    async def checkpointed_weight() -> float | None:
        detector = (await checkpointed(bus, settings)).detectors.get(station)
        return detector.feedback.weight(warm[-1].time) if detector is not None else None

    async def learned() -> bool:
        weight = await checkpointed_weight()
        return weight is not None and weight < 1.0

    await eventually(learned, "the checkpoint to carry the false alarm")

    async def dead_lettered() -> bool:
        return any(b"bad_verdict" in v for v in await all_records(bus, settings.topics.dlq))

    await eventually(dead_lettered, "the unreadable verdict in the DLQ")
    await member.close()
    assert await checkpointed_weight() == 0.85  # detectors.feedback: x0.85 per false alarm
