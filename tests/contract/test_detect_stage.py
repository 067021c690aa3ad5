"""The detect stage on both buses: a restart restores state from the compacted changelog; two
members of one group split the partitions and together emit each detection exactly once; an
unreadable record goes to the DLQ."""

from __future__ import annotations

from riverguard.bus.base import Bus
from riverguard.settings import Settings
from tests.support.detect_stage import (
    Member,
    all_records,
    create_topics,
    eventually,
    restart_restores_state,
    scoped,
    two_members_emit_each_detection_once,
    verdicts_are_learned_and_checkpointed,
)


async def test_restart_restores_state(bus: Bus, settings: Settings, unique: str) -> None:
    await restart_restores_state(bus, scoped(settings, unique), f"detect-{unique}")


async def test_two_members_emit_each_detection_once(bus: Bus, settings: Settings, unique: str) -> None:
    await two_members_emit_each_detection_once(bus, scoped(settings, unique), f"detect-{unique}")


async def test_unreadable_record_goes_to_the_dlq(bus: Bus, settings: Settings, unique: str) -> None:
    s = scoped(settings, unique)
    await create_topics(bus, s)
    member = Member(bus, s, f"detect-{unique}")
    async with bus.producer() as producer:
        await producer.send_and_wait(s.topics.readings, b'{"not": "an envelope"}', key=b"x")

    async def dead_lettered() -> bool:
        return bool(await all_records(bus, s.topics.dlq))

    await eventually(dead_lettered, "a dead letter")
    await member.close()
    letter = (await all_records(bus, s.topics.dlq))[0]
    assert b"bad_reading" in letter


async def test_verdicts_are_learned_and_checkpointed(bus: Bus, settings: Settings, unique: str) -> None:
    await verdicts_are_learned_and_checkpointed(bus, scoped(settings, unique), f"detect-{unique}")
