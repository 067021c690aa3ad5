"""A routing worker process: decodes and produces the messages one bridge hands it.

With ``mqtt.routing_workers: N`` the bridge process only speaks MQTT (read, acknowledge) and
hands each message to one of N of these processes over a socket pair, always the same one for a
station (so its readings stay in order). A worker routes (:class:`ingest.routing.Router`),
produces to Kafka with its own producer, and reports each message back — in the order it got
them — once Kafka acknowledged all its records; only then does the bridge acknowledge the MQTT
message. A worker that dies takes the bridge down with it, and the broker delivers every
unacknowledged message again to the next bridge: nothing is lost, exactly as in one process.

Frames on the socket are a 4-byte big-endian length and a pickle (both ends are this package):

- bridge → worker, first frame: ``(settings, registry, index)``;
- bridge → worker: ``[(seq, topic, payload, received_at_timestamp), ...]``;
- worker → bridge: ``[]`` once its Kafka producer is up, then ``[(seq, readings, dead_letter_reasons), ...]``.

Run by the bridge as ``python -m ingest.worker FD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import struct
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Final

from ingest.routing import Message, Router
from riverguard.bus.base import Delivery, Producer
from riverguard.bus.kafka import KafkaBus
from riverguard.observability import setup_logging
from riverguard.settings import Settings
from riverguard.stage import Outgoing
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

_LENGTH: Final = struct.Struct(">I")
#: Frames routed but not yet acknowledged by Kafka; beyond it the worker stops reading.
MAX_UNSETTLED: Final = 1000

#: (seq, MQTT topic, payload, received at as a UNIX timestamp)
Handed = tuple[int, str, bytes, float]
#: (seq, readings produced, reason codes of the dead letters produced)
Settled = tuple[int, int, tuple[str, ...]]


async def read_frame(reader: asyncio.StreamReader) -> Any | None:
    """The next object, or ``None`` at end of stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        # Only the bridge and its own workers hold the two ends of this socket pair.
        return pickle.loads(await reader.readexactly(_LENGTH.unpack(header)[0]))  # noqa: S301
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ConnectionError("routing worker stream ended in the middle of a frame") from exc
        return None


def write_frame(writer: asyncio.StreamWriter, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LENGTH.pack(len(data)) + data)


class Worker:
    def __init__(self, settings: Settings, registry: StationRegistry, producer: Producer) -> None:
        self.router = Router[int](
            registry,
            readings_topic=settings.topics.readings,
            dlq_topic=settings.topics.dlq,
            topic_pattern=settings.mqtt.topic_pattern,
        )
        self.producer = producer
        self._unsettled: asyncio.Queue[tuple[Awaitable[list[Delivery]], list[Settled]] | None] = asyncio.Queue(
            MAX_UNSETTLED
        )

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        settler = asyncio.create_task(self._settle(writer))
        try:
            while (batch := await read_frame(reader)) is not None and not settler.done():
                # One unit per frame: the records of all its messages, then their reports.
                records: list[Outgoing] = []
                settled: list[Settled] = []
                messages = [
                    Message(topic, payload, datetime.fromtimestamp(received_at, UTC), seq)
                    for seq, topic, payload, received_at in batch
                ]
                for routed in self.router.route_all(messages, datetime.now(UTC)):
                    records += routed.records
                    # A split HJ 212 message settles all its packets at once: the last carries the counts.
                    *first, last = routed.tokens
                    settled += [(seq, 0, ()) for seq in first]
                    settled.append((last, len(routed.records) - len(routed.reasons), routed.reasons))
                pending = await self.producer.send_batch(records)
                await self._unsettled.put((pending, settled))  # bounded: waits while Kafka lags
        finally:
            if not settler.done():
                await self._unsettled.put(None)
            await settler

    async def _settle(self, writer: asyncio.StreamWriter) -> None:
        """Report messages in the order they were routed, once Kafka has all their records."""
        while (item := await self._unsettled.get()) is not None:
            pending, settled = item
            await pending
            if settled:  # empty when the frame held only packets of incomplete split messages
                write_frame(writer, settled)
                await writer.drain()


async def serve(fd: int) -> None:
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    setup = await read_frame(reader)
    if setup is None:
        return
    settings, registry, index = setup
    setup_logging(settings.observability, service=f"ingest-worker-{index}")
    producer = KafkaBus(settings.kafka).producer(client_id=f"{settings.kafka.client_id}-ingest-{index}")
    await producer.start()
    write_frame(writer, [])  # ready: the bridge starts reading MQTT only when every worker is
    try:
        await Worker(settings, registry, producer).run(reader, writer)
    finally:
        await producer.stop()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
