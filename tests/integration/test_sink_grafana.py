"""Every Flux query of the provisioned Grafana dashboard runs on real InfluxDB over points the
sink's mapping wrote, and the open-incidents panel shows exactly the incidents not resolved."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient

from riverguard.models import (
    DataFlag,
    Detection,
    DetectionKind,
    Finding,
    Measurement,
    Reading,
    SourceFormat,
    encode,
)
from riverguard.settings import Settings
from sink.influx import InfluxWriter
from sink.points import record_points
from tests.support.services import require_service

pytestmark = [pytest.mark.integration]

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "riverguard.json"
NOW = datetime.now(UTC).replace(microsecond=0)


def influx_query(url: str, statement: str) -> None:
    body = urllib.parse.urlencode({"q": statement}).encode()
    with urllib.request.urlopen(f"{url}/query", data=body, timeout=10) as response:
        assert "error" not in response.read().decode()


@pytest.fixture
def influx_settings(settings: Settings, unique: str) -> Iterator[Settings]:
    netloc = urllib.parse.urlsplit(settings.influx.url).netloc
    host, _, port = netloc.rpartition(":")
    require_service("InfluxDB", host, int(port))
    database = f"rg_grafana_{unique}"
    influx_query(settings.influx.url, f'CREATE DATABASE "{database}"')
    yield settings.model_copy(
        update={"influx": settings.influx.model_copy(update={"bucket": f"{database}/autogen"})}
    )
    influx_query(settings.influx.url, f'DROP DATABASE "{database}"')


def incident(incident_id: str, status: str, minutes_ago: int) -> bytes:
    payload = {
        "incident_id": incident_id, "river": "tuo", "first_station": "tuo-hongyuan", "pollutant": "NH3N",
        "level": "yellow", "status": status, "opened_at": (NOW - timedelta(hours=2)).isoformat(),
        "updated_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "peak_multiple": 1.4,
    }
    return json.dumps({"type": "Incident", "payload": payload}).encode()


def notification(n: int, outcome: str) -> bytes:
    payload = {"notification_id": f"n-{n}", "record_id": f"n-{n}#1", "incident_id": "RG-OPEN", "channel": "sms",
               "attempt": 1, "outcome": outcome, "river": "tuo", "at": (NOW - timedelta(minutes=n)).isoformat()}
    return json.dumps({"type": "NotificationRecord", "payload": payload}).encode()


async def write_sample(settings: Settings) -> None:
    t = settings.topics
    records: list[tuple[str, bytes]] = []
    for i in range(30):
        for station in ("tuo-sanhuangmiao", "tuo-hongyuan"):
            flag = DataFlag.CALIBRATION if i == 3 else DataFlag.NORMAL
            reading = Reading(station_id=station, river="tuo", time=NOW - timedelta(minutes=i),
                              values={"NH3N": Measurement(value=0.3 + i / 100, flag=flag),
                                      "pH": Measurement(value=7.5)},
                              source_format=SourceFormat.SIMULATOR)
            records.append((t.readings, encode(reading)))
    detection = Detection(detection_id="d-1", event_id="e-1", station_id="tuo-hongyuan", river="tuo",
                          time=NOW - timedelta(minutes=5), kind=DetectionKind.LIMIT_EXCEEDANCE,
                          findings=(Finding(parameter="NH3N", value=1.4, limit=1.0, multiple=0.4),),
                          score=6.0, detector="limits", message="氨氮超标 0.4 倍")
    records.append((t.detections, encode(detection)))
    records += [
        (t.incidents, incident("RG-DONE", "open", 90)),
        (t.incidents, incident("RG-DONE", "resolved", 30)),
        (t.incidents, incident("RG-OPEN", "open", 60)),
        (t.incidents, incident("RG-OPEN", "acknowledged", 20)),
        (t.notifications, notification(1, "sent")),
        (t.notifications, notification(2, "failed")),
    ]
    lines = [p.to_line_protocol() for topic, raw in records for p in record_points(topic, raw, t)]
    writer = InfluxWriter(settings.influx)
    try:
        await writer.write(lines)
    finally:
        writer.close()


def panel_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    queries = {p["title"]: t["query"] for p in dashboard["panels"] for t in p.get("targets", ())}
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    queries.update({f"variable {v['name']}": v["query"] for v in variables})
    return queries


def substitute(query: str, bucket: str) -> str:
    values = {"${bucket}": bucket, "${river}": "tuo", "${station}": "tuo-hongyuan", "${parameter}": "NH3N",
              "v.timeRangeStart": "-1d", "v.timeRangeStop": "now()", "v.windowPeriod": "5m"}
    for name, value in values.items():
        query = query.replace(name, value)
    return query


def run(settings: Settings, query: str) -> list[dict[str, Any]]:
    with InfluxDBClient(url=settings.influx.url, token="x:x", org=settings.influx.org) as client:
        tables = client.query_api().query(query, org=settings.influx.org)
    return [dict(r.values) for t in tables for r in t.records]


async def test_every_dashboard_query_runs_and_shows_data(influx_settings: Settings) -> None:
    await write_sample(influx_settings)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = panel_queries(dashboard)
    assert len(queries) >= 10
    bucket = influx_settings.influx.bucket
    empty = [title for title, q in queries.items() if not run(influx_settings, substitute(q, bucket))]
    assert empty == []

    rivers = run(influx_settings, substitute(queries["variable river"], influx_settings.influx.bucket))
    assert [r["_value"] for r in rivers] == ["tuo"]
    open_incidents = run(influx_settings, substitute(queries["Open incidents (latest state of each)"],
                                                     influx_settings.influx.bucket))
    assert [(r["incident_id"], r["status"]) for r in open_incidents] == [("RG-OPEN", "acknowledged")]
    flagged = run(influx_settings, substitute(queries["Flagged values at ${station}"], influx_settings.influx.bucket))
    assert [(r["parameter"], r["flag"]) for r in flagged] == [("NH3N", "C")]
