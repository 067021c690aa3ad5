"""One data logger's TCP connection to the gateway, as a pure state machine: bytes and time in,
effects out (what to write back, what to route or reject, when to close). The gateway
(:mod:`ingest.gateway`) carries the effects out; tests drive it without sockets.

What a connection may do:

- Its first frame with a known MN and the right PW (the station's secret) binds the connection to
  that station; every later frame must carry the same MN and the PW, or it is rejected.
- Data uploads go to the router (the same as MQTT payloads: codecs, fast path, registry, DLQ) on
  the station's topic; the 9014 data answer a frame asks for is written only once Kafka has it.
- 1013 (clock calibration request) is answered with 9013 and asks for the clock to be set; 9011,
  9012 and the 3015 upload answer the gateway's own commands; a platform's request coming from a
  logger is refused with 9011.
- Junk, frames that fail their length or CRC, oversize frames, a frame that takes longer than
  ``frame_timeout`` to arrive (slow sender), and silence beyond ``idle_timeout`` are rejected or
  close the connection; ``max_bad_frames`` rejections in a row close it too. Every rejected byte
  goes to the DLQ with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ingest.codecs import DATA_COMMANDS, TopicPattern, parse_local_time
from ingest.exchange import CLOCK_REQUEST, RETAIN_SAMPLE, Kind, QnRtn, answer_to, kind_of, request_answer
from ingest.framing import FrameReader
from ingest.hj212 import Frame, parse_frame
from riverguard.errors import PayloadError
from riverguard.stations import Station, StationRegistry, StationSecrets

__all__ = [
    "Answer", "Bind", "ClockOff", "Close", "Effect", "Limits", "Reject", "Route", "Send", "Session",
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int
    idle_timeout: timedelta
    frame_timeout: timedelta
    max_bad_frames: int
    clock_tolerance: timedelta


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes to write to the data logger now."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Route:
    """A frame for the router, on ``topic``; ``reply`` is written once Kafka has its records."""

    raw: bytes
    topic: str
    reply: bytes | None


@dataclass(frozen=True, slots=True)
class Reject:
    """Bytes for the DLQ with the reason."""

    raw: bytes
    error: PayloadError


@dataclass(frozen=True, slots=True)
class Bind:
    """The connection is now ``station``'s (``st``: the system code its frames carry)."""

    station: Station
    st: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A frame answering one of the gateway's commands (9011, 9012, the 3015 upload)."""

    station_id: str
    frame: Frame


@dataclass(frozen=True, slots=True)
class ClockOff:
    """The station's clock should be set: ``skew`` ahead (negative: behind), or None when the
    logger asked for it (1013)."""

    station_id: str
    skew: timedelta | None


@dataclass(frozen=True, slots=True)
class Close:
    reason: str  # the riverguard_hj212_disconnects_total label


Effect = Send | Route | Reject | Bind | Answer | ClockOff | Close
#: Why a connection was closed by the gateway (metric labels).
IDLE: Final = "idle"
SLOW_SENDER: Final = "slow_sender"
OVERSIZE: Final = "oversize"
BAD_FRAMES: Final = "bad_frames"


class Session:
    def __init__(
        self,
        registry: StationRegistry,
        secrets: StationSecrets,
        limits: Limits,
        topics: TopicPattern,
        now: datetime,
    ) -> None:
        self.registry = registry
        self.secrets = secrets
        self.limits = limits
        self.topics = topics
        self.station: Station | None = None
        self.closed: str | None = None
        self._reader = FrameReader(limits.max_frame_bytes)
        self._last_byte_at = now
        self._partial_since: datetime | None = None
        self._bad_in_a_row = 0
        self._topic = ""

    def receive(self, data: bytes, now: datetime) -> list[Effect]:
        """Effects of the bytes one read delivered."""
        if self.closed:
            return []
        self._last_byte_at = now
        effects: list[Effect] = []
        for piece in self._reader.feed(data):
            if piece.kind == "frame":
                effects += self._frame(piece.raw, now)
            elif piece.kind == "junk":
                effects += self._reject(piece.raw, PayloadError("hj212_frame", _junk_reason(piece.raw)))
            else:
                error = PayloadError("hj212_oversize", f"no frame end within {self.limits.max_frame_bytes} bytes")
                effects += [Reject(piece.raw, error), *self._close(OVERSIZE)]
            if self.closed:
                break
        self._partial_since = (self._partial_since or now) if self._reader.pending else None
        return effects

    def outcome(self, rejected: bool) -> list[Effect]:
        """Count what the router made of a routed frame: rejections in a row close the connection."""
        if not rejected:
            self._bad_in_a_row = 0
            return []
        return self._bad()

    def tick(self, now: datetime) -> list[Effect]:
        """Timeouts: a frame that is taking too long to arrive, or a silent connection."""
        if self.closed:
            return []
        if self._partial_since is not None and now - self._partial_since > self.limits.frame_timeout:
            seconds = self.limits.frame_timeout.total_seconds()
            error = PayloadError("hj212_slow_sender", f"a frame did not arrive whole within {seconds:g} s")
            return [Reject(self._reader.drain(), error), *self._close(SLOW_SENDER)]
        if now - self._last_byte_at > self.limits.idle_timeout:
            return self._close(IDLE)
        return []

    def _frame(self, raw: bytes, now: datetime) -> list[Effect]:
        try:
            # The head decides; a data frame's values are the router's to read.
            frame = parse_frame(raw, with_cp=False)
        except PayloadError as invalid:
            return self._reject(raw, invalid)
        effects: list[Effect] = []
        if self.station is None:
            effects += self._bind(frame, raw)
            if self.station is None:
                return effects
        elif frame.mn != self.station.mn:
            error = PayloadError(
                "hj212_mn_mismatch", f"MN={frame.mn!r} on the connection of station {self.station.station_id} "
                f"(MN={self.station.mn}); one connection carries one station"
            )
            return self._refuse(frame, raw, error, QnRtn.BAD_MN)
        elif not self.secrets.matches(self.station.station_id, frame.pw):
            return self._refuse(frame, raw, _password_error(self.station), QnRtn.BAD_PW)
        station_id = self.station.station_id
        kind = kind_of(frame)
        if kind is Kind.ANSWER or (kind is Kind.UPLOAD and frame.cn == RETAIN_SAMPLE):
            reply = answer_to(frame)
            self._bad_in_a_row = 0
            return [*effects, *([Send(reply)] if reply else []), Answer(station_id, parse_frame(raw))]
        if kind is Kind.KEEPALIVE:
            self._bad_in_a_row = 0
            return effects
        if kind is Kind.NOTICE:
            self._bad_in_a_row = 0
            reply = answer_to(frame)
            clock = [ClockOff(station_id, None)] if frame.cn == CLOCK_REQUEST else []
            return [*effects, *([Send(reply)] if reply else []), *clock]
        if kind is Kind.REQUEST:
            error = PayloadError("hj212_command", f"CN={frame.cn} is not something a data logger sends the platform")
            return [*effects, *self._refuse(frame, raw, error, QnRtn.REFUSED)]
        # A frame that passed the connection's checks ends a run of bad ones; if the router
        # rejects it after all, :meth:`outcome` counts it.
        self._bad_in_a_row = 0
        effects.append(Route(raw, self._topic, answer_to(frame)))
        if frame.cn in DATA_COMMANDS:
            effects += self._clock(station_id, frame, now)
        return effects

    def _bind(self, frame: Frame, raw: bytes) -> list[Effect]:
        station = self.registry.by_mn.get(frame.mn)
        if station is None:
            error = PayloadError("unknown_station", f"MN={frame.mn!r} is not in the station registry")
            return self._refuse(frame, raw, error, QnRtn.BAD_MN)
        if not self.secrets.matches(station.station_id, frame.pw):
            return self._refuse(frame, raw, _password_error(station), QnRtn.BAD_PW)
        self.station = station
        self._topic = self.topics.format(station.river, station.station_id)
        return [Bind(station, frame.st or "21")]

    def _clock(self, station_id: str, frame: Frame, now: datetime) -> list[Effect]:
        # QN is when the logger sent the frame (DataTime may be an hour's or a day's start).
        if frame.qn is None or len(frame.qn) != 17:
            return []
        try:
            sent_at = parse_local_time(frame.qn, "QN")
        except PayloadError:
            return []
        skew = sent_at - now
        return [ClockOff(station_id, skew)] if abs(skew) > self.limits.clock_tolerance else []

    def _refuse(self, frame: Frame, raw: bytes, error: PayloadError, code: QnRtn) -> list[Effect]:
        reply = request_answer(frame, code)
        return [*([Send(reply)] if reply else []), *self._reject(raw, error)]

    def _reject(self, raw: bytes, error: PayloadError) -> list[Effect]:
        return [Reject(raw, error), *self._bad()]

    def _bad(self) -> list[Effect]:
        self._bad_in_a_row += 1
        return self._close(BAD_FRAMES) if self._bad_in_a_row >= self.limits.max_bad_frames else []

    def _close(self, reason: str) -> list[Effect]:
        if self.closed:
            return []
        self.closed = reason
        return [Close(reason)]


def _password_error(station: Station) -> PayloadError:
    # Never the PW itself: the reason ends up in the DLQ and in logs.
    return PayloadError("hj212_password", f"PW does not match the password of station {station.station_id}")


def _junk_reason(raw: bytes) -> str:
    return f"{len(raw)} bytes that are not a frame (frames start with '##'): {raw[:16]!r}"
