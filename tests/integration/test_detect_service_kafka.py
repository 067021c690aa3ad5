"""The detector service on real Kafka: restart restores state from the compacted changelog; two
members of one group split the partitions and together emit each detection exactly once."""

from __future__ import annotations

import pytest

from riverguard.bus.kafka import KafkaBus
from riverguard.settings import Settings
from tests.unit.test_detect_service import restart_restores_state, scoped, two_members_emit_each_detection_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_restart_restores_state_kafka(kafka_bus: KafkaBus, kafka_settings: Settings, unique: str) -> None:
    await restart_restores_state(kafka_bus, scoped(kafka_settings, unique), f"detect-{unique}")


async def test_two_members_emit_each_detection_once_kafka(
    kafka_bus: KafkaBus, kafka_settings: Settings, unique: str
) -> None:
    await two_members_emit_each_detection_once(kafka_bus, scoped(kafka_settings, unique), f"detect-{unique}")
