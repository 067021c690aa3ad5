"""The pipeline on a three-node Kafka cluster (replication 3, min.insync.replicas 2), every
service as its own least-privilege principal over SASL/SCRAM and TLS.

- A broker SIGKILLed mid-stream and started again later: the cluster keeps taking acks=all writes
  with two of three replicas, the clients move to the new leaders, and afterwards every published
  reading is in Kafka exactly once and in InfluxDB exactly once, and each notification was
  delivered exactly once.
- Two detect and two alert processes in their groups: a second member joins mid-stream, then the
  first leaves. The stations move with their detector state (restored from the changelog), so
  the detections are exactly those of one detector that saw the whole stream without a
  rebalance, each once; each notification is delivered once.

Cost: ~35 s for the cluster (three JVMs, -Xmx384m each) once per module, then ~70-90 s per test
on the 2-core machine.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from typing import Final

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from detectors import DetectorStack
from pipeline.harness import Pipeline, PrivateStack, Receiver, read_topic
from riverguard.bus.kafka import KafkaBus, connection_options
from riverguard.models import Detection, Reading, decode
from riverguard.settings import Settings
from tests.support.faults import (
    REGISTRY,
    STATIONS,
    SpillStream,
    drained,
    notifications_exactly_once,
    publish_with,
    readings_in_kafka,
    stored_exactly_once,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

STREAM: Final = SpillStream(
    stations=STATIONS,
    spills=(  # (spec, station, pollutant): at about 10 s, 20 s and 30 s into the stream
        ("tuo:tuo-hongyuan:TP:+4h:1h:8", "tuo-hongyuan", "TP"),
        ("min:min-pengshan:NH3N:+8h:1h:8", "min-pengshan", "NH3N"),
        ("jialing:jialing-bamiaogou:NH3N:+12h:1h:10", "jialing-bamiaogou", "NH3N"),
    ),
    steps=900,  # one a minute: 15 simulated hours, ~36 s of wall time at 150 messages/s
    seed=5,
)


async def test_a_broker_killed_mid_stream_loses_and_doubles_nothing(
    cluster_pipeline: Pipeline, cluster: PrivateStack, receiver: Receiver
) -> None:
    p = cluster_pipeline
    p.start(supervise=True)
    victim = await busiest_leader(p.settings)
    readings = await publish_with(p, STREAM, [
        (10.0, f"SIGKILL {victim}", lambda: cluster.kill(victim)),
        (24.0, f"start {victim} again", cluster.up),
    ])
    await drained(p, readings)
    assert await readings_in_kafka(p) == Counter((r.station_id, r.time) for r in readings), (
        "Kafka must hold each reading exactly once")
    await stored_exactly_once(p, readings)
    await notifications_exactly_once(p, receiver, STREAM.spills)
    assert not p.crashes(), f"a service exited during the failover (restarted by the supervisor): {p.crashes()}"


async def busiest_leader(settings: Settings) -> str:
    """The node that leads most partitions of the readings topic: killing it moves most of them."""
    admin = AIOKafkaAdminClient(**connection_options(settings.kafka))
    await admin.start()
    try:
        [topic] = await admin.describe_topics([settings.topics.readings])
    finally:
        await admin.close()
    leaders = Counter(partition["leader"] for partition in topic["partitions"])
    return f"kafka-{leaders.most_common(1)[0][0]}"


def reference_detections(readings: list[Reading]) -> Counter[str]:
    """The detections of one detector stack that sees the whole stream without a rebalance."""
    stack = DetectorStack(registry=REGISTRY)
    return Counter(d.detection_id for r in readings for d in stack.process(r))


async def test_a_rebalance_moves_stations_with_their_state_and_nothing_is_doubled(
    cluster_pipeline: Pipeline, receiver: Receiver
) -> None:
    p = cluster_pipeline
    p.start()
    detect_2, alert_2 = p.add_member("detect"), p.add_member("alert")
    readings = await publish_with(p, STREAM, [
        (8.0, f"{detect_2} and {alert_2} join their groups", lambda: p.start(detect_2, alert_2)),
        (20.0, "the first detect and alert processes leave (SIGTERM)",
         lambda: (p.services["detect"].stop(signal.SIGTERM), p.services["alert"].stop(signal.SIGTERM))),
    ])
    await drained(p, readings)

    restored = [int(n) for n in re.findall(r"restored (\d+) station states", p.services[detect_2].log.read_text())]
    assert any(n > 0 for n in restored), f"{detect_2} took over no station with its state: {restored}"
    detections = Counter(decode(r.value or b"", Detection).payload.detection_id
                         for r in await read_topic(KafkaBus(p.settings.kafka), p.settings.topics.detections))
    assert not {d: n for d, n in detections.items() if n > 1}, "a detection was emitted twice"
    expected = reference_detections(readings)
    assert detections == expected, (f"missing: {sorted(expected - detections)[:5]}, "
                                    f"unexpected: {sorted(detections - expected)[:5]}")
    await notifications_exactly_once(p, receiver, STREAM.spills)
