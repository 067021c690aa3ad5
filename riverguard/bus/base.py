"""The bus seam: what every stage needs from a log-structured message bus.

Two implementations pass the same contract tests (``tests/contract/test_bus_contract.py``):
:class:`~riverguard.bus.kafka.KafkaBus` (aiokafka, production) and
:class:`~riverguard.bus.memory.MemoryBus` (the embedded demo and unit tests).

Semantics are Kafka's: records with the same key land on the same partition and stay in order;
consumer groups share partitions; offsets are committed explicitly (the committed offset is the
next offset to read); compacted topics keep at least the latest record per key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 6
    compacted: bool = False
    replication_factor: int = 1
    retention_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to produce."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where an acknowledged record landed."""

    topic: str
    partition: int
    offset: int


PartitionsCallback = Callable[[frozenset[TopicPartition]], Awaitable[None]]


class BatchAcks(Protocol):
    """The bus's answer for records sent with :meth:`Producer.send_batch`."""

    def __await__(self) -> Generator[Any, None, list[Delivery]]:
        """Wait for every record's acknowledgement; their deliveries in the order they were given."""
        ...

    def done(self) -> bool:
        """True once the bus answered for every record (awaiting no longer waits)."""
        ...

    def cancel(self) -> object:
        """Given up on: do not report unretrieved failures later."""
        ...


class Producer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[Delivery]:
        """Enqueue a record; the returned awaitable resolves when the bus acknowledged it."""
        ...

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivery: ...

    async def send_batch(self, records: Sequence[Outgoing]) -> BatchAcks:
        """Enqueue ``records`` in order, each on the partition :meth:`send` would choose (a key's
        records keep their order); the awaitable resolves once the bus acknowledged every one,
        to their deliveries in the same order. Cheaper per record than :meth:`send`."""
        ...

    async def flush(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def getmany(self, *, timeout_ms: int = 1000, max_records: int = 500) -> list[Record]:
        """Records from the assigned partitions, in offset order per partition."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (the next offset to read per partition) for the group."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def lag(self) -> dict[TopicPartition, int]:
        """Records between this member's position and the end of each assigned partition.

        From what the member last saw of the partition end (Kafka: the highwater mark of the
        last fetch); partitions whose end or position is not known yet are left out.
        """
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Bus(Protocol):
    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create missing topics; existing topics are left as they are."""
        ...

    def producer(self, *, client_id: str | None = None) -> Producer: ...

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
        from_beginning: bool = True,
    ) -> Consumer:
        """A member of consumer group ``group_id``.

        Rebalances are eager, as with Kafka's default assignors: ``on_revoke`` gets the whole
        current assignment before a rebalance, ``on_assign`` the whole new one after it and
        before any of its records are returned; positions restart at the committed offsets.
        Subscribed topics with the same partition count are co-partitioned: partition *p* of
        each goes to the same member (Kafka's range assignor), so a stage can keep per-key state
        from two topics keyed alike.
        """
        ...

    async def partitions(self, topic: str) -> int: ...

    async def read_partition(self, tp: TopicPartition) -> list[Record]:
        """Every record currently in ``tp`` from the beginning to its end offset (no group)."""
        ...

    async def read_partitions(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, list[Record]]:
        """:meth:`read_partition` of each of ``tps``, in one go (a restore reads several)."""
        ...

    async def read_topics(self, topics: Sequence[str]) -> dict[TopicPartition, list[Record]]:
        """:meth:`read_partition` of every partition of each of ``topics`` (those that exist)."""
        ...

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def close(self) -> None: ...


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """The offsets to commit after ``records`` were fully processed."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = record.tp
        if record.offset + 1 > offsets.get(tp, -1):
            offsets[tp] = record.offset + 1
    return offsets
