"""In-process bus with Kafka's semantics, for the embedded demo and unit tests.

It keys partitions with Kafka's own murmur2 partitioner, keeps per-group committed offsets,
rebalances partitions in ranges as Kafka's range assignor does when members join or leave
(calling the members' callbacks at their next poll, as Kafka does), and compacts compacted
topics on write (older records of a key disappear, offsets keep their gaps).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiokafka.partitioner import murmur2

from riverguard.bus.base import (
    BatchAcks,
    Delivery,
    Outgoing,
    PartitionsCallback,
    Record,
    TopicPartition,
    TopicSpec,
)
from riverguard.errors import BusError


@dataclass
class _Topic:
    spec: TopicSpec
    logs: list[list[Record | None]]
    latest_by_key: list[dict[bytes, int]]
    base_offsets: list[int]


@dataclass
class _Group:
    members: list[MemoryConsumer] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class MemoryBus:
    def __init__(self, *, default_partitions: int = 6) -> None:
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._default_partitions = default_partitions
        self._data = asyncio.Condition()
        self._round_robin = itertools.count()

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        for spec in specs:
            if spec.partitions < 1:
                raise BusError(f"topic {spec.name!r}: partitions must be >= 1, got {spec.partitions}")
            if spec.name not in self._topics:
                n = spec.partitions
                self._topics[spec.name] = _Topic(spec, [[] for _ in range(n)], [{} for _ in range(n)], [0] * n)

    def producer(self, *, client_id: str | None = None) -> MemoryProducer:
        return MemoryProducer(self)

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
        from_beginning: bool = True,
    ) -> MemoryConsumer:
        return MemoryConsumer(self, list(topics), group_id, on_assign, on_revoke, from_beginning)

    async def partitions(self, topic: str) -> int:
        return len(self._topic(topic).logs)

    async def read_partition(self, tp: TopicPartition) -> list[Record]:
        return [r for r in self._topic(tp.topic).logs[tp.partition] if r is not None]

    async def read_partitions(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, list[Record]]:
        return {tp: await self.read_partition(tp) for tp in tps}

    async def read_topics(self, topics: Sequence[str]) -> dict[TopicPartition, list[Record]]:
        return await self.read_partitions(
            [TopicPartition(t, p) for t in topics if t in self._topics for p in range(len(self._topics[t].logs))])

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._end(tp) for tp in tps}

    async def close(self) -> None:
        for group in self._groups.values():
            group.members.clear()

    # -- internals used by producers and consumers ----------------------------------------

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise BusError(f"unknown topic {name!r}: create it first (create_topics)")
        return topic

    def _end(self, tp: TopicPartition) -> int:
        topic = self._topic(tp.topic)
        return topic.base_offsets[tp.partition] + len(topic.logs[tp.partition])

    def _append(
        self, name: str, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> Delivery:
        topic = self._topic(name)
        n = len(topic.logs)
        partition = (murmur2(key) & 0x7FFFFFFF) % n if key is not None else next(self._round_robin) % n
        log = topic.logs[partition]
        offset = topic.base_offsets[partition] + len(log)
        log.append(Record(name, partition, offset, key, value, int(time.time() * 1000), tuple(headers)))
        if topic.spec.compacted and key is not None:
            previous = topic.latest_by_key[partition].get(key)
            if previous is not None:
                log[previous - topic.base_offsets[partition]] = None
            topic.latest_by_key[partition][key] = offset
        return Delivery(name, partition, offset)

    async def _notify(self) -> None:
        async with self._data:
            self._data.notify_all()

    def _records(self, tp: TopicPartition, start: int, limit: int) -> list[Record]:
        topic = self._topic(tp.topic)
        base = topic.base_offsets[tp.partition]
        window = topic.logs[tp.partition][max(0, start - base) :]
        out: list[Record] = []
        for record in window:
            if record is not None:
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    def _join(self, member: MemoryConsumer) -> None:
        group = self._groups.setdefault(member.group_id, _Group())
        group.members.append(member)
        self._rebalance(group)

    def _leave(self, member: MemoryConsumer) -> None:
        group = self._groups.get(member.group_id)
        if group and member in group.members:
            group.members.remove(member)
            self._rebalance(group)

    def _rebalance(self, group: _Group) -> None:
        if not group.members:
            return
        # Kafka's range assignor: per topic, each subscriber (in join order) takes a contiguous
        # range, the first ones one more when it does not divide — so topics with the same
        # partition count are co-partitioned (partition p of each goes to the same member).
        plan: dict[int, set[TopicPartition]] = {id(m): set() for m in group.members}
        for topic in sorted({t for m in group.members for t in m.topics}):
            subscribers = [m for m in group.members if topic in m.topics]
            count = len(self._topic(topic).logs)
            share, extra = divmod(count, len(subscribers))
            start = 0
            for rank, member in enumerate(subscribers):
                size = share + (1 if rank < extra else 0)
                plan[id(member)].update(TopicPartition(topic, p) for p in range(start, start + size))
                start += size
        for member in group.members:
            member._pending = frozenset(plan[id(member)])


class MemoryProducer:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[Delivery]:
        delivery = await self.send_and_wait(topic, value, key=key, headers=headers)
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        future.set_result(delivery)
        return future

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivery:
        if not self._started:
            raise BusError("producer is not started")
        delivery = self._bus._append(topic, key, value, headers)
        await self._bus._notify()
        return delivery

    async def send_batch(self, records: Sequence[Outgoing]) -> BatchAcks:
        if not self._started:
            raise BusError("producer is not started")
        deliveries = [self._bus._append(r.topic, r.key, r.value, r.headers) for r in records]
        await self._bus._notify()
        future: asyncio.Future[list[Delivery]] = asyncio.get_running_loop().create_future()
        future.set_result(deliveries)
        return future

    async def flush(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class MemoryConsumer:
    def __init__(
        self,
        bus: MemoryBus,
        topics: list[str],
        group_id: str,
        on_assign: PartitionsCallback | None,
        on_revoke: PartitionsCallback | None,
        from_beginning: bool,
    ) -> None:
        self._bus = bus
        self.topics = topics
        self.group_id = group_id
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._from_beginning = from_beginning
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._pending: frozenset[TopicPartition] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._started = False

    async def start(self) -> None:
        for topic in self.topics:
            self._bus._topic(topic)
        self._started = True
        self._bus._join(self)
        await self._apply_rebalance()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._on_revoke and self._assigned:
            await self._on_revoke(self._assigned)
        self._assigned = frozenset()
        self._bus._leave(self)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assigned

    async def lag(self) -> dict[TopicPartition, int]:
        return {tp: self._bus._end(tp) - position for tp, position in self._positions.items()}

    async def getmany(self, *, timeout_ms: int = 1000, max_records: int = 500) -> list[Record]:
        if not self._started:
            raise BusError("consumer is not started")
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        while True:
            await self._apply_rebalance()
            records = self._fetch(max_records)
            remaining = deadline - asyncio.get_running_loop().time()
            if records or remaining <= 0:
                return records
            async with self._bus._data:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._bus._data.wait(), timeout=min(remaining, 0.05))

    def _fetch(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        for tp in sorted(self._assigned):
            if len(out) >= max_records:
                break
            batch = self._bus._records(tp, self._positions[tp], max_records - len(out))
            if batch:
                self._positions[tp] = batch[-1].offset + 1
                out.extend(batch)
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        group = self._bus._groups[self.group_id]
        for tp, offset in offsets.items():
            if tp not in self._assigned:
                raise BusError(f"cannot commit {tp.topic}[{tp.partition}]: not assigned to this member")
            group.committed[tp] = offset

    async def _apply_rebalance(self) -> None:
        # Eager protocol, as Kafka's default assignors: revoke everything, then assign the new
        # set; positions restart from the committed offsets (uncommitted records come again).
        pending = self._pending
        if pending is None:
            return
        if self._assigned and self._on_revoke:
            await self._on_revoke(self._assigned)
        self._assigned = frozenset()
        self._positions = {}
        # As in Kafka, a partition goes to its new owner only after its old owner revoked it (and
        # committed what it had handled): never two members on one partition. Until then this
        # member owns nothing and the plan stays pending (getmany tries again).
        group = self._bus._groups[self.group_id]
        pending = self._pending  # the group may have changed again while on_revoke ran
        if pending is None or any(m is not self and m._assigned & pending for m in group.members):
            return
        self._pending = None
        self._assigned = pending
        committed = group.committed
        self._positions = {}
        for tp in pending:
            start = committed.get(tp)
            if start is None:
                topic = self._bus._topic(tp.topic)
                start = topic.base_offsets[tp.partition] if self._from_beginning else self._bus._end(tp)
            self._positions[tp] = start
        if pending and self._on_assign:
            await self._on_assign(pending)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
