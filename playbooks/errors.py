"""Exceptions of the playbooks package.

::

    RiverguardError                (riverguard.errors)
    └── PlaybookError              a playbook cannot be built or written
        ├── NetworkError           a river network file is missing or invalid (names file, item, problem)
        └── UnknownFeatureError    a river, station or pollutant the network does not know
"""

from __future__ import annotations

from riverguard.errors import RiverguardError


class PlaybookError(RiverguardError):
    """Base of the errors raised by :mod:`playbooks`."""


class NetworkError(PlaybookError):
    """A river network file cannot be read or does not describe a valid river chain."""


class UnknownFeatureError(PlaybookError):
    """A river, station or pollutant that the loaded networks do not know."""
