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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from riverguard.bus.base import Bus, Consumer, TopicPartition
from riverguard.settings import ObservabilitySettings, Settings

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


def setup_logging(settings: ObservabilitySettings, *, service: str | None = None) -> None:
    """Log to stderr as text or (``log_format: json``) one JSON object per line.

    ``service`` goes into every JSON line (and the text prefix), so merged logs say who spoke.
    """
    handler = logging.StreamHandler(sys.stderr)
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

    def __init__(self, service: str | None, checks: Mapping[str, HealthCheck]) -> None:
        self.service = service
        self._checks: dict[str, HealthCheck] = dict(checks)
        self._server: asyncio.Server | None = None
        self.host: str | None = None
        self.port: int | None = None

    @property
    def url(self) -> str | None:
        """``http://host:port`` when serving, else None."""
        return None if self.port is None else f"http://{self.host}:{self.port}"

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
        self._server = await asyncio.start_server(self._handle, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        log.info("metrics on %s/metrics, health on %s/health", self.url, self.url)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=10)
            while (await asyncio.wait_for(reader.readline(), timeout=10)) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing here depends on them
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
            status, content_type, body = await self._respond(method, path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a probe that hung up or stalled; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        if path in ("/health", "/healthz"):
            report = await self.health()
            status = "200 OK" if report["status"] == "ok" else "503 Service Unavailable"
            return status, "application/json", json.dumps(report, ensure_ascii=False).encode()
        return "404 Not Found", "text/plain", b"riverguard: see /metrics and /health\n"


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
    observability = Observability(service, checks or {})
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
