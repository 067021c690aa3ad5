"""A three-node Kafka cluster of this module alone (``deploy/stack.sh up --cluster`` on ports of
its own: replication 3, min.insync.replicas 2), and isolated pipelines on it whose services run
as their own least-privilege principals (deploy/kafka/acls.txt, InfluxDB's riverguard-sink)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.harness import Pipeline, PrivateStack, Receiver, close_bridge_session, influx_statement, isolated
from riverguard.settings import Settings
from tests.support.identities import identity

_FAILED = pytest.StashKey[bool]()
#: Port sets (MQTT, first Kafka node, InfluxDB) tried in turn; each of the three Kafka nodes
#: takes three ports (client, controller, inter-broker) from the Kafka one up.
CLUSTER_PORTS = ((41883, 49092, 48086), (51883, 59092, 58086))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = bool(getattr(report, "failed", False))
    return report


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    run_dir = tmp_path_factory.mktemp("kafka-cluster")
    for mqtt, kafka, influx in CLUSTER_PORTS:
        stack = PrivateStack(run_dir, mqtt_port=mqtt, kafka_port=kafka, influx_port=influx, owner="clustertest",
                             kafka_nodes=3)
        if not stack.busy_ports():
            break
    else:
        pytest.fail(f"no free port set for the cluster among {CLUSTER_PORTS}", pytrace=False)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
async def cluster_pipeline(request: pytest.FixtureRequest, settings: Settings, cluster: PrivateStack, unique: str,
                           receiver: Receiver, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """The four services on the cluster, each as its own principal, with this test's topics
    (three partitions, three replicas), groups, MQTT session and InfluxDB database."""
    base = cluster.settings(settings)
    database = f"rg_cluster_{unique}"
    influx_statement(base.influx, f'CREATE DATABASE "{database}"')
    influx_statement(base.influx, f'GRANT WRITE ON "{database}" TO "riverguard-sink"')
    config = isolated(base, unique, bucket=database, receiver=receiver, config_dir=tmp_path)
    identities = {name: identity(settings, name) for name in ("ingest", "detect", "alert", "sink")}
    running = Pipeline(config, tmp_path, unique, identities=identities)
    try:
        await running.prepare()  # the topics, created by the admin: the services may not
        yield running
    finally:
        codes = running.stop()
        close_bridge_session(config)
        influx_statement(base.influx, f'DROP DATABASE "{database}"')
        if request.node.stash.get(_FAILED, False):
            print(f"\nservice exit codes: {codes}, unplanned exits: {running.crashes()}")
            print(running.logs())
            print(cluster.logs())
