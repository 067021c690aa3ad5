"""Token bucket per notification target, on the time the caller passes in (no clock of its own).

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> bucket = TokenBucket(capacity=2, rate_per_s=1 / 60)
>>> [bucket.take(t0), bucket.take(t0), bucket.take(t0)]
[True, True, False]
>>> bucket.take(t0 + timedelta(seconds=59)), bucket.take(t0 + timedelta(seconds=61))
(False, True)
"""

from __future__ import annotations

from datetime import datetime


class TokenBucket:
    def __init__(self, capacity: int, rate_per_s: float) -> None:
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self._tokens = float(capacity)
        self._at: datetime | None = None

    def take(self, now: datetime) -> bool:
        """Take one token if there is one; time never runs backwards for the bucket."""
        if self._at is not None and now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at).total_seconds() * self.rate_per_s)
        if self._at is None or now > self._at:
            self._at = now
        if self._tokens >= 1 - 1e-9:  # refills are fractions of a token; forgive float rounding
            self._tokens = max(0.0, self._tokens - 1)
            return True
        return False
