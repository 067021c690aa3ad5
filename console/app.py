"""The duty-officer console: an aiohttp application mounted on the alert service's API at /console.

Every action goes through the alert service (the desk) like the JSON API's, so it takes the same
lock over the same incident book and is persisted before the page answers; the live list follows
the book (:mod:`console.feed`). Pages are rendered on the server (Jinja2, autoescaped); a little
JavaScript (``static/console.js``) keeps the list live over server-sent events and counts down.

Security: sessions in HttpOnly SameSite=Strict cookies, a CSRF token in every form (the sign-in
form's in a cookie of its own), a same-origin check on every POST, a sign-in throttle per user
name and per client address, roles checked on the server (a viewer's pages have no action
buttons, and the endpoints refuse them), a Content-Security-Policy that allows only the
console's own scripts and styles, and every action and sign-in in the audit log. No page carries
the API token, a link key or a password hash.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from alerts.api import CONSOLE_PREFIX, IncidentDesk
from alerts.errors import AlertError, IncidentStateError, UnknownIncidentError
from alerts.playbook_source import PlaybookSource
from console.audit import AuditLog
from console.errors import AuditError
from console.feed import IncidentFeed
from console.i18n import CATALOGUE, LANGS, Lang, text
from console.playbook import PlaybookPanel
from console.sessions import LoginThrottle, Session, SessionStore
from console.settings import ConsoleSettings
from console.stationboard import StationBoard
from console.users import UserBook, load_users
from console.views import Filters, can_acknowledge, rivers, timeline
from playbooks import RiverNetwork
from playbooks.clock import clock, local, stamp
from riverguard.incidents import Incident

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "rg_session"
LOGIN_COOKIE: Final = "rg_login"  # the sign-in form's CSRF token (there is no session yet)
LANG_COOKIE: Final = "rg_lang"
MAX_FORM: Final = 16 * 1024
HEARTBEAT_S: Final = 15.0
_SESSION: Final = web.RequestKey("session", Session)
_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class ConsoleDesk(IncidentDesk, Protocol):
    """What the console needs from the alert service beyond the API's calls."""

    clock: Callable[[], datetime]
    playbooks: PlaybookSource


class _Refused(Exception):  # noqa: N818 - raised to answer early with a page
    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


class Console:
    def __init__(
        self,
        desk: ConsoleDesk,
        settings: ConsoleSettings,
        *,
        networks: Mapping[str, RiverNetwork],
        board: StationBoard,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        feed_period_s: float = 0.5,
        prefix: str = CONSOLE_PREFIX,
    ) -> None:
        if settings.users_file is None:
            raise ValueError("the console needs console.users_file (riverguard console-user add ...)")
        self.desk = desk
        self.settings = settings
        self.prefix = prefix
        self.users_file: Path = settings.users_file
        self.users: UserBook = load_users(settings.users_file)
        self.sessions = SessionStore(settings.session_lifetime)
        self.throttle = LoginThrottle(settings.login_failures, settings.login_window)
        self.audit = AuditLog(settings.audit_file)
        self.feed = IncidentFeed(desk.all_incidents, feed_period_s)
        self.playbooks = PlaybookPanel(desk.playbooks, networks)
        self.board = board
        self.wall_clock = wall_clock
        self._users_mtime = self._mtime()
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("console", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
        )
        self._templates.filters.update(clock=clock, stamp=stamp, iso=lambda d: d.isoformat())
        self._templates.globals["catalogue"] = CATALOGUE
        self._templates.globals["sections"] = {s.station_id: s.section for s in board.registry.stations}
        self._warming: set[asyncio.Task[None]] = set()
        self.feed.on_change.append(self._warm)

    # -- the application ---------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_FORM, middlewares=[self._guard])
        routes = app.router
        routes.add_get("/login", self._login_page)
        routes.add_post("/login", self._login)
        routes.add_post("/logout", self._logout)
        routes.add_get("/lang/{lang}", self._language)
        routes.add_get("/", self._incidents)
        routes.add_get("/events", self._events)
        routes.add_get("/incidents/{id}", self._incident)
        routes.add_get("/incidents/{id}/map.svg", self._map)
        routes.add_post("/incidents/{id}/ack", self._acknowledge)
        routes.add_post("/incidents/{id}/resolve", self._resolve)
        routes.add_get("/stations", self._stations)
        routes.add_get("/audit", self._audit)
        routes.add_static("/static", Path(str(files("console") / "static")))
        app.cleanup_ctx.append(self._running)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _running(self, _: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.feed.run())
        self._warm_up(asyncio.to_thread(self.playbooks.prepare))
        yield
        self.feed.closed.set()
        await task
        for warming in list(self._warming):
            warming.cancel()

    async def _shutdown(self, _: web.Application) -> None:
        self.feed.closed.set()  # ends the event streams, so stopping does not wait for them

    def _warm(self, incident: Incident) -> None:
        self._warm_up(self.playbooks.warm(incident))

    def _warm_up(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        public = request.path.startswith(tuple(self.prefix + p for p in ("/login", "/lang/", "/static/")))
        try:
            if request.method == "POST":
                self._same_origin(request)
            if not public:
                session = self._session(request)
                if session is None:
                    if request.method == "GET" and request.path != self.prefix + "/events":
                        target = quote(request.path_qs, safe="")
                        raise web.HTTPSeeOther(f"{self.prefix}/login?next={target}")
                    raise _Refused(401, "sign_in")
                request[_SESSION] = session
            response = await handler(request)
        except _Refused as refused:
            response = self._page(request, "refused.html", status=refused.status, message=self._t(request)(refused.key))
        except (UnknownIncidentError, web.HTTPNotFound):
            response = self._page(request, "refused.html", status=404, message=self._t(request)("not_found"))
        except AuditError as exc:
            log.error("%s; the action was refused", exc)
            response = self._page(request, "refused.html", status=503, message=str(exc))
        _secure_headers(response)
        return response

    # -- signing in and out ------------------------------------------------------------------

    async def _login_page(self, request: web.Request, *, failed: str = "", status: int = 200) -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = self._page(request, "login.html", status=status, csrf=token, failed=failed,
                              next=_local_next(self.prefix, request.query.get("next", "")))
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path=self.prefix,
                            secure=self.settings.secure_cookies)
        return response

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name = str(form.get("user", "")).strip().lower()[:64]
        password = str(form.get("password", ""))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(str(form.get("csrf", "")), expected):
            raise _Refused(403, "csrf")
        now = self.wall_clock()
        address = request.remote or "?"
        keys = (f"user:{name}", f"addr:{address}")
        waits = [w for k in keys if (w := self.throttle.retry_after(k, now)) is not None]
        if waits:
            self.audit.record(now, name or "?", "sign_in", outcome="throttled", address=address)
            response = await self._login_page(request, failed="too_many", status=429)
            response.headers["Retry-After"] = str(int(max(waits)) + 1)
            return response
        self._reload_users()
        user = await asyncio.to_thread(self.users.check, name, password)
        if user is None:
            for key in keys:
                self.throttle.failed(key, now)
            self.audit.record(now, name or "?", "sign_in", outcome="refused", address=address)
            return await self._login_page(request, failed="bad_login", status=401)
        for key in keys:
            self.throttle.succeeded(key)
        session = self.sessions.open(user, now)
        self.audit.record(now, user.shown, "sign_in", address=address, role=user.role.value)
        response = web.HTTPSeeOther(_local_next(self.prefix, str(form.get("next", ""))))
        response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="Strict", path=self.prefix,
                            secure=self.settings.secure_cookies, max_age=self.settings.session_minutes * 60)
        response.del_cookie(LOGIN_COOKIE, path=self.prefix)
        raise response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        session = await self._form_session(request)
        self.sessions.close(session.token)
        self.audit.record(self.wall_clock(), session.user.shown, "sign_out")
        response = web.HTTPSeeOther(f"{self.prefix}/login")
        response.del_cookie(SESSION_COOKIE, path=self.prefix)
        raise response

    async def _language(self, request: web.Request) -> web.StreamResponse:
        lang = request.match_info["lang"]
        response = web.HTTPSeeOther(_local_next(self.prefix, request.query.get("next", "")))
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, samesite="Strict", path=self.prefix,
                                max_age=365 * 86400, secure=self.settings.secure_cookies)
        raise response

    # -- incidents ---------------------------------------------------------------------------

    async def _incidents(self, request: web.Request) -> web.Response:
        filters = Filters.parse(request.query)
        everything = self.desk.all_incidents()
        shown = [i for i in everything if filters.keep(i)]
        return self._page(request, "incidents.html", incidents=shown, filters=filters, rivers=rivers(everything),
                          now=self.desk.clock())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``incident`` with the changed incident's list row and fields."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        _secure_headers(response)
        await response.prepare(request)
        queue = self.feed.subscribe()
        t = self._t(request)
        try:
            await response.write(b"retry: 2000\n\n")
            while not self.feed.closed.is_set():
                try:
                    incident = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": heartbeat\n\n")
                    continue
                row = self._templates.get_template("row.html").render(
                    i=incident, t=t, prefix=self.prefix, now=self.desk.clock())
                data = json.dumps({"id": incident.incident_id, "river": incident.river, "level": incident.level.value,
                                   "status": incident.status.value, "active": incident.is_active, "row": row},
                                  ensure_ascii=False)
                await response.write(f"event: incident\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.feed.unsubscribe(queue)
        return response

    async def _incident(self, request: web.Request) -> web.Response:
        incident = self.desk.incident(request.match_info["id"])
        playbook = self.playbooks.playbook(incident)
        fragment = request.query.get("fragment") == "live"
        return self._page(
            request, "incident_live.html" if fragment else "incident.html", i=incident, playbook=playbook,
            timeline=timeline(incident), can_ack=can_acknowledge(incident), now=self.desk.clock(),
            has_map=playbook is not None,
        )

    async def _map(self, request: web.Request) -> web.Response:
        incident = self.desk.incident(request.match_info["id"])
        svg = await self.playbooks.map_svg(incident)
        if svg is None:
            raise web.HTTPNotFound
        return web.Response(text=svg, content_type="image/svg+xml",
                            headers={"Cache-Control": "private, max-age=300"})

    async def _acknowledge(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "acknowledge")

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "resolve")

    async def _act(self, request: web.Request, action: str) -> web.StreamResponse:
        session = await self._form_session(request, act=True)
        form = await request.post()
        incident_id = request.match_info["id"]
        note = str(form.get("note", "")).strip()[:500]
        who = session.user.shown
        call = self.desk.acknowledge if action == "acknowledge" else self.desk.resolve
        try:
            await call(incident_id, who, note)
        except IncidentStateError as exc:
            self.audit.record(self.wall_clock(), who, action, incident_id, outcome="refused", error=str(exc))
            raise _Refused(409, "forbidden") from exc
        except AlertError as exc:
            self.audit.record(self.wall_clock(), who, action, incident_id, outcome="error", error=str(exc))
            raise
        self.audit.record(self.wall_clock(), who, action, incident_id, note=note)
        self.feed.look()  # the change reaches every open list now, not on the next look
        raise web.HTTPSeeOther(f"{self.prefix}/incidents/{quote(incident_id)}")

    # -- stations and audit --------------------------------------------------------------------

    async def _stations(self, request: web.Request) -> web.Response:
        rows, problem = await self.board.rows(self.desk.all_incidents(), self.desk.clock())
        return self._page(request, "stations.html", rows=rows, problem=problem, now=self.desk.clock())

    async def _audit(self, request: web.Request) -> web.Response:
        entries = await asyncio.to_thread(self.audit.entries)
        return self._page(request, "audit.html", entries=entries)

    # -- helpers ---------------------------------------------------------------------------------

    def _session(self, request: web.Request) -> Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        return self.sessions.get(token, self.wall_clock()) if token else None

    async def _form_session(self, request: web.Request, *, act: bool = False) -> Session:
        """The session of a POST whose form carries its CSRF token; ``act``: a duty officer's."""
        session = request[_SESSION]
        form = await request.post()
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            self.audit.record(self.wall_clock(), session.user.shown, "csrf_refused", request.path, outcome="refused")
            raise _Refused(403, "csrf")
        if act and not session.user.role.can_act:
            self.audit.record(self.wall_clock(), session.user.shown, "forbidden", request.path, outcome="refused")
            raise _Refused(403, "forbidden")
        return session

    def _same_origin(self, request: web.Request) -> None:
        """A POST from another site's page is refused even before its CSRF token is looked at."""
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise _Refused(403, "csrf")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise _Refused(403, "csrf")

    def _mtime(self) -> int | None:
        try:
            return self.users_file.stat().st_mtime_ns
        except OSError:
            return None

    def _reload_users(self) -> None:
        """Pick up ``console-user add/remove`` without a restart; sign out the users that changed."""
        mtime = self._mtime()
        if mtime == self._users_mtime:
            return
        self._users_mtime = mtime
        before = self.users
        self.users = load_users(self.users_file)
        for user in before.users:
            if self.users.get(user.name) != user:
                self.sessions.close_user(user.name)

    def _lang(self, request: web.Request) -> Lang:
        return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"

    def _t(self, request: web.Request) -> Callable[..., str]:
        lang = self._lang(request)

        def t(key: str, **values: Any) -> str:
            return text(key, lang).format(**values) if values else text(key, lang)

        return t

    def _page(self, request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
        session = request.get(_SESSION) if _SESSION in request else None
        page = self._templates.get_template(template).render(
            t=self._t(request), lang=self._lang(request), prefix=self.prefix, session=session,
            user=session.user if session else None, path=request.path_qs, local=local,
            **context,
        )
        response = web.Response(text=page, content_type="text/html", status=status)
        response.headers["Cache-Control"] = "no-store"
        return response


def _local_next(prefix: str, target: str) -> str:
    """Only a path of this console: a crafted ``next`` must not send someone to another site."""
    home = f"{prefix}/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(home) or target.startswith("//"):
        return home
    return target


def _secure_headers(response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")


