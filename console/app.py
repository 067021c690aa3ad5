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
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from alerts.api import CONSOLE_PREFIX, IncidentDesk
from alerts.errors import AlertError, IncidentStateError, SilenceError, UnknownIncidentError
from alerts.playbook_source import PlaybookSource
from console.audit import AuditLog
from console.errors import AuditError, Refused
from console.feed import IncidentFeed
from console.i18n import CATALOGUE, LANGS, Lang, text
from console.incidents import IncidentPages
from console.playbook import PlaybookPanel
from console.sessions import LoginThrottle, Session, SessionStore
from console.silences import SilencePages
from console.stationboard import StationBoard
from console.stations import StationPages
from console.users import UserBook, load_users
from playbooks import RiverNetwork
from playbooks.clock import clock, local, stamp
from riverguard.incidents import Incident, Silence, SilenceRecord
from riverguard.settings import ConsoleSettings, InfluxSettings, Settings
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "rg_session"
LOGIN_COOKIE: Final = "rg_login"  # the sign-in form's CSRF token (there is no session yet)
LANG_COOKIE: Final = "rg_lang"
MAX_FORM: Final = 16 * 1024
HEARTBEAT_S: Final = 15.0
SESSION: Final = web.RequestKey("session", Session)
T = TypeVar("T")
_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class ConsoleDesk(IncidentDesk, Protocol):
    """What the console needs from the alert service beyond the API's calls."""

    clock: Callable[[], datetime]
    playbooks: PlaybookSource

    async def tick_action(self, incident_id: str, action_id: str, by: str, done: bool = True) -> Incident: ...
    def silences(self) -> list[SilenceRecord]: ...
    async def add_silence(self, silence: Silence, by: str) -> SilenceRecord: ...
    async def expire_silence(self, silence_id: str, by: str) -> SilenceRecord: ...


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

    @classmethod
    def from_settings(cls, desk: ConsoleDesk, settings: Settings, registry: StationRegistry,
                      networks: Mapping[str, RiverNetwork], *, influx: InfluxSettings | None) -> Console:
        """The console of ``settings.console``; its station board reads ``influx`` (None: no sparklines)."""
        board = StationBoard(registry, influx, silent_after=timedelta(minutes=settings.console.silent_station_min))
        return cls(desk, settings.console, networks=networks, board=board)

    # -- the application ---------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_FORM, middlewares=[self._guard])
        routes = app.router
        routes.add_get("/login", self._login_page)
        routes.add_post("/login", self._login)
        routes.add_post("/logout", self._logout)
        routes.add_get("/lang/{lang}", self._language)
        IncidentPages(self).register(routes)
        SilencePages(self).register(routes)
        StationPages(self).register(routes)
        routes.add_get("/audit", self._audit)
        routes.add_static("/static", Path(str(files("console") / "static")))
        app.cleanup_ctx.append(self._running)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _running(self, _: web.Application) -> AsyncIterator[None]:
        self.feed.closed.clear()  # a service started again builds the application again
        task = asyncio.create_task(self.feed.run())
        self._warm_up(asyncio.to_thread(self.playbooks.prepare))
        yield
        self.feed.close()
        await task
        for warming in list(self._warming):
            warming.cancel()

    async def _shutdown(self, _: web.Application) -> None:
        self.feed.close()  # ends the event streams, so stopping does not wait for them

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
                    raise Refused(401, "sign_in")
                request[SESSION] = session
            response = await handler(request)
        except Refused as refused:
            message = self.say(request, refused.key, refused.detail)
            response = self.page(request, "refused.html", status=refused.status, message=message)
        except (UnknownIncidentError, web.HTTPNotFound):
            response = self.page(request, "refused.html", status=404, message=self.t(request)("not_found"))
        except AuditError as exc:
            log.error("%s; the action was refused", exc)
            response = self.page(request, "refused.html", status=503, message=str(exc))
        self.secure_headers(response)
        return response

    # -- signing in and out ------------------------------------------------------------------

    async def _login_page(self, request: web.Request, *, failed: str = "", status: int = 200) -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = self.page(request, "login.html", status=status, csrf=token, failed=failed,
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
            raise Refused(403, "csrf")
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
        session = await self.form_session(request)
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

    # -- audit ---------------------------------------------------------------------------------

    async def _audit(self, request: web.Request) -> web.Response:
        entries = await asyncio.to_thread(self.audit.entries)
        return self.page(request, "audit.html", entries=entries)

    # -- helpers ---------------------------------------------------------------------------------

    def _session(self, request: web.Request) -> Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        return self.sessions.get(token, self.wall_clock()) if token else None

    @staticmethod
    def secure_headers(response: web.StreamResponse) -> None:
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")

    @staticmethod
    def session(request: web.Request) -> Session:
        """The signed-in session of a request past the guard."""
        return request[SESSION]

    async def form_session(self, request: web.Request, *, act: bool = False) -> Session:
        """The session of a POST whose form carries its CSRF token; ``act``: a duty officer's."""
        session = request[SESSION]
        form = await request.post()
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            self.audit.record(self.wall_clock(), session.user.shown, "csrf_refused", request.path, outcome="refused")
            raise Refused(403, "csrf")
        if act and not session.user.role.can_act:
            self.audit.record(self.wall_clock(), session.user.shown, "forbidden", request.path, outcome="refused")
            raise Refused(403, "forbidden")
        return session

    async def act(self, request: web.Request, action: str, target: str, work: Awaitable[T], *,
                  target_of: Callable[[T], str] | None = None, **detail: Any) -> T:
        """Carry out a duty officer's action (after :meth:`form_session` checked the form and role):
        audited whatever the outcome (``target_of`` names the target from the result, e.g. a new
        silence's id); one the incident's or silence's state does not allow is a 409."""
        who = request[SESSION].user.shown
        try:
            result = await work
        except (IncidentStateError, SilenceError) as exc:
            self.audit.record(self.wall_clock(), who, action, target, outcome="refused", error=str(exc), **detail)
            raise Refused(409, "not_done", str(exc)) from exc
        except AlertError as exc:
            self.audit.record(self.wall_clock(), who, action, target, outcome="error", error=str(exc), **detail)
            raise
        self.audit.record(self.wall_clock(), who, action, target_of(result) if target_of else target, **detail)
        self.feed.look()  # the change reaches every open page now, not on the next look
        return result

    def _same_origin(self, request: web.Request) -> None:
        """A POST from another site's page is refused even before its CSRF token is looked at."""
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise Refused(403, "csrf")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise Refused(403, "csrf")

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

    def lang(self, request: web.Request) -> Lang:
        return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"

    def t(self, request: web.Request) -> Callable[..., str]:
        lang = self.lang(request)

        def t(key: str, **values: Any) -> str:
            return text(key, lang).format(**values) if values else text(key, lang)

        return t

    def render(self, request: web.Request, template: str, **context: Any) -> str:
        session = request.get(SESSION) if SESSION in request else None
        return self._templates.get_template(template).render(
            t=self.t(request), lang=self.lang(request), prefix=self.prefix, session=session,
            user=session.user if session else None, path=request.path_qs, local=local,
            **context,
        )

    def say(self, request: web.Request, key: str, detail: str = "") -> str:
        """The catalogue's message ``key`` followed by ``detail`` (what was wrong, as given)."""
        message = self.t(request)(key)
        if not detail:
            return message
        return f"{message}{detail}" if message.endswith("：") else f"{message} {detail}"

    def page(self, request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
        response = web.Response(text=self.render(request, template, **context), content_type="text/html",
                                status=status)
        response.headers["Cache-Control"] = "no-store"
        return response


def _local_next(prefix: str, target: str) -> str:
    """Only a path of this console: a crafted ``next`` must not send someone to another site."""
    home = f"{prefix}/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(home) or target.startswith("//"):
        return home
    return target

