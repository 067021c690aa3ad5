"""Shared fixtures. Service-bound fixtures need the local stack (``make up``); they fail — not
skip — when a service is unreachable, so a green run always means the real services were used."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from riverguard.bus.kafka import KafkaBus
from riverguard.bus.memory import MemoryBus
from riverguard.settings import Settings, load_settings
from tests.support.services import require_service


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def unique() -> str:
    """A fresh suffix for topic and group names, so tests never see each other's data."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def kafka_settings(settings: Settings) -> Settings:
    host, _, port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
    require_service("Kafka", host, int(port))
    return settings


@pytest.fixture
def kafka_bus(kafka_settings: Settings) -> KafkaBus:
    # Synchronous on purpose: parametrised fixtures resolve it with getfixturevalue, which
    # cannot run async fixtures; KafkaBus opens its connections per producer/consumer anyway.
    return KafkaBus(kafka_settings.kafka)


@pytest.fixture
async def memory_bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    yield bus
    await bus.close()
