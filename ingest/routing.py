"""The pure step of the bridge: one MQTT message → Kafka records + the messages they settle.

No I/O here: the bridge (``ingest.bridge``), the tests and the benchmark feed :class:`Message`
values and get :class:`Routed` values back. A message becomes either readings for
``telemetry.readings`` (key = station id, so a station's readings stay ordered on one partition)
or a :class:`~riverguard.models.DeadLetter` for ``telemetry.dlq`` — never nothing, except a
packet of an HJ 212 split message, which is held (unacknowledged) until its message is complete
or expires.

>>> from datetime import datetime, UTC
>>> from riverguard.stations import load_registry
>>> router = Router[int](load_registry(), readings_topic="r", dlq_topic="dlq")
>>> now = datetime(2024, 1, 5, tzinfo=UTC)
>>> [routed] = router.route(Message("stations/tuo/tuo-hongyuan/telemetry", b"{oops", now, token=7))
>>> routed.records[0].topic, routed.reasons, routed.tokens
('dlq', ('bad_json',), (7,))
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Generic, TypeVar

from ingest.assembler import SplitAssembler
from ingest.codecs import DEFAULT_TOPIC_PATTERN, Hj212Codec, JsonCodec, TopicPattern
from ingest.fastpath import fast_router
from ingest.hj212 import parse_frame
from riverguard.errors import PayloadError
from riverguard.models import DeadLetter, Reading, SourceFormat, encode
from riverguard.stage import Outgoing
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

T = TypeVar("T")
#: How often :meth:`Router.route_all` looks for split messages that will not complete.
EXPIRY_INTERVAL: Final = timedelta(seconds=1)
#: How far a reading may be dated after its arrival. Clocks of data loggers drift by minutes; a
#: reading hours ahead is a clock or time-zone fault (Beijing time sent as UTC is 8 h ahead), and
#: the detectors take event time from the readings: one such reading would make every other
#: station of its partition look silent.
FUTURE_TOLERANCE: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Message(Generic[T]):
    """An MQTT message as received; ``token`` identifies it for the acknowledgement.

    ``source`` names where it came from in a dead letter when that is not the topic (the HJ 212
    gateway routes a station's frames on the station's topic, and names the TCP peer)."""

    topic: str
    payload: bytes
    received_at: datetime
    token: T
    source: str = ""


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """The readings made from ``messages`` (one, or the packets of a split message), or the error."""

    readings: tuple[Reading, ...]
    messages: tuple[Message[T], ...]
    payload_format: SourceFormat
    error: PayloadError | None = None


@dataclass(frozen=True, slots=True)
class Routed(Generic[T]):
    """Records to produce, and the messages to acknowledge once all of them are acknowledged."""

    records: tuple[Outgoing, ...]
    tokens: tuple[T, ...]
    reasons: tuple[str, ...] = ()  # reason codes of the dead letters among the records


def sniff_format(payload: bytes) -> SourceFormat:
    """HJ 212 frames start with ``##``; everything else is taken for JSON."""
    return SourceFormat.HJ212 if payload.lstrip()[:2] == b"##" else SourceFormat.JSON


class Router(Generic[T]):
    def __init__(
        self,
        registry: StationRegistry,
        *,
        readings_topic: str,
        dlq_topic: str,
        topic_pattern: str = DEFAULT_TOPIC_PATTERN,
        split_max_age: timedelta = timedelta(minutes=5),
        split_max_pending: int = 1000,
        fast_path: bool = True,
    ) -> None:
        self.registry = registry
        self.readings_topic = readings_topic
        self.dlq_topic = dlq_topic
        self._pattern = TopicPattern(topic_pattern)
        self._json = JsonCodec(topic_pattern)
        self._hj212 = Hj212Codec(topic_pattern)
        self.assembler = SplitAssembler[T](max_age=split_max_age, max_pending=split_max_pending)
        trace_prefixes = uuid.uuid4().hex  # one half for each path's own counter
        self._trace_prefix = trace_prefixes[:16]
        self._fast = fast_router(
            registry, self._pattern, future_tolerance_s=FUTURE_TOLERANCE.total_seconds(),
            trace_prefix=trace_prefixes[16:],
        ) if fast_path else None
        self._traced = 0
        self._expired_at: datetime | None = None

    def route(self, message: Message[T]) -> list[Routed[T]]:
        """What to produce for ``message``; an empty list while a split message is incomplete.

        A valid single payload takes the native fast path (:mod:`ingest.fastpath`; ``fast_path=False``
        turns it off), everything else :meth:`decode`; both give the same record for what the fast
        path accepts.
        """
        fast = None if self._fast is None else self._fast.route(
            message.payload, message.topic, message.received_at.timestamp()
        )
        if fast is not None:
            key, record = fast
            return [Routed((Outgoing(self.readings_topic, record, key=key),), (message.token,))]
        return [self._routed(outcome) for outcome in self.decode(message)]

    def route_all(self, messages: Iterable[Message[T]], now: datetime) -> list[Routed[T]]:
        """What to produce for ``messages`` and, at most once per :data:`EXPIRY_INTERVAL` of
        ``now``, for split messages given up on; call it also when nothing arrived."""
        out = [routed for message in messages for routed in self.route(message)]
        if self._expired_at is None:
            self._expired_at = now
        elif now - self._expired_at >= EXPIRY_INTERVAL:
            self._expired_at = now
            out += self.expire(now)
        return out

    def expire(self, now: datetime) -> list[Routed[T]]:
        """Dead letters for split messages that did not complete in time (call periodically)."""
        return [self._routed(outcome) for outcome in self.expire_decoded(now)]

    def decode(self, message: Message[T]) -> list[Decoded[T]]:
        """The readings in ``message`` or why it was rejected (several outcomes when it completes
        a split message and an older one expires at the same time)."""
        return [_dated_in_time(outcome, message.received_at) for outcome in self._decode(message)]

    def _decode(self, message: Message[T]) -> list[Decoded[T]]:
        payload_format = sniff_format(message.payload)
        try:
            if payload_format is SourceFormat.JSON:
                readings = self._json.decode(message.payload, topic=message.topic, registry=self.registry)
                return [Decoded(tuple(readings), (message,), payload_format)]
            return self._decode_hj212(message)
        except PayloadError as exc:
            return [Decoded((), (message,), payload_format, exc)]
        except Exception as exc:
            # A codec bug must not take the bridge down or lose the payload: DLQ it, loudly.
            log.exception("unexpected error decoding a payload from %s; sent to the DLQ", message.topic)
            error = PayloadError("internal", f"{type(exc).__name__}: {exc}")
            return [Decoded((), (message,), payload_format, error)]

    def _decode_hj212(self, message: Message[T]) -> list[Decoded[T]]:
        frame = parse_frame(message.payload.strip())
        hj212 = SourceFormat.HJ212
        if not frame.is_split:
            readings = self._hj212.readings(frame, topic=message.topic, registry=self.registry)
            return [Decoded(tuple(readings), (message,), hj212)]
        assert frame.pnum is not None
        assert frame.pno is not None
        if frame.pno > frame.pnum:
            raise PayloadError("hj212_frame", f"PNO={frame.pno} is beyond PNUM={frame.pnum}")
        assembled = self.assembler.add(
            frame, message.payload, message.token, message.received_at, message.topic, message.source
        )
        out = self.expire_decoded(message.received_at)
        if assembled is None:
            return out
        parts = tuple(Message(p.source, p.raw, message.received_at, p.token, p.origin) for p in assembled.parts)
        try:
            readings = self._hj212.readings(assembled.frame, topic=message.topic, registry=self.registry)
        except PayloadError as exc:
            return [*out, Decoded((), parts, hj212, exc)]  # every packet goes to the DLQ with the reason
        return [*out, Decoded(tuple(readings), parts, hj212)]

    def expire_decoded(self, now: datetime) -> list[Decoded[T]]:
        """Split messages given up on (too old, or too many open), as rejections."""
        out = []
        for item in self.assembler.expire(now):
            mn, qn, _ = item.key
            error = PayloadError(
                "split_incomplete", f"split message MN={mn} QN={qn}: got packets {list(item.received)} of {item.pnum}"
            )
            parts = tuple(Message(part.source, part.raw, now, part.token, part.origin) for part in item.parts)
            out.append(Decoded((), parts, SourceFormat.HJ212, error))
        return out

    def _trace_id(self) -> str:
        # uuid4 per record costs an os.urandom call, a bottleneck at thousands of messages/s;
        # a random per-process prefix and a counter are as unique.
        self._traced += 1
        return f"{self._trace_prefix}{self._traced:016x}"

    def reject(self, message: Message[T], error: PayloadError, payload_format: SourceFormat) -> Routed[T]:
        """The dead letter of a payload a transport rejected itself (the gateway: a wrong PW)."""
        return self._routed(Decoded((), (message,), payload_format, error))

    def _routed(self, outcome: Decoded[T]) -> Routed[T]:
        tokens = tuple(m.token for m in outcome.messages)
        if outcome.error is None:
            records = tuple(
                Outgoing(self.readings_topic, encode(r, trace_id=self._trace_id()), key=r.station_id.encode())
                for r in outcome.readings
            )
            return Routed(records, tokens)
        dead = []
        for message in outcome.messages:
            letter = DeadLetter(
                raw_b64=base64.b64encode(message.payload).decode("ascii"),
                source=message.source or message.topic,
                reason_code=outcome.error.code,
                reason=outcome.error.message,
                received_at=message.received_at,
                payload_format=outcome.payload_format.value,
            )
            key = self._pattern.station_of(message.topic).encode() or None
            dead.append(Outgoing(self.dlq_topic, encode(letter, trace_id=self._trace_id()), key=key))
        return Routed(tuple(dead), tokens, tuple(outcome.error.code for _ in dead))


def _dated_in_time(outcome: Decoded[T], received_at: datetime) -> Decoded[T]:
    """``outcome``, or its rejection when a reading is dated beyond :data:`FUTURE_TOLERANCE`."""
    latest = received_at + FUTURE_TOLERANCE
    for reading in outcome.readings:
        if reading.time > latest:
            ahead = reading.time - received_at
            error = PayloadError(
                "future_time",
                f"time={reading.time.isoformat()} is {ahead} after the message arrived "
                f"({received_at.isoformat(timespec='seconds')}); is the station clock or its time zone wrong?",
            )
            return Decoded((), outcome.messages, outcome.payload_format, error)
    return outcome
