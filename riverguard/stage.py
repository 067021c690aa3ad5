"""The consume → process → produce → commit loop every pipeline stage shares.

Order matters for at-least-once delivery (STYLE.md, Quix Streams): outputs (and changelog
records) are produced and acknowledged first, then the input offsets are committed. A crash in
between re-delivers the inputs; stages make their outputs idempotent (stable ids, keys).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from riverguard.bus.base import Bus, Outgoing, PartitionsCallback, Producer, Record, next_offsets

__all__ = ["Handler", "Outgoing", "produce_all", "run_stage", "stopped_within"]

log = logging.getLogger(__name__)


Handler = Callable[[Sequence[Record]], Awaitable[Sequence[Outgoing]]]


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``stop``; True when it was set (the caller should finish)."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def produce_all(producer: Producer, outputs: Sequence[Outgoing]) -> None:
    """Send every output and wait until the bus acknowledged all of them."""
    if outputs:
        await (await producer.send_batch(outputs))


async def run_stage(
    bus: Bus,
    producer: Producer,
    *,
    topics: Sequence[str],
    group_id: str,
    handle: Handler,
    stop: asyncio.Event,
    on_assign: PartitionsCallback | None = None,
    on_revoke: PartitionsCallback | None = None,
    max_records: int = 500,
    poll_timeout_ms: int = 200,
) -> None:
    """Run one consumer-group member until ``stop`` is set."""
    async with bus.consumer(topics, group_id=group_id, on_assign=on_assign, on_revoke=on_revoke) as consumer:
        log.info("stage %s consuming %s", group_id, ", ".join(topics))
        while not stop.is_set():
            records = await consumer.getmany(timeout_ms=poll_timeout_ms, max_records=max_records)
            if not records:
                continue
            outputs = await handle(records)
            await produce_all(producer, outputs)
            await consumer.commit(next_offsets(records))
