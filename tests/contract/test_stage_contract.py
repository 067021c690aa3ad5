"""One stage runtime, two buses: what every stage relies on from :class:`riverguard.stage.StageRuntime`.

The processor here is a tally: for each input it emits ``key:n`` where ``n`` counts that key's
inputs so far (its state), checkpointed to a compacted changelog and restored on assignment — the
shape of the detect stage, small enough to see every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest

from riverguard.bus import Bus, Record, TopicPartition, TopicSpec
from riverguard.stage import (
    Handled,
    Interrupted,
    Outgoing,
    Processor,
    StageConfig,
    StageContext,
    StageNotReadyError,
    StageRuntime,
)

PARTITIONS = 3
KEYS = [f"s{i}" for i in range(6)]


class Topics:
    def __init__(self, unique: str) -> None:
        self.inputs = f"in-{unique}"
        self.outputs = f"out-{unique}"
        self.changelog = f"state-{unique}"
        self.ticks = f"ticks-{unique}"

    async def create(self, bus: Bus) -> None:
        await bus.create_topics([
            TopicSpec(self.inputs, PARTITIONS), TopicSpec(self.outputs, PARTITIONS),
            TopicSpec(self.changelog, PARTITIONS, compacted=True), TopicSpec(self.ticks, 1),
        ])


class Tally(Processor):
    stage = "tally"

    def __init__(self, topics: Topics, *, interrupt_at: str | None = None, tick: bool = False) -> None:
        self.t = topics
        self.counts: dict[str, int] = {}
        self.dirty: set[str] = set()
        self.interrupt_at = interrupt_at
        self.ticking = tick
        self.assigned_log: list[frozenset[TopicPartition]] = []
        self.context: StageContext | None = None

    def topics(self) -> Sequence[str]:
        return [self.t.inputs]

    async def start(self, context: StageContext) -> None:
        self.context = context

    async def assigned(self, partitions: frozenset[TopicPartition]) -> None:
        assert self.context is not None
        self.assigned_log.append(partitions)
        for tp in partitions:
            for record in await self.context.bus.read_partition(TopicPartition(self.t.changelog, tp.partition)):
                assert record.key is not None
                assert record.value is not None
                self.counts[record.key.decode()] = int(record.value)

    async def revoked(self, partitions: frozenset[TopicPartition]) -> None:
        self.counts.clear()

    async def handle(self, records: Sequence[Record]) -> Sequence[Outgoing]:
        out = []
        for record in records:
            assert record.key is not None
            assert record.value is not None
            if record.value.decode() == self.interrupt_at:
                raise Interrupted
            key = record.key.decode()
            self.counts[key] = self.counts.get(key, 0) + 1
            self.dirty.add(key)
            out.append(Outgoing(self.t.outputs, f"{record.value.decode()}@{self.counts[key]}".encode(), record.key))
        return out

    def checkpoint(self) -> Sequence[Outgoing]:
        state = [Outgoing(self.t.changelog, str(self.counts[k]).encode(), k.encode()) for k in sorted(self.dirty)]
        self.dirty.clear()
        return state

    async def tick(self) -> Sequence[Outgoing]:
        return [Outgoing(self.t.ticks, b"tick")] if self.ticking else []


async def produce(bus: Bus, topic: str, values: Sequence[tuple[str, str]]) -> None:
    async with bus.producer() as producer:
        await (await producer.send_batch([Outgoing(topic, v.encode(), k.encode()) for k, v in values]))


async def values_of(bus: Bus, topic: str) -> list[str]:
    out: list[str] = []
    for p in range(await bus.partitions(topic)):
        out += [r.value.decode() for r in await bus.read_partition(TopicPartition(topic, p)) if r.value]
    return out


async def committed_everything(bus: Bus, topic: str, group: str) -> bool:
    """A fresh member of ``group`` finds nothing left to read."""
    async with bus.consumer([topic], group_id=group) as consumer:
        for _ in range(5):
            if await consumer.getmany(timeout_ms=300):
                return False
        return True


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


class Running:
    """A runtime member in a task, as its own process would run it."""

    def __init__(self, bus: Bus, processor: Tally, config: StageConfig,
                 observers: Sequence[Callable[[Handled], None]] = ()) -> None:
        self.stop = asyncio.Event()
        self.runtime = StageRuntime(bus, processor, config, observers=observers)
        self.task = asyncio.create_task(self.runtime.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


def inputs(n: int) -> list[tuple[str, str]]:
    return [(KEYS[i % len(KEYS)], f"v{i}") for i in range(n)]


async def test_every_input_is_handled_once_and_committed_after_its_outputs(bus: Bus, unique: str) -> None:
    topics = Topics(unique)
    await topics.create(bus)
    seen: list[Handled] = []

    async def observed_outputs_are_on_the_bus(handled: Handled) -> None:
        have = set(await values_of(bus, topics.outputs))
        assert {o.value.decode() for o in handled.outputs if o.value} <= have

    checks: list[asyncio.Task[None]] = []

    def observer(handled: Handled) -> None:
        seen.append(handled)
        checks.append(asyncio.create_task(observed_outputs_are_on_the_bus(handled)))

    member = Running(bus, Tally(topics), StageConfig(group_id=f"g-{unique}", max_records=7), [observer])
    await produce(bus, topics.inputs, inputs(60))

    async def all_out() -> bool:
        return len(await values_of(bus, topics.outputs)) >= 60

    await eventually(all_out, "60 outputs")
    await member.close()
    await asyncio.gather(*checks)
    outputs = await values_of(bus, topics.outputs)
    assert sorted(outputs) == sorted(f"v{i}@{i // len(KEYS) + 1}" for i in range(60))
    assert sum(len(h.records) for h in seen) == 60
    assert all(len(h.records) <= 7 for h in seen)
    assert await committed_everything(bus, topics.inputs, f"g-{unique}")


async def test_a_restart_restores_state_from_the_changelog(bus: Bus, unique: str) -> None:
    topics = Topics(unique)
    await topics.create(bus)
    group = f"g-{unique}"
    config = StageConfig(group_id=group, commit_interval_s=60.0)  # only the stop commits
    first = Running(bus, Tally(topics), config)
    await produce(bus, topics.inputs, inputs(12))

    async def out(n: int) -> bool:
        return len(await values_of(bus, topics.outputs)) >= n

    await eventually(lambda: out(12), "12 outputs")
    await first.close()
    assert sorted(await values_of(bus, topics.changelog)) == ["2"] * len(KEYS)

    second = Running(bus, Tally(topics), config)
    await produce(bus, topics.inputs, [("s0", "late")])
    await eventually(lambda: out(13), "the 13th output")
    await second.close()
    assert "late@3" in await values_of(bus, topics.outputs)


async def test_an_interrupted_batch_is_not_committed_and_comes_again(bus: Bus, unique: str) -> None:
    topics = Topics(unique)
    await topics.create(bus)
    group = f"g-{unique}"
    await produce(bus, topics.inputs, [("s0", "a"), ("s0", "stop-here"), ("s0", "b")])
    stubborn = Running(bus, Tally(topics, interrupt_at="stop-here"), StageConfig(group_id=group, max_records=1))
    await eventually(lambda: _done(stubborn.task), "the member to stop at the interrupting record")
    await stubborn.task
    assert await values_of(bus, topics.outputs) == ["a@1"]

    again = Running(bus, Tally(topics), StageConfig(group_id=group))

    async def rest() -> bool:
        return len(await values_of(bus, topics.outputs)) >= 3

    await eventually(rest, "the interrupted record handled by the next member")
    await again.close()
    assert sorted(await values_of(bus, topics.outputs)) == ["a@1", "b@3", "stop-here@2"]


async def _done(task: asyncio.Task[None]) -> bool:
    return task.done()


async def test_a_second_member_takes_partitions_with_their_state_and_nothing_twice(bus: Bus, unique: str) -> None:
    topics = Topics(unique)
    await topics.create(bus)
    group = f"g-{unique}"
    config = StageConfig(group_id=group, commit_interval_s=0.2)
    first_tally = Tally(topics)
    first = Running(bus, first_tally, config)
    await produce(bus, topics.inputs, inputs(30))

    async def out(n: int) -> bool:
        return len(await values_of(bus, topics.outputs)) >= n

    await eventually(lambda: out(30), "30 outputs")
    second_tally = Tally(topics)
    second = Running(bus, second_tally, config)

    async def split() -> bool:
        return bool(second_tally.assigned_log) and bool(first_tally.counts) and bool(second_tally.counts)

    await produce(bus, topics.inputs, inputs(60)[30:])
    await eventually(lambda: out(60), "60 outputs")
    await eventually(split, "both members to own keys")
    await first.close()
    await second.close()
    outputs = await values_of(bus, topics.outputs)
    # Each input once, and its count continues where the other member's state left it.
    assert sorted(outputs) == sorted(f"v{i}@{i // len(KEYS) + 1}" for i in range(60))
    assert not set(first_tally.counts) & set(second_tally.counts)


async def test_ticks_run_while_no_records_arrive(bus: Bus, unique: str) -> None:
    topics = Topics(unique)
    await topics.create(bus)
    member = Running(bus, Tally(topics, tick=True), StageConfig(group_id=f"g-{unique}", tick_s=0.05))

    async def ticked() -> bool:
        return len(await values_of(bus, topics.ticks)) >= 3

    await eventually(ticked, "three ticks", timeout_s=30)
    await member.close()


class GatedRestore(Tally):
    """Restores only when let: what a large changelog does to a real stage's assignment."""

    def __init__(self, topics: Topics) -> None:
        super().__init__(topics)
        self.restoring = asyncio.Event()
        self.let_through = asyncio.Event()

    async def assigned(self, partitions: frozenset[TopicPartition]) -> None:
        self.restoring.set()
        await self.let_through.wait()
        await super().assigned(partitions)


async def test_readiness_waits_for_the_group_and_the_restore(bus: Bus, unique: str) -> None:
    topics = Topics(unique)
    await topics.create(bus)
    processor = GatedRestore(topics)
    member = Running(bus, processor, StageConfig(group_id=f"g-{unique}"))
    try:
        await asyncio.wait_for(processor.restoring.wait(), 60)
        with pytest.raises(StageNotReadyError, match="is restoring the state"):
            await member.runtime.readiness()
        processor.let_through.set()

        async def ready() -> bool:
            try:
                await member.runtime.readiness()
            except StageNotReadyError:
                return False
            return True

        await eventually(ready, "the stage to be ready")
        assert str(await member.runtime.readiness()).endswith("partitions")
    finally:
        processor.let_through.set()
        await member.close()
