"""Recent history of one parameter at one station, read back from InfluxDB with Flux.

Used by ``riverguard history`` and by the alert/playbook code that wants context ("what did
NH3-N at this station do over the last 24 h?"). The call blocks on HTTP; from async code run
it in a thread: ``await asyncio.to_thread(recent_history, settings, station, "NH3N", "24h")``.

>>> print(history_query("riverguard/autogen", "tuo-sanhuangmiao", "NH3N",
...                     datetime(2024, 1, 5, 10, 30, tzinfo=UTC)))
from(bucket: "riverguard/autogen")
  |> range(start: 2024-01-05T10:30:00Z)
  |> filter(fn: (r) => r._measurement == "reading" and r.station == "tuo-sanhuangmiao" and r.parameter == "NH3N")
  |> filter(fn: (r) => r._field == "value" or r._field == "flag")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> keep(columns: ["_time", "value", "flag"])
  |> sort(columns: ["_time"])
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from riverguard.settings import Settings
from riverguard.timekeeping import parse_duration
from sink.errors import HistoryError
from sink.points import READING

_STATION: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PARAMETER: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class HistoryPoint(NamedTuple):
    """One stored value: when, what, and its HJ 212 data flag."""

    time: datetime
    value: float
    flag: str


def parse_since(since: str | timedelta | datetime, *, now: datetime | None = None) -> datetime:
    """The start time meant by ``since``: a duration back from now ("24h", "1h30m", "7d") or a time.

    >>> now = datetime(2024, 1, 5, 12, 0, tzinfo=UTC)
    >>> parse_since("1h30m", now=now).isoformat()
    '2024-01-05T10:30:00+00:00'
    >>> parse_since("2024-01-05T08:00:00+08:00").isoformat()
    '2024-01-05T08:00:00+08:00'
    >>> parse_since("yesterday")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sink.errors.HistoryError: --since 'yesterday' is neither a duration (24h, 90m, 1h30m) nor ...
    """
    now = now or datetime.now(UTC)
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise HistoryError(f"since {since.isoformat()} has no time zone")
        return since
    if isinstance(since, timedelta):
        return now - since
    with contextlib.suppress(ValueError):
        return now - parse_duration(since)
    try:
        moment = datetime.fromisoformat(since.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise HistoryError(
            f"--since {since!r} is neither a duration (24h, 90m, 1h30m) nor an ISO 8601 time with a zone"
        )
    return moment


def history_query(bucket: str, station: str, parameter: str, start: datetime, stop: datetime | None = None) -> str:
    """The Flux query for :func:`recent_history` (station and parameter are validated names)."""
    if not _STATION.match(station):
        raise HistoryError(f"station id {station!r} is not a valid station id")
    if not _PARAMETER.match(parameter):
        raise HistoryError(f"parameter {parameter!r} is not a valid parameter name")
    window = f"start: {_rfc3339(start)}" + (f", stop: {_rfc3339(stop)}" if stop else "")
    return "\n".join(
        [
            f"from(bucket: {_flux_string(bucket)})",
            f"  |> range({window})",
            f'  |> filter(fn: (r) => r._measurement == "{READING}" and r.station == "{station}"'
            f' and r.parameter == "{parameter}")',
            '  |> filter(fn: (r) => r._field == "value" or r._field == "flag")',
            '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
            # one table: a station whose section label changed has two series
            "  |> group()",
            '  |> keep(columns: ["_time", "value", "flag"])',
            '  |> sort(columns: ["_time"])',
        ]
    )


def recent_history(
    settings: Settings,
    station: str,
    parameter: str,
    since: str | timedelta | datetime = "24h",
    *,
    until: datetime | None = None,
) -> list[HistoryPoint]:
    """Values of ``parameter`` at ``station`` from ``since`` (a duration back or a time), oldest first."""
    query = history_query(settings.influx.bucket, station, parameter, parse_since(since), until)
    influx = settings.influx
    client = InfluxDBClient(
        url=influx.url, token=influx.token.get_secret_value(), org=influx.org, timeout=influx.timeout_ms
    )
    try:
        tables = client.query_api().query(query, org=influx.org)
    except ApiException as exc:
        detail = f"HTTP {exc.status} {exc.body!r}"
        raise HistoryError(f"InfluxDB at {influx.url} refused the history query: {detail}") from exc
    except (HTTPError, OSError) as exc:
        raise HistoryError(f"InfluxDB at {influx.url} is unreachable: {exc}") from exc
    finally:
        client.close()  # type: ignore[no-untyped-call]
    points = []
    for table in tables:
        for row in table.records:
            value = row.values.get("value")
            if value is None:
                continue  # a flag without a value: a point written by something other than the sink
            points.append(HistoryPoint(row.values["_time"], float(value), str(row.values.get("flag") or "")))
    return points


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _flux_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'
