"""Faults during a stream, on a private stack (restarting its brokers disturbs nobody else).

A feed of six stations (JSON and HJ 212) publishes at a steady rate with four spills on three
rivers, while the test restarts things on a schedule: each riverguard service, then Mosquitto
and Kafka. Afterwards:

- every published reading is in Kafka **at least once**: a crash of the bridge, a broker restart
  or a station resending an unacknowledged message may leave a redelivered copy (same station
  and time, as the ingest tests document); the detectors skip such repeats;
- every reading is in InfluxDB **exactly once**: points are keyed by series + time, so a
  redelivered reading overwrites itself (the sink's idempotence by design);
- no notification was duplicated or lost: every outbox entry of every incident is ``sent``, the
  HTTP receiver got each exactly once, and every spill has its incident.

Services run under a supervisor (as under systemd ``Restart=always``): one that exits by itself,
for instance because Kafka went away for longer than it waits, is started again and the exit is
printed. The bridge, detectors and sink are SIGKILLed (a crash); the alert service is stopped with
SIGTERM, because its documented at-least-once window (Apprise accepted a message, the "sent"
record not yet acknowledged by Kafka) would make a SIGKILL at that instant resend one message.
Mosquitto is restarted gracefully: its persistence is saved on shutdown and every 30 s, so a
SIGKILL of the broker itself can lose what it acknowledged since (broker configuration, not ours).
"""

from __future__ import annotations

import signal
from collections import Counter
from typing import Final

import pytest

from pipeline.harness import Pipeline, PrivateStack, Receiver
from riverguard.models import Reading
from tests.support.faults import (
    STATIONS,
    SpillStream,
    Step,
    drained,
    notifications_exactly_once,
    publish_with,
    readings_in_kafka,
    stored_exactly_once,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

STREAM: Final = SpillStream(
    stations=STATIONS,
    spills=(  # (spec, station, pollutant): at about 10 s, 22 s, 34 s and 50 s into the stream
        ("tuo:tuo-hongyuan:TP:+4h:1h:8", "tuo-hongyuan", "TP"),
        ("min:min-pengshan:NH3N:+9h:1h:8", "min-pengshan", "NH3N"),
        ("jialing:jialing-bamiaogou:NH3N:+14h:1h:10", "jialing-bamiaogou", "NH3N"),
        ("tuo:tuo-sanhuangmiao:NH3N:+21h:1h:8", "tuo-sanhuangmiao", "NH3N"),
    ),
    steps=1500,  # one a minute: 25 simulated hours, ~60 s of wall time at 150 messages/s
    seed=11,
)


async def run_with_faults(pipeline: Pipeline, faults: list[Step]) -> list[Reading]:
    """Publish the stream while ``faults`` happen at their offsets (seconds after its start)."""
    pipeline.start(supervise=True)
    return await publish_with(pipeline, STREAM, faults)


async def check_nothing_lost_or_doubled(pipeline: Pipeline, receiver: Receiver, readings: list[Reading]) -> None:
    await drained(pipeline, readings)
    expected = Counter((r.station_id, r.time) for r in readings)
    in_kafka = await readings_in_kafka(pipeline)
    assert set(in_kafka) == set(expected), "a reading is missing from Kafka, or one came from nowhere"
    print(f"Kafka: {sum(in_kafka.values())} records for {len(expected)} readings "
          f"({sum(in_kafka.values()) - len(expected)} redelivered copies)")
    await stored_exactly_once(pipeline, readings)
    await notifications_exactly_once(pipeline, receiver, STREAM.spills)


async def test_crashing_and_restarting_each_service_mid_stream_loses_and_doubles_nothing(
    private_pipeline: Pipeline, receiver: Receiver
) -> None:
    p = private_pipeline
    readings = await run_with_faults(p, [
        (6.0, "SIGKILL ingest, start it again", lambda: p.restart("ingest", signal.SIGKILL)),
        (14.0, "SIGKILL detect, start it again", lambda: p.restart("detect", signal.SIGKILL)),
        (24.0, "restart alert (SIGTERM)", lambda: p.restart("alert", signal.SIGTERM)),
        (32.0, "SIGKILL sink, start it again", lambda: p.restart("sink", signal.SIGKILL)),
        (40.0, "SIGKILL detect and ingest together", lambda: (p.restart("detect", signal.SIGKILL),
                                                             p.restart("ingest", signal.SIGKILL))),
        (52.0, "restart alert (SIGTERM) again", lambda: p.restart("alert", signal.SIGTERM)),
    ])
    await check_nothing_lost_or_doubled(p, receiver, readings)


async def test_restarting_mosquitto_and_kafka_mid_stream_loses_and_doubles_nothing(
    private_pipeline: Pipeline, private_stack: PrivateStack, receiver: Receiver
) -> None:
    readings = await run_with_faults(private_pipeline, [
        (8.0, "restart Mosquitto", lambda: private_stack.restart("mosquitto")),
        (20.0, "restart Kafka", lambda: private_stack.restart("kafka")),
        (38.0, "SIGKILL Kafka, start it again", lambda: private_stack.crash("kafka")),
    ])
    await check_nothing_lost_or_doubled(private_pipeline, receiver, readings)
