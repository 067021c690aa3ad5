"""Exceptions of the alert service.

::

    RiverguardError                     (riverguard.errors)
    ├── ConfigError
    │   └── AlertConfigError            bad routing file, severity rule or Apprise config entry
    └── AlertError
        ├── UnknownIncidentError        no incident with that id
        ├── IncidentStateError          e.g. acknowledging a resolved incident
        └── SilenceError                no such silence, or one the routing file owns
"""

from __future__ import annotations

from riverguard.errors import ConfigError, RiverguardError


class AlertConfigError(ConfigError):
    """A routing/severity/Apprise configuration is invalid; the message names the entry."""


class AlertError(RiverguardError):
    """An operation on incidents could not be done."""


class UnknownIncidentError(AlertError):
    def __init__(self, incident_id: str) -> None:
        super().__init__(f"no incident {incident_id!r}")
        self.incident_id = incident_id


class IncidentStateError(AlertError):
    """The incident is not in a state that allows the operation."""


class SilenceError(AlertError):
    """A silence that does not exist, or cannot be changed at runtime."""
