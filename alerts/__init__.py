"""Alerts: incidents, warning levels, routing, escalation, silences, rate limits, Apprise dispatch.

The pure core is :class:`IncidentBook` (fed detections, ticks, operator actions and delivery
results; returns effects); :class:`AlertService` is the shell that runs it on a bus, sends
through Apprise and serves the incident API (``riverguard run alert``).
"""

from typing import TYPE_CHECKING, Final

from riverguard.lazy import lazy_exports

if TYPE_CHECKING:
    from alerts.api import IncidentApi
    from alerts.book import Context, Effects, IncidentBook, incident_id_for, main_pollutant
    from alerts.errors import AlertConfigError, AlertError, IncidentStateError, UnknownIncidentError
    from alerts.messages import Message, MessageContext, render
    from alerts.outbox import Outbox
    from alerts.playbook_source import NoPlaybooks, PlaybookSource, RiverPlaybooks
    from alerts.ratelimit import TokenBucket
    from alerts.routing import RoutingConfig, load_routing
    from alerts.service import AlertService
    from alerts.severity import SeverityRule
    from alerts.targets import Directory, Target, load_directory

__all__ = [
    "AlertConfigError",
    "AlertError",
    "AlertService",
    "Context",
    "Directory",
    "Effects",
    "IncidentApi",
    "IncidentBook",
    "IncidentStateError",
    "Message",
    "MessageContext",
    "NoPlaybooks",
    "Outbox",
    "PlaybookSource",
    "RiverPlaybooks",
    "RoutingConfig",
    "SeverityRule",
    "Target",
    "TokenBucket",
    "UnknownIncidentError",
    "incident_id_for",
    "load_directory",
    "load_routing",
    "main_pollutant",
    "render",
]

#: The alert service's consumer group (``riverguard run alert --group``).
GROUP_ID: Final = "riverguard-alerts"

__getattr__ = lazy_exports(__name__, __file__)
