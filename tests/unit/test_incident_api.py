"""The incident API answers malformed and unauthorised requests with a clear 4xx, over real HTTP.

The desk is a small double holding real incidents: what is under test is the HTTP edge (parsing,
limits, tokens, error bodies), not the book (``tests/integration/test_alert_service.py`` runs the
API against the real alert service).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from alerts.api import MAX_BODY, IncidentApi
from alerts.errors import IncidentStateError, UnknownIncidentError
from riverguard.incidents import Incident, IncidentStatus, PollutionKey, Route, Verdict, WarningLevel
from riverguard.models import DetectionKind
from riverguard.settings import AlertSettings

TOKEN = "api-token-5a4b"
T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Desk:
    def __init__(self) -> None:
        self.incidents = {
            i.incident_id: i
            for i in (
                Incident(incident_id="RG-00000001", key=PollutionKey(river="tuo", reach="tuo", pollutant="NH3N"),
                         route=Route.POLLUTION, river="tuo", reach="tuo",
                         pollutant="NH3N", kind=DetectionKind.LIMIT_EXCEEDANCE, level=WarningLevel.YELLOW,
                         opened_at=T0, updated_at=T0, last_active_at=T0),
                Incident(incident_id="RG-00000002", key=PollutionKey(river="min", reach="min", pollutant="Cd"),
                         route=Route.POLLUTION, river="min", reach="min",
                         pollutant="Cd", kind=DetectionKind.LIMIT_EXCEEDANCE, level=WarningLevel.RED,
                         status=IncidentStatus.RESOLVED, opened_at=T0, updated_at=T0, last_active_at=T0),
            )
        }

    def incident(self, incident_id: str) -> Incident:
        if incident_id not in self.incidents:
            raise UnknownIncidentError(incident_id)
        return self.incidents[incident_id]

    def all_incidents(self) -> list[Incident]:
        return list(self.incidents.values())

    async def acknowledge(self, incident_id: str, by: str, note: str = "") -> Incident:
        incident = self.incident(incident_id)
        if incident.status is IncidentStatus.RESOLVED:
            raise IncidentStateError(f"incident {incident_id} is resolved; nothing to acknowledge")
        acked = incident.model_copy(update={"status": IncidentStatus.ACKNOWLEDGED, "acknowledged_by": by})
        self.incidents[incident_id] = acked
        return acked

    async def resolve(self, incident_id: str, by: str, note: str = "", verdict: Verdict | None = None) -> Incident:
        resolved = self.incident(incident_id).evolve(status=IncidentStatus.RESOLVED, resolved_by=by, verdict=verdict)
        self.incidents[incident_id] = resolved
        return resolved

    def playbook_html(self, incident_id: str) -> str | None:
        return None

    def capability(self, incident_id: str) -> str:
        return f"key-{incident_id}"


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, Desk]]:
    desk = Desk()
    server = IncidentApi(desk, AlertSettings(http_port=0, api_token=SecretStr(TOKEN)))
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", desk
    finally:
        await server.stop()


async def call(method: str, url: str, *, headers: dict[str, str] | None = None,
               data: bytes | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers, data=data) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


async def raw(port: int, request: bytes) -> int:
    """Send bytes as they are (no client library tidying them up); the status of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    return int(answer.split()[1])


async def test_a_body_that_is_not_a_json_object_is_a_400_naming_the_problem(api: tuple[str, Desk]) -> None:
    base, desk = api
    status, body = await call("POST", f"{base}/incidents/RG-00000001/ack", headers=AUTH, data=b'{"by": "x"')
    assert status == 400
    assert body["error"].startswith("body is not JSON")
    status, body = await call("POST", f"{base}/incidents/RG-00000001/ack", headers=AUTH, data=b'["by", "x"]')
    assert (status, body) == (400, {"error": 'body must be a JSON object like {"by": "name"}'})
    assert desk.incidents["RG-00000001"].status is IncidentStatus.OPEN


async def test_a_huge_body_is_refused_with_413_before_anything_happens(api: tuple[str, Desk]) -> None:
    base, desk = api
    status, body = await call("POST", f"{base}/incidents/RG-00000001/ack", headers=AUTH,
                              data=b'{"by": "' + b"x" * MAX_BODY + b'"}')
    assert (status, body) == (413, {"error": f"body larger than {MAX_BODY} bytes"})
    assert desk.incidents["RG-00000001"].status is IncidentStatus.OPEN


async def test_a_missing_or_wrong_token_is_a_401_and_changes_nothing(api: tuple[str, Desk]) -> None:
    base, desk = api
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, body = await call("POST", f"{base}/incidents/RG-00000001/ack", headers=headers, data=b"{}")
        assert (status, body) == (401, {"error": "missing or wrong bearer token (alerts.api_token)"})
        assert (await call("GET", f"{base}/incidents", headers=headers))[0] == 401
    assert (await call("GET", f"{base}/incidents/RG-00000001/playbook?k=key-RG-00000002"))[0] == 401
    assert (await call("GET", f"{base}/ack/RG-00000001?k=nope"))[0] == 401
    assert desk.incidents["RG-00000001"].status is IncidentStatus.OPEN
    status, body = await call("POST", f"{base}/incidents/RG-00000001/ack", headers=AUTH, data='{"by": "张三"}'.encode())
    assert (status, body["acknowledged_by"]) == (200, "张三")


async def test_unknown_ids_paths_and_methods_and_a_wrong_state_are_named(api: tuple[str, Desk]) -> None:
    base, _ = api
    assert await call("GET", f"{base}/incidents/RG-FFFFFFFF", headers=AUTH) == (
        404, {"error": "no incident 'RG-FFFFFFFF'"})
    assert await call("GET", f"{base}/nothing/here", headers=AUTH) == (404, {"error": "no such resource /nothing/here"})
    assert await call("GET", f"{base}/incidents/RG-00000001/ack", headers=AUTH) == (
        405, {"error": "GET /incidents/RG-00000001/ack is not supported"})
    assert await call("POST", f"{base}/incidents/RG-00000002/ack", headers=AUTH, data=b"{}") == (
        409, {"error": "incident RG-00000002 is resolved; nothing to acknowledge"})
    status, listed = await call("GET", f"{base}/incidents?status=resolved", headers=AUTH)
    assert (status, [i["incident_id"] for i in listed]) == (200, ["RG-00000002"])


async def test_resolve_takes_a_verdict_and_names_a_wrong_one(api: tuple[str, Desk]) -> None:
    base, desk = api
    url = f"{base}/incidents/RG-00000001/resolve"
    status, body = await call("POST", url, headers=AUTH, data='{"by": "张三", "verdict": "drill?"}'.encode())
    assert (status, body) == (400, {"error": "verdict 'drill?' is not one of confirmed_pollution, instrument_fault, "
                                             "false_alarm, drill"})
    assert desk.incidents["RG-00000001"].status is IncidentStatus.OPEN
    status, body = await call("POST", url, headers=AUTH, data='{"by": "张三", "verdict": "false_alarm"}'.encode())
    assert (status, body["status"], body["verdict"]) == (200, "resolved", "false_alarm")
    status, body = await call("POST", f"{base}/incidents/RG-00000002/resolve", headers=AUTH, data=b'{"by": "x"}')
    assert (status, body["verdict"]) == (200, None)


async def test_malformed_http_is_a_400_from_the_server_itself(api: tuple[str, Desk]) -> None:
    base, _ = api
    port = int(base.rsplit(":", 1)[1])
    assert await raw(port, b"NONSENSE\r\n\r\n") == 400
    assert await raw(port, b"POST /incidents/RG-00000001/ack HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n") == 400
    huge_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert await raw(port, huge_header) in (400, 431)  # a header too large to read


async def test_the_log_has_paths_but_never_tokens_or_link_keys(api: tuple[str, Desk],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    base, _ = api
    await call("GET", f"{base}/ack/RG-00000001?k=key-RG-00000001")
    await call("GET", f"{base}/incidents", headers=AUTH)
    assert "GET /ack/RG-00000001 → 200" in caplog.text
    assert "GET /incidents → 200" in caplog.text
    assert "key-RG-00000001" not in caplog.text
    assert TOKEN not in caplog.text
