"""The ``riverguard`` command line: the composition root.

Each package contributes its own commands through a ``register(app, run)`` function in its
``cli`` module; this module only assembles them (so ``riverguard`` the core imports no stage).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from riverguard import __version__
from riverguard.errors import ConfigError
from riverguard.settings import load_settings

#: Modules that add commands. Each has ``register(app: typer.Typer, run: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "ingest.cli", "riverguard.sink.cli", "playbooks.cli", "alerts.cli", "detectors.cli", "pipeline.cli", "console.cli",
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

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (else RIVERGUARD_CONFIG).", exists=False)
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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(settings.redacted(), indent=2, ensure_ascii=False))


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the settings; exit 2 with the bad key and value named if they are invalid."""
    try:
        load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("settings OK")


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(app, run_app)


_register_commands()


def main() -> None:
    app()
