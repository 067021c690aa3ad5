"""A station that stops sending gets its data-gap onset while it is silent, judged by event time."""

from __future__ import annotations

from datetime import timedelta

from detectors import DetectorStack, EventClock
from riverguard.bus.base import TopicSpec
from riverguard.bus.memory import MemoryBus
from riverguard.models import Detection, DetectionKind, DetectionPhase, Reading
from riverguard.settings import Settings
from tests.support.detect_stage import (
    REGISTRY,
    STATIONS,
    Member,
    detections,
    eventually,
    produce,
    scoped,
    station_reading,
)
from tests.support.readings import T0

LIVE, DARK = STATIONS[0], STATIONS[1]


def gaps(out: list[Detection], station: str) -> list[Detection]:
    return [d for d in out if d.kind is DetectionKind.DATA_GAP and d.station_id == station]


def feed(stack: DetectorStack, readings: list[Reading]) -> list[Detection]:
    """Readings one by one, with a silence check at the event time reached after each."""
    clock = EventClock(check_every_s=0.0)
    out: list[Detection] = []
    for r in readings:
        out += stack.process(r)
        clock.observe(0, r.time)
        for _, watermark in clock.due():
            out += stack.check_silence(watermark)
    return out


def test_silent_station_gets_one_onset_while_silent_and_a_cleared_on_resume() -> None:
    stack = DetectorStack(registry=REGISTRY)
    both = [station_reading(s, i) for i in range(60) for s in (LIVE, DARK)]
    assert gaps(feed(stack, both), DARK) == []

    # DARK's last reading was minute 59; LIVE goes on alone for an hour.
    alone = feed(stack, [station_reading(LIVE, i) for i in range(60, 120)])
    onset = gaps(alone, DARK)
    assert [d.phase for d in onset] == [DetectionPhase.ONSET]
    assert onset[0].time == T0 + timedelta(minutes=59)
    assert gaps(alone, LIVE) == []

    # A checkpoint taken while the gap is open keeps it open: the resume only clears.
    restored = DetectorStack(registry=REGISTRY)
    for station in (LIVE, DARK):
        restored.restore(station, stack.checkpoint(station))
    resumed = feed(restored, [station_reading(s, i) for i in range(120, 130) for s in (LIVE, DARK)])
    cleared = gaps(resumed, DARK)
    assert [d.phase for d in cleared] == [DetectionPhase.CLEARED]
    assert cleared[0].event_id == onset[0].event_id
    assert cleared[0].time == T0 + timedelta(minutes=120)


def test_short_pause_below_the_minimum_is_not_silence() -> None:
    stack = DetectorStack(registry=REGISTRY)
    feed(stack, [station_reading(s, i) for i in range(60) for s in (LIVE, DARK)])
    # 14 minutes without DARK: more than 3 intervals, less than the 15-minute minimum.
    assert gaps(feed(stack, [station_reading(LIVE, i) for i in range(60, 74)]), DARK) == []


def test_stations_silent_together_raise_no_onset_while_event_time_stands_still() -> None:
    stack = DetectorStack(registry=REGISTRY)
    feed(stack, [station_reading(s, i) for i in range(60) for s in (LIVE, DARK)])
    # Nothing arrives for three hours (the feed stalled): the watermark stays at minute 59.
    assert stack.check_silence(T0 + timedelta(minutes=59)) == []
    # When both come back, the pause is reported by the reading that ends it, once per station.
    out = feed(stack, [station_reading(s, 240) for s in (LIVE, DARK)])
    for station in (LIVE, DARK):
        assert [d.phase for d in gaps(out, station)] == [DetectionPhase.ONSET, DetectionPhase.CLEARED]


async def test_service_reports_a_silent_station_before_it_resumes(
    memory_bus: MemoryBus, settings: Settings, unique: str
) -> None:
    s = scoped(settings, unique)
    t = s.topics
    # One partition, so both stations share one event time.
    await memory_bus.create_topics([
        TopicSpec(t.readings, 1), TopicSpec(t.detections, 1), TopicSpec(t.dlq, 1),
        TopicSpec(t.detector_state, 1, compacted=True), TopicSpec(t.verdicts, 1),
    ])
    member = Member(memory_bus, s, f"detect-{unique}")
    await produce(memory_bus, s, [station_reading(st, i) for i in range(60) for st in (LIVE, DARK)])
    await produce(memory_bus, s, [station_reading(LIVE, i) for i in range(60, 120)])

    async def onset_seen() -> bool:
        return bool(gaps(await detections(memory_bus, s), DARK))

    await eventually(onset_seen, "a data-gap onset for the silent station")
    assert [d.phase for d in gaps(await detections(memory_bus, s), DARK)] == [DetectionPhase.ONSET]

    await produce(memory_bus, s, [station_reading(st, i) for i in range(120, 125) for st in (LIVE, DARK)])

    async def cleared_seen() -> bool:
        return len(gaps(await detections(memory_bus, s), DARK)) >= 2

    await eventually(cleared_seen, "the data gap to clear")
    await member.close()
    dark = gaps(await detections(memory_bus, s), DARK)
    assert [d.phase for d in dark] == [DetectionPhase.ONSET, DetectionPhase.CLEARED]
    assert dark[0].event_id == dark[1].event_id
    assert gaps(await detections(memory_bus, s), LIVE) == []
