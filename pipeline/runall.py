"""``riverguard run all``: every service in one process against the real stack.

For a single-machine deployment. Each stage is the same class its own ``riverguard run <stage>``
command runs, and each is still its own consumer group (ingest has its own MQTT session), so
moving one stage to another machine later is starting it there and leaving it out here
(``--skip``). One /metrics + /health endpoint serves the whole process, with checks for Kafka,
MQTT and InfluxDB. A stage that fails stops the others; SIGINT/SIGTERM stop all of them gracefully
(each finishes its batch, commits what is durable and leaves its group).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from typing import Any, Final

from alerts import AlertService, RiverPlaybooks
from detectors import DetectorStack
from detectors.service import DetectorService
from ingest.bridge import Bridge, mqtt_check
from pipeline.errors import PipelineError, StageError
from riverguard.bus import Bus, topic_specs
from riverguard.bus.kafka import KafkaBus
from riverguard.observability import HealthCheck, bus_check, start_observability
from riverguard.settings import Settings
from riverguard.sink import InfluxWriter, Sink
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

STAGES: Final = ("ingest", "detect", "alerts", "sink")
#: How long stages get to finish their batch and leave their groups after a stop signal.
SHUTDOWN_TIMEOUT_S: Final = 60.0


async def run_all(
    settings: Settings,
    registry: StationRegistry,
    stop: asyncio.Event,
    *,
    skip: Collection[str] = (),
    group_prefix: str = "riverguard",
    bus: Bus | None = None,
) -> None:
    """Run the stages not in ``skip`` until ``stop`` is set; StageError when one of them fails."""
    unknown = set(skip) - set(STAGES)
    if unknown:
        raise PipelineError(f"unknown stage(s) to skip: {', '.join(sorted(unknown))} (stages: {', '.join(STAGES)})")
    the_bus: Bus = bus if bus is not None else KafkaBus(settings.kafka)
    await the_bus.create_topics(topic_specs(settings))
    topics = settings.topics
    checks: dict[str, HealthCheck] = {"kafka": bus_check(the_bus, [topics.readings, topics.detections])}
    stages: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
    writer: InfluxWriter | None = None
    if "ingest" not in skip:
        bridge = Bridge(settings, registry, the_bus, create_topics=False)
        checks["mqtt"] = mqtt_check(bridge)
        stages["ingest"] = lambda: bridge.run(stop)
    if "detect" not in skip:
        detect = DetectorService(settings, the_bus, DetectorStack(registry=registry), group_id=f"{group_prefix}-detect")
        stages["detect"] = lambda: detect.run(stop)
    if "alerts" not in skip:
        alerts = AlertService.from_settings(
            settings, the_bus, playbooks=RiverPlaybooks.from_settings(settings), group_id=f"{group_prefix}-alerts"
        )
        stages["alerts"] = lambda: alerts.run(stop)
    if "sink" not in skip:
        writer = InfluxWriter(settings.influx)
        checks["influxdb"] = writer.ping
        sink = Sink(settings, the_bus, writer, group_id=f"{group_prefix}-sink")
        stages["sink"] = lambda: sink.run(stop)
    try:
        async with await start_observability(settings, checks, service="all"):
            log.info("running %s in one process", ", ".join(stages))
            await _supervise({name: asyncio.create_task(start(), name=name) for name, start in stages.items()}, stop)
    finally:
        if writer is not None:
            writer.close()
        if bus is None:
            await the_bus.close()


async def _supervise(tasks: dict[str, asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for the stop signal or the first stage to end; then stop and collect all of them."""
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    early = [name for name, task in tasks.items() if task.done()] if not stop.is_set() else []
    if early:
        log.error("stage %s ended; stopping the others", ", ".join(early))
    stop.set()
    stopped.cancel()
    done, pending = await asyncio.wait(tasks.values(), timeout=SHUTDOWN_TIMEOUT_S)
    for task in pending:
        log.error("stage %s did not stop within %g s; cancelling it", task.get_name(), SHUTDOWN_TIMEOUT_S)
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for name, task in tasks.items():
        if task in done and not task.cancelled() and (error := task.exception()) is not None:
            raise StageError(name, error) from error
    if pending:
        raise PipelineError(f"stage(s) {', '.join(t.get_name() for t in pending)} had to be cancelled")
    if early:
        raise PipelineError(f"stage(s) {', '.join(early)} ended without being asked to")
