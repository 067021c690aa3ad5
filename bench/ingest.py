"""Ingest throughput: readings/s through the bridge (MQTT in → Kafka acked) against the raw
aiokafka producer rate measured in the same run, on the same Kafka.

The bridge's share is measured in isolation from the publisher: N simulator messages (JSON and
HJ 212, as each station sends) are queued first in the broker for the bridge's persistent session,
then the bridge starts and the clock runs from its connection to the MQTT ack of the last message
(which the bridge sends only after Kafka acknowledged the record). The baseline sends the same
number of already-encoded reading records with a bare producer (acks=all, idempotent, pipelined).
A second baseline sends the same records through ``send_batch`` (aiokafka record batches, the call
the bridge itself uses since it sends a batch of messages at a time). CPU time per message (the
bridge process, and its routing workers) is printed too: it moves less than the rates when other
work shares the machine.

    .venv/bin/python bench/ingest.py [N] [--workers 0 2]      (with the stack up: deploy/stack.sh up)

``--workers`` lists the ``mqtt.routing_workers`` values to measure: 0 routes in the bridge
process, N > 0 leaves the bridge process only MQTT and hands routing to N processes.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from ingest.bridge import Bridge
from ingest.publisher import Pace, publish_readings
from ingest.simulator import Simulator
from pipeline.harness import dev_password
from riverguard.bus.base import Outgoing, TopicSpec
from riverguard.bus.kafka import KafkaBus
from riverguard.models import encode
from riverguard.settings import Settings, load_settings
from riverguard.stations import load_registry


def bench_settings() -> Settings:
    base = load_settings()
    run = uuid.uuid4().hex[:8]
    return base.model_copy(update={
        "topics": base.topics.model_copy(update={"readings": f"bench-readings-{run}", "dlq": f"bench-dlq-{run}"}),
        "mqtt": base.mqtt.model_copy(update={
            "client_id": f"bench-ingest-{run}",
            "password": base.mqtt.password or SecretStr(dev_password("riverguard-bridge")),
            "topic_filter": f"stations/+/+/bench-{run}",
            "topic_pattern": "stations/{river}/{station_id}/bench-" + run,
        }),
    })


def children_cpu_s() -> float:
    """CPU seconds of this process's ended children (the routing workers, once stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def bridge_rate(settings: Settings, n: int) -> tuple[float, float, float, float]:
    """(readings/s, seconds, bridge-process CPU µs per message, routing-worker CPU µs per message)."""
    registry = load_registry()
    bus = KafkaBus(settings.kafka)
    session = Bridge(settings, registry, bus)
    stop = asyncio.Event()
    task = asyncio.create_task(session.run(stop))
    await session.connected.wait()  # topics created, persistent session subscribed
    stop.set()
    await task

    sim = Simulator(registry, seed=7, start=datetime(2024, 7, 1, tzinfo=UTC)).readings()
    readings = [next(sim) for _ in range(n)]
    published = await asyncio.to_thread(
        publish_readings, readings, registry, settings.mqtt, username="riverguard-sim",
        password=dev_password("riverguard-sim"), client_id=f"{settings.mqtt.client_id}-pub", pace=Pace(),
    )
    print(f"queued {published.published} messages in the broker ({published.rate:,.0f}/s publish rate)")

    bridge = Bridge(settings, registry, bus, create_topics=False)
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await bridge.connected.wait()
    started = time.perf_counter()
    cpu, workers_cpu = time.process_time(), children_cpu_s()
    while bridge.stats.acked < n:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    cpu, workers_cpu = time.process_time() - cpu, children_cpu_s() - workers_cpu
    if bridge.stats.dead_letters:
        print(f"warning: {bridge.stats.dead_letters} dead letters")
    return n / elapsed, elapsed, cpu / n * 1e6, workers_cpu / n * 1e6


def raw_topic(settings: Settings) -> str:
    return settings.topics.readings + "-raw"


def raw_records(settings: Settings, n: int) -> list[Outgoing]:
    """The baselines' records: n simulated readings, already encoded, for the raw topic."""
    sim = Simulator(load_registry(), seed=7, start=datetime(2024, 7, 1, tzinfo=UTC)).readings()
    topic = raw_topic(settings)
    return [Outgoing(topic, encode(r), key=r.station_id.encode()) for r in (next(sim) for _ in range(n))]


async def raw_producer_rate(settings: Settings, n: int) -> tuple[float, float]:
    records = raw_records(settings, n)
    bus = KafkaBus(settings.kafka)
    async with bus.producer(client_id="bench-raw") as producer:
        started = time.perf_counter()
        pending = [await producer.send(r.topic, r.value, key=r.key) for r in records]
        for delivery in pending:
            await delivery
        elapsed = time.perf_counter() - started
    return n / elapsed, elapsed


async def raw_batch_rate(settings: Settings, n: int) -> float:
    """The same records through ``send_batch`` (aiokafka record batches), the bridge's own call,
    in chunks of 500 as the bridge takes them from MQTT."""
    records = raw_records(settings, n)
    bus = KafkaBus(settings.kafka)
    async with bus.producer(client_id="bench-raw-batch") as producer:
        started = time.perf_counter()
        pending = [await producer.send_batch(records[i : i + 500]) for i in range(0, n, 500)]
        for deliveries in pending:
            await deliveries
        elapsed = time.perf_counter() - started
    return n / elapsed


async def main(n: int, workers: list[int]) -> None:
    base = bench_settings()
    bus = KafkaBus(base.kafka)
    await bus.create_topics([TopicSpec(raw_topic(base), base.kafka.partitions)])
    made = [raw_topic(base)]
    try:
        await measure(base, n, workers, made)
    finally:
        await bus.delete_topics(made)


async def measure(base: Settings, n: int, workers: list[int], made: list[str]) -> None:
    """Print the baselines and each configuration's rate; ``made`` collects the topics created."""
    raw, raw_s = await raw_producer_rate(base, n)
    print(f"raw aiokafka producer        : {raw:>9,.0f} records/s  ({n} in {raw_s:.2f} s, send() per record)")
    raw_batched = await raw_batch_rate(base, n)
    print(f"raw, aiokafka record batches : {raw_batched:>9,.0f} records/s  (send_batch, as the bridge sends)")
    for count in workers:
        settings = bench_settings()  # a fresh session and topics per configuration
        made += [settings.topics.readings, settings.topics.dlq]
        settings = settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update={"routing_workers": count})})
        bridged, bridged_s, cpu_us, workers_us = await bridge_rate(settings, n)
        label = f"bridge, {count} routing workers" if count else "bridge, routing in-process"
        print(f"{label:<29}: {bridged:>9,.0f} readings/s ({n} in {bridged_s:.2f} s), "
              f"ratio to raw {bridged / raw:.2f} (to batches {bridged / raw_batched:.2f})   "
              "(goal ≥ 0.5 and ≥ 5,000 readings/s)")
        in_workers = f" + routing workers {workers_us:.0f} µs" if count else ""
        print(f"{'':<29}  CPU per message: bridge process {cpu_us:.0f} µs{in_workers}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Ingest bridge throughput against the raw aiokafka producer.")
    parser.add_argument("messages", nargs="?", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="mqtt.routing_workers values to measure (0: routing in the bridge process)")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.workers))
