"""HJ 212-2017 frames: parse, verify, build (pure, no I/O).

A frame is ``##`` + 4 decimal digits (length of the data segment) + data segment + 4 hex
digits CRC + ``\\r\\n``. The CRC is the standard's own (not Modbus): over the data segment only,
``crc = 0xFFFF``; per byte ``crc = (crc >> 8) ^ byte`` then 8 reflected shifts with ``0xA001``.

We are lenient in what we accept (lower-case CRC, missing QN or Flag, any field order, a missing
``\\r\\n``) and strict in what we verify (length and CRC); every rejection is a
:class:`~riverguard.errors.PayloadError` with a stable code.

>>> frame = parse_frame(b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;"
...                     b"MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\\r\\n")
>>> frame.cn, frame.mn, frame.cp
('1062', '010000A8900016F000169DC0', (('RtdInterval', '30'),))
>>> data = b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
>>> f"{crc16(data):04X}"
'1C80'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Final

from ingest._fastpath import crc16 as _native_crc16
from riverguard.errors import PayloadError

MAX_DATA_LENGTH: Final = 9999  # four decimal digits
#: PNUM and PNO are numbers of 4 digits (HJ 212-2017 §6.3.2, Table 3: "PNUM=" and "PNO=" fields of
#: 9 and 8 characters). Longer ones are refused before int(), which gives up beyond 4300 digits.
PACKET_DIGITS: Final = 4
_TERMINATORS: Final = (b"\r\n", b"\n", b"")
_HEX: Final = re.compile(rb"^[0-9A-Fa-f]{4}$")
_DIGITS: Final = re.compile(rb"^[0-9]{4}$")


def crc16_bytewise(data: bytes) -> int:
    """The CRC one byte at a time, as the standard describes it (the reference for tests).

    >>> data = b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    >>> f"{crc16_bytewise(data):04X}"
    '1C80'
    """
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte  # the register's high byte, not all of it: this is not Modbus
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


#: The same CRC, in the native fast path's code (``native/src/hj212.rs``): a gateway computes it
#: for every frame it reads and every answer it writes, and Python needed ~20 µs for a 400-byte
#: frame. Tests hold it to :func:`crc16_bytewise`.
crc16: Final = _native_crc16


@dataclass(frozen=True, slots=True)
class Frame:
    """A verified frame's data segment, split into its fields.

    ``cp`` keeps the CP fields (``w21003-Rtd``, ``DataTime``, ...) in order as (key, value) pairs.
    """

    cn: str
    mn: str
    cp: tuple[tuple[str, str], ...]
    qn: str | None = None
    st: str | None = None
    pw: str | None = None
    flag: str | None = None
    pnum: int | None = None
    pno: int | None = None

    @property
    def is_split(self) -> bool:
        return self.pnum is not None and self.pnum > 1


def parse_frame(raw: bytes, *, with_cp: bool = True) -> Frame:
    """Verify header, length and CRC of one frame, then split its data segment into fields
    (``with_cp=False``: all but CP's, left empty, for a caller that needs the head only)."""
    if not raw.startswith(b"##"):
        raise PayloadError("hj212_frame", f"frame must start with '##', got {raw[:8]!r}")
    length_text = raw[2:6]
    if not _DIGITS.match(length_text):
        raise PayloadError("hj212_frame", f"length field must be 4 decimal digits, got {length_text!r}")
    length = int(length_text)
    body = raw[6:]
    for terminator in _TERMINATORS:
        if terminator and body.endswith(terminator):
            body = body[: -len(terminator)]
            break
    if len(body) != length + 4:
        raise PayloadError(
            "hj212_length",
            f"length field says {length} characters of data but the frame holds {len(body) - 4} before the CRC",
        )
    data, crc_text = body[:length], body[length:]
    if not _HEX.match(crc_text):
        raise PayloadError("hj212_crc", f"CRC must be 4 hex digits, got {crc_text!r}")
    expected = crc16(data)
    if int(crc_text, 16) != expected:
        raise PayloadError("hj212_crc", f"CRC {crc_text.decode()} does not match the data segment ({expected:04X})")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise PayloadError("hj212_frame", f"data segment has a non-ASCII byte at {exc.start}") from exc
    return _parse_segment(text, with_cp)


def _parse_segment(text: str, with_cp: bool = True) -> Frame:
    head, marker, rest = text.partition("CP=&&")
    if not marker or not rest.endswith("&&"):
        raise PayloadError("hj212_frame", "data segment has no CP=&&...&& field")
    fields: dict[str, str] = {}
    for part in head.split(";"):
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals:
            raise PayloadError("hj212_frame", f"data segment field {part!r} is not key=value")
        fields[key] = value
    for required in ("CN", "MN"):
        if not fields.get(required):
            raise PayloadError("hj212_frame", f"data segment has no {required}")
    pnum, pno = _int_field(fields, "PNUM"), _int_field(fields, "PNO")
    if pnum is not None and pnum > 1 and pno is None:
        raise PayloadError("hj212_frame", f"packet of a split message (PNUM={pnum}) has no PNO")
    return Frame(
        cn=fields["CN"],
        mn=fields["MN"],
        cp=_parse_cp(rest[:-2]) if with_cp else (),
        qn=fields.get("QN"),
        st=fields.get("ST"),
        pw=fields.get("PW"),
        flag=fields.get("Flag"),
        pnum=pnum,
        pno=pno,
    )


def _int_field(fields: dict[str, str], key: str) -> int | None:
    value = fields.get(key)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= PACKET_DIGITS) or int(value) < 1:
        shown = value if len(value) <= 20 else f"{value[:20]}… ({len(value)} characters)"
        raise PayloadError("hj212_frame", f"{key}={shown!r} is not a positive number of at most {PACKET_DIGITS} digits")
    return int(value)


def _parse_cp(cp: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in cp.split(";"):
        for field in item.split(","):
            if not field:
                continue
            key, equals, value = field.partition("=")
            if not equals or not key:
                raise PayloadError("hj212_frame", f"CP field {field!r} is not key=value")
            pairs.append((key, value))
    return tuple(pairs)


def build_frame(frame: Frame) -> bytes:
    """The wire bytes of ``frame``: header, length, data segment, upper-case CRC, ``\\r\\n``."""
    head = [("QN", frame.qn), ("ST", frame.st), ("CN", frame.cn), ("PW", frame.pw), ("MN", frame.mn)]
    head += [("Flag", frame.flag)]
    if frame.pnum is not None:
        head += [("PNUM", str(frame.pnum)), ("PNO", str(frame.pno))]
    segment = "".join(f"{key}={value};" for key, value in head if value is not None)
    segment += "CP=&&" + _join_cp(frame.cp) + "&&"
    data = segment.encode("ascii")
    if len(data) > MAX_DATA_LENGTH:
        raise PayloadError("hj212_length", f"data segment of {len(data)} characters exceeds {MAX_DATA_LENGTH}")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def _join_cp(cp: Sequence[tuple[str, str]]) -> str:
    # Fields of one factor (same code before '-') share an item, joined with ','; items with ';'.
    items: list[list[str]] = []
    last_code: str | None = None
    for key, value in cp:
        code = key.split("-", 1)[0] if "-" in key else None
        if code is None or code != last_code:
            items.append([])
        items[-1].append(f"{key}={value}")
        last_code = code
    return ";".join(",".join(item) for item in items)


def split_frame(frame: Frame, parts: int) -> list[Frame]:
    """Split ``frame`` into ``parts`` packets (PNUM/PNO) by factor, DataTime repeated in each.

    >>> whole = Frame(cn="2011", mn="M1", qn="20240105103000000",
    ...               cp=(("DataTime", "20240105103000"), ("w01001-Rtd", "7.6"), ("w21003-Rtd", "0.4")))
    >>> [(f.pnum, f.pno, len(f.cp)) for f in split_frame(whole, 2)]
    [(2, 1, 2), (2, 2, 2)]
    >>> split_frame(whole, 2)[1].cp
    (('DataTime', '20240105103000'), ('w21003-Rtd', '0.4'))
    """
    common = tuple((k, v) for k, v in frame.cp if "-" not in k)
    factors: dict[str, list[tuple[str, str]]] = {}
    for key, value in frame.cp:
        if "-" in key:
            factors.setdefault(key.split("-", 1)[0], []).append((key, value))
    groups = list(factors.values())
    size = -(-len(groups) // parts)
    return [
        replace(
            frame,
            pnum=parts,
            pno=index + 1,
            cp=common + tuple(field for group in groups[index * size : (index + 1) * size] for field in group),
        )
        for index in range(parts)
    ]


def iter_frames(stream: bytes) -> Iterator[bytes]:
    """Cut a file or log of frames (one or more per line) into single frames.

    A frame never spans lines (its data segment is printable ASCII), so a length field is trusted
    only within its line: a wrong length cannot swallow the next line's frame. A frame also ends
    where its length says only if a frame start, a space or the line end follows there; otherwise
    it runs to the next frame start, and the caller rejects it with the length error. Bytes that
    do not start a frame are returned as one chunk up to the next frame start or the line end, so
    a megabyte of garbage is one rejection, not one per byte.

    >>> list(iter_frames(b"##0007CP=&&&&0000\\r\\n junk ##0007CP=&&&&0000##0099CP=&&&&0000\\n##0007CP=&&&&0000"))
    [b'##0007CP=&&&&0000', b'junk ', b'##0007CP=&&&&0000', b'##0099CP=&&&&0000', b'##0007CP=&&&&0000']
    """
    for line in stream.splitlines():
        position = 0
        while position < len(line):
            if line[position] in b" \t":
                position += 1
                continue
            following = _FRAME_START.search(line, position + 1)
            end = len(line) if following is None else following.start()
            if _FRAME_START.match(line, position):
                declared = position + 6 + int(line[position + 2 : position + 6]) + 4
                if declared == len(line) or (declared < len(line) and line[declared] in b"# \t"):
                    end = declared
            yield line[position:end]
            position = end


_FRAME_START: Final = re.compile(rb"##[0-9]{4}")
