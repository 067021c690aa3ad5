"""Faults during a stream, on a private stack (restarting its brokers disturbs nobody else).

A feed of six stations (JSON and HJ 212) publishes at a steady rate with four spills on three
rivers, while the test restarts things on a schedule: each riverguard service, then Mosquitto
and Kafka. Afterwards:

- every published reading is in Kafka **at least once**: a crash of the bridge, a broker restart
  or a station resending an unacknowledged message may leave a redelivered copy (same station
  and time, as the ingest tests document); the detectors skip such repeats;
- every reading is in InfluxDB **exactly once**: points are keyed by series + time, so a
  redelivered reading overwrites itself (the sink's idempotence by design);
- no notification was duplicated or lost: every outbox entry of every incident is ``sent``, the
  HTTP receiver got each exactly once, and every spill has its incident.

Services run under a supervisor (as under systemd ``Restart=always``): one that exits by itself,
for instance because Kafka went away for longer than it waits, is started again and the exit is
printed. The bridge, detectors and sink are SIGKILLed (a crash); the alert service is stopped with
SIGTERM, because its documented at-least-once window (Apprise accepted a message, the "sent"
record not yet acknowledged by Kafka) would make a SIGKILL at that instant resend one message.
Mosquitto is restarted gracefully: its persistence is saved on shutdown and every 30 s, so a
SIGKILL of the broker itself can lose what it acknowledged since (broker configuration, not ours).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest

from alerts.targets import load_directory
from ingest.codecs import TopicPattern
from ingest.publisher import payload_for
from ingest.simulator import Simulator, Spill
from pipeline.harness import KafkaProbe, Pipeline, PrivateStack, Receiver, StationFeed, read_topic, reading_counts
from riverguard.bus.kafka import KafkaBus
from riverguard.incidents import DeliveryStatus, Incident
from riverguard.models import Reading, decode
from riverguard.settings import Settings
from riverguard.stations import load_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

REGISTRY: Final = load_registry()
STATIONS: Final = ("tuo-hongyuan", "tuo-sanhuangmiao", "min-pengshan", "min-yuelaidukou", "jialing-bamiaogou",
                   "jialing-shangshipan")
RATE: Final = 150.0  # messages per second: 25 simulated minutes of six stations per second
STEPS: Final = 1500  # one a minute: 25 simulated hours, ~60 s of wall time
SPILLS: Final = (  # (spec, station, pollutant): at about 10 s, 22 s, 34 s and 50 s into the stream
    ("tuo:tuo-hongyuan:TP:+4h:1h:8", "tuo-hongyuan", "TP"),
    ("min:min-pengshan:NH3N:+9h:1h:8", "min-pengshan", "NH3N"),
    ("jialing:jialing-bamiaogou:NH3N:+14h:1h:10", "jialing-bamiaogou", "NH3N"),
    ("tuo:tuo-sanhuangmiao:NH3N:+21h:1h:8", "tuo-sanhuangmiao", "NH3N"),
)

Fault = tuple[float, str, Callable[[], object]]


def stream(settings: Settings) -> tuple[list[Reading], list[tuple[str, bytes]]]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=STEPS)
    spills = [Spill.parse(spec, start) for spec, _, _ in SPILLS]
    sim = Simulator(REGISTRY, seed=11, start=start, spills=spills, faults=False, stations=list(STATIONS))
    readings = list(sim.readings(until=start + timedelta(minutes=STEPS)))
    topics = TopicPattern(settings.mqtt.topic_pattern)
    return readings, [(topics.format(r.river, r.station_id), payload_for(r, REGISTRY)) for r in readings]


async def run_with_faults(pipeline: Pipeline, faults: list[Fault]) -> list[Reading]:
    """Publish the stream while ``faults`` happen at their offsets (seconds after its start)."""
    readings, messages = stream(pipeline.settings)
    pipeline.start(supervise=True)
    with StationFeed(pipeline.settings, f"faults-{pipeline.settings.mqtt.client_id}") as feed:
        publishing = asyncio.create_task(asyncio.to_thread(feed.publish, messages, rate=RATE,
                                                           stop=threading.Event()))
        began = time.monotonic()
        for offset, what, act in faults:
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


async def check_nothing_lost_or_doubled(pipeline: Pipeline, receiver: Receiver, readings: list[Reading]) -> None:
    settings = pipeline.settings
    topics, groups = settings.topics, pipeline.groups
    bus = KafkaBus(settings.kafka)

    async def drained() -> bool:
        async with KafkaProbe(settings) as kafka:
            return (await kafka.size(topics.readings) >= len(readings)
                    and await kafka.lag(groups["detect"], topics.readings) == 0
                    and await kafka.lag(groups["alert"], topics.detections) == 0
                    and await kafka.lag(groups["sink"], topics.readings, topics.detections, topics.incidents,
                                        topics.notifications) == 0)

    await until(drained, "every stage to catch up")
    expected = Counter((r.station_id, r.time) for r in readings)
    in_kafka = Counter((r.station_id, r.time) for r in (decode(rec.value or b"", Reading).payload
                                                        for rec in await read_topic(bus, topics.readings)))
    assert set(in_kafka) == set(expected), "a reading is missing from Kafka, or one came from nowhere"
    print(f"Kafka: {sum(in_kafka.values())} records for {len(expected)} readings "
          f"({sum(in_kafka.values()) - len(expected)} redelivered copies)")

    minute = timedelta(minutes=1)
    window = (readings[0].time - minute).isoformat(), (readings[-1].time + minute).isoformat()
    stored = await asyncio.to_thread(reading_counts, settings, "pH", *window)
    assert stored == Counter(r.station_id for r in readings), "InfluxDB must hold every reading exactly once"

    incidents: dict[str, Incident] = {}

    async def settled() -> bool:
        for record in await read_topic(bus, topics.incidents):
            if record.value is not None:
                incident = decode(record.value, Incident).payload
                incidents[incident.incident_id] = incident
        return not any(e.status is DeliveryStatus.PENDING for i in incidents.values() for e in i.outbox)

    await until(settled, "every notification to be sent")
    for _, station, pollutant in SPILLS:
        assert any(station in i.stations and i.pollutant == pollutant for i in incidents.values()), (
            f"no incident for the spill of {pollutant} at {station}: "
            f"{[(i.incident_id, i.pollutant, i.stations) for i in incidents.values()]}")

    assert settings.alerts.apprise_config is not None
    paths = {t.target_id: t.redacted.split("?")[0].rsplit("/", 1)[-1]
             for t in load_directory(settings.alerts.apprise_config, {}).targets}
    owed: Counter[tuple[str, str]] = Counter()
    for incident in incidents.values():
        for entry in incident.outbox:
            assert entry.status is DeliveryStatus.SENT, f"{incident.incident_id}: {entry}"
            owed[paths[entry.target_id], incident.incident_id] += 1
    delivered: Counter[tuple[str, str]] = Counter()
    titles: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for delivery in receiver.deliveries:
        incident_id = next((i for i in incidents if i in delivery.title), None)
        assert incident_id is not None, f"a notification for no known incident: {delivery.title}"
        delivered[delivery.path, incident_id] += 1
        titles[delivery.path][delivery.title] += 1
    doubled = {title: n for per_target in titles.values() for title, n in per_target.items() if n > 1}
    assert delivered == owed, f"each notification recorded as sent must arrive exactly once; doubled: {doubled}"
    assert not doubled
    print(f"{len(incidents)} incidents, {sum(delivered.values())} notifications, each delivered once; "
          f"unplanned service exits (restarted): {pipeline.crashes() or 'none'}")


async def test_crashing_and_restarting_each_service_mid_stream_loses_and_doubles_nothing(
    private_pipeline: Pipeline, receiver: Receiver
) -> None:
    p = private_pipeline
    readings = await run_with_faults(p, [
        (6.0, "SIGKILL ingest, start it again", lambda: p.restart("ingest", signal.SIGKILL)),
        (14.0, "SIGKILL detect, start it again", lambda: p.restart("detect", signal.SIGKILL)),
        (24.0, "restart alert (SIGTERM)", lambda: p.restart("alert", signal.SIGTERM)),
        (32.0, "SIGKILL sink, start it again", lambda: p.restart("sink", signal.SIGKILL)),
        (40.0, "SIGKILL detect and ingest together", lambda: (p.restart("detect", signal.SIGKILL),
                                                             p.restart("ingest", signal.SIGKILL))),
        (52.0, "restart alert (SIGTERM) again", lambda: p.restart("alert", signal.SIGTERM)),
    ])
    await check_nothing_lost_or_doubled(p, receiver, readings)


async def test_restarting_mosquitto_and_kafka_mid_stream_loses_and_doubles_nothing(
    private_pipeline: Pipeline, private_stack: PrivateStack, receiver: Receiver
) -> None:
    readings = await run_with_faults(private_pipeline, [
        (8.0, "restart Mosquitto", lambda: private_stack.restart("mosquitto")),
        (20.0, "restart Kafka", lambda: private_stack.restart("kafka")),
        (38.0, "SIGKILL Kafka, start it again", lambda: private_stack.crash("kafka")),
    ])
    await check_nothing_lost_or_doubled(private_pipeline, receiver, readings)
