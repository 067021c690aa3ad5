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
from collections.abc import Collection
from typing import Final

from pipeline.errors import PipelineError, StageError
from pipeline.stages import STAGES, Service, service
from riverguard.bus import Bus, topic_specs
from riverguard.bus.kafka import KafkaBus
from riverguard.observability import HealthCheck, start_observability
from riverguard.settings import Settings
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

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
    services: list[Service] = [
        service(name, settings, registry, the_bus, group_id=f"{group_prefix}-{name}")
        for name in STAGES if name not in skip
    ]
    checks: dict[str, HealthCheck] = {}
    for each in services:
        checks.update(each.checks)
    try:
        async with await start_observability(settings, checks, service="all"):
            log.info("running %s in one process", ", ".join(s.name for s in services))
            await _supervise({s.name: asyncio.create_task(s.run(stop), name=s.name) for s in services}, stop)
    finally:
        for each in services:
            if each.close is not None:
                each.close()
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
