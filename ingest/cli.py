"""Commands of the ingest package: ``riverguard parse`` and ``riverguard simulate``."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from ingest.hj212 import iter_frames
from ingest.routing import Message, Router
from riverguard.cli import ConfigOption, settings_and_registry_or_exit
from riverguard.errors import ConfigError, RiverguardError

if TYPE_CHECKING:
    from ingest.publisher import Pace
    from riverguard.models import Reading
    from riverguard.settings import Settings
    from riverguard.stations import StationRegistry

StationsOption = Annotated[
    Path | None, typer.Option("--stations", help="Station registry YAML (else settings.stations_file, else built-in).")
]


def register(app: typer.Typer) -> None:
    app.command("parse")(parse)
    app.command("simulate")(simulate)


def parse(
    file: Annotated[Path, typer.Argument(help="Payloads: JSON one per line, or concatenated HJ 212 frames.")],
    payload_format: Annotated[Literal["json", "hj212"], typer.Option("--format", help="Payload format.")] = "json",
    stations: StationsOption = None,
    config: ConfigOption = None,
) -> None:
    """Decode payloads to canonical readings (JSON lines on stdout); rejects on stderr, exit 2 if any."""
    _, registry = settings_and_registry_or_exit(config, stations)
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


def simulate(
    config: ConfigOption = None,
    stations: StationsOption = None,
    station: Annotated[list[str] | None, typer.Option("--station", help="Only these station ids (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same telemetry.")] = 0,
    start: Annotated[str | None, typer.Option(help="Simulated start time (ISO, with zone); default now.")] = None,
    step_s: Annotated[float, typer.Option("--step", help="Seconds of simulated time between readings.")] = 60.0,
    rate: Annotated[float | None, typer.Option(help="Messages per second (load generator); beats --speedup.")] = None,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall-clock second.")] = 60.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many wall-clock seconds.")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
    spill: Annotated[
        list[str] | None,
        typer.Option(help="Inject a spill: river:station|km:pollutant:start:duration:peak_multiple, "
                          "e.g. tuo:tuo-sanhuangmiao:NH3N:+10m:30m:8 (repeatable)."),
    ] = None,
    faults: Annotated[bool, typer.Option(help="Inject sensor faults and maintenance windows.")] = True,
    username: Annotated[str, typer.Option(help="MQTT user allowed to publish for the stations.")] = "riverguard-sim",
    password: Annotated[str | None, typer.Option(envvar="MQTT_SIM_PASSWORD", help="Its password.")] = None,
    transport: Annotated[
        Literal["mqtt", "hj212-tcp"],
        typer.Option(help="mqtt: publish to Mosquitto; hj212-tcp: each station a data logger on a TCP connection to "
                          "the HJ 212 gateway (PWs from hj212.passwords_file), answering its commands."),
    ] = "mqtt",
    gateway: Annotated[
        str | None, typer.Option(help="host:port of the HJ 212 gateway (default 127.0.0.1:<hj212.port>).")
    ] = None,
) -> None:
    """Publish realistic telemetry (diurnal cycles, faults, optional spills) over MQTT or as data loggers."""
    from ingest.publisher import Pace, publish_readings
    from ingest.simulator import Simulator, Spill

    settings, registry = settings_and_registry_or_exit(config, stations)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        begin = datetime.fromisoformat(start) if start else now
        if begin.tzinfo is None:
            raise ValueError(f"--start {start!r} needs a time zone, e.g. +08:00")
        spills = [Spill.parse(text, begin) for text in spill or ()]
        sim = Simulator(registry, seed=seed, start=begin, step=timedelta(seconds=step_s), spills=spills,
                        faults=faults, stations=station)
    except (ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for event in sim.events:
        typer.echo(f"spill arrival: {event.station_id} {event.parameter} {event.start.isoformat()} → "
                   f"{event.end.isoformat()} peak {event.peak}", err=True)
    pace = Pace(rate=rate, speedup=None if rate else speedup, duration_s=duration, count=count)
    if transport == "hj212-tcp":
        _simulate_loggers(sim.readings(), settings, registry, pace, gateway)
        return
    try:
        stats = publish_readings(sim.readings(), registry, settings.mqtt, username=username,
                                 password=password or None, client_id=f"riverguard-sim-{seed}", pace=pace)
    except RiverguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(f"published {stats.published} messages in {stats.seconds:.1f} s ({stats.rate:.0f}/s)")


def _simulate_loggers(
    readings: Iterable[Reading], settings: Settings, registry: StationRegistry, pace: Pace, gateway: str | None
) -> None:
    import asyncio

    from ingest.datalogger import send_readings
    from ingest.gateway import gateway_secrets

    host, _, port = (gateway or f"127.0.0.1:{settings.hj212.port}").rpartition(":")
    try:
        secrets = gateway_secrets(settings, registry)
        run = asyncio.run(send_readings(readings, registry, secrets, host or "127.0.0.1", int(port), pace))
    except (ConfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except RiverguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    for station_id, samples in run.samples.items():
        for sample in samples:
            typer.echo(f"sample retained: {station_id} bottle {sample.bottle} at {sample.taken_at.isoformat()}")
    typer.echo(f"sent {run.sent} frames in {run.seconds:.1f} s, {run.acknowledged} answered (9014), "
               f"{run.commands} commands from the gateway")
