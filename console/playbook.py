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

    def playbook(self, incident: Incident) -> Playbook | None:
        detection = incident.latest_detection
        if detection is None or not detection.kind.is_pollution:
            return None
        key = f"{incident.incident_id}/{detection.detection_id}"
        if key not in self._playbooks:
            found = self._source.for_detection(detection)
            _keep(self._playbooks, key, found if isinstance(found, Playbook) else None)
        return self._playbooks[key]

    def map_svg(self, incident: Incident) -> str | None:
        playbook = self.playbook(incident)
        network = self._networks.get(playbook.river) if playbook else None
        if playbook is None or network is None:
            return None
        key = f"{playbook.station_id}/{playbook.pollutant}/{playbook.at.isoformat()}"
        if key not in self._maps:
            from playbooks.geomap import render_map  # matplotlib: loaded only when a map is drawn

            _keep(self._maps, key, render_map(playbook, network).svg)
        return self._maps[key]

    async def warm(self, incident: Incident) -> None:
        """Draw the incident's map in a thread, ahead of anyone opening its page."""
        try:
            await asyncio.to_thread(self.map_svg, incident)
        except Exception:  # a map that cannot be drawn must not stop the feed; the page says so
            log.exception("cannot draw the map of incident %s", incident.incident_id)


def _keep(cache: OrderedDict[str, V], key: str, value: V) -> None:
    cache[key] = value
    while len(cache) > KEEP:
        cache.popitem(last=False)
