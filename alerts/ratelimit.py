"""Rate limits with priority lanes (pure; time passed in, no clock of its own).

A storm of instrument faults must never hold back the one message that matters. So:

- every notification travels in a lane (:func:`lane_of`): **urgent** — the first page of a pollution
  incident at yellow or above (opened, reopened, or an escalation that pages someone new), every
  level raise, anything about a red incident — or **routine**, everything else;
- the buckets are per target *and route*: pollution and maintenance never share one, so a burst of
  maintenance messages cannot use up the tokens a pollution page needs;
- an urgent notification takes a token when there is one and is sent anyway when there is not;
  only a routine one is held back (and summarised later). A red incident is therefore held back by
  nothing but an explicit silence.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> bucket = TokenBucket(capacity=2, rate_per_s=1 / 60)
>>> [bucket.take(t0), bucket.take(t0), bucket.take(t0)]
[True, True, False]
>>> bucket.take(t0 + timedelta(seconds=59)), bucket.take(t0 + timedelta(seconds=61))
(False, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final

from alerts.routing import RoutingConfig
from alerts.targets import Target
from riverguard.incidents import Covered, Incident, NotificationReason, Route, WarningLevel

_FIRST_PAGES: Final = frozenset(
    {NotificationReason.OPENED, NotificationReason.REOPENED, NotificationReason.ESCALATION}
)


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


class Lane(StrEnum):
    URGENT = "urgent"  # never held back by a rate limit
    ROUTINE = "routine"  # held back in a storm, summarised when the bucket refills


def lane_of(incident: Incident, reason: NotificationReason) -> Lane:
    """The lane of a notification about ``incident`` sent for ``reason``.

    >>> from riverguard.incidents import PollutionKey
    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> i = Incident(incident_id="RG-1", key=PollutionKey(river="tuo", reach="r", pollutant="NH3N"),
    ...              route=Route.POLLUTION, river="tuo", reach="r", pollutant="NH3N", kind="limit_exceedance",
    ...              level=WarningLevel.YELLOW, opened_at=t, updated_at=t, last_active_at=t)
    >>> lane_of(i, NotificationReason.OPENED), lane_of(i, NotificationReason.REMINDER)
    (<Lane.URGENT: 'urgent'>, <Lane.ROUTINE: 'routine'>)
    >>> lane_of(i.evolve(level="red"), NotificationReason.REMINDER)
    <Lane.URGENT: 'urgent'>
    """
    if incident.route is not Route.POLLUTION:
        return Lane.URGENT if reason is NotificationReason.LEVEL_RAISED else Lane.ROUTINE
    if incident.level is WarningLevel.RED or reason is NotificationReason.LEVEL_RAISED:
        return Lane.URGENT
    if reason in _FIRST_PAGES and incident.level.rank >= WarningLevel.YELLOW.rank:
        return Lane.URGENT
    return Lane.ROUTINE


class Limiter:
    """Token buckets per (target, route), sized by the target's channel (``rate_limits`` in the routing file)."""

    def __init__(self, routing: RoutingConfig) -> None:
        self.routing = routing
        self._buckets: dict[tuple[str, Route], TokenBucket] = {}

    def use_routing(self, routing: RoutingConfig) -> None:
        if routing.rate_limits != self.routing.rate_limits:
            self._buckets.clear()  # new limits take effect with full buckets
        self.routing = routing

    def admit(self, target: Target, route: Route, lane: Lane, now: datetime) -> bool:
        """Whether to send now: a token taken, or an urgent notification (which takes one if it can)."""
        return self._bucket(target, route).take(now) or lane is Lane.URGENT

    def refilled(self, target: Target, route: Route, now: datetime) -> bool:
        """Take a token for a summary of what the bucket held back, if there is one."""
        return self._bucket(target, route).take(now)

    def _bucket(self, target: Target, route: Route) -> TokenBucket:
        key = (target.target_id, route)
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self.routing.rate_limit(target.channel)
            bucket = self._buckets[key] = TokenBucket(limit.burst, limit.per_hour / 3600)
        return bucket


def most_severe_first(covered: Iterable[Covered]) -> tuple[Covered, ...]:
    """A summary's order: highest level first, then the incident opened first.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> def c(i: str, level: str) -> Covered:
    ...     return Covered(incident_id=i, route="pollution", level=level, status="open", river="tuo", station="s",
    ...                    subject=("NH3N",), opened_at=t)
    >>> [x.incident_id for x in most_severe_first([c("a", "blue"), c("b", "orange"), c("c", "yellow")])]
    ['b', 'c', 'a']
    """
    return tuple(sorted(covered, key=lambda c: (-c.level.rank, c.opened_at, c.incident_id)))
