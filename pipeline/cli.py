"""The ``riverguard`` command line — the composition root's entry point.

``riverguard run <stage>`` and ``riverguard run all`` build their stages with
:mod:`pipeline.stages` (as the demo, the benchmarks and the tests do); ``riverguard demo`` runs
the embedded pipeline. The other commands belong to their packages (``parse``/``simulate`` to
ingest, ``replay`` to detectors, ``playbook`` to playbooks, ``incidents`` to alerts, ``history``
to sink): each package's ``cli.register(app)`` adds them, and no package imports this one.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.demo_cli import demo
from riverguard import __version__
from riverguard.cli import ConfigOption, fail, settings_and_registry_or_exit, settings_or_exit
from riverguard.errors import ConfigError, RiverguardError
from riverguard.settings import load_settings

#: Packages that add commands, each through ``register(app: typer.Typer) -> None`` in its ``cli`` module.
COMMAND_MODULES: tuple[str, ...] = (
    "ingest.cli", "sink.cli", "playbooks.cli", "alerts.cli", "detectors.cli", "console.cli",
)

app = typer.Typer(
    name="riverguard",
    help="Environmental-emergency alerting for the Min, Tuo and Jialing rivers (岷江、沱江、嘉陵江).",
    no_args_is_help=True,
    add_completion=False,
)
run_app = typer.Typer(help="Run a pipeline service (a Kafka consumer group) in the foreground.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect and check settings.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(config_app, name="config")
app.command("demo")(demo)

GroupOption = Annotated[
    str | None, typer.Option("--group", help="Kafka consumer group id (default riverguard-<stage>).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"riverguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """riverguard: station telemetry → detectors → incidents → 一河一策一图 playbooks → duty officers."""


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings as JSON (secrets masked)."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(json.dumps(settings.redacted(), indent=2, ensure_ascii=False))


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the settings; exit 2 with the bad key and value named if they are invalid."""
    settings_or_exit(config)
    typer.echo("settings OK")


def _run(name: str, config: Path | None, group: str | None, **options: float) -> None:
    from pipeline.serve import run_service
    from pipeline.stages import service
    from riverguard.bus.kafka import KafkaBus

    settings, registry = settings_and_registry_or_exit(config)
    try:
        built = service(name, settings, registry, KafkaBus(settings.kafka), group_id=group, options=options)
    except RiverguardError as exc:
        raise fail(str(exc), 2) from exc
    run_service(built, settings)


@run_app.command("ingest")
def run_ingest(config: ConfigOption = None) -> None:
    """MQTT → Kafka bridge: station payloads to telemetry.readings, rejects to telemetry.dlq."""
    _run("ingest", config, None)


@run_app.command("hj212-gateway")
def run_hj212_gateway(config: ConfigOption = None) -> None:
    """HJ 212 gateway: station data loggers over TCP → Kafka (the ingest routing), answers and commands to them."""
    _run("hj212-gateway", config, None)


@run_app.command("detect")
def run_detect(
    config: ConfigOption = None,
    group: GroupOption = None,
    checkpoint_readings: Annotated[
        int, typer.Option(min=1, help="Checkpoint a station's state after this many of its readings.")
    ] = 1000,
    checkpoint_seconds: Annotated[
        float, typer.Option(min=0.1, help="...and at least this often (seconds); offsets commit with it.")
    ] = 30.0,
) -> None:
    """Readings → detections (Kafka consumer group), state in the compacted changelog topic."""
    _run("detect", config, group, checkpoint_readings=checkpoint_readings, checkpoint_seconds=checkpoint_seconds)


@run_app.command("alert")
def run_alert(config: ConfigOption = None, group: GroupOption = None) -> None:
    """Consume detections, keep incidents, dispatch notifications through Apprise, serve the incident API."""
    _run("alerts", config, group)


@run_app.command("sink")
def run_sink(config: ConfigOption = None, group: GroupOption = None) -> None:
    """Kafka → InfluxDB: readings, detections, incidents and notification records (idempotent)."""
    _run("sink", config, group)


@run_app.command("all")
def run_all(
    config: ConfigOption = None,
    skip: Annotated[
        list[str] | None, typer.Option(help="Leave a stage out (ingest, detect, alerts, sink; repeatable).")
    ] = None,
    group_prefix: Annotated[
        str, typer.Option(help="Consumer groups are <prefix>-detect, <prefix>-alerts, <prefix>-sink.")
    ] = "riverguard",
) -> None:
    """All services in one process against the real stack: ingest bridge, detect, alerts, sink.

    Each stage is its own consumer group, as when run alone (``riverguard run <stage>``), so a
    stage can later move to its own process. SIGINT/SIGTERM stop every stage gracefully.
    """
    import asyncio

    from pipeline.runall import run_all as run_stages
    from pipeline.serve import run_service
    from pipeline.stages import STAGES, Service

    unknown = sorted(set(skip or ()) - set(STAGES))
    if unknown:
        raise typer.BadParameter(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}",
                                 param_hint="--skip")
    settings, registry = settings_and_registry_or_exit(config)

    async def body(stop: asyncio.Event) -> None:
        await run_stages(settings, registry, stop, skip=skip or (), group_prefix=group_prefix)

    # run_stages serves the one /metrics + /health of the process with every stage's checks.
    run_service(Service("all", body), settings, serve_observability=False)


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_commands()


def main() -> None:
    app()
