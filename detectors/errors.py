"""Exceptions of the detectors package.

::

    RiverguardError                (riverguard.errors)
    └── DetectorError
        ├── StateError             a checkpoint in the changelog cannot be restored
        └── ReplayError            a replay/backtest input file is unusable (names file, row, column)
"""

from __future__ import annotations

from riverguard.errors import RiverguardError


class DetectorError(RiverguardError):
    """Base of the errors the detectors raise on purpose."""


class StateError(DetectorError):
    """A detector checkpoint could not be decoded (wrong format, version or station)."""


class ReplayError(DetectorError):
    """A replay input cannot be read; the message names the file, the row and the column."""
