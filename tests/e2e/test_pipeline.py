"""The whole pipeline on the real stack, each service its own process:

``riverguard simulate`` (JSON and HJ 212 stations) → Mosquitto → ``run ingest`` → Kafka →
``run detect`` → ``run alert`` → Apprise ``json://`` → an HTTP receiver in this test, and
``run sink`` → InfluxDB (a database of its own).

The simulator runs in simulated time, as fast as the stack takes it: 36 simulated hours of four
stations (warm-up for the detectors) with an ammonia spill at 三皇庙 after 30 h. Seed and stations
are chosen so the water itself stays within its limits: the spill is the one thing to find.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import pytest

from alerts.book import main_pollutant
from ingest.codecs import encode_hj212, encode_json
from ingest.simulator import Simulator, Spill
from pipeline.harness import (
    RIVERGUARD,
    KafkaProbe,
    Pipeline,
    Receiver,
    StationFeed,
    dev_password,
    read_topic,
    reading_counts,
    settings_env,
)
from playbooks import build_playbook, load_network
from riverguard.bus.kafka import KafkaBus
from riverguard.incidents import Route
from riverguard.models import DeadLetter, Detection, Measurement, Reading, SourceFormat, decode
from riverguard.settings import Settings
from riverguard.stations import load_registry
from sink.history import recent_history
from tests.support.e2e import equals, latest_incidents, until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

REGISTRY: Final = load_registry()
STATIONS: Final = ("tuo-hongyuan", "tuo-sanhuangmiao", "min-pengshan", "min-yuelaidukou")  # JSON, HJ 212, JSON, HJ 212
SEED: Final = 4
STEP: Final = timedelta(minutes=2)
HOURS: Final = 36
SPILL: Final = "tuo:tuo-sanhuangmiao:NH3N:+30h:1h:8"


def simulate(settings: Settings, start: datetime, count: int) -> subprocess.CompletedProcess[str]:
    args = [str(RIVERGUARD), "simulate", "--seed", str(SEED), "--start", start.isoformat(), "--step",
            str(STEP.total_seconds()), "--speedup", "1e9", "--count", str(count), "--spill", SPILL, "--no-faults",
            "--password", dev_password("riverguard-sim")]
    for station in STATIONS:
        args += ["--station", station]
    return subprocess.run(args, env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False)


def malformed(settings: Settings) -> dict[str, tuple[str, bytes]]:
    """One message per kind of rejection, by the reason code the DLQ must give it."""
    def topic(station_id: str, river: str) -> str:
        return settings.mqtt.topic_pattern.format(river=river, station_id=station_id)

    station = REGISTRY.by_id["tuo-sanhuangmiao"]
    reading = Reading(station_id=station.station_id, river="tuo", time=datetime(2024, 1, 5, tzinfo=UTC),
                      values={"pH": Measurement(value=7.5)}, source_format=SourceFormat.HJ212)
    frame = encode_hj212(reading, station)
    crc = frame[-6:-2]
    bad_crc = frame[:-6] + (b"0000" if crc != b"0000" else b"FFFF") + b"\r\n"
    stranger = reading.model_copy(update={"station_id": "tuo-nowhere"})
    return {
        "hj212_crc": (topic(station.station_id, "tuo"), bad_crc),
        "bad_json": (topic("tuo-hongyuan", "tuo"), b'{"station_id": "tuo-hongyuan", "time": '),
        "unknown_station": (topic("tuo-nowhere", "tuo"), encode_json(stranger, REGISTRY.by_id["tuo-hongyuan"])
                            .replace(b"tuo-hongyuan", b"tuo-nowhere")),
    }


async def test_a_spill_becomes_one_incident_with_the_right_intake_and_the_data_is_all_there(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    settings = pipeline.settings
    bus = KafkaBus(settings.kafka)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=HOURS)
    sim = Simulator(REGISTRY, seed=SEED, start=start, step=STEP, spills=[Spill.parse(SPILL, start)], faults=False,
                    stations=list(STATIONS))
    expected = list(sim.readings(until=start + timedelta(hours=HOURS)))
    pipeline.start()

    bad = malformed(settings)
    with StationFeed(settings, f"e2e-bad-{settings.mqtt.client_id}") as feed:
        feed.publish(bad.values())
        feed.wait_acknowledged()
    published = await asyncio.to_thread(simulate, settings, start, len(expected))
    assert published.returncode == 0, published.stderr
    assert f"published {len(expected)} messages" in published.stdout

    topics = settings.topics
    groups = pipeline.groups
    async with KafkaProbe(settings) as kafka:
        await until(lambda: equals(kafka.size(topics.readings), len(expected)), "every reading in Kafka")
        await until(lambda: equals(kafka.lag(groups["detect"], topics.readings), 0),
                    "the detectors to take every reading")
        await until(lambda: equals(kafka.lag(groups["alert"], topics.detections), 0), "alerts to take every detection")
        await until(lambda: receiver.to("duty"), "a notification to the duty officer")
        sink_topics = (topics.readings, topics.detections, topics.incidents, topics.notifications)
        await until(lambda: equals(kafka.lag(groups["sink"], *sink_topics), 0), "the sink to write everything")

    # every reading exactly once in Kafka (nothing crashed, so nothing was redelivered)
    records = await read_topic(bus, topics.readings)
    arrived = Counter((r.station_id, r.time) for r in (decode(rec.value or b"", Reading).payload for rec in records))
    assert arrived == Counter((r.station_id, r.time) for r in expected)

    # the DLQ holds exactly the malformed messages, each with its reason
    letters = [decode(rec.value or b"", DeadLetter).payload for rec in await read_topic(bus, topics.dlq)]
    assert sorted(letter.reason_code for letter in letters) == sorted(bad)
    for letter in letters:
        assert (letter.source, base64.b64decode(letter.raw_b64)) == bad[letter.reason_code], letter.reason

    # one incident for the spill, its message names the intake and arrival time of the playbook
    incidents = await latest_incidents(bus, settings)
    spill_incidents = [i for i in incidents
                       if i.route is Route.POLLUTION and i.pollutant == "NH3N" and "tuo-sanhuangmiao" in i.stations]
    others = [(i.incident_id, i.pollutant, i.stations) for i in incidents if i not in spill_incidents]
    assert len(spill_incidents) == 1, f"spill incidents: {spill_incidents}; others: {others}"
    incident = spill_incidents[0]
    detections = [decode(rec.value or b"", Detection).payload for rec in await read_topic(bus, topics.detections)]
    arrivals = earliest_arrivals([d for d in detections if d.station_id == "tuo-sanhuangmiao"
                                  and d.kind.is_pollution and main_pollutant(d)[0] == "NH3N"])
    assert arrivals, f"no NH3N pollution detection at 三皇庙 among {Counter(d.kind for d in detections)}"
    opened = [d for d in receiver.to("duty") if incident.incident_id in d.title]
    assert opened, f"no message for {incident.incident_id}: {[d.title for d in receiver.to('duty')]}"
    first = opened[0]
    print(f"\n{first.title}\n{first.body}\nexpected one of {arrivals}")
    assert "三皇庙" in first.body
    assert "氨氮" in first.title
    named = [(name, beijing(at)) for name, at in arrivals]
    assert any(name in line and at in line for line in first.body.splitlines() for name, at in named), (
        f"no line names one of {named}:\n{first.body}")
    assert arrivals[0][0] == incident.nearest_intake
    assert receiver.to("ops") == []  # no instrument trouble was simulated

    # telemetry queryable in InfluxDB with Flux: every reading of every station, and the spill's peak
    window = (start - timedelta(minutes=1)).isoformat(), (start + timedelta(hours=HOURS)).isoformat()
    stored = await asyncio.to_thread(reading_counts, settings, "pH", *window)
    assert stored == Counter(r.station_id for r in expected)
    history = await asyncio.to_thread(recent_history, settings, "tuo-sanhuangmiao", "NH3N", start)
    kafka_nh3n = {r.time: r.values["NH3N"].value for r in (decode(rec.value or b"", Reading).payload
                                                             for rec in records) if r.station_id == "tuo-sanhuangmiao"}
    assert {p.time: p.value for p in history} == kafka_nh3n
    assert max(p.value for p in history) > 1.0  # above the class III limit: the spill is in the record


def beijing(at: datetime) -> str:
    """A time as the duty officer reads it in a message."""
    return at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M")


def earliest_arrivals(detections: list[Detection]) -> list[tuple[str, datetime]]:
    """Nearest intake and its leading-edge arrival as the incident holds it after each detection
    (in topic order): the earliest arrival seen so far. The message shows one of these, depending
    on how many detections the alert service had taken when it rendered it."""
    network = load_network("tuo")
    out: list[tuple[str, datetime]] = []
    for detection in detections:
        _, value, _, _ = main_pollutant(detection)
        discharge = next((r.values["discharge"].value for r in reversed(detection.readings)
                          if "discharge" in r.values), None)
        playbook = build_playbook(network, station_id=detection.station_id, pollutant="NH3N", at=detection.time,
                                  concentration=value, discharge_m3s=discharge or None)
        intake = playbook.nearest_intake
        assert intake is not None, "the Tuo below 三皇庙 has drinking-water intakes"
        candidate = (intake.name, intake.leading_edge_at)
        if not out or candidate[1] < out[-1][1]:
            out.append(candidate)
    return out

