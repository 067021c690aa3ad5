"""The InfluxDB edge: write line protocol to the bucket, ping for health.

The synchronous ``influxdb-client`` write API runs in a worker thread: one request per batch,
and the event loop (Kafka heartbeats, /health) keeps running meanwhile. The async client would
need aiohttp, which nothing else here uses; ``bench/sink.py`` shows the thread is not the limit.
Retries are the caller's (the sink retries with backoff and holds its input meanwhile), so
the client's own retry is off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from riverguard.settings import InfluxSettings
from sink.errors import InfluxRejected, InfluxUnavailable

#: Statuses that say the points themselves are bad: 400 (syntax, field type conflict) and 413
#: (batch too large). 401/403/404 (token, missing bucket) are an operator's fix, not the
#: data's fault, so they count as unavailable and the sink waits instead of dead-lettering.
_REJECTED = frozenset({400, 413, 422})


class InfluxWriter:
    """Writes batches of line protocol to ``settings.bucket``."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token.get_secret_value(),
            org=settings.org,
            timeout=settings.timeout_ms,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    async def write(self, lines: Sequence[str]) -> None:
        """Write ``lines`` in one request; :class:`InfluxUnavailable` or :class:`InfluxRejected`."""
        if lines:
            await asyncio.to_thread(self._write, "\n".join(lines))

    def _write(self, body: str) -> None:
        where = f"InfluxDB at {self.settings.url} (bucket {self.settings.bucket!r})"
        try:
            self._api.write(bucket=self.settings.bucket, org=self.settings.org, record=body)
        except ApiException as exc:
            status = int(exc.status or 0)
            detail = _detail(exc)
            if status in _REJECTED:
                raise InfluxRejected(status, f"{where} rejected the points: HTTP {status} {detail}") from exc
            hint = {401: "; check RIVERGUARD_INFLUX__TOKEN", 403: "; check RIVERGUARD_INFLUX__TOKEN",
                    404: "; does the bucket/database exist?"}.get(status, "")
            raise InfluxUnavailable(f"{where} answered HTTP {status} {detail}{hint}") from exc
        except (HTTPError, OSError) as exc:
            raise InfluxUnavailable(f"{where} is unreachable: {exc}") from exc

    async def ping(self) -> None:
        """Raise :class:`InfluxUnavailable` unless InfluxDB answers ``/ping``."""
        if not await asyncio.to_thread(self._client.ping):
            raise InfluxUnavailable(f"InfluxDB at {self.settings.url} does not answer /ping")

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def _detail(exc: ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or exc.reason or "")
    return body.strip()[:300]
