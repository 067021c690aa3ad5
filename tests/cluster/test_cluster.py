"""The pipeline on a three-node Kafka cluster (replication 3, min.insync.replicas 2), every
service as its own least-privilege principal over SASL/SCRAM and TLS.

- A broker SIGKILLed mid-stream and started again later: the cluster keeps taking acks=all writes
  with two of three replicas, the clients move to the new leaders, and afterwards every published
  reading is in Kafka exactly once and in InfluxDB exactly once, and each notification was
  delivered exactly once.
- Two detect and two alert processes in their groups: a second member joins mid-stream, then the
  first leaves. The stations move with their detector state (restored from the changelog), so
  the detections are exactly those of one detector that saw the whole stream without a
  rebalance, each once; each notification is delivered once.

Cost: ~35 s for the cluster (three JVMs, -Xmx384m each) once per module, then ~70-90 s per test
on the 2-core machine.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from alerts.targets import load_directory
from detectors import DetectorStack
from ingest.codecs import TopicPattern
from ingest.publisher import payload_for
from ingest.simulator import Simulator, Spill
from pipeline.harness import KafkaProbe, Pipeline, PrivateStack, Receiver, StationFeed, read_topic, reading_counts
from riverguard.bus.kafka import KafkaBus, connection_options
from riverguard.incidents import DeliveryStatus, Incident
from riverguard.models import Detection, Reading, decode
from riverguard.settings import Settings
from riverguard.stations import load_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

REGISTRY: Final = load_registry()
STATIONS: Final = ("tuo-hongyuan", "tuo-sanhuangmiao", "min-pengshan", "min-yuelaidukou", "jialing-bamiaogou",
                   "jialing-shangshipan")
RATE: Final = 150.0  # messages per second: 25 simulated minutes of six stations per second
STEPS: Final = 900  # one a minute: 15 simulated hours, ~36 s of wall time
SPILLS: Final = (  # (spec, station, pollutant): at about 10 s, 20 s and 30 s into the stream
    ("tuo:tuo-hongyuan:TP:+4h:1h:8", "tuo-hongyuan", "TP"),
    ("min:min-pengshan:NH3N:+8h:1h:8", "min-pengshan", "NH3N"),
    ("jialing:jialing-bamiaogou:NH3N:+12h:1h:10", "jialing-bamiaogou", "NH3N"),
)

Step = tuple[float, str, Callable[[], object]]


def stream(settings: Settings) -> tuple[list[Reading], list[tuple[str, bytes]]]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=STEPS)
    spills = [Spill.parse(spec, start) for spec, _, _ in SPILLS]
    sim = Simulator(REGISTRY, seed=5, start=start, spills=spills, faults=False, stations=list(STATIONS))
    readings = list(sim.readings(until=start + timedelta(minutes=STEPS)))
    topics = TopicPattern(settings.mqtt.topic_pattern)
    return readings, [(topics.format(r.river, r.station_id), payload_for(r, REGISTRY)) for r in readings]


async def publish_with(pipeline: Pipeline, steps: list[Step]) -> list[Reading]:
    """Publish the stream while ``steps`` happen at their offsets (seconds after its start)."""
    readings, messages = stream(pipeline.settings)
    with StationFeed(pipeline.settings, f"cluster-{pipeline.settings.mqtt.client_id}") as feed:
        publishing = asyncio.create_task(asyncio.to_thread(feed.publish, messages, rate=RATE,
                                                           stop=threading.Event()))
        began = time.monotonic()
        for offset, what, act in steps:
            await asyncio.sleep(max(0.0, began + offset - time.monotonic()))
            print(f"{time.monotonic() - began:5.1f} s: {what}")
            await asyncio.to_thread(act)
        assert await publishing == len(messages)
        await asyncio.to_thread(feed.wait_acknowledged, 180)
    return readings


async def until(condition: Callable[[], Awaitable[bool]], what: str, limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.5)


async def drained(pipeline: Pipeline, readings: list[Reading]) -> None:
    settings, groups, topics = pipeline.settings, pipeline.groups, pipeline.settings.topics

    async def caught_up() -> bool:
        async with KafkaProbe(settings) as kafka:
            return (await kafka.size(topics.readings) >= len(readings)
                    and await kafka.lag(groups["detect"], topics.readings) == 0
                    and await kafka.lag(groups["alert"], topics.detections) == 0
                    and await kafka.lag(groups["sink"], topics.readings, topics.detections, topics.incidents,
                                        topics.notifications) == 0)

    await until(caught_up, "every stage to catch up")


async def readings_exactly_once(pipeline: Pipeline, readings: list[Reading]) -> None:
    settings = pipeline.settings
    in_kafka = Counter((r.station_id, r.time) for r in (decode(rec.value or b"", Reading).payload for rec in
                                                       await read_topic(KafkaBus(settings.kafka),
                                                                        settings.topics.readings)))
    assert in_kafka == Counter((r.station_id, r.time) for r in readings), "Kafka must hold each reading once"
    minute = timedelta(minutes=1)
    window = (readings[0].time - minute).isoformat(), (readings[-1].time + minute).isoformat()
    stored = await asyncio.to_thread(reading_counts, settings, "pH", *window)
    assert stored == Counter(r.station_id for r in readings), "InfluxDB must hold each reading once"


async def notifications_exactly_once(pipeline: Pipeline, receiver: Receiver) -> dict[str, Incident]:
    """Every spill has its incident, every notification owed was sent and arrived exactly once."""
    settings = pipeline.settings
    bus = KafkaBus(settings.kafka)
    incidents: dict[str, Incident] = {}

    async def settled() -> bool:
        for record in await read_topic(bus, settings.topics.incidents):
            if record.value is not None:
                incident = decode(record.value, Incident).payload
                incidents[incident.incident_id] = incident
        return not any(e.status is DeliveryStatus.PENDING for i in incidents.values() for e in i.outbox)

    await until(settled, "every notification to be sent")
    for _, station, pollutant in SPILLS:
        assert any(station in i.stations and i.pollutant == pollutant for i in incidents.values()), (
            f"no incident for the spill of {pollutant} at {station}")
    assert settings.alerts.apprise_config is not None
    paths = {t.target_id: t.redacted.split("?")[0].rsplit("/", 1)[-1]
             for t in load_directory(settings.alerts.apprise_config, {}).targets}
    owed: Counter[tuple[str, str]] = Counter()
    for incident in incidents.values():
        for entry in incident.outbox:
            assert entry.status is DeliveryStatus.SENT, f"{incident.incident_id}: {entry}"
            owed[paths[entry.target_id], incident.incident_id] += 1
    delivered: Counter[tuple[str, str]] = Counter()
    for delivery in receiver.deliveries:
        incident_id = next((i for i in incidents if i in delivery.title), None)
        assert incident_id is not None, f"a notification for no known incident: {delivery.title}"
        delivered[delivery.path, incident_id] += 1
    assert delivered == owed, "each notification recorded as sent must arrive exactly once"
    print(f"{len(incidents)} incidents, {sum(delivered.values())} notifications, each delivered once")
    return incidents


async def test_a_broker_killed_mid_stream_loses_and_doubles_nothing(
    cluster_pipeline: Pipeline, cluster: PrivateStack, receiver: Receiver
) -> None:
    p = cluster_pipeline
    p.start(supervise=True)
    victim = await busiest_leader(p.settings)
    readings = await publish_with(p, [
        (10.0, f"SIGKILL {victim}", lambda: cluster.kill(victim)),
        (24.0, f"start {victim} again", cluster.up),
    ])
    await drained(p, readings)
    await readings_exactly_once(p, readings)
    await notifications_exactly_once(p, receiver)
    assert not p.crashes(), f"a service exited during the failover (restarted by the supervisor): {p.crashes()}"


async def busiest_leader(settings: Settings) -> str:
    """The node that leads most partitions of the readings topic: killing it moves most of them."""
    admin = AIOKafkaAdminClient(**connection_options(settings.kafka))
    await admin.start()
    try:
        [topic] = await admin.describe_topics([settings.topics.readings])
    finally:
        await admin.close()
    leaders = Counter(partition["leader"] for partition in topic["partitions"])
    return f"kafka-{leaders.most_common(1)[0][0]}"


def reference_detections(readings: list[Reading]) -> Counter[str]:
    """The detections of one detector stack that sees the whole stream without a rebalance."""
    stack = DetectorStack(registry=REGISTRY)
    return Counter(d.detection_id for r in readings for d in stack.process(r))


async def test_a_rebalance_moves_stations_with_their_state_and_nothing_is_doubled(
    cluster_pipeline: Pipeline, receiver: Receiver
) -> None:
    p = cluster_pipeline
    p.start()
    detect_2, alert_2 = p.add_member("detect"), p.add_member("alert")
    readings = await publish_with(p, [
        (8.0, f"{detect_2} and {alert_2} join their groups", lambda: p.start(detect_2, alert_2)),
        (20.0, "the first detect and alert processes leave (SIGTERM)",
         lambda: (p.services["detect"].stop(signal.SIGTERM), p.services["alert"].stop(signal.SIGTERM))),
    ])
    await drained(p, readings)

    restored = [int(n) for n in re.findall(r"restored (\d+) station states", p.services[detect_2].log.read_text())]
    assert any(n > 0 for n in restored), f"{detect_2} took over no station with its state: {restored}"
    detections = Counter(decode(r.value or b"", Detection).payload.detection_id
                         for r in await read_topic(KafkaBus(p.settings.kafka), p.settings.topics.detections))
    assert not {d: n for d, n in detections.items() if n > 1}, "a detection was emitted twice"
    expected = reference_detections(readings)
    assert detections == expected, (f"missing: {sorted(expected - detections)[:5]}, "
                                    f"unexpected: {sorted(detections - expected)[:5]}")
    await notifications_exactly_once(p, receiver)
