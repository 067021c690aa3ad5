"""The sink on real Kafka and InfluxDB: readings become queryable points, exactly once, through
an InfluxDB outage, and /metrics and /health tell what happened.

Each test gets its own topics, consumer group and InfluxDB database (``<db>/autogen``). The
outage is a TCP proxy in front of the shared InfluxDB that the test cuts and restores: from the
sink's side that is InfluxDB going away (refused connections, dropped keep-alive sockets)
without stopping the InfluxDB other tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from prometheus_client.parser import text_string_to_metric_families

from pipeline.serve import serve
from pipeline.stages import service
from riverguard.bus.kafka import KafkaBus
from riverguard.models import Measurement, Reading, SourceFormat, encode
from riverguard.settings import Settings, TopicSettings
from riverguard.stations import load_registry
from sink.history import recent_history
from tests.support.services import require_service

pytestmark = [pytest.mark.integration]

STATIONS = ("tuo-sanhuangmiao", "tuo-hongyuan", "min-pengshan")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


class CuttableProxy:
    """A TCP relay to InfluxDB that can be cut (refuse + drop connections) and restored."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


def influx_query(url: str, statement: str) -> None:
    body = urllib.parse.urlencode({"q": statement}).encode()
    with urllib.request.urlopen(f"{url}/query", data=body, timeout=10) as response:
        answer = json.loads(response.read())
    assert "error" not in json.dumps(answer), answer


@pytest.fixture
def sink_settings(kafka_settings: Settings, unique: str) -> Iterator[Settings]:
    url = kafka_settings.influx.url
    host, _, port = urllib.parse.urlsplit(url).netloc.rpartition(":")
    require_service("InfluxDB", host, int(port))
    database = f"rg_sink_{unique}"
    influx_query(url, f'CREATE DATABASE "{database}"')
    topics = TopicSettings(**{name: f"{name}-{unique}" for name in TopicSettings.model_fields})
    yield kafka_settings.model_copy(
        update={
            "topics": topics,
            "kafka": kafka_settings.kafka.model_copy(update={"partitions": 3}),
            "influx": kafka_settings.influx.model_copy(
                update={"bucket": f"{database}/autogen", "flush_interval_ms": 200, "max_retry_delay_s": 1.0}
            ),
            "observability": kafka_settings.observability.model_copy(update={"metrics_port": free_port()}),
        }
    )
    influx_query(url, f'DROP DATABASE "{database}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def produce(settings: Settings, first: int, count: int) -> None:
    """Readings ``first .. first+count-1`` of every station (NH3N and pH each)."""
    async with KafkaBus(settings.kafka).producer() as producer:
        pending = []
        for i in range(first, first + count):
            for station in STATIONS:
                reading = Reading(
                    station_id=station,
                    river=station.split("-")[0],
                    time=T0 + timedelta(minutes=i),
                    values={"NH3N": Measurement(value=0.2 + i / 1000), "pH": Measurement(value=7.4)},
                    source_format=SourceFormat.SIMULATOR,
                )
                pending.append(await producer.send(settings.topics.readings, encode(reading), key=station.encode()))
        for delivery in pending:
            await delivery


def point_counts(settings: Settings) -> dict[tuple[str, str], int]:
    """Points per (station, parameter) in the test's database, straight from InfluxDB."""
    query = f"""
from(bucket: "{settings.influx.bucket}")
  |> range(start: -30d)
  |> filter(fn: (r) => r._measurement == "reading" and r._field == "value")
  |> group(columns: ["station", "parameter"])
  |> count()
"""
    with InfluxDBClient(url=settings.influx.url, token="x:x", org="-") as client:
        tables = client.query_api().query(query, org="-")
    return {(r.values["station"], r.values["parameter"]): int(r.values["_value"]) for t in tables for r in t.records}


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll (a hang guard of 60 s, not a speed check) until ``check`` holds."""
    for _ in range(300):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


async def counts(settings: Settings) -> dict[tuple[str, str], int]:
    return await asyncio.to_thread(point_counts, settings)


async def sink_metric(settings: Settings, name: str, **labels: str) -> float:
    return metric((await scrape(settings, "/metrics"))[1], name, **labels)


async def eq(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def at_least(value: Awaitable[float], bound: float) -> bool:
    return await value >= bound


def metric(body: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def scrape(settings: Settings, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{settings.observability.metrics_port}{path}"

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return await asyncio.to_thread(get)


@contextlib.asynccontextmanager
async def running_sink(settings: Settings, group: str) -> AsyncIterator[None]:
    stop = asyncio.Event()
    bus = KafkaBus(settings.kafka)
    sink = service("sink", settings, load_registry(), bus, group_id=group)
    task = asyncio.create_task(serve(sink, settings, stop))
    try:
        for _ in range(100):  # the /metrics port answers once the service is up
            if task.done():
                task.result()
            with contextlib.suppress(OSError):
                await scrape(settings, "/metrics")
                break
            await asyncio.sleep(0.1)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await bus.close()


@pytest.mark.slow
async def test_readings_become_queryable_and_a_replay_duplicates_nothing(sink_settings: Settings, unique: str) -> None:
    await produce(sink_settings, 0, 10)
    expected = {(station, parameter): 10 for station in STATIONS for parameter in ("NH3N", "pH")}
    async with running_sink(sink_settings, f"sink-{unique}"):
        before = await sink_metric(sink_settings, "riverguard_messages_in_total", stage="sink")
        await wait_for(lambda: eq(counts(sink_settings), expected), "60 points in InfluxDB")
        status, health = await scrape(sink_settings, "/health")
        await wait_for(
            lambda: eq(sink_metric(sink_settings, "riverguard_messages_in_total", stage="sink"), before + 30),
            "30 records counted in",
        )
        body = (await scrape(sink_settings, "/metrics"))[1]

    assert status == 200
    assert json.loads(health)["checks"]["kafka"]["status"] == "ok"
    assert json.loads(health)["checks"]["influxdb"]["status"] == "ok"
    assert metric(body, "riverguard_consumer_lag", stage="sink", topic=sink_settings.topics.readings) == 0

    history = await asyncio.to_thread(recent_history, sink_settings, "tuo-hongyuan", "NH3N", "7d")
    assert [p.time for p in history] == [T0 + timedelta(minutes=i) for i in range(10)]
    assert [p.value for p in history] == pytest.approx([0.2 + i / 1000 for i in range(10)])
    assert {p.flag for p in history} == {"N"}

    # Another group reads the same topics from the start: a full replay writes every point again.
    async with running_sink(sink_settings, f"replay-{unique}"):
        await wait_for(
            lambda: eq(sink_metric(sink_settings, "riverguard_messages_in_total", stage="sink"), before + 60),
            "the replay read all 30 records",
        )
    assert point_counts(sink_settings) == expected


@pytest.mark.slow
async def test_an_influxdb_outage_holds_the_stream_and_loses_nothing(sink_settings: Settings, unique: str) -> None:
    upstream = urllib.parse.urlsplit(sink_settings.influx.url)
    proxy = CuttableProxy(upstream.hostname or "127.0.0.1", upstream.port or 8086)
    await proxy.start()
    via_proxy = sink_settings.model_copy(
        update={"influx": sink_settings.influx.model_copy(update={"url": f"http://127.0.0.1:{proxy.port}"})}
    )
    async with running_sink(via_proxy, f"sink-{unique}"):
        await produce(sink_settings, 0, 5)
        first = {(station, parameter): 5 for station in STATIONS for parameter in ("NH3N", "pH")}
        await wait_for(lambda: eq(counts(sink_settings), first), "the first 30 points")
        errors_before = await sink_metric(via_proxy, "riverguard_influx_write_errors_total", kind="unavailable")

        await proxy.cut()
        await produce(sink_settings, 5, 20)  # the stream goes on while InfluxDB is away
        await wait_for(
            lambda: at_least(sink_metric(via_proxy, "riverguard_influx_write_errors_total", kind="unavailable"),
                             errors_before + 2),
            "failed writes retried",
        )
        status, health = await scrape(via_proxy, "/health")
        body = (await scrape(via_proxy, "/metrics"))[1]
        assert await counts(sink_settings) == first  # nothing new got through
        await proxy.start()  # InfluxDB is back on the same address

        expected = {(station, parameter): 25 for station in STATIONS for parameter in ("NH3N", "pH")}
        await wait_for(lambda: eq(counts(sink_settings), expected), "all 150 points after the outage")
        after = (await scrape(via_proxy, "/metrics"))[1]
    await proxy.cut()

    assert status == 503
    report = json.loads(health)
    assert report["checks"]["influxdb"]["status"] == "error"
    assert report["checks"]["kafka"]["status"] == "ok"
    assert metric(body, "riverguard_backpressure", stage="sink", output="influxdb") == 1
    assert metric(after, "riverguard_backpressure", stage="sink", output="influxdb") == 0
    assert point_counts(sink_settings) == expected  # every reading once: 25 per station and parameter
