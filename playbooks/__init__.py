"""Playbooks (一河一策一图): river networks, time of travel, action cards, maps and documents.

A pure library on top of the riverguard core (it imports nothing from ingest, detectors or
alerts): load a river network, build the playbook for an alert, render it.

>>> from datetime import datetime, timedelta, timezone
>>> from playbooks import build_playbook, load_network, render_sms
>>> network = load_network("jialing")
>>> pb = build_playbook(network, station_id="jialing-shangshipan", pollutant="Cd",
...                     at=datetime(2024, 7, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))))
>>> pb.pollutant_class.value
'heavy_metal'
>>> len(render_sms(pb)) <= 134
True
"""

from typing import TYPE_CHECKING

from riverguard.lazy import lazy_exports

if TYPE_CHECKING:
    from playbooks.cards import SAFETY_MARGIN
    from playbooks.correction import RevisedEta, revised_etas
    from playbooks.errors import NetworkError, PlaybookError, UnknownFeatureError
    from playbooks.export import FORMATS, playbook_stem, write_playbook
    from playbooks.geomap import PlaybookMap, render_map
    from playbooks.loader import SHIPPED_RIVERS, load_network, load_network_file, load_networks
    from playbooks.models import (
        ActionStep,
        DepartmentContact,
        Playbook,
        PlumeSpan,
        ReceptorArrival,
        ReleaseEstimate,
        StationCheck,
        StationObservation,
        StretchFit,
        SuspectedSource,
    )
    from playbooks.network import (
        Department,
        Depot,
        Intake,
        InterceptionPoint,
        Junction,
        Reach,
        RiskSource,
        RiverNetwork,
        StationSite,
    )
    from playbooks.playbook import DEFAULT_PULSE_H, MAP_HOURS, build_playbook
    from playbooks.pollutants import Pollutant, pollutant
    from playbooks.render import playbook_json, render_html, render_markdown, render_sms
    from playbooks.tracing import CleanStation, Trace, trace

__all__ = [
    "DEFAULT_PULSE_H",
    "FORMATS",
    "MAP_HOURS",
    "SAFETY_MARGIN",
    "SHIPPED_RIVERS",
    "ActionStep",
    "CleanStation",
    "Department",
    "DepartmentContact",
    "Depot",
    "Intake",
    "InterceptionPoint",
    "Junction",
    "NetworkError",
    "Playbook",
    "PlaybookError",
    "PlaybookMap",
    "PlumeSpan",
    "Pollutant",
    "Reach",
    "ReceptorArrival",
    "ReleaseEstimate",
    "RevisedEta",
    "RiskSource",
    "RiverNetwork",
    "StationCheck",
    "StationObservation",
    "StationSite",
    "StretchFit",
    "SuspectedSource",
    "Trace",
    "UnknownFeatureError",
    "build_playbook",
    "load_network",
    "load_network_file",
    "load_networks",
    "playbook_json",
    "playbook_stem",
    "pollutant",
    "render_html",
    "render_map",
    "render_markdown",
    "render_sms",
    "revised_etas",
    "trace",
    "write_playbook",
]

__getattr__ = lazy_exports(__name__, __file__)
