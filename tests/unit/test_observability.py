"""/metrics and /health served by start_observability, JSON logs, and consumer lag."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys

from riverguard.bus.base import TopicSpec
from riverguard.bus.memory import MemoryBus
from riverguard.observability import (
    CONSUMER_LAG,
    MESSAGES_IN,
    JsonFormatter,
    bus_check,
    record_lag,
    start_observability,
)
from riverguard.settings import ObservabilitySettings


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def failing() -> None:
    raise ConnectionRefusedError("connection refused by 127.0.0.1:8086")


async def fine() -> None:
    return None


async def test_metrics_endpoint_serves_the_shared_counters() -> None:
    async with await start_observability(ObservabilitySettings(metrics_port=0), service="test") as obs:
        assert obs.port
        MESSAGES_IN.labels(stage="unit-test").inc(3)
        status, body = await http_get(obs.port, "/metrics")
    assert status == 200
    assert 'riverguard_messages_in_total{stage="unit-test"} 3.0' in body
    assert "# TYPE riverguard_processing_seconds histogram" in body


async def test_health_reports_each_check_and_fails_when_one_fails() -> None:
    settings = ObservabilitySettings(metrics_port=0)
    async with await start_observability(settings, {"kafka": fine}, service="sink") as obs:
        assert obs.port
        status, body = await http_get(obs.port, "/health")
        assert status == 200
        assert json.loads(body)["checks"]["kafka"]["status"] == "ok"

        obs.add_check("influxdb", failing)
        status, body = await http_get(obs.port, "/health")
        report = json.loads(body)
        assert status == 503
        assert report["status"] == "error"
        assert report["service"] == "sink"
        assert report["checks"]["kafka"]["status"] == "ok"
        assert report["checks"]["influxdb"] == {
            "status": "error", "error": "connection refused by 127.0.0.1:8086", "ms": report["checks"]["influxdb"]["ms"]
        }
        assert (await http_get(obs.port, "/nope"))[0] == 404


async def test_without_a_port_nothing_is_served_but_checks_run() -> None:
    obs = await start_observability(ObservabilitySettings(), {"kafka": failing})
    assert obs.url is None
    assert (await obs.health())["status"] == "error"
    await obs.close()


async def test_bus_check_and_lag_on_the_memory_bus(memory_bus: MemoryBus) -> None:
    await memory_bus.create_topics([TopicSpec("lag-topic", partitions=2)])
    async with memory_bus.producer() as producer:
        for i in range(7):
            await producer.send_and_wait("lag-topic", b"x", key=str(i).encode())
    async with memory_bus.consumer(["lag-topic"], group_id="lag-group") as consumer:
        await record_lag("lag-stage", consumer)
        assert CONSUMER_LAG.labels(stage="lag-stage", topic="lag-topic")._value.get() == 7
        got = await consumer.getmany(timeout_ms=100, max_records=3)
        assert len(got) == 3
        await record_lag("lag-stage", consumer)
        assert CONSUMER_LAG.labels(stage="lag-stage", topic="lag-topic")._value.get() == 4
    obs = await start_observability(ObservabilitySettings(), {"bus": bus_check(memory_bus, ["lag-topic"])})
    assert (await obs.health())["status"] == "ok"
    missing = await start_observability(ObservabilitySettings(), {"bus": bus_check(memory_bus, ["no-such-topic"])})
    assert "no-such-topic" in json.dumps(await missing.health())


def test_json_logs_carry_the_service_and_extra_fields() -> None:
    record = logging.LogRecord("sink", logging.WARNING, __file__, 1, "held %d points", (5,), None)
    record.fields = {"station": "tuo-sanhuangmiao"}
    line = json.loads(JsonFormatter("sink").format(record))
    assert line["message"] == "held 5 points"
    assert line["service"] == "sink"
    assert line["station"] == "tuo-sanhuangmiao"
    assert line["level"] == "WARNING"


def test_the_http_server_library_loads_only_in_a_service_that_serves() -> None:
    probe = "import sys, riverguard.cli, riverguard.observability; print('aiohttp' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"
