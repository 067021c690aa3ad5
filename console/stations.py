"""The console's station pages: the board (every station's last reading, health, sparklines and
how often it cried wolf) and one station's page with its verdict history.

=====  ===================================  ==================================================
GET    /stations                            the board
GET    /stations/{id}                       one station: its row, open faults, verdicts
=====  ===================================  ==================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from riverguard.verdicts import StationRecord, station_records

if TYPE_CHECKING:
    from console.app import Console


class StationPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.desk = console.desk
        self.board = console.board

    def register(self, routes: web.UrlDispatcher) -> None:
        routes.add_get("/stations", self._board)
        routes.add_get("/stations/{id}", self._station)

    async def _board(self, request: web.Request) -> web.Response:
        incidents = self.desk.all_incidents()
        now = self.desk.clock()
        rows, problem = await self.board.rows(incidents, now)
        return self.console.page(request, "stations.html", rows=rows, problem=problem, now=now,
                                 records=station_records(incidents))

    async def _station(self, request: web.Request) -> web.Response:
        station_id = request.match_info["id"]
        if station_id not in self.board.registry.by_id:
            raise web.HTTPNotFound
        incidents = self.desk.all_incidents()
        now = self.desk.clock()
        rows, problem = await self.board.rows(incidents, now)
        row = next(r for r in rows if r.station.station_id == station_id)
        record = station_records(incidents).get(station_id) or StationRecord.of(())
        seen = [i for i in incidents if station_id in (i.first_station, *i.stations)]
        return self.console.page(request, "station.html", row=row, problem=problem, now=now, record=record,
                                 incidents=sorted(seen, key=lambda i: i.opened_at, reverse=True))
