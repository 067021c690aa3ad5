"""Reassembly of HJ 212 split packets (PNUM/PNO): the one piece of state in decoding.

Packets of one message share MN, QN and CN. The assembler keeps the parts of incomplete messages
with an opaque token per part (the bridge uses the MQTT message id, acknowledged only once the
whole message is durable), bounded in number and age: a message whose parts do not all arrive in
``max_age`` — or that is the oldest when more than ``max_pending`` are open — is given back as
expired, and the bridge sends each of its parts to the DLQ with ``split_incomplete``.

>>> from datetime import datetime, timedelta, UTC
>>> from ingest.hj212 import Frame, split_frame
>>> whole = Frame(cn="2011", mn="M1", qn="1", cp=(("DataTime", "20240105103000"), ("w01001-Rtd", "7.6"),
...                                               ("w21003-Rtd", "0.4")))
>>> first, second = split_frame(whole, 2)
>>> assembler = SplitAssembler[str](max_age=timedelta(minutes=1))
>>> t0 = datetime(2024, 1, 5, tzinfo=UTC)
>>> assembler.add(first, b"raw1", "token1", t0) is None
True
>>> done = assembler.add(second, b"raw2", "token2", t0)
>>> done.frame.cp == whole.cp, done.tokens
(True, ('token1', 'token2'))
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from ingest.hj212 import Frame

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Part(Generic[T]):
    raw: bytes
    token: T
    source: str = ""  # the topic
    origin: str = ""  # where it came from, when not the topic (see routing.Message.source)


@dataclass(slots=True)
class _Pending(Generic[T]):
    first_seen: datetime
    pnum: int
    frames: dict[int, Frame] = field(default_factory=dict)
    parts: dict[int, list[Part[T]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assembled(Generic[T]):
    """A complete message: the merged frame and every packet received for it (duplicates included)."""

    frame: Frame
    parts: tuple[Part[T], ...]

    @property
    def tokens(self) -> tuple[T, ...]:
        return tuple(part.token for part in self.parts)


@dataclass(frozen=True, slots=True)
class Expired(Generic[T]):
    """An incomplete message given up on: its parts, for the DLQ."""

    key: tuple[str, str, str]
    pnum: int
    received: tuple[int, ...]
    parts: tuple[Part[T], ...]


class SplitAssembler(Generic[T]):
    def __init__(self, *, max_age: timedelta = timedelta(minutes=5), max_pending: int = 1000) -> None:
        self.max_age = max_age
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str, str], _Pending[T]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, frame: Frame, raw: bytes, token: T, now: datetime, source: str = "", origin: str = ""
    ) -> Assembled[T] | None:
        """Keep one packet; return the whole message when its last packet arrived."""
        assert frame.pnum is not None
        assert frame.pno is not None
        key = (frame.mn, frame.qn or "", frame.cn)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(first_seen=now, pnum=frame.pnum)
        # A re-sent packet replaces the earlier copy; both tokens are acknowledged together.
        pending.frames[frame.pno] = frame
        pending.parts.setdefault(frame.pno, []).append(Part(raw, token, source, origin))
        if not all(number in pending.frames for number in range(1, pending.pnum + 1)):
            return None
        del self._pending[key]
        return _merge(pending)

    def expire(self, now: datetime) -> list[Expired[T]]:
        """Give up on messages older than ``max_age`` and on the oldest beyond ``max_pending``."""
        expired = [key for key, p in self._pending.items() if now - p.first_seen >= self.max_age]
        overflow = len(self._pending) - len(expired) - self.max_pending
        if overflow > 0:
            remaining = sorted((p.first_seen, key) for key, p in self._pending.items() if key not in expired)
            expired += [key for _, key in remaining[:overflow]]
        return [self._expired(key) for key in expired]

    def _expired(self, key: tuple[str, str, str]) -> Expired[T]:
        pending = self._pending.pop(key)
        parts = tuple(part for number in sorted(pending.parts) for part in pending.parts[number])
        return Expired(key, pending.pnum, tuple(sorted(pending.frames)), parts)


def _merge(pending: _Pending[T]) -> Assembled[T]:
    frames = [pending.frames[number] for number in range(1, pending.pnum + 1)]
    seen: set[str] = set()
    cp: list[tuple[str, str]] = []
    for frame in frames:
        for key, value in frame.cp:
            if "-" in key or key not in seen:  # DataTime and the like repeat in every packet
                cp.append((key, value))
                seen.add(key)
    parts = tuple(part for number in sorted(pending.parts) for part in pending.parts[number])
    return Assembled(replace(frames[0], cp=tuple(cp), pnum=None, pno=None), parts)
