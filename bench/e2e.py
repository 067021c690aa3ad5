"""The whole pipeline under load: readings/s and publish→notify latency, against the raw brokers.

    .venv/bin/python bench/e2e.py [--seconds 30] [--burst 20000] [--profile detect|ingest|sink|alert]

Needs the stack (``deploy/stack.sh up``); uses its own topics, groups, MQTT session and InfluxDB
database, and starts the four services as subprocesses (``riverguard run ingest|detect|alert|sink``)
exactly as the end-to-end tests do (``tests/e2e/harness.py``).

Method
------
*Baseline, same run, same brokers*: a relay with no processing — a paho subscriber (QoS 1) that
hands each payload to an aiokafka producer (acks=all), and an aiokafka consumer reading them back.
Each payload carries its publish time; latency = consumer receive − publish.

*Fixed load*: the station simulator (all 20 stations, JSON and HJ 212) published at 500
readings/s. A notification per measured reading needs a new incident per sample, so the feed
carries spikes: three readings in a row per (river, reach, pollutant) key get that pollutant at
4× its GB 3838 target-class limit — a limit exceedance, which opens on 2 of 3 readings and opens a
new incident. Latency publish→notify = arrival at the HTTP receiver (Apprise ``json://``) −
publish time of the second spiked reading, the earliest that can open the event (matched through the
incident's first station and pollutant). Publish→detection is measured for the same readings from
the detection record's Kafka timestamp, so the two halves (pipeline to detection, alert stage and
Apprise) show separately. A key whose incident the simulated water opened before the spike
(natural exceedances) gives no sample; the count of samples is printed.

*Saturation*: ``--burst`` readings published as fast as the publisher goes; throughput = readings
/ time from the first publish until the detectors and the sink have committed every one (the
whole pipeline, not just ingest). The same count goes through the baseline relay.

Memory: RSS (now and peak) of every service and broker process. CPU seconds per process during the
saturation run show where the time goes; ``--profile STAGE`` runs that service under cProfile
and prints its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho

from alerts.playbook_source import RiverPlaybooks
from detectors.config import DetectorConfig
from ingest.codecs import TopicPattern
from ingest.publisher import payload_for
from ingest.simulator import Simulator
from pipeline.harness import (
    KafkaProbe,
    Pipeline,
    Receiver,
    StationFeed,
    close_bridge_session,
    dev_password,
    influx_statement,
    isolated,
    mqtt5_client,
    process_cpu_s,
    process_rss_mb,
    read_topic,
)
from riverguard.bus.base import TopicSpec
from riverguard.bus.kafka import KafkaBus
from riverguard.incidents import Incident
from riverguard.models import Detection, Measurement, Reading, decode
from riverguard.parameters import PARAMETERS, gb3838_limit
from riverguard.settings import Settings, load_settings
from riverguard.stations import load_registry

REGISTRY = load_registry()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(name: str, latencies: Sequence[float]) -> str:
    if not latencies:
        return f"{name:<34} no samples"
    p50, p99 = 1000 * statistics.median(latencies), 1000 * percentile(latencies, 99)
    top = 1000 * max(latencies)
    return f"{name:<34} p50 {p50:7.0f} ms   p99 {p99:7.0f} ms   max {top:7.0f} ms   (n={len(latencies)})"


# -- the baseline: MQTT → Kafka → consumer with no processing ------------------------------------


async def raw_round_trip(settings: Settings, run: str, rate: float | None, count: int) -> tuple[list[float], float]:
    """(latencies, received/s) of ``count`` messages through a relay that does nothing."""
    topic = f"bench-raw-{run}-{rate or 'max'}"
    bus = KafkaBus(settings.kafka)
    await bus.create_topics([TopicSpec(topic, settings.kafka.partitions)])
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[bytes] = asyncio.Queue()
    relay = mqtt5_client(settings.mqtt, f"raw-{run}")
    relay.username_pw_set("riverguard-bridge", dev_password("riverguard-bridge"))
    relay.max_inflight_messages_set(1000)
    subscribed = threading.Event()
    relay.on_subscribe = lambda *_: subscribed.set()

    def on_message(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        loop.call_soon_threadsafe(inbox.put_nowait, bytes(message.payload))

    relay.on_message = on_message
    mqtt_topic = f"stations/raw/{run}/bench"
    relay.connect(settings.mqtt.host, settings.mqtt.port)
    relay.loop_start()
    relay.subscribe(mqtt_topic.replace(run, "+"), qos=1)
    subscribed.wait(10)
    latencies: list[float] = []
    async with bus.producer() as producer, bus.consumer([topic], group_id=f"raw-{run}-{rate}") as consumer:
        async def forward() -> None:
            for _ in range(count):
                await producer.send(topic, await inbox.get(), key=b"k")

        forwarding = asyncio.create_task(forward())
        await asyncio.sleep(1.0)  # the consumer joins its group
        first = time.time()

        def publish() -> None:
            feed = StationFeed(settings, f"raw-pub-{run}")
            with feed:
                feed.publish(((mqtt_topic, json.dumps({"t": time.time()}).encode()) for _ in range(count)), rate=rate)
                feed.wait_acknowledged()

        publishing = asyncio.create_task(asyncio.to_thread(publish))
        while len(latencies) < count:
            for record in await consumer.getmany(timeout_ms=200, max_records=2000):
                latencies.append(time.time() - json.loads(record.value or b"{}")["t"])
        elapsed = time.time() - first
        await publishing
        await forwarding
    relay.disconnect()
    relay.loop_stop()
    await bus.delete_topics([topic])
    return latencies, count / elapsed


# -- the pipeline ---------------------------------------------------------------------------------


def spiked_stream(start: datetime, steps: int) -> tuple[list[Reading], dict[tuple[str, str], int]]:
    """Simulated readings of every station; one spike per (river, reach, pollutant) key, spread
    over the run. Returns the readings and, per (station, pollutant) spike, its index."""
    playbooks = RiverPlaybooks.from_settings(load_settings())
    keys: dict[tuple[str, str, str], tuple[str, str]] = {}
    for station in REGISTRY.stations:
        reach = (playbooks.reaches_to(station.station_id, station.river) or (station.river,))[-1]
        for parameter in station.parameters:
            spec = PARAMETERS[parameter]
            if spec.limits is not None and spec.limits.kind == "max" and gb3838_limit(parameter, station.target_class):
                keys.setdefault((station.river, reach, parameter), (station.station_id, parameter))
    readings = list(Simulator(REGISTRY, seed=3, start=start, faults=False).readings(
        until=start + timedelta(minutes=steps)))
    spikes: dict[tuple[str, str], int] = {}
    per_step = len(REGISTRY.stations)
    # Spikes start after every detector's warm-up, plus a margin: all 20 simulated stations start
    # together, so they all end their warm-up on the same reading, where each builds its
    # HalfSpaceTrees (~10 ms per station) — a one-off stall of the whole stage that real stations,
    # coming online at different times, do not line up for.
    first_step = DetectorConfig().warmup_readings + 30
    for n, (station_id, parameter) in enumerate(keys.values()):
        step = first_step + (steps - first_step - 60) * n // max(1, len(keys))
        first = step * per_step + [s.station_id for s in REGISTRY.stations].index(station_id)
        limit = gb3838_limit(parameter, REGISTRY.by_id[station_id].target_class) or 1.0
        # Limit exceedances open on 2 of 3 readings: spike three in a row and measure from the
        # second, the earliest reading that can open the event (the detection carries its time).
        # The values differ: the detectors do not count an exact repeat (a stuck sensor) as evidence.
        for k, index in enumerate((first, first + per_step, first + 2 * per_step)):
            reading = readings[index]
            values = {**reading.values, parameter: Measurement(value=float(f"{(4 + 0.2 * k) * limit:.5g}"))}
            readings[index] = reading.model_copy(update={"values": values})
        spikes[station_id, parameter] = first + per_step
    return readings, spikes


async def fixed_load(pipeline: Pipeline, receiver: Receiver, rate: float, seconds: float) -> None:
    settings = pipeline.settings
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
    steps = int(rate * seconds / len(REGISTRY.stations))
    readings, spikes = spiked_stream(start, steps)
    topics = TopicPattern(settings.mqtt.topic_pattern)
    messages = [(topics.format(r.river, r.station_id), payload_for(r, REGISTRY)) for r in readings]
    feed = StationFeed(settings, f"bench-feed-{settings.mqtt.client_id}")
    with feed:
        began = time.monotonic()
        await asyncio.to_thread(feed.publish, messages, rate=rate)
        offered = len(messages) / (time.monotonic() - began)
        await asyncio.to_thread(feed.wait_acknowledged)
    await drain(pipeline, len(messages), limit_s=120)
    await asyncio.sleep(3)  # the last notifications
    bus = KafkaBus(settings.kafka)
    incidents: dict[str, Incident] = {}
    opened: dict[str, float] = {}  # incident id -> Kafka time of its first record (the alert stage persisted it)
    for record in await read_topic(bus, settings.topics.incidents):
        if record.value:
            incident = decode(record.value, Incident).payload
            incidents[incident.incident_id] = incident
            opened.setdefault(incident.incident_id, record.timestamp_ms / 1000)
    detect: list[float] = []
    detected: dict[int, float] = {}  # spike index -> its first publish→detection
    first_arrival: dict[str, float] = {}
    for delivery in receiver.deliveries:
        for incident_id in incidents:
            if incident_id in delivery.title:
                first_arrival.setdefault(incident_id, delivery.at)
    notified: dict[int, float] = {}  # spike index -> publish→notify
    persisted: dict[int, float] = {}  # spike index -> publish→incident persisted
    for incident_id, incident in incidents.items():
        index = spikes.get((incident.first_station, incident.pollutant))
        if index is not None and incident_id in first_arrival:
            notified[index] = first_arrival[incident_id] - feed.sent_at[index]
            persisted[index] = opened[incident_id] - feed.sent_at[index]
    notify = list(notified.values())
    for record in await read_topic(bus, settings.topics.detections):
        detection = decode(record.value or b"", Detection).payload
        for finding in detection.findings:
            index = spikes.get((detection.station_id, finding.parameter))
            if index is not None and readings[index].time == detection.time and detection.phase.value == "onset":
                detect.append(record.timestamp_ms / 1000 - feed.sent_at[index])
                detected.setdefault(index, detect[-1])
    print(f"fixed load: offered {offered:,.0f} readings/s for {seconds:g} s ({len(messages)} readings, "
          f"{len(spikes)} spikes)")
    print(summary("  publish → detection (Kafka)", detect))
    print(summary("  publish → notify (Apprise call)", notify))
    print(f"  {len(incidents)} incidents, {len(notify)} of {len(spikes)} spikes gave a latency sample")
    slowest = sorted(notified, key=lambda i: -notified[i])[:3]
    print("  slowest notifications (s into the feed: publish→detection, →incident persisted, →notify): " + "; ".join(
        f"{feed.sent_at[i] - feed.sent_at[0]:.1f} s: {detected.get(i, float('nan')) * 1000:.0f}, "
        f"{persisted[i] * 1000:.0f}, {notified[i] * 1000:.0f} ms" for i in slowest))
    if not incidents:
        print(pipeline.logs(20))


async def drain(pipeline: Pipeline, total: int, limit_s: float) -> dict[str, float]:
    """Wait until the readings are in Kafka and committed by the detectors and the sink; when
    each of the three was first seen done (monotonic clock; "all" for the last of them)."""
    topics, groups = pipeline.settings.topics, pipeline.groups
    deadline = time.monotonic() + limit_s
    done: dict[str, float] = {}
    async with KafkaProbe(pipeline.settings) as kafka:
        while time.monotonic() < deadline:
            if "ingest" not in done and await kafka.size(topics.readings) >= total:
                done["ingest"] = time.monotonic()
            for stage in ("detect", "sink"):
                if "ingest" in done and stage not in done and await kafka.lag(groups[stage], topics.readings) == 0:
                    done[stage] = time.monotonic()
            if len(done) == 3:
                return done | {"all": max(done.values())}
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the pipeline did not take {total} readings in {limit_s:g} s")


def machine_cpu() -> dict[str, float]:
    """Seconds of all CPUs so far by state, from /proc/stat (busy, idle, and stolen by the host)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) / os.sysconf("SC_CLK_TCK") for v in fields[:8])
    return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "stolen": steal}


def broker_pids(settings: Settings) -> dict[str, int]:
    """The processes listening on the configured Mosquitto, Kafka and InfluxDB ports (whichever
    stack started them), found with ``ss``."""
    kafka_port = int(settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")[2])
    influx_port = urllib.parse.urlsplit(settings.influx.url).port or 8086
    pids = {}
    for name, port in (("mosquitto", settings.mqtt.port), ("kafka", kafka_port), ("influxdb", influx_port)):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            listening = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True,
                                       timeout=5, check=False).stdout
            found = re.search(r"pid=(\d+)", listening)
            if found:
                pids[name] = int(found[1])
    return pids


async def joined(pipeline: Pipeline, limit_s: float = 120) -> None:
    """Until every consumer stage's group is stable: a fixed wait was too short on a busy machine
    with TLS and SCRAM logins, and the first spikes' latencies measured the services' start."""
    deadline = time.monotonic() + limit_s
    async with KafkaProbe(pipeline.settings) as kafka:
        for group in pipeline.groups.values():
            while not await kafka.stable(group):
                if time.monotonic() > deadline:
                    raise SystemExit(f"group {group} did not become stable in {limit_s:g} s")
                await asyncio.sleep(0.2)


async def saturation(pipeline: Pipeline, count: int) -> float:
    settings = pipeline.settings
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    readings = Simulator(REGISTRY, seed=5, start=start, faults=False).readings()
    topics = TopicPattern(settings.mqtt.topic_pattern)
    messages = [(topics.format(r.river, r.station_id), payload_for(r, REGISTRY)) for r in
                (next(readings) for _ in range(count))]
    async with KafkaProbe(settings) as kafka:
        before = await kafka.size(settings.topics.readings)
    pids = {name: s.pid for name, s in pipeline.services.items()} | broker_pids(pipeline.settings)
    pids["bench (this process)"] = os.getpid()
    cpu = {name: process_cpu_s(pid) for name, pid in pids.items()}
    machine = machine_cpu()
    feed = StationFeed(settings, f"bench-burst-{settings.mqtt.client_id}")
    with feed:
        began = time.monotonic()
        await asyncio.to_thread(feed.publish, messages)
        published = time.monotonic() - began
        await asyncio.to_thread(feed.wait_acknowledged)
    done = await drain(pipeline, before + count, limit_s=300)
    elapsed = done["all"] - began
    used = {name: process_cpu_s(pid) - cpu[name] for name, pid in pids.items()}
    machine = {state: seconds - machine[state] for state, seconds in machine_cpu().items()}
    print(f"saturation: {count} readings published in {published:.1f} s ({count / published:,.0f}/s), "
          f"through the pipeline in {elapsed:.1f} s")
    print(f"  sustained: {count / elapsed:,.0f} readings/s (ingest → Kafka → detect + sink committed)")
    print("  all in Kafka / committed by: " + ", ".join(
        f"{stage} {done[stage] - began:.1f} s" for stage in ("ingest", "detect", "sink")))
    used["other processes on the machine"] = max(0.0, machine["busy"] - sum(used.values()))
    print("  CPU seconds during it: " + ", ".join(f"{n} {s:.1f}" for n, s in sorted(used.items(), key=lambda x: -x[1])))
    cores = ", ".join(f"{state} {seconds / elapsed:.2f}" for state, seconds in machine.items())
    print(f"  machine, in cores over the run: {cores} (stolen: the hypervisor ran something else)")
    services = {n: s for n, s in used.items() if n in pipeline.services}
    per_reading = 1000 * sum(services.values()) / count
    print("  CPU per reading, ms: " + ", ".join(f"{n} {1000 * s / count:.3f}" for n, s in used.items())
          + f"; the four services {per_reading:.2f}")
    return count / elapsed


def memory(pipeline: Pipeline) -> None:
    pids = {name: s.pid for name, s in pipeline.services.items()} | broker_pids(pipeline.settings)
    rows = []
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            now, peak = process_rss_mb(pid)
            rows.append(f"{name} {now:.0f}/{peak:.0f}")
    print("memory RSS now/peak MB: " + ", ".join(rows))


async def main(args: argparse.Namespace) -> None:
    base = load_settings()
    run = uuid.uuid4().hex[:8]
    print(f"baseline relay (MQTT → Kafka → consumer, no processing), run {run}")
    raw_fixed, _ = await raw_round_trip(base, run, 500.0, int(500 * min(args.seconds, 15)))
    print(summary("  at 500/s: publish → consumer", raw_fixed))
    _, raw_rate = await raw_round_trip(base, run, None, args.burst)
    print(f"  saturation: {raw_rate:,.0f} messages/s")

    receiver = Receiver().start()
    database = f"rg_bench_{run}"
    influx_statement(base.influx, f'CREATE DATABASE "{database}"')
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        settings = isolated(base, run, bucket=database, receiver=receiver, config_dir=Path(tmp), partitions=6)
        profile = Path(tmp) / "profile.out"
        pipeline = Pipeline(settings, Path(tmp), run)
        if args.profile:
            service = pipeline.services[args.profile]
            service.argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *service.argv]
        await pipeline.prepare()
        pipeline.start()
        try:
            await joined(pipeline)  # the services start (imports, logins) and join their groups
            await fixed_load(pipeline, receiver, 500.0, args.seconds)
            sustained = await saturation(pipeline, args.burst)
            memory(pipeline)
            print(f"ratio pipeline/raw relay at saturation: {sustained / raw_rate:.2f}")
        finally:
            pipeline.stop()
            close_bridge_session(settings)
            influx_statement(base.influx, f'DROP DATABASE "{database}"')
            await KafkaBus(base.kafka).delete_topics(list(settings.topics.model_dump().values()))
            receiver.stop()
            if args.profile and profile.exists():
                for order in ("tottime", "cumulative"):
                    print(f"cProfile of {args.profile} (top 25 by {order}):")
                    pstats.Stats(str(profile)).sort_stats(order).print_stats(25)
            elif args.profile:
                print(pipeline.services[args.profile].tail(20))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the fixed-load run")
    parser.add_argument("--burst", type=int, default=20_000, help="readings of the saturation run")
    parser.add_argument("--profile", choices=["ingest", "detect", "alert", "sink"], help="cProfile one service")
    asyncio.run(main(parser.parse_args()))
