"""Cut a data logger's TCP byte stream into HJ 212 frames (pure: feed it what the socket read).

Frames end with ``\\r\\n`` (HJ 212-2017 §6.3, 包尾) and start with ``##``; reads split them anywhere.
A logger that leaves out the ``\\r\\n`` is still understood when the next frame follows where
the length field says. Bytes before a ``##`` are junk, handed out as one piece per read so the
gateway can reject them with a reason. A frame that grows past ``max_frame_bytes`` without ending
is handed out once as oversize and the rest of it is skipped up to its ``\\r\\n``.

>>> reader = FrameReader(max_frame_bytes=100)
>>> reader.feed(b"##0007CP=&&&&0000\\r\\n##00")
[Piece(kind='frame', raw=b'##0007CP=&&&&0000\\r\\n')]
>>> reader.pending
4
>>> reader.feed(b"07CP=&&&&0000\\r\\nnoise\\r\\n##0007CP=&&&&0000##0007CP=&&&&0000\\r\\n")
[Piece(kind='frame', raw=b'##0007CP=&&&&0000\\r\\n'), Piece(kind='junk', raw=b'noise\\r\\n'), \
Piece(kind='frame', raw=b'##0007CP=&&&&0000'), Piece(kind='frame', raw=b'##0007CP=&&&&0000\\r\\n')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

#: The most a frame can hold: the length field has 4 digits (9999), plus ## + length + CRC + CRLF.
LARGEST_FRAME: Final = 2 + 4 + 9999 + 4 + 2
_START: Final = re.compile(rb"##[0-9]{4}")
_BLANK: Final = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class Piece:
    kind: Literal["frame", "junk", "oversize"]
    raw: bytes


class FrameReader:
    def __init__(self, max_frame_bytes: int = LARGEST_FRAME) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._skipping = False  # inside an oversize frame: drop bytes up to its \r\n

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held back (a slow sender's, or the rest of a read)."""
        return len(self._buffer)

    def drain(self) -> bytes:
        """The unfinished bytes held back, handed out (a connection giving up on them)."""
        held = bytes(self._buffer)
        self._buffer.clear()
        return held

    def feed(self, data: bytes) -> list[Piece]:
        buffer = self._buffer
        buffer += data
        pieces: list[Piece] = []
        while buffer:
            if self._skipping:
                end = buffer.find(b"\r\n")
                if end < 0:
                    del buffer[: len(buffer) - 1]  # keep a trailing \r
                    break
                del buffer[: end + 2]
                self._skipping = False
                continue
            if not buffer.startswith(b"##"):
                if not self._junk(pieces):
                    break
                continue
            piece = self._frame()
            if piece is None:
                break
            pieces.append(piece)
        return pieces

    def _junk(self, pieces: list[Piece]) -> bool:
        """Hand out the bytes before the next ``##``; False when they may still become one."""
        buffer = self._buffer
        start = buffer.find(b"##")
        if start < 0:
            start = len(buffer) - 1 if buffer.endswith(b"#") else len(buffer)
            if start == 0:
                return False
        junk = bytes(buffer[:start])
        del buffer[:start]
        if junk.strip(_BLANK):
            pieces.append(Piece("junk", junk))
        return True

    def _frame(self) -> Piece | None:
        buffer = self._buffer
        if _START.match(buffer):
            # Where the length field says the frame ends: at its \r\n, or (a logger that leaves the
            # \r\n out) at the next frame's start. A wrong length falls back to the \r\n below.
            size = 6 + int(buffer[2:6]) + 4
            ends_here = buffer.startswith(b"\r\n", size)
            if ends_here:
                size += 2
            if size <= self.max_frame_bytes and (ends_here or _START.match(buffer, size)):
                raw = bytes(buffer[:size])
                del buffer[:size]
                return Piece("frame", raw)
        end = buffer.find(b"\r\n", 0, self.max_frame_bytes + 1)
        if end >= 0 and end + 2 <= self.max_frame_bytes:
            raw = bytes(buffer[: end + 2])
            del buffer[: end + 2]
            return Piece("frame", raw)
        if len(buffer) < self.max_frame_bytes and end < 0:
            return None
        raw = bytes(buffer[: self.max_frame_bytes])
        self._skipping = end < 0 or end + 2 > self.max_frame_bytes
        del buffer[: self.max_frame_bytes]
        return Piece("oversize", raw)
