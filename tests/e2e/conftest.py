"""Fixtures of the end-to-end tests: an isolated pipeline of real processes (on the shared stack,
or on a private stack the fault tests may restart), the HTTP receiver Apprise posts to, a fresh
InfluxDB database per test, and the service logs printed when a test fails."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.harness import Pipeline, PrivateStack, Receiver
from pipeline.harness import private_stack as harness_private_stack
from riverguard.settings import Settings
from tests.support.pipelines import isolated_pipeline
from tests.support.services import call_failed, require_service


def require_stack(settings: Settings) -> None:
    require_service("Mosquitto", settings.mqtt.host, settings.mqtt.port)
    host, _, port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
    require_service("Kafka", host, int(port))
    influx = urllib.parse.urlsplit(settings.influx.url)
    require_service("InfluxDB", influx.hostname or "127.0.0.1", influx.port or 8086)


@pytest.fixture
async def pipeline(request: pytest.FixtureRequest, settings: Settings, unique: str, receiver: Receiver,
                   tmp_path: Path) -> AsyncIterator[Pipeline]:
    """An isolated pipeline on the shared stack (127.0.0.1:1883/9092/8086 unless configured)."""
    require_stack(settings)
    async with isolated_pipeline(request, settings, unique, receiver, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    """Mosquitto, Kafka and InfluxDB of this module alone (deploy/stack.sh on other ports, own
    runtime dir): restarting them cannot disturb the shared stack. Brought down at the end."""
    with harness_private_stack(tmp_path_factory.mktemp("private-stack")) as stack:
        yield stack


@pytest.fixture
async def private_pipeline(request: pytest.FixtureRequest, settings: Settings, private_stack: PrivateStack,
                           unique: str, receiver: Receiver, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """An isolated pipeline on the private stack; its logs and the stack's on failure."""
    async with isolated_pipeline(request, private_stack.settings(settings), unique, receiver, tmp_path) as running:
        yield running
        if call_failed(request):
            print(private_stack.logs())
