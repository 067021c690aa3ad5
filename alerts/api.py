"""The alert service's HTTP API (an aiohttp application, see :mod:`riverguard.web`).

=======  ===================================  ===============================================
GET      /healthz                             no auth
GET      /incidents[?status=active|open|...]  Bearer token: summaries, newest first
GET      /incidents/{id}                      Bearer token: the full incident (JSON)
POST     /incidents/{id}/ack                  Bearer token; JSON body ``{"by": "...", "note": "..."}``
POST     /incidents/{id}/resolve              Bearer token; same body, optionally ``"verdict": "false_alarm"``
GET      /ack/{id}?k=KEY                      the link in messages: a confirmation page
POST     /ack/{id}?k=KEY                      form field ``by``: acknowledges
GET      /incidents/{id}/playbook?k=KEY       the playbook document (HTML)
*        /console/...                         the duty-officer console, when one is mounted
=======  ===================================  ===============================================

``KEY`` is a per-incident HMAC of the API token, so a forwarded SMS can acknowledge that one
incident and nothing else. Without ``alerts.api_token`` the API is open (a warning says so); bind
it to 127.0.0.1 then. Neither the token nor query strings are ever logged.

Errors are JSON ``{"error": "..."}`` with a 4xx status naming what was wrong: 400 for a body that
is not a JSON object (or a malformed request, answered by aiohttp itself), 401 for a missing or
wrong token or link key, 404 for an unknown incident or path, 405 for a method a path does not
take, 409 for an action the incident's state does not allow, 413 for a body over 64 KiB.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
from typing import Any, Final, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from alerts.errors import AlertError, IncidentStateError, UnknownIncidentError
from riverguard.incidents import Incident, Verdict
from riverguard.settings import AlertSettings
from riverguard.web import WebServer, log_requests

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
#: Where a console application is mounted on the API's application.
CONSOLE_PREFIX: Final = "/console"
_HTML: Final = "text/html"


class IncidentDesk(Protocol):
    """What the API needs from the service."""

    def incident(self, incident_id: str) -> Incident: ...
    def all_incidents(self) -> list[Incident]: ...
    async def acknowledge(self, incident_id: str, by: str, note: str = "") -> Incident: ...
    async def resolve(self, incident_id: str, by: str, note: str = "", verdict: Verdict | None = None) -> Incident: ...
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


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=_dumps)


class Refused(Exception):  # noqa: N818 - raised to answer early, not an error of the service
    """Answer the request with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class IncidentApi:
    """The API of one alert service; ``console`` is an aiohttp application mounted at /console."""

    def __init__(self, desk: IncidentDesk, settings: AlertSettings, *, console: web.Application | None = None) -> None:
        self._desk = desk
        self._settings = settings
        self.app = self._application(console)
        self._server = WebServer(self.app, "incident API")
        self.port = settings.http_port

    async def start(self) -> None:
        try:
            await self._server.start(self._settings.http_host, self._settings.http_port)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot serve the incident API on {self._settings.http_host}:{self._settings.http_port} "
                f"({exc.strerror}); set RIVERGUARD_ALERTS__HTTP_PORT to a free port"
            ) from exc
        self.port = self._server.port or 0
        if self._settings.api_token is None:
            log.warning("alerts.api_token is not set: the incident API on %s:%d accepts acknowledgements from anyone "
                        "who can reach it", self._settings.http_host, self.port)
        log.info("incident API listening on %s", self._server.url)

    async def stop(self) -> None:
        await self._server.stop()

    def _application(self, console: web.Application | None) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[log_requests, self._errors])
        routes = app.router
        routes.add_get("/healthz", self._healthz)
        routes.add_get("/incidents", self._list)
        routes.add_get("/incidents/{id}", self._show)
        routes.add_post("/incidents/{id}/{action:ack|resolve}", self._act)
        routes.add_get("/incidents/{id}/playbook", self._playbook)
        routes.add_route("GET", "/ack/{id}", self._ack_page)
        routes.add_route("POST", "/ack/{id}", self._ack_link)
        if console is not None:
            app.add_subapp(CONSOLE_PREFIX, console)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The API's errors as JSON; the console (a mounted application) answers its own."""
        if request.match_info.apps[-1] is not request.app:
            return await handler(request)
        try:
            return await handler(request)
        except Refused as exc:
            return error(exc.status, exc.message)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, _http_reason(request, exc))
        except UnknownIncidentError as exc:
            return error(404, str(exc))
        except IncidentStateError as exc:
            return error(409, str(exc))
        except AlertError as exc:
            return error(400, str(exc))

    # -- the JSON API (bearer token) -----------------------------------------------------

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _list(self, request: web.Request) -> web.Response:
        self._authorise(request)
        wanted = request.query.get("status", "all")
        incidents = self._desk.all_incidents()
        if wanted == "active":
            incidents = [i for i in incidents if i.is_active]
        elif wanted != "all":
            incidents = [i for i in incidents if i.status.value == wanted]
        return web.json_response([summary(i) for i in incidents], dumps=_dumps)

    async def _show(self, request: web.Request) -> web.Response:
        self._authorise(request)
        return _incident_json(self._desk.incident(request.match_info["id"]))

    async def _act(self, request: web.Request) -> web.Response:
        self._authorise(request)
        fields = await _json_object(request)
        by = str(fields.get("by") or "api")
        note = str(fields.get("note") or "")
        incident_id = request.match_info["id"]
        if request.match_info["action"] == "ack":
            return _incident_json(await self._desk.acknowledge(incident_id, by, note))
        verdict = _verdict(fields.get("verdict"))
        return _incident_json(await self._desk.resolve(incident_id, by, note, verdict))

    # -- the links in messages (per-incident key) ----------------------------------------

    async def _playbook(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        self._allow(incident_id, request)
        page = self._desk.playbook_html(incident_id)
        if page is None:
            return error(404, f"incident {incident_id} has no playbook")
        return web.Response(text=page, content_type=_HTML)

    async def _ack_page(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        self._allow(incident_id, request)
        incident = self._desk.incident(incident_id)
        key = html.escape(request.query.get("k", ""))
        page = (
            f"<html><body><h3>{html.escape(incident.incident_id)} · {incident.level.label_zh} · "
            f"{html.escape(incident.river)} {html.escape(incident.pollutant)} · {incident.status.value}</h3>"
            f"<form method='post' action='/ack/{html.escape(incident_id)}?k={key}'>"
            "<label>确认人 / by: <input name='by'></label> <button type='submit'>确认接警 / Acknowledge</button>"
            "</form></body></html>"
        )
        return web.Response(text=page, content_type=_HTML)

    async def _ack_link(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        self._allow(incident_id, request)
        self._desk.incident(incident_id)  # 404 before reading the form for an unknown id
        form = await request.post()
        by = str(form.get("by", "")).strip() or "ack-link"
        try:
            await self._desk.acknowledge(incident_id, by)
            text = f"已确认 / acknowledged: {html.escape(incident_id)} ({html.escape(by)})"
        except IncidentStateError as exc:
            text = html.escape(str(exc))
        return web.Response(text=f"<html><body><p>{text}</p></body></html>", content_type=_HTML)

    # -- access ----------------------------------------------------------------------------

    def _authorise(self, request: web.Request) -> None:
        token = self._settings.api_token
        if token is None:
            return
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Refused(401, "missing or wrong bearer token (alerts.api_token)")

    def _allow(self, incident_id: str, request: web.Request) -> None:
        """The per-incident link key, or the bearer token."""
        expected = self._desk.capability(incident_id)
        if not expected or hmac.compare_digest(request.query.get("k", "").encode(), expected.encode()):
            return
        self._authorise(request)


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await request.read()  # over client_max_size: aiohttp raises 413
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise Refused(400, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Refused(400, 'body must be a JSON object like {"by": "name"}')
    return data


def _verdict(value: Any) -> Verdict | None:
    if value is None or value == "":
        return None
    try:
        return Verdict(value)
    except ValueError:
        raise Refused(400, f"verdict {value!r} is not one of {', '.join(v.value for v in Verdict)}") from None


def _incident_json(incident: Incident) -> web.Response:
    return web.Response(text=incident.model_dump_json(), content_type="application/json")


def _http_reason(request: web.Request, exc: web.HTTPException) -> str:
    """The message of an HTTP error: ours, or aiohttp's made specific."""
    if exc.status == 404:
        return f"no such resource {request.path}"
    if exc.status == 405:
        return f"{request.method} {request.path} is not supported"
    if exc.status == 413:
        return f"body larger than {MAX_BODY} bytes"
    return exc.reason


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
