"""A three-node Kafka cluster of this module alone (``deploy/stack.sh up --cluster`` on ports of
its own: replication 3, min.insync.replicas 2), and isolated pipelines on it whose services run
as their own least-privilege principals (deploy/kafka/acls.txt, InfluxDB's riverguard-sink)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.harness import Pipeline, PrivateStack, Receiver, private_stack
from riverguard.settings import Settings
from tests.support.identities import identity
from tests.support.pipelines import isolated_pipeline
from tests.support.services import call_failed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    with private_stack(tmp_path_factory.mktemp("kafka-cluster"), owner="clustertest", kafka_nodes=3) as stack:
        yield stack


@pytest.fixture
async def cluster_pipeline(request: pytest.FixtureRequest, settings: Settings, cluster: PrivateStack, unique: str,
                           receiver: Receiver, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """The four services on the cluster, each as its own principal, with this test's topics
    (three partitions, three replicas), groups, MQTT session and InfluxDB database."""
    identities = {name: identity(settings, name) for name in ("ingest", "detect", "alert", "sink")}
    async with isolated_pipeline(request, cluster.settings(settings), unique, receiver, tmp_path,
                                 identities=identities) as running:
        yield running
        if call_failed(request):
            print(cluster.logs())
