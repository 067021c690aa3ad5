"""A flood and its recession, as one station's level and flow tell them.

A flood is level or flow above its usual range. While it lasts, turbidity rising and
conductivity falling are its own doing (:data:`detectors.quantities.FLOOD_RESPONSE`). After the
peak the water takes its time to return: suspended matter settles and salts come back as event
water drains, so both parameters walk back towards base flow — moves in either direction that a
spill score or a drift test would otherwise take for the water or the sensor. The recession is
taken to last as long as the flood did (its rise and high water): a hydrograph's falling limb is
at least as long as its rising limb, so this is the shortest recession that fits every flood,
and it needs no constant tuned to one river.

>>> window = FloodWindow()
>>> readings = [(False, 0), (True, 10), (True, 40), (False, 50), (False, 70), (False, 71)]
>>> [window.update(flooding, at_s).name for flooding, at_s in readings]
['NONE', 'HIGH', 'HIGH', 'RECEDING', 'RECEDING', 'NONE']
"""

from __future__ import annotations

from enum import IntEnum


class FloodPhase(IntEnum):
    NONE = 0
    #: Level or flow above its usual range now.
    HIGH = 1
    #: Back within range, for as long again as the flood lasted.
    RECEDING = 2


class FloodWindow:
    """When the station's current flood began, when its water was last high (epoch seconds), and
    whether it is high now."""

    __slots__ = ("high", "last", "since")

    def __init__(self, since: float | None = None, last: float | None = None, high: bool = False) -> None:
        self.since = since
        self.last = last
        self.high = high

    def update(self, flooding: bool, at_s: float) -> FloodPhase:
        """The phase at a reading's time, given whether its level or flow is high."""
        since, last = self.since, self.last
        receding = since is not None and last is not None and at_s - last <= last - since
        if flooding:
            if not (self.high or receding):
                self.since = at_s  # a new flood (a rise while the last one recedes is the same one)
            self.last, self.high = at_s, True
            return FloodPhase.HIGH
        self.high = False
        if receding:
            return FloodPhase.RECEDING
        self.since = self.last = None
        return FloodPhase.NONE
