"""The seam to the playbooks package: what alerts needs from a 一河一策一图 playbook.

Alerts reads a playbook for the drinking-water intakes downstream (severity, SMS), the action list
(IM) and the HTML document and map (e-mail). :class:`PlaybookSource` is all the service calls;
:class:`NoPlaybooks` is the source when no river network is available (messages then omit those
parts and the incident's reach is the whole river).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from alerts.book import main_pollutant
from playbooks import Playbook, PlaybookError, RiverNetwork, build_playbook, load_networks
from playbooks import render_html as render_playbook_html
from riverguard.models import Detection
from riverguard.settings import Settings

if TYPE_CHECKING:
    from playbooks.geomap import PlaybookMap

log = logging.getLogger(__name__)


class ArrivalView(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def river_km(self) -> float: ...
    @property
    def leading_edge_at(self) -> datetime: ...
    @property
    def leading_edge_fast_at(self) -> datetime: ...
    @property
    def trailing_edge_at(self) -> datetime: ...


class ActionView(Protocol):
    @property
    def order(self) -> int: ...
    @property
    def what_zh(self) -> str: ...
    @property
    def what_en(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def who(self) -> str: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def apprise_tags(self) -> Sequence[str]: ...


class PlaybookView(Protocol):
    @property
    def station_name(self) -> str: ...
    @property
    def pollutant_class(self) -> object: ...
    @property
    def actions(self) -> Sequence[ActionView]: ...
    @property
    def station_km(self) -> float: ...
    @property
    def receptors(self) -> Sequence[ArrivalView]: ...


class PlaybookSource(Protocol):
    def for_detection(self, detection: Detection) -> PlaybookView | None:
        """The playbook for this detection, or None when its river has no network data."""
        ...

    def reaches_to(self, station_id: str, river: str) -> tuple[str, ...]:
        """Reach ids from the river's top down to the one the station sits on (empty: unknown)."""
        ...

    def render_html(self, playbook: PlaybookView, lang: str) -> str | None: ...

    def render_map_png(self, playbook: PlaybookView) -> bytes | None: ...


class NoPlaybooks:
    """No river network: no intake arrival, no action list, reach = river."""

    def for_detection(self, detection: Detection) -> PlaybookView | None:
        return None

    def reaches_to(self, station_id: str, river: str) -> tuple[str, ...]:
        return ()

    def render_html(self, playbook: PlaybookView, lang: str) -> str | None:
        return None

    def render_map_png(self, playbook: PlaybookView) -> bytes | None:
        return None


class RiverPlaybooks:
    """The real source: the playbooks package's river networks (shipped + ``settings.network_dir``).

    A detection whose station or pollutant the network does not know gets no playbook (logged
    once per station/pollutant) — the alert still goes out, without intake and actions.
    """

    def __init__(self, networks: Mapping[str, RiverNetwork]) -> None:
        self._networks = dict(networks)
        self._maps: dict[tuple[str, str, datetime], PlaybookMap] = {}
        self._warned: set[tuple[str, str]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> RiverPlaybooks:
        extra = sorted(settings.network_dir.glob("*.yaml")) if settings.network_dir else []
        return cls(load_networks(extra))

    def for_detection(self, detection: Detection) -> Playbook | None:
        network = self._networks.get(detection.river)
        if network is None:
            return None
        pollutant, value, _, _ = main_pollutant(detection)
        discharge = next(
            (r.values["discharge"].value for r in reversed(detection.readings) if "discharge" in r.values), None
        )
        try:
            return build_playbook(
                network, station_id=detection.station_id, pollutant=pollutant, at=detection.time,
                concentration=value, discharge_m3s=discharge or None,
            )
        except (PlaybookError, ValueError) as exc:
            if (detection.station_id, pollutant) not in self._warned:
                self._warned.add((detection.station_id, pollutant))
                log.warning("no playbook for %s/%s: %s", detection.station_id, pollutant, exc)
            return None

    def reaches_to(self, station_id: str, river: str) -> tuple[str, ...]:
        network = self._networks.get(river)
        if network is None:
            return ()
        try:
            reach = network.reach_at(network.station(station_id).river_km)
        except PlaybookError:
            return ()
        ids = [r.id for r in network.chain]
        return tuple(ids[: ids.index(reach.id) + 1])

    def render_html(self, playbook: PlaybookView, lang: str) -> str | None:
        if not isinstance(playbook, Playbook):
            return None
        drawn = self._map(playbook)
        return render_playbook_html(playbook, "en" if lang == "en" else "zh", map_svg=drawn.svg if drawn else None)

    def render_map_png(self, playbook: PlaybookView) -> bytes | None:
        drawn = self._map(playbook) if isinstance(playbook, Playbook) else None
        return drawn.png if drawn else None

    def _map(self, playbook: Playbook) -> PlaybookMap | None:
        key = (playbook.station_id, playbook.pollutant, playbook.at)
        if key not in self._maps:
            network = self._networks.get(playbook.river)
            if network is None:
                return None
            from playbooks.geomap import render_map  # matplotlib: loaded only when a map is drawn

            self._maps = {key: render_map(playbook, network)}  # one map in memory: the latest one asked for
        return self._maps[key]
