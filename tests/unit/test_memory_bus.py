from __future__ import annotations

import pytest

from riverguard.bus import MemoryBus
from riverguard.errors import BusError


async def test_producing_to_an_unknown_topic_names_it(memory_bus: MemoryBus) -> None:
    async with memory_bus.producer() as producer:
        with pytest.raises(BusError, match="unknown topic 'nowhere'"):
            await producer.send_and_wait("nowhere", b"x")


async def test_compaction_keeps_offsets_increasing_with_gaps(memory_bus: MemoryBus) -> None:
    from riverguard.bus import TopicPartition, TopicSpec

    await memory_bus.create_topics([TopicSpec("c", partitions=1, compacted=True)])
    async with memory_bus.producer() as producer:
        for i in range(3):
            await producer.send_and_wait("c", str(i).encode(), key=b"k")
    records = await memory_bus.read_partition(TopicPartition("c", 0))
    assert [(r.offset, r.value) for r in records] == [(2, b"2")]
