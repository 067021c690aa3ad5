"""The station board: every station's last reading, health and a sparkline of its key parameters.

Readings come from InfluxDB (what the sink wrote: measurement ``reading``, see
``sink.points``) with two Flux queries for all stations at once — the last 24 h of the
key parameters in 30-minute means, and each station's newest reading of the last 7 days — kept
for ``cache_s`` so a room of consoles does not each ask. Health comes from the incident book:
the station's open maintenance incidents (instrument faults, maintenance, data gaps). A station
whose newest reading is older than ``console.silent_station_min`` stands out. The demo, which has
no InfluxDB, gives the board the readings of its bus instead (:func:`summarised`).

>>> sparkline_points([1.0, 3.0, 2.0], width=100, height=20)
'0.0,19.0 50.0,1.0 100.0,10.0'
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from riverguard.incidents import Incident, Route
from riverguard.models import Reading
from riverguard.settings import InfluxSettings
from riverguard.stations import Station, StationRegistry

log = logging.getLogger(__name__)

#: The parameters a sparkline shows when the station measures them (ammonia, permanganate index,
#: dissolved oxygen, total phosphorus: the ones the Min/Tuo/Jialing assessments turn on).
KEY_PARAMETERS: Final = ("NH3N", "CODMn", "DO", "TP")
SPARK_WINDOW: Final = timedelta(hours=24)
LAST_WINDOW: Final = timedelta(days=7)
WINDOW: Final = timedelta(minutes=30)  # the sparkline's points: one mean per window
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Spark:
    parameter: str
    points: str  # an SVG polyline's points
    last: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class StationRow:
    station: Station
    last_reading: datetime | None
    silent: bool
    faults: tuple[Incident, ...]
    sparks: tuple[Spark, ...] = ()


@dataclass
class _Readings:
    series: dict[tuple[str, str], list[tuple[datetime, float]]] = field(default_factory=dict)
    last: dict[str, datetime] = field(default_factory=dict)


def sparkline_points(values: Sequence[float], width: float = 120, height: float = 24) -> str:
    """An SVG polyline through ``values``, scaled to the box with a point of margin top and bottom."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}" for i, v in enumerate(values)
    )


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def queries(bucket: str, now: datetime) -> tuple[str, str]:
    """The sparkline query and the last-reading query (times from ``now``, the service's clock)."""
    parameters = " or ".join(f"r.parameter == {_string(p)}" for p in KEY_PARAMETERS)
    spark = (
        f"from(bucket: {_string(bucket)})\n"
        f"  |> range(start: {_rfc3339(now - SPARK_WINDOW)}, stop: {_rfc3339(now)})\n"
        f'  |> filter(fn: (r) => r._measurement == "reading" and r._field == "value" and ({parameters}))\n'
        '  |> group(columns: ["station", "parameter"])\n'
        f"  |> aggregateWindow(every: {int(WINDOW.total_seconds() // 60)}m, fn: mean, createEmpty: false)\n"
    )
    last = (
        f"from(bucket: {_string(bucket)})\n"
        f"  |> range(start: {_rfc3339(now - LAST_WINDOW)}, stop: {_rfc3339(now + timedelta(minutes=1))})\n"
        '  |> filter(fn: (r) => r._measurement == "reading" and r._field == "value")\n'
        '  |> group(columns: ["station"])\n'
        "  |> last()\n"
    )
    return spark, last


def summarised(readings: Iterable[Reading], now: datetime) -> _Readings:
    """What the two queries would find, from readings held in memory (the demo's bus): 30-minute
    means of the key parameters over the last 24 h, stamped at each window's end as
    ``aggregateWindow`` does, and each station's newest reading of the last 7 days."""
    sums: dict[tuple[str, str], dict[datetime, list[float]]] = {}
    readings_out = _Readings()
    for reading in readings:
        if not now - LAST_WINDOW <= reading.time <= now + timedelta(minutes=1):
            continue
        station = reading.station_id
        if station not in readings_out.last or reading.time > readings_out.last[station]:
            readings_out.last[station] = reading.time
        if reading.time < now - SPARK_WINDOW or reading.time > now:
            continue
        window = reading.time - (reading.time - EPOCH) % WINDOW + WINDOW
        for parameter in KEY_PARAMETERS:
            if parameter in reading.values:
                sums.setdefault((station, parameter), {}).setdefault(window, []).append(
                    reading.values[parameter].value)
    for key, windows in sums.items():
        readings_out.series[key] = [(at, sum(v) / len(v)) for at, v in sorted(windows.items())]
    return readings_out


class StationBoard:
    """``influx``: where the readings are; None: ``recorded`` readings held in memory (the demo's)."""

    def __init__(self, registry: StationRegistry, influx: InfluxSettings | None, *, silent_after: timedelta,
                 cache_s: float = 30.0, recorded: Sequence[Reading] = ()) -> None:
        self.registry = registry
        self.influx = influx
        self.silent_after = silent_after
        self.cache_s = cache_s
        self.recorded = recorded
        self._cached: tuple[float, _Readings] | None = None

    async def rows(self, incidents: Sequence[Incident], now: datetime) -> tuple[list[StationRow], str]:
        """One row per registered station, and what went wrong reading InfluxDB ("" if nothing)."""
        problem = ""
        try:
            readings = await self._readings(now)
        except Exception as exc:  # any failure of InfluxDB leaves the board without curves, not broken
            log.warning("station board: InfluxDB query failed: %s", exc)
            readings, problem = _Readings(), str(exc) or type(exc).__name__
        return [self._row(s, incidents, readings, now) for s in self.registry.stations], problem

    def _row(self, station: Station, incidents: Sequence[Incident], readings: _Readings, now: datetime) -> StationRow:
        faults = tuple(
            i for i in incidents
            if i.route is Route.MAINTENANCE and i.is_active and station.station_id in (i.first_station, *i.stations)
        )
        sparks = []
        for parameter in KEY_PARAMETERS:
            series = readings.series.get((station.station_id, parameter))
            if series:
                values = [v for _, v in series]
                sparks.append(Spark(parameter, sparkline_points(values), values[-1], min(values), max(values)))
        last = readings.last.get(station.station_id)
        silent = last is None or now - last > self.silent_after
        return StationRow(station, last, silent, faults, tuple(sparks))

    async def _readings(self, now: datetime) -> _Readings:
        if self.influx is None:
            return summarised(self.recorded, now)
        loop = asyncio.get_running_loop()
        if self._cached is not None and loop.time() - self._cached[0] < self.cache_s:
            return self._cached[1]
        readings = await asyncio.to_thread(self._query, self.influx, now)
        self._cached = (loop.time(), readings)
        return readings

    @staticmethod
    def _query(influx: InfluxSettings, now: datetime) -> _Readings:
        from influxdb_client.client.influxdb_client import InfluxDBClient  # only a console that shows the board

        spark, last = queries(influx.bucket, now)
        client = InfluxDBClient(url=influx.url, token=influx.token.get_secret_value(), org=influx.org,
                                timeout=influx.timeout_ms)
        try:
            api = client.query_api()
            readings = _Readings()
            for table in api.query(spark, org=influx.org):
                for row in table.records:
                    key = (str(row.values["station"]), str(row.values["parameter"]))
                    readings.series.setdefault(key, []).append((row.values["_time"], float(row.values["_value"])))
            for table in api.query(last, org=influx.org):
                for row in table.records:
                    readings.last[str(row.values["station"])] = row.values["_time"]
            return readings
        finally:
            client.close()  # type: ignore[no-untyped-call]
