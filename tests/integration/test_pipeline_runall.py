"""``riverguard run all`` as a subprocess against the local stack: MQTT in, Kafka out, /health ok,
SIGTERM → exit 0. Topics, consumer groups, the MQTT session and the MQTT topics are unique per run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest import Simulator
from ingest.publisher import Pace, publish_readings
from riverguard.bus import TopicPartition
from riverguard.bus.kafka import KafkaBus
from riverguard.models import Reading, decode
from riverguard.settings import Settings, load_settings
from riverguard.stations import load_registry
from tests.support.services import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "deploy" / "config" / "riverguard.yaml"
READINGS_PER_STATION = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def environment(unique: str, tmp_path: Path, settings: Settings) -> dict[str, str]:
    require_service("Mosquitto", settings.mqtt.host, settings.mqtt.port)
    host, _, port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
    require_service("Kafka", host, int(port))
    apprise = tmp_path / "apprise.yaml"
    apprise.write_text(f"version: 1\nurls:\n  - rgfile://{tmp_path / 'alerts.jsonl'}:\n      - tag: console\n")
    routing = tmp_path / "routing.yaml"
    routing.write_text("routes:\n  - {name: console, notify: [console]}\n")
    # How to reach the stack (addresses, TLS, credentials) comes from the environment of the test run.
    reach = ("RIVERGUARD_KAFKA__", "RIVERGUARD_MQTT__", "RIVERGUARD_INFLUX__", "RIVERGUARD_CACHE",
             "RIVERGUARD_SECRETS_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_") or k.startswith(reach)}
    topics = {"READINGS": "readings", "DLQ": "dlq", "DETECTIONS": "detections", "INCIDENTS": "incidents",
              "NOTIFICATIONS": "notifications", "DETECTOR_STATE": "state"}
    env.update({f"RIVERGUARD_TOPICS__{key}": f"runall-{unique}.{name}" for key, name in topics.items()})
    env.update({
        "RIVERGUARD_MQTT__CLIENT_ID": f"runall-{unique}",
        "RIVERGUARD_MQTT__TOPIC_FILTER": f"stations/+/+/runall-{unique}",
        "RIVERGUARD_MQTT__TOPIC_PATTERN": f"stations/{{river}}/{{station_id}}/runall-{unique}",
        "RIVERGUARD_ALERTS__APPRISE_CONFIG": str(apprise),
        "RIVERGUARD_ALERTS__ROUTING_FILE": str(routing),
        "RIVERGUARD_ALERTS__HTTP_PORT": "0",
        "RIVERGUARD_OBSERVABILITY__METRICS_PORT": str(_free_port()),
        "RIVERGUARD_OBSERVABILITY__LOG_FORMAT": "text",
    })
    if "RIVERGUARD_MQTT__PASSWORD_FILE" not in env:
        env.setdefault("RIVERGUARD_MQTT__PASSWORD", "bridge-dev-only")
    return env


@pytest.fixture
def run_all(environment: dict[str, str], unique: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "run-all.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "riverguard"), "run", "all", "--config", str(EXAMPLE_CONFIG),
         "--group-prefix", f"runall-{unique}"],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(10)
    log.close()


def _health(port: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_healthy(process: subprocess.Popen[bytes], port: str, log: Path) -> dict[str, object]:
    deadline = time.monotonic() + 60
    report: dict[str, object] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, f"run all exited with {process.returncode}:\n{log.read_text()}"
        try:
            status, report = _health(port)
        except OSError:
            status = 0
        if status == 200:
            return report
        time.sleep(0.5)
    pytest.fail(f"/health not ok within 60 s: {report}\n{log.read_text()}")


async def _readings_in_kafka(settings: Settings, expected: int) -> list[Reading]:
    bus = KafkaBus(settings.kafka)
    topic = settings.topics.readings
    deadline = time.monotonic() + 60
    found: list[Reading] = []
    while time.monotonic() < deadline:
        found = [
            decode(record.value, Reading).payload
            for partition in range(await bus.partitions(topic))
            for record in await bus.read_partition(TopicPartition(topic, partition))
            if record.value is not None
        ]
        if len(found) >= expected:
            break
        await asyncio.sleep(0.5)
    return found


async def test_run_all_bridges_mqtt_to_kafka_reports_health_and_stops_on_sigterm(
    run_all: subprocess.Popen[bytes], environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = environment["RIVERGUARD_OBSERVABILITY__METRICS_PORT"]
    report = await asyncio.to_thread(_wait_healthy, run_all, port, tmp_path / "run-all.log")
    assert report["service"] == "all"
    checks = report["checks"]
    assert isinstance(checks, dict)
    # each consumer stage says whether it joined its group and restored its state
    assert set(checks) == {"kafka", "mqtt", "influxdb", "detect-ready", "alerts-ready", "sink-ready"}

    for key, value in environment.items():
        if key.startswith("RIVERGUARD_"):
            monkeypatch.setenv(key, value)
    settings = load_settings(EXAMPLE_CONFIG)
    registry = load_registry()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    simulator = Simulator(registry, seed=3, start=start, step=timedelta(minutes=5), faults=False)
    sent = list(simulator.readings(until=start + READINGS_PER_STATION * timedelta(minutes=5)))
    stats = await asyncio.to_thread(
        publish_readings, sent, registry, settings.mqtt, username="riverguard-sim", password="sim-dev-only",
        client_id=f"{settings.mqtt.client_id}-sim", pace=Pace(),
    )
    assert stats.published == len(sent) == READINGS_PER_STATION * len(registry.stations)

    received = await _readings_in_kafka(settings, len(sent))
    assert sorted((r.station_id, r.time) for r in received) == sorted((r.station_id, r.time) for r in sent)
    formats = {r.source_format.value for r in received}
    assert formats == {"json", "hj212"}

    status, report = await asyncio.to_thread(_health, port)
    assert status == 200, report
    assert report["status"] == "ok"

    run_all.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(run_all.wait, 90)
    assert code == 0, (tmp_path / "run-all.log").read_text()
    log = (tmp_path / "run-all.log").read_text()
    assert "ingest bridge stopped" in log
