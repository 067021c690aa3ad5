"""Issue 16 on the real stack: a small bureau's one duty target gets every route, instrument faults
storm in, and a Tuo NH3N spill turns red — the red page must still come at once.

``riverguard simulate`` (all 20 stations, faults on, the spill of the issue at 宏缘 after 40 h)
→ Mosquitto → ``run ingest`` → Kafka → ``run detect`` → ``run alert`` → one Apprise ``json://``
target tagged for pollution *and* maintenance, with a tight rate limit (2 at once, one more every
30 s) so the storm — five or more stations' instrument incidents within the minute the simulated
44 hours take — is held back, and summarised when the bucket refills. The simulator runs at
3,000× (as in the issue): 44 simulated hours in under a minute of wall time.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest

from alerts.grouping import incident_id_for
from pipeline.harness import RIVERGUARD, KafkaProbe, Pipeline, Receiver, dev_password, read_topic, settings_env
from riverguard.bus.kafka import KafkaBus
from riverguard.incidents import NotificationReason, NotificationRecord, Route, WarningLevel
from riverguard.models import Detection, decode
from riverguard.settings import Settings
from riverguard.stations import load_registry
from tests.support.e2e import equals, latest_incidents, until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

# Issue 16's spill, four times as strong: the water is read 3,000× faster than the alert service's
# clock runs, so the hours until 简阳 cannot shrink to the red threshold within the test; at 40 ×
# the typical value the concentration alone (超标 ≥ 10 倍) makes it red.
SPILL: Final = "tuo:tuo-hongyuan:NH3N:+40h:2h:40"
HOURS: Final = 44
SPEEDUP: Final = 3000.0
STEP_S: Final = 300  # a station's reading every five minutes: 20 stations, ~200 messages a second
REGISTRY: Final = load_registry()
ROUTING: Final = """\
routes:
  - {name: duty, match: {route: pollution}, notify: [duty]}
  - {name: ops, match: {route: maintenance}, notify: [ops]}
escalation: {stages: [], reminder_every_min: null}
rate_limits:
  default: {burst: 2, per_hour: 120}
retry: {base_s: 1, max_s: 5, max_attempts: 20}
"""


def one_target_for_everything(settings: Settings, receiver: Receiver) -> None:
    assert settings.alerts.apprise_config is not None
    assert settings.alerts.routing_file is not None
    settings.alerts.apprise_config.write_text(
        f"version: 1\nurls:\n  - {receiver.url('desk')}:\n      - tag: duty, ops\n", encoding="utf-8")
    settings.alerts.routing_file.write_text(ROUTING, encoding="utf-8")


def simulate(settings: Settings, start: datetime) -> subprocess.CompletedProcess[str]:
    """Every reading of the 44 hours, paced at 3,000× when the machine keeps up (a count, not a
    duration: on a busy machine the publisher falls behind, and the spill must still come)."""
    count = len(REGISTRY.stations) * HOURS * 3600 // STEP_S
    args = [str(RIVERGUARD), "simulate", "--seed", "16", "--start", start.isoformat(), "--speedup", str(SPEEDUP),
            "--step", str(STEP_S), "--count", str(count), "--spill", SPILL, "--faults",
            "--password", dev_password("riverguard-sim")]
    return subprocess.run(args, env=settings_env(settings), capture_output=True, text=True, timeout=240, check=False)


async def test_the_red_spill_pages_the_single_target_within_a_minute_and_no_summary_buries_pollution(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    settings = pipeline.settings
    one_target_for_everything(settings, receiver)
    bus = KafkaBus(settings.kafka)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=HOURS)
    pipeline.start()
    published = await asyncio.to_thread(simulate, settings, start)
    assert published.returncode == 0, published.stderr

    topics = settings.topics
    async with KafkaProbe(settings) as kafka:
        await until(lambda: equals(kafka.lag(pipeline.groups["detect"], topics.readings), 0), "the detectors")
        await until(lambda: equals(kafka.lag(pipeline.groups["alert"], topics.detections), 0), "the alert stage")
    incidents = await latest_incidents(bus, settings)
    red = [i for i in incidents if i.route is Route.POLLUTION and i.river == "tuo" and i.pollutant == "NH3N"
           and i.level is WarningLevel.RED]
    assert red, [(i.incident_id, i.pollutant, i.level.value) for i in incidents if i.route is Route.POLLUTION]
    incident = red[0]
    maintenance = [i for i in incidents if i.route is Route.MAINTENANCE]
    assert len(maintenance) >= 5, "the storm of instrument faults did not happen"

    # the red incident's first page reached the one target within a minute of its detection
    detections = [(rec.timestamp_ms / 1000, decode(rec.value or b"", Detection).payload)
                  for rec in await read_topic(bus, topics.detections)]
    detected = min(at for at, d in detections if incident_id_for(d.event_id) == incident.incident_id)
    await until(lambda: [d for d in receiver.to("desk") if incident.incident_id in d.title], "the red page")
    first = min((d for d in receiver.to("desk") if incident.incident_id in d.title), key=lambda d: d.at)
    page = first.at
    # the readings are hours behind the wall clock (a replay at 3,000×): the page says which and how late
    assert "处理时已晚到" in first.body
    print(f"\n{incident.incident_id}: detected {detected:.1f}, paged {page - detected:.1f} s later; "
          f"{len(maintenance)} maintenance incidents, {len(receiver.to('desk'))} messages to the desk")
    assert page - detected < 60

    # none of its notifications was held back, and no summary speaks for a pollution incident
    async def settled() -> bool:
        latest = {i.incident_id: i for i in await latest_incidents(bus, settings)}[incident.incident_id]
        return all(e.status.value != "pending" for e in latest.outbox)

    await until(settled, "the red incident's sends to settle", 30)

    async def notification_records() -> list[NotificationRecord]:
        return [decode(rec.value or b"", NotificationRecord).payload
                for rec in await read_topic(bus, topics.notifications)]

    async def summarised() -> bool:
        return any(r.reason is NotificationReason.SUMMARY for r in await notification_records())

    await until(summarised, "a summary of what the rate limit held back (the next token: 30 s)", 90)
    records = await notification_records()
    mine = [r for r in records if r.incident_id == incident.incident_id]
    assert mine
    assert {r.outcome.value for r in mine} <= {"sent", "failed"}
    assert {r.reason for r in mine} >= {NotificationReason.OPENED}
    summaries = [r for r in records if r.reason is NotificationReason.SUMMARY]
    assert summaries, "the rate limit never held anything back: no storm"
    pollution = {i.incident_id for i in incidents if i.route is Route.POLLUTION}
    assert all(r.route is Route.MAINTENANCE and not pollution & set(r.covers) for r in summaries)
    titles = [d.title for d in receiver.to("desk") if "限流汇总" in d.title]
    assert titles
    assert all(t.startswith("【限流汇总·运维】") for t in titles)
