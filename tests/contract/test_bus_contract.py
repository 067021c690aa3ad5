"""One contract, two buses: the in-memory bus must behave like Kafka where stages rely on it."""

from __future__ import annotations

import asyncio

from riverguard.bus import Bus, Record, TopicPartition, TopicSpec, next_offsets
from riverguard.bus.base import Outgoing


async def _drain(consumer: object, want: int, *, timeout_s: float = 20.0) -> list[Record]:
    got: list[Record] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(got) < want and asyncio.get_running_loop().time() < deadline:
        got.extend(await consumer.getmany(timeout_ms=200))  # type: ignore[attr-defined]
    return got


async def test_records_with_one_key_stay_in_order_on_one_partition(bus: Bus, unique: str) -> None:
    topic = f"t-order-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=3)])
    async with bus.producer() as producer:
        for station in ("a", "b", "c"):
            for i in range(20):
                await producer.send(topic, f"{station}:{i}".encode(), key=station.encode())
        await producer.flush()
    async with bus.consumer([topic], group_id=f"g-{unique}") as consumer:
        records = await _drain(consumer, 60)
    assert len(records) == 60
    for station in ("a", "b", "c"):
        mine = [r for r in records if r.key == station.encode()]
        assert [r.value for r in mine] == [f"{station}:{i}".encode() for i in range(20)]
        assert len({r.partition for r in mine}) == 1


async def test_send_and_wait_returns_where_the_record_landed(bus: Bus, unique: str) -> None:
    topic = f"t-ack-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    async with bus.producer() as producer:
        first = await producer.send_and_wait(topic, b"x", key=b"k")
        second = await producer.send_and_wait(topic, b"y", key=b"k")
    assert first.topic == topic
    assert second.partition == first.partition
    assert second.offset == first.offset + 1
    assert (await bus.end_offsets([TopicPartition(topic, first.partition)]))[
        TopicPartition(topic, first.partition)
    ] == second.offset + 1


async def test_a_batch_lands_where_single_sends_would_in_order_with_its_deliveries(bus: Bus, unique: str) -> None:
    topic, other = f"t-batch-{unique}", f"t-batch2-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=3), TopicSpec(other, partitions=2)])
    batch = [Outgoing(topic, f"{key}:{i}".encode(), key=key.encode(), headers=(("n", str(i).encode()),))
             for i in range(400) for key in ("a", "b", "c", "d")]  # several record batches per partition
    # a few records of a partition, a keyless one, and a record larger than a batch among many
    batch += [Outgoing(other, b"keyless"), Outgoing(other, b"small", key=b"few")]
    batch += [Outgoing(other, b"x" * (20_000 if i == 20 else 100), key=b"big") for i in range(40)]
    async with bus.producer() as producer:
        deliveries = await (await producer.send_batch(batch))
        single = {key: await producer.send_and_wait(topic, b"after", key=key.encode()) for key in "abcd"}
        assert await (await producer.send_batch([])) == []
    assert [d.topic for d in deliveries] == [o.topic for o in batch]
    for key in "abcd":
        mine = [d for d, o in zip(deliveries, batch, strict=True) if o.key == key.encode()]
        assert {d.partition for d in mine} == {single[key].partition}  # as send() places the key
        assert [d.offset for d in mine] == sorted(d.offset for d in mine)
    landed = {(d.topic, d.partition, d.offset) for d in deliveries}
    assert len(landed) == len(batch)  # every record has its own place
    async with bus.consumer([topic, other], group_id=f"g-{unique}") as consumer:
        records = await _drain(consumer, len(batch) + 4)
    by_place = {(r.topic, r.partition, r.offset): r for r in records}
    for delivery, sent in zip(deliveries, batch, strict=True):
        record = by_place[(delivery.topic, delivery.partition, delivery.offset)]
        assert (record.key, record.value, record.headers) == (sent.key, sent.value, sent.headers)


async def test_a_group_resumes_from_its_committed_offsets(bus: Bus, unique: str) -> None:
    topic, group = f"t-commit-{unique}", f"g-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=1)])
    async with bus.producer() as producer:
        for i in range(10):
            await producer.send_and_wait(topic, str(i).encode(), key=b"s")
    async with bus.consumer([topic], group_id=group) as consumer:
        records = await _drain(consumer, 10)
        await consumer.commit(next_offsets(records[:4]))
    async with bus.consumer([topic], group_id=group) as again:
        rest = await _drain(again, 6)
    assert [r.value for r in rest] == [str(i).encode() for i in range(4, 10)]


async def test_another_group_reads_everything_independently(bus: Bus, unique: str) -> None:
    topic = f"t-groups-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    async with bus.producer() as producer:
        for i in range(8):
            await producer.send_and_wait(topic, str(i).encode(), key=str(i).encode())
    async with bus.consumer([topic], group_id=f"g1-{unique}") as one:
        first = await _drain(one, 8)
        await one.commit(next_offsets(first))
    async with bus.consumer([topic], group_id=f"g2-{unique}") as two:
        second = await _drain(two, 8)
    assert sorted(r.value or b"" for r in first) == sorted(r.value or b"" for r in second)
    assert len(second) == 8


async def test_two_members_split_the_partitions_and_each_record_is_seen_once(bus: Bus, unique: str) -> None:
    topic, group = f"t-split-{unique}", f"g-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=4)])
    assigned: dict[str, frozenset[TopicPartition]] = {}

    def tracker(name: str):  # type: ignore[no-untyped-def]
        async def on_assign(tps: frozenset[TopicPartition]) -> None:
            assigned[name] = tps

        return on_assign

    first = bus.consumer([topic], group_id=group, on_assign=tracker("a"))
    second = bus.consumer([topic], group_id=group, on_assign=tracker("b"))
    await first.start()
    await second.start()
    try:
        async with bus.producer() as producer:
            for i in range(40):
                await producer.send(topic, str(i).encode(), key=f"station-{i}".encode())
            await producer.flush()
        seen: list[Record] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(seen) < 40 and asyncio.get_running_loop().time() < deadline:
            for member in (first, second):
                batch = await member.getmany(timeout_ms=100)
                seen.extend(batch)
                if batch:
                    await member.commit(next_offsets(batch))
        a, b = first.assignment(), second.assignment()
    finally:
        await first.stop()
        await second.stop()
    assert a
    assert b
    assert not a & b
    assert a | b == {TopicPartition(topic, p) for p in range(4)}
    assert sorted(int(r.value or b"-1") for r in seen) == list(range(40))
    assert assigned["b"] == b


async def test_compacted_topic_folds_to_the_latest_value_per_key(bus: Bus, unique: str) -> None:
    topic = f"t-compact-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=1, compacted=True)])
    async with bus.producer() as producer:
        for version in range(5):
            for key in ("inc-1", "inc-2"):
                await producer.send_and_wait(topic, f"{key}@{version}".encode(), key=key.encode())
        await producer.send_and_wait(topic, None, key=b"inc-2")  # tombstone
    state: dict[bytes, bytes | None] = {}
    for record in await bus.read_partition(TopicPartition(topic, 0)):
        assert record.key is not None
        state[record.key] = record.value
    live = {k: v for k, v in state.items() if v is not None}
    assert live == {b"inc-1": b"inc-1@4"}


async def test_revoke_is_called_on_leave_and_assign_before_records(bus: Bus, unique: str) -> None:
    topic = f"t-callbacks-{unique}"
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    events: list[str] = []

    async def on_assign(tps: frozenset[TopicPartition]) -> None:
        events.append(f"assign:{len(tps)}")

    async def on_revoke(tps: frozenset[TopicPartition]) -> None:
        events.append(f"revoke:{len(tps)}")

    async with bus.producer() as producer:
        await producer.send_and_wait(topic, b"v", key=b"k")
    consumer = bus.consumer([topic], group_id=f"g-{unique}", on_assign=on_assign, on_revoke=on_revoke)
    await consumer.start()
    records = await _drain(consumer, 1)
    events.append("records")
    await consumer.stop()
    assert len(records) == 1
    assert events == ["assign:2", "records", "revoke:2"]


async def test_topics_with_equal_partition_counts_are_co_partitioned(bus: Bus, unique: str) -> None:
    """Partition p of each subscribed topic goes to one member: the detect stage keeps a station's
    state from its readings and its operator verdicts (both keyed by station id)."""
    readings, verdicts, group = f"t-readings-{unique}", f"t-verdicts-{unique}", f"g-{unique}"
    await bus.create_topics([TopicSpec(readings, partitions=3), TopicSpec(verdicts, partitions=3)])
    members = [bus.consumer([readings, verdicts], group_id=group) for _ in range(2)]
    for member in members:
        await member.start()
    everything = {TopicPartition(t, p) for t in (readings, verdicts) for p in range(3)}
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            for member in members:
                await member.getmany(timeout_ms=100)
            held = [member.assignment() for member in members]
            if all(held) and held[0] | held[1] == everything and not held[0] & held[1]:
                break
    finally:
        for member in members:
            await member.stop()
    assert all(held), f"both members hold partitions: {held}"
    assert held[0] | held[1] == everything
    for assignment in held:
        numbers = {t: {tp.partition for tp in assignment if tp.topic == t} for t in (readings, verdicts)}
        assert numbers[readings] == numbers[verdicts], f"not co-partitioned: {sorted(assignment)}"


async def test_reading_several_partitions_and_whole_topics_at_once(bus: Bus, unique: str) -> None:
    """What a restore reads: each partition from its beginning to its end, as read_partition would."""
    first, second = f"t-read-a-{unique}", f"t-read-b-{unique}"
    await bus.create_topics([TopicSpec(first, partitions=2), TopicSpec(second, partitions=3, compacted=True)])
    async with bus.producer() as producer:
        for i in range(12):
            await producer.send(first, f"a{i}".encode(), key=f"k{i}".encode())
            await producer.send(second, f"b{i}".encode(), key=f"k{i}".encode())
        await producer.flush()
    one_by_one = {TopicPartition(t, p): await bus.read_partition(TopicPartition(t, p))
                  for t, n in ((first, 2), (second, 3)) for p in range(n)}
    topics = await bus.read_topics([first, second, f"t-missing-{unique}"])
    chosen = await bus.read_partitions([TopicPartition(first, 1), TopicPartition(second, 0)])

    def values(records: list[Record]) -> list[bytes | None]:
        return [r.value for r in records]

    assert {tp: values(r) for tp, r in topics.items()} == {tp: values(r) for tp, r in one_by_one.items()}
    assert sum(len(r) for r in topics.values()) == 24
    assert {tp: values(r) for tp, r in chosen.items()} == {
        tp: values(one_by_one[tp]) for tp in (TopicPartition(first, 1), TopicPartition(second, 0))}
