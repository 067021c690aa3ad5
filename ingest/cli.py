"""Commands of the ingest package: ``riverguard run ingest``, ``riverguard parse``, ``riverguard simulate``."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

from ingest.hj212 import iter_frames
from ingest.routing import Message, Router
from riverguard.errors import ConfigError, RiverguardError
from riverguard.settings import Settings, load_settings
from riverguard.stations import StationRegistry, load_registry

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (else RIVERGUARD_CONFIG).")
]
StationsOption = Annotated[
    Path | None, typer.Option("--stations", help="Station registry YAML (else settings.stations_file, else built-in).")
]


def register(app: typer.Typer, run_app: typer.Typer) -> None:
    run_app.command("ingest")(run_ingest)
    app.command("parse")(parse)


def load(config: Path | None, stations: Path | None = None) -> tuple[Settings, StationRegistry]:
    """Settings and registry, or exit 2 with the problem named."""
    try:
        settings = load_settings(config)
        return settings, load_registry(stations or settings.stations_file)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def run_ingest(config: ConfigOption = None) -> None:
    """MQTT → Kafka bridge: station payloads to telemetry.readings, rejects to telemetry.dlq."""
    from prometheus_client import start_http_server

    from ingest.bridge import Bridge
    from riverguard.bus.kafka import KafkaBus
    from riverguard.observability import setup_logging

    settings, registry = load(config)
    setup_logging(settings.observability)
    if settings.observability.metrics_port is not None:
        start_http_server(settings.observability.metrics_port, addr=settings.observability.metrics_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Bridge(settings, registry, KafkaBus(settings.kafka)).run(stop)

    try:
        asyncio.run(main())
    except RiverguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def parse(
    file: Annotated[Path, typer.Argument(help="Payloads: JSON one per line, or concatenated HJ 212 frames.")],
    payload_format: Annotated[Literal["json", "hj212"], typer.Option("--format", help="Payload format.")] = "json",
    stations: StationsOption = None,
    config: ConfigOption = None,
) -> None:
    """Decode payloads to canonical readings (JSON lines on stdout); rejects on stderr, exit 2 if any."""
    _, registry = load(config, stations)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    if payload_format == "json":
        chunks = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
        where = "line"
    else:
        chunks = list(enumerate(iter_frames(data), 1))
        where = "frame"
    router = Router[int](registry, readings_topic="-", dlq_topic="-")
    now = datetime.now(UTC)
    outcomes = [o for n, chunk in chunks for o in router.decode(Message("", chunk, now, n))]
    outcomes += router.expire_decoded(now + timedelta(days=3650))  # the file is all there is
    rejected = 0
    for outcome in outcomes:
        for reading in outcome.readings:
            typer.echo(reading.model_dump_json())
        if outcome.error is not None:
            rejected += 1
            numbers = ",".join(str(m.token) for m in outcome.messages)
            typer.echo(f"{file}: {where} {numbers}: {outcome.error}", err=True)
    if rejected:
        raise typer.Exit(2)
