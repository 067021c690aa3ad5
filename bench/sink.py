"""Points/s the sink writes from Kafka, against a raw influxdb-client batch write, same run.

    .venv/bin/python bench/sink.py [--readings 10000] [--batch 5000]

Needs the local stack (Kafka, InfluxDB). Each run creates its own topics and two throw-away
databases (one per contender, dropped at the end), produces the readings first (not timed),
then times:
- raw: the same line-protocol points, built beforehand, written with influxdb-client's
  synchronous write API in batches of ``--batch`` (the floor for any writer of these points);
- sink: the sink stage from a fresh consumer group until every record is written (Kafka fetch,
  envelope decode, validation, mapping, write, commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from pipeline.stages import sink_stage
from riverguard.bus.kafka import KafkaBus
from riverguard.bus.topics import topic_specs
from riverguard.models import Measurement, Reading, SourceFormat, encode
from riverguard.settings import Settings, TopicSettings, load_settings
from sink.influx import InfluxWriter
from sink.points import reading_points

PARAMETERS = {"NH3N": 0.3, "pH": 7.5, "DO": 8.1, "TP": 0.08}
STATIONS = ("tuo-sanhuangmiao", "tuo-hongyuan", "min-pengshan", "jialing-shaxi")


def readings(n: int) -> list[Reading]:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    return [
        Reading(
            station_id=STATIONS[i % len(STATIONS)],
            river=STATIONS[i % len(STATIONS)].split("-")[0],
            time=t0 + timedelta(seconds=30 * (i // len(STATIONS))),
            values={k: Measurement(value=v + (i % 17) / 100) for k, v in PARAMETERS.items()},
            source_format=SourceFormat.SIMULATOR,
        )
        for i in range(n)
    ]


def influx_query(url: str, statement: str) -> None:
    body = urllib.parse.urlencode({"q": statement}).encode()
    with urllib.request.urlopen(f"{url}/query", data=body, timeout=30) as response:
        answer = json.loads(response.read())
    if "error" in json.dumps(answer):
        raise SystemExit(f"InfluxDB {statement!r}: {answer}")


def raw_write(settings: Settings, bucket: str, lines: list[str], batch: int) -> float:
    influx = settings.influx
    with InfluxDBClient(url=influx.url, token=influx.token.get_secret_value(), org=influx.org) as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        started = time.perf_counter()
        for i in range(0, len(lines), batch):
            api.write(bucket=bucket, org=influx.org, record="\n".join(lines[i : i + batch]))
        return time.perf_counter() - started


async def sink_write(settings: Settings, records: int) -> tuple[float, float, int]:
    """Seconds until all ``records`` are written, seconds to the first written batch, records in it."""
    bus = KafkaBus(settings.kafka)
    writer = InfluxWriter(settings.influx)
    written = [0]  # records whose points InfluxDB acknowledged (the stage's Handled batches)
    stop = asyncio.Event()
    started = time.perf_counter()
    first: tuple[float, int] | None = None
    stage = sink_stage(settings, bus, writer, group_id=f"bench-{uuid.uuid4().hex[:8]}",
                       observers=[lambda handled: written.__setitem__(0, written[0] + len(handled.records))])
    task = asyncio.create_task(stage.run(stop))
    while (done := written[0]) < records:
        if task.done():
            task.result()
        if first is None and done:
            first = (time.perf_counter() - started, done)
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    writer.close()
    return elapsed, *(first or (elapsed, records))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=5000, help="points per write (sink: influx.batch_size)")
    args = parser.parse_args()

    base = load_settings()
    run = uuid.uuid4().hex[:8]
    topics = TopicSettings(**{name: f"bench-{name}-{run}" for name in TopicSettings.model_fields})
    raw_db, sink_db = f"rg_bench_raw_{run}", f"rg_bench_sink_{run}"
    settings = base.model_copy(
        update={
            "topics": topics,
            "influx": base.influx.model_copy(update={"bucket": f"{sink_db}/autogen", "batch_size": args.batch}),
        }
    )
    data = readings(args.readings)
    lines = [p.to_line_protocol() for r in data for p in reading_points(r)]
    for db in (raw_db, sink_db):
        influx_query(settings.influx.url, f'CREATE DATABASE "{db}"')
    bus = KafkaBus(settings.kafka)
    try:
        await bus.create_topics(topic_specs(settings))
        async with bus.producer() as producer:
            pending = [
                await producer.send(topics.readings, encode(r), key=r.station_id.encode()) for r in data
            ]
            for delivery in pending:
                await delivery

        raw_s = raw_write(settings, f"{raw_db}/autogen", lines, args.batch)
        sink_s, first_s, first_records = await sink_write(settings, len(data))
    finally:
        for db in (raw_db, sink_db):
            influx_query(settings.influx.url, f'DROP DATABASE "{db}"')
        await bus.delete_topics(list(topics.model_dump().values()))

    points = len(lines)
    raw_rate, sink_rate = points / raw_s, points / sink_s
    print(f"points: {points} ({len(data)} readings x {len(PARAMETERS)} parameters), batch {args.batch}")
    print(f"raw influxdb-client batch write : {raw_s:7.2f} s  {raw_rate:9.0f} points/s")
    steady_points = points * (1 - first_records / len(data))
    steady_rate = steady_points / (sink_s - first_s) if sink_s > first_s else float("nan")
    print(f"sink (Kafka → InfluxDB, commit) : {sink_s:7.2f} s  {sink_rate:9.0f} points/s"
          f"  (group join + first batch {first_s:.2f} s; after it {steady_rate:.0f} points/s)")
    print(f"ratio sink/raw                  : {sink_rate / raw_rate:7.2f}  (after the first batch: "
          f"{steady_rate / raw_rate:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
