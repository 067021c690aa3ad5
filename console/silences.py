"""The console's silences: the ones in force (the routing file's and those set here), the incidents
each holds back, and a duty officer's form to set one or end one early.

=====  ===================================  ==================================================
GET    /silences[?station=&river=&...]      the list and the form (the query fills the form in:
                                            an incident page links here with its match)
POST   /silences                            kind, station, river, pollutant, route, duration, reason
POST   /silences/{id}/expire                ends a silence set at runtime now
=====  ===================================  ==================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from console.silence_form import DURATIONS, SilenceForm, SilenceFormError
from riverguard.incidents import Route

if TYPE_CHECKING:
    from console.app import Console


class SilencePages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.desk = console.desk
        self.registry = console.board.registry

    def register(self, routes: web.UrlDispatcher) -> None:
        routes.add_get("/silences", self._list)
        routes.add_post("/silences", self._add)
        routes.add_post("/silences/{id}/expire", self._expire)

    async def _list(self, request: web.Request, *, form: SilenceForm | None = None, problem: str = "",
                    status: int = 200) -> web.Response:
        silences = self.desk.silences()
        incidents = self.desk.all_incidents()
        held = {s.silence_id: [i for i in incidents if i.silence_id == s.silence_id and i.is_active]
                for s in silences}
        parameters = sorted({p for s in self.registry.stations for p in s.parameters})
        return self.console.page(
            request, "silences.html", status=status, silences=silences, held=held,
            form=form or SilenceForm.parse(request.query), problem=problem, now=self.desk.clock(),
            stations=self.registry.stations, rivers=sorted({s.river for s in self.registry.stations}),
            parameters=parameters, routes=[r.value for r in Route], durations=DURATIONS,
        )

    async def _add(self, request: web.Request) -> web.StreamResponse:
        session = await self.console.form_session(request, act=True)
        form = SilenceForm.parse({k: str(v) for k, v in (await request.post()).items()})
        try:
            silence = form.silence(self.registry, self.desk.clock())
        except SilenceFormError as problem:
            shown = self.console.say(request, problem.key, problem.detail)
            return await self._list(request, form=form, problem=shown, status=400)
        record = await self.console.act(request, "add_silence", "", self.desk.add_silence(silence, session.user.shown),
                                        target_of=lambda r: r.silence_id, note=silence.describe())
        raise web.HTTPSeeOther(f"{self.console.prefix}/silences#{record.silence_id}")

    async def _expire(self, request: web.Request) -> web.StreamResponse:
        session = await self.console.form_session(request, act=True)
        silence_id = request.match_info["id"]
        await self.console.act(request, "expire_silence", silence_id,
                               self.desk.expire_silence(silence_id, session.user.shown))
        raise web.HTTPSeeOther(f"{self.console.prefix}/silences")
