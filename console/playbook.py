"""The playbook part of the incident page: the playbook of the incident's latest detection and its
map (一图), drawn offline by the playbooks package and kept, so a page shows it without waiting.

Drawing a map takes matplotlib a few hundred milliseconds; the console draws it in a thread when
an incident first appears in the live feed, so the incident page usually finds it ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final, TypeVar

from alerts.playbook_source import PlaybookSource
from playbooks import Playbook, RiverNetwork
from riverguard.incidents import Incident

log = logging.getLogger(__name__)

V = TypeVar("V")
KEEP: Final = 32  # playbooks and maps held (the newest incidents' latest ones)


class PlaybookPanel:
    def __init__(self, source: PlaybookSource, networks: Mapping[str, RiverNetwork]) -> None:
        self._source = source
        self._networks = dict(networks)
        self._playbooks: OrderedDict[str, Playbook | None] = OrderedDict()
        self._maps: OrderedDict[str, str | None] = OrderedDict()
        self._drawing: dict[str, asyncio.Task[str | None]] = {}

    def playbook(self, incident: Incident) -> Playbook | None:
        detection = incident.latest_detection
        if detection is None or not detection.kind.is_pollution:
            return None
        key = f"{incident.incident_id}/{detection.detection_id}"
        if key not in self._playbooks:
            found = self._source.for_detection(detection)
            _keep(self._playbooks, key, found if isinstance(found, Playbook) else None)
        return self._playbooks[key]

    async def map_svg(self, incident: Incident) -> str | None:
        """The map, drawn in a thread once per playbook: a page asking while the feed's warm-up
        draws it waits for that drawing instead of starting a second one."""
        playbook = self.playbook(incident)
        network = self._networks.get(playbook.river) if playbook else None
        if playbook is None or network is None:
            return None
        key = f"{playbook.station_id}/{playbook.pollutant}/{playbook.at.isoformat()}"
        if key in self._maps:
            return self._maps[key]
        drawing = self._drawing.get(key)
        if drawing is None:
            drawing = asyncio.create_task(asyncio.to_thread(_draw, playbook, network))
            self._drawing[key] = drawing
        try:
            svg = await asyncio.shield(drawing)
        finally:
            self._drawing.pop(key, None)
        _keep(self._maps, key, svg)
        return svg

    @staticmethod
    def prepare() -> None:
        """Load the map renderer (matplotlib, ~1 s) before the first map is asked for."""
        import playbooks.geomap  # noqa: F401 - imported for its side effect: loaded once

    async def warm(self, incident: Incident) -> None:
        """Draw the incident's map in a thread, ahead of anyone opening its page."""
        try:
            await self.map_svg(incident)
        except Exception:  # a map that cannot be drawn must not stop the feed; the page says so
            log.exception("cannot draw the map of incident %s", incident.incident_id)


def _draw(playbook: Playbook, network: RiverNetwork) -> str:
    from playbooks.geomap import render_map  # matplotlib: loaded only when a map is drawn

    return render_map(playbook, network).svg


def _keep(cache: OrderedDict[str, V], key: str, value: V) -> None:
    cache[key] = value
    while len(cache) > KEEP:
        cache.popitem(last=False)
