"""The topics riverguard uses, from the settings."""

from __future__ import annotations

from riverguard.bus.base import TopicSpec
from riverguard.settings import Settings


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic with its partitioning and cleanup policy.

    ``incidents``, ``silences`` and the detector changelog are compacted: they hold the latest
    state per key. ``verdicts`` is keyed by station id with as many partitions as the readings,
    so a station's verdicts share the partition number of its readings.
    """
    n = settings.kafka.partitions
    rf = settings.kafka.replication_factor
    t = settings.topics
    return [
        TopicSpec(t.readings, n, replication_factor=rf),
        TopicSpec(t.dlq, n, replication_factor=rf),
        TopicSpec(t.detections, n, replication_factor=rf),
        TopicSpec(t.incidents, n, compacted=True, replication_factor=rf),
        TopicSpec(t.notifications, n, replication_factor=rf),
        TopicSpec(t.detector_state, n, compacted=True, replication_factor=rf),
        TopicSpec(t.silences, n, compacted=True, replication_factor=rf),
        TopicSpec(t.verdicts, n, replication_factor=rf),
        TopicSpec(t.station_commands, n, replication_factor=rf),
        TopicSpec(t.command_results, n, replication_factor=rf),
    ]
