"""What the end-to-end tests share: waiting for a condition, and reading the incidents topic."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pipeline.harness import read_topic
from riverguard.bus.kafka import KafkaBus
from riverguard.incidents import Incident
from riverguard.models import decode
from riverguard.settings import Settings


async def until(condition: Callable[[], object], what: str, limit_s: float = 150) -> None:
    """Poll ``condition`` (sync or returning an awaitable) every quarter second."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.25)


async def equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def latest_incidents(bus: KafkaBus, settings: Settings) -> list[Incident]:
    """Every incident as the compacted incidents topic last has it."""
    latest: dict[str, Incident] = {}
    for record in await read_topic(bus, settings.topics.incidents):
        if record.value is not None:
            incident = decode(record.value, Incident).payload
            latest[incident.incident_id] = incident
    return list(latest.values())
