"""The one HTTP server of riverguard: an aiohttp application served on the running asyncio loop.

/metrics and /health (:mod:`riverguard.observability`), the incident API (:mod:`alerts.api`)
and the duty-officer console (:mod:`console`) are aiohttp applications; :class:`WebServer`
runs one on a host and port. aiohttp parses HTTP (malformed requests get a 400 from it, bodies
above the application's ``client_max_size`` a 413), so no service reads sockets itself.

Requests are logged as method, path and status only: query strings carry the per-incident link
keys and never reach a log (aiohttp's own access log, which would print them, is off).
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

#: How long a stopping server lets requests in progress finish (a live SSE stream is cut then).
SHUTDOWN_TIMEOUT_S: Final = 2.0


class WebServer:
    """``await start(host, port)`` → serving (``port`` 0 picks a free one, see :attr:`port`); ``await stop()``."""

    def __init__(self, app: web.Application, name: str) -> None:
        self.app = app
        self.name = name
        self.host: str | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str | None:
        """``http://host:port`` when serving, else None."""
        return None if self.port is None else f"http://{self.host}:{self.port}"

    async def start(self, host: str, port: int) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        self.host, self.port = str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: method, path (never the query string) and status."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        log.info("%s %s → %d", request.method, request.path, exc.status)
        raise
    log.info("%s %s → %d", request.method, request.path, response.status)
    return response
