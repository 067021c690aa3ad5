"""Acknowledging to a transport only what Kafka has: the settle loop the MQTT bridge and the HJ
212 gateway share.

A pump sends a batch of records without waiting and hands its pending deliveries here with the
tokens of what they came from (MQTT message ids, a logger's frames); the settler awaits the
batches in the order they were sent and settles each batch's tokens once Kafka acknowledged all
its records. A Kafka failure stops it without settling: the transport delivers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

from riverguard.bus.base import Delivery
from riverguard.errors import BusError

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Batches sent but not acknowledged yet; beyond it the pump waits while Kafka lags (for the
#: bridge the broker's in-flight window usually binds first).
MAX_UNSETTLED: Final = 1000


class Settler(Generic[T]):
    def __init__(self, settle: Callable[[list[T]], None], *, what: str) -> None:
        self._settle = settle
        self._what = what  # "acknowledging it to MQTT": what does not happen after a failure
        self._queue: asyncio.Queue[tuple[Awaitable[list[Delivery]], list[T]] | None] = asyncio.Queue(MAX_UNSETTLED)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run())
        return self._task

    async def put(self, pending: Awaitable[list[Delivery]], tokens: list[T]) -> None:
        """Queue a sent batch (waits while MAX_UNSETTLED batches are pending)."""
        await self._queue.put((pending, tokens))

    async def finish(self, timeout_s: float = 30) -> None:
        """Settle what is queued (up to ``timeout_s``), then stop; re-raises a Kafka failure."""
        if self._task is None:
            return
        if not self._task.done():
            await self._queue.put(None)
        await asyncio.wait_for(asyncio.shield(self._task), timeout=timeout_s)

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            pending, tokens = item
            try:
                await pending
            except BusError:
                log.exception("Kafka did not take a record; stopping without %s (it comes again)", self._what)
                _discard(pending)
                raise
            self._settle(tokens)


def _discard(pending: Awaitable[list[Delivery]]) -> None:
    if cancel := getattr(pending, "cancel", None):
        cancel()  # a future, or the Kafka bus's pending deliveries
    elif close := getattr(pending, "close", None):
        close()  # an un-awaited coroutine
