"""Fixtures of the end-to-end tests: an isolated pipeline of real processes (on the shared stack,
or on a private stack the fault tests may restart), the HTTP receiver Apprise posts to, a fresh
InfluxDB database per test, and the service logs printed when a test fails."""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pipeline.harness import Pipeline, PrivateStack, Receiver, close_bridge_session, influx_statement, isolated
from riverguard.settings import Settings
from tests.support.services import require_service

_FAILED = pytest.StashKey[bool]()
#: Port sets (MQTT, Kafka, InfluxDB) tried in turn for the private stack; Kafka's controller and
#: InfluxDB's RPC port are the next ones up, so none of them may be taken either.
PRIVATE_PORTS = ((11883, 19092, 18086), (21883, 29092, 28086), (31883, 39092, 38086), (41883, 49092, 48086),
                 (51883, 59092, 58086))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = bool(getattr(report, "failed", False))
    return report


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


@asynccontextmanager
async def isolated_pipeline(request: pytest.FixtureRequest, base: Settings, unique: str, receiver: Receiver,
                            tmp_path: Path) -> AsyncIterator[Pipeline]:
    """The four services with this test's topics, groups, MQTT session and InfluxDB database (not
    started: the test starts them); stopped afterwards, their logs printed if the test failed."""
    database = f"rg_e2e_{unique}"
    influx_statement(base.influx.url, f'CREATE DATABASE "{database}"')
    config = isolated(base, unique, bucket=database, receiver=receiver, config_dir=tmp_path)
    running = Pipeline(config, tmp_path, unique)
    try:
        await running.prepare()
        yield running
    finally:
        codes = running.stop()
        close_bridge_session(config)
        influx_statement(base.influx.url, f'DROP DATABASE "{database}"')
        if request.node.stash.get(_FAILED, False):
            print(f"\nservice exit codes: {codes}, unplanned exits: {running.crashes()}")
            print(running.logs())


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
    run_dir = tmp_path_factory.mktemp("private-stack")
    with contextlib.ExitStack() as held:
        for mqtt, kafka, influx in PRIVATE_PORTS:
            # One lock file per port set, held while the stack runs: test runs of several
            # checkouts on one machine never pick the same set at the same time.
            lock = held.enter_context((Path(tempfile.gettempdir()) / f"riverguard-private-{mqtt}.lock").open("w"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            stack = PrivateStack(run_dir, mqtt_port=mqtt, kafka_port=kafka, influx_port=influx)
            if not stack.busy_ports():
                break
            fcntl.flock(lock, fcntl.LOCK_UN)
        else:
            pytest.fail(f"no free port set for a private stack among {PRIVATE_PORTS}", pytrace=False)
        try:
            stack.up()
            yield stack
        finally:
            stack.down()


@pytest.fixture
async def private_pipeline(request: pytest.FixtureRequest, settings: Settings, private_stack: PrivateStack,
                           unique: str, receiver: Receiver, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """An isolated pipeline on the private stack; its logs and the stack's on failure."""
    async with isolated_pipeline(request, private_stack.settings(settings), unique, receiver, tmp_path) as running:
        yield running
        if request.node.stash.get(_FAILED, False):
            print(private_stack.logs())
