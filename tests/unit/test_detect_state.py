"""Checkpoints are versioned plain data: a round trip restores identical detections, and a forged,
damaged or outdated record is refused without running anything or stopping the service."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from river.stats import Quantile

from detectors import DetectorStack, StationDetector
from detectors.baseline import ParameterTrack
from detectors.state import PICKLED_HEADER, decode
from ingest.simulator import Simulator, Spill
from pipeline.stages import detect_stage
from riverguard.bus.base import TopicPartition, TopicSpec
from riverguard.bus.memory import MemoryBus
from riverguard.models import Detection, DetectionKind, Reading, encode
from riverguard.settings import Settings, TopicSettings
from riverguard.stations import load_registry

REGISTRY = load_registry()
START = datetime(2024, 7, 1, tzinfo=UTC)
TUO = ["tuo-sanhuangmiao", "tuo-hongyuan", "tuo-shunhechang"]
STATION = TUO[0]


def simulated(hours: int) -> list[Reading]:
    """Three stations every two minutes with a spill travelling down the Tuo and instrument faults."""
    spill = Spill(river="tuo", station_id=STATION, pollutant="NH3N", start=START + timedelta(hours=20),
                  duration=timedelta(hours=2), peak_multiple=6)
    sim = Simulator(REGISTRY, seed=3, start=START, step=timedelta(minutes=2), spills=[spill], faults=True,
                    stations=TUO)
    return list(sim.readings(until=START + timedelta(hours=hours)))


READINGS = simulated(48)


class _RunsCode:
    """What an attacker would write into the changelog: unpickling it runs ``exec``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('ran')",)


def test_round_trip_through_checkpoints_gives_identical_detections() -> None:
    reference = DetectorStack(registry=REGISTRY)
    expected = [d for r in READINGS for d in reference.process(r)]
    stack = DetectorStack(registry=REGISTRY)
    got: list[Detection] = []
    for i, r in enumerate(READINGS):
        if i % 347 == 0:
            # Every station hops through its checkpoint bytes into a new process's stack.
            fresh = DetectorStack(registry=REGISTRY)
            for station in stack.detectors:
                assert fresh.restore(station, stack.checkpoint(station))
            stack = fresh
        got += stack.process(r)
    assert got == expected
    assert {d.kind for d in expected} >= {DetectionKind.POLLUTION_SPIKE, DetectionKind.SENSOR_FAULT}
    hst = stack.detectors[STATION].spikes.hst
    assert hst is not None
    assert hst.trees
    # Nothing is left out of the state: restoring and checkpointing again gives the same bytes.
    for station in stack.detectors:
        again = DetectorStack(registry=REGISTRY)
        again.restore(station, stack.checkpoint(station))
        assert again.checkpoint(station) == stack.checkpoint(station)


def test_checkpoint_is_a_json_document_with_format_and_version() -> None:
    stack = DetectorStack(registry=REGISTRY)
    for r in READINGS[:600]:
        stack.process(r)
    body = json.loads(stack.checkpoint(STATION))
    assert (body["format"], body["version"], body["station_id"]) == ("riverguard.detector-state", 2, STATION)
    assert set(body["tracks"]) >= {"NH3N", "pH"}


def test_forged_pickle_is_refused_without_running_and_the_station_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    stack = DetectorStack(registry=REGISTRY)
    for r in READINGS[:300]:
        stack.process(r)
    assert stack.detectors[STATION].readings == 100
    for forged in (PICKLED_HEADER + pickle.dumps(_RunsCode(marker)), pickle.dumps(_RunsCode(marker))):
        with caplog.at_level(logging.WARNING, logger="detectors.stack"):
            assert stack.restore(STATION, forged) is False
        assert not marker.exists()
        assert STATION not in stack.detectors
    assert f"checkpoint of station {STATION} is a pickled detector" in caplog.text
    assert f"station {STATION} starts fresh" in caplog.text
    stack.process(READINGS[300 + TUO.index(STATION)])
    assert stack.detectors[STATION].readings == 1


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"", "is not a detector state document"),
        (b"\x00\xff garbage", "is not a detector state document"),
        (b'{"format": "riverguard.detector-state", "version": 3}', "has format version 3, this riverguard reads"),
        (b'{"format": "someone-else", "version": 2}', "has format 'someone-else'"),
        (b'{"format": "riverguard.detector-state", "version": 2}', "is malformed"),
    ],
)
def test_unreadable_record_is_refused_with_its_reason(
    record: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    stack = DetectorStack(registry=REGISTRY)
    with caplog.at_level(logging.WARNING, logger="detectors.stack"):
        assert stack.restore(STATION, record) is False
    assert reason in caplog.text
    assert STATION in caplog.text


def test_state_of_another_station_or_with_non_finite_numbers_is_refused() -> None:
    stack = DetectorStack(registry=REGISTRY)
    for r in READINGS[:600]:
        stack.process(r)
    good = stack.checkpoint(STATION)
    assert not DetectorStack(registry=REGISTRY).restore(TUO[1], good)
    body = json.loads(good)
    body["tracks"]["NH3N"]["level"] = float("nan")
    assert not DetectorStack(registry=REGISTRY).restore(STATION, json.dumps(body).encode())
    body = json.loads(good)
    body["spikes"]["forest"]["trees"][0]["l_mass"].pop()
    assert not DetectorStack(registry=REGISTRY).restore(STATION, json.dumps(body).encode())


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node) for leaf in _leaves(value, (*path, i))]
    return [path]


WARM = DetectorStack(registry=REGISTRY)
for _r in READINGS[:1500]:
    WARM.process(_r)
WARM_STATE = json.loads(WARM.checkpoint(STATION))
LEAVES = _leaves(WARM_STATE)
ANY_JSON = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.tuples(st.sampled_from(LEAVES), ANY_JSON), min_size=1, max_size=4))
def test_tampered_state_never_raises_on_restore_or_on_the_next_readings(picks: list[tuple[Any, Any]]) -> None:
    body = json.loads(json.dumps(WARM_STATE))
    for path, value in picks:
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    stack = DetectorStack(registry=REGISTRY)
    restored = stack.restore(STATION, json.dumps(body).encode())
    assert restored == (STATION in stack.detectors)
    for r in READINGS[1500:1800]:
        if r.station_id == STATION:
            stack.process(r)


def test_p2_quantile_layout_round_trips_exactly() -> None:
    rng = random.Random(5)
    track = ParameterTrack()
    for _ in range(700):
        track.tail.update(abs(rng.gauss(0, 1)))
    copy = ParameterTrack.restore(track.snapshot())
    for _ in range(300):
        x = abs(rng.gauss(0, 2))
        track.tail.update(x)
        copy.tail.update(x)
        assert copy.tail.get() == track.tail.get()
    # A quantile with fewer than five values (heights partly filled, unsorted) restores too.
    few = Quantile(0.95)
    for x in (3.0, 1.0):
        few.update(x)
    track.tail = few
    assert ParameterTrack.restore(track.snapshot()).tail.get() == few.get()


def test_decode_names_the_station_of_the_record() -> None:
    detector = StationDetector(REGISTRY.by_id[STATION])
    for r in READINGS[:30]:
        if r.station_id == STATION:
            detector.process(r)
    state = decode(detector.snapshot(STATION).model_dump_json().encode(), STATION)
    assert state.readings == 10


async def test_service_with_a_forged_changelog_record_runs_on(
    tmp_path: Path, memory_bus: MemoryBus, settings: Settings
) -> None:
    """The detect service restores from a changelog holding a code-running pickle: nothing runs,
    the station starts fresh, and its readings are processed."""
    bus = memory_bus
    topics = TopicSettings(readings="r", dlq="dlq", detections="d", incidents="i", notifications="n",
                           detector_state="state")
    settings_ = settings.model_copy(update={"topics": topics})
    await bus.create_topics([TopicSpec("r", 1), TopicSpec("d", 1), TopicSpec("dlq", 1),
                             TopicSpec("state", 1, compacted=True), TopicSpec(topics.verdicts, 1)])
    marker = tmp_path / "pwned"
    forged = PICKLED_HEADER + pickle.dumps(_RunsCode(marker))
    async with bus.producer() as producer:
        await producer.send_and_wait("state", forged, key=STATION.encode())
    stage = detect_stage(settings_, REGISTRY, bus, group_id="g", checkpoint_readings=50, checkpoint_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    spill_free = [r for r in READINGS[:600] if r.station_id == STATION]
    async with bus.producer() as producer:
        for r in spill_free:
            await producer.send_and_wait("r", encode(r), key=STATION.encode())

    async def checkpointed() -> int:
        """Readings of the station's latest checkpoint (0 while the forged record is the latest)."""
        latest = [r.value for r in await bus.read_partition(TopicPartition("state", 0)) if r.value is not None][-1]
        return 0 if latest == forged else decode(latest, STATION).readings

    try:
        for _ in range(600):
            if await checkpointed() == len(spill_free):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert not marker.exists()
    assert await checkpointed() == len(spill_free)
    assert task.exception() is None
