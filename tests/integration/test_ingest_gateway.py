"""The HJ 212 gateway on real sockets and the real Kafka of the stack: the standard's frames and
answers byte for byte, rejections with reasons, commands to a connected station, the same records
as the MQTT path, and a crash that loses nothing acknowledged.

Cost: about 110 s on the shared 2-core box (each test starts a gateway: 10–25 s apiece; the whole
chain through detect and alerts ~25 s, the crash test ~20 s with two gateway processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY as METRICS
from pydantic import SecretStr

from ingest.bridge import Bridge
from ingest.codecs import encode_hj212
from ingest.datalogger import DataLogger, LoggerState
from ingest.gateway import Gateway
from ingest.hj212 import Frame, build_frame, crc16, parse_frame, split_frame
from pipeline.harness.mqtt import dev_password
from pipeline.stages import alert_stage, detect_stage
from riverguard.bus.base import TopicPartition
from riverguard.bus.kafka import KafkaBus
from riverguard.commands import CommandKind, CommandOutcome, CommandResult
from riverguard.errors import RiverguardError
from riverguard.incidents import Incident
from riverguard.models import DeadLetter, Measurement, Reading, SourceFormat, decode
from riverguard.settings import Settings
from riverguard.stations import StationRegistry, StationSecrets, load_registry
from tests.support.services import require_service, running, service_processes

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MN = "010000A8900016F000169DC0"  # the standard's examples
EXAMPLE = {"station_id": "std-example", "mn": MN, "river": "tuo", "section": "示例", "city": "泸州",
           "parameters": ["COD", "pH"]}
BUILT_IN = load_registry()
REGISTRY = StationRegistry.model_validate({"stations": [*(s.model_dump() for s in BUILT_IN.stations), EXAMPLE]})
STATION = REGISTRY.by_id["tuo-sanhuangmiao"]
OTHER = REGISTRY.by_id["tuo-lijiawan"]
PASSWORDS = {"std-example": "123456", STATION.station_id: "sim-pw-1", OTHER.station_id: "sim-pw-2"}
SECRETS = StationSecrets({k: SecretStr(v) for k, v in PASSWORDS.items()})
UPLOAD = (b"##0140QN=20160801085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
          b"CP=&&DataTime=20160801085857;w01018-Rtd=50.1,w01018-Flag=N&&2C40\r\n")


def frame(data: str) -> bytes:
    raw = data.encode()
    return b"##%04d%s%04X\r\n" % (len(raw), raw, crc16(raw))


@pytest.fixture
def gateway_settings(kafka_settings: Settings, unique: str, tmp_path: Path) -> Settings:
    passwords = tmp_path / "passwords.yaml"
    passwords.write_text("".join(f"{k}: '{v}'\n" for k, v in PASSWORDS.items()), encoding="utf-8")
    t = kafka_settings.topics
    return kafka_settings.model_copy(update={
        "topics": t.model_copy(update={name: f"{name}-{unique}" for name in (
            "readings", "dlq", "incidents", "station_commands", "command_results")}),
        "hj212": kafka_settings.hj212.model_copy(update={
            "host": "127.0.0.1", "port": 0, "passwords_file": passwords, "frame_timeout_s": 1.0,
            "max_bad_frames": 3, "max_frame_bytes": 2048}),
    })


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings, REGISTRY, SECRETS, KafkaBus(settings.kafka))
    async with running(gateway.run, gateway.listening):
        yield gateway


class Client:
    """A raw TCP client: bytes out, the gateway's frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, timeout_s: float = 20) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout_s)

    async def answer(self, cn: str) -> bytes:
        """The next frame with this CN (the gateway may send commands in between)."""
        while parse_frame(raw := await self.frame()).cn != cn:
            pass
        return raw

    async def closed(self, timeout_s: float = 20) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(), timeout_s) is not None
        except ConnectionError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def read_topic(bus: KafkaBus, name: str) -> list[bytes]:
    out: list[bytes] = []
    for partition in range(await bus.partitions(name)):
        out += [r.value or b"" for r in await bus.read_partition(TopicPartition(name, partition))]
    return out


async def eventually(read: Any, ready: Any, what: str, limit_s: float = 30) -> Any:
    """``await read()`` until ``ready(value)``; the limit only keeps a broken run from hanging."""
    for _ in range(int(limit_s * 10)):
        value = await read()
        if ready(value):
            return value
        await asyncio.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


async def results(bus: KafkaBus, settings: Settings) -> list[CommandResult]:
    return [decode(v, CommandResult).payload for v in await read_topic(bus, settings.topics.command_results)]


async def letters(bus: KafkaBus, settings: Settings) -> list[DeadLetter]:
    return [decode(v, DeadLetter).payload for v in await read_topic(bus, settings.topics.dlq)]


def answer(command: bytes, cn: str, cp: str) -> bytes:
    parsed = parse_frame(command)
    return frame(f"QN={parsed.qn};ST=91;CN={cn};PW={parsed.pw};MN={parsed.mn};Flag=4;CP=&&{cp}&&")


async def test_the_standards_frames_get_the_standards_answers(gateway_settings: Settings, kafka_bus: KafkaBus) -> None:
    async with running_gateway(gateway_settings) as gateway:
        assert gateway.port is not None
        client = await Client.connect(gateway.port)
        await client.send(UPLOAD)
        # The QN says 2016: the station's clock is off, so a clock setting (1012) comes too.
        got = {parse_frame(f).cn: f for f in [await client.frame(), await client.frame()]}
        assert got["9014"] == (b"##0087QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;"
                               b"Flag=4;CP=&&&&3240\r\n")
        clock = parse_frame(got["1012"])
        assert (clock.st, clock.pw, clock.mn, clock.flag) == ("32", "123456", MN, "5")
        assert clock.cp[0][0] == "SystemTime"
        await client.send(answer(got["1012"], "9011", "QnRtn=1") + answer(got["1012"], "9012", "ExeRtn=1"))

        await client.send(b"##0087QN=20160801085857223;ST=32;CN=1013;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
                          b"CP=&&&&3840\r\n")
        assert await client.frame() == (b"##0087QN=20160801085857223;ST=91;CN=9013;PW=123456;"
                                        b"MN=010000A8900016F000169DC0;Flag=4;CP=&&&&2A80\r\n")
        assert parse_frame(await client.frame()).cn == "1012"  # asked for: no interval applies

        # A reading split in two packets (Flag=7: 2017, PNUM/PNO, answer wanted): each packet is
        # answered once the whole reading is in Kafka.
        whole = Frame(cn="2011", mn=MN, qn="20160801085857224", st="32", pw="123456", flag="7",
                      cp=(("DataTime", "20160801090000"), ("w01018-Rtd", "51.2"), ("w01001-Rtd", "7.4")))
        await client.send(b"".join(build_frame(packet) for packet in split_frame(whole, 2)))
        split_answer = (b"##0087QN=20160801085857224;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;"
                        b"Flag=4;CP=&&&&" + b"%04X" % crc16(b"QN=20160801085857224;ST=91;CN=9014;PW=123456;"
                                                          b"MN=010000A8900016F000169DC0;Flag=4;CP=&&&&") + b"\r\n")
        assert [await client.answer("9014"), await client.answer("9014")] == [split_answer, split_answer]

        await client.send(b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
                          b"Flag=5;CP=&&RtdInterval=30&&1C80\r\n")  # the standard's own example frame
        assert await client.frame() == (b"##0094QN=20160801085857223;ST=91;CN=9011;PW=100000;"
                                        b"MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=3&&8D01\r\n")
        await client.close()
        done = await eventually(lambda: results(kafka_bus, gateway_settings), lambda r: len(r) >= 2, "clock results")
    readings = [decode(v, Reading).payload for v in await read_topic(kafka_bus, gateway_settings.topics.readings)]
    assert sorted(sorted((k, m.value) for k, m in r.values.items()) for r in readings) == [
        [("COD", 50.1)], [("COD", 51.2), ("pH", 7.4)]]
    assert {r.station_id for r in readings} == {"std-example"}
    [letter] = [decode(v, DeadLetter).payload for v in await read_topic(kafka_bus, gateway_settings.topics.dlq)]
    assert letter.reason_code == "hj212_password"
    assert "100000" not in letter.reason
    assert "123456" not in letter.reason
    assert letter.source.startswith("hj212-tcp://127.0.0.1:")
    assert [(r.kind, r.outcome) for r in done][:1] == [(CommandKind.SET_CLOCK, CommandOutcome.EXECUTED)]


def metric(name: str, **labels: str) -> float:
    return METRICS.get_sample_value(name, labels) or 0.0


async def test_bad_input_is_rejected_with_reasons(gateway_settings: Settings, kafka_bus: KafkaBus) -> None:
    good = encode_hj212(reading(STATION.station_id, 0), STATION, pw=PASSWORDS[STATION.station_id])
    before = {reason: metric("riverguard_hj212_disconnects_total", reason=reason)
              for reason in ("oversize", "slow_sender", "bad_frames")}
    async with running_gateway(gateway_settings) as gateway:
        assert gateway.port is not None
        client = await Client.connect(gateway.port)
        await client.send(good[:-6] + b"0000\r\n")  # bad CRC
        await client.send(b"\x16\x03\x01 not a frame\r\n")  # garbage
        await client.send(good)  # binds the connection to the station
        other = encode_hj212(reading(OTHER.station_id, 0), OTHER, pw=PASSWORDS[OTHER.station_id])
        await client.send(other.replace(b"Flag=4", b"Flag=5").replace(other[-6:-2], b"%04X" % crc16(
            other[6:-6].replace(b"Flag=4", b"Flag=5"))))  # another station on this connection, asking for an answer
        refused = parse_frame(await client.answer("9011"))
        assert refused.cp == (("QnRtn", "4"),)
        await client.close()
        intruder = await Client.connect(gateway.port)
        await intruder.send(encode_hj212(reading(STATION.station_id, 1), STATION, pw="guess"))
        await intruder.close()

        oversize = await Client.connect(gateway.port)
        await oversize.send(b"##9999" + b"x" * 3000)
        assert await oversize.closed()
        slow = await Client.connect(gateway.port)
        await slow.send(good[:30])
        await asyncio.sleep(1.5)  # frame_timeout_s is 1 s
        assert await slow.closed()
        noisy = await Client.connect(gateway.port)
        for _ in range(3):  # max_bad_frames is 3
            await noisy.send(b"noise\r\n")
            await asyncio.sleep(0.05)
        assert await noisy.closed()
        expected = ["hj212_crc", "hj212_frame", "hj212_mn_mismatch", "hj212_password", "hj212_oversize",
                    "hj212_slow_sender", "hj212_frame", "hj212_frame", "hj212_frame"]
        found = await eventually(lambda: letters(kafka_bus, gateway_settings), lambda d: len(d) >= len(expected),
                                 "dead letters")
    assert sorted(letter.reason_code for letter in found) == sorted(expected)
    assert all(letter.reason for letter in found)
    assert not any("sim-pw" in letter.reason for letter in found)
    assert {decode(v, Reading).payload.station_id for v in await read_topic(
        kafka_bus, gateway_settings.topics.readings)} == {STATION.station_id}
    for reason, value in before.items():
        assert metric("riverguard_hj212_disconnects_total", reason=reason) == value + 1, reason


def reading(station_id: str, seq: int, **values: float) -> Reading:
    station = REGISTRY.by_id[station_id]
    return Reading(station_id=station_id, river=station.river, section=station.section,
                   time=datetime(2024, 5, 14, 2, 0, tzinfo=UTC) + timedelta(seconds=seq),
                   values={k: Measurement(value=v) for k, v in (values or {"pH": 7.5, "NH3N": 0.4}).items()},
                   source_format=SourceFormat.HJ212)


@pytest.mark.slow
async def test_a_pollution_detection_at_a_connected_station_makes_it_retain_a_sample(
    gateway_settings: Settings, kafka_bus: KafkaBus, unique: str, tmp_path: Path
) -> None:
    # The whole chain on Kafka: the logger's readings → gateway → detect stage (GB 3838 limit) →
    # alert stage (incident) → gateway → 超标留样 at the station → its result.
    apprise, routing = tmp_path / "apprise.yaml", tmp_path / "routing.yaml"
    apprise.write_text("version: 1\nurls:\n  - json://127.0.0.1:9/duty:\n      - tag: duty\n", encoding="utf-8")
    routing.write_text("routes:\n  - {name: duty, match: {route: pollution}, notify: [duty]}\n", encoding="utf-8")
    t = gateway_settings.topics
    settings = gateway_settings.model_copy(update={
        "topics": t.model_copy(update={name: f"{name}-{unique}" for name in (
            "detections", "notifications", "detector_state")}),
        "alerts": gateway_settings.alerts.model_copy(update={"apprise_config": apprise, "routing_file": routing}),
    })
    stop = asyncio.Event()
    detect = detect_stage(settings, REGISTRY, KafkaBus(settings.kafka), group_id=f"detect-{unique}",
                          checkpoint_seconds=1)
    alerts, _ = alert_stage(settings, REGISTRY, KafkaBus(settings.kafka), group_id=f"alerts-{unique}",
                            serve_api=False)
    stages = [asyncio.create_task(detect.run(stop)), asyncio.create_task(alerts.run(stop))]
    try:
        async with running_gateway(settings) as gateway:
            assert gateway.port is not None
            logger = DataLogger(LoggerState(STATION, PASSWORDS[STATION.station_id]))
            await logger.connect("127.0.0.1", gateway.port)
            start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=15)
            # An ammonia plume: NH3N climbs to 3 times the class III limit, conductivity, CODMn and
            # TP with it, DO down (a lone step in one parameter would be taken for the instrument).
            for minute, nh3n in enumerate([0.3] * 4 + [0.5, 0.9, 1.5, 2.2, 2.8, 3.0, 3.0]):
                rise = nh3n / 0.3
                values = {"pH": 7.6, "NH3N": nh3n, "conductivity": 400 + 30 * rise, "CODMn": 3 + 0.3 * rise,
                          "DO": 8 - 0.1 * rise, "TP": 0.1 + 0.01 * rise}
                sent = Reading(station_id=STATION.station_id, river=STATION.river,
                               time=start + timedelta(minutes=minute), source_format=SourceFormat.HJ212,
                               values={name: Measurement(value=value) for name, value in values.items()})
                assert await logger.acknowledged(await logger.send(sent), 20)
            done = await eventually(lambda: results(kafka_bus, settings),
                                    lambda r: any(x.kind is CommandKind.RETAIN_SAMPLE for x in r),
                                    "the sample retention result", limit_s=90)
            await logger.close()
    finally:
        stop.set()
        await asyncio.gather(*stages)
    [result] = [r for r in done if r.kind is CommandKind.RETAIN_SAMPLE]
    assert (result.outcome, result.bottle, result.station_id) == (CommandOutcome.EXECUTED, 1, STATION.station_id)
    assert result.message_zh.startswith("三皇庙站已超标留样（1 号瓶")
    assert [s.bottle for s in logger.state.samples] == [1]
    incidents = [decode(v, Incident).payload for v in await read_topic(kafka_bus, settings.topics.incidents)]
    assert result.incident_id in {i.incident_id for i in incidents if STATION.station_id in i.stations}


async def test_mqtt_and_tcp_give_the_same_kafka_record_for_the_same_reading(
    gateway_settings: Settings, kafka_bus: KafkaBus, unique: str
) -> None:
    mqtt = gateway_settings.mqtt
    require_service("Mosquitto", mqtt.host, mqtt.port)
    settings = gateway_settings.model_copy(update={"mqtt": mqtt.model_copy(update={
        "client_id": f"ingest-{unique}", "password": mqtt.password or SecretStr(dev_password("riverguard-bridge")),
        "topic_filter": f"stations/+/+/t-{unique}", "topic_pattern": "stations/{river}/{station_id}/t-" + unique})})
    same = reading(STATION.station_id, 7, pH=7.25, NH3N=0.52, Cd=0.0009)  # Cd: µg/L on the wire
    bridge = Bridge(settings, REGISTRY, KafkaBus(settings.kafka))
    stop = asyncio.Event()
    bridging = asyncio.create_task(bridge.run(stop))
    await asyncio.wait_for(bridge.connected.wait(), 30)
    topic = f"stations/{STATION.river}/{STATION.station_id}/t-{unique}"
    await asyncio.to_thread(subprocess.run, [
        "mosquitto_pub", "-h", mqtt.host, "-p", str(mqtt.port), "-u", "riverguard-sim", "-P",
        dev_password("riverguard-sim"), "-q", "1", "-t", topic, "-s"], input=encode_hj212(same, STATION), check=True,
        timeout=30)
    await eventually(lambda: read_topic(kafka_bus, settings.topics.readings), lambda r: len(r) == 1, "the MQTT record")
    stop.set()
    await bridging
    async with running_gateway(settings) as gateway:
        assert gateway.port is not None
        logger = DataLogger(LoggerState(STATION, PASSWORDS[STATION.station_id]))
        await logger.connect("127.0.0.1", gateway.port)
        assert await logger.acknowledged(await logger.send(same), 20)
        await logger.close()
    records = await read_topic(kafka_bus, settings.topics.readings)
    payloads = {r.split(b',"payload":', 1)[1] for r in records}  # past produced_at and trace_id
    assert len(records) == 2
    assert len(payloads) == 1
    decoded = decode(records[0], Reading).payload
    assert decoded.time == same.time
    assert {k: round(m.value, 12) for k, m in decoded.values.items()} == {k: m.value for k, m in same.values.items()}


async def test_the_simulator_as_data_loggers(gateway_settings: Settings, kafka_bus: KafkaBus, tmp_path: Path) -> None:
    stations = tmp_path / "stations.yaml"
    stations.write_text(yaml.safe_dump(REGISTRY.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")} | {
        "RIVERGUARD_STATIONS_FILE": str(stations),
        "RIVERGUARD_HJ212__PASSWORDS_FILE": str(gateway_settings.hj212.passwords_file)}
    async with running_gateway(gateway_settings) as gateway:
        simulate = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "riverguard"), "simulate", "--transport", "hj212-tcp",
            "--gateway", f"127.0.0.1:{gateway.port}", "--station", STATION.station_id, "--station",
            OTHER.station_id, "--count", "20", "--rate", "200", "--no-faults", env=env, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(simulate.communicate(), 120)
        assert simulate.returncode == 0, err.decode()
        assert "sent 20 frames" in out.decode()
        assert "20 answered (9014)" in out.decode()
    readings = [decode(v, Reading).payload for v in await read_topic(kafka_bus, gateway_settings.topics.readings)]
    assert len(readings) == 20
    assert {r.station_id for r in readings} == {STATION.station_id, OTHER.station_id}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[Any]:
    stations = tmp_path / "stations.yaml"
    stations.write_text(yaml.safe_dump(REGISTRY.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")

    def env(settings: Settings, port: int) -> dict[str, str]:
        t, h = settings.topics, settings.hj212
        return {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")} | {
            "RIVERGUARD_STATIONS_FILE": str(stations),
            "RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            **{f"RIVERGUARD_TOPICS__{name.upper()}": getattr(t, name) for name in (
                "readings", "dlq", "incidents", "station_commands", "command_results")},
            "RIVERGUARD_HJ212__HOST": "127.0.0.1", "RIVERGUARD_HJ212__PORT": str(port),
            "RIVERGUARD_HJ212__PASSWORDS_FILE": str(h.passwords_file),
        }

    with service_processes(tmp_path) as start:
        yield lambda settings, port: start("hj212-gateway", env(settings, port))


async def connect_when_up(port: int, limit_s: float = 60) -> DataLogger:
    for _ in range(int(limit_s * 10)):
        logger = DataLogger(LoggerState(STATION, PASSWORDS[STATION.station_id]))
        try:
            await logger.connect("127.0.0.1", port)
            return logger
        except RiverguardError:
            await asyncio.sleep(0.1)
    pytest.fail(f"no gateway on port {port}")


@pytest.mark.slow
async def test_killing_the_gateway_mid_stream_loses_nothing_acknowledged(
    gateway_settings: Settings, kafka_bus: KafkaBus, gateway_process: Any
) -> None:
    port = free_port()
    settings = gateway_settings
    first = gateway_process(settings, port)
    logger = await connect_when_up(port)
    n = 2000
    sent: dict[str, int] = {}
    for seq in range(n):
        try:
            sent[await logger.send(reading(STATION.station_id, seq))] = seq
        except ConnectionError:
            break
        if len(logger.state.acknowledged) >= 300:
            first.stop(signal.SIGKILL)  # a crash: nothing graceful, un-answered frames must come again
            break
        if seq % 20 == 19:
            await asyncio.sleep(0.01)  # a logger's pace, so the crash comes mid-stream
    acknowledged = {sent[qn] for qn in logger.state.acknowledged}
    await logger.close()
    assert 300 <= len(acknowledged) < n
    # What the logger does after a lost connection: it reconnects and sends what was not answered.
    gateway_process(settings, port)
    logger = await connect_when_up(port)
    resent = [await logger.send(reading(STATION.station_id, seq)) for seq in sorted(set(range(n)) - acknowledged)]
    for qn in resent:  # a logger keeps a frame until it is answered (closing earlier resets what is unread)
        assert await logger.acknowledged(qn, 30)
    await logger.close()
    records = await eventually(lambda: read_topic(kafka_bus, settings.topics.readings),
                               lambda r: len(r) >= n, "every reading")
    seqs = [int((decode(v, Reading).payload.time - reading(STATION.station_id, 0).time).total_seconds())
            for v in records]
    assert acknowledged <= set(seqs), "every acknowledged reading is in Kafka"
    assert set(seqs) == set(range(n))
    print(f"gateway killed after {len(acknowledged)} of {n} frames acknowledged; "
          f"{len(seqs) - n} duplicates after the crash")
