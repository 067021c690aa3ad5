"""What the console calls on the alert service, without a browser: runtime silences persisted to
their compacted topic and restored on start, verdicts produced per station beside its readings,
and the console served by the alert stage only when a users file is configured."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from alerts.errors import SilenceError
from riverguard.bus.base import Bus, TopicPartition
from riverguard.bus.memory import MemoryBus
from riverguard.incidents import Silence, SilenceRecord, Verdict
from riverguard.models import Detection, decode, encode
from riverguard.settings import ConsoleSettings, Settings
from riverguard.verdicts import StationVerdict
from tests.console.conftest import T0, console_settings, eventually, running, spill
from tests.support.clock import ManualClock

pytestmark = pytest.mark.integration


async def publish(bus: Bus, settings: Settings, *detections: Detection) -> None:
    async with bus.producer() as producer:
        for d in detections:
            await producer.send_and_wait(settings.topics.detections, encode(d), key=d.station_id.encode())


async def records(bus: Bus, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """(partition, key, value) of every record of ``topic``."""
    return [(p, r.key, r.value) for p in range(await bus.partitions(topic))
            for r in await bus.read_partition(TopicPartition(topic, p))]


async def test_a_runtime_silence_survives_restarts_and_its_end_does_too(
    tmp_path: Path, settings: Settings, unique: str
) -> None:
    cfg = console_settings(tmp_path, settings, unique)
    bus, clock, group = MemoryBus(default_partitions=2), ManualClock(T0), f"console-{unique}"
    silence = Silence(river="tuo", pollutant="NH3N", until=T0 + timedelta(hours=4), reason="上游企业报备的检修排放")
    async with running(cfg, bus, clock, group) as service:
        await publish(bus, cfg, spill(0))
        await eventually(service.book.incidents, "no incident")
        incident_id = service.book.incidents()[0].incident_id
        record = await service.add_silence(silence, "张三")
        with pytest.raises(SilenceError, match="routing file"):
            await service.expire_silence("routing:0", "张三")
        with pytest.raises(SilenceError, match="SIL-NOPE"):
            await service.expire_silence("SIL-NOPE", "张三")
    persisted = [decode(v, SilenceRecord).payload for _, k, v in await records(bus, cfg.topics.silences)
                 if v is not None and k == record.silence_id.encode()]
    assert persisted == [record]

    async with running(cfg, bus, clock, group) as service:  # a restart: the book and the silence come back
        assert [s.silence_id for s in service.silences()] == ["routing:0", record.silence_id]
        assert service.book.get(incident_id).silence_id == record.silence_id
        clock.advance(minutes=10)
        await eventually(lambda: service.book.get(incident_id).reminders_sent == 1, "no reminder at 10 min")
        reminder = service.book.get(incident_id).outbox[-1]
        assert (reminder.reason.value, reminder.status.value) == ("reminder", "suppressed")
        ended = await service.expire_silence(record.silence_id, "李四")
        assert (ended.expired_by, ended.expired_at) == ("李四", clock())

    async with running(cfg, bus, clock, group) as service:  # ended stays ended
        assert [s.silence_id for s in service.silences()] == ["routing:0"]
        assert service.book.get(incident_id).silence_id == ""
    await bus.close()


async def test_a_verdict_goes_to_each_station_in_the_partition_of_its_readings(
    tmp_path: Path, settings: Settings, unique: str
) -> None:
    cfg = console_settings(tmp_path, settings, unique)
    bus, clock = MemoryBus(default_partitions=3), ManualClock(T0)
    async with running(cfg, bus, clock, f"console-{unique}") as service:
        await publish(bus, cfg, spill(0), spill(40, station="tuo-damozi"))  # the plume reached the next station
        await eventually(lambda: [len(i.stations) for i in service.book.incidents()] == [2],
                         "the plume did not reach tuo-damozi")
        incident = service.book.incidents()[0]
        clock.advance(hours=2)
        await service.resolve(incident.incident_id, "张三", "探头附着物", Verdict.FALSE_ALARM)
        await service.resolve(incident.incident_id, "科长", verdict=Verdict.CONFIRMED_POLLUTION)  # corrected later
        await service.resolve(incident.incident_id, "科长")  # no verdict: nothing new for the detectors
        async with bus.producer() as producer:
            for station in incident.stations:
                await producer.send_and_wait(cfg.topics.readings, b"{}", key=station.encode())
    readings = {k: p for p, k, _ in await records(bus, cfg.topics.readings)}
    labels = [(p, k, decode(v, StationVerdict).payload) for p, k, v in await records(bus, cfg.topics.verdicts)
              if v is not None]
    assert sorted((v.station_id, v.verdict.value, v.by) for _, _, v in labels) == [
        ("tuo-damozi", "confirmed_pollution", "科长"), ("tuo-damozi", "false_alarm", "张三"),
        ("tuo-jiaoxiancun", "confirmed_pollution", "科长"), ("tuo-jiaoxiancun", "false_alarm", "张三")]
    for partition, key, label in labels:
        assert key == label.station_id.encode()
        assert partition == readings[key]  # the detect stage finds a station's verdicts beside its readings
        assert (label.incident_id, label.parameters) == (incident.incident_id, ("NH3N",))
        assert (label.window_start, label.window_end) == (T0, T0 + timedelta(minutes=40))
    assert len({p for p, _, _ in labels}) == 2  # the two stations' keys do fall in different partitions here
    await bus.close()


async def test_the_alert_stage_serves_the_console_only_with_a_users_file(
    tmp_path: Path, settings: Settings, unique: str
) -> None:
    with_console = console_settings(tmp_path, settings, unique)
    without = with_console.model_copy(update={"console": ConsoleSettings()})
    for cfg, expected in ((with_console, 200), (without, 404)):
        bus = MemoryBus(default_partitions=1)
        async with running(cfg, bus, ManualClock(T0), f"console-{unique}-{expected}") as service:
            assert service.api is not None
            base = f"http://127.0.0.1:{service.api.port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/console/login") as page:
                    assert page.status == expected
                async with http.get(f"{base}/healthz") as health:
                    assert health.status == 200
        await bus.close()
