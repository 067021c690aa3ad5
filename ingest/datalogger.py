"""A station's data logger (数采仪) over TCP, for ``riverguard simulate --transport hj212-tcp``,
the gateway's tests and its benchmark: it sends a station's readings as HJ 212-2017 frames asking
for the 9014 data answer, and answers the platform's commands as the standard's Appendix C shows
(9011 QnRtn=1, then the work, then 9012 ExeRtn=1): 1012 sets its clock, 3015 keeps a water sample
in the next bottle and uploads ``DataTime`` and ``VaseNo``, 3012 takes a sample.

:class:`LoggerState` is the logger's side of the exchange (pure: frames in, frames out);
:class:`DataLogger` connects it to a gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from ingest.codecs import frame_of, parse_local_time
from ingest.exchange import (
    DATA_ANSWER,
    RETAIN_SAMPLE,
    SET_CLOCK,
    TAKE_SAMPLE,
    TIME_FORMAT,
    ExeRtn,
    QnRtn,
    execution_result,
    qn_of,
    request_answer,
)
from ingest.framing import FrameReader
from ingest.hj212 import Frame, build_frame, parse_frame
from ingest.publisher import Pace
from riverguard.errors import PayloadError, RiverguardError
from riverguard.models import Reading
from riverguard.stations import Station, StationRegistry, StationSecrets
from riverguard.timekeeping import BEIJING

ANSWER_FLAG: Final = "5"  # HJ 212-2017, answer wanted
QUIET_FLAG: Final = "4"


@dataclass(frozen=True, slots=True)
class RetainedSample:
    bottle: int
    taken_at: datetime  # by the logger's clock
    qn: str  # the command's


class LoggerState:
    """What a data logger knows: its station, PW and clock, the samples it keeps, what the
    platform acknowledged."""

    def __init__(self, station: Station, password: str, *, clock_offset: timedelta = timedelta(0)) -> None:
        self.station = station
        self.password = password
        self.clock_offset = clock_offset
        self.samples: list[RetainedSample] = []
        self.acknowledged: set[str] = set()
        self.commands: list[Frame] = []  # every command the platform sent, in order
        self._last_qn = ""

    def clock(self, now: datetime) -> datetime:
        return now + self.clock_offset

    def upload(self, reading: Reading, now: datetime, *, answer: bool = True) -> tuple[str, bytes]:
        """The QN and bytes of a 2011 upload of ``reading``, stamped by the logger's clock."""
        qn = qn_of(self.clock(now).astimezone(BEIJING))
        if qn <= self._last_qn:  # QN identifies one exchange
            qn = str(int(self._last_qn) + 1)
        self._last_qn = qn
        frame = replace(frame_of(reading, self.station, pw=self.password), qn=qn,
                        flag=ANSWER_FLAG if answer else QUIET_FLAG)
        return qn, build_frame(frame)

    def handle(self, frame: Frame, now: datetime) -> list[bytes]:
        """The logger's answers to one frame from the platform."""
        if frame.cn == DATA_ANSWER:
            if frame.qn is not None:
                self.acknowledged.add(frame.qn)
            return []
        if frame.cn not in (SET_CLOCK, RETAIN_SAMPLE, TAKE_SAMPLE):
            refused = request_answer(frame, QnRtn.REFUSED)
            return [refused] if refused else []
        self.commands.append(frame)
        if frame.mn != self.station.mn:
            return [request_answer(frame, QnRtn.BAD_MN) or b""]
        if frame.pw != self.password:
            return [request_answer(frame, QnRtn.BAD_PW) or b""]
        out = [request_answer(frame, QnRtn.READY) or b""]
        fields = dict(frame.cp)
        if frame.cn == SET_CLOCK:
            try:
                self.clock_offset = parse_local_time(fields.get("SystemTime", ""), "SystemTime") - now
            except PayloadError:
                return [*out, execution_result(frame, ExeRtn.BAD_CONDITION)]
        elif frame.cn == RETAIN_SAMPLE:
            sample = RetainedSample(len(self.samples) + 1, self.clock(now), frame.qn or "")
            self.samples.append(sample)
            taken = sample.taken_at.astimezone(BEIJING).strftime(TIME_FORMAT)
            out.append(build_frame(Frame(
                cn=RETAIN_SAMPLE, mn=self.station.mn, qn=frame.qn, st=frame.st, pw=self.password, flag=QUIET_FLAG,
                cp=(("DataTime", taken), ("VaseNo", str(sample.bottle))),
            )))
        return [*out, execution_result(frame, ExeRtn.SUCCESS)]


class DataLogger:
    """:class:`LoggerState` on a TCP connection to a gateway."""

    def __init__(self, state: LoggerState) -> None:
        self.state = state
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._answered = asyncio.Condition()

    async def connect(self, host: str, port: int) -> None:
        try:
            reader, self._writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise RiverguardError(f"cannot reach the HJ 212 gateway at {host}:{port}: {exc.strerror or exc}") from exc
        self._reading = asyncio.create_task(self._read(reader))

    @property
    def connected(self) -> bool:
        return self._reading is not None and not self._reading.done()

    async def send(self, reading: Reading, *, answer: bool = True) -> str:
        """Send ``reading``; its QN (:meth:`acknowledged` tells when the gateway answered it)."""
        qn, data = self.state.upload(reading, datetime.now(BEIJING), answer=answer)
        await self.write(data)
        return qn

    async def write(self, data: bytes) -> None:
        if self._writer is None:
            raise RiverguardError("the data logger is not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def acknowledged(self, qn: str, timeout_s: float) -> bool:
        """Wait until the gateway answered ``qn`` with 9014; False after ``timeout_s``."""
        async with self._answered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait_for(lambda: qn in self.state.acknowledged), timeout_s)
        return qn in self.state.acknowledged

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    async def _read(self, reader: asyncio.StreamReader) -> None:
        frames = FrameReader()
        while data := await reader.read(65536):
            for piece in frames.feed(data):
                try:
                    frame = parse_frame(piece.raw)
                except PayloadError:
                    continue  # a real logger drops what fails its CRC
                for answer in self.state.handle(frame, datetime.now(BEIJING)):
                    await self.write(answer)
            async with self._answered:
                self._answered.notify_all()


@dataclass(frozen=True, slots=True)
class LoggerRun:
    """What ``riverguard simulate --transport hj212-tcp`` did."""

    sent: int
    acknowledged: int
    seconds: float
    samples: dict[str, list[RetainedSample]]
    commands: int


async def send_readings(
    readings: Iterable[Reading],
    registry: StationRegistry,
    secrets: StationSecrets,
    host: str,
    port: int,
    pace: Pace,
    *,
    answer_wait_s: float = 30.0,
) -> LoggerRun:
    """One data logger per station on a TCP connection to the gateway, sending ``readings`` at
    ``pace``; then waits up to ``answer_wait_s`` for the gateway's answers."""
    loggers: dict[str, DataLogger] = {}
    sent: list[tuple[DataLogger, str]] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_time: datetime | None = None
    try:
        for reading in readings:
            elapsed = loop.time() - started
            if pace.finished(elapsed, len(sent)):
                break
            first_time = first_time or reading.time
            due = pace.due(len(sent), reading.time - first_time)
            if due is not None and due > elapsed:
                await asyncio.sleep(due - elapsed)
            logger = loggers.get(reading.station_id)
            if logger is None:
                password = secrets.password(reading.station_id)
                if password is None:
                    raise RiverguardError(f"station {reading.station_id} has no PW in the passwords file")
                logger = loggers[reading.station_id] = DataLogger(
                    LoggerState(registry.by_id[reading.station_id], password))
                await logger.connect(host, port)
            sent.append((logger, await logger.send(reading)))
        deadline = loop.time() + answer_wait_s
        for logger, qn in sent:
            await logger.acknowledged(qn, max(0.0, deadline - loop.time()))
    finally:
        for logger in loggers.values():
            await logger.close()
    return LoggerRun(
        sent=len(sent), acknowledged=sum(qn in logger.state.acknowledged for logger, qn in sent),
        seconds=loop.time() - started,
        samples={sid: logger.state.samples for sid, logger in loggers.items() if logger.state.samples},
        commands=sum(len(logger.state.commands) for logger in loggers.values()),
    )
