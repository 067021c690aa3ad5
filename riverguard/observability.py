"""Logs, metrics and health for every service.

Metric names are shared by all stages (label ``stage``) so one dashboard covers the pipeline.

How a service uses this module (the sink, ``sink.service``, is a complete example)::

    setup_logging(settings.observability, service="detect")   # text or one JSON object per line
    checks = {"kafka": bus_check(bus, [settings.topics.readings])}
    async with await start_observability(settings, checks) as obs:  # serves /metrics and /health
        ...                                  # the service loop; update the metrics below in it
        await record_lag("detect", consumer)  # now and then: riverguard_consumer_lag

``observability.metrics_port`` unset means no HTTP server (the metrics are still counted, e.g.
for the embedded demo); ``0`` picks a free port (tests: read ``obs.port``). ``GET /health``
answers 200 when every check passed and 503 otherwise, with a JSON body such as
``{"status": "error", "service": "sink", "checks": {"kafka": {"status": "ok", "ms": 4.1},
"influxdb": {"status": "error", "error": "connection refused", "ms": 2.0}}}``.
A check is an ``async`` callable that returns when the dependency is fine and raises otherwise.
With ``observability.metrics_token`` set (required off loopback, see the settings) both answer
only a request with ``Authorization: Bearer <token>``, else 401.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from pydantic import SecretStr

from riverguard.bus.base import Bus, Consumer, TopicPartition
from riverguard.settings import ObservabilitySettings, Settings

if TYPE_CHECKING:
    from aiohttp import web

    from riverguard.web import WebServer

log = logging.getLogger(__name__)

MESSAGES_IN: Final = Counter("riverguard_messages_in_total", "Records or messages a stage received.", ["stage"])
MESSAGES_OUT: Final = Counter("riverguard_messages_out_total", "Records a stage produced.", ["stage", "topic"])
DEAD_LETTERS: Final = Counter("riverguard_dead_letters_total", "Payloads sent to the DLQ.", ["stage", "reason"])
PROCESSING_SECONDS: Final = Histogram(
    "riverguard_processing_seconds",
    "Time to process one batch, from poll to commit.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_LAG: Final = Gauge("riverguard_consumer_lag", "Records behind the end of the partition.", ["stage", "topic"])
NOTIFICATIONS: Final = Counter(
    "riverguard_notifications_total", "Notification delivery attempts.", ["channel", "outcome"]
)
INFLUX_WRITE_ERRORS: Final = Counter(
    "riverguard_influx_write_errors_total",
    "Failed InfluxDB writes: unavailable (retried) or rejected (points sent to the DLQ).",
    ["kind"],
)
BACKPRESSURE: Final = Gauge(
    "riverguard_backpressure",
    "1 while a stage holds its input because an output it writes to is down.",
    ["stage", "output"],
)

HealthCheck = Callable[[], Awaitable[object]]
#: A check that takes longer than this counts as failed: /health must answer a probe quickly.
CHECK_TIMEOUT_S: Final = 3.0


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra ``fields`` on a record are merged in."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._service:
            entry["service"] = self._service
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stderr`` as it is when the record is emitted, not as it was at
    setup: a stream swapped since (a CLI run under a test runner, whose capture is closed after
    the command) would otherwise turn every later log line into a "Logging error"."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def setup_logging(settings: ObservabilitySettings, *, service: str | None = None) -> None:
    """Log to stderr as text or (``log_format: json``) one JSON object per line.

    ``service`` goes into every JSON line (and the text prefix), so merged logs say who spoke.
    """
    handler = StderrHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        prefix = f"[{service}] " if service else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class Observability:
    """The /metrics and /health endpoint of one service; see the module docstring."""

    def __init__(self, service: str | None, checks: Mapping[str, HealthCheck], token: SecretStr | None = None) -> None:
        self.service = service
        self._checks: dict[str, HealthCheck] = dict(checks)
        self._token = token
        self._server: WebServer | None = None

    @property
    def port(self) -> int | None:
        return None if self._server is None else self._server.port

    @property
    def url(self) -> str | None:
        """``http://host:port`` when serving, else None."""
        return None if self._server is None else self._server.url

    def add_check(self, name: str, check: HealthCheck) -> None:
        """Register (or replace) a named check, e.g. once a connection exists."""
        self._checks[name] = check

    async def health(self) -> dict[str, object]:
        """Run every check concurrently; the report /health serves."""
        names = sorted(self._checks)
        results = await asyncio.gather(*(_run_check(self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        healthy = all(r["status"] == "ok" for r in checks.values())
        report: dict[str, object] = {"status": "ok" if healthy else "error", "checks": checks}
        if self.service:
            report["service"] = self.service
        return report

    async def serve(self, host: str, port: int) -> None:
        # aiohttp only in a service that serves: the demo and the CLI commands never load it
        from riverguard.web import WebServer

        server = WebServer(self._app(), f"{self.service or 'riverguard'} metrics")
        await server.start(host, port)
        self._server = server
        log.info("metrics on %s/metrics, health on %s/health", self.url, self.url)

    async def close(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _app(self) -> web.Application:
        from aiohttp import web

        async def metrics(_: web.Request) -> web.Response:
            response = web.Response(body=generate_latest(REGISTRY))
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

        async def health(_: web.Request) -> web.Response:
            report = await self.health()
            return web.json_response(report, status=200 if report["status"] == "ok" else 503,
                                     dumps=lambda o: json.dumps(o, ensure_ascii=False))

        middlewares = [] if self._token is None else [_bearer(self._token)]
        app = web.Application(client_max_size=1024, middlewares=middlewares)  # probes send no body
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/health", health)
        app.router.add_get("/healthz", health)
        app.on_response_prepare.append(_close_connection)
        return app


async def start_observability(
    settings: Settings | ObservabilitySettings,
    checks: Mapping[str, HealthCheck] | None = None,
    *,
    service: str | None = None,
) -> Observability:
    """Serve /metrics (Prometheus text format) and /health on ``observability.metrics_port``.

    ``checks`` maps a dependency name ("kafka", "mqtt", "influxdb") to an async callable that
    raises when the dependency is not usable. Without a port configured nothing is served and
    the returned object still runs the checks (``await obs.health()``). Close it when done
    (``async with await start_observability(...) as obs:``).
    """
    config = settings.observability if isinstance(settings, Settings) else settings
    observability = Observability(service, checks or {}, config.metrics_token)
    if config.metrics_port is not None:
        try:
            await observability.serve(config.metrics_host, config.metrics_port)
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {config.metrics_host}:{config.metrics_port} ({exc.strerror}); "
                "set RIVERGUARD_OBSERVABILITY__METRICS_PORT to a free port, or 0 for any"
            ) from exc
    return observability


def bus_check(bus: Bus, topics: Sequence[str]) -> HealthCheck:
    """A check that the broker answers for ``topics`` (reads their partition end offsets)."""

    async def check() -> None:
        await bus.end_offsets([TopicPartition(topic, 0) for topic in topics])

    return check


async def record_lag(stage: str, consumer: Consumer) -> None:
    """Set ``riverguard_consumer_lag{stage, topic}`` to the records behind, summed per topic."""
    per_topic: dict[str, int] = {}
    for tp, lag in (await consumer.lag()).items():
        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + lag
    for topic, lag in per_topic.items():
        CONSUMER_LAG.labels(stage=stage, topic=topic).set(lag)


def _bearer(token: SecretStr) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that answers 401 unless the request carries ``Authorization: Bearer <token>``."""
    from aiohttp import web

    expected = f"Bearer {token.get_secret_value()}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
            return web.json_response({"error": "missing or wrong bearer token (observability.metrics_token)"},
                                     status=401)
        return await handler(request)

    return check


async def _close_connection(_: web.Request, response: web.StreamResponse) -> None:
    """Probes ask once every few seconds: close the connection, so a plain ``HTTP/1.1`` probe
    that reads to the end of the stream (nc, a shell check) is answered instead of kept open."""
    response.force_close()


async def _run_check(check: HealthCheck) -> dict[str, object]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except TimeoutError:
        outcome: dict[str, object] = {"status": "error", "error": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:  # any failure of a dependency is a health finding, whatever its type
        outcome = {"status": "error", "error": str(exc) or type(exc).__name__}
    else:
        outcome = {"status": "ok"}
    outcome["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return outcome
