"""The silences page's form: what a duty officer typed → a :class:`~riverguard.incidents.Silence`
(pure: the station registry and the time are passed in), or the field that is wrong.

A console silence lasts at most :data:`LONGEST`: anything longer is a standing arrangement and
belongs in the routing file, where it is reviewed with the rest of the routing.

>>> from datetime import UTC, datetime
>>> from riverguard.stations import load_registry
>>> form = SilenceForm.parse({"river": "tuo", "pollutant": "NH3N", "duration": "4h", "reason": "演练"})
>>> silence = form.silence(load_registry(), datetime(2024, 7, 1, tzinfo=UTC))
>>> silence.river, silence.pollutant, silence.until.isoformat()
('tuo', 'NH3N', '2024-07-01T04:00:00+00:00')
>>> SilenceForm.parse({"river": "tuo", "duration": "90d", "reason": "x"}).silence(load_registry(), datetime.now(UTC))
Traceback (most recent call last):
...
console.silence_form.SilenceFormError: silence.too_long: 90d
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from riverguard.incidents import Route, Silence
from riverguard.stations import StationRegistry
from riverguard.timekeeping import parse_duration

LONGEST: Final = timedelta(days=30)
DURATIONS: Final = ("1h", "2h", "4h", "8h", "12h", "1d", "3d", "7d")  # offered; any duration up to LONGEST works
KINDS: Final = ("silence", "maintenance")


class SilenceFormError(ValueError):
    """A field of the form that is wrong: ``key`` names the message in the console's catalogue."""

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SilenceForm:
    """The form's fields as typed (shown again when one is wrong)."""

    kind: str = "silence"
    station: str = ""
    river: str = ""
    pollutant: str = ""
    route: str = ""
    duration: str = "4h"
    reason: str = ""

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> SilenceForm:
        def field(name: str, default: str = "", size: int = 64) -> str:
            return str(fields.get(name, default)).strip()[:size]

        return cls(kind=field("kind", "silence"), station=field("station"), river=field("river"),
                   pollutant=field("pollutant"), route=field("route"), duration=field("duration", "4h"),
                   reason=field("reason", size=300))

    def silence(self, registry: StationRegistry, now: datetime) -> Silence:
        """The silence from ``now`` on; SilenceFormError naming the first wrong field."""
        if self.kind not in KINDS:
            raise SilenceFormError("silence.bad_kind", self.kind)
        if not (self.station or self.river):
            raise SilenceFormError("silence.no_scope")
        station = registry.by_id.get(self.station) if self.station else None
        if self.station and station is None:
            raise SilenceFormError("silence.bad_station", self.station)
        if self.river and self.river not in {s.river for s in registry.stations}:
            raise SilenceFormError("silence.bad_river", self.river)
        if station is not None and self.river and station.river != self.river:
            raise SilenceFormError("silence.station_river", f"{self.station} / {self.river}")
        if self.route and self.route not in {r.value for r in Route}:
            raise SilenceFormError("silence.bad_route", self.route)
        try:
            duration = parse_duration(self.duration)
        except ValueError as exc:
            raise SilenceFormError("silence.bad_duration", self.duration) from exc
        if duration <= timedelta(0):
            raise SilenceFormError("silence.bad_duration", self.duration)
        if duration > LONGEST:
            raise SilenceFormError("silence.too_long", self.duration)
        if not self.reason:
            raise SilenceFormError("silence.no_reason")
        return Silence(
            kind="maintenance" if self.kind == "maintenance" else "silence",
            station=self.station or None, river=self.river or None, pollutant=self.pollutant or None,
            route=Route(self.route) if self.route else None, until=now + duration, reason=self.reason,
        )
