"""The contract suites run every test twice: on the in-memory bus and on Kafka."""

from __future__ import annotations

import pytest

from riverguard.bus import Bus, MemoryBus


@pytest.fixture(params=["memory", pytest.param("kafka", marks=[pytest.mark.integration, pytest.mark.slow])])
def bus(request: pytest.FixtureRequest) -> Bus:
    if request.param == "memory":
        return MemoryBus()
    kafka: Bus = request.getfixturevalue("kafka_bus")
    return kafka
