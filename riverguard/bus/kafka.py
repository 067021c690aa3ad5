"""The production bus: Kafka through aiokafka.

Producers are idempotent with ``acks=all``; consumers never auto-commit — a stage commits only
after its outputs were acknowledged. Kafka errors are translated to :class:`BusError`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import IllegalStateError, KafkaError, TopicAlreadyExistsError
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
from riverguard.settings import KafkaSettings


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """Where and how to connect (TLS, SASL): the keyword arguments every aiokafka client takes."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if (context := settings.ssl_context()) is not None:
        options["ssl_context"] = context
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


def _ours(tp: KafkaTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _theirs(tp: TopicPartition) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp.topic, tp.partition)


class KafkaBus:
    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._options = connection_options(settings)

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        admin = AIOKafkaAdminClient(client_id=f"{self._settings.client_id}-admin", **self._options)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            new = [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=_topic_configs(spec),
                )
                for spec in specs
                if spec.name not in existing
            ]
            if new:
                response = await admin.create_topics(new)
                _raise_topic_errors(response)
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise BusError(f"cannot create topics on {self._settings.bootstrap_servers}: {exc}") from exc
        finally:
            await admin.close()
        await self._wait_for_metadata([s.name for s in specs])

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete the topics that exist among ``names`` (benchmarks clean up after themselves: a
        cluster with hundreds of stale topics makes every client's metadata refresh slower)."""
        admin = AIOKafkaAdminClient(client_id=f"{self._settings.client_id}-admin", **self._options)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            doomed = [name for name in dict.fromkeys(names) if name in existing]
            if doomed:
                await admin.delete_topics(doomed)
        except KafkaError as exc:
            raise BusError(f"cannot delete topics on {self._settings.bootstrap_servers}: {exc}") from exc
        finally:
            await admin.close()

    async def _wait_for_metadata(self, topics: Sequence[str]) -> None:
        # A freshly created topic takes a moment to have leaders; producing earlier fails.
        for topic in topics:
            for _ in range(100):
                if await self.partitions(topic) > 0:
                    break
                await asyncio.sleep(0.1)

    def producer(self, *, client_id: str | None = None) -> KafkaProducer:
        return KafkaProducer(
            AIOKafkaProducer(
                client_id=client_id or self._settings.client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=self._settings.linger_ms,
                **self._options,
            ),
            self._settings.bootstrap_servers,
        )

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
        from_beginning: bool = True,
    ) -> KafkaConsumer:
        consumer = AIOKafkaConsumer(
            group_id=group_id,
            client_id=self._settings.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            max_poll_interval_ms=300_000,
            # Co-partitioned: partition p of every subscribed topic goes to one member (see Bus.consumer).
            partition_assignment_strategy=(RangePartitionAssignor,),
            **self._options,
        )
        return KafkaConsumer(consumer, list(topics), _Listener(on_assign, on_revoke), self._settings.bootstrap_servers)

    async def partitions(self, topic: str) -> int:
        consumer = AIOKafkaConsumer(**self._options)
        try:
            await consumer.start()
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic)
            return len(parts or ())
        except KafkaError as exc:
            raise BusError(f"cannot read metadata of {topic!r}: {exc}") from exc
        finally:
            await consumer.stop()

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(**self._options)
        try:
            await consumer.start()
            ends = await consumer.end_offsets([_theirs(tp) for tp in tps])
            return {_ours(tp): offset for tp, offset in ends.items()}
        except KafkaError as exc:
            raise BusError(f"cannot read end offsets: {exc}") from exc
        finally:
            await consumer.stop()

    async def read_partition(self, tp: TopicPartition) -> list[Record]:
        return (await self.read_partitions([tp]))[tp]

    async def read_partitions(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, list[Record]]:
        wanted = list(tps)

        async def named(_consumer: AIOKafkaConsumer) -> list[TopicPartition]:
            return wanted

        return await self._read(named, ", ".join(f"{t.topic}[{t.partition}]" for t in wanted))

    async def read_topics(self, topics: Sequence[str]) -> dict[TopicPartition, list[Record]]:
        async def every_partition(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
            await consumer._client.force_metadata_update()
            return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]

        return await self._read(every_partition, ", ".join(topics))

    async def _read(
        self, which: Callable[[AIOKafkaConsumer], Awaitable[list[TopicPartition]]], what: str
    ) -> dict[TopicPartition, list[Record]]:
        """Every record of the partitions ``which`` names, from the beginning to their end offsets,
        through one consumer: each consumer is a TLS handshake and a SASL login, so a restore that
        reads several partitions pays for one."""
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **self._options)
        try:
            await consumer.start()
            ours = await which(consumer)
            out: dict[TopicPartition, list[Record]] = {tp: [] for tp in ours}
            if not ours:
                return out
            theirs = [_theirs(tp) for tp in ours]
            consumer.assign(theirs)
            await consumer.seek_to_beginning(*theirs)
            ends = await consumer.end_offsets(theirs)
            pending = {tp for tp in theirs if ends[tp] > 0}
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=500)
                for tp, messages in batches.items():
                    out[_ours(tp)].extend(_record(m) for m in messages)
                pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
            return out
        except KafkaError as exc:
            raise BusError(f"cannot read {what}: {exc}") from exc
        finally:
            await consumer.stop()

    async def close(self) -> None:
        return None


def _topic_configs(spec: TopicSpec) -> dict[str, str]:
    configs: dict[str, str] = {}
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return configs


def _raise_topic_errors(response: Any) -> None:
    for topic, code, *rest in getattr(response, "topic_errors", ()):
        if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (another process won the race)
            message = rest[0] if rest else ""
            raise BusError(f"cannot create topic {topic!r}: Kafka error {code} {message}")


def _record(message: Any) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_ms=message.timestamp,
        headers=tuple((k, bytes(v)) for k, v in (message.headers or ())),
    )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assign: PartitionsCallback | None, on_revoke: PartitionsCallback | None) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self._on_revoke and revoked:
            await self._on_revoke(frozenset(_ours(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self._on_assign and assigned:
            await self._on_assign(frozenset(_ours(tp) for tp in assigned))


#: Records of one partition in a ``send_batch`` call below which they go through ``send``.
MIN_RECORD_BATCH: Final = 32


class KafkaProducer:
    def __init__(self, producer: AIOKafkaProducer, servers: str) -> None:
        self._producer = producer
        self._servers = servers
        self._key_partitions: dict[tuple[str, int, bytes], int] = {}

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            raise BusError(f"cannot connect producer to Kafka at {self._servers}: {exc}") from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[Delivery]:
        try:
            future = await self._producer.send(topic, value, key=key, headers=list(headers) or None)
        except KafkaError as exc:
            raise BusError(f"cannot send to {topic!r}: {exc}") from exc
        return _Delivery(future, topic)

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivery:
        return await (await self.send(topic, value, key=key, headers=headers))

    async def send_batch(self, records: Sequence[Outgoing]) -> BatchAcks:
        """Records grouped per partition into aiokafka record batches: a third of the CPU per
        record of :meth:`send`, which partitions, checks metadata and makes a future per record.
        Partitions are chosen as aiokafka's default partitioner does (murmur2 of the key)."""
        try:
            groups: dict[tuple[str, int], list[int]] = {}
            partitions: dict[str, list[int]] = {}
            for index, record in enumerate(records):
                if record.topic not in partitions:
                    partitions[record.topic] = sorted(await self._producer.partitions_for(record.topic))
                partition = self._partition(record.topic, partitions[record.topic], record.key)
                groups.setdefault((record.topic, partition), []).append(index)
            sent: list[tuple[asyncio.Future[Any], list[int]]] = []
            for (topic, partition), indices in groups.items():
                sent += await self._send_partition(topic, partition, records, indices)
        except KafkaError as exc:
            raise BusError(f"cannot send to Kafka: {exc}") from exc
        return _BatchDelivery(sent, len(records))

    def _partition(self, topic: str, partitions: list[int], key: bytes | None) -> int:
        if key is None:
            return random.choice(partitions)  # spreading load, not security
        cached = (topic, len(partitions), key)
        found = self._key_partitions.get(cached)
        if found is None:
            if len(self._key_partitions) > 100_000:
                self._key_partitions.clear()
            found = self._key_partitions[cached] = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        return found

    async def _send_partition(
        self, topic: str, partition: int, records: Sequence[Outgoing], indices: list[int]
    ) -> list[tuple[asyncio.Future[Any], list[int]]]:
        """Full batches in order; a record too big for an empty batch goes alone through ``send``
        (which rejects it with Kafka's size error if it is too big for the topic).

        A few records go through ``send``, into the batch aiokafka keeps open for the partition:
        aiokafka sends one batch per partition per request, so many small batches of our own
        would cost a request each (measured: 10-record batches took twice the CPU of ``send``)."""
        if len(indices) < MIN_RECORD_BATCH:
            return [(await self._send_one(topic, partition, records[index]), [index]) for index in indices]
        sent: list[tuple[asyncio.Future[Any], list[int]]] = []
        batch, members = self._producer.create_batch(), []
        for index in indices:
            record = records[index]
            headers = list(record.headers)
            if batch.append(timestamp=None, key=record.key, value=record.value, headers=headers) is not None:
                members.append(index)
                continue
            if members:
                sent.append((await self._submit(batch, topic, partition), members))
                batch, members = self._producer.create_batch(), []
                if batch.append(timestamp=None, key=record.key, value=record.value, headers=headers) is not None:
                    members.append(index)
                    continue
            sent.append((await self._send_one(topic, partition, record), [index]))
        if members:
            sent.append((await self._submit(batch, topic, partition), members))
        return sent

    async def _submit(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        batch.close()
        future: asyncio.Future[Any] = await self._producer.send_batch(batch, topic, partition=partition)
        return future

    async def _send_one(self, topic: str, partition: int, record: Outgoing) -> asyncio.Future[Any]:
        headers = list(record.headers) or None
        future: asyncio.Future[Any] = await self._producer.send(
            topic, record.value, key=record.key, partition=partition, headers=headers
        )
        return future

    async def flush(self) -> None:
        await self._producer.flush()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class _Delivery:
    """aiokafka's record future seen as our :class:`Delivery`, converted only when awaited: no
    task or callback per record (the bridge sends thousands per second and awaits them in batches).
    """

    __slots__ = ("_future", "_topic")

    def __init__(self, future: asyncio.Future[Any], topic: str) -> None:
        self._future = future
        self._topic = topic

    def __await__(self) -> Generator[Any, None, Delivery]:
        try:
            metadata = yield from self._future.__await__()
        except KafkaError as exc:
            raise BusError(f"Kafka did not acknowledge a record for {self._topic!r}: {exc}") from exc
        return Delivery(metadata.topic, metadata.partition, metadata.offset)

    def cancel(self) -> None:
        """Given up on (the caller stops): do not report an unretrieved failure later."""
        _give_up(self._future)


class _BatchDelivery:
    """The futures of :meth:`KafkaProducer.send_batch` (one per record batch), awaited as the
    deliveries of the records in the order they were given."""

    __slots__ = ("_count", "_sent")

    def __init__(self, sent: list[tuple[asyncio.Future[Any], list[int]]], count: int) -> None:
        self._sent = sent  # (future, indices of the records in it)
        self._count = count

    def __await__(self) -> Generator[Any, None, list[Delivery]]:
        landed: list[Delivery | None] = [None] * self._count
        for future, indices in self._sent:
            try:
                metadata = yield from future.__await__()
            except KafkaError as exc:
                self.cancel()
                raise BusError(f"Kafka did not acknowledge a record batch: {exc}") from exc
            for position, index in enumerate(indices):  # a batch's offsets are consecutive
                landed[index] = Delivery(metadata.topic, metadata.partition, metadata.offset + position)
        return [delivery for delivery in landed if delivery is not None]

    def done(self) -> bool:
        """True once Kafka answered for every record (awaiting no longer waits)."""
        return all(future.done() for future, _ in self._sent)

    def cancel(self) -> None:
        """Given up on (the caller stops): do not report unretrieved failures later."""
        for future, _ in self._sent:
            _give_up(future)


def _give_up(future: asyncio.Future[Any]) -> None:
    """Cancel ``future``, or retrieve its failure if it already has one (so asyncio does not log it)."""
    if future.done() and not future.cancelled():
        future.exception()
    else:
        future.cancel()


class KafkaConsumer:
    def __init__(self, consumer: AIOKafkaConsumer, topics: list[str], listener: _Listener, servers: str) -> None:
        self._consumer = consumer
        self._topics = topics
        self._listener = listener
        self._servers = servers

    async def start(self) -> None:
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise BusError(f"cannot connect consumer to Kafka at {self._servers}: {exc}") from exc
        self._consumer.subscribe(self._topics, listener=self._listener)

    async def stop(self) -> None:
        # The Java client calls onPartitionsRevoked on close; aiokafka does not, and stages rely
        # on it to checkpoint state before leaving the group.
        assigned = self._consumer.assignment()
        if assigned:
            await self._listener.on_partitions_revoked(assigned)
        await self._consumer.stop()

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(_ours(tp) for tp in self._consumer.assignment())

    async def lag(self) -> dict[TopicPartition, int]:
        lags: dict[TopicPartition, int] = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is None:
                continue
            try:
                # position() waits while the group rebalances; a metric must not wait for that
                position = await asyncio.wait_for(self._consumer.position(tp), timeout=0.5)
            except (TimeoutError, IllegalStateError):
                continue
            lags[_ours(tp)] = max(0, end - position)
        return lags

    async def getmany(self, *, timeout_ms: int = 1000, max_records: int = 500) -> list[Record]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise BusError(f"cannot fetch from {self._topics}: {exc}") from exc
        return [_record(m) for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for m in batches[tp]]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit({_theirs(tp): offset for tp, offset in offsets.items()})
        except KafkaError as exc:
            raise BusError(f"cannot commit offsets {dict(offsets)}: {exc}") from exc

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
