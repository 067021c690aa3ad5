"""What every ``riverguard run <service>`` command shares: logging, the /metrics + /health server
with the service's dependency checks, SIGINT/SIGTERM as a graceful stop, and errors turned into a
one-line message and an exit status.

Exit statuses: 2 for bad settings or configuration (nothing was started), 1 for a failure while
running (a broker that went away, a port in use).
"""

from __future__ import annotations

import asyncio
import signal

from pipeline.stages import Service
from riverguard.cli import fail
from riverguard.errors import ConfigError, RiverguardError
from riverguard.observability import setup_logging, start_observability
from riverguard.settings import Settings


async def serve(service: Service, settings: Settings, stop: asyncio.Event) -> None:
    """Run ``service`` until ``stop`` is set, with /metrics and /health (its checks) when configured."""
    try:
        async with await start_observability(settings, service.checks, service=service.name):
            await service.run(stop)
    finally:
        if service.close is not None:
            service.close()


def run_service(service: Service, settings: Settings, *, serve_observability: bool = True) -> None:
    """Run ``service`` in the foreground until it returns; SIGINT/SIGTERM stop it gracefully.

    ``serve_observability=False`` is for a service that serves /metrics and /health itself.
    """
    setup_logging(settings.observability, service=service.name)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if serve_observability:
            await serve(service, settings, stop)
        else:
            await service.run(stop)

    try:
        asyncio.run(main())
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
    except (RiverguardError, OSError) as exc:
        raise fail(str(exc), 1) from exc
