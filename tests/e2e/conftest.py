"""Fixtures of the end-to-end tests: an isolated pipeline of real processes on the shared stack,
the HTTP receiver Apprise posts to, a fresh InfluxDB database, and the service logs printed when a
test fails."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from riverguard.settings import Settings
from tests.conftest import require_service
from tests.e2e.harness import Pipeline, Receiver, close_bridge_session, influx_statement, isolated


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = bool(getattr(report, "failed", False))
    return report


_FAILED = pytest.StashKey[bool]()


def require_stack(settings: Settings) -> None:
    require_service("Mosquitto", settings.mqtt.host, settings.mqtt.port)
    host, _, port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
    require_service("Kafka", host, int(port))
    influx = urllib.parse.urlsplit(settings.influx.url)
    require_service("InfluxDB", influx.hostname or "127.0.0.1", influx.port or 8086)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def database(settings: Settings, unique: str) -> Iterator[str]:
    require_stack(settings)
    name = f"rg_e2e_{unique}"
    influx_statement(settings.influx.url, f'CREATE DATABASE "{name}"')
    yield name
    influx_statement(settings.influx.url, f'DROP DATABASE "{name}"')


@pytest.fixture
async def pipeline(
    request: pytest.FixtureRequest, settings: Settings, unique: str, database: str, receiver: Receiver,
    tmp_path: Path,
) -> AsyncIterator[Pipeline]:
    """The four services on the shared stack with this test's topics, groups, session and database
    (not started: the test starts them); stopped afterwards, their logs printed if the test failed."""
    config = isolated(settings, unique, bucket=database, receiver=receiver, config_dir=tmp_path)
    running = Pipeline(config, tmp_path, unique)
    await running.prepare()
    yield running
    codes = running.stop()
    close_bridge_session(config)
    if request.node.stash.get(_FAILED, False):
        print(f"\nservice exit codes: {codes}, unplanned exits: {running.crashes()}")
        print(running.logs())
