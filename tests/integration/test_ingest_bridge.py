"""The bridge on the real stack: Mosquitto → bridge → Kafka, DLQ, restart, ACL."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from ingest.bridge import Bridge
from ingest.codecs import encode_hj212, encode_json
from pipeline.harness import dev_password
from riverguard.bus.base import TopicPartition
from riverguard.bus.kafka import KafkaBus
from riverguard.models import DeadLetter, Measurement, Reading, SourceFormat, decode
from riverguard.settings import Settings
from riverguard.stations import load_registry
from tests.support.services import require_service, running, service_processes

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REGISTRY = load_registry()
T0 = datetime(2024, 1, 5, 2, 0, tzinfo=UTC)


def with_workers(settings: Settings, workers: int) -> Settings:
    return settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update={"routing_workers": workers})})


@pytest.fixture
def ingest_settings(kafka_settings: Settings, unique: str) -> Settings:
    mqtt = kafka_settings.mqtt
    require_service("Mosquitto", mqtt.host, mqtt.port)
    password = mqtt.password or SecretStr(dev_password("riverguard-bridge"))
    return kafka_settings.model_copy(update={
        "topics": kafka_settings.topics.model_copy(update={"readings": f"readings-{unique}", "dlq": f"dlq-{unique}"}),
        "mqtt": mqtt.model_copy(update={
            "client_id": f"ingest-{unique}", "password": password,
            "topic_filter": f"stations/+/+/t-{unique}", "topic_pattern": "stations/{river}/{station_id}/t-" + unique,
        }),
    })


def topic(settings: Settings, station_id: str) -> str:
    return settings.mqtt.topic_pattern.format(river=REGISTRY.by_id[station_id].river, station_id=station_id)


def reading(station_id: str, seq: int, **values: float) -> Reading:
    station = REGISTRY.by_id[station_id]
    return Reading(station_id=station_id, river=station.river, time=T0 + timedelta(seconds=seq),
                   values={k: Measurement(value=v) for k, v in (values or {"pH": 7.5}).items()},
                   source_format=SourceFormat.JSON)


def payload(station_id: str, seq: int) -> bytes:
    station = REGISTRY.by_id[station_id]
    r = reading(station_id, seq)
    return encode_hj212(r, station) if station.payload_format == "hj212" else encode_json(r, station)


@asynccontextmanager
async def running_bridge(settings: Settings) -> AsyncIterator[Bridge]:
    bridge = Bridge(settings, REGISTRY, KafkaBus(settings.kafka))
    async with running(bridge.run, bridge.connected):
        yield bridge


async def until(condition: Any, what: str, limit_s: float = 60) -> None:
    """Wait for ``condition()``; the limit only keeps a broken run from hanging."""
    for _ in range(int(limit_s * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


class Publisher:
    def __init__(self, user: str) -> None:
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.username_pw_set(user, dev_password(user))
        self.client.max_inflight_messages_set(1000)
        self.acks: dict[int, Any] = {}
        self.client.on_publish = lambda _c, _u, mid, reason_code, _p: self.acks.__setitem__(mid, reason_code)

    def __enter__(self) -> Publisher:
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish_all(self, messages: list[tuple[str, bytes]]) -> list[int]:
        infos = [self.client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
        return [info.mid for info in infos]


async def read_topic(bus: KafkaBus, name: str) -> list[tuple[TopicPartition, bytes | None, bytes]]:
    out = []
    for partition in range(await bus.partitions(name)):
        tp = TopicPartition(name, partition)
        out += [(tp, r.key, r.value or b"") for r in await bus.read_partition(tp)]
    return out


def mosquitto_pub(settings: Settings, station_id: str, lines: list[bytes]) -> None:
    subprocess.run(
        ["mosquitto_pub", "-h", settings.mqtt.host, "-p", str(settings.mqtt.port), "-u", "riverguard-sim",
         "-P", dev_password("riverguard-sim"), "-q", "1", "-t", topic(settings, station_id), "-l"],
        input=b"\n".join(lines) + b"\n", check=True, timeout=60,
    )


def readings_by_station(records: list[tuple[TopicPartition, bytes | None, bytes]]) -> dict[str, list[int]]:
    """Sequence numbers (seconds after T0) per station, in Kafka order."""
    partitions: dict[str, set[TopicPartition]] = defaultdict(set)
    seqs: dict[str, list[int]] = defaultdict(list)
    for tp, key, value in records:
        r = decode(value, Reading).payload
        assert key == r.station_id.encode()
        partitions[r.station_id].add(tp)
        seqs[r.station_id].append(int((r.time - T0).total_seconds()))
    assert all(len(p) == 1 for p in partitions.values()), "a station's readings must stay on one partition"
    return seqs


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
async def test_paho_and_mosquitto_pub_messages_arrive_exactly_once_in_order(
    ingest_settings: Settings, kafka_bus: KafkaBus, workers: int
) -> None:
    ingest_settings = with_workers(ingest_settings, workers)
    stations = ["tuo-hongyuan", "tuo-sanhuangmiao", "min-pengshan", "jialing-xiaodukou"]  # JSON and HJ 212
    n = 300
    async with running_bridge(ingest_settings) as bridge:
        with Publisher("riverguard-sim") as publisher:
            messages = [(topic(ingest_settings, s), payload(s, seq)) for seq in range(n) for s in stations]
            await asyncio.to_thread(publisher.publish_all, messages)
        json_station = "tuo-shunhechang"
        cli_lines = [payload(json_station, seq) for seq in range(100)]
        await asyncio.to_thread(mosquitto_pub, ingest_settings, json_station, cli_lines)
        total = n * len(stations) + len(cli_lines)
        await until(lambda: bridge.stats.acked >= total, f"{total} acknowledged messages")
    assert (bridge.stats.readings, bridge.stats.dead_letters) == (total, 0)
    seqs = readings_by_station(await read_topic(kafka_bus, ingest_settings.topics.readings))
    assert seqs == {**{s: list(range(n)) for s in stations}, json_station: list(range(100))}


@pytest.mark.parametrize("workers", [0, 2])
async def test_invalid_payloads_land_in_the_dlq_with_their_reason(
    ingest_settings: Settings, kafka_bus: KafkaBus, workers: int
) -> None:
    ingest_settings = with_workers(ingest_settings, workers)
    hongyuan = topic(ingest_settings, "tuo-hongyuan")
    good_frame = payload("tuo-sanhuangmiao", 1)
    cases = {
        "bad_json": (hongyuan, b"{not json"),
        "out_of_range": (hongyuan, encode_json(reading("tuo-hongyuan", 1), REGISTRY.by_id["tuo-hongyuan"])
                         .replace(b'"value":7.5', b'"value":15')),
        "schema": (hongyuan, b'{"station_id": "tuo-hongyuan", "values": {"pH": 7}}'),
        "unknown_station": (f"stations/tuo/tuo-nowhere/t-{ingest_settings.mqtt.client_id[7:]}",
                            b'{"station_id": "tuo-nowhere", "time": "2024-01-05T10:00:00", "values": {"pH": 7}}'),
        "topic_mismatch": (hongyuan, good_frame),
        "hj212_crc": (topic(ingest_settings, "tuo-sanhuangmiao"), good_frame[:-6] + b"0000\r\n"),
        "hj212_length": (topic(ingest_settings, "tuo-sanhuangmiao"), good_frame.replace(b"DataTime", b"DataTim")),
    }
    async with running_bridge(ingest_settings) as bridge:
        with Publisher("riverguard-sim") as publisher:
            await asyncio.to_thread(publisher.publish_all, list(cases.values()))
        await until(lambda: bridge.stats.acked >= len(cases), "dead letters acknowledged")
    dlq = await read_topic(kafka_bus, ingest_settings.topics.dlq)
    letters = [decode(value, DeadLetter).payload for _, _, value in dlq]
    assert sorted(letter.reason_code for letter in letters) == sorted(cases)
    for letter in letters:
        source, raw = cases[letter.reason_code]
        assert (letter.source, base64.b64decode(letter.raw_b64)) == (source, raw)
        assert letter.reason
    assert await read_topic(kafka_bus, ingest_settings.topics.readings) == []


def bridge_env(settings: Settings) -> dict[str, str]:
    mqtt = settings.mqtt
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")}
    env.update({
        "RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "RIVERGUARD_TOPICS__READINGS": settings.topics.readings,
        "RIVERGUARD_TOPICS__DLQ": settings.topics.dlq,
        "RIVERGUARD_MQTT__HOST": mqtt.host,
        "RIVERGUARD_MQTT__PORT": str(mqtt.port),
        "RIVERGUARD_MQTT__PASSWORD": mqtt.password.get_secret_value() if mqtt.password else "",
        "RIVERGUARD_MQTT__CLIENT_ID": mqtt.client_id,
        "RIVERGUARD_MQTT__TOPIC_FILTER": mqtt.topic_filter,
        "RIVERGUARD_MQTT__TOPIC_PATTERN": mqtt.topic_pattern,
        "RIVERGUARD_MQTT__PROTOCOL": mqtt.protocol,
        "RIVERGUARD_MQTT__ROUTING_WORKERS": str(mqtt.routing_workers),
    })
    return env


@pytest.fixture
def bridge_process(tmp_path: Path) -> Iterator[Any]:
    with service_processes(tmp_path) as start:
        yield lambda settings: start("ingest", bridge_env(settings))


@pytest.mark.slow
@pytest.mark.parametrize(("protocol", "workers"), [("5", 0), ("3.1.1", 0), ("5", 2)])
async def test_killing_the_bridge_mid_stream_loses_nothing(
    ingest_settings: Settings, kafka_bus: KafkaBus, bridge_process: Any, protocol: str, workers: int
) -> None:
    settings = ingest_settings.model_copy(
        update={"mqtt": ingest_settings.mqtt.model_copy(update={"protocol": protocol, "routing_workers": workers})})
    async with running_bridge(settings):
        pass  # creates the topics and the persistent session: from now on the broker queues for us
    stations = ["tuo-hongyuan", "tuo-sanhuangmiao"]
    n = 1500
    messages = [(topic(settings, s), payload(s, seq)) for seq in range(n) for s in stations]

    def publish() -> None:
        with Publisher("riverguard-sim") as publisher:
            publisher.publish_all(messages)

    first = bridge_process(settings)
    publishing = asyncio.create_task(asyncio.to_thread(publish))
    readings_topic = settings.topics.readings
    await until_count(kafka_bus, readings_topic, at_least=200)
    first.stop(signal.SIGKILL)  # a crash: no graceful stop, un-acked messages stay in the session
    await publishing
    bridge_process(settings)
    await until_count(kafka_bus, readings_topic, at_least=len(messages))
    seqs = readings_by_station(await read_topic(kafka_bus, readings_topic))
    for s in stations:
        assert set(seqs[s]) == set(range(n)), "every reading arrives at least once"
        # Redelivered duplicates are detectable (same station and time); first arrivals keep the order.
        assert list(dict.fromkeys(seqs[s])) == list(range(n))
    duplicates = sum(c - 1 for s in stations for c in Counter(seqs[s]).values())
    print(f"MQTT {protocol}, {workers} routing workers: {len(messages)} messages, "
          f"{duplicates} redelivered duplicates after the crash")


async def until_count(bus: KafkaBus, name: str, at_least: int, limit_s: float = 90) -> None:
    for _ in range(int(limit_s * 2)):
        ends = await bus.end_offsets([TopicPartition(name, p) for p in range(await bus.partitions(name))])
        if sum(ends.values()) >= at_least:
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"{name} never reached {at_least} records")


def test_a_station_cannot_publish_as_another(ingest_settings: Settings) -> None:
    own = topic(ingest_settings, "tuo-sanhuangmiao")
    other = topic(ingest_settings, "tuo-tuojiangdaqiao")
    received: list[str] = []
    got_own = threading.Event()
    subscriber = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    subscriber.username_pw_set("riverguard-bridge", dev_password("riverguard-bridge"))
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        received.append(message.topic)
        if message.topic == own:
            got_own.set()

    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", 1883)
    subscriber.subscribe(ingest_settings.mqtt.topic_filter, qos=1)
    subscriber.loop_start()
    try:
        assert subscribed.wait(10)
        with Publisher("tuo-sanhuangmiao") as station:
            [forbidden, allowed] = station.publish_all([(other, b"spoofed"), (own, b"mine")])
        assert got_own.wait(10)
        # Same publisher, same subscription: had the spoofed message passed, it would have come first.
        assert received == [own]
        assert station.acks[forbidden].value == 135  # MQTT 5 "Not authorized"
        assert station.acks[allowed].value == 0
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()
