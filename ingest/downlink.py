"""Commands to stations' data loggers: which to send, when, and how each ended (pure, no I/O).

The book keeps, per station, the commands waiting for it and the one in flight (HJ 212 loggers
answer one request at a time). It is fed what happens — a command or an incident read from Kafka,
a station connecting or leaving, a clock found off, a frame answering a command, the time — and
returns effects: frames to write to a connected station, results to produce. Commands for an
offline station wait until they expire. A result read back from Kafka marks its command done, so
a restarted gateway does not send it again.

The exchange (HJ 212-2017 §6.5 and Appendix C, see :mod:`ingest.exchange`): the gateway sends a
request with Flag=5; the logger answers 9011 (QnRtn=1: will do; anything else: refused), may
upload what the request asked for under the same QN (3015: ``DataTime`` and ``VaseNo`` of the
retained sample), and ends with 9012 (ExeRtn=1: done; anything else: failed).

>>> from datetime import datetime, timedelta, UTC
>>> from pydantic import SecretStr
>>> from riverguard.stations import StationSecrets, load_registry
>>> registry = load_registry()
>>> book = CommandBook(registry, StationSecrets({"tuo-hongyuan": SecretStr("123456")}),
...                    answer_timeout=timedelta(minutes=2), clock_interval=timedelta(hours=1))
>>> t = datetime(2024, 5, 14, 2, 0, tzinfo=UTC)
>>> command = StationCommand(command_id="c1", station_id="tuo-hongyuan", kind=CommandKind.RETAIN_SAMPLE,
...                          issued_at=t, expires_at=t + timedelta(hours=1))
>>> book.add(command, t)
[]
>>> [sent] = book.online("tuo-hongyuan", "21", t)
>>> sent.data[6:48]
b'QN=20240514100000000;ST=21;CN=3015;PW=1234'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ingest.codecs import parse_local_time
from ingest.exchange import (
    EXECUTION_RESULT,
    REQUEST_ANSWER,
    RETAIN_SAMPLE,
    SET_CLOCK,
    TAKE_SAMPLE,
    TIME_FORMAT,
    ExeRtn,
    QnRtn,
    command,
    qn_of,
)
from ingest.hj212 import Frame
from riverguard.commands import CommandKind, CommandOutcome, CommandResult, StationCommand
from riverguard.errors import PayloadError
from riverguard.incidents import Incident, Route
from riverguard.parameters import PARAMETERS
from riverguard.stations import StationRegistry, StationSecrets
from riverguard.timekeeping import BEIJING

_CN: Final = {CommandKind.SET_CLOCK: SET_CLOCK, CommandKind.RETAIN_SAMPLE: RETAIN_SAMPLE,
              CommandKind.TAKE_SAMPLE: TAKE_SAMPLE}


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Write ``data`` (a command frame) to ``station_id``'s connection."""

    station_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Publish:
    """Produce ``result`` to the command results topic."""

    result: CommandResult


DownlinkEffect = Dispatch | Publish


@dataclass(slots=True)
class _InFlight:
    command: StationCommand
    qn: str
    sent_at: datetime
    bottle: int | None = None
    sampled_at: datetime | None = None


class CommandBook:
    def __init__(
        self,
        registry: StationRegistry,
        secrets: StationSecrets,
        *,
        answer_timeout: timedelta,
        clock_interval: timedelta,
        ttl: timedelta = timedelta(hours=1),
        retain_on_incident: bool = True,
    ) -> None:
        self.registry = registry
        self.secrets = secrets
        self.answer_timeout = answer_timeout
        self.clock_interval = clock_interval
        self.ttl = ttl
        self.retain_on_incident = retain_on_incident
        self._queued: dict[str, list[StationCommand]] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._done: set[str] = set()
        self._online: dict[str, str] = {}  # station id → the ST its frames carry
        self._clock_set_at: dict[str, datetime] = {}
        self._last_qn = ""

    def waiting(self, station_id: str) -> list[StationCommand]:
        """The commands queued for ``station_id`` (not the one in flight)."""
        return list(self._queued.get(station_id, ()))

    def add(self, command: StationCommand, now: datetime) -> list[DownlinkEffect]:
        """Queue ``command`` (once: a command id already queued, in flight or done is ignored)."""
        if command.command_id in self._done or self._known(command):
            return []
        if command.station_id not in self.registry.by_id:
            return [self._finish(command, CommandOutcome.REFUSED, now, detail="station not in the registry")]
        if command.expires_at <= now:
            return [self._finish(command, CommandOutcome.EXPIRED, now)]
        self._queued.setdefault(command.station_id, []).append(command)
        return self._next(command.station_id, now)

    def incident(self, incident: Incident, now: datetime) -> list[DownlinkEffect]:
        """Sample retention (超标留样) at every station of an active pollution incident."""
        if not self.retain_on_incident or incident.route is not Route.POLLUTION or not incident.is_active:
            return []
        effects: list[DownlinkEffect] = []
        for station_id in incident.stations or (incident.first_station,):
            if station_id not in self.registry.by_id:
                continue
            # From the incident's own times, so a replay derives the same command; one that would
            # have expired already (an old incident read at start) was never waited for.
            issued_at = incident.opened_at if station_id == incident.first_station else incident.updated_at
            if issued_at + self.ttl <= now:
                continue
            effects += self.add(StationCommand(
                command_id=f"{incident.incident_id}:{CommandKind.RETAIN_SAMPLE.value}:{station_id}",
                station_id=station_id, kind=CommandKind.RETAIN_SAMPLE, issued_at=issued_at,
                expires_at=issued_at + self.ttl, incident_id=incident.incident_id,
                reason=f"{incident.pollutant} pollution incident {incident.incident_id}",
            ), now)
        return effects

    def seen(self, result: CommandResult) -> None:
        """A result already produced (read back at start): its command is not sent again."""
        self._done.add(result.command_id)
        queued = self._queued.get(result.station_id, [])
        queued[:] = [c for c in queued if c.command_id != result.command_id]

    def online(self, station_id: str, st: str, now: datetime) -> list[DownlinkEffect]:
        self._online[station_id] = st
        return self._next(station_id, now)

    def offline(self, station_id: str, now: datetime) -> list[DownlinkEffect]:
        """The station's connection closed: a command in flight is unanswered."""
        self._online.pop(station_id, None)
        flight = self._in_flight.pop(station_id, None)
        if flight is None:
            return []
        return [self._finish(flight.command, CommandOutcome.UNANSWERED, now, detail="the connection closed")]

    def clock_off(self, station_id: str, skew: timedelta | None, now: datetime) -> list[DownlinkEffect]:
        """Set a station's clock (CN=1012) when it is off (``skew``) or the logger asked (None),
        at most once per ``clock_interval`` unless asked."""
        last = self._clock_set_at.get(station_id)
        if skew is not None and last is not None and now - last < self.clock_interval:
            return []
        self._clock_set_at[station_id] = now
        why = "the data logger asked (1013)" if skew is None else f"its clock is {_signed(skew)} off"
        stamp = now.astimezone(BEIJING).strftime("%Y%m%d%H%M%S%f")
        return self.add(StationCommand(
            command_id=f"clock:{station_id}:{stamp}", station_id=station_id,
            kind=CommandKind.SET_CLOCK, issued_at=now, expires_at=now + self.answer_timeout, reason=why,
        ), now)

    def answer(self, station_id: str, frame: Frame, now: datetime) -> list[DownlinkEffect]:
        """A frame answering the command in flight (matched by QN); others are ignored."""
        flight = self._in_flight.get(station_id)
        if flight is None or frame.qn != flight.qn:
            return []
        fields = dict(frame.cp)
        if frame.cn == REQUEST_ANSWER:
            code = _code(fields.get("QnRtn"))
            if code == QnRtn.READY:
                return []
            return self._end(station_id, CommandOutcome.REFUSED, now, code, f"QnRtn={fields.get('QnRtn')}")
        if frame.cn == EXECUTION_RESULT:
            code = _code(fields.get("ExeRtn"))
            outcome = CommandOutcome.EXECUTED if code == ExeRtn.SUCCESS else CommandOutcome.FAILED
            return self._end(station_id, outcome, now, code, f"ExeRtn={fields.get('ExeRtn')}")
        if frame.cn == RETAIN_SAMPLE:
            bottle = _code(fields.get("VaseNo"))
            flight.bottle = bottle
            try:
                flight.sampled_at = parse_local_time(fields.get("DataTime", ""), "DataTime")
            except PayloadError:
                flight.sampled_at = None
        return []

    def tick(self, now: datetime) -> list[DownlinkEffect]:
        """Commands that expired waiting, and commands in flight past the answer timeout."""
        effects: list[DownlinkEffect] = []
        for queued in self._queued.values():
            expired = [c for c in queued if c.expires_at <= now]
            if expired:
                queued[:] = [c for c in queued if c.expires_at > now]
                effects += [self._finish(c, CommandOutcome.EXPIRED, now) for c in expired]
        for station_id, flight in list(self._in_flight.items()):
            if now - flight.sent_at > self.answer_timeout:
                detail = f"no execution result within {self.answer_timeout.total_seconds():g} s"
                effects += self._end(station_id, CommandOutcome.UNANSWERED, now, None, detail)
        return effects

    def _known(self, command: StationCommand) -> bool:
        flight = self._in_flight.get(command.station_id)
        if flight is not None and flight.command.command_id == command.command_id:
            return True
        return any(c.command_id == command.command_id for c in self._queued.get(command.station_id, ()))

    def _end(
        self, station_id: str, outcome: CommandOutcome, now: datetime, code: int | None, detail: str
    ) -> list[DownlinkEffect]:
        flight = self._in_flight.pop(station_id)
        result = self._finish(flight.command, outcome, now, code=code, detail=detail, bottle=flight.bottle,
                              sampled_at=flight.sampled_at)
        return [result, *self._next(station_id, now)]

    def _finish(
        self, command: StationCommand, outcome: CommandOutcome, now: datetime, *, code: int | None = None,
        detail: str = "", bottle: int | None = None, sampled_at: datetime | None = None,
    ) -> Publish:
        self._done.add(command.command_id)
        station = self.registry.by_id.get(command.station_id)
        return Publish(CommandResult.of(
            command, outcome, at=now, code=code, bottle=bottle, sampled_at=sampled_at, detail=detail,
            station_name=station.section if station else None,
        ))

    def _next(self, station_id: str, now: datetime) -> list[DownlinkEffect]:
        """Send the station's next live command, when it is online and nothing is in flight."""
        st = self._online.get(station_id)
        queued = self._queued.get(station_id)
        if st is None or station_id in self._in_flight or not queued:
            return []
        effects: list[DownlinkEffect] = []
        while queued:
            next_command = queued.pop(0)
            if next_command.expires_at <= now:
                effects.append(self._finish(next_command, CommandOutcome.EXPIRED, now))
                continue
            qn = self._qn(now)
            self._in_flight[station_id] = _InFlight(next_command, qn, now)
            effects.append(Dispatch(station_id, self._frame(next_command, st, qn, now)))
            break
        return effects

    def _frame(self, order: StationCommand, st: str, qn: str, now: datetime) -> bytes:
        station = self.registry.by_id[order.station_id]
        cp: tuple[tuple[str, str], ...] = ()
        if order.kind is CommandKind.SET_CLOCK:
            cp = (("SystemTime", now.astimezone(BEIJING).strftime(TIME_FORMAT)),)
        elif order.kind is CommandKind.TAKE_SAMPLE and order.parameter is not None:
            spec = PARAMETERS.get(order.parameter)
            cp = (("PolId", spec.hj212_code if spec and spec.hj212_code else order.parameter),)
        password = self.secrets.password(order.station_id) or ""
        return command(qn=qn, st=st, cn=_CN[order.kind], pw=password, mn=station.mn, cp=cp)

    def _qn(self, now: datetime) -> str:
        # QN identifies one exchange: unique even for two commands within a millisecond.
        qn = qn_of(now.astimezone(BEIJING))
        if qn <= self._last_qn:
            qn = str(int(self._last_qn) + 1)
        self._last_qn = qn
        return qn


def _code(text: str | None) -> int | None:
    """A return code or bottle number (a few digits), or None."""
    return int(text) if text is not None and text.isascii() and text.isdigit() and len(text) <= 6 else None


def _signed(skew: timedelta) -> str:
    seconds = skew.total_seconds()
    return f"{abs(seconds):.0f} s {'ahead' if seconds > 0 else 'behind'}"
