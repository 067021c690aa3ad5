"""What the duty officers said about a station's alerts, and how it tunes that station.

An operator verdict (the console's confirmed pollution / instrument fault / false alarm / drill)
arrives per station and incident. Each false alarm and each instrument fault that was alerted as
pollution makes the station's pollution evidence weigh less; each confirmed pollution makes it
weigh more — a station that keeps crying wolf gets quieter, a confirmed pattern is caught earlier.
The weight is bounded and recomputed from the latest verdict per incident (a corrected verdict
replaces the first), counting only verdicts about the last ``memory_s`` of the station's time.

>>> from datetime import datetime, timedelta, timezone
>>> t = datetime(2024, 5, 1, tzinfo=timezone.utc)
>>> feedback = Feedback()
>>> for n in range(3):
...     feedback.learn(f"RG-{n}", OperatorVerdict.FALSE_ALARM, t, t + timedelta(hours=1))
>>> round(feedback.weight(t + timedelta(days=1)), 3)
0.614
>>> feedback.learn("RG-2", OperatorVerdict.CONFIRMED_POLLUTION, t, t + timedelta(hours=1))
>>> round(feedback.weight(t + timedelta(days=1)), 3)
0.795
>>> feedback.weight(t + timedelta(days=400))
1.0
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from detectors.state import VerdictState
from riverguard.incidents import Verdict

#: How much one verdict moves the weight, and the bounds of the weight.
_QUIETER: Final = 0.85
_LOUDER: Final = 1.1
_BOUNDS: Final = (0.5, 1.5)
#: Verdicts kept per station (the latest incidents); older ones no longer count.
_KEPT: Final = 200


#: The console's verdicts on an incident: the incidents' own (one enum, one set of values).
OperatorVerdict = Verdict

_FACTOR: Final = {
    OperatorVerdict.CONFIRMED_POLLUTION: _LOUDER,
    OperatorVerdict.INSTRUMENT_FAULT: _QUIETER,
    OperatorVerdict.FALSE_ALARM: _QUIETER,
    OperatorVerdict.DRILL: 1.0,
}


class Feedback:
    """The verdicts of one station, latest per incident label."""

    def __init__(self, memory_s: float = 90 * 86400.0) -> None:
        self.memory = timedelta(seconds=memory_s)
        self.verdicts: dict[str, tuple[OperatorVerdict, datetime, datetime]] = {}
        #: The weight and until when it holds (the next verdict to fall out of memory): read on
        #: every reading, recomputed only when a verdict arrives or expires.
        self._cached: tuple[float, datetime] | None = None

    def learn(self, label: str, verdict: OperatorVerdict, start: datetime, end: datetime) -> None:
        """Record (or correct) the verdict on one incident of this station, over ``start``..``end``."""
        self.verdicts.pop(label, None)
        self.verdicts[label] = (verdict, start, end)
        while len(self.verdicts) > _KEPT:
            del self.verdicts[next(iter(self.verdicts))]
        self._cached = None

    def weight(self, now: datetime) -> float:
        """What the station's pollution evidence is multiplied by at ``now`` (1 without verdicts)."""
        cached = self._cached
        if cached is not None and now <= cached[1]:
            return cached[0]
        weight = 1.0
        since = now - self.memory
        expiry = datetime.max.replace(tzinfo=now.tzinfo)
        for verdict, _, end in self.verdicts.values():
            if end >= since:
                weight *= _FACTOR[verdict]
                expiry = min(expiry, end + self.memory)
        low, high = _BOUNDS
        weight = min(high, max(low, weight))
        self._cached = (weight, expiry)
        return weight

    def snapshot(self) -> list[VerdictState]:
        return [VerdictState(label=label, verdict=verdict.value, start=start, end=end)
                for label, (verdict, start, end) in self.verdicts.items()]

    def restore(self, verdicts: list[VerdictState]) -> None:
        self.verdicts = {v.label: (OperatorVerdict(v.verdict), v.start, v.end) for v in verdicts}
        self._cached = None
