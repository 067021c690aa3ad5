"""A stream of simulated stations with spills, published while things happen to the pipeline, and
the checks that nothing was lost or doubled (the fault tests and the Kafka cluster tests)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from alerts.targets import load_directory
from ingest.codecs import TopicPattern
from ingest.publisher import payload_for
from ingest.simulator import Simulator, Spill
from pipeline.harness import KafkaProbe, Pipeline, Receiver, StationFeed, read_topic, reading_counts
from riverguard.bus.kafka import KafkaBus
from riverguard.incidents import DeliveryStatus, Incident
from riverguard.models import Reading, decode
from riverguard.settings import Settings
from riverguard.stations import load_registry

REGISTRY = load_registry()
#: Six stations on the three rivers, JSON and HJ 212 ones.
STATIONS = ("tuo-hongyuan", "tuo-sanhuangmiao", "min-pengshan", "min-yuelaidukou", "jialing-bamiaogou",
            "jialing-shangshipan")

#: (seconds after the stream's start, what, the action)
Step = tuple[float, str, Callable[[], object]]


@dataclass(frozen=True)
class SpillStream:
    """``steps`` one-minute readings of ``stations``, published at ``rate`` messages/s, with
    ``spills``: (simulator spill spec, station, pollutant) each."""

    stations: Sequence[str]
    spills: Sequence[tuple[str, str, str]]
    steps: int
    seed: int
    rate: float = 150.0

    def messages(self, settings: Settings) -> tuple[list[Reading], list[tuple[str, bytes]]]:
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=self.steps)
        spills = [Spill.parse(spec, start) for spec, _, _ in self.spills]
        sim = Simulator(REGISTRY, seed=self.seed, start=start, spills=spills, faults=False,
                        stations=list(self.stations))
        readings = list(sim.readings(until=start + timedelta(minutes=self.steps)))
        topics = TopicPattern(settings.mqtt.topic_pattern)
        return readings, [(topics.format(r.river, r.station_id), payload_for(r, REGISTRY)) for r in readings]


async def publish_with(pipeline: Pipeline, stream: SpillStream, steps: Sequence[Step]) -> list[Reading]:
    """Publish ``stream`` as a station data logger would while ``steps`` happen at their offsets;
    returns once the broker acknowledged every message."""
    readings, messages = stream.messages(pipeline.settings)
    with StationFeed(pipeline.settings, f"feed-{pipeline.settings.mqtt.client_id}") as feed:
        publishing = asyncio.create_task(asyncio.to_thread(feed.publish, messages, rate=stream.rate,
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


async def drained(pipeline: Pipeline, readings: Sequence[Reading]) -> None:
    """Until every reading is in Kafka and every stage has committed everything of its input."""
    settings, groups, topics = pipeline.settings, pipeline.groups, pipeline.settings.topics

    async def caught_up() -> bool:
        async with KafkaProbe(settings) as kafka:
            return (await kafka.size(topics.readings) >= len(readings)
                    and await kafka.lag(groups["detect"], topics.readings) == 0
                    and await kafka.lag(groups["alert"], topics.detections) == 0
                    and await kafka.lag(groups["sink"], topics.readings, topics.detections, topics.incidents,
                                        topics.notifications) == 0)

    await until(caught_up, "every stage to catch up")


async def readings_in_kafka(pipeline: Pipeline) -> Counter[tuple[str, datetime]]:
    """(station, time) of each record of the readings topic, with its number of copies."""
    settings = pipeline.settings
    records = await read_topic(KafkaBus(settings.kafka), settings.topics.readings)
    return Counter((r.station_id, r.time) for r in (decode(rec.value or b"", Reading).payload for rec in records))


async def stored_exactly_once(pipeline: Pipeline, readings: Sequence[Reading]) -> None:
    """InfluxDB holds every reading once: points are keyed by series + time, so a redelivered
    reading overwrites itself."""
    minute = timedelta(minutes=1)
    window = (readings[0].time - minute).isoformat(), (readings[-1].time + minute).isoformat()
    stored = await asyncio.to_thread(reading_counts, pipeline.settings, "pH", *window)
    assert stored == Counter(r.station_id for r in readings), "InfluxDB must hold every reading exactly once"


async def notifications_exactly_once(pipeline: Pipeline, receiver: Receiver,
                                     spills: Sequence[tuple[str, str, str]]) -> dict[str, Incident]:
    """Every spill has its incident; every outbox entry of every incident is ``sent`` and the
    HTTP receiver got each exactly once."""
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
    for _, station, pollutant in spills:
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
    assert not doubled, f"two notifications to one target under one title: {doubled}"
    print(f"{len(incidents)} incidents, {sum(delivered.values())} notifications, each delivered once; "
          f"unplanned service exits (restarted): {pipeline.crashes() or 'none'}")
    return incidents
