"""The alert service's small HTTP API (stdlib ``asyncio.start_server``; one request per connection).

=======  ===================================  ===============================================
GET      /healthz                             no auth
GET      /incidents[?status=active|open|...]  Bearer token: summaries, newest first
GET      /incidents/{id}                      Bearer token: the full incident (JSON)
POST     /incidents/{id}/ack                  Bearer token; JSON body ``{"by": "...", "note": "..."}``
POST     /incidents/{id}/resolve              Bearer token; same body
GET      /ack/{id}?k=KEY                      the link in messages: a confirmation page
POST     /ack/{id}?k=KEY                      form field ``by``: acknowledges
GET      /incidents/{id}/playbook?k=KEY       the playbook document (HTML)
=======  ===================================  ===============================================

``KEY`` is a per-incident HMAC of the API token, so a forwarded SMS can acknowledge that one
incident and nothing else. Without ``alerts.api_token`` the API is open (a warning says so); bind
it to 127.0.0.1 then. Neither the token nor query strings are ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from alerts.errors import AlertError, IncidentStateError, UnknownIncidentError
from riverguard.incidents import Incident
from riverguard.settings import AlertSettings

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
_REASONS: Final = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                   409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error"}


class IncidentDesk(Protocol):
    """What the API needs from the service."""

    def incident(self, incident_id: str) -> Incident: ...
    def all_incidents(self) -> list[Incident]: ...
    async def acknowledge(self, incident_id: str, by: str, note: str = "") -> Incident: ...
    async def resolve(self, incident_id: str, by: str, note: str = "") -> Incident: ...
    def playbook_html(self, incident_id: str) -> str | None: ...
    def capability(self, incident_id: str) -> str: ...


def summary(incident: Incident) -> dict[str, Any]:
    """The fields ``incidents list`` shows."""
    return incident.model_dump(
        mode="json",
        include={"incident_id", "status", "level", "route", "river", "reach", "pollutant", "kind", "opened_at",
                 "updated_at", "stations", "peak_multiple", "nearest_intake", "intake_arrival_at",
                 "escalation_stage", "acknowledged_by"},
    )


class _Response(Exception):  # noqa: N818 - raised to answer early, not an error
    def __init__(self, status: int, body: Any, content_type: str = "application/json") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


class IncidentApi:
    def __init__(self, desk: IncidentDesk, settings: AlertSettings) -> None:
        self._desk = desk
        self._settings = settings
        self._server: asyncio.Server | None = None
        self.port = settings.http_port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._settings.http_host, self._settings.http_port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self._settings.api_token is None:
            log.warning("alerts.api_token is not set: the incident API on %s:%d accepts acknowledgements from anyone "
                        "who can reach it", self._settings.http_host, self.port)
        log.info("incident API listening on http://%s:%d", self._settings.http_host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, path = "?", "?"
        try:
            try:
                method, target, headers, body = await asyncio.wait_for(_read_request(reader), timeout=10)
                path = urlsplit(target).path
                result = await self._route(method, target, headers, body)
                response = _Response(200, result) if not isinstance(result, _Response) else result
            except _Response as early:
                response = early
            except UnknownIncidentError as exc:
                response = _Response(404, {"error": str(exc)})
            except IncidentStateError as exc:
                response = _Response(409, {"error": str(exc)})
            except AlertError as exc:
                response = _Response(400, {"error": str(exc)})
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            except Exception:
                log.exception("incident API failed on %s %s", method, path)
                response = _Response(500, {"error": "internal error, see the alert service log"})
            log.info("%s %s → %d", method, path, response.status)
            await _write(writer, response)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if parts == ["healthz"]:
            return {"status": "ok"}
        if parts[:1] == ["ack"] and len(parts) == 2:
            return await self._ack_link(method, parts[1], query, body)
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "playbook":
            self._allow(parts[1], headers, query)
            page = self._desk.playbook_html(parts[1])
            if page is None:
                raise _Response(404, {"error": f"incident {parts[1]} has no playbook"})
            return _Response(200, page, "text/html; charset=utf-8")
        if parts[:1] != ["incidents"]:
            raise _Response(404, {"error": f"no such resource {url.path}"})
        self._authorise(headers)
        if len(parts) == 1 and method == "GET":
            wanted = query.get("status", "all")
            incidents = self._desk.all_incidents()
            if wanted == "active":
                incidents = [i for i in incidents if i.is_active]
            elif wanted != "all":
                incidents = [i for i in incidents if i.status.value == wanted]
            return [summary(i) for i in incidents]
        if len(parts) == 2 and method == "GET":
            return self._desk.incident(parts[1]).model_dump(mode="json")
        if len(parts) == 3 and method == "POST" and parts[2] in ("ack", "resolve"):
            fields = _json_body(body)
            by = str(fields.get("by") or "api")
            note = str(fields.get("note") or "")
            act = self._desk.acknowledge if parts[2] == "ack" else self._desk.resolve
            return (await act(parts[1], by, note)).model_dump(mode="json")
        raise _Response(405 if len(parts) <= 3 else 404, {"error": f"{method} {url.path} is not supported"})

    def _authorise(self, headers: dict[str, str]) -> None:
        token = self._settings.api_token
        if token is None:
            return
        given = headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise _Response(401, {"error": "missing or wrong bearer token (alerts.api_token)"})

    def _allow(self, incident_id: str, headers: dict[str, str], query: dict[str, str]) -> None:
        """The per-incident link key, or the bearer token."""
        expected = self._desk.capability(incident_id)
        if not expected or hmac.compare_digest(query.get("k", "").encode(), expected.encode()):
            return
        self._authorise(headers)

    async def _ack_link(self, method: str, incident_id: str, query: dict[str, str], body: bytes) -> _Response:
        self._allow(incident_id, {}, query)
        incident = self._desk.incident(incident_id)
        if method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            by = form.get("by", "").strip() or "ack-link"
            try:
                incident = await self._desk.acknowledge(incident_id, by)
                text = f"已确认 / acknowledged: {incident_id} ({html.escape(by)})"
            except IncidentStateError as exc:
                text = html.escape(str(exc))
            return _Response(200, f"<html><body><p>{text}</p></body></html>", "text/html; charset=utf-8")
        key = html.escape(query.get("k", ""))
        page = (
            f"<html><body><h3>{html.escape(incident.incident_id)} · {incident.level.label_zh} · "
            f"{html.escape(incident.river)} {html.escape(incident.pollutant)} · {incident.status.value}</h3>"
            f"<form method='post' action='/ack/{html.escape(incident_id)}?k={key}'>"
            "<label>确认人 / by: <input name='by'></label> <button type='submit'>确认接警 / Acknowledge</button>"
            "</form></body></html>"
        )
        return _Response(200, page, "text/html; charset=utf-8")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _ = lines[0].split(" ", 2)
    except ValueError as exc:
        raise _Response(400, {"error": "malformed request line"}) from exc
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise _Response(400, {"error": "bad Content-Length"}) from exc
    if length > MAX_BODY:
        raise _Response(413, {"error": f"body larger than {MAX_BODY} bytes"})
    body = await reader.readexactly(length) if length else b""
    return method.upper(), target, headers, body


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _Response(400, {"error": f"body is not JSON: {exc}"}) from exc
    if not isinstance(data, dict):
        raise _Response(400, {"error": "body must be a JSON object like {\"by\": \"name\"}"})
    return data


async def _write(writer: asyncio.StreamWriter, response: _Response) -> None:
    if isinstance(response.body, str):
        payload = response.body.encode()
    else:
        payload = json.dumps(response.body, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}\r\n"
        f"Content-Type: {response.content_type}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + payload)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
