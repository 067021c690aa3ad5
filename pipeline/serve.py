"""What every ``riverguard run <service>`` command shares: settings or a clear exit, logging,
the /metrics + /health server with the service's dependency checks, SIGINT/SIGTERM as a graceful
stop, and errors turned into a one-line message and an exit status.

Exit statuses: 2 for bad settings or configuration (nothing was started), 1 for a failure while
running (a broker that went away, a port in use).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated

import typer

from riverguard.errors import ConfigError, RiverguardError
from riverguard.observability import HealthCheck, setup_logging, start_observability
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


def run_service(
    name: str,
    settings: Settings,
    body: Callable[[asyncio.Event], Awaitable[None]],
    checks: Mapping[str, HealthCheck] | None = None,
    *,
    serve_observability: bool = True,
) -> None:
    """Run ``body(stop)`` until it returns; ``stop`` is set by SIGINT/SIGTERM.

    ``serve_observability=False`` is for a body that serves /metrics and /health itself.
    """
    setup_logging(settings.observability, service=name)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if not serve_observability:
            await body(stop)
            return
        async with await start_observability(settings, checks, service=name):
            await body(stop)

    try:
        asyncio.run(main())
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
    except (RiverguardError, OSError) as exc:
        raise fail(str(exc), 1) from exc
