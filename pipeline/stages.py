"""The one place where stages are built: settings + station registry + bus → a runnable stage.

``riverguard run <stage>``, ``riverguard run all``, the embedded demo, the benchmarks and the
tests all build their stages here, so a stage is wired the same way wherever it runs. A
:class:`Service` is what a process runs: a coroutine until ``stop`` is set, plus the health
checks of what it depends on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from riverguard.bus.base import Bus
from riverguard.observability import HealthCheck, bus_check
from riverguard.settings import Settings
from riverguard.stage import Observer, StageRuntime
from riverguard.stations import StationRegistry

if TYPE_CHECKING:
    from alerts.playbook_source import PlaybookSource
    from alerts.service import AlertService, Clock
    from ingest.bridge import Bridge
    from sink.influx import InfluxWriter

#: The stages ``riverguard run`` knows, in pipeline order.
STAGES: Final = ("ingest", "detect", "alerts", "sink")
#: Consumer groups when none is given: ``<prefix>-<stage>``.
DEFAULT_PREFIX: Final = "riverguard"


@dataclass
class Service:
    """A stage ready to run in a process: ``run(stop)`` and its health checks."""

    name: str
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    #: Called after ``run`` returned or failed (e.g. closing an InfluxDB client).
    close: Callable[[], None] | None = None


def detect_stage(
    settings: Settings,
    registry: StationRegistry,
    bus: Bus,
    *,
    group_id: str = f"{DEFAULT_PREFIX}-detect",
    checkpoint_readings: int = 1000,
    checkpoint_seconds: float = 30.0,
    observers: Sequence[Observer] = (),
) -> StageRuntime:
    from detectors.service import DetectProcessor, detect_config
    from detectors.stack import DetectorStack

    processor = DetectProcessor(settings, DetectorStack(registry=registry), checkpoint_readings=checkpoint_readings)
    return StageRuntime(bus, processor, detect_config(group_id, checkpoint_seconds=checkpoint_seconds),
                        observers=observers)


def alert_stage(
    settings: Settings,
    registry: StationRegistry,
    bus: Bus,
    *,
    group_id: str = f"{DEFAULT_PREFIX}-alerts",
    playbooks: PlaybookSource | None = None,
    clock: Clock | None = None,
    tick_s: float = 0.5,
    serve_api: bool = True,
    observers: Sequence[Observer] = (),
) -> tuple[StageRuntime, AlertService]:
    """The alert stage and its processor (the incident book, the API's service object); with
    ``console.users_file`` set, the API serves the duty-officer console too."""
    from alerts.playbook_source import RiverPlaybooks
    from alerts.service import AlertService, alert_config, system_clock

    source = playbooks if playbooks is not None else RiverPlaybooks.from_settings(settings)
    service = AlertService.from_settings(settings, registry, playbooks=source, clock=clock or system_clock,
                                         serve_api=serve_api)
    if serve_api and settings.console.users_file is not None:
        from console import Console

        networks = source.networks if isinstance(source, RiverPlaybooks) else {}
        console = Console.from_settings(service, settings, registry, networks, influx=settings.influx)
        service.console = console.application
    return StageRuntime(bus, service, alert_config(group_id, tick_s=tick_s), observers=observers), service


def sink_stage(
    settings: Settings,
    bus: Bus,
    writer: InfluxWriter,
    *,
    group_id: str = f"{DEFAULT_PREFIX}-sink",
    observers: Sequence[Observer] = (),
) -> StageRuntime:
    from sink.service import SinkProcessor, sink_config

    return StageRuntime(bus, SinkProcessor(settings, writer), sink_config(settings, group_id), observers=observers)


def ingest_bridge(settings: Settings, registry: StationRegistry, bus: Bus, *, create_topics: bool = True) -> Bridge:
    from ingest.bridge import Bridge

    return Bridge(settings, registry, bus, create_topics=create_topics)


def service(
    name: str,
    settings: Settings,
    registry: StationRegistry,
    bus: Bus,
    *,
    group_id: str | None = None,
    options: Mapping[str, float] | None = None,
) -> Service:
    """The service ``riverguard run <name>`` runs (``name`` one of :data:`STAGES`)."""
    topics = settings.topics
    group = group_id or f"{DEFAULT_PREFIX}-{name}"
    extra = dict(options or {})
    if name == "ingest":
        from ingest.bridge import mqtt_check

        bridge = ingest_bridge(settings, registry, bus)
        return Service(name, bridge.run, {"kafka": bus_check(bus, [topics.readings]), "mqtt": mqtt_check(bridge)})
    if name == "detect":
        stage = detect_stage(settings, registry, bus, group_id=group,
                             checkpoint_readings=int(extra.get("checkpoint_readings", 1000)),
                             checkpoint_seconds=extra.get("checkpoint_seconds", 30.0))
        return Service(name, stage.run, {"kafka": bus_check(bus, [topics.readings, topics.detector_state]),
                                         f"{name}-ready": stage.readiness})
    if name == "alerts":
        stage, _ = alert_stage(settings, registry, bus, group_id=group)
        return Service(name, stage.run,
                       {"kafka": bus_check(bus, [topics.detections, topics.command_results, topics.incidents,
                                                   topics.silences]), f"{name}-ready": stage.readiness})
    if name == "sink":
        from sink.influx import InfluxWriter
        from sink.service import sink_topics

        writer = InfluxWriter(settings.influx)
        stage = sink_stage(settings, bus, writer, group_id=group)
        return Service(name, stage.run, {"kafka": bus_check(bus, sink_topics(topics)), "influxdb": writer.ping,
                                         f"{name}-ready": stage.readiness}, close=writer.close)
    if name == "hj212-gateway":
        from ingest.gateway import Gateway, gateway_secrets

        gateway = Gateway(settings, registry, gateway_secrets(settings, registry), bus)
        return Service(name, gateway.run, {"kafka": bus_check(bus, [topics.readings])})
    raise ValueError(f"unknown stage {name!r} (stages: {', '.join(STAGES)}, hj212-gateway)")
