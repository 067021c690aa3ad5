"""The bridge's side of its routing workers (``mqtt.routing_workers``; see :mod:`ingest.worker`).

Each message goes to the worker of its station (a stable hash of the station id in the topic),
so one worker sees all of a station's messages, in arrival order, and sends them to Kafka in that
order. Handed messages are batched per wake-up of the bridge's loop; settled ones come back in
batches and are acknowledged to MQTT by the bridge through ``on_settled``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import zlib
from collections.abc import Callable
from typing import Generic, TypeVar

from ingest.codecs import TopicPattern
from ingest.routing import Message
from ingest.worker import Handed, Settled, read_frame, write_frame
from riverguard.errors import BusError
from riverguard.settings import Settings
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

T = TypeVar("T")


class RoutingPool(Generic[T]):
    """``workers`` routing processes; :meth:`hand` messages, :meth:`flush`, get them back settled."""

    def __init__(
        self,
        settings: Settings,
        registry: StationRegistry,
        workers: int,
        on_settled: Callable[[list[tuple[T, Settled]]], None],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.size = workers
        self._pattern = TopicPattern(settings.mqtt.topic_pattern)
        self._on_settled = on_settled
        self._seq = 0
        self._tokens: dict[int, T] = {}
        self._batches: list[list[Handed]] = [[] for _ in range(workers)]
        self._writers: list[asyncio.StreamWriter] = []
        self._processes: list[asyncio.subprocess.Process] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for index in range(self.size):
            ours, theirs = socket.socketpair()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ingest.worker", str(theirs.fileno()), pass_fds=(theirs.fileno(),)
            )
            theirs.close()
            reader, writer = await asyncio.open_connection(sock=ours)
            write_frame(writer, (self.settings, self.registry, index))
            self._processes.append(process)
            self._writers.append(writer)
            if await read_frame(reader) is None:
                code = await process.wait()
                raise BusError(f"routing worker {index} did not start (exit status {code}; its log says why)")
            self._readers.append(asyncio.create_task(self._collect(index, reader)))

    def failed(self) -> BaseException | None:
        """Why a worker stopped reporting, once one did (the bridge must stop then)."""
        for task in self._readers:
            if task.done():
                return task.exception() or BusError("a routing worker stopped")
        return None

    def hand(self, message: Message[T]) -> None:
        self._seq += 1
        self._tokens[self._seq] = message.token
        worker = zlib.crc32(self._pattern.station_of(message.topic).encode()) % self.size
        self._batches[worker].append((self._seq, message.topic, message.payload, message.received_at.timestamp()))

    async def flush(self) -> None:
        for index, batch in enumerate(self._batches):
            if batch:
                write_frame(self._writers[index], batch)
                self._batches[index] = []
        for writer in self._writers:
            await writer.drain()  # back-pressure: a worker that lags slows intake

    async def stop(self) -> None:
        """Let every worker finish what it was handed (its reports still arrive), then end them."""
        await self.flush()
        for writer in self._writers:
            writer.write_eof()
        for process in self._processes:
            await process.wait()
        for task in self._readers:
            await asyncio.wait([task])
        for writer in self._writers:
            writer.close()

    async def _collect(self, index: int, reader: asyncio.StreamReader) -> None:
        while (settled := await read_frame(reader)) is not None:
            self._on_settled([(self._tokens.pop(item[0]), item) for item in settled])
        code = await self._processes[index].wait()
        if code != 0:
            raise BusError(f"routing worker {index} exited with status {code}; unacknowledged messages come again")
        log.info("routing worker %d finished", index)
