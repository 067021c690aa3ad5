"""The stage runtime: consume → handle → produce → state changelog → commit, for every consumer stage.

A stage (detect, alerts, sink) is a :class:`Processor` plugged into :class:`StageRuntime`, which
owns the consumer-group member, the producer, the commit order, rebalances, periodic ticks and
the metrics. The same runtime runs on the Kafka bus and the in-memory bus (one abstract test
suite holds both: ``tests/contract/test_stage_contract.py``).

Order, for at-least-once delivery with idempotent stages (STYLE.md, after Quix Streams and
Kafka Streams):

1. a batch is fetched and handed to :meth:`Processor.handle`, which returns its outputs;
2. the outputs are produced in order — but their acknowledgements are not awaited before the
   next batch is fetched and handled: up to ``max_in_flight`` batches are acknowledged in the
   background (what a stage waits for per batch is a broker round trip, and two cores have
   better things to do meanwhile);
3. at a commit (after every batch, or every ``commit_interval_s``, or when the processor asks):
   every output is acknowledged, then the processor's state changelog
   (:meth:`Processor.checkpoint`) is produced and acknowledged, then the input offsets are
   committed. A crash anywhere before that re-delivers the inputs, and stages make re-delivered
   inputs produce the same outputs (stable ids and keys).

On assignment :meth:`Processor.assigned` restores state before any record of the new partitions
is handled; before a revocation the runtime commits (with a checkpoint) and then calls
:meth:`Processor.revoked`, so the next owner restores exactly what was committed.

Observers (the demo, benches, tests) see each batch once its outputs are acknowledged
(:class:`Handled`) — instead of subclassing a stage to find out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from riverguard.bus.base import BatchAcks, Bus, Consumer, Outgoing, Producer, Record, TopicPartition, next_offsets
from riverguard.errors import BusError
from riverguard.observability import MESSAGES_IN, MESSAGES_OUT, PROCESSING_SECONDS, record_lag

__all__ = [
    "Emit",
    "Handled",
    "Interrupted",
    "Observer",
    "Outgoing",
    "Processor",
    "StageConfig",
    "StageContext",
    "StageRuntime",
    "produce_all",
    "stopped_within",
]

log = logging.getLogger(__name__)


class StageNotReadyError(RuntimeError):
    """The stage cannot serve yet (joining its group, restoring its state)."""

#: How often the consumer lag gauge is refreshed while busy, and while idle (so it reaches 0 soon).
_LAG_EVERY_S: Final = 1.0
_LAG_IDLE_S: Final = 0.2


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


Emit = Callable[[Sequence[Outgoing]], Awaitable[None]]


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """Raised by :meth:`Processor.handle` when ``stop`` came while it waited (e.g. for a database
    that is down): the batch stays uncommitted and is handled again after the restart."""


@dataclass(frozen=True, slots=True)
class StageConfig:
    """How a stage consumes. ``commit_interval_s`` 0 commits after every batch."""

    group_id: str
    max_records: int = 500
    poll_timeout_ms: int = 200
    commit_interval_s: float = 0.0
    tick_s: float | None = None
    #: Keep polling until ``max_records`` arrived or this long after the first record (0: one poll).
    linger_ms: int = 0
    #: Batches whose outputs may be unacknowledged while the next one is handled.
    max_in_flight: int = 4


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a processor gets from the runtime when it starts."""

    bus: Bus
    #: Produce records outside the batch flow (e.g. an operator's acknowledgement) and wait for the bus.
    emit: Emit
    stop: asyncio.Event


@dataclass(frozen=True, slots=True)
class Handled:
    """A batch whose outputs the bus acknowledged."""

    stage: str
    records: Sequence[Record]
    outputs: Sequence[Outgoing]


Observer = Callable[[Handled], None]


class Processor:
    """A stage's logic; the runtime calls it, it never consumes or commits itself.

    Override :meth:`handle` and whatever else the stage needs; the defaults do nothing.
    """

    #: The ``stage`` label of the metrics.
    stage: str = "stage"

    def topics(self) -> Sequence[str]:
        raise NotImplementedError

    async def start(self, context: StageContext) -> None:
        """Before the first poll: check topics, restore what does not depend on the assignment."""

    async def stop(self) -> None:
        """After the last commit, before the producer closes."""

    async def assigned(self, partitions: frozenset[TopicPartition]) -> None:
        """Restore the state of newly assigned partitions (before any of their records is handled)."""

    async def revoked(self, partitions: frozenset[TopicPartition]) -> None:
        """Let go of revoked partitions' state; their last commit and checkpoint are already done."""

    async def handle(self, records: Sequence[Record]) -> Sequence[Outgoing]:
        """Process one batch; return the records to produce (acknowledged before the next commit)."""
        raise NotImplementedError

    def checkpoint(self) -> Sequence[Outgoing]:
        """State changelog records of everything handled since the last commit."""
        return ()

    def commit_due(self) -> bool:
        """True when the processor wants a commit now (e.g. much unsaved state)."""
        return False

    async def tick(self) -> Sequence[Outgoing]:
        """Periodic work (every ``tick_s``); outputs are produced like a batch's."""
        return ()


@dataclass
class _InFlight:
    records: Sequence[Record]
    outputs: Sequence[Outgoing]
    acks: BatchAcks | None
    started: float


@dataclass
class _Progress:
    in_flight: deque[_InFlight] = field(default_factory=deque)
    uncommitted: dict[TopicPartition, int] = field(default_factory=dict)
    last_commit: float = field(default_factory=time.monotonic)


class StageRuntime:
    """Runs one :class:`Processor` as a member of a consumer group until ``stop`` is set."""

    def __init__(
        self,
        bus: Bus,
        processor: Processor,
        config: StageConfig,
        *,
        observers: Sequence[Observer] = (),
        client_id: str | None = None,
    ) -> None:
        self.bus = bus
        self.processor = processor
        self.config = config
        self.observers = list(observers)
        self._client_id = client_id or f"{config.group_id}-producer"
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._progress = _Progress()
        # Held while a batch is handled and sent, and by a revocation: a revocation never
        # commits in the middle of a batch.
        self._batch_lock = asyncio.Lock()
        # Set once the assigned partitions' state is restored. The Kafka client may already be
        # fetching records of a new assignment while the assignment callback replays a changelog.
        self._restored = asyncio.Event()
        self._restored.set()
        self._generation = 0  # rebalances so far: batches fetched before the last one are stale
        self._assigned_once = False  # the group gave this member its share (maybe none) at least once

    @property
    def stage(self) -> str:
        return self.processor.stage

    async def run(self, stop: asyncio.Event) -> None:
        async with self.bus.producer(client_id=self._client_id) as producer:
            self._producer = producer
            await self.processor.start(StageContext(self.bus, self.emit, stop))
            try:
                async with self.bus.consumer(
                    list(self.processor.topics()), group_id=self.config.group_id,
                    on_assign=self._on_assign, on_revoke=self._on_revoke,
                ) as consumer:
                    self._consumer = consumer
                    log.info("stage %s (group %s) consuming %s", self.stage, self.config.group_id,
                             ", ".join(self.processor.topics()))
                    await self._loop(consumer, stop)
                    async with self._batch_lock:
                        await self._commit()
            finally:
                self._consumer = None
                await self.processor.stop()
                self._producer = None

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member owns now (empty before it joined its group)."""
        return self._consumer.assignment() if self._consumer is not None else frozenset()

    async def emit(self, outputs: Sequence[Outgoing]) -> None:
        """Produce ``outputs`` now and wait until the bus acknowledged them."""
        if self._producer is None:
            raise RuntimeError(f"stage {self.stage} is not running")
        await produce_all(self._producer, outputs)
        self._count_out(outputs)

    async def _loop(self, consumer: Consumer, stop: asyncio.Event) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + (config.tick_s or 0.0)
        next_lag = loop.time() + _LAG_EVERY_S
        poll_ms = config.poll_timeout_ms if config.tick_s is None else min(config.poll_timeout_ms,
                                                                           int(config.tick_s * 1000))
        fetch = asyncio.create_task(self._fetch(consumer, poll_ms))
        try:
            while not stop.is_set():
                records, generation = await fetch
                # The next batch is fetched while this one is handled, produced or written.
                fetch = asyncio.create_task(self._fetch(consumer, poll_ms))
                if records and generation != self._generation:
                    # Fetched before a rebalance: the positions went back to the committed offsets,
                    # so these records come again from whoever owns their partitions now.
                    records = []
                if records:
                    await self._restored.wait()
                    async with self._batch_lock:
                        try:
                            await self._handle(records)
                        except Interrupted:
                            log.info("stage %s stopping with %d records unhandled; they will be read again",
                                     self.stage, len(records))
                            break
                async with self._batch_lock:
                    await self._settle(block=not records)
                    if self._commit_due():
                        await self._commit()
                if config.tick_s is not None and loop.time() >= next_tick:
                    async with self._batch_lock:
                        await self._send(await self.processor.tick(), records=())
                    next_tick = loop.time() + config.tick_s
                if loop.time() >= next_lag - (0 if records else _LAG_EVERY_S - _LAG_IDLE_S):
                    await record_lag(self.stage, consumer)
                    next_lag = loop.time() + _LAG_EVERY_S
        finally:
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)

    async def _fetch(self, consumer: Consumer, wait_ms: int) -> tuple[list[Record], int]:
        """A batch (up to ``max_records``, lingering ``linger_ms`` for more) and the rebalance
        generation it was fetched in."""
        config = self.config
        records = await consumer.getmany(timeout_ms=wait_ms, max_records=config.max_records)
        if records and config.linger_ms > 0:
            deadline = time.monotonic() + config.linger_ms / 1000
            while len(records) < config.max_records:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    break
                records += await consumer.getmany(timeout_ms=left_ms, max_records=config.max_records - len(records))
        return records, self._generation

    async def _handle(self, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        MESSAGES_IN.labels(stage=self.stage).inc(len(records))
        outputs = await self.processor.handle(records)
        await self._send(outputs, records=records, started=started)

    async def _send(self, outputs: Sequence[Outgoing], *, records: Sequence[Record], started: float = 0.0) -> None:
        if not outputs and not records:
            return
        assert self._producer is not None
        acks = await self._producer.send_batch(outputs) if outputs else None
        self._progress.in_flight.append(_InFlight(records, outputs, acks, started or time.perf_counter()))
        while len(self._progress.in_flight) > self.config.max_in_flight:
            await self._acknowledged(self._progress.in_flight.popleft())

    async def _settle(self, *, block: bool) -> None:
        """Account for batches whose outputs are acknowledged; all of them when ``block``."""
        in_flight = self._progress.in_flight
        while in_flight and (block or _done(in_flight[0].acks)):
            await self._acknowledged(in_flight.popleft())

    async def _acknowledged(self, batch: _InFlight) -> None:
        if batch.acks is not None:
            await batch.acks
        self._count_out(batch.outputs)
        for tp, offset in next_offsets(batch.records).items():
            self._progress.uncommitted[tp] = offset
        if batch.records:
            PROCESSING_SECONDS.labels(stage=self.stage).observe(time.perf_counter() - batch.started)
            handled = Handled(self.stage, batch.records, batch.outputs)
            for observer in self.observers:
                observer(handled)

    def _commit_due(self) -> bool:
        if not self._progress.uncommitted:
            return False
        interval = self.config.commit_interval_s
        return (interval <= 0 or time.monotonic() - self._progress.last_commit >= interval
                or self.processor.commit_due())

    async def _commit(self) -> None:
        """Every output acknowledged, then the checkpoint, then the input offsets (caller holds the batch lock)."""
        await self._settle(block=True)
        checkpoint = self.processor.checkpoint()
        if checkpoint:
            await self.emit(checkpoint)
        if self._progress.uncommitted and self._consumer is not None:
            try:
                await self._consumer.commit(self._progress.uncommitted)
            except BusError as exc:
                # The group moved on (a rebalance this member has not seen yet): the new owner
                # reads from the last commit and re-creates the same outputs.
                log.warning("stage %s: commit failed (%s); the partitions' new owner handles those records again",
                            self.stage, exc)
        self._progress.uncommitted = {}
        self._progress.last_commit = time.monotonic()

    async def _on_assign(self, assigned: frozenset[TopicPartition]) -> None:
        self._restored.clear()
        try:
            await self.processor.assigned(assigned)
        finally:
            self._restored.set()
        self._assigned_once = True

    async def readiness(self) -> object:
        """A health check: ready once the stage joined its group and restored the state of what it
        was assigned; raises (naming why not) before that and while a rebalance restores."""
        if not self._restored.is_set():
            raise StageNotReadyError(f"stage {self.stage} is restoring the state of its partitions")
        if self._consumer is None:
            raise StageNotReadyError(f"stage {self.stage} is not consuming yet")
        if not self._assigned_once:
            raise StageNotReadyError(f"stage {self.stage} has not joined group {self.config.group_id} yet")
        return f"{len(self.assignment())} partitions"

    async def _on_revoke(self, revoked: frozenset[TopicPartition]) -> None:
        # Commit while the partitions are still ours, then let their state go: the next owner
        # restores it from the changelog.
        self._restored.clear()
        self._generation += 1
        async with self._batch_lock:
            await self._commit()
            await self.processor.revoked(revoked)

    def _count_out(self, outputs: Sequence[Outgoing]) -> None:
        for output in outputs:
            MESSAGES_OUT.labels(stage=self.stage, topic=output.topic).inc()


def _done(acks: BatchAcks | None) -> bool:
    if acks is None:
        return True
    done = getattr(acks, "done", None)
    return bool(done()) if callable(done) else False
