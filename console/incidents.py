"""The console's incident pages: the live list, its event stream, the incident page with its
playbook and checklist, and the duty officer's actions on an incident.

=====  ===================================  ==================================================
GET    /                                    the list (filters: river, level, status)
GET    /events                              server-sent events: every changed incident's row
GET    /incidents/{id}[?fragment=...]       the page; ``live`` / ``checklist``: a part of it
GET    /incidents/{id}/map.svg              the playbook's map (一图)
POST   /incidents/{id}/ack                  note
POST   /incidents/{id}/resolve              verdict (required), note; a resolved one: the verdict
POST   /incidents/{id}/actions/{key}        done=1|0: tick or untick one action of the checklist
=====  ===================================  ==================================================
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from aiohttp import web

from console.errors import Refused
from console.views import Filters, can_acknowledge, checklist, form_field, rivers, timeline
from riverguard.incidents import Verdict

if TYPE_CHECKING:
    from console.app import Console

HEARTBEAT_S: Final = 15.0
FRAGMENTS: Final = {"live": "incident_live.html", "checklist": "checklist.html"}


class IncidentPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.desk = console.desk

    def register(self, routes: web.UrlDispatcher) -> None:
        routes.add_get("/", self._list)
        routes.add_get("/events", self._events)
        routes.add_get("/incidents/{id}", self._incident)
        routes.add_get("/incidents/{id}/map.svg", self._map)
        routes.add_post("/incidents/{id}/ack", self._acknowledge)
        routes.add_post("/incidents/{id}/resolve", self._resolve)
        routes.add_post("/incidents/{id}/actions/{key}", self._tick)

    async def _list(self, request: web.Request) -> web.Response:
        filters = Filters.parse(request.query)
        everything = self.desk.all_incidents()
        shown = [i for i in everything if filters.keep(i)]
        return self.console.page(request, "incidents.html", incidents=shown, filters=filters,
                                 rivers=rivers(everything), now=self.desk.clock())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``incident`` with the changed incident's list row and fields."""
        feed = self.console.feed
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        self.console.secure_headers(response)
        await response.prepare(request)
        queue = feed.subscribe()
        try:
            await response.write(b"retry: 2000\n\n")
            while not feed.closed.is_set():
                try:
                    incident = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": heartbeat\n\n")
                    continue
                if incident is None:  # the feed closed: the service is stopping
                    break
                row = self.console.render(request, "row.html", i=incident, now=self.desk.clock())
                data = json.dumps({"id": incident.incident_id, "river": incident.river, "level": incident.level.value,
                                   "status": incident.status.value, "active": incident.is_active, "row": row},
                                  ensure_ascii=False)
                await response.write(f"event: incident\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            feed.unsubscribe(queue)
        return response

    async def _incident(self, request: web.Request) -> web.Response:
        incident = self.desk.incident(request.match_info["id"])
        playbook = self.console.playbooks.playbook(incident)
        items = checklist(playbook, incident)
        template = FRAGMENTS.get(request.query.get("fragment", ""), "incident.html")
        return self.console.page(
            request, template, i=incident, playbook=playbook, checklist=items,
            timeline=timeline(incident, {item.key: item.step.what_zh for item in items}),
            can_ack=can_acknowledge(incident), now=self.desk.clock(), verdicts=list(Verdict),
        )

    async def _map(self, request: web.Request) -> web.Response:
        incident = self.desk.incident(request.match_info["id"])
        svg = await self.console.playbooks.map_svg(incident)
        if svg is None:
            raise web.HTTPNotFound
        return web.Response(text=svg, content_type="image/svg+xml",
                            headers={"Cache-Control": "private, max-age=300"})

    async def _acknowledge(self, request: web.Request) -> web.StreamResponse:
        session = await self.console.form_session(request, act=True)
        incident_id = request.match_info["id"]
        note = form_field(await request.post(), "note", 500)
        await self.console.act(request, "acknowledge", incident_id,
                               self.desk.acknowledge(incident_id, session.user.shown, note), note=note)
        raise self._back(incident_id)

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        """Resolving asks what the incident was; the verdict can also be given (or corrected) later."""
        session = await self.console.form_session(request, act=True)
        incident_id = request.match_info["id"]
        form = await request.post()
        note = form_field(form, "note", 500)
        try:
            verdict = Verdict(form_field(form, "verdict", 32))
        except ValueError:
            raise Refused(400, "verdict_missing") from None
        await self.console.act(request, "resolve", incident_id,
                               self.desk.resolve(incident_id, session.user.shown, note, verdict),
                               note=note, verdict=verdict.value)
        raise self._back(incident_id)

    async def _tick(self, request: web.Request) -> web.StreamResponse:
        session = await self.console.form_session(request, act=True)
        incident_id, key = request.match_info["id"], request.match_info["key"]
        incident = self.desk.incident(incident_id)
        item = next((i for i in checklist(self.console.playbooks.playbook(incident), incident) if i.key == key), None)
        if item is None:
            raise web.HTTPNotFound
        done = form_field(await request.post(), "done", 1) == "1"
        await self.console.act(request, "tick_action" if done else "untick_action", incident_id,
                               self.desk.tick_action(incident_id, key, session.user.shown, done),
                               note=item.step.what_zh, action_id=key)
        raise self._back(incident_id, f"#action-{key}")

    def _back(self, incident_id: str, anchor: str = "") -> web.HTTPSeeOther:
        return web.HTTPSeeOther(f"{self.console.prefix}/incidents/{quote(incident_id)}{anchor}")

