"""What every command shares: the ``--config`` option, settings or a clear exit.

The ``riverguard`` entry point itself is the composition root's (:mod:`pipeline.cli`); each
package's ``cli`` module adds its commands with these helpers.

Exit statuses: 2 for bad settings or configuration (nothing was started), 1 for a failure while
running (a broker that went away, a port in use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riverguard.errors import ConfigError
from riverguard.settings import Settings, load_settings
from riverguard.stations import StationRegistry, load_registry

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (else RIVERGUARD_CONFIG).")
]


def fail(message: str, status: int) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned ``typer.Exit``."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(status)


def settings_or_exit(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc


def settings_and_registry_or_exit(
    config: Path | None, stations: Path | None = None
) -> tuple[Settings, StationRegistry]:
    """Settings and the station registry (``stations``, else ``settings.stations_file``, else built in)."""
    settings = settings_or_exit(config)
    try:
        return settings, load_registry(stations or settings.stations_file)
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
