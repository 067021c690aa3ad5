"""Event logic: noisy per-reading verdicts in, a few event-level transitions out.

An :class:`EventLatch` opens when ``k`` of the last ``n`` readings fire, stays open while the
score holds above a lower threshold (hysteresis) and closes after ``close_after`` quiet readings
in a row, so one spill yields one event: onset, a few updates, cleared.

>>> from detectors.config import Persistence
>>> latch = EventLatch(Persistence(k=2, n=3, close_after=2))
>>> [latch.step(firing=f, holding=f) for f in (True, False, True, True, False, False)]
[None, None, 'onset', None, None, 'cleared']
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from detectors.config import Persistence
from detectors.state import LatchState

Transition = Literal["onset", "cleared"]


class EventLatch:
    """k-of-n open, hysteresis close. Pure and tiny, so calibration can replay it on scores."""

    __slots__ = ("_bits", "_quiet", "active", "k", "mask", "quiet_needed")

    def __init__(self, persistence: Persistence) -> None:
        self.k = persistence.k
        self.mask = (1 << persistence.n) - 1
        self.quiet_needed = persistence.close_after
        self._bits = 0
        self._quiet = 0
        self.active = False

    def snapshot(self) -> LatchState:
        return LatchState(k=self.k, n=self.mask.bit_length(), close_after=self.quiet_needed, bits=self._bits,
                          quiet=self._quiet, active=self.active)

    @classmethod
    def restore(cls, state: LatchState) -> EventLatch:
        """The latch a snapshot describes (its own persistence, even if the tuning changed since)."""
        latch = cls(Persistence(k=state.k, n=state.n, close_after=state.close_after))
        latch._bits = state.bits & latch.mask
        latch._quiet = state.quiet
        latch.active = state.active
        return latch

    @property
    def idle(self) -> bool:
        """Closed with nothing in its window: a non-firing reading cannot change it."""
        return not self.active and self._bits == 0

    def step(self, *, firing: bool, holding: bool) -> Transition | None:
        """Feed one reading's verdict; ``holding`` is the lower bar that keeps an open event open."""
        self._bits = ((self._bits << 1) | firing) & self.mask
        if not self.active:
            if firing and self._bits.bit_count() >= self.k:
                self.active = True
                self._quiet = 0
                return "onset"
            return None
        if holding or firing:
            self._quiet = 0
            return None
        self._quiet += 1
        if self._quiet >= self.quiet_needed:
            self.active = False
            self._bits = 0
            return "cleared"
        return None


def event_id(station_id: str, kind: str, parameters: tuple[str, ...], onset: datetime) -> str:
    """Stable id of an event: the same station, kind, parameters and onset give the same id,
    so a re-delivered reading re-creates the same detection instead of a duplicate.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
    >>> event_id("tuo-a", "pollution_spike", ("NH3N",), t) == event_id("tuo-a", "pollution_spike", ("NH3N",), t)
    True
    """
    text = f"{station_id}|{kind}|{','.join(sorted(parameters))}|{onset.isoformat()}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:20]
